"""The alert engine on a simulated spring: sunny, then a dark fortnight, then sun again.

Real delivery: an SMTP server (aiosmtpd), an HTTP receiver that refuses the first
attempt, and Mosquitto.
"""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from helpers.receivers import HungReceiver, Inbox, Receiver
from helpers.services import free_port
from helpers.support import GRID_AND_PV_METERS, SITE_S1, Clock, wait_until
from paho.mqtt.enums import CallbackAPIVersion

from domain.alert_config import EmailChannel, MqttChannel, WebhookChannel
from domain.alerts import balance_firing
from domain.clock import fixed_clock
from domain.periods import localize
from domain.readings import Reading
from domain.site import SitesConfig, parse_sites
from domain.store import ReadingStore
from firmware_sim.building import index_at, simulate_building
from microville.mqtt import MqttSettings
from microville.settings import Settings
from service.alerts.engine import AlertEngine
from service.alerts.outbox import Outbox
from service.app import create_app

ALERT_RULES = """
[sites.alerts]
windows = ["rolling_7d"]
hysteresis_kwh = 50
trajectory = false
coverage = false
resets = false
reminder_h = 1000
silent_after_s = 7200
"""
COLUMNS = {"pv": "pv_wh", "in": "import_wh", "out": "export_wh"}
DAYS = 40


@pytest.fixture
def spring(store: ReadingStore) -> tuple[SitesConfig, pd.DataFrame, datetime]:
    sites = parse_sites(SITE_S1 + ALERT_RULES + GRID_AND_PV_METERS)
    site = sites.sites[0]
    start = localize(datetime(2026, 4, 1), site.tz)
    dark = (start + timedelta(days=15), start + timedelta(days=29))  # a dark fortnight
    frame = simulate_building(site, start, start + timedelta(days=DAYS), timedelta(minutes=15), 3,
                              pv_outages=[dark])  # fmt: skip
    store.write([
        Reading(site.id, meter, "energy", float(v), t.to_pydatetime())
        for meter, column in COLUMNS.items() for t, v in frame[column].items()
    ])  # fmt: skip
    return sites, frame, start


def _expected_events(
    frame: pd.DataFrame, times: list[datetime], hysteresis: float
) -> list[tuple[datetime, str]]:
    """From the simulator's ground truth: the rolling-7-day net at each evaluation and
    the hysteresis, the firing/resolved events the engine must produce."""
    events, firing = [], False
    for t in times:
        a = t - timedelta(days=7)
        net_kwh = (
            sum(
                (index_at(frame, c, t) - index_at(frame, c, a)) * sign
                for c, sign in (("export_wh", 1), ("import_wh", -1))
            )
            / 1000
        )
        now_firing = balance_firing(net_kwh, firing, hysteresis)
        if now_firing != firing:
            events.append((t, "firing" if now_firing else "resolved"))
        firing = now_firing
    return events


@pytest.fixture
def channels(tmp_path: Path, smtp_server: tuple[Inbox, int], mosquitto_url: str,
             receivers: list[Receiver]) -> Iterator[dict[str, Any]]:  # fmt: skip
    inbox, smtp_port = smtp_server
    webhook = Receiver(free_port(), fail_first=1)  # answers 503 to the first attempt
    receivers.append(webhook)
    received: list[tuple[str, dict[str, Any]]] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="alert-watcher")
    sub.on_message = lambda _c, _u, m: received.append((m.topic, json.loads(m.payload)))
    settings = MqttSettings(url=mosquitto_url)
    sub.connect(settings.host, settings.port)
    sub.subscribe("microville/alerts/#", qos=1)
    sub.loop_start()
    configs = [
        EmailChannel(name="mail", host="127.0.0.1", port=smtp_port, starttls=False,
                     sender="monitor@example.org", recipients=["fm@example.org"], timeout_s=2),
        WebhookChannel(name="hook", url=webhook.url, timeout_s=1),
        MqttChannel(name="bus"),
    ]  # fmt: skip
    outbox = Outbox(
        tmp_path / "alerts.db", configs, mqtt=settings, backoff_s=0.05, max_backoff_s=0.2
    )
    yield {"outbox": outbox, "inbox": inbox, "webhook": webhook, "mqtt": received}
    sub.loop_stop()
    sub.disconnect()
    outbox.close()


