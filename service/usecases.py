"""The electricity balance use case (the walking skeleton's), on the shared machinery of
:mod:`microville.service.indicators`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from microville.domain.balance import Balance, MeterEnergy, balance
from microville.domain.periods import Step
from microville.domain.site import Carrier, Role, Site
from microville.domain.store import ReadingStore
from microville.service.indicators import (
    BALANCE_ROLES,
    Evidence,
    QueryError,
    bounds_of,
    evidence,
    meter_energies,
    weighted_coverage,
)

__all__ = ["BalanceReport", "QueryError", "electricity_balance"]


@dataclass(frozen=True)
class PeriodBalance:
    start: datetime
    end: datetime
    figures: Balance
    evidence: Evidence


@dataclass(frozen=True)
class MeterTotal:
    meter_id: str
    role: Role
    energy_wh: float
    estimated_wh: float
    coverage: float
    resets: int
    rollovers: int
    glitches: int


@dataclass(frozen=True)
class BalanceReport:
    site: Site
    step: Step
    periods: list[PeriodBalance]
    total: PeriodBalance
    meters: list[MeterTotal]


def electricity_balance(
    site: Site, store: ReadingStore, start: datetime, end: datetime, step: Step
) -> BalanceReport:
    """Electricity balance of ``site`` per ``step`` between ``start`` and ``end`` (local)."""
    bounds = bounds_of(site, start, end, step)
    meters = [m for role in BALANCE_ROLES for m in site.meters_with(role, Carrier.ELECTRICITY)]
    energies: dict[str, MeterEnergy] = meter_energies(site, store, meters, bounds)
    balance_energies = list(energies.values())

    def role_sum(role: Role, k: int | None) -> float:
        return sum(
            (sum(energies[m.id].energy_wh) if k is None else energies[m.id].energy_wh[k])
            for m in meters
            if m.role == role
        )

    def period(k: int | None) -> PeriodBalance:
        figures = balance(
            role_sum(Role.PRODUCTION, k),
            role_sum(Role.GRID_IMPORT, k),
            role_sum(Role.GRID_EXPORT, k),
        )
        a, b = (bounds[0], bounds[-1]) if k is None else (bounds[k], bounds[k + 1])
        # The weakest meter bounds what the period proves.
        return PeriodBalance(a, b, figures, evidence(balance_energies, k, bounds))

    return BalanceReport(
        site=site,
        step=step,
        periods=[period(k) for k in range(len(bounds) - 1)],
        total=period(None),
        meters=[
            MeterTotal(
                meter_id=m.id,
                role=m.role,
                energy_wh=sum(e.energy_wh),
                estimated_wh=sum(e.estimated_wh),
                coverage=weighted_coverage(e, bounds),
                resets=e.resets,
                rollovers=e.rollovers,
                glitches=e.glitches,
            )
            for m in meters
            for e in [energies[m.id]]
        ],
    )
