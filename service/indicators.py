"""Use cases behind the proof: energy (final and primary) and carbon, and the machinery
they share with waste (waste_report) and targets (targets_report).

Each takes a site, the stores and a period, and returns plain results with the coverage
and the estimated share behind every figure, and the factors used with their sources.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from domain.balance import MeterEnergy, energy_per_period, slot_end
from domain.carbon import NetCarbon, avoided_co2_kg, net_carbon, operational_co2_kg
from domain.energy import (
    NOT_ENERGY,
    CarrierEnergy,
    EnergyBalance,
    UsesBreakdown,
    energy_balance,
    uses_breakdown,
)
from domain.factors import Factor, carbon_factor, primary_factor
from domain.materials import Embodied, embodied
from domain.periods import Step, common_slot, period_bounds
from domain.site import Carrier, Meter, Role, Site, Use
from domain.store import ReadingStore
from stores.ledger import Ledger

#: Meter id and quantity under which `microville import carbon-intensity` stores the
#: grid's carbon intensity of a site.
INTENSITY_METER, INTENSITY_QUANTITY = "grid-carbon-intensity", "carbon_intensity"
MAX_PERIODS = 100_000
#: Dimensions of cumulative indexes.
INDEX_DIMENSIONS = ("energy", "volume", "mass")
YEAR_S = 365.25 * 86400


class QueryError(ValueError):
    """The request is well-formed but cannot be answered as asked."""


def bounds_of(site: Site, start: datetime, end: datetime, step: Step) -> list[datetime]:
    if start.microsecond or end.microsecond:
        raise QueryError("start and end must be whole seconds")
    try:
        bounds = period_bounds(start, end, step, site.tz)
    except ValueError as exc:
        raise QueryError(str(exc)) from None
    if len(bounds) - 1 > MAX_PERIODS:
        raise QueryError(
            f"{len(bounds) - 1} periods asked; at most {MAX_PERIODS}: use a larger step"
        )
    return bounds


def meter_energies(
    site: Site, store: ReadingStore, meters: list[Meter], bounds: list[datetime]
) -> dict[str, MeterEnergy]:
    """Energy (or mass, volume) of each meter per period, aggregated in the store."""
    slot = common_slot(bounds)
    by_quantity: dict[str, list[Meter]] = defaultdict(list)
    for m in meters:
        by_quantity[m.dimension].append(m)
    out: dict[str, MeterEnergy] = {}
    for quantity, group in by_quantity.items():
        # glitch_window_s and a slot before the start and three times that past the end,
        # so that the baseline and the last slots are judged (spike, glitch or reset?)
        # and a gap across either end split as inside a longer query: a day is the
        # same alone and in its month (energy_per_period).
        window = max(m.quality.glitch_window_s for m in group)
        reach = slot * (math.ceil(window / slot.total_seconds()) + 1)
        since, until = bounds[0] - reach, bounds[-1] + 3 * reach
        series = store.index_slots(site.id, [m.id for m in group], quantity, since, until, slot)
        # A gap across the end, however long: read on to two reaches past the reading
        # that closes it, so that it is judged and the gap split as in a longer query.
        needed: dict[str, datetime] = {}
        for m in group:
            s = series[m.id]
            after = next((x.end for x in s.slots if x.end > bounds[-1]), None)
            if after is None and s.next_time is not None:
                after = slot_end(s.next_time, slot)
            if after is not None and after + 2 * reach > until:
                needed[m.id] = after + 2 * reach
        if needed:
            more = store.index_slots(
                site.id, list(needed), quantity, until, max(needed.values()), slot
            )
            for meter_id in needed:
                s = series[meter_id]
                series[meter_id] = replace(s, slots=s.slots + more[meter_id].slots)
        for m in group:
            out[m.id] = energy_per_period(series[m.id], bounds, slot, m.quality, since)
    return out


def _durations(bounds: list[datetime]) -> list[float]:
    return [b.timestamp() - a.timestamp() for a, b in itertools.pairwise(bounds)]


def weighted_coverage(
    energy: MeterEnergy, bounds: list[datetime], i: int = 0, j: int | None = None
) -> float:
    """Coverage of periods ``i`` to ``j`` (excluded; default: all), weighted by duration."""
    j = len(bounds) - 1 if j is None else j
    durations = _durations(bounds)[i:j]
    return sum(c * d for c, d in zip(energy.coverage[i:j], durations, strict=True)) / sum(durations)


@dataclass(frozen=True)
class Evidence:
    """What a figure stands on: the lowest coverage of its meters, the estimated share."""

    coverage: float
    estimated_wh: float


def evidence(energies: list[MeterEnergy], k: int | None, bounds: list[datetime]) -> Evidence:
    """Evidence of period ``k``, or of the whole query when ``k`` is None."""
    return span_evidence(energies, bounds, *((0, len(bounds) - 1) if k is None else (k, k + 1)))


def span_evidence(energies: list[MeterEnergy], bounds: list[datetime], i: int, j: int) -> Evidence:
    """Evidence of periods ``i`` to ``j`` (excluded): the weakest meter's coverage."""
    if not energies:
        return Evidence(coverage=0.0, estimated_wh=0.0)
    coverage = min(weighted_coverage(e, bounds, i, j) for e in energies)
    return Evidence(coverage, sum(sum(e.estimated_wh[i:j]) for e in energies))


