"""``microville rollup``: rebuild the stores' rollups from the raw readings, or prove them.

Both stores keep their rollups exact as they write (docs/reference/reliability.md); a
SQLite file from before is rolled up when it is opened. These commands are for an
InfluxDB database from before the rollups, for data changed behind the store's back
(a ``DELETE`` in the influx shell), and for an auditor who wants the proof.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.progress import Progress

from cli.common import (
    ConfigOpt,
    StoreOpt,
    WholeHelpGroup,
    console,
    load_sites,
    refused_at_start,
    settings_from,
    site_of,
)
from microville.settings import reveal

if TYPE_CHECKING:
    from domain.store import RollupMaintenance

rollup_app = typer.Typer(
    cls=WholeHelpGroup,
    rich_markup_mode=None,
    help="The stores' rollups: rebuild them from the raw readings, or verify them.",
)

SiteOpt = Annotated[str | None, typer.Option("--site", help="Only this site (default: all)")]
SinceOpt = Annotated[
    datetime | None,
    typer.Option("--since", help="From this UTC day on (ISO date or time; default: all)"),
]


def _open(config: Path | None, store: str | None, site: str | None) -> RollupMaintenance:
    from stores import open_store

    settings = settings_from(config, store, None)
    if site is not None:
        site_of(load_sites(settings), site)  # an unknown site is an error, not "0 days"
    with refused_at_start("the rollup command"):
        return cast(
            "RollupMaintenance", open_store(settings.store_url, reveal(settings.influx_token))
        )


@rollup_app.command("rebuild")
def rollup_rebuild(
    site: SiteOpt = None, since: SinceOpt = None, config: ConfigOpt = None, store: StoreOpt = None
) -> None:
    """Recompute the rollups from the raw readings (whole UTC days). On InfluxDB, stop
    the gateways first: their days in progress are marked clean by the rebuild."""
    from domain.store import StoreError

    target = _open(config, store, site)
    try:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("rolling up", total=None)
            days = target.rebuild_rollups(
                site, since, lambda done, total: bar.update(task, completed=done, total=total)
            )
    except StoreError as exc:
        console.print("[red]rebuild failed:[/red]", end=" ")
        console.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(1) from None
    finally:
        target.close()
    console.print(f"rolled up {days} days", highlight=False)


@rollup_app.command("verify")
def rollup_verify(
    site: SiteOpt = None,
    since: SinceOpt = None,
    until: Annotated[
        datetime | None, typer.Option("--until", help="Up to this UTC day (default: all)")
    ] = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Compare the rollups with the raw readings and name every slot that differs
    (exit code 1), or say they are exact."""
    from domain.store import StoreError

    target = _open(config, store, site)
    try:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("verifying", total=None)
            problems = target.verify_rollups(
                site,
                since,
                until,
                lambda done, total: bar.update(task, completed=done, total=total),
            )
    except StoreError as exc:
        console.print("[red]verify failed:[/red]", end=" ")
        console.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(1) from None
    finally:
        target.close()
    for line in problems:
        console.print(line, markup=False, highlight=False)
    if problems:
        console.print(f"[red]{len(problems)} rollup slots differ from the raw readings[/red]")
        raise typer.Exit(1)
    console.print("rollups exact: every slot equals what the raw readings give")
