"""``/health`` on a real Mosquitto: one broker login per interval however many calls
(the route is anonymous), and a broker gone is reported within that interval."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers.services import running_mosquitto
from helpers.support import GRID_AND_PV_METERS, SITE_S1, wait_until

from microville.settings import Settings
from service.app import create_app
from stores import open_store

INTERVAL_S = 30.0


class Clock:
    """The app's clock, moved by the test."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at


def _settings(tmp_path: Path, port: int) -> Settings:
    config = tmp_path / "sites.toml"
    config.write_text(SITE_S1 + GRID_AND_PV_METERS)
    return Settings(
        config=str(config),
        api_tokens_path=str(tmp_path / "tokens.db"),
        mqtt_url=f"mqtt://127.0.0.1:{port}",
        mqtt_username="service",
        mqtt_password="right",
        health_interval_s=INTERVAL_S,
    )


def _health_logins(log: Path) -> int:
    """CONNECTs of the health check in the broker's own log."""
    text = log.read_text(errors="replace")
    return sum(
        "New client connected" in line and "microville-health" in line for line in text.splitlines()
    )


def test_many_health_calls_make_one_broker_login_per_interval(
    tmp_path: Path, now: datetime
) -> None:
    clock = Clock(now)
    store = open_store(f"sqlite:///{tmp_path}/readings.db")
    broker = tmp_path / "broker"
    with running_mosquitto(broker, users={"service": "right"}) as port:
        app = create_app(_settings(tmp_path, port), store=store, clock=clock)
        with TestClient(app) as c:
            answers = [c.get("/health") for _ in range(200)]
            assert all(r.status_code == 200 for r in answers)
            assert answers[-1].json() == {"status": "ok", "store": "ok", "broker": "ok"}
            assert wait_until(lambda: _health_logins(broker / "mosquitto.log") >= 1)
            assert _health_logins(broker / "mosquitto.log") == 1
            clock.at += timedelta(seconds=INTERVAL_S)  # the next interval: one more probe
            assert all(c.get("/health").status_code == 200 for _ in range(200))
            assert wait_until(lambda: _health_logins(broker / "mosquitto.log") >= 2)
            assert _health_logins(broker / "mosquitto.log") == 2
    store.close()


def test_a_broker_gone_is_reported_within_the_interval(tmp_path: Path, now: datetime) -> None:
    clock = Clock(now)
    store = open_store(f"sqlite:///{tmp_path}/readings.db")
    with running_mosquitto(tmp_path / "broker", users={"service": "right"}) as port:
        app = create_app(_settings(tmp_path, port), store=store, clock=clock)
        with TestClient(app) as c:
            assert c.get("/health").status_code == 200
    # The broker is stopped; an interval later the health check says so.
    with TestClient(app) as c:
        clock.at += timedelta(seconds=INTERVAL_S)
        resp = c.get("/health")
    assert resp.status_code == 503
    assert resp.json()["status"] == "degraded" and resp.json()["broker"].startswith("unreachable")
    store.close()


def test_probing_the_demos_embedded_broker_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each /health on the demo printed two amqtt errors ("No data to decode MQTT packet
    fixed header"): the probe opened a bare TCP connection before its MQTT login. The
    probe is one clean MQTT session, and says why when there is no broker."""
    from helpers.services import free_port

    from cli.embedded_broker import EmbeddedBroker
    from microville.mqtt import MqttSettings
    from service.api.health import broker_reachable

    broker = EmbeddedBroker(port=free_port())
    broker.start()
    try:
        with caplog.at_level(logging.INFO, logger="amqtt"):
            assert [broker_reachable(MqttSettings(url=broker.url)) for _ in range(3)] == ["ok"] * 3
            time.sleep(0.5)  # the broker logs a closed connection as it reads it
    finally:
        broker.stop()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    gone = broker_reachable(MqttSettings(url=f"mqtt://127.0.0.1:{free_port()}"), timeout_s=2)
    assert gone.startswith("unreachable:") and "refused" in gone
