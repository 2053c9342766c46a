"""The electricity balance use case, and the day profiles of the heat map, on the query
kernel (:mod:`service.usecases.kernel`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from domain.balance import Balance, MeterEnergy, balance
from domain.periods import Step
from domain.site import Carrier, Role, Site
from domain.store import ReadingStore
from service.usecases.energy import BALANCE_ROLES
from service.usecases.kernel import (
    Evidence,
    QueryError,
    bounds_of,
    evidence,
    meter_energies,
    weighted_coverage,
)

__all__ = ["BalanceReport", "DayProfile", "QueryError", "day_profiles", "electricity_balance"]


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


#: The flows a day profile can show (fields of :class:`~domain.balance.Balance`).
PROFILE_FLOWS = ("import", "export", "production", "consumption", "net")


@dataclass(frozen=True)
class DayProfile:
    """One local day of a flow, hour by hour.

    ``hours_wh[h]`` is the flow [Wh] during the local clock hour ``h`` (0–23): the
    repeated autumn hour adds both of its hours into ``hours_wh[2]``; the skipped spring
    hour is ``None``. ``coverage`` is the day's, as in the balance."""

    start: datetime
    hours_wh: list[float | None]
    coverage: float


def day_profiles(
    site: Site, store: ReadingStore, start: datetime, end: datetime, flow: str
) -> list[DayProfile]:
    """Electricity ``flow`` per local clock hour of each local day between ``start``
    and ``end`` (the heat map of the day), from the hourly balance."""
    if flow not in PROFILE_FLOWS:
        raise QueryError(f"flow: {flow!r} is not one of {', '.join(PROFILE_FLOWS)}")
    days = electricity_balance(site, store, start, end, Step.DAY).periods
    hours = electricity_balance(site, store, start, end, Step.HOUR).periods
    out: list[DayProfile] = []
    i = 0
    for day in days:
        values: list[float | None] = [None] * 24
        # In UTC: aware times sharing a tzinfo compare by wall clock (the autumn hour).
        while i < len(hours) and hours[i].end.astimezone(UTC) <= day.end.astimezone(UTC):
            h = hours[i]
            wh = getattr(h.figures, f"{flow}_wh")
            slot = h.start.astimezone(site.tz).hour
            values[slot] = wh + (values[slot] or 0.0)
            i += 1
        out.append(DayProfile(day.start, values, day.evidence.coverage))
    return out
