"""The shipped broker under crash and attack: deploy/mosquitto/entrypoint.sh run as the
container runs it, on deploy/mosquitto/mosquitto.conf (tests/helpers/services.py
running_shipped_broker), with the real gateway and real device clients on loopback."""

from __future__ import annotations

import contextlib
import json
import ssl
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from helpers.services import (
    ShippedBroker,
    run_shipped_entrypoint,
    running_shipped_broker,
    self_signed_certificate,
    shipped_broker_env,
)
from helpers.support import wait_until
from paho.mqtt.enums import CallbackAPIVersion

from domain.site import parse_sites
from domain.store import ReadingStore
from gateway.gateway import Gateway
from gateway.sources.registry import SourceOptions
from microville.mqtt import MqttSettings
from stores.sqlite import SqliteStore

T = datetime(2026, 10, 1, tzinfo=UTC)
PV, LINKY = "microville112/pv", "microville112/linky"
CLIENT_ID = "microville-gateway"
CONFIG = "".join(
    f"""
[[sites]]
id = "{site}"
name = "{site}"
timezone = "Europe/Paris"
floor_area_m2 = 100
location = {{ lat = 47.47, lon = -0.55 }}

[[sites.meters]]
id = "{meter}"
role = "{role}"
source = {{ topic = "{topic}", format = "senml", name = "{meter}:energy" }}
"""
    for site, meter, role, topic in [
        ("pv-site", "pv", "production", PV),
        ("linky-site", "linky", "grid_import", LINKY),
    ]
)
MAX_PAYLOAD = 64 * 1024  # gateway/sources/mqtt/decoders.py MAX_PAYLOAD_BYTES


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReadingStore]:
    """One store, not both: what these tests prove is the broker's, whatever the store."""
    s = SqliteStore(tmp_path / "readings.db")
    yield s
    s.close()


def _gateway(broker: ShippedBroker, store: ReadingStore) -> Gateway:
    """The gateway as docker-compose.yml runs it: the stack's account, internal listener."""
    settings = MqttSettings(
        url=f"mqtt://127.0.0.1:{broker.internal_port}",
        username="stack",
        password="stack-secret",
        reconnect_min_s=1,
        reconnect_max_s=2,
    )
    return Gateway(
        parse_sites(CONFIG), store, SourceOptions(settings, CLIENT_ID), batch_delay_s=0.1
    )


def _device(
    broker: ShippedBroker,
    user: str,
    password: str,
    client_id: str | None = None,
    ca_file: Path | None = None,
) -> mqtt.Client:
    """A device on the TLS listener, its CA pinned; connected (or refused: not connected)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or user)
    client.username_pw_set(user, password)
    client.tls_set_context(ssl.create_default_context(cafile=str(ca_file or broker.ca_file)))
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", broker.devices_port)
    client.loop_start()
    wait_until(client.is_connected, 10)
    return client


def _reading(meter: str, minute: int) -> bytes:
    when = (T + timedelta(minutes=minute)).timestamp()
    return json.dumps([{"bn": f"{meter}:", "bt": when, "n": "energy", "v": minute}]).encode()


def _publish_readings(client: mqtt.Client, topic: str, meter: str, minutes: range) -> None:
    """QoS 1, each acknowledged by the broker (PUBACK) before this returns."""
    infos = [client.publish(topic, _reading(meter, m), qos=1) for m in minutes]
    for info in infos:
        info.wait_for_publish(30)
        assert info.is_published()


def _pub(port: int) -> list[str]:
    """mosquitto_pub as the pv device, plaintext, on ``port``."""
    return [
        "mosquitto_pub",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-u",
        "pv",
        "-P",
        "pv-secret",
        "-t",
        PV,
        "-m",
        "1",
    ]


def _close(*clients: mqtt.Client) -> None:
    for client in clients:
        client.disconnect()
        client.loop_stop()


def _subscribe_then_leave(broker: ShippedBroker, store: ReadingStore) -> None:
    """The gateway makes its persistent sessions, then goes away (they stay)."""
    gw = _gateway(broker, store)
    gw.start()
    assert gw.wait_ready(15)
    gw.stop()


def _snapshot(broker: ShippedBroker) -> tuple[int, int]:
    db = broker.home / "data" / "mosquitto.db"
    st = db.stat() if db.exists() else None
    return (st.st_ino, st.st_mtime_ns) if st else (0, 0)


def test_broker_crash_loses_no_queued_reading(tmp_path: Path, store: ReadingStore) -> None:
    """F2: 2,000 readings acknowledged by the broker and queued for the gateway's
    session while it is away; the broker is SIGKILLed, restarted on the same data; the
    gateway comes back and stores all 2,000. The exposure is the autosave interval
    (5 s): the test waits for two snapshots after the last PUBACK before the kill (the
    second one began after it), which never come with Mosquitto's default 1,800 s."""
    with running_shipped_broker(tmp_path) as broker:
        _subscribe_then_leave(broker, store)
        pv = _device(broker, "pv", "pv-secret")
        _publish_readings(pv, PV, "pv", range(2000))
        _close(pv)
        first = _snapshot(broker)
        assert wait_until(lambda: _snapshot(broker) != first, 30), "no snapshot written"
        second = _snapshot(broker)
        assert wait_until(lambda: _snapshot(broker) != second, 30), "no second snapshot"
        broker.proc.kill()  # SIGKILL: no save on exit
        broker.proc.wait()
        ports = (broker.internal_port, broker.devices_port)
    with running_shipped_broker(tmp_path, ports=ports) as broker:
        gw = _gateway(broker, store)
        gw.start()
        try:
            assert wait_until(lambda: store.count("pv-site") == 2000, 60), store.count("pv-site")
        finally:
            gw.stop()


