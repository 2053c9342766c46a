"""``microville status``: one screen saying which services the current settings reach
and what is misconfigured.

Probing and reporting are kept apart: the ``probe_*`` functions touch the files, the
store, the broker and the API and return facts (a failure is a fact, never an
exception); :func:`report_rows` turns facts into ``ok``/``warn``/``error`` rows and
:func:`format_row` lays a row out, both pure, so that they are tested without services.
"""

from __future__ import annotations

import os
import re
import sqlite3
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import typer
from pydantic import ValidationError
from rich.text import Text

from cli.common import (
    ConfigOpt,
    MqttOpt,
    StoreOpt,
    console,
    mqtt_settings,
    settings_from,
)
from domain.alerts import silent_meters
from domain.clock import Clock, system_clock
from domain.site import ConfigError, Site, SitesConfig, read_sites
from domain.store import StoreError
from microville.settings import Settings, redact_url, reveal

T = TypeVar("T")

#: How long the broker and the API get to answer.
BROKER_TIMEOUT_S = 3.0
API_TIMEOUT_S = 2.0
#: A reading this far ahead of the machine's clock says one of the clocks is wrong.
AHEAD_TOLERANCE = timedelta(minutes=5)
#: The screen is laid out for this width at most (a narrower terminal: its width).
MAX_WIDTH = 80
_LEVEL_W = 5  # "error"
_NBSP = "\u00a0"  # not a place to wrap for textwrap, which splits on ASCII whitespace
_KEPT_TOGETHER = re.compile(r"(?<=\d) (?=(?:s|min|h|d|B|kB|MB|GB)\b)|(?<=\[Errno) (?=\d)")
_TOPIC_W = 8  # "settings"


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"
    ERROR = "error"


@dataclass(frozen=True)
class Row:
    level: Level
    topic: str
    text: str


# ---------------------------------------------------------------- facts


@dataclass(frozen=True)
class ConfigFacts:
    path: str
    sites: SitesConfig | None = None
    #: The :class:`ConfigError` message (first line: the file; then one problem a line).
    error: str | None = None
    #: The configured file, missing: the settings fell back to the shipped sample.
    instead_of: str | None = None


@dataclass(frozen=True)
class StoreFacts:
    url: str  # password masked
    error: str | None = None
    #: A SQLite file not created yet, in a folder that exists.
    no_file_yet: bool = False
    #: SQLite: sizes of the file and of its -wal [bytes].
    sizes: tuple[int, int] | None = None
    #: site id → meter id → time of its newest reading (``None``: never reported).
    last_seen: dict[str, dict[str, datetime | None]] = field(default_factory=dict)
    #: site id → why its last readings could not be read.
    site_errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BrokerFacts:
    url: str  # password masked
    account: str | None
    #: :func:`~service.api.health.broker_reachable`'s answer: "ok" or why not.
    outcome: str


@dataclass(frozen=True)
class ApiFacts:
    url: str
    status_code: int | None = None
    #: The JSON body of the answer, when it is an object.
    body: dict[str, object] | None = None
    error: str | None = None


@dataclass(frozen=True)
class StatusFacts:
    settings: Settings
    config: ConfigFacts
    store: StoreFacts
    broker: BrokerFacts
    api: ApiFacts
    #: Setting (its variable) → the part of its path that is a file, not a folder.
    blocked_paths: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- pure: facts → rows


