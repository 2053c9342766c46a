"""``microville demo``: the whole chain on embedded defaults, for a first look."""

from __future__ import annotations

import errno
import math
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from cli.embedded_broker import EmbeddedBroker
from domain.alert_config import MqttChannel
from domain.clock import system_clock
from domain.coverage import coverage_percent
from domain.materials import parse_materials_csv
from domain.periods import localize
from domain.records import WasteEntry
from domain.reporting import Language, Month, months_between
from domain.site import Site, SitesConfig, read_sites
from domain.waste import WasteStream
from firmware_sim.playback import Playback
from firmware_sim.serial_devices import relocate_serial_ports
from gateway.gateway import Gateway
from gateway.sources.registry import SourceOptions
from microville import SAMPLE_SITES
from microville.mqtt import MqttSettings, make_client
from microville.settings import Settings
from service.alerts.engine import AlertEngine
from service.alerts.outbox import Outbox
from service.app import create_app
from service.monthly_report.figures import monthly_report
from service.monthly_report.make import generate_report
from service.monthly_report.render import render_html
from service.usecases.kernel import QueryError
from stores.ledger import SqliteLedger
from stores.reports import ReportArchive
from stores.sqlite import SqliteStore

#: Simulation step and seed of the demo (the ground truth depends on both).
STEP = timedelta(minutes=15)
SAMPLE_MATERIALS = SAMPLE_SITES / "microville112-materials.csv"
SEED = 112


#: What the building's operation sends away each week in the demo [kg]: mostly recycled
#: and composted, little residual (illustrative figures).
SAMPLE_WEEKLY_WASTE_KG = {
    WasteStream.RECYCLING: 42.0,
    WasteStream.COMPOSTING: 26.0,
    WasteStream.REUSE: 8.0,
    WasteStream.ENERGY_RECOVERY: 5.0,
    WasteStream.LANDFILL: 11.0,
}

#: What a demo run writes in its data folder: removed before a run unless ``--keep``.
DEMO_FILES = ("readings.db", "ledger.db", "alerts.db", "api-tokens.db")
DEMO_FOLDERS = ("reports",)
#: The compose stack's Grafana (docker-compose.yml publishes it on this port).
GRAFANA_URL = "http://localhost:3000"


class DemoError(Exception):
    """A demo that cannot run, said in one line: the command exits 2."""


