"""Routes of the ledger: the materials of the renovation and the waste entries, listed,
added (JSON or CSV) and deleted."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException

from domain.materials import Material, parse_materials_csv
from service.api.deps import (
    LedgerDep,
    MaxRowsDep,
    PeriodDep,
    RecordId,
    SiteDep,
)
from service.api.limits import AuthorizedRoute, too_many_rows
from service.api.proof_schemas import (
    MaterialOut,
    WasteEntryIn,
    WasteEntryOut,
)

router = APIRouter(prefix="/api/v1/sites/{site}", route_class=AuthorizedRoute)


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