def age_text(age: timedelta) -> str:
    """``age`` for a person: 42 s, 17 min, 5 h 03 min, 3 d 4 h."""
    seconds = max(0, int(age.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def size_text(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def config_rows(facts: ConfigFacts) -> list[Row]:
    rows: list[Row] = []
    if facts.instead_of is not None:
        rows.append(
            Row(
                Level.WARN,
                "config",
                f"{facts.instead_of} not found: the commands use the shipped sample "
                "instead (set MICROVILLE_CONFIG or --config)",
            )
        )
    if facts.error is not None:
        lines = [line.strip() for line in facts.error.splitlines() if line.strip()] or ["?"]
        if len(lines) > 1 and lines[0] == f"{facts.path}:":  # then one problem a line
            more = f" (+{len(lines) - 2} more: microville check-config)" if len(lines) > 2 else ""
            text = f"{facts.path} invalid: {lines[1]}{more}"
        else:  # unreadable, not UTF-8, or a failure the probe did not foresee
            text = lines[0] if facts.path in lines[0] else f"{facts.path}: {lines[0]}"
        rows.append(Row(Level.ERROR, "config", text))
    elif facts.sites is not None:
        sites = ", ".join(f"{s.id} ({_plural(len(s.meters), 'meter')})" for s in facts.sites.sites)
        rows.append(
            Row(
                Level.OK,
                "config",
                f"{facts.path} valid: {_plural(len(facts.sites.sites), 'site')}: {sites}",
            )
        )
    return rows


def expected_interval(site: Site, meter_id: str) -> timedelta:
    """The longest silence a meter is allowed: its own, or its site's alert rule."""
    meter = next(m for m in site.meters if m.id == meter_id)
    return timedelta(seconds=meter.expected_interval_s or site.alerts.silent_after_s)


def reading_rows(site: Site, seen: Mapping[str, datetime | None], now: datetime) -> list[Row]:
    """One row per meter of ``site``: its newest reading (site local time) and its age;
    ``warn`` when it never reported, is silent for longer than its expected interval
    (the silent-meter alert's rule) or is ahead of ``now``."""
    expected = {m.id: expected_interval(site, m.id) for m in site.meters}
    silent = silent_meters(seen, now, expected)
    rows = []
    for m in site.meters:
        name = f"{site.id}/{m.id}"
        t = seen.get(m.id)
        if t is None:
            rows.append(Row(Level.WARN, "meter", f"{name}: never reported"))
            continue
        when = f"{t.astimezone(site.tz):%Y-%m-%d %H:%M %Z}"
        if t - now > AHEAD_TOLERANCE:
            text = f"{name}: {when}, {age_text(t - now)} ahead of this machine's clock"
            rows.append(Row(Level.WARN, "meter", text))
        elif m.id in silent:
            text = (
                f"{name}: {when}, {age_text(now - t)} ago: silent for longer than "
                f"{age_text(expected[m.id])}"
            )
            rows.append(Row(Level.WARN, "meter", text))
        else:
            rows.append(Row(Level.OK, "meter", f"{name}: {when}, {age_text(now - t)} ago"))
    return rows


def store_rows(facts: StoreFacts, sites: SitesConfig | None, now: datetime) -> list[Row]:
    if facts.error is not None:
        return [Row(Level.ERROR, "store", f"{facts.url}: {facts.error}")]
    if facts.no_file_yet:
        text = f"{facts.url}: no file yet (the gateway creates it when it starts)"
        return [Row(Level.WARN, "store", text)]
    text = f"{facts.url} reachable"
    if facts.sizes is not None:
        db, wal = facts.sizes
        text += f", {size_text(db + wal)} on disk (file {size_text(db)} + WAL {size_text(wal)})"
    rows = [Row(Level.OK, "store", text)]
    for site in sites.sites if sites is not None else []:
        if site.id in facts.site_errors:
            error = facts.site_errors[site.id]
            rows.append(Row(Level.ERROR, "store", f"last readings of {site.id}: {error}"))
        else:
            rows += reading_rows(site, facts.last_seen.get(site.id, {}), now)
    return rows


def broker_rows(facts: BrokerFacts) -> list[Row]:
    if facts.outcome == "ok":
        who = f"the account {facts.account!r}" if facts.account else "anonymous clients"
        return [Row(Level.OK, "broker", f"{facts.url} accepts {who}")]
    who = f" (account {facts.account!r})" if facts.account else ""
    return [Row(Level.ERROR, "broker", f"{facts.url}{who} {facts.outcome}")]


def api_rows(facts: ApiFacts) -> list[Row]:
    where = f"GET {facts.url}"
    if facts.status_code is None:
        return [
            Row(
                Level.WARN,
                "api",
                f"nothing answers {where} ({facts.error}): is `microville serve` running?",
            )
        ]
    body = facts.body or {}
    if facts.status_code == 200 and body.get("status") == "ok":
        return [Row(Level.OK, "api", f"{where}: 200 ok")]
    if "status" in body:
        parts = ", ".join(f"{k} {body[k]}" for k in ("store", "broker") if k in body)
        text = f"{where}: {facts.status_code} {body['status']}" + (f" ({parts})" if parts else "")
        return [Row(Level.WARN, "api", text)]
    return [Row(Level.WARN, "api", f"{where}: {facts.status_code}, not a Microville API?")]


def _placeholder(value: str) -> bool:
    return value.startswith("change-me")


def settings_rows(settings: Settings, blocked: Mapping[str, str]) -> list[Row]:
    """What the other commands would refuse, or do without: placeholder or too short
    secrets (``serve`` refuses a weak read token), paths through a file, reports off."""
    from service.access.auth import MIN_ENV_TOKEN_CHARS

    rows: list[Row] = []
    secrets = {
        "MICROVILLE_MQTT_PASSWORD": reveal(settings.mqtt_password),
        "MICROVILLE_INFLUX_TOKEN": reveal(settings.influx_token),
        "MICROVILLE_API_READ_TOKEN": reveal(settings.api_read_token),
    }
    for var, url in (
        ("MICROVILLE_STORE_URL", settings.store_url),
        ("MICROVILLE_MQTT_URL", settings.mqtt_url),
    ):
        try:
            secrets[f"the password in {var}"] = urlsplit(url).password
        except ValueError:
            rows.append(Row(Level.ERROR, "settings", f"{var} is not a URL"))
    for name, value in secrets.items():
        if value is not None and _placeholder(value):
            text = f"{name} is still the placeholder of .env.example: set a secret of your own"
            rows.append(Row(Level.ERROR, "settings", text))
    token = secrets["MICROVILLE_API_READ_TOKEN"]
    if token is not None and not _placeholder(token) and len(token) < MIN_ENV_TOKEN_CHARS:
        text = (
            f"MICROVILLE_API_READ_TOKEN has {len(token)} characters: `microville serve` "
            f"refuses fewer than {MIN_ENV_TOKEN_CHARS} (make one: openssl rand -hex 32)"
        )
        rows.append(Row(Level.ERROR, "settings", text))
    for var, blocking in blocked.items():
        rows.append(Row(Level.ERROR, "settings", f"{var}: {blocking} is not a folder"))
    if not settings.reports_dir:
        text = "MICROVILLE_REPORTS_DIR is empty: no monthly reports (microville report refuses)"
        rows.append(Row(Level.WARN, "settings", text))
    if not rows:
        rows.append(Row(Level.OK, "settings", "no placeholder secret, every state path usable"))
    return rows


def summary_row(rows: Sequence[Row]) -> Row:
    errors = sum(r.level is Level.ERROR for r in rows)
    warnings = sum(r.level is Level.WARN for r in rows)
    if errors:
        text = f"{_plural(errors, 'problem')} to fix, {_plural(warnings, 'warning')}: exit code 1"
        return Row(Level.ERROR, "summary", text)
    extra = f" ({_plural(warnings, 'warning')})" if warnings else ""
    return Row(Level.OK, "summary", f"everything needed is reachable{extra}")


def report_rows(facts: StatusFacts, now: datetime) -> list[Row]:
    """Every row of the screen, the summary last."""
    rows = (
        config_rows(facts.config)
        + store_rows(facts.store, facts.config.sites, now)
        + broker_rows(facts.broker)
        + api_rows(facts.api)
        + settings_rows(facts.settings, facts.blocked_paths)
    )
    return [*rows, summary_row(rows)]


def exit_code(rows: Sequence[Row]) -> int:
    """0 when nothing is an error (warnings included), else 1."""
    return 1 if any(r.level is Level.ERROR for r in rows) else 0


def format_row(row: Row, width: int = MAX_WIDTH) -> list[str]:
    """``row`` as aligned lines of at most ``width`` characters, wrapped between words
    under its text column; a word longer than that column (a long URL) is kept whole
    on a line of its own, so that it stays copyable."""
    prefix = f"{row.level.value:<{_LEVEL_W}} {row.topic:<{_TOPIC_W}} "
    column = max(20, width - len(prefix))
    # A figure stays with its unit ("3 min", "4.1 kB"), an errno with its number.
    text = _KEPT_TOGETHER.sub(_NBSP, row.text)
    lines = textwrap.wrap(text, column, break_long_words=False, break_on_hyphens=False) or [""]
    lines = [line.replace(_NBSP, " ") for line in lines]
    return [prefix + lines[0]] + [" " * len(prefix) + line for line in lines[1:]]


# ---------------------------------------------------------------- I/O: probing

_STYLE = {Level.OK: "green", Level.WARN: "yellow", Level.ERROR: "bold red"}


def _safely(probe: Callable[[], T], failed: Callable[[str], T]) -> T:
    """``probe()``, or ``failed(cause)`` if it raised: a status check reports a failure
    it did not foresee as a line too, never as a traceback."""
    try:
        return probe()
    except Exception as exc:
        return failed(f"{type(exc).__name__}: {exc}")


def _first_file_in(path: Path) -> Path | None:
    """The first ancestor of ``path`` that exists but is not a folder."""
    return next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), None)


def probe_config(settings: Settings, given: bool) -> ConfigFacts:
    """The site configuration the settings name; ``given``: named by --config (no
    fallback to the sample then)."""
    instead_of = None
    if not given:
        try:
            configured = Settings().config  # before settings_from's fallback to the sample
        except ValidationError:
            configured = settings.config
        if configured != settings.config:
            instead_of = str(Path(configured).absolute())
    path = str(Path(settings.config).resolve()) if instead_of else settings.config
    try:
        return ConfigFacts(path, sites=read_sites(path), instead_of=instead_of)
    except ConfigError as exc:
        return ConfigFacts(path, error=str(exc), instead_of=instead_of)


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite://`` store URL (read as :func:`open_store` reads it)."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        return None
    path = parts.netloc + parts.path if parts.netloc else parts.path
    return Path(path) if path else None


def _missing_sqlite(path: Path) -> StoreFacts | None:
    """Facts about a SQLite file that is not there, without creating it (opening the
    store would create it, and its folders)."""
    if path.exists():
        return None
    blocking = _first_file_in(path)
    if blocking is not None:
        return StoreFacts("", error=f"{blocking} is not a folder")
    if not path.parent.is_dir():
        return StoreFacts("", error=f"folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        return StoreFacts("", error=f"no file, and folder {path.parent} is not writable")
    return StoreFacts("", no_file_yet=True)


def probe_store(settings: Settings, sites: SitesConfig | None) -> StoreFacts:
    """Open the store as the other commands do, ping it, read each meter's newest
    reading through the store port (``last_seen`` per site and quantity, as the
    service's last-reading metric does) and, for SQLite, its size on disk."""
    from stores import open_store

    url = redact_url(settings.store_url)
    path = sqlite_path(settings.store_url)
    if path is not None and (missing := _missing_sqlite(path)) is not None:
        return StoreFacts(url, error=missing.error, no_file_yet=missing.no_file_yet)
    try:
        target = open_store(settings.store_url, reveal(settings.influx_token))
    except (StoreError, OSError, sqlite3.Error, ValueError) as exc:  # as refused_at_start
        return StoreFacts(url, error=str(exc))
    try:
        target.ping()
        last_seen: dict[str, dict[str, datetime | None]] = {}
        site_errors: dict[str, str] = {}
        for site in sites.sites if sites is not None else []:
            by_quantity: dict[str, list[str]] = {}
            for m in site.meters:
                by_quantity.setdefault(m.dimension, []).append(m.id)
            seen: dict[str, datetime | None] = {}
            try:
                for quantity, meters in by_quantity.items():
                    seen.update(target.last_seen(site.id, meters, quantity))
            except StoreError as exc:
                site_errors[site.id] = str(exc)
            last_seen[site.id] = seen
    except StoreError as exc:
        return StoreFacts(url, error=str(exc))
    finally:
        target.close()
    sizes = None
    if path is not None:
        wal = Path(f"{path}-wal")
        sizes = (path.stat().st_size, wal.stat().st_size if wal.exists() else 0)
    return StoreFacts(url, sizes=sizes, last_seen=last_seen, site_errors=site_errors)


def probe_broker(settings: Settings, timeout_s: float = BROKER_TIMEOUT_S) -> BrokerFacts:
    """Log in to the broker with the configured account (the service's health probe)."""
    from service.api.health import broker_reachable

    url = redact_url(settings.mqtt_url)
    try:
        mqtt = mqtt_settings(settings)
        account = mqtt.credentials()[0]
    except ValueError as exc:  # ValidationError too (a bad share group)
        return BrokerFacts(url, None, f"unusable settings: {exc}")
    try:
        outcome = broker_reachable(mqtt, timeout_s)
    except (ValueError, OSError) as exc:  # another URL scheme, an unreadable CA file
        outcome = f"unusable: {exc}"
    return BrokerFacts(url, account, outcome)


def api_url(settings: Settings) -> str:
    """Where the API of these settings answers: a wildcard bind address is probed on
    loopback."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(
        settings.api_host, settings.api_host
    )
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.api_port}/health"


def probe_api(url: str, timeout_s: float = API_TIMEOUT_S) -> ApiFacts:
    import httpx

    try:
        # trust_env=False: the service's own address, not through a proxy.
        resp = httpx.get(url, timeout=timeout_s, trust_env=False)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return ApiFacts(url, error=str(exc) or type(exc).__name__)
    try:
        body = resp.json()
    except ValueError:
        body = None
    return ApiFacts(url, resp.status_code, body if isinstance(body, dict) else None)


def probe_paths(settings: Settings) -> dict[str, str]:
    """State files and folders whose path runs through a file: opening them fails."""
    paths = {
        "MICROVILLE_LEDGER_PATH": settings.ledger_path,
        "MICROVILLE_ALERTS_PATH": settings.alerts_path,
        "MICROVILLE_API_TOKENS_PATH": settings.api_tokens_path,
        "MICROVILLE_BUFFER_PATH": settings.buffer_path,
        "MICROVILLE_DEAD_LETTER_FILE": settings.dead_letter_file or "",
        "MICROVILLE_REPORTS_DIR": settings.reports_dir,
    }
    blocked = {}
    for var, value in paths.items():
        if not value:
            continue
        path = Path(value)
        # The reports' folder is a folder itself; the others are files in one.
        blocking = _first_file_in(path / "x" if var == "MICROVILLE_REPORTS_DIR" else path)
        if blocking is not None:
            blocked[var] = str(blocking)
    return blocked


def gather(settings: Settings, config_given: bool) -> StatusFacts:
    """Probe everything the settings name; never raises."""
    config = _safely(
        lambda: probe_config(settings, config_given),
        lambda cause: ConfigFacts(settings.config, error=cause),
    )
    store_url = redact_url(settings.store_url)
    return StatusFacts(
        settings=settings,
        config=config,
        store=_safely(
            lambda: probe_store(settings, config.sites),
            lambda cause: StoreFacts(store_url, error=cause),
        ),
        broker=_safely(
            lambda: probe_broker(settings),
            lambda cause: BrokerFacts(redact_url(settings.mqtt_url), None, cause),
        ),
        api=_safely(
            lambda: probe_api(api_url(settings)),
            lambda cause: ApiFacts(api_url(settings), error=cause),
        ),
        blocked_paths=_safely(lambda: probe_paths(settings), lambda cause: {"paths": cause}),
    )


def print_rows(rows: Sequence[Row], width: int) -> None:
    for row in rows:
        first, *rest = format_row(row, width)
        line = Text(first)
        line.stylize(_STYLE[row.level], 0, len(row.level.value))
        console.print(line, highlight=False)
        for more in rest:
            console.print(more, markup=False, highlight=False)


def show_status(settings: Settings, config_given: bool, clock: Clock = system_clock) -> int:
    """Probe, print the rows, return the exit code."""
    facts = gather(settings, config_given)
    rows = report_rows(facts, clock())
    print_rows(rows, min(console.width, MAX_WIDTH))
    return exit_code(rows)


def status(config: ConfigOpt = None, store: StoreOpt = None, mqtt: MqttOpt = None) -> None:
    """Say which services the current settings reach and what is misconfigured.

    Settings come as for the other commands (options, MICROVILLE_* variables,
    .env). Checks the site configuration, the store (its size, each meter's
    last reading and its age), the MQTT broker (logging in with the
    configured account), whether an API answers GET /health at
    MICROVILLE_API_HOST:MICROVILLE_API_PORT, and the settings the other
    commands would refuse. One line each: ok, warn or error.

    Exit code: 0 when everything needed is reachable (warnings, such as no
    API running or a silent meter, included); 1 when something is down or
    misconfigured.
    """
    try:
        settings = settings_from(config, store, mqtt)
    except typer.Exit:  # settings_from named each bad setting
        print_rows(
            [Row(Level.ERROR, "settings", "fix the settings above; nothing else was checked")],
            min(console.width, MAX_WIDTH),
        )
        raise typer.Exit(1) from None
    raise typer.Exit(show_status(settings, config is not None))