def test_dark_fortnight_fires_once_per_channel_and_resolves_when_the_sun_returns(
    spring: tuple[SitesConfig, pd.DataFrame, datetime], store: ReadingStore,
    channels: dict[str, Any], tmp_path: Path,
) -> None:  # fmt: skip
    sites, frame, start = spring
    times = [start + timedelta(days=d, hours=12) for d in range(8, DAYS)]
    expected = _expected_events(frame, times, hysteresis=50)
    # The scenario: one dip below zero during the dark fortnight, one recovery.
    assert [e for _, e in expected] == ["firing", "resolved"]

    clock = Clock(times[0])
    engine = AlertEngine(sites, store, tmp_path / "alerts.db", channels["outbox"], clock=clock)
    seen: list[tuple[datetime, str]] = []
    for t in times:
        clock.t = t
        seen += [(n.time, n.event) for n in engine.evaluate() if n.rule == "balance_rolling_7d"]
    assert seen == expected  # on the right days, no flapping, no duplicates

    # The webhook receiver refuses the first attempt (503): the outbox retries it, and
    # the resolution waits behind the firing (in order within a channel).
    webhook: Receiver = channels["webhook"]
    webhook.start()
    outbox: Outbox = channels["outbox"]
    outbox.deliver_due()
    assert [b["event"] for b in webhook.requests] == ["firing"] and webhook.accepted == []
    refused = sorted((d for d in outbox.pending() if d.channel == "hook"), key=lambda d: d.id)
    assert [(d.notification.event, d.attempts) for d in refused] == [("firing", 1), ("resolved", 0)]
    assert "503" in (refused[0].last_error or "")
    assert wait_until(lambda: outbox.deliver_due() >= 0 and not outbox.pending(), 15)
    assert [b["event"] for b in webhook.requests] == ["firing", "firing", "resolved"]
    assert [b["event"] for b in webhook.accepted] == ["firing", "resolved"]
    hook = [d for d in outbox.history(100) if d.channel == "hook"]
    assert sorted((d.notification.event, d.attempts, d.status) for d in hook) == [
        ("firing", 2, "delivered"), ("resolved", 1, "delivered")]  # fmt: skip
    assert len(channels["inbox"].messages) == 2
    assert "balance" in channels["inbox"].messages[0]["Subject"]
    assert wait_until(lambda: len(channels["mqtt"]) == 2, 5)
    topic, payload = channels["mqtt"][0]
    assert topic == "microville/alerts/s1/balance_rolling_7d" and payload["event"] == "firing"
    assert payload["figures"]["net_kwh"] < 0

    # The API shows the alert, resolved, with its history; acknowledging works.
    app = create_app(Settings(config="/dev/null"), store=store, sites=sites, alerts=engine)
    with TestClient(app) as client:
        body = client.get("/api/v1/sites/s1/alerts").json()
        assert body["firing"] == []
        (resolved,) = [a for a in body["resolved"] if a["rule"] == "balance_rolling_7d"]
        assert resolved["alert_id"] == "s1:balance:rolling_7d"
        assert [e["event"] for e in body["history"] if e["alert_id"] == resolved["alert_id"]] == [
            "resolved", "firing",
        ]  # fmt: skip
        ack = client.post("/api/v1/sites/s1/alerts/s1:balance:rolling_7d/acknowledge")
        assert ack.status_code == 200 and ack.json()["acknowledged"] is True
        assert client.post("/api/v1/sites/s1/alerts/nope/acknowledge").status_code == 404


def test_state_survives_a_restart_without_notifying_again(
    spring: tuple[SitesConfig, pd.DataFrame, datetime], store: ReadingStore, tmp_path: Path
) -> None:
    sites, _frame, start = spring
    dark_day = start + timedelta(days=26, hours=12)  # deep in the dark fortnight
    outbox = Outbox(tmp_path / "alerts.db", [])
    engine = AlertEngine(sites, store, tmp_path / "alerts.db", outbox, clock=lambda: dark_day)
    assert [n.event for n in engine.evaluate() if n.rule == "balance_rolling_7d"] == ["firing"]
    engine.stop()
    restarted = AlertEngine(sites, store, tmp_path / "alerts.db", outbox,
                            clock=lambda: dark_day + timedelta(hours=1))  # fmt: skip
    assert [n for n in restarted.evaluate() if n.rule == "balance_rolling_7d"] == []
    (status,) = [a for a in restarted.alerts("s1") if a.rule == "balance_rolling_7d"]
    assert status.state == "firing" and status.first_seen == dark_day
    restarted.stop()
    outbox.close()


