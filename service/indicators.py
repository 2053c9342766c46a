"""Use cases behind the proof: energy (final and primary), carbon, waste, targets.

Each takes a site, the stores and a period, and returns plain results with the coverage
and the estimated share behind every figure, and the factors used with their sources.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from microville.domain.balance import MeterEnergy, energy_per_period
from microville.domain.carbon import NetCarbon, avoided_co2_kg, net_carbon, operational_co2_kg
from microville.domain.energy import (
    NOT_ENERGY,
    CarrierEnergy,
    EnergyBalance,
    UsesBreakdown,
    energy_balance,
    uses_breakdown,
)
from microville.domain.factors import Factor, carbon_factor, primary_factor
from microville.domain.materials import Embodied, embodied
from microville.domain.periods import Step, common_slot, period_bounds
from microville.domain.records import Phase, WasteEntry
from microville.domain.site import Carrier, Meter, Role, Site, Use
from microville.domain.store import ReadingStore
from microville.domain.targets import Verdict, judge
from microville.domain.waste import (
    WasteIndicators,
    WasteStream,
    collection_coverage,
    waste_indicators,
)
from microville.stores.ledger import Ledger

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
        # and a gap across either end split as inside a longer query: a month is the
        # same days of a year (energy_per_period).
        window = max(m.quality.glitch_window_s for m in group)
        reach = slot * (math.ceil(window / slot.total_seconds()) + 1)
        since = bounds[0] - reach
        series = store.index_slots(
            site.id, [m.id for m in group], quantity, since, bounds[-1] + 3 * reach, slot
        )
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


# --- waste --------------------------------------------------------------------------------

DAY_S = 86400


@dataclass(frozen=True)
class WastePeriod:
    """One period's waste: operation per stream, the renovation ledger apart."""

    start: datetime
    end: datetime
    mass_kg: dict[WasteStream, float]
    indicators: WasteIndicators
    renovation_kg: dict[WasteStream, float]
    renovation: WasteIndicators
    coverage: float


@dataclass(frozen=True)
class RenovationLine:
    """A line of the works' récolement (Cerfa 16288): a stream (recovery route), its
    destination and material, with the mass and the number of entries behind it."""

    stream: WasteStream
    destination: str
    material: str
    mass_kg: float
    entries: int


@dataclass(frozen=True)
class WasteReport:
    site: Site
    start: datetime
    end: datetime
    mass_kg: dict[WasteStream, float]
    indicators: WasteIndicators
    renovation_kg: dict[WasteStream, float]
    renovation: WasteIndicators
    coverage: float
    sources: dict[str, int] = field(default_factory=dict)
    #: Ids of the period's ledger rows that do not read as entries: the figures
    #: cannot be proven while they stand.
    unreadable_entries: list[int] = field(default_factory=list)
    #: Per period of ``step`` (empty without a step).
    step: Step | None = None
    periods: list[WastePeriod] = field(default_factory=list)
    renovation_lines: list[RenovationLine] = field(default_factory=list)


def _renovation_lines(entries: Sequence[WasteEntry]) -> list[RenovationLine]:
    lines: dict[tuple[WasteStream, str, str], list[float]] = defaultdict(list)
    for e in entries:
        lines[(e.stream, e.destination, e.material)].append(e.mass_kg)
    order = list(WasteStream)
    return [
        RenovationLine(stream, destination, material, math.fsum(kg), len(kg))
        for (stream, destination, material), kg in sorted(
            lines.items(), key=lambda item: (order.index(item[0][0]), *item[0][1:])
        )
    ]