def port_taken(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (as uvicorn and the broker listen:
    SO_REUSEADDR), or None when it is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
    return None


def check_ports(host: str, port: int, broker_port: int | None) -> None:
    """Refuse a run whose API port (or embedded broker's, when it starts one) is taken,
    before anything is simulated or created."""
    why = port_taken(host, port)
    if why is not None:
        raise DemoError(f"API port {port} on {host}: {why}; choose another with --port")
    if broker_port is not None:
        why = port_taken(host, broker_port)
        if why is not None:
            raise DemoError(
                f"embedded MQTT broker port {broker_port} on {host}: {why}; choose another"
                " with --broker-port, or use a running broker with --mqtt URL"
            )


def fresh_data_dir(data_dir: Path, keep: bool) -> str:
    """Make ``data_dir``; unless ``keep``, remove what an earlier demo run left there
    (its store would mix with this run's readings). Returns how the folder is used."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if keep:
        return "kept: this run adds to the data already there"
    earlier = [data_dir / n for n in DEMO_FILES] + [data_dir / n for n in DEMO_FOLDERS]
    if not any(p.exists() for p in earlier):
        return "new"
    for name in DEMO_FILES:
        for suffix in ("", "-wal", "-shm", "-journal"):
            (data_dir / f"{name}{suffix}").unlink(missing_ok=True)
    for folder in DEMO_FOLDERS:
        shutil.rmtree(data_dir / folder, ignore_errors=True)
    return "emptied: an earlier run's data removed; --keep adds to it instead"


def verdict_line(targets: dict[str, object]) -> str:
    """One line of the period's target verdicts with their coverage, from ``/targets``."""
    verdicts = targets.get("verdicts")
    assert isinstance(verdicts, list)
    said = ", ".join(
        f"{v['target'].replace('_', ' ')} {v['verdict'].replace('_', ' ')}"
        f" ({coverage_percent(v['coverage']):g} % of the data)"
        for v in verdicts
    )
    start, end = str(targets["start"])[:10], str(targets["end"])[:10]
    return f"verdict {start} → {end}: {said}"


def _add_sample_waste(ledger: SqliteLedger, sites: SitesConfig, t0: datetime, t1: datetime) -> None:
    """Weekly waste collections over the simulated period (once per data directory),
    counted back from its last evening so that every day is weighed within a week (the
    waste coverage of a site with weekly collections, ``waste_entry_interval_days`` 7)."""
    for site in sites.sites:
        if ledger.waste_entries(site.id, t0, t1):
            continue
        last = t1 - timedelta(hours=6)
        weeks = math.ceil((last - t0) / timedelta(days=7))
        ledger.add_waste_entries(
            site.id,
            [
                WasteEntry(
                    time=last - timedelta(days=7 * w),
                    stream=stream,
                    mass_kg=mass_kg,
                    destination="demo collection",
                )
                for w in range(weeks)
                for stream, mass_kg in SAMPLE_WEEKLY_WASTE_KG.items()
            ],
        )


def _monthly_reports(
    console: Console,
    sites: SitesConfig,
    store: SqliteStore,
    ledger: SqliteLedger,
    alerts: AlertEngine,
    reports_dir: Path,
    t0: datetime,
    t1: datetime,
) -> list[Path]:
    """The monthly reports of the simulated months (in both languages), as the scheduler
    would have made them on the 1st: PDF and HTML files under ``reports_dir``."""
    archive = ReportArchive(reports_dir)
    paths: list[Path] = []
    no_pdf: OSError | ImportError | None = None
    try:
        for site in sites.sites:
            months = months_between(
                Month.of(t0, site.tz), Month.of(t1 - timedelta(seconds=1), site.tz)
            )
            for month in months:
                for language in (site.language, *(x for x in Language if x != site.language)):
                    try:
                        record = generate_report(
                            site,
                            store,
                            ledger,
                            archive,
                            month,
                            language,
                            alerts,
                            scheduled=True,
                            now=system_clock(),
                        )
                    except (OSError, ImportError) as exc:  # WeasyPrint without Pango
                        no_pdf = exc
                        report = monthly_report(
                            site, store, ledger, month, alerts, now=system_clock()
                        )
                        html = render_html(report, language)
                        path = archive.path(site.id, month, language, "html")
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_text(html, encoding="utf-8")
                        paths.append(path)
                        continue
                    for fmt in ("pdf", "html"):
                        paths.append(archive.path(site.id, record.month, language, fmt))
    except QueryError as exc:  # a month not over yet in real time: nothing to report
        console.print(f"no monthly report: {exc}")
    finally:
        archive.close()
    if no_pdf is not None:
        console.print(
            f"PDF reports skipped: WeasyPrint cannot run ({no_pdf}); HTML written. For the"
            " PDFs install Pango (Debian: apt-get install libpango-1.0-0 libpangoft2-1.0-0"
            " fonts-dejavu-core)",
            markup=False,
        )
    return paths


def wait_until_quiet(gateway: Gateway, quiet_s: float = 1.0, timeout_s: float = 120.0) -> bool:
    """Wait until the MQTT source has received nothing for ``quiet_s`` (the simulator
    publishes flat out, ahead of the gateway), then until the writer is idle."""
    mqtt = [s for s in gateway.sources if s.name == "mqtt"]
    deadline = time.monotonic() + timeout_s
    last = -1
    while mqtt and time.monotonic() < deadline and mqtt[0].received != last:
        last = mqtt[0].received
        time.sleep(quiet_s)
    return gateway.writer.flush(max(0.1, deadline - time.monotonic()))


def _table(body: dict[str, object], truth: dict[str, float]) -> Table:
    total = body["total"]
    assert isinstance(total, dict)
    table = Table(title=f"Balance {total['start']} → {total['end']}")
    table.add_column("figure")
    table.add_column("API (from the store)", justify="right")
    table.add_column("simulator ground truth", justify="right")
    for key, truth_key in (
        ("production_kwh", "production_wh"),
        ("import_kwh", "import_wh"),
        ("export_kwh", "export_wh"),
        ("consumption_kwh", "consumption_wh"),
        ("net_kwh", None),
    ):
        expected = truth.get(truth_key, float("nan")) / 1000 if truth_key else None
        table.add_row(key, f"{total[key]:,.1f}", "" if expected is None else f"{expected:,.1f}")
    for key in ("self_consumption", "self_sufficiency", "coverage"):
        value = total[key]
        table.add_row(key, "—" if value is None else f"{value:.1%}", "")
    return table


def _wait_for_serial(console: Console, playback: Playback) -> None:
    """Until every emulated serial device has played the whole period."""
    clock = playback.clock
    with Progress(console=console, transient=True) as progress:
        total = (playback.end - clock.start).total_seconds()
        task = progress.add_task("serial devices", total=total)
        while not playback.serial_done():
            progress.update(
                task,
                completed=min(
                    (clock.now() - clock.start).total_seconds(), progress.tasks[0].total or 0
                ),
            )
            time.sleep(0.1)


def _evaluate_alerts(
    console: Console,
    sites: SitesConfig,
    store: SqliteStore,
    data_dir: Path,
    mqtt: MqttSettings,
    start: datetime,
    end: datetime,
) -> AlertEngine:
    """Evaluate the alert rules every simulated evening, as the service would have done
    through the period, delivering to an MQTT channel of the demo's broker; print what a
    subscriber receives. The alert state (``alerts.db``) is the run's own: an earlier
    run's is removed first."""
    received: list[str] = []
    watcher = make_client(mqtt, client_id="microville-demo-alert-watcher", persistent=False)
    watcher.on_message = lambda _c, _u, msg: received.append(f"{msg.topic}: {msg.payload.decode()}")
    watcher.connect(mqtt.host, mqtt.port)
    watcher.subscribe("microville/alerts/#", qos=1)
    watcher.loop_start()
    path = data_dir / "alerts.db"
    # The demo replays simulated time from its start: alert states (and undelivered
    # events) left by an earlier run are ahead of that clock, so each run starts afresh.
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    outbox = Outbox(path, [MqttChannel(name="demo-mqtt")], mqtt=mqtt, backoff_s=0.2)
    moments = []
    evening = start.replace(hour=21)  # local wall clock, whatever the UTC offset
    while evening < end:
        moments.append(evening)
        evening += timedelta(days=1)
    now = [start]
    engine = AlertEngine(sites, store, path, outbox, clock=lambda: now[0])
    events = []
    for moment in [*moments, end]:
        now[0] = moment
        events += engine.evaluate()
    # Until the watcher has each event (one channel: one message per event), or 30 s:
    # on a busy machine the deliveries and their echo take more than a moment.
    deadline = time.monotonic() + 30
    while (outbox.pending() or len(received) < len(events)) and time.monotonic() < deadline:
        time.sleep(0.2)
        outbox.deliver_due()
    watcher.loop_stop()
    watcher.disconnect()
    for n in events:
        console.print(f"alert {n.event}: {n.message}", markup=False)
    for line in received:
        console.print(f"delivered on MQTT {line}", markup=False, soft_wrap=True)
    return engine


@dataclass(frozen=True)
class DemoRun:
    """What ``microville demo`` was asked to run (its options).

    ``config``: the site file; ``days`` from ``start`` (ISO date) [d]; ``mqtt_url``: a
    running broker, or None for the embedded one on ``broker_port``; ``data_dir``: the
    store, ledger, alerts and reports, emptied first unless ``keep``; ``port``: the API;
    ``keep_serving``: until Ctrl-C; ``speed``: simulated seconds per real second of the
    serial devices; ``dark_days``: the PV inverter fails for the last N days;
    ``tic_corruption``: share of the emulated Linky frames damaged on the line [0, 1]."""

    config: Path
    days: int
    start: str
    mqtt_url: str | None
    data_dir: Path
    port: int
    broker_port: int
    keep_serving: bool
    speed: float = 86400.0
    dark_days: int = 10
    tic_corruption: float = 0.0
    keep: bool = False


def run_demo(console: Console, run: DemoRun) -> None:
    """The whole chain: MQTT devices (simulator), serial devices (emulators on
    pseudo-terminals, on a clock running ``run.speed`` times real time), gateway, SQLite
    store, API; prints the period's balance beside the simulator's ground truth.
    Raises :class:`DemoError` before anything is simulated when a port is taken."""
    check_ports("127.0.0.1", run.port, run.broker_port if run.mqtt_url is None else None)
    usage = fresh_data_dir(run.data_dir, run.keep)
    console.print(f"demo data in {run.data_dir.resolve()}: {usage}", markup=False, soft_wrap=True)
    # The emulated serial ports go in a folder of this run (the sample's /tmp/microville
    # would be shared by two demos at once), removed at the end.
    pty_dir = Path(tempfile.mkdtemp(prefix="microville-demo-"))
    try:
        _with_devices(console, run, pty_dir)
    finally:
        shutil.rmtree(pty_dir, ignore_errors=True)


def _with_devices(console: Console, run: DemoRun, pty_dir: Path) -> None:
    """The simulated building, its serial devices and the broker, around the chain."""
    sites = relocate_serial_ports(read_sites(run.config), pty_dir)
    site = sites.sites[0]
    day = date.fromisoformat(run.start)
    t0 = localize(datetime(day.year, day.month, day.day), site.tz)
    t1 = localize(datetime.combine(day + timedelta(days=run.days), datetime.min.time()), site.tz)
    # The scenario: the PV inverter fails for the last `dark_days` days, so the
    # rolling-7-day balance turns negative and the alert fires.
    dark = min(run.dark_days, run.days - 1)  # at least one sunny day
    outages = [(t1 - timedelta(days=dark), t1)] if dark else []
    playback = Playback(
        sites,
        [site],
        {site.id: (t0, t1)},
        STEP,
        SEED,
        run.speed,
        pv_outages=outages,
        corruption=run.tic_corruption,
    )
    playback.plug()

    broker = None
    mqtt_url = run.mqtt_url
    if mqtt_url is None:
        broker = EmbeddedBroker(port=run.broker_port)
        try:
            broker.start()
        except OSError as exc:  # taken between the check and now
            raise DemoError(
                f"embedded MQTT broker port {run.broker_port}: {exc.strerror or exc}; choose"
                " another with --broker-port"
            ) from exc
        mqtt_url = broker.url
        console.print(f"embedded MQTT broker (amqtt) on {mqtt_url}")
    try:
        _chain(console, run, sites, playback, mqtt_url)
    finally:
        playback.stop()
        if broker is not None:
            broker.stop()


def _chain(
    console: Console,
    run: DemoRun,
    sites: SitesConfig,
    playback: Playback,
    mqtt_url: str,
) -> None:
    """Gateway, simulation, store, alerts, reports and the API's answers."""
    site = sites.sites[0]
    t0, t1, clock = playback.start, playback.end, playback.clock
    data_dir = run.data_dir
    for serial_port in playback.ports:
        console.print(f"emulated serial device on {serial_port}")
    mqtt = MqttSettings(url=mqtt_url)
    store = SqliteStore(data_dir / "readings.db")
    # Devices without a clock of their own (Modbus, TIC historic) are stamped with the
    # simulation's clock; device times are checked against the real one (the MQTT
    # devices publish flat out, ahead of the simulation's clock).
    options = SourceOptions(
        mqtt, "microville-demo-gateway", clock=clock.now, now=lambda: datetime.now(UTC)
    )
    gateway = Gateway(sites, store, options, batch_delay_s=0.2)
    gateway.start()
    if not gateway.wait_ready(15):
        waiting = [s.name for s in gateway.sources if not s.ready]
        gateway.stop()
        raise DemoError(f"gateway sources not ready after 15 s: {', '.join(waiting)}")

    console.print(f"simulating {run.days} days of {site.name} from {t0:%Y-%m-%d} …")
    truth = playback.play(
        mqtt,
        publish_speed=0,
        progress=True,
        wait_for_serial=lambda: _wait_for_serial(console, playback),
    )
    wait_until_quiet(gateway)
    gateway.stop()
    console.print(
        f"gateway: {gateway.received} messages/frames/polls, {gateway.writer.written} readings "
        f"written to {store.path}, {gateway.dead_letters.total} rejected"
    )

    # The sample renovation's materials (illustrative factors), for the carbon figures.
    ledger = SqliteLedger(data_dir / "ledger.db")
    if not ledger.materials(site.id) and SAMPLE_MATERIALS.is_file():
        ledger.add_materials(site.id, parse_materials_csv(SAMPLE_MATERIALS.read_text("utf-8")))
    # Public read mode: the demo's API listens on loopback only, and its URLs are printed
    # to be opened in a browser, which sends no token. Writes still need one.
    settings = Settings(
        config=str(run.config),
        store_url=f"sqlite:///{store.path}",
        mqtt_url=mqtt_url,
        api_tokens_path=str(data_dir / "api-tokens.db"),
        api_public_read=True,
        reports_dir=str(data_dir / "reports"),
        report_interval_s=0,
    )
    _add_sample_waste(ledger, sites, t0, t1)
    alerts = _evaluate_alerts(console, sites, store, data_dir, mqtt, t0, t1)
    reports = _monthly_reports(console, sites, store, ledger, alerts, data_dir / "reports", t0, t1)
    app = create_app(settings, store=store, sites=sites, ledger=ledger, alerts=alerts)
    port = run.port
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():  # it could not bind (taken since the check)
                raise DemoError(f"API port {port}: the server did not start; choose another"
                                " with --port")  # fmt: skip
            time.sleep(0.05)
        _answer(console, site, t0, t1, truth, reports, port, run.keep_serving)
        if run.keep_serving:
            console.print("serving; Ctrl-C to stop")
            thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.should_exit = True
        thread.join(5)
        alerts.stop()
        alerts.outbox.close()
        store.close()
        ledger.close()


def _grafana_line() -> str:
    try:
        httpx.get(f"{GRAFANA_URL}/api/health", timeout=0.5).raise_for_status()
    except httpx.HTTPError:
        return (
            "Grafana:   not running here; the compose stack serves it on"
            f" {GRAFANA_URL} (docker compose --profile demo up -d)"
        )
    return f"Grafana:   {GRAFANA_URL}"


def _answer(
    console: Console,
    site: Site,
    t0: datetime,
    t1: datetime,
    truth: dict[str, dict[str, float]],
    reports: list[Path],
    port: int,
    keep_serving: bool,
) -> None:
    """The balance beside the ground truth, the URLs while the API serves, the things to
    open and the period's verdict."""
    base = f"http://127.0.0.1:{port}"
    period = {"start": str(t0.date()), "end": str(t1.date())}
    api = f"{base}/api/v1/sites/{site.id}"
    body = httpx.get(f"{api}/balance", params={**period, "step": "day"}, timeout=30).json()
    console.print(_table(body, truth[site.id]))
    targets = httpx.get(f"{api}/targets", params=period, timeout=60).json()
    query = f"start={t0.date()}&end={t1.date()}"
    if keep_serving:  # the URLs answer only while the API is up
        console.print(f"balance:   {api}/balance?{query}&step=day", soft_wrap=True)
        console.print(f"targets:   {api}/targets?{query}", soft_wrap=True)
        console.print(f"carbon:    {api}/carbon?{query}&step=day", soft_wrap=True)
        console.print(f"alerts:    {api}/alerts", soft_wrap=True)
        console.print(f"reports:   {api}/reports", soft_wrap=True)
        console.print(f"health:    {base}/health", soft_wrap=True)
    for path in reports:
        console.print(f"written:   {path}", markup=False, soft_wrap=True)
    console.print("open:", style="bold")
    if keep_serving:
        console.print(f"API docs:  {base}/docs", soft_wrap=True)
    pdfs = [p for p in reports if p.suffix == ".pdf"] or reports
    if pdfs:
        console.print(f"report:    {pdfs[0]}", markup=False, soft_wrap=True)
    console.print(_grafana_line(), markup=False, soft_wrap=True)
    console.print(verdict_line(targets), markup=False, soft_wrap=True)