def test_silent_meter_alert_after_the_configured_interval(
    spring: tuple[SitesConfig, pd.DataFrame, datetime], store: ReadingStore, tmp_path: Path
) -> None:
    sites, _frame, start = spring
    end = start + timedelta(days=DAYS)  # the last readings
    outbox = Outbox(tmp_path / "alerts.db", [])
    clock = Clock(end + timedelta(hours=1))
    engine = AlertEngine(sites, store, tmp_path / "alerts.db", outbox, clock=clock)
    assert [n for n in engine.evaluate() if n.rule == "silent_meter"] == []  # 1 h < 2 h
    clock.t = end + timedelta(hours=1, microseconds=250_000)  # a real clock's sub-seconds
    assert [n for n in engine.evaluate() if n.rule == "silent_meter"] == []
    clock.t = end + timedelta(hours=2, minutes=1)
    silent = [n for n in engine.evaluate() if n.rule == "silent_meter"]
    assert sorted(n.alert_id for n in silent) == ["s1:silent:in", "s1:silent:out", "s1:silent:pv"]
    assert all(n.event == "firing" and n.figures["silent_s"] == 7260 for n in silent)
    engine.stop()
    outbox.close()


# --- delivery, transactions and concurrency through the engine --------------------------


def test_service_delivers_each_channel_on_its_own_and_retries_without_evaluating_again(
    store: ReadingStore, smtp_server: tuple[Inbox, int], receivers: list[Receiver],
    tmp_path: Path, now: datetime,
) -> None:  # fmt: skip
    """MICROVILLE_ALERT_INTERVAL_S=0 (evaluate on demand only), one evaluation: the
    e-mail arrives while a hung webhook still waits for its answer, and a webhook down
    for its first attempt gets the event at its retry (the outbox's 5 s backoff)."""
    inbox, smtp_port = smtp_server
    hung = HungReceiver()
    late = Receiver(free_port(), fail_first=1)
    receivers.append(late)
    late.start()
    channels = f"""
[[alert_channels]]
type = "webhook"
name = "stuck"
url = "{hung.url}"
timeout_s = 60

[[alert_channels]]
type = "webhook"
name = "late"
url = "{late.url}"

[[alert_channels]]
type = "email"
name = "mail"
host = "127.0.0.1"
port = {smtp_port}
starttls = false
sender = "monitor@example.org"
recipients = ["fm@example.org"]
"""
    sites = parse_sites(SITE_S1 + ALERT_RULES + GRID_AND_PV_METERS + channels)
    store.write([Reading("s1", m, "energy", 1000.0, now - timedelta(hours=3))
                 for m in ("pv", "in", "out")])  # fmt: skip
    settings = Settings(config="/dev/null", alerts_path=str(tmp_path / "svc.db"),
                        alert_interval_s=0)  # fmt: skip
    # The rules are judged at the tests' now; the outbox delivers in real time.
    app = create_app(settings, store=store, sites=sites, clock=fixed_clock(now))
    try:
        with TestClient(app) as client:
            assert client.post("/api/v1/sites/s1/alerts/evaluate").status_code == 200
            outbox: Outbox = app.state.alerts.outbox
            events = len({d.notification.alert_id for d in outbox.history(1000)})
            assert events == 3  # the three meters are silent: one event each
            assert wait_until(lambda: len(inbox.messages) == events and bool(hung.held), 20)
            stuck = [d for d in outbox.history(1000) if d.channel == "stuck"]
            assert [d.attempts for d in stuck] == [0] * events  # the first still in flight
            # The late receiver refused the first attempt; its retry comes on its own.
            assert wait_until(lambda: len(late.accepted) == events, 30)
            assert len(late.requests) == events + 1
            assert all(b["rule"] == "silent_meter" for b in late.accepted)
    finally:
        hung.close()


