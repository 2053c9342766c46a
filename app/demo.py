"""``microville demo``: the whole chain on embedded defaults, for a first look."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table

from microville.domain.periods import localize
from microville.domain.site import read_sites
from microville.embedded_broker import EmbeddedBroker
from microville.firmware_sim.publisher import run_simulation
from microville.gateway.gateway import Gateway
from microville.gateway.sources import SourceOptions
from microville.mqtt import MqttSettings
from microville.service.app import create_app
from microville.settings import Settings
from microville.stores.sqlite import SqliteStore


def wait_until_quiet(gateway: Gateway, quiet_s: float = 1.0, timeout_s: float = 120.0) -> bool:
    """Wait until the gateway has received nothing for ``quiet_s`` and written everything."""
    deadline = time.monotonic() + timeout_s
    last = -1
    while time.monotonic() < deadline:
        if gateway.received == last:
            return gateway.writer.flush(max(0.1, deadline - time.monotonic()))
        last = gateway.received
        time.sleep(quiet_s)
    return False


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


def run_demo(
    console: Console,
    config: Path,
    days: int,
    start: str,
    mqtt_url: str | None,
    data_dir: Path,
    port: int,
    broker_port: int,
    keep_serving: bool,
) -> None:
    sites = read_sites(config)
    site = sites.sites[0]
    broker = None
    if mqtt_url is None:
        broker = EmbeddedBroker(port=broker_port)
        broker.start()
        mqtt_url = broker.url
        console.print(f"embedded MQTT broker (amqtt) on {mqtt_url}")
    mqtt = MqttSettings(url=mqtt_url)
    store = SqliteStore(data_dir / "readings.db")
    gateway = Gateway(
        sites, store, SourceOptions(mqtt, "microville-demo-gateway"), batch_delay_s=0.2
    )
    gateway.start()
    if not gateway.wait_ready(15):
        raise SystemExit(f"gateway could not connect to {mqtt_url}")

    day = date.fromisoformat(start)
    t0 = localize(datetime(day.year, day.month, day.day), site.tz)
    t1 = localize(datetime.combine(day + timedelta(days=days), datetime.min.time()), site.tz)
    console.print(f"simulating {days} days of {site.name} from {t0:%Y-%m-%d} …")
    truth = run_simulation(
        [site], mqtt, t0, t1, timedelta(minutes=15), seed=112, speed=0, progress=True
    )
    wait_until_quiet(gateway)
    console.print(
        f"gateway: {gateway.received} messages, {gateway.writer.written} readings "
        f"written to {store.path}, {gateway.dead_letters.total} rejected"
    )

    settings = Settings(config=str(config), store_url=f"sqlite:///{store.path}", mqtt_url=mqtt_url)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, store=store), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    query = f"start={t0.date()}&end={t1.date()}&step=day"
    body = httpx.get(
        f"{base}/api/v1/sites/{site.id}/balance",
        params=dict(start=str(t0.date()), end=str(t1.date()), step="day"),
        timeout=30,
    ).json()
    console.print(_table(body, truth[site.id]))
    console.print(f"API docs:  {base}/docs")
    console.print(f"balance:   {base}/api/v1/sites/{site.id}/balance?{query}")
    console.print(f"health:    {base}/health")
    try:
        if keep_serving:
            console.print("serving; Ctrl-C to stop")
            thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.should_exit = True
        thread.join(5)
        gateway.stop()
        store.close()
        if broker is not None:
            broker.stop()
