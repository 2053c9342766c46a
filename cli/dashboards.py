"""``microville dashboards``: push the Grafana dashboards to a running Grafana."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import WholeHelpGroup, console

dashboards_app = typer.Typer(
    cls=WholeHelpGroup,
    rich_markup_mode=None,
    help="Grafana dashboards: push them to a running Grafana.",
)


@dashboards_app.command("push")
def dashboards_push(
    url: Annotated[str, typer.Option(help="Grafana base URL, e.g. https://grafana.example")],
    token: Annotated[
        str,
        typer.Option(
            envvar="MICROVILLE_GRAFANA_TOKEN",
            show_envvar=True,
            help="Service-account token, sent as Bearer",
        ),
    ],
    folder: Annotated[str, typer.Option(help="Folder the dashboards go to")] = "Microville",
    directory: Annotated[
        Path,
        typer.Option(
            "--dir",
            help="Dashboard JSON files; the default is relative to the current directory "
            "(a checkout): pass the path when running from an installed package",
        ),
    ] = Path("dashboards/json"),
) -> None:
    """Create or overwrite every dashboard of --dir in a Grafana folder (created if
    missing); prints each uid pushed. Safe to run again."""
    from cli.grafana_push import GrafanaPushError, push_dashboards

    try:
        uids = push_dashboards(url, token, folder, directory)
    except GrafanaPushError as exc:
        console.print("[red]push failed[/red]", end=" ")
        console.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(2) from None
    for uid in uids:
        console.print(uid, markup=False, highlight=False)