def _span_indexes(
    bounds: list[datetime], spans: Sequence[tuple[datetime, datetime]]
) -> list[tuple[int, int]]:
    """Period indexes ``(i, j)`` of each span, whose ends must be period bounds."""
    at = {b.timestamp(): k for k, b in enumerate(bounds)}
    out = []
    for a, b in spans:
        if a.timestamp() not in at or b.timestamp() not in at or a >= b:
            raise QueryError(f"span {a.isoformat()} → {b.isoformat()} is not made of whole periods")
        out.append((at[a.timestamp()], at[b.timestamp()]))
    return out


# --- energy -------------------------------------------------------------------------------

BALANCE_ROLES = (Role.PRODUCTION, Role.GRID_IMPORT, Role.GRID_EXPORT)


@dataclass(frozen=True)
class EnergyPeriod:
    start: datetime
    end: datetime
    carriers: dict[Carrier, CarrierEnergy]
    balance: EnergyBalance
    #: Per carrier with sub-meters, its consumption split by use.
    uses_wh: dict[Carrier, UsesBreakdown] | None
    evidence: Evidence
    #: Balance meters in m³ without ``kwh_per_m3``: their energy is unknown, so the
    #: final net and the totals are incomplete (null in the API) and the primary net
    #: None; the consumption figures leave them out.
    unconverted_meters: tuple[str, ...] = ()


@dataclass(frozen=True)
class EnergyReport:
    site: Site
    periods: list[EnergyPeriod]
    total: EnergyPeriod
    primary_factors: dict[Carrier, Factor]
    missing_factors: list[Carrier]
    meters: dict[str, MeterEnergy]
    bounds: list[datetime]
    spans: list[EnergyPeriod] = field(default_factory=list)  # as asked, from the same query
    #: Meters in m³ without ``kwh_per_m3``: not counted, their carrier in missing_factors.
    unconverted_meters: list[str] = field(default_factory=list)


def _carrier_energy(
    meters: list[Meter], energies: dict[str, MeterEnergy], i: int, j: int
) -> dict[Carrier, CarrierEnergy]:
    def total(m: Meter) -> float:
        return sum(energies[m.id].energy_wh[i:j])

    sums: dict[Carrier, dict[Role, float]] = defaultdict(lambda: defaultdict(float))
    for m in meters:
        sums[m.carrier][m.role] += total(m)
    return {
        c: CarrierEnergy(
            import_wh=r[Role.GRID_IMPORT],
            export_wh=r[Role.GRID_EXPORT],
            production_wh=r[Role.PRODUCTION],
        )
        for c, r in sums.items()
    }


def _scaled(e: MeterEnergy, factor: float) -> MeterEnergy:
    return replace(
        e,
        energy_wh=[x * factor for x in e.energy_wh],
        estimated_wh=[x * factor for x in e.estimated_wh],
    )


