"""The ``microville`` command: check-config, gateway, serve, simulate, demo."""

from __future__ import annotations

import logging
import re
import signal
import sys
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from microville.domain.periods import localize
from microville.domain.site import ConfigError, Site, SitesConfig, read_sites
from microville.mqtt import MqttSettings
from microville.settings import Settings, redact_url, reveal

if TYPE_CHECKING:
    from microville.gateway.buffer import ReadingBuffer
    from microville.service.tokens import TokenStore

app = typer.Typer(
    help="Microville Monitor: prove positive energy, zero carbon, zero waste.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
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


def _settings(
    config: Path | None = None, store: str | None = None, mqtt: str | None = None
) -> Settings:
    overrides: dict[str, str] = {}
    if config is not None:
        overrides["config"] = str(config)
    if store is not None:
        overrides["store_url"] = store
    if mqtt is not None:
        overrides["mqtt_url"] = mqtt
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if config is None and not Path(settings.config).exists():
        settings = settings.model_copy(update={"config": str(SAMPLE_CONFIG)})
    return settings


def _load(settings: Settings) -> SitesConfig:
    try:
        return read_sites(settings.config)
    except ConfigError as exc:
        console.print("[red]configuration error[/red] in", end=" ")
        console.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(2) from None


def _mqtt_settings(settings: Settings) -> MqttSettings:
    return MqttSettings(
        url=settings.mqtt_url,
        username=settings.mqtt_username,
        password=reveal(settings.mqtt_password),
        ca_file=settings.mqtt_ca_file,
        share_group=settings.mqtt_share_group,
    )


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


@app.command("check-config")
def check_config(
    file: Annotated[Path, typer.Argument(help="Site configuration file (TOML)")],
) -> None:
    """Validate a site configuration; print its sites and meters."""
    try:
        config = read_sites(file)
    except ConfigError as exc:
        console.print("[red]invalid[/red]", end=" ")
        console.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(2) from None
    for site in config.sites:
        console.print(
            f"[green]ok[/green] site {site.id} ({site.name}, {site.timezone}, "
            f"{site.floor_area_m2:g} m²): {len(site.meters)} meters",
            highlight=False,
        )
        for m in site.meters:
            console.print(
                f"   {m.id:<16} {m.carrier:<12} {m.role:<12} {m.unit:<4} {m.source.summary}",
                highlight=False,
                soft_wrap=True,
            )


def _gateway_buffer(settings: Settings) -> ReadingBuffer | None:
    """The gateway's store-and-forward buffer (MICROVILLE_BUFFER_PATH; empty: none)."""
    from microville.gateway.buffer import BufferError, ReadingBuffer

    if not settings.buffer_path:
        return None
    try:
        return ReadingBuffer(settings.buffer_path, settings.buffer_max_readings)
    except BufferError as exc:
        console.print(f"[red]buffer[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


@app.command()
def gateway(
    config: ConfigOpt = None,
    store: StoreOpt = None,
    mqtt: MqttOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Read every configured meter (MQTT, TIC, Modbus) and store the readings until stopped."""
    from microville.gateway.deadletter import DeadLetterLog
    from microville.gateway.gateway import Gateway
    from microville.gateway.sources import SourceOptions
    from microville.stores import open_store

    _logging(verbose)
    settings = _settings(config, store, mqtt)
    sites = _load(settings)
    gw = Gateway(
        sites,
        open_store(settings.store_url, reveal(settings.influx_token)),
        SourceOptions(_mqtt_settings(settings), settings.gateway_client_id),
        dead_letters=DeadLetterLog(settings.dead_letter_file),
        buffer=_gateway_buffer(settings),
    )
    gw.start()
    if settings.gateway_metrics_port:
        port = gw.serve_metrics(settings.gateway_metrics_host, settings.gateway_metrics_port)
        logging.info("gateway metrics on http://%s:%d/metrics", settings.gateway_metrics_host, port)
    logging.info("gateway running, store %s", redact_url(settings.store_url))
    _wait_for_signal()
    gw.stop()
    logging.info(
        "gateway stopped: %d received, %d readings written, %d rejected",
        gw.received,
        gw.writer.written,
        gw.dead_letters.total,
    )


@app.command()
def serve(
    config: ConfigOpt = None,
    store: StoreOpt = None,
    mqtt: MqttOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address [env MICROVILLE_API_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [env MICROVILLE_API_PORT]")] = None,
) -> None:
    """Serve the indicators API (OpenAPI docs at /docs)."""
    import uvicorn

    from microville.service.app import create_app

    settings = _settings(config, store, mqtt)
    _load(settings)
    uvicorn.run(
        create_app(settings), host=host or settings.api_host, port=port or settings.api_port
    )


def _parse_start(value: str) -> date:
    """An ISO date, or ``today-N``: N days before today (the compose demo simulates the
    last days, so that the dashboards' default ranges show them)."""
    if m := re.fullmatch(r"today-(\d{1,4})", value):
        return date.today() - timedelta(days=int(m[1]))
    try:
        return date.fromisoformat(value)
    except ValueError:
        console.print(f"[red]--start[/red]: {value!r} is not a date like 2026-10-01 or today-30")
        raise typer.Exit(2) from None


def _local_midnight(day: date, site: Site) -> datetime:
    return localize(datetime(day.year, day.month, day.day), site.tz)


#: Damage on the emulated Linkys' lines (`simulate`, `demo`).
TicCorruptionOpt = typer.Option(
    "--tic-corruption",
    min=0.0,
    max=1.0,
    help="Share of emulated Linky frames damaged on the line (a digit changed under its "
    "old checksum, a frame cut by EOT, noise before it); the gateway drops what fails "
    "its checksum. 0: none",
)


@app.command()
def simulate(
    config: ConfigOpt = None,
    mqtt: MqttOpt = None,
    site: Annotated[
        list[str] | None, typer.Option("--site", help="Site id (repeat); default all")
    ] = None,
    start: Annotated[
        str, typer.Option(help="First simulated day (site local time): 2026-06-01, or today-30")
    ] = "2026-06-01",
    days: Annotated[int, typer.Option(min=1, max=3660, help="Simulated days")] = 30,
    step_min: Annotated[
        int, typer.Option("--step-min", min=1, max=1440, help="Minutes between readings")
    ] = 15,
    speed: Annotated[
        float,
        typer.Option(
            min=0,
            help="Simulated seconds per real second (86400: a day a second; 0: flat out)",
        ),
    ] = 86400,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same building)")] = 112,
    truth: Annotated[Path | None, typer.Option(help="Write the ground truth (JSON) here")] = None,
    tic_corruption: Annotated[float, TicCorruptionOpt] = 0.0,
) -> None:
    """Publish realistic buildings: MQTT devices, and serial devices (a Linky per TIC
    port, the Modbus devices of each RTU line) emulated on pseudo-terminals at the
    configured ports; print the ground truth.

    Modbus values (and historic TIC frames) carry no time: a gateway in another process
    stamps them with its own clock, so run serial devices at --speed 1 for exact
    balances, or use `microville demo`, which shares the simulated clock.
    """
    from microville.firmware_sim.building import simulate_building, site_seed
    from microville.firmware_sim.clock import SimulatedClock
    from microville.firmware_sim.publisher import run_simulation, write_truth
    from microville.firmware_sim.serial_devices import SerialDevices

    settings = _settings(config, None, mqtt)
    sites = _load(settings)
    chosen = [s for s in sites.sites if not site or s.id in site]
    if not chosen:
        console.print(f"[red]no site matches[/red] {site}")
        raise typer.Exit(2)
    first_day = _parse_start(start)
    if 1440 % step_min:
        console.print(f"[red]--step-min[/red] {step_min} must divide a day (1440 minutes)")
        raise typer.Exit(2)
    # Each site from its own local midnight to its own: sites may be in any timezone.
    last_day = first_day + timedelta(days=days)
    windows = {s.id: (_local_midnight(first_day, s), _local_midnight(last_day, s)) for s in chosen}
    t0 = min(w[0] for w in windows.values())
    t1 = max(w[1] for w in windows.values())
    step = timedelta(minutes=step_min)
    clock = SimulatedClock(t0, speed or 1.0)
    serial = [
        SerialDevices(
            sites,
            s,
            simulate_building(s, *windows[s.id], step, site_seed(seed, i)),
            clock,
            windows[s.id][1],
            corruption=tic_corruption,
        )
        for i, s in enumerate(chosen)
    ]
    serial = [devices for devices in serial if devices.pairs]
    if serial and not speed:
        console.print("[red]--speed[/red] 0 (flat out) cannot pace serial devices")
        raise typer.Exit(2)
    for devices in serial:
        devices.plug()
        console.print(f"emulated serial devices on {', '.join(devices.ports)}")
    clock.restart()
    for devices in serial:
        devices.start()
    try:
        result = run_simulation(
            chosen,
            _mqtt_settings(settings),
            t0,
            t1,
            step,
            seed=seed,
            speed=speed,
            progress=sys.stderr.isatty(),
            windows=windows,
        )
        while serial and not (all(d.done() for d in serial) and clock.now() >= t1):
            time.sleep(0.1)
        if serial:
            time.sleep(2)  # let a reader pick up the last frames and polls
    finally:
        for devices in serial:
            devices.stop()
    for site_id, figures in result.items():
        console.print(
            f"ground truth {site_id}: "
            + ", ".join(f"{k.removesuffix('_wh')} {v / 1000:.3f} kWh" for k, v in figures.items())
        )
    if truth is not None:
        write_truth(result, truth)


import_app = typer.Typer(help="Load data files: grid carbon intensity, materials ledger.")
app.add_typer(import_app, name="import")


def _site_of(sites: SitesConfig, site_id: str) -> Site:
    site = sites.site(site_id)
    if site is None:
        console.print(f"[red]unknown site[/red] {site_id!r}")
        raise typer.Exit(2)
    return site


def _read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        console.print(f"[red]cannot read[/red] {file}: {exc.strerror}")
        raise typer.Exit(2) from None


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
    from microville.domain.imports import parse_eco2mix_csv
    from microville.domain.readings import Reading
    from microville.service.indicators import INTENSITY_METER, INTENSITY_QUANTITY
    from microville.stores import open_store

    settings = _settings(config, store, None)
    chosen = _site_of(_load(settings), site)
    try:
        samples = parse_eco2mix_csv(_read_text(file))
    except ValueError as exc:
        console.print("[red]invalid file[/red]", end=" ")
        console.print(str(exc), markup=False)
        raise typer.Exit(2) from None
    readings = [
        Reading(chosen.id, INTENSITY_METER, INTENSITY_QUANTITY, g_per_kwh / 1000, t)
        for t, g_per_kwh in samples
    ]
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
    file: Annotated[Path, typer.Argument(help="Materials CSV (see README: materials ledger)")],
    site: Annotated[str, typer.Option(help="Site renovated with these materials")],
    config: ConfigOpt = None,
) -> None:
    """Add the renovation's materials (quantities, EPD/FDES factors, reuse, biogenic
    carbon) to the ledger: all rows or none."""
    from microville.domain.materials import parse_materials_csv
    from microville.stores.ledger import Ledger

    settings = _settings(config, None, None)
    chosen = _site_of(_load(settings), site)
    try:
        materials = parse_materials_csv(_read_text(file))
    except ValueError as exc:
        console.print("[red]invalid file, nothing imported[/red]", end=" ")
        console.print(str(exc), markup=False)
        raise typer.Exit(2) from None
    ledger = Ledger(settings.ledger_path)
    try:
        ids = ledger.add_materials(chosen.id, materials)
    finally:
        ledger.close()
    console.print(f"imported {len(ids)} materials for {chosen.id} into {settings.ledger_path}")


@app.command()
def report(
    site: Annotated[str, typer.Option(help="Site id")],
    month: Annotated[str, typer.Option(help="Month to report, YYYY-MM (local calendar)")],
    until: Annotated[
        str | None, typer.Option(help="Last month, YYYY-MM: every month from --month to it")
    ] = None,
    lang: Annotated[str | None, typer.Option(help="fr or en; default: the site's language")] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Also copy the PDF and HTML here [default: only the archive]"),
    ] = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Generate monthly impact reports (PDF and HTML) on demand into the report archive
    (MICROVILLE_REPORTS_DIR), with their SHA-256."""
    from rich.progress import Progress

    from microville.domain.reporting import Language, Month, months_between
    from microville.service.indicators import QueryError
    from microville.service.reports import generate_report
    from microville.stores import open_store
    from microville.stores.ledger import Ledger
    from microville.stores.reports import ReportArchive

    settings = _settings(config, store, None)
    chosen = _site_of(_load(settings), site)
    try:
        first = Month.parse(month)
        months = months_between(first, Month.parse(until) if until else first)
        language = Language(lang) if lang else None
    except ValueError as exc:
        console.print(f"[red]invalid option[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if not settings.reports_dir:
        console.print("[red]MICROVILLE_REPORTS_DIR is empty[/red]: nowhere to keep reports")
        raise typer.Exit(2)
    target = open_store(settings.store_url, reveal(settings.influx_token))
    ledger = Ledger(settings.ledger_path)
    archive = ReportArchive(settings.reports_dir)
    made = []
    try:
        with Progress(console=console, transient=True, disable=len(months) < 2) as progress:
            task = progress.add_task("reports", total=len(months))
            for m in months:
                made.append(generate_report(chosen, target, ledger, archive, m, language))
                progress.advance(task)
    except QueryError as exc:
        console.print(f"[red]cannot report[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    finally:
        target.close()
        ledger.close()
    for record in made:
        pdf = archive.path(record.site, record.month, record.language, "pdf")
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            for fmt in ("pdf", "html"):
                (out / f"{record.site}-{record.month}.{record.language.value}.{fmt}").write_bytes(
                    archive.read(record, fmt)
                )
        console.print(f"{record.month} ({record.language.value}): {pdf} sha256 {record.pdf_sha256}")
    archive.close()


@app.command()
def demo(
    days: Annotated[int, typer.Option(min=1, max=366, help="Simulated days")] = 30,
    start: Annotated[str, typer.Option(help="First simulated day")] = "2026-06-01",
    mqtt: Annotated[
        str | None, typer.Option("--mqtt", help="Use this broker instead of the embedded one")
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="Where the SQLite store goes")] = Path("demo-data"),
    port: Annotated[int, typer.Option(help="API port")] = 8000,
    broker_port: Annotated[int, typer.Option(help="Embedded broker port")] = 1884,
    keep_serving: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Keep the API up until Ctrl-C")
    ] = True,
    config: Annotated[
        str,
        typer.Option(
            "--config",
            "-c",
            help="A shipped sample (microville112: MQTT devices; microville112-serial: "
            "Linky TIC and Modbus inverter on emulated serial lines) or a TOML file",
        ),
    ] = "microville112",
    speed: Annotated[
        float,
        typer.Option(min=1, help="Serial devices: simulated seconds per real second"),
    ] = 86400,
    dark_days: Annotated[
        int,
        typer.Option(min=0, help="The PV inverter fails for the last N days (the alert scenario)"),
    ] = 10,
    tic_corruption: Annotated[float, TicCorruptionOpt] = 0.0,
) -> None:
    """Whole chain on embedded defaults: broker, gateway, SQLite, simulator, API, and an
    alert scenario (the balance turns negative when the PV inverter fails)."""
    from microville.demo import run_demo

    sample = SAMPLE_CONFIG.parent / f"{config}.toml"
    run_demo(
        console,
        sample if sample.is_file() else Path(config),
        speed=speed,
        dark_days=dark_days,
        days=days,
        start=start,
        mqtt_url=mqtt,
        data_dir=data_dir,
        port=port,
        broker_port=broker_port,
        keep_serving=keep_serving,
        tic_corruption=tic_corruption,
    )


dashboards_app = typer.Typer(help="Grafana dashboards: push them to a running Grafana.")
app.add_typer(dashboards_app, name="dashboards")


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
    from microville.grafana_push import GrafanaPushError, push_dashboards

    try:
        uids = push_dashboards(url, token, folder, directory)
    except GrafanaPushError as exc:
        console.print("[red]push failed[/red]", end=" ")
        console.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(2) from None
    for uid in uids:
        console.print(uid, markup=False, highlight=False)


token_app = typer.Typer(help="API tokens: create, list, revoke (the file keeps hashes only).")
app.add_typer(token_app, name="token")

TokensOpt = Annotated[
    Path | None,
    typer.Option("--tokens", help="Token file (SQLite) [env MICROVILLE_API_TOKENS_PATH]"),
]


def _token_store(tokens: Path | None, settings: Settings) -> TokenStore:
    from microville.service.tokens import TokenStore

    return TokenStore(tokens if tokens is not None else settings.api_tokens_path)


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="read, write (manual entries) or admin")],
    name: Annotated[str, typer.Option(help="Who holds it, e.g. 'coop member A' or grafana")],
    site: Annotated[
        list[str] | None, typer.Option(help="A site it covers (repeat for several)")
    ] = None,
    all_sites: Annotated[bool, typer.Option("--all-sites", help="Cover every site")] = False,
    config: ConfigOpt = None,
    tokens: TokensOpt = None,
) -> None:
    """Create a token and print it, once: only its hash is kept."""
    from microville.service.tokens import Role

    settings = _settings(config)
    try:
        chosen = Role(role)
    except ValueError:
        console.print(f"[red]--role[/red] {role!r}: read, write or admin")
        raise typer.Exit(2) from None
    if chosen is not Role.ADMIN and not site and not all_sites:
        console.print(f"[red]a {chosen} token needs --site S (repeatable) or --all-sites[/red]")
        raise typer.Exit(2)
    if site and all_sites:
        console.print("[red]give --site or --all-sites, not both[/red]")
        raise typer.Exit(2)
    if site:
        known = {s.id for s in _load(settings).sites}
        if unknown := sorted(set(site) - known):
            console.print(
                f"[red]unknown site[/red] {', '.join(unknown)} in {settings.config}; "
                f"known: {', '.join(sorted(known))}",
                highlight=False,
            )
            raise typer.Exit(2)
    store = _token_store(tokens, settings)
    try:
        info, token = store.create(name, chosen, site or None)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    finally:
        store.close()
    scope = "every site" if info.sites is None else ", ".join(sorted(info.sites))
    console.print(
        f"created token {info.id} ({info.role}, {scope}) for {info.name}", highlight=False
    )
    console.print("token (shown once, store it now):", highlight=False)
    # Plain print: the token alone on its line, for scripts (`… | tail -1`).
    print(token)


@token_app.command("list")
def token_list(config: ConfigOpt = None, tokens: TokensOpt = None) -> None:
    """List the tokens: id, role, sites, holder, created, revoked (never the token)."""
    store = _token_store(tokens, _settings(config))
    try:
        infos = store.tokens()
    finally:
        store.close()
    for t in infos:
        scope = "*" if t.sites is None else ",".join(sorted(t.sites))
        state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}Z" if t.revoked_at else "active"
        console.print(
            f"{t.id}  {t.role:<5}  {scope:<24}  {t.created_at:%Y-%m-%d %H:%M}Z  {state:<24}  "
            f"{t.name}",
            markup=False,
            highlight=False,
        )


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The id shown by `token list`")],
    config: ConfigOpt = None,
    tokens: TokensOpt = None,
) -> None:
    """Revoke a token at once (the running service checks the file on every request)."""
    store = _token_store(tokens, _settings(config))
    try:
        revoked = store.revoke(token_id)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    finally:
        store.close()
    if not revoked:
        console.print(f"[red]no active token {token_id}[/red]")
        raise typer.Exit(1)
    console.print(f"revoked {token_id}")


@app.command()
def bench(
    quick: Annotated[
        bool, typer.Option("--quick", help="tiny sizes (seconds): a smoke run, not figures")
    ] = False,
    output: Annotated[
        Path | None, typer.Option(help="JSON results [bench/results/latest.json]")
    ] = None,
    work_dir: Annotated[
        Path | None, typer.Option(help="services' data and the cached query data [bench/var]")
    ] = None,
    peer: Annotated[bool, typer.Option(help="run the Node-RED peer pipeline")] = True,
    single: Annotated[
        int | None, typer.Option(help="single-reading messages to ingest [200,000]")
    ] = None,
    senml: Annotated[
        int | None, typer.Option(help="readings to ingest in SenML packs [1M]")
    ] = None,
) -> None:
    """Benchmarks: ingestion beside the machine's ceiling and Node-RED, query latency on a
    year of data, report time, memory (README "Benchmarks")."""
    from microville.bench.runner import DEFAULT_OUTPUT, DEFAULT_WORK, run_bench

    rows = run_bench(
        quick, output or DEFAULT_OUTPUT, work_dir or DEFAULT_WORK, peer, console, single, senml
    )
    # A peer losing readings is a finding, not a failure of the bench.
    if any(r.status == "failed" and not r.name.startswith("peer:") for r in rows):
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