def _flood(broker: ShippedBroker, size: int, count: int) -> int:
    """The pv account publishes ``count`` messages of ``size`` bytes on its own topic
    (QoS 1, by batches); returns how many the broker acknowledged before it stopped."""
    pv = _device(broker, "pv", "pv-secret")
    acknowledged = 0
    try:
        for start in range(0, count, 50):
            batch = [pv.publish(PV, b"x" * size, qos=1) for _ in range(min(50, count - start))]
            for info in batch:
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(10)
                if not info.is_published():
                    return acknowledged
                acknowledged += 1
    finally:
        _close(pv)
    return acknowledged


def test_a_flooding_device_cannot_evict_another_devices_readings(
    tmp_path: Path, store: ReadingStore
) -> None:
    """F3: while the gateway is away, linky's readings are queued; the pv account
    floods: 600 messages of 1 MiB (refused: the broker drops the connection at the
    first, above max_packet_size), then 1,100 of the gateway's maximum payload (64 KiB,
    accepted: more than the 64 MiB of pv's own queue); linky publishes more after it.
    Every one of linky's 1,000 readings reaches the store."""
    with running_shipped_broker(tmp_path) as broker:
        _subscribe_then_leave(broker, store)
        linky = _device(broker, "linky", "linky-secret")
        _publish_readings(linky, LINKY, "linky", range(500))
        assert _flood(broker, 1024 * 1024, 600) == 0, "an oversized message was accepted"
        assert _flood(broker, MAX_PAYLOAD, 1100) == 1100
        _publish_readings(linky, LINKY, "linky", range(500, 1000))
        _close(linky)
        gw = _gateway(broker, store)
        gw.start()
        try:
            assert wait_until(lambda: store.count("linky-site") == 1000, 60), store.count(
                "linky-site"
            )
        finally:
            gw.stop()


def test_a_device_cannot_take_over_the_gateways_session(
    tmp_path: Path, store: ReadingStore
) -> None:
    """F4: a device account connecting with the gateway's client ids (the documented
    default and its per-topic sessions) gets a session of its own (the listener binds
    client ids to usernames): the readings queued for the gateway survive."""
    with running_shipped_broker(tmp_path) as broker:
        _subscribe_then_leave(broker, store)
        linky = _device(broker, "linky", "linky-secret")
        _publish_readings(linky, LINKY, "linky", range(500))
        for stolen in (CLIENT_ID, f"{CLIENT_ID}/{LINKY}", f"{CLIENT_ID}/{PV}"):
            # A clean session under the gateway's id would wipe the gateway's queue.
            thief = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=stolen, clean_session=True)
            thief.username_pw_set("pv", "pv-secret")
            thief.tls_set_context(ssl.create_default_context(cafile=str(broker.ca_file)))
            thief.connect("127.0.0.1", broker.devices_port)
            thief.loop_start()
            assert wait_until(thief.is_connected, 10)
            _close(thief)
        # The device accounts cannot log in on the stack's listener at all.
        refused = subprocess.run(
            [*_pub(broker.internal_port), "-i", CLIENT_ID],
            capture_output=True,
            text=True,
        )
        assert refused.returncode != 0 and "not authorised" in refused.stderr
        _close(linky)
        gw = _gateway(broker, store)
        gw.start()
        try:
            assert wait_until(lambda: store.count("linky-site") == 500, 30)
        finally:
            gw.stop()


