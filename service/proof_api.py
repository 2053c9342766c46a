"""Routes of the proof: energy, carbon, waste, the ledger (materials, waste entries) and
the per-target verdicts. Handlers parse, call a use case, return a schema."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException, Query

from domain.materials import Material, parse_materials_csv
from domain.periods import Step
from service.deps import (
    LedgerDep,
    MaxRowsDep,
    PeriodDep,
    RecordId,
    SiteDep,
    StepQuery,
    StoreDep,
)
from service.indicators import carbon_report, energy_report
from service.limits import AuthorizedRoute, too_many_rows
from service.proof_schemas import (
    CarbonOut,
    EnergyOut,
    MaterialOut,
    TargetsOut,
    WasteEntryIn,
    WasteEntryOut,
    WasteOut,
)
from service.targets_report import targets_report
from service.waste_report import waste_report

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


@router.get("/materials", response_model=list[MaterialOut])
def list_materials(site: SiteDep, ledger: LedgerDep) -> list[MaterialOut]:
    return [MaterialOut(id=i, material=m) for i, m in ledger.materials(site.id)]


@router.post("/materials", response_model=list[MaterialOut], status_code=201)
def add_materials(
    site: SiteDep, ledger: LedgerDep, max_rows: MaxRowsDep, materials: list[Material]
) -> list[MaterialOut]:
    """Add materials (all or none: the body is validated first); at most
    ``MICROVILLE_API_MAX_ROWS`` (10,000) a request."""
    if len(materials) > max_rows:
        raise too_many_rows(len(materials), max_rows)
    ids = ledger.add_materials(site.id, materials)
    return [MaterialOut(id=i, material=m) for i, m in zip(ids, materials, strict=True)]


@router.post("/materials/csv", response_model=list[MaterialOut], status_code=201)
def import_materials_csv(
    site: SiteDep,
    ledger: LedgerDep,
    max_rows: MaxRowsDep,
    text: Annotated[str, Body(media_type="text/csv", description="materials CSV with a header")],
) -> list[MaterialOut]:
    """Import a materials CSV: bad rows are reported (422: the first 20, then a count)
    and nothing is written; at most ``MICROVILLE_API_MAX_ROWS`` (10,000) rows a request."""
    try:
        materials = parse_materials_csv(text)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if len(materials) > max_rows:
        raise too_many_rows(len(materials), max_rows)
    ids = ledger.add_materials(site.id, materials)
    return [MaterialOut(id=i, material=m) for i, m in zip(ids, materials, strict=True)]


@router.delete("/materials/{material_id}", status_code=204)
def delete_material(site: SiteDep, ledger: LedgerDep, material_id: RecordId) -> None:
    if not ledger.delete_material(site.id, material_id):
        raise HTTPException(404, f"no material {material_id} for site {site.id!r}")


@router.get("/waste-entries", response_model=list[WasteEntryOut])
def list_waste_entries(site: SiteDep, ledger: LedgerDep, period: PeriodDep) -> list[WasteEntryOut]:
    return [
        WasteEntryOut(id=i, entry=e)
        for i, e in ledger.waste_entries(site.id, period.start, period.end)
    ]


@router.post("/waste-entries", response_model=list[WasteEntryOut], status_code=201)
def add_waste_entries(
    site: SiteDep, ledger: LedgerDep, max_rows: MaxRowsDep, entries: list[WasteEntryIn]
) -> list[WasteEntryOut]:
    """Add weighings or collections (all or none); at most ``MICROVILLE_API_MAX_ROWS``
    (10,000) a request."""
    if len(entries) > max_rows:
        raise too_many_rows(len(entries), max_rows)
    ids = ledger.add_waste_entries(site.id, entries)
    return [WasteEntryOut(id=i, entry=e) for i, e in zip(ids, entries, strict=True)]


@router.delete("/waste-entries/{entry_id}", status_code=204)
def delete_waste_entry(site: SiteDep, ledger: LedgerDep, entry_id: RecordId) -> None:
    if not ledger.delete_waste_entry(site.id, entry_id):
        raise HTTPException(404, f"no waste entry {entry_id} for site {site.id!r}")
