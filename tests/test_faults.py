"""Fault tests: real processes, real services on loopback; nothing sent may be lost.

The gateway runs as `microville gateway` in a subprocess with its own settings (buffer,
dead-letter file, metrics port); Mosquitto and InfluxDB are started here, apart from
the session-wide ones (they are killed and restarted). Each test counts the readings
sent (a QoS 1 publish the broker acknowledged, or a frame written to the serial line)
and the readings stored, and asserts they are equal.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import serial
from prometheus_client.parser import text_string_to_metric_families
from services import _binary, _stop, _wait_port, free_port, running_mosquitto
from support import SITE_S1, wait_until

from microville.domain.store import ReadingStore
from microville.domain.tic_labels import TicMode
from microville.firmware_sim.tic_frames import linky_frame
from microville.firmware_sim.virtual_serial import VirtualSerialPair
from microville.mqtt import MqttSettings, make_client
from microville.stores import open_store

pytestmark = pytest.mark.e2e

T0 = datetime(2026, 10, 1, tzinfo=UTC)
METERS = ("a", "b")
MQTT_CONFIG = SITE_S1 + "".join(
    f"""
[[sites.meters]]
id = "{m}"
role = "submeter"
use = "other"
source = {{ topic = "fault/{m}", format = "senml", name = "energy" }}
"""
    for m in METERS
)


# --- services of these tests ----------------------------------------------------------


class Influx:
    """An InfluxDB 1.x that can be stopped and started again on the same port and data."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.port, self._rpc = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        work.mkdir(parents=True, exist_ok=True)
        (work / "influxdb.conf").write_text(f"""\
reporting-enabled = false
bind-address = "127.0.0.1:{self._rpc}"
[meta]
  dir = "{work}/meta"
[data]
  dir = "{work}/data"
  wal-dir = "{work}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
[continuous_queries]
  enabled = false
""")

    def start(self) -> None:
        log = self.work / "influxd.log"
        with log.open("ab") as out:
            self._proc = subprocess.Popen(
                [_binary("influxd"), "run", "-config", str(self.work / "influxdb.conf")],
                stdout=out,
                stderr=out,
            )
        _wait_port(self.port, self._proc, log)
        assert wait_until(lambda: httpx.get(f"{self.url}/ping").status_code == 204, 20)

    def stop(self) -> None:
        if self._proc is not None:
            _stop(self._proc)
            self._proc = None


