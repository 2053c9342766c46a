"""The ``microville`` command: check-config, gateway, serve, simulate, report, demo,
bench; the ``import``, ``dashboards`` and ``token`` groups live in cli_import,
cli_dashboards and cli_tokens."""

from __future__ import annotations

import logging
import re
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import (
    SAMPLE_CONFIG,
    ConfigOpt,
    MqttOpt,
    StoreOpt,
    WholeHelpGroup,
    console,
    load_sites,
    mqtt_settings,
    refused_at_start,
    settings_from,
    setup_logging,
    site_of,
    wait_for_signal,
)
from cli.dashboards import dashboards_app
from cli.data_import import import_app
from cli.rollup import rollup_app
from cli.status import status
from cli.tokens import token_app
from domain.clock import system_clock
from domain.periods import localize
from domain.site import ConfigError, ConfigUnreadable, Site, read_sites
from microville.settings import Settings, redact_url, reveal

if TYPE_CHECKING:
    from domain.reporting import Month
    from gateway.buffer import ReadingBuffer

app = typer.Typer(
    cls=WholeHelpGroup,
    rich_markup_mode=None,  # see WholeHelpGroup: help texts whole at 80 columns
    help="Microville Monitor: prove positive energy, zero carbon, zero waste.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(import_app, name="import")
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(token_app, name="token")
app.add_typer(rollup_app, name="rollup")
app.command()(status)


@app.command("check-config")
def check_config(
    file: Annotated[Path, typer.Argument(help="Site configuration file (TOML)")],
) -> None:
    """Validate a site configuration; print its sites and meters."""
    try:
        config = read_sites(file)
    except ConfigUnreadable as exc:  # names the file and the cause
        console.print(str(exc), markup=False, highlight=False, style="red")
        raise typer.Exit(2) from None
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
    from gateway.buffer import BufferError, ReadingBuffer

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
    from gateway.deadletter import DeadLetterLog
    from gateway.gateway import Gateway
    from gateway.sources.registry import SourceOptions
    from stores import open_store

    setup_logging(verbose)
    settings = settings_from(config, store, mqtt)
    sites = load_sites(settings)
    with refused_at_start("the gateway"):
        gw = Gateway(
            sites,
            # The client id names its rollup markers (stores.influx_rollup): once
            # restarted, it takes back the days it left dirty.
            open_store(
                settings.store_url,
                reveal(settings.influx_token),
                writer=settings.gateway_client_id,
            ),
            SourceOptions(mqtt_settings(settings), settings.gateway_client_id),
            dead_letters=DeadLetterLog(settings.dead_letter_file),
            buffer=_gateway_buffer(settings),
        )
    gw.start()
    if settings.gateway_metrics_port:
        port = gw.serve_metrics(settings.gateway_metrics_host, settings.gateway_metrics_port)
        logging.info("gateway metrics on http://%s:%d/metrics", settings.gateway_metrics_host, port)
    logging.info("gateway running, store %s", redact_url(settings.store_url))
    writer_died = wait_for_signal(gw.failed)
    gw.stop()
    logging.info(
        "gateway stopped: %d received, %d readings written, %d rejected",
        gw.received,
        gw.writer.written,
        gw.dead_letters.total,
    )
    if writer_died:
        # Nothing unacknowledged is lost (the broker and the buffer keep it): exit
        # non-zero so that the supervisor (compose's restart policy) starts us again.
        logging.critical("gateway exits: its batch writer died")
        raise typer.Exit(70)


#: The service's GIL switch interval [s] (see serve).
QUERY_SWITCH_INTERVAL_S = 0.001


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

    from service.app import create_app

    settings = settings_from(config, store, mqtt)
    load_sites(settings)
    try:
        with refused_at_start("the service"):
            app = create_app(settings)
    except ValueError as exc:  # e.g. a placeholder MICROVILLE_API_READ_TOKEN
        console.print("[red]cannot start the service:[/red]", end=" ")
        console.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(2) from None
    # The event loop (and /health) waits for the GIL behind the query threads; a 1 ms
    # switch interval (Python's is 5 ms) got /health's p95 under 50 clients' year
    # queries from 88-127 ms to 66 ms for the same throughput (concurrent_reads bench).
    sys.setswitchinterval(QUERY_SWITCH_INTERVAL_S)
    uvicorn.run(app, host=host or settings.api_host, port=port or settings.api_port)


def _parse_start(value: str, today: date) -> date:
    """An ISO date, or ``today-N``: N days before ``today`` (the compose demo simulates
    the last days, so that the dashboards' default ranges show them)."""
    if m := re.fullmatch(r"today-(\d{1,4})", value):
        return today - timedelta(days=int(m[1]))
    try:
        return date.fromisoformat(value)
    except ValueError:
        console.print(f"[red]--start[/red]: {value!r} is not a date like 2026-10-01 or today-30")
        raise typer.Exit(2) from None


def _month_option(option: str, value: str) -> Month:
    """``value`` of a YYYY-MM option, or exit 2 naming the option and the form."""
    from domain.reporting import Month

    form = "(expected YYYY-MM, e.g. 2026-10)"
    if not re.fullmatch(r"\s*\d{4}-\d{2}\s*", value):
        console.print(f"[red]{option}[/red]: {value!r} is not a month {form}", highlight=False)
        raise typer.Exit(2)
    try:
        return Month.parse(value)
    except ValueError:
        console.print(f"[red]{option}[/red]: no such month {value.strip()} {form}", highlight=False)
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
    from firmware_sim.playback import Playback
    from firmware_sim.publisher import write_truth

    settings = settings_from(config, None, mqtt)
    sites = load_sites(settings)
    chosen = [s for s in sites.sites if not site or s.id in site]
    if unknown := [repr(s) for s in site or [] if sites.site(s) is None]:
        known = ", ".join(s.id for s in sites.sites)
        console.print(
            f"[red]--site[/red]: no site {', '.join(unknown)}; known: {known}", highlight=False
        )
        raise typer.Exit(2)
    first_day = _parse_start(start, date.today())
    if 1440 % step_min:
        console.print(f"[red]--step-min[/red] {step_min} must divide a day (1440 minutes)")
        raise typer.Exit(2)
    # Each site from its own local midnight to its own: sites may be in any timezone.
    last_day = first_day + timedelta(days=days)
    windows = {s.id: (_local_midnight(first_day, s), _local_midnight(last_day, s)) for s in chosen}
    playback = Playback(
        sites, chosen, windows, timedelta(minutes=step_min), seed, speed or 1.0,
        corruption=tic_corruption,
    )  # fmt: skip
    if playback.serial and not speed:
        console.print("[red]--speed[/red] 0 (flat out) cannot pace serial devices")
        raise typer.Exit(2)
    playback.plug()
    for devices in playback.serial:
        console.print(f"emulated serial devices on {', '.join(devices.ports)}")

    def wait_for_serial() -> None:
        while not playback.serial_done():
            time.sleep(0.1)
        time.sleep(2)  # let a reader pick up the last frames and polls

    try:
        result = playback.play(mqtt_settings(settings), speed, sys.stderr.isatty(), wait_for_serial)
    finally:
        playback.stop()
    for site_id, figures in result.items():
        console.print(
            f"ground truth {site_id}: "
            + ", ".join(f"{k.removesuffix('_wh')} {v / 1000:.3f} kWh" for k, v in figures.items())
        )
    if truth is not None:
        write_truth(result, truth)


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

    from domain.reporting import Language, months_between
    from service.monthly_report.make import make_report
    from service.usecases.kernel import QueryError
    from stores import open_store
    from stores.ledger import SqliteLedger
    from stores.reports import ReportArchive

    settings = settings_from(config, store, None)
    chosen = site_of(load_sites(settings), site)
    first = _month_option("--month", month)
    last = _month_option("--until", until) if until else first
    if last < first:
        console.print(f"[red]--until[/red]: {last} is before --month {first}", highlight=False)
        raise typer.Exit(2)
    months = months_between(first, last)
    try:
        language = Language(lang) if lang else None
    except ValueError:
        known = " or ".join(x.value for x in Language)
        console.print(
            f"[red]--lang[/red]: {lang!r} is not a language (expected {known})", highlight=False
        )
        raise typer.Exit(2) from None
    if not settings.reports_dir:
        console.print("[red]MICROVILLE_REPORTS_DIR is empty[/red]: nowhere to keep reports")
        raise typer.Exit(2)
    with refused_at_start("reporting"):
        target = open_store(settings.store_url, reveal(settings.influx_token))
        ledger = SqliteLedger(settings.ledger_path)
        archive = ReportArchive(settings.reports_dir)
    made = []
    try:
        with Progress(console=console, transient=True, disable=len(months) < 2) as progress:
            task = progress.add_task("reports", total=len(months))
            for m in months:
                made.append(
                    make_report(chosen, target, ledger, archive, m, language, now=system_clock())
                )
                progress.advance(task)
    except QueryError as exc:
        console.print(f"[red]cannot report[/red] {chosen.id} {m}: {exc}", highlight=False)
        raise typer.Exit(2) from None
    finally:
        target.close()
        ledger.close()
    for record, has_data in made:
        if not has_data:
            console.print(
                f"[yellow]warning:[/yellow] no data for {record.site} in {record.month} "
                '(no meter reading in the store for that month): the report says "no data"',
                highlight=False,
            )
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
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Add to the data of earlier runs in --data-dir"),
    ] = False,
) -> None:
    """Whole chain on embedded defaults: broker, gateway, SQLite, simulator, API, and an
    alert scenario (the balance turns negative when the PV inverter fails). Each run
    starts from an empty --data-dir unless --keep."""
    from cli.demo import DemoError, DemoRun, run_demo

    sample = SAMPLE_CONFIG.parent / f"{config}.toml"
    try:
        run_demo(
            console,
            DemoRun(
                sample if sample.is_file() else Path(config),
                days=days,
                start=start,
                mqtt_url=mqtt,
                data_dir=data_dir,
                port=port,
                broker_port=broker_port,
                keep_serving=keep_serving,
                speed=speed,
                dark_days=dark_days,
                tic_corruption=tic_corruption,
                keep=keep,
            ),
        )
    except DemoError as exc:
        console.print(f"[red]cannot run the demo:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None


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
    year of data, report time, memory (docs/reference/benchmarks.md)."""
    from bench.runner import DEFAULT_OUTPUT, DEFAULT_WORK, run_bench

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
