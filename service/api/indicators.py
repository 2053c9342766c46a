"""Routes of the proof's figures: energy, carbon, waste and the per-target verdicts.
Handlers parse, call a use case, return a schema."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from domain.periods import Step
from service.api.deps import (
    LedgerDep,
    PeriodDep,
    SiteDep,
    StepQuery,
    StoreDep,
)
from service.api.limits import AuthorizedRoute
from service.api.proof_schemas import (
    CarbonOut,
    EnergyOut,
    TargetsOut,
    WasteOut,
)
from service.usecases.carbon import carbon_report
from service.usecases.energy import energy_report
from service.usecases.targets import targets_report
from service.usecases.waste import waste_report

router = APIRouter(prefix="/api/v1/sites/{site}", route_class=AuthorizedRoute)


@router.get("/energy", response_model=EnergyOut)
def get_energy(
    site: SiteDep, store: StoreDep, period: PeriodDep, step: StepQuery = Step.MONTH
) -> EnergyOut:
    """Final and primary energy balance per carrier, per m², uses, with coverage."""
    return EnergyOut.of(energy_report(site, store, period.start, period.end, step))


@router.get("/carbon", response_model=CarbonOut)
def get_carbon(
    site: SiteDep,
    store: StoreDep,
    ledger: LedgerDep,
    period: PeriodDep,
    step: StepQuery = Step.MONTH,
) -> CarbonOut:
    """Operational, avoided and amortised embodied carbon, and the net, with factors."""
    return CarbonOut.of(carbon_report(site, store, ledger, period.start, period.end, step))


WasteStep = Annotated[
    Literal["day", "month", "year"] | None,
    Query(description="Also per local day, month or year (cut at local boundaries)"),
]


@router.get("/waste", response_model=WasteOut)
def get_waste(
    site: SiteDep, store: StoreDep, ledger: LedgerDep, period: PeriodDep, step: WasteStep = None
) -> WasteOut:
    """Waste per stream and the diversion, recovery and reuse rates over the period, and
    per period of ``step`` when given."""
    report = waste_report(
        site, store, ledger, period.start, period.end, None if step is None else Step(step)
    )
    return WasteOut.of(report)


@router.get("/targets", response_model=TargetsOut)
def get_targets(site: SiteDep, store: StoreDep, ledger: LedgerDep, period: PeriodDep) -> TargetsOut:
    """Per target: met / not met / not provable, with the figures, factors and coverage."""
    return TargetsOut.of(targets_report(site, store, ledger, period.start, period.end))