def energy_meters(site: Site, roles: Sequence[Role]) -> tuple[list[Meter], list[Meter]]:
    """The meters of ``roles`` whose index is energy or converts to it (a volume with
    its ``kwh_per_m3``), and those metered in volume without a conversion: never
    dropped silently, their carrier is reported missing."""
    usable, unconverted = [], []
    for m in site.meters:
        if m.role not in roles or m.carrier in NOT_ENERGY:
            continue
        if m.dimension == "energy" or (m.dimension == "volume" and m.kwh_per_m3 is not None):
            usable.append(m)
        elif m.dimension == "volume":
            unconverted.append(m)
    return usable, unconverted


def energy_in_wh(
    site: Site, store: ReadingStore, meters: list[Meter], bounds: list[datetime]
) -> dict[str, MeterEnergy]:
    """:func:`meter_energies` with volumes converted to energy by ``kwh_per_m3`` [Wh]."""
    energies = meter_energies(site, store, meters, bounds)
    for m in meters:
        if m.dimension == "volume" and m.kwh_per_m3 is not None:
            energies[m.id] = _scaled(energies[m.id], m.kwh_per_m3 * 1000)  # m³ → Wh
    return energies


def energy_report(
    site: Site,
    store: ReadingStore,
    start: datetime,
    end: datetime,
    step: Step,
    spans: Sequence[tuple[datetime, datetime]] = (),
) -> EnergyReport:
    """Energy per period and in total; also over each of ``spans`` (runs of whole
    periods, e.g. the year to date inside twelve months), from the same query."""
    bounds = bounds_of(site, start, end, step)
    span_indexes = _span_indexes(bounds, spans)
    balance_meters, unconverted = energy_meters(site, BALANCE_ROLES)
    submeters, unconverted_sub = energy_meters(site, (Role.SUBMETER,))
    energies = energy_in_wh(site, store, balance_meters + submeters, bounds)
    carriers = {m.carrier for m in balance_meters}
    factors = {c: f for c in carriers if (f := primary_factor(site, c)) is not None}
    # A carrier with a meter in m³ and no kwh_per_m3 has no known energy: no primary
    # figure (and so no verdict) until it is configured.
    blind = {m.carrier for m in unconverted}
    missing = sorted((carriers - factors.keys()) | blind)
    values = {c: f.value for c, f in factors.items() if c not in blind}

    def period(i: int, j: int) -> EnergyPeriod:
        per_carrier = _carrier_energy(balance_meters, energies, i, j)
        figures = energy_balance(per_carrier, values, site.floor_area_m2)
        if blind:
            figures = replace(
                figures,
                primary_net_whep=None,
                primary_net_whep_per_m2=None,
                missing_factors=tuple(sorted({*figures.missing_factors, *blind})),
            )
        # Each carrier's consumption split between its own sub-meters, by use.
        by_use: dict[Carrier, dict[Use, float]] = defaultdict(lambda: defaultdict(float))
        for m in submeters:
            by_use[m.carrier][m.use or Use.OTHER] += sum(energies[m.id].energy_wh[i:j])
        uses = {
            c: uses_breakdown(per_carrier[c].consumption_wh if c in per_carrier else 0.0, by_use[c])
            for c in sorted({m.carrier for m in submeters})
        }
        return EnergyPeriod(
            bounds[i],
            bounds[j],
            per_carrier,
            figures,
            uses or None,
            span_evidence([energies[m.id] for m in balance_meters], bounds, i, j),
            tuple(m.id for m in unconverted),
        )

    n = len(bounds) - 1
    return EnergyReport(
        site,
        [period(k, k + 1) for k in range(n)],
        period(0, n),
        factors,
        missing,
        energies,
        bounds,
        [period(i, j) for i, j in span_indexes],
        [m.id for m in unconverted + unconverted_sub],
    )


# --- carbon -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CarbonPeriod:
    start: datetime
    end: datetime
    figures: NetCarbon
    evidence: Evidence
    intensity_hours: int  # hours priced with the imported grid intensity series
    hours: int


@dataclass(frozen=True)
class CarbonReport:
    site: Site
    periods: list[CarbonPeriod]
    total: CarbonPeriod
    factors: dict[Carrier, Factor]
    missing_factors: list[Carrier]
    embodied: Embodied
    spans: list[CarbonPeriod] = field(default_factory=list)  # as asked, from the same query
    #: Meters in m³ without ``kwh_per_m3``: not priced, their carrier in missing_factors.
    unconverted_meters: list[str] = field(default_factory=list)


