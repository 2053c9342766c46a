"""``microville import``: load data files (grid carbon intensity, materials ledger)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import (
    ConfigOpt,
    StoreOpt,
    WholeHelpGroup,
    console,
    load_sites,
    read_text,
    refused_at_start,
    settings_from,
    site_of,
)
from microville.settings import reveal

import_app = typer.Typer(
    cls=WholeHelpGroup,
    rich_markup_mode=None,
    help="Load data files: grid carbon intensity, materials ledger.",
)


@import_app.command("carbon-intensity")
def import_carbon_intensity(
    file: Annotated[
        Path,
        typer.Argument(help="RTE éCO2mix CSV (date_heure;taux_co2 or Date;Heures;…;Taux de Co2)"),
    ],
    site: Annotated[str, typer.Option(help="Site whose grid this is")],
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Load a time series of grid carbon intensity (g/kWh), matched hour by hour with
    the site's imports and exports in the carbon indicators."""
    from domain.eco2mix import parse_eco2mix_csv
    from domain.readings import INTENSITY_METER, INTENSITY_QUANTITY, Reading
    from stores import open_store

    settings = settings_from(config, store, None)
    chosen = site_of(load_sites(settings), site)
    try:
        samples = parse_eco2mix_csv(read_text(file))
    except ValueError as exc:
        console.print(f"[red]invalid file[/red] {file}:", end=" ", highlight=False)
        console.print(str(exc), markup=False)
        raise typer.Exit(2) from None
    readings = [
        Reading(chosen.id, INTENSITY_METER, INTENSITY_QUANTITY, g_per_kwh / 1000, t)
        for t, g_per_kwh in samples
    ]
    with refused_at_start("the import"):
        target = open_store(settings.store_url, reveal(settings.influx_token))
    try:
        for i in range(0, len(readings), 5000):
            target.write(readings[i : i + 5000])
    finally:
        target.close()
    span = f"{samples[0][0]:%Y-%m-%d} → {samples[-1][0]:%Y-%m-%d}" if samples else "nothing"
    console.print(f"imported {len(readings)} carbon-intensity values for {chosen.id} ({span})")


@import_app.command("materials")
def import_materials(
    file: Annotated[Path, typer.Argument(help="Materials CSV (docs/reference/indicators.md)")],
    site: Annotated[str, typer.Option(help="Site renovated with these materials")],
    config: ConfigOpt = None,
) -> None:
    """Add the renovation's materials (quantities, EPD/FDES factors, reuse, biogenic
    carbon) to the ledger: all rows or none."""
    from domain.materials import parse_materials_csv
    from stores.ledger import SqliteLedger

    settings = settings_from(config, None, None)
    chosen = site_of(load_sites(settings), site)
    try:
        materials = parse_materials_csv(read_text(file))
    except ValueError as exc:
        console.print(
            f"[red]invalid file, nothing imported[/red] {file}:", end=" ", highlight=False
        )
        console.print(str(exc), markup=False)
        raise typer.Exit(2) from None
    with refused_at_start("the import"):
        ledger = SqliteLedger(settings.ledger_path)
    try:
        ids = ledger.add_materials(chosen.id, materials)
    finally:
        ledger.close()
    console.print(f"imported {len(ids)} materials for {chosen.id} into {settings.ledger_path}")