def waste_report(
    site: Site,
    store: ReadingStore,
    ledger: Ledger,
    start: datetime,
    end: datetime,
    step: Step | None = None,
) -> WasteReport:
    """Operational waste per stream from the scales (waste meters) and the entries; the
    renovation ledger apart, also line by line (stream, destination, material); per
    period of ``step`` when given.

    Mass: a counter scale's rise (its cumulative index, quality rules applied), a
    weighing scale's weighings added up in the store, the entries of the period.
    Coverage, the lowest over the sources: each counter scale's share of slots with a
    reading; for each weighing scale (within its ``weighing_interval_days``) and for
    the manual entries (within ``waste_entry_interval_days``, unless 0), the share of
    the period weighed within that interval
    (:func:`~microville.domain.waste.collection_coverage`); 0 with no source."""
    bounds = bounds_of(site, start, end, step or Step.YEAR)
    n = len(bounds) - 1
    edges = [b.timestamp() for b in bounds]
    scales = [m for m in site.meters if m.role is Role.WASTE]
    counters = [m for m in scales if m.scale == "counter"]
    weighers = [m for m in scales if m.scale == "weighing"]
    interval_s = site.waste_entry_interval_days * DAY_S
    energies = meter_energies(site, store, counters, bounds) if counters else {}
    slot = common_slot(bounds)
    # Weighings after the end count for the coverage of the last days, not for the mass.
    longest = max([interval_s, *(m.weighing_interval_days * DAY_S for m in weighers)])
    ahead = slot * math.ceil(longest / slot.total_seconds())
    weighings = (
        store.slot_sums(
            site.id, [m.id for m in weighers], "mass", bounds[0], bounds[-1] + ahead, slot
        )
        if weighers
        else {}
    )
    records, unreadable = ledger.waste_records(
        site.id, bounds[0], bounds[-1] + timedelta(seconds=interval_s)
    )
    inside = [e for _, e in records if e.time < bounds[-1]]
    collections = sorted(e.time.timestamp() for _, e in records if e.phase is Phase.OPERATION)
    weighed = {m.id: [w.start.timestamp() for w in weighings[m.id]] for m in weighers}

    def period_of(t: float) -> int | None:
        k = bisect_right(edges, t) - 1
        return k if 0 <= k < n else None

    operation: list[dict[WasteStream, float]] = [defaultdict(float) for _ in range(n)]
    renovation: list[dict[WasteStream, float]] = [defaultdict(float) for _ in range(n)]
    for m in counters:
        assert m.stream is not None
        for k in range(n):
            operation[k][m.stream] += energies[m.id].energy_wh[k]  # kg: the base unit
    for m in weighers:
        assert m.stream is not None
        for w in weighings[m.id]:
            if (at := period_of(w.start.timestamp())) is not None:
                operation[at][m.stream] += w.total
    for e in inside:
        if (at := period_of(e.time.timestamp())) is not None:
            target = renovation if e.phase is Phase.RENOVATION else operation
            target[at][e.stream] += e.mass_kg

    def coverage(i: int, j: int) -> float:
        parts = [weighted_coverage(energies[m.id], bounds, i, j) for m in counters]
        parts += [
            collection_coverage(weighed[m.id], edges[i], edges[j], m.weighing_interval_days * DAY_S)
            for m in weighers
        ]
        if interval_s:
            parts.append(collection_coverage(collections, edges[i], edges[j], interval_s))
        return min(parts, default=0.0)

    def summed(masses: list[dict[WasteStream, float]], i: int, j: int) -> dict[WasteStream, float]:
        out: dict[WasteStream, float] = defaultdict(float)
        for k in range(i, j):
            for stream, kg in masses[k].items():
                out[stream] += kg
        return dict(out)

    def period(i: int, j: int) -> WastePeriod:
        op, ren = summed(operation, i, j), summed(renovation, i, j)
        return WastePeriod(
            bounds[i],
            bounds[j],
            op,
            waste_indicators(op, site.floor_area_m2, site.occupants),
            ren,
            waste_indicators(ren, site.floor_area_m2, site.occupants),
            coverage(i, j),
        )

    total = period(0, n)
    return WasteReport(
        site,
        bounds[0],
        bounds[-1],
        total.mass_kg,
        total.indicators,
        total.renovation_kg,
        total.renovation,
        total.coverage,
        {
            "scales": len(scales),
            "entries": sum(1 for e in inside if e.phase is Phase.OPERATION),
            "renovation_entries": sum(1 for e in inside if e.phase is Phase.RENOVATION),
        },
        [i for i, _ in unreadable],
        step,
        [period(k, k + 1) for k in range(n)] if step is not None else [],
        _renovation_lines([e for e in inside if e.phase is Phase.RENOVATION]),
    )


# --- targets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    """One figure judged against one threshold."""

    figure: str
    value: float | None
    threshold: float
    direction: Literal["min", "max"]
    verdict: Verdict
    #: Share of the data behind this figure, in [0, 1].
    coverage: float


@dataclass(frozen=True)
class Judgement:
    target: str
    verdict: Verdict
    criteria: list[Criterion]
    coverage: float
    #: The meters behind the figures (their quality in the report's meters).
    meters: tuple[str, ...] = ()
    #: What the verdict does not cover, or how a figure was obtained.
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TargetsReport:
    site: Site
    start: datetime
    end: datetime
    judgements: list[Judgement]
    energy: EnergyReport
    carbon: CarbonReport
    waste: WasteReport


#: (figure, value, threshold or None when the target is not set, direction)
_Figure = tuple[str, float | None, float | None, Literal["min", "max"]]