def test_devices_speak_tls_with_the_stacks_ca_only(tmp_path: Path) -> None:
    """F8: the devices' listener is TLS with a certificate of the CA the entrypoint
    made at first start (kept across restarts); a client trusting another CA, or
    speaking plaintext to it, is refused."""
    with running_shipped_broker(tmp_path / "b") as broker:
        ca = broker.ca_file.read_bytes()
        pv = _device(broker, "pv", "pv-secret")
        assert pv.is_connected()
        _close(pv)
        other_ca, _ = self_signed_certificate(tmp_path)
        with pytest.raises(ssl.SSLCertVerificationError):
            _device(broker, "pv", "pv-secret", client_id="pv-2", ca_file=other_ca)
        plain = subprocess.run(
            _pub(broker.devices_port),
            capture_output=True,
        )
        assert plain.returncode != 0
    with running_shipped_broker(tmp_path / "b") as broker:
        assert broker.ca_file.read_bytes() == ca, "the CA must survive a restart"


def test_device_passwords_may_hold_colons_and_acls_are_exact(
    tmp_path: Path, store: ReadingStore
) -> None:
    """F9: "pv:pa:ss:topic" gives pv the password "pa:ss" (not "pa"); pv may publish on
    its topic exactly, not under it (no implicit "/#")."""
    env = shipped_broker_env(MQTT_DEVICES=f"pv:pa:ss:{PV} linky:linky-secret:{LINKY}")
    with running_shipped_broker(tmp_path, env) as broker:
        truncated = _device(broker, "pv", "pa", client_id="x")
        assert not truncated.is_connected()
        truncated.loop_stop()
        received: list[str] = []
        watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="watcher")
        watcher.username_pw_set("stack", "stack-secret")
        subscribed: list[object] = []
        watcher.on_message = lambda _c, _u, m: received.append(m.topic)
        watcher.on_subscribe = lambda *args: subscribed.append(args)
        watcher.connect("127.0.0.1", broker.internal_port)
        watcher.loop_start()
        assert wait_until(watcher.is_connected)
        watcher.subscribe("microville112/#", qos=1)
        assert wait_until(lambda: bool(subscribed))
        pv = _device(broker, "pv", "pa:ss")
        assert pv.is_connected()
        with contextlib.suppress(RuntimeError, ValueError):
            pv.publish(f"{PV}/forged", b"1", qos=1).wait_for_publish(5)
        pv2 = _device(broker, "pv", "pa:ss", client_id="again")
        pv2.publish(PV, b"own", qos=1).wait_for_publish(5)
        assert wait_until(lambda: PV in received)
        time.sleep(0.3)  # a subtopic message, if it got through, would be here by now
        assert received == [PV]
        _close(watcher, pv, pv2)


@pytest.mark.parametrize(
    ("variable", "env"),
    [
        ("MQTT_PASSWORD", {"MQTT_PASSWORD": "change-me-mqtt"}),
        ("device pv", {"MQTT_DEVICES": f"pv:change-me-pv:{PV}"}),
    ],
)
def test_placeholder_secrets_are_refused_by_name(
    tmp_path: Path, variable: str, env: dict[str, str]
) -> None:
    """F9: the broker does not start on a password left as in .env.example."""
    proc = run_shipped_entrypoint(tmp_path, shipped_broker_env(**env))
    assert proc.wait(30) != 0
    log = (tmp_path / "mosquitto.log").read_text()
    assert variable in log and "placeholder" in log and len(log.strip().splitlines()) == 1
