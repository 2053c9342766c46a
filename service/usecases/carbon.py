"""Carbon use case: operational, avoided and embodied carbon per period, with the factors
used and their sources.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from domain.carbon import NetCarbon, avoided_co2_kg, net_carbon, operational_co2_kg
from domain.factors import Factor, carbon_factor
from domain.materials import Embodied, embodied
from domain.periods import Step, period_bounds
from domain.readings import INTENSITY_METER, INTENSITY_QUANTITY
from domain.site import Carrier, Meter, Role, Site
from domain.store import Ledger, ReadingStore
from service.usecases.energy import energy_in_wh, energy_meters
from service.usecases.kernel import (
    YEAR_S,
    Evidence,
    bounds_of,
    span_indexes,
)


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
    span_indexes(bounds, spans)  # checks them
    hours = period_bounds(bounds[0], bounds[-1], Step.HOUR, site.tz)
    flows, unconverted = energy_meters(site, (Role.GRID_IMPORT, Role.GRID_EXPORT))
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
    # Energy hour by hour where the intensity varies, and over whole stretches where it
    # is constant (the factor): Σ E·f = f·ΣE, and the stretches are read from the
    # rollups. The figures are those of an hour-by-hour sum.
    parts = _parts(bounds, starts, series)
    energies = energy_in_wh(site, store, flows, parts)
    part_starts = [p.astimezone(UTC) for p in parts[:-1]]
    durations = [(b - a).total_seconds() for a, b in itertools.pairwise(parts)]
    priced = [t in series for t in part_starts]
    intensity: dict[str, list[float]] = {}
    for m in flows:
        f = factors.get(m.carrier)
        if f is None:
            continue
        intensity[m.id] = [
            series[part_starts[k]] if m.carrier is Carrier.ELECTRICITY and priced[k] else f.value
            for k in range(len(part_starts))
        ]

    def co2_kg(role: Role, idx: list[int]) -> float:
        co2 = operational_co2_kg if role is Role.GRID_IMPORT else avoided_co2_kg
        return sum(
            co2([energies[m.id].energy_wh[k] for k in idx], [intensity[m.id][k] for k in idx])
            for m in flows
            if m.role is role and m.id in intensity
        )

    materials = [mat for _, mat in ledger.materials(site.id)]
    total_years = (bounds[-1].timestamp() - bounds[0].timestamp()) / YEAR_S
    embodied_total = embodied(materials, site.study_period_years, total_years)

    def period(a: datetime, b: datetime) -> CarbonPeriod:
        # The parts (and hours) starting in [a, b), found by instant.
        lo, hi = (
            bisect_left(part_starts, a.astimezone(UTC)),
            bisect_left(part_starts, b.astimezone(UTC)),
        )
        idx = list(range(lo, hi))
        n_hours = bisect_left(starts, b.astimezone(UTC)) - bisect_left(starts, a.astimezone(UTC))
        years = (b.timestamp() - a.timestamp()) / YEAR_S
        amortised = embodied(materials, site.study_period_years, years).amortised_kg
        figures = net_carbon(
            co2_kg(Role.GRID_IMPORT, idx), amortised, co2_kg(Role.GRID_EXPORT, idx)
        )
        return CarbonPeriod(
            a, b, figures, evidence_of(flows, idx), sum(priced[k] for k in idx), n_hours
        )

    def evidence_of(meters: list[Meter], idx: list[int]) -> Evidence:
        if not meters or not idx:
            return Evidence(0.0, 0.0)
        span = sum(durations[k] for k in idx)
        coverage = min(
            sum(energies[m.id].coverage[k] * durations[k] for k in idx) / span for m in meters
        )
        estimated = sum(energies[m.id].estimated_wh[k] for m in meters for k in idx)
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


def _parts(
    bounds: list[datetime], starts: list[datetime], series: dict[datetime, float]
) -> list[datetime]:
    """The period bounds, cut further around each hour (of ``starts``, UTC) the intensity
    ``series`` holds: the stretches between are priced at one constant factor."""
    cuts = {b.astimezone(UTC) for b in bounds}
    hour = timedelta(hours=1)
    for t in starts:
        if t in series:
            cuts |= {t, t + hour}
    last = bounds[-1].astimezone(UTC)
    return sorted(c for c in cuts if c <= last)
