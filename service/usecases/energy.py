"""Energy use case: final and primary energy per carrier and use, per period, with the
coverage and the estimated share behind every figure and the factors with their sources.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from domain.balance import MeterEnergy
from domain.energy import (
    NOT_ENERGY,
    CarrierEnergy,
    EnergyBalance,
    UsesBreakdown,
    energy_balance,
    uses_breakdown,
)
from domain.factors import Factor, primary_factor
from domain.periods import Step
from domain.site import Carrier, Meter, Role, Site, Use
from domain.store import ReadingStore
from service.usecases.kernel import (
    Evidence,
    bounds_of,
    meter_energies,
    span_evidence,
    span_indexes,
)

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
    span_ij = span_indexes(bounds, spans)
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
        [period(i, j) for i, j in span_ij],
        [m.id for m in unconverted + unconverted_sub],
    )