class _FailingInserts:
    """A real SQLite error on every insert into the outbox (a trigger on its table)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        with sqlite3.connect(self.path) as db:
            db.execute("CREATE TRIGGER fail BEFORE INSERT ON deliveries"
                       " BEGIN SELECT RAISE(ABORT, 'disk I/O error (injected)'); END")  # fmt: skip

    def __exit__(self, *_exc: object) -> None:
        with sqlite3.connect(self.path) as db:
            db.execute("DROP TRIGGER fail")


def test_an_event_that_could_not_be_queued_is_queued_at_the_next_evaluation(
    spring: tuple[SitesConfig, pd.DataFrame, datetime], store: ReadingStore, tmp_path: Path
) -> None:
    sites, _frame, start = spring
    dark_day = start + timedelta(days=26, hours=12)
    path = tmp_path / "alerts.db"
    outbox = Outbox(path, [WebhookChannel(name="hook", url="http://127.0.0.1:9/")])
    clock = Clock(dark_day)
    engine = AlertEngine(sites, store, path, outbox, clock=clock)
    with _FailingInserts(path), contextlib.suppress(sqlite3.Error):
        engine.evaluate()
    assert outbox.pending() == []
    # Nothing recorded either: the alert is not marked notified without its event.
    assert [a for a in engine.alerts("s1") if a.rule == "balance_rolling_7d"] == []
    clock.t = dark_day + timedelta(minutes=5)
    assert [n.event for n in engine.evaluate() if n.rule == "balance_rolling_7d"] == ["firing"]
    (queued,) = [d for d in outbox.pending() if d.notification.rule == "balance_rolling_7d"]
    assert queued.notification.event == "firing" and queued.channel == "hook"
    engine.stop()
    outbox.close()


class _HookedLock:
    """The engine's database lock, running ``hook`` once before the first acquisition
    made directly by ``_apply`` in the thread that created it: the moment an evaluation
    has judged the previous states and is about to record the new ones."""

    def __init__(self, lock: Any, hook: Callable[[], None]) -> None:
        self.lock, self.hook, self.thread = lock, hook, threading.get_ident()
        self.fired = False

    def __enter__(self) -> bool:
        caller = sys._getframe(1).f_code.co_name
        if not self.fired and threading.get_ident() == self.thread and caller == "_apply":
            self.fired = True
            self.hook()
        return bool(self.lock.__enter__())

    def __exit__(self, *exc: object) -> None:
        self.lock.__exit__(*exc)


def test_concurrent_evaluations_notify_a_firing_once(
    spring: tuple[SitesConfig, pd.DataFrame, datetime], store: ReadingStore, tmp_path: Path
) -> None:
    """A periodic evaluation and one asked through the API at the same moment: the
    second runs at the worst time (the first has judged, not yet recorded)."""
    sites, _frame, start = spring
    dark_day = start + timedelta(days=26, hours=12)
    outbox = Outbox(tmp_path / "alerts.db", [])
    engine = AlertEngine(sites, store, tmp_path / "alerts.db", outbox, clock=lambda: dark_day)
    second: list[list[str]] = []

    def evaluate_concurrently() -> None:
        other = threading.Thread(target=lambda: second.append(
            [n.event for n in engine.evaluate() if n.rule == "balance_rolling_7d"]))  # fmt: skip
        other.start()
        other.join(3)  # serialised, it waits for the first to finish: give up waiting

    engine._lock = _HookedLock(engine._lock, evaluate_concurrently)  # type: ignore[assignment]
    first = [n.event for n in engine.evaluate() if n.rule == "balance_rolling_7d"]
    assert wait_until(lambda: bool(second), 30)
    assert sorted([first, second[0]]) == [[], ["firing"]]
    firing = [e for e in engine.history("s1") if e["alert_id"] == "s1:balance:rolling_7d"]
    assert [e["event"] for e in firing] == ["firing"]
    engine.stop()
    outbox.close()


def test_the_demo_replays_its_alerts_afresh_when_run_again_on_the_same_data_dir(
    spring: tuple[SitesConfig, pd.DataFrame, datetime], store: ReadingStore,
    mosquitto_url: str, tmp_path: Path,
) -> None:  # fmt: skip
    """The demo evaluates simulated evenings from the period's start: a second run on the
    same data folder starts from an alert state of its own (the first run's is ahead of
    its clock), and tells the same story."""
    from rich.console import Console

    from cli.demo import _evaluate_alerts

    sites, _frame, start = spring
    end = start + timedelta(days=DAYS)
    runs = []
    for _ in range(2):
        console = Console(file=io.StringIO(), width=200)
        engine = _evaluate_alerts(console, sites, store, tmp_path, MqttSettings(url=mosquitto_url),
                                  start, end)  # type: ignore[arg-type]  # fmt: skip
        engine.stop()
        engine.outbox.close()
        printed = console.file.getvalue()  # type: ignore[attr-defined]
        runs.append([line for line in printed.splitlines() if line.startswith("alert ")])
    assert any("alert firing: Test site: the final-energy balance over rolling 7d" in line
               for line in runs[0])  # fmt: skip
    assert runs[1] == runs[0]  # the second run's own events, the same