@pytest.fixture(scope="module")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influx]:
    server = Influx(tmp_path_factory.mktemp("fault-influxdb"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def store_url(influx: Influx) -> str:
    return f"influxdb://127.0.0.1:{influx.port}/f{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(store_url: str) -> Iterator[ReadingStore]:
    s = open_store(store_url)
    yield s
    s.close()


GATEWAY_COMMAND = (sys.executable, "-m", "microville", "gateway", "-c", "sites.toml")


class GatewayProcess:
    """`microville gateway` in a subprocess, with its own buffer, dead letters and
    metrics port; the same files and MQTT client id across restarts."""

    def __init__(self, work: Path, config: str, store_url: str, mqtt_url: str | None) -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        (work / "sites.toml").write_text(config)
        self.metrics_port = free_port()
        self.store_url = store_url
        self.mqtt_url = mqtt_url or "mqtt://127.0.0.1:1"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        env = {
            **os.environ,
            "MICROVILLE_BUFFER_PATH": str(self.work / "buffer.db"),
            "MICROVILLE_DEAD_LETTER_FILE": str(self.work / "dead-letters.jsonl"),
            "MICROVILLE_GATEWAY_METRICS_PORT": str(self.metrics_port),
            "MICROVILLE_GATEWAY_CLIENT_ID": f"gw-{self.work.name}",
        }
        self.starts += 1
        with (self.work / f"gateway-{self.starts}.log").open("wb") as out:
            self.proc = subprocess.Popen(
                [*GATEWAY_COMMAND, "--store", self.store_url, "--mqtt", self.mqtt_url],
                cwd=self.work,  # no stray .env
                env=env,
                stdout=out,
                stderr=out,
            )

    def log(self) -> str:
        return (self.work / f"gateway-{self.starts}.log").read_text()[-3000:]

    def metrics(self) -> dict[str, float]:
        """Samples by name with their labels, e.g. ``source_up{source="mqtt"}``; {} if down."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return {}
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                name = s.name.removeprefix("microville_gateway_")
                out[f"{name}{{{labels}}}" if labels else name] = s.value
        return out

    def wait_source_up(self, source: str, up: bool = True, timeout_s: float = 30) -> None:
        key = f'source_up{{source="{source}"}}'
        ok = wait_until(lambda: self.metrics().get(key) == (1.0 if up else 0.0), timeout_s)
        assert ok, f"{source} not {'up' if up else 'down'}: {self.log()}"

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM: the graceful shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"gateway did not stop on SIGTERM: {self.log()}") from None


@pytest.fixture
def gateways() -> Iterator[list[GatewayProcess]]:
    started: list[GatewayProcess] = []
    yield started
    for gw in started:
        gw.stop()


# --- publishing and counting ----------------------------------------------------------


def message(i: int) -> tuple[str, bytes]:
    """Message ``i``: meter a or b, a reading at T0 + i minutes, index 10·i Wh."""
    t = (T0 + timedelta(minutes=i)).timestamp()
    return f"fault/{METERS[i % 2]}", json.dumps([{"n": "energy", "t": t, "v": 10 * i}]).encode()


class Publisher:
    """A device publishing with QoS 1 and retrying until the broker acknowledges (so a
    broker restart may make it send a message twice, as real devices do)."""

    def __init__(self, url: str) -> None:
        settings = MqttSettings(url=url, reconnect_min_s=1, reconnect_max_s=1)
        self.client = make_client(
            settings, client_id=f"pub-{uuid.uuid4().hex[:8]}", persistent=False
        )
        self.client.connect_async(settings.host, settings.port, keepalive=5)
        self.client.loop_start()
        self.sent: set[int] = set()  # indexes of messages the broker acknowledged

    def publish(self, i: int, topic: str, payload: bytes) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.client.is_connected():
                info = self.client.publish(topic, payload, qos=1)
                with contextlib.suppress(RuntimeError, ValueError):  # disconnected: again
                    info.wait_for_publish(3)
                if info.is_published():
                    self.sent.add(i)
                    return
            time.sleep(0.05)
        raise AssertionError(f"message {i} never acknowledged by the broker")

    def publish_range(self, indexes: range, pace_s: float = 0.0) -> None:
        for i in indexes:
            self.publish(i, *message(i))
            if pace_s:
                time.sleep(pace_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def stored(store: ReadingStore, last: int) -> dict[int, float]:
    """{message index: stored value} for every reading stored, from one-minute slots."""
    out: dict[int, float] = {}
    series = store.index_slots(
        "s1", list(METERS), "energy", T0 - timedelta(minutes=1), T0 + timedelta(minutes=last + 1),
        timedelta(minutes=1),
    )  # fmt: skip
    for meter_series in series.values():
        for slot in meter_series.slots:
            i = round((slot.end - T0) / timedelta(minutes=1))
            assert slot.count == 1, f"message {i} stored {slot.count} times"
            out[i] = slot.last_value
    return out


def assert_all_stored(store: ReadingStore, sent: set[int], gw: GatewayProcess) -> None:
    last = max(sent)
    done = wait_until(lambda: len(stored(store, last)) >= len(sent), 60)
    got = stored(store, last)
    assert done, f"{len(got)} of {len(sent)} stored; missing {sorted(sent - set(got))[:20]}"
    assert set(got) == sent
    assert all(got[i] == 10 * i for i in sent)


# --- the faults -----------------------------------------------------------------------


def test_gateway_killed_mid_stream_loses_nothing(
    tmp_path: Path, store: ReadingStore, store_url: str, gateways: list[GatewayProcess]
) -> None:
    with running_mosquitto(tmp_path / "broker") as port:
        url = f"mqtt://127.0.0.1:{port}"
        gw = GatewayProcess(tmp_path / "gw", MQTT_CONFIG, store_url, url)
        gateways.append(gw)
        gw.start()
        gw.wait_source_up("mqtt")
        pub = Publisher(url)
        try:
            # A steady stream (about 5 s); the gateway is killed while it flows, with
            # readings received but not yet written: acknowledged to nobody.
            sending = threading.Thread(target=pub.publish_range, args=(range(600), 0.008))
            sending.start()
            assert wait_until(lambda: len(stored(store, 600)) >= 100)
            gw.kill()
            sending.join(60)  # the broker keeps the rest for the gateway's session
            assert not sending.is_alive() and len(pub.sent) == 600
            assert len(stored(store, 600)) < 600
            gw.start()
            assert_all_stored(store, pub.sent, gw)
        finally:
            pub.close()


def test_influxdb_down_mid_stream_is_buffered_then_replayed(
    tmp_path: Path,
    influx: Influx,
    store: ReadingStore,
    store_url: str,
    gateways: list[GatewayProcess],
) -> None:
    with running_mosquitto(tmp_path / "broker") as port:
        url = f"mqtt://127.0.0.1:{port}"
        gw = GatewayProcess(tmp_path / "gw", MQTT_CONFIG, store_url, url)
        gateways.append(gw)
        gw.start()
        gw.wait_source_up("mqtt")
        pub = Publisher(url)
        try:
            pub.publish_range(range(0, 200))
            assert wait_until(lambda: len(stored(store, 200)) == 200)
            influx.stop()
            try:
                pub.publish_range(range(200, 500))
                # Acknowledged by the gateway: safe in its buffer, not at the broker.
                assert wait_until(lambda: gw.metrics().get("buffer_readings") == 300, 30), (
                    gw.metrics(),
                    gw.log(),
                )
                assert gw.metrics()["store_write_errors_total"] >= 1
            finally:
                influx.start()
            pub.publish_range(range(500, 600))
            assert_all_stored(store, pub.sent, gw)
            assert wait_until(lambda: gw.metrics().get("buffer_readings") == 0)
            assert gw.metrics()["readings_replayed_total"] >= 300
        finally:
            pub.close()


def test_broker_restarted_mid_stream_loses_nothing(
    tmp_path: Path, store: ReadingStore, store_url: str, gateways: list[GatewayProcess]
) -> None:
    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"
    gw = GatewayProcess(tmp_path / "gw", MQTT_CONFIG, store_url, url)
    gateways.append(gw)
    pub: Publisher | None = None
    try:
        with running_mosquitto(tmp_path / "broker", port=port):
            gw.start()
            gw.wait_source_up("mqtt")
            pub = Publisher(url)
            pub.publish_range(range(0, 300), pace_s=0.001)
        # The broker is down: the gateway notices and waits for it.
        gw.wait_source_up("mqtt", up=False)
        sending = threading.Thread(target=pub.publish_range, args=(range(300, 600),))
        sending.start()  # blocks until the broker is back
        # Same port, same persistence directory: the sessions and their queues survive.
        with running_mosquitto(tmp_path / "broker", port=port):
            sending.join(60)
            assert not sending.is_alive()
            gw.wait_source_up("mqtt")  # reconnected and subscribed again
            assert_all_stored(store, pub.sent, gw)
            assert len(pub.sent) == 600
    finally:
        if pub is not None:
            pub.close()


def test_duplicates_and_out_of_order_messages_are_stored_once(
    tmp_path: Path, store: ReadingStore, store_url: str, gateways: list[GatewayProcess]
) -> None:
    with running_mosquitto(tmp_path / "broker") as port:
        url = f"mqtt://127.0.0.1:{port}"
        gw = GatewayProcess(tmp_path / "gw", MQTT_CONFIG, store_url, url)
        gateways.append(gw)
        gw.start()
        gw.wait_source_up("mqtt")
        order = [i for i in range(400) for _ in range(1 + i % 3)]  # 1 to 3 copies each
        random.Random(8).shuffle(order)
        pub = Publisher(url)
        try:
            for i in order:
                pub.publish(i, *message(i))
            assert_all_stored(store, pub.sent, gw)
            assert len(pub.sent) == 400
            assert gw.metrics()['messages_received_total{source="mqtt"}'] == len(order)
        finally:
            pub.close()
        # A graceful stop, then the count once more: nothing more, nothing less.
        gw.stop()
        assert set(stored(store, 400)) == set(range(400))


def test_serial_port_vanishing_and_coming_back_loses_no_frame_written(
    tmp_path: Path, store: ReadingStore, store_url: str, gateways: list[GatewayProcess]
) -> None:
    pair = VirtualSerialPair(tmp_path / "ttyTIC", tmp_path / "ttyTIC.emulator")
    config = SITE_S1 + f"""
[[sites.meters]]
id = "a"
role = "grid_import"
source = {{ type = "tic", port = "{pair.device_path}", mode = "standard", label = "EAST", \
interval_s = 0 }}
"""  # fmt: skip
    gw = GatewayProcess(tmp_path / "gw", config, store_url, None)
    gateways.append(gw)
    sent: set[int] = set()
    source = f"tic:{pair.device_path}"

    def write_frames(indexes: range) -> None:
        with serial.Serial(str(pair.emulator_path), 9600, bytesize=7, parity="E") as line:
            for i in indexes:
                t = T0 + timedelta(minutes=i)
                line.write(linky_frame(TicMode.STANDARD, t, 10 * i, 0, 100, 0))
                line.flush()
                sent.add(i)
                time.sleep(0.01)

    pair.plug()
    try:
        gw.start()
        gw.wait_source_up(source)
        write_frames(range(0, 40))
        assert_all_stored(store, sent, gw)
        pair.unplug()  # the USB adapter is pulled
        gw.wait_source_up(source, up=False)
        pair.plug()
        gw.wait_source_up(source)
        write_frames(range(40, 80))
        assert_all_stored(store, sent, gw)
        assert len(sent) == 80
    finally:
        gw.stop()
        pair.unplug()
