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
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from microville.domain.site import ConfigError, Site, SitesConfig, read_sites
from microville.domain.store import StoreError
from microville.mqtt import MqttSettings
from microville.settings import Settings, reveal

console = Console(soft_wrap=True)  # URLs must stay copyable

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

SAMPLE_CONFIG = Path(__file__).parent / "sites" / "microville112.toml"


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
        console.print(f"[red]unknown site[/red] {site_id!r}")
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