def _judge(
    target: str,
    figures: list[_Figure],
    coverage: float,
    min_coverage: float,
    meters: Sequence[Meter] = (),
    notes: Sequence[str] = (),
    coverages: dict[str, float] | None = None,
) -> Judgement | None:
    """The target's verdict from its configured criteria (those with a threshold), each
    judged on its own coverage (``coverages`` by figure, else ``coverage``); the
    judgement's coverage is the lowest of its criteria's."""
    own = coverages or {}
    criteria = [
        Criterion(name, value, threshold, direction,
                  judge(value, threshold, direction, own.get(name, coverage), min_coverage),
                  own.get(name, coverage))
        for name, value, threshold, direction in figures
        if threshold is not None
    ]  # fmt: skip
    if not criteria:
        return None
    verdict = _combine([c.verdict for c in criteria])
    lowest = min(c.coverage for c in criteria)
    return Judgement(target, verdict, criteria, lowest, tuple(m.id for m in meters), tuple(notes))


def _combine(verdicts: list[Verdict]) -> Verdict:
    if any(v is Verdict.NOT_PROVABLE for v in verdicts):
        return Verdict.NOT_PROVABLE
    return Verdict.MET if all(v is Verdict.MET for v in verdicts) else Verdict.NOT_MET


def targets_report(
    site: Site, store: ReadingStore, ledger: Ledger, start: datetime, end: datetime
) -> TargetsReport:
    energy = energy_report(site, store, start, end, Step.YEAR)
    carbon = carbon_report(site, store, ledger, start, end, Step.YEAR)
    waste = waste_report(site, store, ledger, start, end)
    judgements = judge_targets(site, energy, carbon, waste)
    return TargetsReport(
        site, energy.total.start, energy.total.end, judgements, energy, carbon, waste
    )


def _entries(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


def judge_targets(
    site: Site, energy: EnergyReport, carbon: CarbonReport, waste: WasteReport
) -> list[Judgement]:
    """The verdict of each configured target over the reports' whole period."""
    t = site.targets
    primary_whep = energy.total.balance.primary_net_whep
    primary_kwh = primary_whep / 1000 if primary_whep is not None else None
    net_carbon_kg = carbon.total.figures.net_kg if not carbon.missing_factors else None
    w = waste.indicators
    # An unreadable ledger row of the period: its mass is unknown, no figure is proven.
    readable = not waste.unreadable_entries
    positive: _Figure = (
        "primary_energy_balance_kwh",
        primary_kwh,
        t.primary_energy_balance_min_kwh,
        "min",
    )
    # L541-1's 70 % concerns construction and demolition waste: the works' ledger, judged
    # beside the operation when the period has renovation entries.
    works = waste.sources.get("renovation_entries", 0)
    renovation: list[_Figure] = []
    if not works:
        renovation_note = "no renovation ledger in the period: operation waste only"
    elif t.renovation_material_recovery_rate_min is None:
        renovation_note = (
            "renovation ledger not judged: renovation_material_recovery_rate_min unset"
        )
    elif readable and waste.renovation.generated_kg == 0:
        # Réemploi only: no construction waste, nothing for the 70 % to apply to.
        renovation_note = f"renovation ledger: {_entries(works)}, reuse only (no waste generated)"
    else:
        rate = waste.renovation.material_recovery_rate if readable else None
        renovation.append(
            ("renovation_material_recovery_rate", rate,
             t.renovation_material_recovery_rate_min, "min")
        )  # fmt: skip
        renovation_note = f"renovation ledger: {_entries(works)} (the récolement as entered)"
    balance_meters = [m for m in site.meters if m.role in BALANCE_ROLES]
    flows = [m for m in balance_meters if m.role in (Role.GRID_IMPORT, Role.GRID_EXPORT)]
    scales = [m for m in site.meters if m.role is Role.WASTE]
    candidates = [
        _judge("positive_energy", [positive], energy.total.evidence.coverage, t.min_coverage,
               balance_meters),
        _judge("zero_carbon", [("net_carbon_kg", net_carbon_kg, t.net_carbon_max_kg, "max")],
               carbon.total.evidence.coverage, t.min_coverage, flows),
        _judge("zero_waste",
               [("residual_kg", w.residual_kg if readable else None,
                 t.residual_waste_max_kg, "max"),
                # L541-1's target: material recovery (energy recovery does not count).
                ("material_recovery_rate", w.material_recovery_rate if readable else None,
                 t.material_recovery_rate_min, "min"),
                ("diversion_rate", w.diversion_rate if readable else None,
                 t.diversion_rate_min, "min"),
                *renovation],
               waste.coverage, t.min_coverage, scales, [renovation_note],
               {name: 1.0 for name, *_ in renovation}),
    ]  # fmt: skip
    return [j for j in candidates if j is not None]