def carbon_report(
    site: Site,
    store: ReadingStore,
    ledger: Ledger,
    start: datetime,
    end: datetime,
    step: Step,
    spans: Sequence[tuple[datetime, datetime]] = (),
) -> CarbonReport:
    """Operational (imports × factor, hour by hour), avoided (exports × the same factor at
    the same hour), embodied amortised over the study period; net = op + emb − avoided.
    Also over each of ``spans`` (runs of whole periods), from the same query."""
    bounds = bounds_of(site, start, end, step)
    _span_indexes(bounds, spans)  # checks them
    hours = period_bounds(bounds[0], bounds[-1], Step.HOUR, site.tz)
    flows, unconverted = energy_meters(site, (Role.GRID_IMPORT, Role.GRID_EXPORT))
    energies = energy_in_wh(site, store, flows, hours)
    carriers = {m.carrier for m in flows}
    factors = {c: f for c in carriers if (f := carbon_factor(site, c)) is not None}
    # A carrier metered in m³ without kwh_per_m3 has no known energy: missing too.
    missing = sorted((carriers - factors.keys()) | {m.carrier for m in unconverted})
    # In UTC: a local hour of the repeated autumn hour (fold=1) never equals nor hashes
    # like an instant of another zone, and local aware datetimes compare by wall clock.
    starts = [h.astimezone(UTC) for h in hours[:-1]]
    # The grid's hourly intensity where it was imported, the constant factor elsewhere.
    series = {
        t.astimezone(UTC): v
        for t, v in store.hourly_means(
            site.id, INTENSITY_METER, INTENSITY_QUANTITY, bounds[0], bounds[-1]
        )
    }
    n_hours = len(starts)
    # Intensity of each hour for each priced meter: the grid's imported series where it
    # has the hour (electricity), the carrier's constant factor elsewhere.
    priced = [t in series for t in starts]
    intensity: dict[str, list[float]] = {}
    for m in flows:
        f = factors.get(m.carrier)
        if f is None:
            continue
        intensity[m.id] = [
            series[starts[h]] if m.carrier is Carrier.ELECTRICITY and priced[h] else f.value
            for h in range(n_hours)
        ]

    def co2_kg(role: Role, idx: list[int]) -> float:
        co2 = operational_co2_kg if role is Role.GRID_IMPORT else avoided_co2_kg
        return sum(
            co2([energies[m.id].energy_wh[h] for h in idx], [intensity[m.id][h] for h in idx])
            for m in flows
            if m.role is role and m.id in intensity
        )

    materials = [mat for _, mat in ledger.materials(site.id)]
    total_years = (bounds[-1].timestamp() - bounds[0].timestamp()) / YEAR_S
    embodied_total = embodied(materials, site.study_period_years, total_years)

    def period(a: datetime, b: datetime) -> CarbonPeriod:
        # The hours starting in [a, b), found by instant (bisect: linear in all).
        lo, hi = bisect_left(starts, a.astimezone(UTC)), bisect_left(starts, b.astimezone(UTC))
        idx = list(range(lo, hi))
        years = (b.timestamp() - a.timestamp()) / YEAR_S
        amortised = embodied(materials, site.study_period_years, years).amortised_kg
        figures = net_carbon(
            co2_kg(Role.GRID_IMPORT, idx), amortised, co2_kg(Role.GRID_EXPORT, idx)
        )
        return CarbonPeriod(
            a, b, figures, hourly_evidence(flows, idx), sum(priced[h] for h in idx), len(idx)
        )

    def hourly_evidence(meters: list[Meter], idx: list[int]) -> Evidence:
        if not meters or not idx:
            return Evidence(0.0, 0.0)
        coverage = min(sum(energies[m.id].coverage[h] for h in idx) / len(idx) for m in meters)
        estimated = sum(energies[m.id].estimated_wh[h] for m in meters for h in idx)
        return Evidence(coverage, estimated)

    periods = [period(a, b) for a, b in itertools.pairwise(bounds)]
    return CarbonReport(
        site,
        periods,
        period(bounds[0], bounds[-1]),
        factors,
        missing,
        embodied_total,
        [period(a, b) for a, b in spans],
        [m.id for m in unconverted],
    )
