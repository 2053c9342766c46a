"""What the ``microville`` commands share: the console, the common options, settings
and site loading with errors printed for a person, logging and signals."""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from typer.core import TyperGroup

from domain.site import ConfigError, ConfigUnreadable, Site, SitesConfig, read_sites
from domain.store import StoreError
from microville import SAMPLE_SITES
from microville.mqtt import MqttSettings
from microville.settings import Settings, reveal

if TYPE_CHECKING:
    from typer._click import Context, HelpFormatter  # typer's own click (0.29+)

console = Console(soft_wrap=True)  # URLs must stay copyable


class WholeHelpGroup(TyperGroup):
    """A command group whose ``--help`` lists each command with its whole first
    sentence, wrapped, where click cuts it with "..." at the terminal's width.

    Every ``typer.Typer`` of the command takes it with ``rich_markup_mode=None``:
    click's plain help wraps each text whole at any width, where Rich's tables cut
    words with "…" at 80 columns, keep the docstrings' line breaks and read
    "[env …]" in a help text as markup (and drop it)."""

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Site configuration (TOML) [env MICROVILLE_CONFIG]"),
]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store", help="sqlite:///file.db or influxdb://host:port/db [env MICROVILLE_STORE_URL]"
    ),
]
MqttOpt = Annotated[
    str | None,
    typer.Option("--mqtt", help="mqtt://[user:pass@]host:port [env MICROVILLE_MQTT_URL]"),
]

SAMPLE_CONFIG = SAMPLE_SITES / "microville112.toml"


def settings_from(
    config: Path | None = None, store: str | None = None, mqtt: str | None = None
) -> Settings:
    overrides: dict[str, str] = {}
    if config is not None:
        overrides["config"] = str(config)
    if store is not None:
        overrides["store_url"] = store
    if mqtt is not None:
        overrides["mqtt_url"] = mqtt
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        # Name the environment variable a person set, not the field behind it.
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            console.print(
                f"[red]setting error[/red] MICROVILLE_{field.upper()}: {error['msg']}",
                highlight=False,
            )
        raise typer.Exit(2) from None
    if config is None and not Path(settings.config).exists():
        settings = settings.model_copy(update={"config": str(SAMPLE_CONFIG)})
    return settings


def load_sites(settings: Settings) -> SitesConfig:
    try:
        return read_sites(settings.config)
    except ConfigUnreadable as exc:  # says which file and why
        console.print(str(exc), markup=False, highlight=False, style="red")
        raise typer.Exit(2) from None
    except ConfigError as exc:
        console.print("[red]configuration error[/red] in", end=" ")
        console.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(2) from None


def mqtt_settings(settings: Settings) -> MqttSettings:
    return MqttSettings(
        url=settings.mqtt_url,
        username=settings.mqtt_username,
        password=reveal(settings.mqtt_password),
        ca_file=settings.mqtt_ca_file,
        share_group=settings.mqtt_share_group,
    )


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def wait_for_signal(failed: threading.Event | None = None) -> bool:
    """Wait for SIGINT or SIGTERM, or for ``failed`` to be set; True if it was."""
    stop = failed or threading.Event()
    signalled = threading.Event()

    def on_signal(*_: object) -> None:
        signalled.set()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    stop.wait()
    return not signalled.is_set()


def site_of(sites: SitesConfig, site_id: str) -> Site:
    site = sites.site(site_id)
    if site is None:
        # The API's 404 says the same: "unknown site 'x'; known: a, b".
        console.print(
            f"[red]--site[/red]: unknown site {site_id!r}; known: "
            + ", ".join(s.id for s in sites.sites),
            highlight=False,
        )
        raise typer.Exit(2)
    return site


def read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        console.print(f"[red]cannot read[/red] {file}: {exc.strerror}")
        raise typer.Exit(2) from None


@contextmanager
def refused_at_start(what: str) -> Iterator[None]:
    """A store or file that cannot be opened (read-only, missing, not a folder) ends the
    command with one line naming it and the cause, exit code 2, not a traceback."""
    try:
        yield
    except (StoreError, OSError, sqlite3.Error) as exc:
        console.print(f"[red]cannot start {what}:[/red]", end=" ")
        console.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(2) from None
