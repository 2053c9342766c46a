"""Fault tests: real processes, real services on loopback; nothing sent may be lost.

The gateway runs as `microville gateway` in a subprocess with its own settings (buffer,
dead-letter file, metrics port); Mosquitto and InfluxDB are started here, apart from
the session-wide ones (they are killed and restarted). Each test counts the readings
sent (a QoS 1 publish the broker acknowledged, or a frame written to the serial line)
and the readings stored, and asserts they are equal.
"""

from __future__ import annotations

import contextlib
import random
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import serial
from helpers.fault_bench import (
    MQTT_CONFIG,
    T0,
    GatewayProcess,
    Influx,
    Publisher,
    assert_all_stored,
    message,
    stored,
)
from helpers.services import free_port, running_mosquitto
from helpers.support import SITE_S1, wait_until

from domain.store import ReadingStore
from domain.tic_labels import TicMode
from firmware_sim.tic_frames import linky_frame
from firmware_sim.virtual_serial import VirtualSerialPair
from stores import open_store

pytestmark = pytest.mark.e2e

# --- services of these tests ----------------------------------------------------------


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


@pytest.fixture
def gateways() -> Iterator[list[GatewayProcess]]:
    started: list[GatewayProcess] = []
    yield started
    for gw in started:
        gw.stop()


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


def _private_tmpfs(mount_point: Path, size: str) -> tuple[str, ...]:
    """A wrapper giving the gateway a mount namespace of its own with a ``size`` tmpfs on
    ``mount_point``: a small disk of its own that really fills (ENOSPC), seen from
    here through ``/proc/<pid>/root``; nothing mounted outside, gone with the process."""
    probe = subprocess.run(
        ["unshare", "--mount", "sh", "-c", f"mount -t tmpfs -o size=64k none {mount_point}"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a private tmpfs (root needed): {probe.stderr.decode()}")
    script = f'mount -t tmpfs -o size={size} microville-test "$0" && exec "$@"'
    return ("unshare", "--mount", "sh", "-c", script, str(mount_point))


def _fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte; return the filler."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:
        for chunk in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * chunk)
    return filler


def test_buffer_disk_full_then_store_back_then_space_freed_loses_nothing(
    tmp_path: Path,
    influx: Influx,
    store: ReadingStore,
    store_url: str,
    gateways: list[GatewayProcess],
) -> None:
    """F1: the buffer's disk fills while the store is down; the store returns (replayed
    readings stored, but the buffer cannot even DELETE them); then space is freed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    with running_mosquitto(tmp_path / "broker") as port:
        url = f"mqtt://127.0.0.1:{port}"
        gw = GatewayProcess(
            tmp_path / "gw",
            MQTT_CONFIG,
            store_url,
            url,
            buffer_path=disk / "buffer.db",
            wrapper=_private_tmpfs(disk, "1m"),
        )
        gateways.append(gw)
        gw.start()
        gw.wait_source_up("mqtt")
        assert gw.proc is not None
        seen_disk = Path(f"/proc/{gw.proc.pid}/root") / disk.relative_to("/")
        pub = Publisher(url)
        try:
            pub.publish_range(range(0, 100))
            assert wait_until(lambda: len(stored(store, 100)) == 100)
            influx.stop()
            try:
                pub.publish_range(range(100, 400))  # acknowledged: in the buffer
                assert wait_until(lambda: gw.metrics().get("buffer_readings") == 300, 30), gw.log()
                filler = _fill(seen_disk)  # the disk is full
                pub.publish_range(range(400, 700))  # held in memory, not acknowledged
                assert wait_until(lambda: gw.metrics().get("buffer_errors_total", 0) >= 1, 30), (
                    gw.log()
                )
            finally:
                influx.start()
            # The store takes the replayed readings, the full disk refuses to drop them
            # from the buffer: retried, the writer stays up.
            assert wait_until(lambda: len(stored(store, 700)) >= 400, 30), gw.log()
            errors = gw.metrics()["buffer_errors_total"]
            assert wait_until(lambda: gw.metrics().get("buffer_errors_total", 0) > errors, 30)
            assert gw.metrics()["writer_up"] == 1, gw.log()
            filler.unlink()  # space freed
            pub.publish_range(range(700, 800))
            assert_all_stored(store, pub.sent, gw)
            assert len(pub.sent) == 800
            assert wait_until(lambda: gw.metrics().get("buffer_readings") == 0), gw.log()
            assert gw.metrics()["writer_up"] == 1
            assert gw.proc.poll() is None
            log = (gw.work / "gateway-1.log").read_text()
            assert log.count("(retrying with backoff)") == 1, log  # once per outage
            assert log.count("buffer works again") == 1, log
        finally:
            pub.close()


#: Loaded by the gateway's interpreter (PYTHONPATH): its store's writes raise a
#: BaseException after the first batch, which no ``except Exception`` catches.
_DYING_WRITER = """
from stores.influx import InfluxStore

_write = InfluxStore.write
_calls = []

def _write_then_die(self, readings):
    _calls.append(len(readings))
    if len(_calls) > 1:
        raise SystemExit("injected: the batch writer thread ends")
    _write(self, readings)

InfluxStore.write = _write_then_die
"""


def test_a_writer_thread_that_dies_anyway_makes_the_gateway_exit_70(
    tmp_path: Path,
    store: ReadingStore,
    store_url: str,
    gateways: list[GatewayProcess],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """F1's last resort: should the batch writer thread end (a BaseException past every
    handler), `microville gateway` exits 70 for its supervisor instead of staying up
    with nothing stored; started again, it stores everything the broker kept."""
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(_DYING_WRITER)
    with running_mosquitto(tmp_path / "broker") as port:
        url = f"mqtt://127.0.0.1:{port}"
        gw = GatewayProcess(tmp_path / "gw", MQTT_CONFIG, store_url, url)
        gateways.append(gw)
        monkeypatch.setenv("PYTHONPATH", str(inject))
        gw.start()
        gw.wait_source_up("mqtt")
        pub = Publisher(url)
        try:
            pub.publish_range(range(0, 10))
            assert wait_until(lambda: len(stored(store, 10)) == 10), gw.log()
            pub.publish_range(range(10, 60))  # the next write ends the writer thread
            assert gw.proc is not None
            assert gw.proc.wait(30) == 70, gw.log()
            assert "its batch writer died" in gw.log()
            assert len(stored(store, 60)) == 10  # nothing stored (nor acknowledged) since
            monkeypatch.delenv("PYTHONPATH")
            gw.start()
            assert_all_stored(store, pub.sent, gw)
        finally:
            pub.close()
