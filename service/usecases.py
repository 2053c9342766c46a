"""Use cases behind the API: each takes explicit inputs and a store, returns a result."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

from microville.domain.balance import Balance, MeterEnergy, balance, energy_per_period
from microville.domain.periods import Step, common_slot, period_bounds
from microville.domain.site import Role, Site
from microville.domain.store import ReadingStore

#: Refuse queries that would return more periods than anyone can read.
MAX_PERIODS = 100_000

BALANCE_ROLES = (Role.PRODUCTION, Role.GRID_IMPORT, Role.GRID_EXPORT)


class QueryError(ValueError):
    """The request is well-formed but cannot be answered as asked."""


@dataclass(frozen=True)
class PeriodBalance:
    start: datetime
    end: datetime
    figures: Balance
    coverage: float


@dataclass(frozen=True)
class MeterTotal:
    meter_id: str
    role: Role
    energy_wh: float
    coverage: float
    backward_jumps: int


@dataclass(frozen=True)
class BalanceReport:
    site: Site
    step: Step
    periods: list[PeriodBalance]
    total: PeriodBalance
    meters: list[MeterTotal]


def _weighted(values: list[float], bounds: list[datetime]) -> float:
    durations = [b.timestamp() - a.timestamp() for a, b in itertools.pairwise(bounds)]
    return sum(v * d for v, d in zip(values, durations, strict=True)) / sum(durations)


def electricity_balance(
    site: Site, store: ReadingStore, start: datetime, end: datetime, step: Step
) -> BalanceReport:
    """Electricity balance of ``site`` per ``step`` between ``start`` and ``end`` (local)."""
    tz = site.tz
    try:
        bounds = period_bounds(start, end, step, tz)
    except ValueError as exc:
        raise QueryError(str(exc)) from None
    if len(bounds) - 1 > MAX_PERIODS:
        raise QueryError(
            f"{len(bounds) - 1} periods asked; at most {MAX_PERIODS}: use a larger step"
        )
    slot = common_slot(bounds)
    meters = [m for role in BALANCE_ROLES for m in site.meters_with(role)]
    series = store.index_slots(
        site.id, [m.id for m in meters], "energy", bounds[0], bounds[-1], slot
    )
    energies: dict[str, MeterEnergy] = {
        m.id: energy_per_period(series[m.id], bounds, slot) for m in meters
    }

    def role_sum(role: Role, k: int) -> float:
        return sum(energies[m.id].energy_wh[k] for m in meters if m.role == role)

    periods = []
    for k in range(len(bounds) - 1):
        figures = balance(
            role_sum(Role.PRODUCTION, k),
            role_sum(Role.GRID_IMPORT, k),
            role_sum(Role.GRID_EXPORT, k),
        )
        # The weakest meter bounds what the period proves.
        coverage = min((energies[m.id].coverage[k] for m in meters), default=0.0)
        periods.append(PeriodBalance(bounds[k], bounds[k + 1], figures, coverage))

    totals = balance(
        *(
            sum(getattr(p.figures, f) for p in periods)
            for f in ("production_wh", "import_wh", "export_wh")
        )
    )
    total_coverage = min((_weighted(energies[m.id].coverage, bounds) for m in meters), default=0.0)
    return BalanceReport(
        site=site,
        step=step,
        periods=periods,
        total=PeriodBalance(bounds[0], bounds[-1], totals, total_coverage),
        meters=[
            MeterTotal(
                meter_id=m.id,
                role=m.role,
                energy_wh=sum(energies[m.id].energy_wh),
                coverage=_weighted(energies[m.id].coverage, bounds),
                backward_jumps=energies[m.id].backward_jumps,
            )
            for m in meters
        ],
    )
