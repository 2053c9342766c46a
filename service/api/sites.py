"""Routes of the sites: the list, one site, its electricity balance and day profiles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from domain.periods import Step
from service.access.auth import PrincipalDep
from service.api.deps import PeriodDep, SiteDep, SitesDep, StepQuery, StoreDep
from service.api.limits import AuthorizedRoute
from service.api.schemas import BalanceOut, DayProfileOut, ProfileOut, SiteOut
from service.usecases.balance import day_profiles, electricity_balance

router = APIRouter(prefix="/api/v1/sites", route_class=AuthorizedRoute)


@router.get("", response_model=list[SiteOut])
def list_sites(sites: SitesDep, principal: PrincipalDep) -> list[SiteOut]:
    """The sites the caller may read, and their meters."""
    return [SiteOut.of(s) for s in sites.sites if principal.can_read(s.id)]


@router.get("/{site}", response_model=SiteOut)
def get_site(site: SiteDep) -> SiteOut:
    """One site: its timezone (the dashboards cut their InfluxQL days with it), its
    location and floor area, and its meters."""
    return SiteOut.of(site)


@router.get("/{site}/balance", response_model=BalanceOut)
def get_balance(
    site: SiteDep, store: StoreDep, period: PeriodDep, step: StepQuery = Step.DAY
) -> BalanceOut:
    """Electricity balance per local hour/day/month/year, with its coverage."""
    return BalanceOut.of(electricity_balance(site, store, period.start, period.end, step))


@router.get("/{site}/profile", response_model=ProfileOut)
def get_profile(
    site: SiteDep,
    store: StoreDep,
    period: PeriodDep,
    flow: Annotated[
        str, Query(description="import, export, production, consumption or net")
    ] = "import",
) -> ProfileOut:
    """The heat map of the day: an electricity flow per local clock hour of each local
    day (kWh), DST days included."""
    days = day_profiles(site, store, period.start, period.end, flow)
    return ProfileOut(
        site=site.id,
        timezone=site.timezone,
        flow=flow,
        days=[DayProfileOut.of(d) for d in days],
    )
