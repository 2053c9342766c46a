"""Linky emulator → pseudo-terminal → pyserial → gateway → store → balance API."""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
import subprocess
import sys
import termios
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import serial
from conftest import SAMPLE_CONFIG
from fastapi.testclient import TestClient
from helpers.services import free_port
from helpers.support import SITE_S1, wait_until
from prometheus_client.parser import text_string_to_metric_families

from domain.clock import fixed_clock
from domain.periods import localize
from domain.readings import Reading
from domain.site import ConfigError, SitesConfig, parse_sites, read_sites
from domain.store import ReadingStore
from domain.tic_labels import TicMode
from firmware_sim.building import ground_truth, index_at, simulate_building
from firmware_sim.clock import SimulatedClock
from firmware_sim.linky_emulator import LinkyEmulator
from firmware_sim.serial_devices import relocate_serial_ports
from firmware_sim.tic_frames import linky_frame
from firmware_sim.virtual_serial import VirtualSerialPair
from gateway.gateway import Gateway
from gateway.sources.registry import SourceOptions
from gateway.sources.tic.source import (
    DETECT_WINDOW_S,
    TicBinding,
    TicLineSource,
    tic_sources,
)
from microville.settings import Settings
from service.app import create_app
from stores.sqlite import SqliteStore

STEP = timedelta(minutes=15)
DAYS = 2
# 2 simulated days in about 8 real seconds; a frame every 0.05 s is 36 simulated minutes.
SPEED = DAYS * 86400 / 8


def _config(port: Path, mode: str) -> str:
    import_label, export_label = ("EAST", "EAIT") if mode == "standard" else ("BASE", None)
    meters = f"""
[[sites.meters]]
id = "grid-import"
role = "grid_import"
source = {{ type = "tic", port = "{port}", mode = "{mode}", label = "{import_label}" }}
"""
    if export_label:
        meters += f"""
[[sites.meters]]
id = "grid-export"
role = "grid_export"
source = {{ type = "tic", port = "{port}", mode = "{mode}", label = "{export_label}" }}

[[sites.meters]]
id = "grid-power"
role = "measurement"
unit = "VA"
source = {{ type = "tic", port = "{port}", mode = "{mode}", label = "SINSTS" }}
"""
    return SITE_S1 + meters


class Bench:
    """A site whose grid meter is a Linky on a virtual serial line."""

    def __init__(
        self, tmp_path: Path, store: ReadingStore, mode: TicMode, corruption: float
    ) -> None:
        self.pair = VirtualSerialPair(tmp_path / "ttyTIC", tmp_path / "ttyTIC.emulator")
        self.config: SitesConfig = parse_sites(_config(self.pair.device_path, mode.value))
        self.site = self.config.sites[0]
        self.store = store
        self.start = localize(datetime(2026, 3, 28), self.site.tz)  # spring DST in range
        self.end = localize(datetime(2026, 3, 28 + DAYS), self.site.tz)
        self.building: pd.DataFrame = simulate_building(self.site, self.start, self.end, STEP, 5)
        self.mode = mode
        self.corruption = corruption
        self.clock: SimulatedClock | None = None
        self.gateway: Gateway | None = None
        self.emulator: LinkyEmulator | None = None

    def run(self) -> None:
        self.pair.plug()
        # Historic frames carry no time: the gateway stamps the simulated clock's time.
        options = SourceOptions(clock=lambda: self._clock().now())
        self.gateway = Gateway(self.config, self.store, options, batch_delay_s=0.1)
        self.gateway.start()
        assert self.gateway.wait_ready(5)
        self.clock = SimulatedClock(self.start, SPEED)  # t = start when the first frame goes
        self.emulator = self.new_emulator(first_frame_at=self.start)
        self.emulator.start()

    def _clock(self) -> SimulatedClock:
        assert self.clock is not None
        return self.clock

    def new_emulator(self, first_frame_at: datetime | None = None) -> LinkyEmulator:
        assert self.clock is not None
        return LinkyEmulator(
            self.pair.emulator_path,
            self.mode,
            self.building,
            self.clock,
            self.end,
            corruption=self.corruption,
            seed=3,
            first_frame_at=first_frame_at,
            record_sent=True,
        )

    def finish(self) -> None:
        assert self.emulator is not None and self.gateway is not None
        assert self.emulator.done.wait(60), "emulator did not reach the end"
        assert wait_until(lambda: self.gateway is not None and self.gateway.writer.backlog == 0, 10)
        # The final frame (at `end`) is the last one written; wait until its index is
        # stored. (Waiting for a slot ending at `end` is not enough in historic mode: the
        # frame before the last, stamped on arrival, may fill that slot first.)
        final_wh = math.floor(index_at(self.building, "import_wh", self.end))
        assert wait_until(lambda: self._last_import_wh() == final_wh, 10)

    def _last_import_wh(self) -> float | None:
        """The last grid-import index stored (up to a day after `end`)."""
        series = self.store.index_slots(
            self.site.id,
            ["grid-import"],
            "energy",
            self.start,
            self.end + timedelta(days=1),
            timedelta(hours=1),
        )["grid-import"]
        return series.slots[-1].last_value if series.slots else None

    def stop(self) -> None:
        if self.emulator is not None:
            self.emulator.stop()
        if self.gateway is not None:
            self.gateway.stop()
        self.pair.unplug()

    def balance(self, extra_days: int = 0) -> dict:  # type: ignore[type-arg]
        app = create_app(Settings(config="/dev/null"), store=self.store, sites=self.config)
        end_day = 28 + DAYS + extra_days
        with TestClient(app) as client:
            resp = client.get(
                f"/api/v1/sites/{self.site.id}/balance",
                params={"start": "2026-03-28", "end": f"2026-03-{end_day}", "step": "day"},
            )
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]


@pytest.fixture
def bench(request: pytest.FixtureRequest, tmp_path: Path, store: ReadingStore) -> Iterator[Bench]:
    mode, corruption = request.param
    b = Bench(tmp_path, store, mode, corruption)
    yield b
    b.stop()


@pytest.mark.e2e
@pytest.mark.parametrize(
    "bench",
    [(TicMode.STANDARD, 0.0), (TicMode.STANDARD, 0.3), (TicMode.HISTORIC, 0.0)],
    indirect=True,
    ids=["standard", "standard-corrupted", "historic"],
)
def test_linky_over_a_pty_matches_the_emulators_ground_truth(bench: Bench) -> None:
    bench.run()
    bench.finish()
    truth = ground_truth(bench.building, bench.start, bench.end)
    # Historic frames carry no time: the gateway stamps the receive time, so the frame
    # holding the index at `end` is stored a little after it — ask for one more day.
    total = bench.balance(extra_days=1 if bench.mode is TicMode.HISTORIC else 0)["total"]
    # The meter counts whole Wh: the index at each end is floored, so ≤ 1 Wh off.
    assert total["import_kwh"] == pytest.approx(truth["import_wh"] / 1000, abs=0.002)
    if bench.mode is TicMode.STANDARD:
        assert total["export_kwh"] == pytest.approx(truth["export_wh"] / 1000, abs=0.002)
        assert truth["export_wh"] > 0
    assert bench.gateway is not None
    if bench.corruption:
        assert bench.emulator is not None and bench.emulator.frames_corrupted > 0
        assert bench.gateway.dead_letters.total > 0
    else:
        assert bench.gateway.dead_letters.total == 0


def _stored_values(bench: Bench, meter: str) -> list[float]:
    """Every value stored for ``meter`` (one-second slots: at most one reading each)."""
    series = bench.store.index_slots(
        bench.site.id,
        [meter],
        "energy",
        bench.start - timedelta(hours=1),
        bench.end + timedelta(hours=1),
        timedelta(seconds=1),
    )[meter]
    return [slot.last_value for slot in series.slots]


@pytest.mark.e2e
@pytest.mark.parametrize("bench", [(TicMode.STANDARD, 0.3)], indirect=True, ids=["corrupted"])
def test_no_wrong_value_is_stored_from_corrupted_frames(bench: Bench) -> None:
    bench.run()
    bench.finish()
    assert bench.emulator is not None
    # The emulator changed digits of the indexes themselves, under their old checksum:
    # only checksum verification stands between those and the store.
    assert bench.emulator.damage["data EAST"] + bench.emulator.damage["data EAIT"] > 0
    for meter, kind in (("grid-import", "import"), ("grid-export", "export")):
        stored = _stored_values(bench, meter)
        assert len(stored) > 20
        wrong = sorted({v for v in stored if v not in bench.emulator.sent_indexes[kind]})
        assert wrong == [], f"{meter}: stored values never sent: {wrong[:10]}"
    series = bench.store.index_slots(
        bench.site.id,
        ["grid-import"],
        "energy",
        bench.start - timedelta(hours=1),
        bench.end,
        timedelta(minutes=1),
    )["grid-import"]
    assert len(series.slots) > 20
    for slot in series.slots:
        # Stored at the meter's horodate (whole seconds) with the index of that instant
        # or of the following second (the frame was built at a sub-second time). When
        # corruption broke the DATE group, the gateway falls back to the receive time,
        # which under this accelerated clock lags the frame by a few simulated minutes.
        lag = timedelta(minutes=1 + 5)
        low = math.floor(index_at(bench.building, "import_wh", slot.end - lag))
        high = math.floor(index_at(bench.building, "import_wh", slot.end)) + 1
        assert low <= slot.last_value <= high


@pytest.mark.e2e
@pytest.mark.parametrize("bench", [(TicMode.STANDARD, 0.0)], indirect=True, ids=["standard"])
def test_unplugged_adapter_is_reopened_and_reading_resumes(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.sources.tic.serial_line")
    bench.run()
    assert bench.emulator is not None and bench.gateway is not None
    assert wait_until(lambda: bench.gateway is not None and bench.gateway.writer.written > 5, 10)
    bench.emulator.stop()
    bench.pair.unplug()
    assert wait_until(lambda: not bench.gateway.sources[0].ready, 5)  # type: ignore[union-attr]
    before = bench.gateway.writer.written
    # Stay unplugged over several attempts to reopen, each after a longer backoff.
    line = bench.gateway.sources[0].line  # type: ignore[attr-defined]
    attempts = line.open_attempts
    assert wait_until(lambda: line.open_attempts >= attempts + 3, 10)
    assert line.backoff_s > 0.8  # 0.2, 0.4, 0.8… s so far: the backoff grew
    bench.pair.plug()
    bench.emulator = bench.new_emulator()
    bench.emulator.start()
    bench.finish()
    assert bench.gateway.writer.written > before
    outages = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(outages) == 1, [r.getMessage() for r in outages]
    assert any("is back" in r.getMessage() for r in caplog.records)


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.e2e
@pytest.mark.parametrize("bench", [(TicMode.STANDARD, 0.3)], indirect=True, ids=["corrupted"])
def test_a_noisy_line_shows_in_metrics_and_dead_letters(bench: Bench) -> None:
    bench.run()
    assert bench.gateway is not None and bench.emulator is not None
    port = bench.gateway.serve_metrics()
    source = (("source", bench.gateway.sources[0].name),)
    names = ("groups_dropped", "frames_interrupted", "bytes_discarded", "frames_decoded")
    before = _scrape(port)
    bench.finish()
    after = _scrape(port)
    for name in names:
        key = (f"microville_gateway_tic_{name}_total", source)
        assert after[key] > before.get(key, 0.0), name
    assert after[("microville_gateway_tic_frames_lost_total", source)] >= 0
    decoder = bench.gateway.sources[0].decoder  # type: ignore[attr-defined]
    assert after[("microville_gateway_tic_groups_dropped_total", source)] == decoder.groups_dropped
    assert after[("microville_gateway_tic_frames_interrupted_total", source)] == (
        decoder.frames_interrupted
    )
    assert decoder.frames_interrupted == bench.emulator.damage["EOT"]
    identity = (
        "microville_gateway_tic_meter_info",
        tuple(
            sorted({**dict(source), "meter_id": "021234567890", "prm": "01234567890123"}.items())
        ),
    )
    assert after[identity] == 1.0
    # Every dropped group and every interrupted frame is a dead letter with its reason.
    letters = list(bench.gateway.dead_letters.recent)
    reasons = [d.reason for d in letters]
    assert sum("bad checksum" in r for r in reasons) == decoder.groups_dropped
    interrupted = [d for d in letters if d.reason.startswith("frame interrupted by EOT")]
    assert len(interrupted) == decoder.frames_interrupted
    assert all(d.payload.startswith(b"\x02") for d in interrupted)
    kinds = bench.gateway.dead_letters.counts_by_reason()
    assert kinds["bad checksum '…' (expected '…')"] == decoder.groups_dropped
    assert (
        after[
            ("microville_gateway_rejected_total", (("reason", "bad checksum '…' (expected '…')"),))
        ]
        == decoder.groups_dropped
    )


class RecordingSink:
    """The gateway's side of a source: what it accepted and rejected."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.rejects: list[tuple[str, str, bytes]] = []

    def accept(
        self, readings: Sequence[Reading], on_safe: Callable[[], None] | None = None
    ) -> None:
        self.readings.extend(readings)

    def reject(self, origin: str, reason: str, payload: bytes) -> None:
        self.rejects.append((origin, reason, payload))


@pytest.fixture
def pty_source() -> Iterator[Callable[..., tuple[TicLineSource, RecordingSink, int]]]:
    """A TicLineSource reading a real pty through pyserial; the test writes the master."""
    opened: list[tuple[TicLineSource, int, int]] = []

    def make(expected_meter_id: str | None = None) -> tuple[TicLineSource, RecordingSink, int]:
        master, slave = os.openpty()
        config = parse_sites(SITE_S1 + f"""
[[sites.meters]]
id = "grid-import"
role = "grid_import"
source = {{ type = "tic", port = "{os.ttyname(slave)}", mode = "standard", label = "EAST", \
interval_s = 0 }}
""")  # fmt: skip
        (meter,) = config.sites[0].meters
        source = TicLineSource(
            os.ttyname(slave),
            "standard",
            [TicBinding("s1", meter, "EAST")],
            interval_s=0,
            expected_meter_id=expected_meter_id,
            clock=fixed_clock(RECEIVED),
        )
        sink = RecordingSink()
        source.start(sink)
        opened.append((source, master, slave))
        # pyserial flushes the input when it opens the port: write only once it is open.
        assert wait_until(lambda: source.ready, 5)
        return source, sink, master

    yield make
    for source, master, slave in opened:
        source.stop()
        os.close(master)
        os.close(slave)


T0 = datetime(2026, 7, 1, 12, tzinfo=UTC)
#: The pty sources' clock: what a frame without a usable time is stamped with.
RECEIVED = T0 + timedelta(minutes=30)


def _frames(n: int, adsc: str = "021234567890", synchronised: bool = True) -> bytes:
    return b"".join(
        linky_frame(
            TicMode.STANDARD, T0 + timedelta(minutes=i), 1000 + i, 0, 100, 0, adsc=adsc,
            synchronised=synchronised,
        )
        for i in range(n)
    )  # fmt: skip


def test_a_frame_from_another_meter_is_not_stored_and_said_once(
    pty_source: Callable[..., tuple[TicLineSource, RecordingSink, int]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.sources.tic.source")
    source, sink, master = pty_source(expected_meter_id="021234567890")
    os.write(master, _frames(3, adsc="029999999999"))  # the wrong Linky on this port
    assert wait_until(lambda: source.identity_mismatches == 3, 10)
    assert sink.readings == []
    assert source.info() == {"meter_id": "029999999999", "prm": "01234567890123"}
    mismatch = [r for _, r, _ in sink.rejects if "is not the expected" in r]
    assert mismatch == [
        "meter id '029999999999' is not the expected '021234567890': its frames are not "
        "stored (wrong meter or adapter on this port?)"
    ]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    os.write(master, _frames(2))  # the right one again
    assert wait_until(lambda: len(sink.readings) == 2, 10)
    assert [r.value for r in sink.readings] == [1000.0, 1001.0]
    assert source.info()["meter_id"] == "021234567890"
    assert any("is back on this port" in r.getMessage() for r in caplog.records)


def test_an_unsynchronised_meter_clock_is_counted_and_stored_at_receive_time(
    pty_source: Callable[..., tuple[TicLineSource, RecordingSink, int]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.sources.tic.source")
    source, sink, master = pty_source()
    os.write(master, _frames(4, synchronised=False))
    assert wait_until(lambda: len(sink.readings) == 4, 10)
    assert source.unsynchronised_frames == 4
    assert all(r.time == RECEIVED for r in sink.readings)  # receive time, not the frame's
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "meter clock not synchronised" in warnings[0]
    os.write(master, _frames(1))
    assert wait_until(lambda: len(sink.readings) == 5, 10)
    assert sink.readings[-1].time == T0
    assert source.unsynchronised_frames == 4


def _demo_totals(stdout: str) -> dict[str, tuple[float, float]]:
    """{figure: (API value, ground truth)} from the demo's table."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 3 and cells[0].endswith("_kwh") and cells[2]:
            rows[cells[0]] = (float(cells[1].replace(",", "")), float(cells[2].replace(",", "")))
    return rows


@pytest.mark.e2e
def test_demo_with_tic_corruption_still_matches_the_ground_truth(tmp_path: Path) -> None:
    # The real command, its Linky emulator damaging a fifth of its frames on the pty.
    result = subprocess.run(
        [sys.executable, "-m", "microville", "demo", "--config", "microville112-serial",
         "--days", "3", "--no-serve", "--data-dir", str(tmp_path), "--port", str(free_port()),
         "--broker-port", str(free_port()), "--tic-corruption", "0.2"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    # Its ptys were in a folder of its own (not the sample's /tmp/microville), now gone.
    ports = re.findall(r"emulated serial device on (\S+)", result.stdout)
    assert len(ports) == 2 and all("/microville-demo-" in p for p in ports), ports
    assert not Path(ports[0]).parent.exists()
    rejected = re.search(r"(\d+) rejected", result.stdout)
    assert rejected is not None and int(rejected.group(1)) > 0, result.stdout
    rows = _demo_totals(result.stdout)
    for figure in ("production_kwh", "import_kwh", "export_kwh"):
        api, truth = rows[figure]
        assert api == truth and truth > 0, (figure, api, truth)
    # Nothing wrong stored: a digit changed under its old checksum would show as an index
    # going down (or a spike and back); every stored grid index only grows.
    store = SqliteStore(tmp_path / "readings.db")
    try:
        for meter in ("grid-import", "grid-export"):
            series = store.index_slots(
                "microville112",
                [meter],
                "energy",
                datetime(2026, 5, 31, tzinfo=UTC),
                datetime(2026, 6, 5, tzinfo=UTC),
                timedelta(seconds=1),
            )[meter]
            values = [slot.last_value for slot in series.slots]
            assert len(values) > 50, meter
            assert all(b >= a for a, b in itertools.pairwise(values)), meter
    finally:
        store.close()


def _line_speed(device: Path) -> int:
    """The speed the port is set to now, read back from the pseudo-terminal itself (a
    Linux pty keeps the speed it is given, but forces 8 data bits and no parity)."""
    fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        speed = termios.tcgetattr(fd)[5]
    finally:
        os.close(fd)
    return {termios.B1200: 1200, termios.B9600: 9600}.get(speed, -1)


def _auto_config(port: Path, extra: str = "") -> SitesConfig:
    meters = "".join(
        f"""
[[sites.meters]]
id = "{meter}"
role = "grid_import"
source = {{ type = "tic", port = "{port}", mode = "auto", label = "{label}", \
interval_s = 0{extra} }}
"""
        for meter, label in (("historic-index", "BASE"), ("standard-index", "EAST"))
    )
    return parse_sites(SITE_S1 + meters)


def test_auto_mode_finds_the_speed_then_follows_the_meter_and_keeps_it_over_an_outage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.sources.tic.source")
    pair = VirtualSerialPair(tmp_path / "ttyTIC", tmp_path / "ttyTIC.emulator")
    pair.plug()
    config = _auto_config(pair.device_path)
    bindings = [TicBinding("s1", m, m.source.label) for m in config.sites[0].meters]  # type: ignore[union-attr]
    now = [1000.0]  # the detection window's clock, moved by hand
    source = TicLineSource(
        str(pair.device_path), "auto", bindings, interval_s=0, monotonic=lambda: now[0]
    )
    sink = RecordingSink()
    meter = serial.Serial(str(pair.emulator_path), 9600, timeout=1)
    try:
        source.start(sink)
        assert wait_until(lambda: source.ready, 5)
        assert _line_speed(pair.device_path) == 9600
        # A silent line for longer than the window: the other speed is tried.
        now[0] += DETECT_WINDOW_S + 0.1
        assert wait_until(lambda: _line_speed(pair.device_path) == 1200, 5)
        # A historic meter: frames, the source stays at 1200 baud in historic mode.
        meter.write(
            b"".join(linky_frame(TicMode.HISTORIC, T0, 5000 + i, 0, 90, 0) for i in range(2))
        )
        assert wait_until(lambda: len(sink.readings) == 2, 10)
        assert {r.meter for r in sink.readings} == {"historic-index"}
        assert source.decoder.mode is TicMode.HISTORIC
        assert _line_speed(pair.device_path) == 1200
        # The meter is switched to standard mode (9600 baud): the source follows it.
        meter.write(_frames(2))
        assert wait_until(lambda: len(sink.readings) == 4, 10)
        assert [r.meter for r in sink.readings[2:]] == ["standard-index"] * 2
        assert source.decoder.mode is TicMode.STANDARD
        assert wait_until(lambda: _line_speed(pair.device_path) == 9600, 5)
        tries = [r.getMessage() for r in caplog.records if "no TIC frame at" in r.getMessage()]
        assert tries == [f"{source.name}: no TIC frame at 9600 baud, trying 1200"]
        # Unplugged for longer than the window: no speed is tried while the port is away…
        meter.close()
        pair.unplug()
        assert wait_until(lambda: not source.ready, 5)
        attempts = source.line.open_attempts
        now[0] += 2 * DETECT_WINDOW_S
        assert wait_until(lambda: source.line.open_attempts >= attempts + 2, 10)
        assert source.line.baudrate == 9600
        # …and once back, it is heard at the speed that worked, for a whole window.
        pair.plug()
        meter = serial.Serial(str(pair.emulator_path), 9600, timeout=1)
        assert wait_until(lambda: source.ready, 10)
        meter.write(_frames(2))
        assert wait_until(lambda: len(sink.readings) == 6, 10)
        assert _line_speed(pair.device_path) == 9600
        tries = [r.getMessage() for r in caplog.records if "no TIC frame at" in r.getMessage()]
        assert len(tries) == 1, tries
    finally:
        meter.close()
        source.stop()
        pair.unplug()


def _tic_site(port: str, settings: str = "", second: str | None = None) -> str:
    meters = f"""
[[sites.meters]]
id = "grid-import"
role = "grid_import"
source = {{ type = "tic", port = "{port}", mode = "standard", label = "EAST", \
interval_s = 0{settings} }}
"""
    if second is not None:
        meters += f"""
[[sites.meters]]
id = "grid-export"
role = "grid_export"
source = {{ type = "tic", port = "{port}", mode = "standard", label = "EAIT", \
interval_s = 0{second} }}
"""
    return SITE_S1 + meters


def test_tic_line_settings_are_7e1_unless_the_meter_says_otherwise() -> None:
    master, slave = os.openpty()
    port = os.ttyname(slave)
    try:
        (default,) = tic_sources(parse_sites(_tic_site(port)), SourceOptions())
        assert default.line.settings == {"bytesize": 7, "parity": "E", "stopbits": 1}  # type: ignore[attr-defined]
        config = parse_sites(_tic_site(port, ', bytesize = 8, parity = "N", stopbits = 2'))
        (odd,) = tic_sources(config, SourceOptions())
        assert odd.line.settings == {"bytesize": 8, "parity": "N", "stopbits": 2}  # type: ignore[attr-defined]
        # Opened with them on a real pty, it reads frames.
        sink = RecordingSink()
        odd.start(sink)
        try:
            assert wait_until(lambda: odd.ready, 5)
            os.write(master, _frames(2))
            assert wait_until(lambda: len(sink.readings) == 2, 10)
        finally:
            odd.stop()
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize(
    ("settings", "second", "fragment"),
    [
        (
            ', parity = "X"',
            None,
            "site s1, meter grid-import, source.parity: Input should be 'E', 'N' or 'O'",
        ),
        (
            ", bytesize = 9",
            None,
            "site s1, meter grid-import, source.bytesize: Input should be 7 or 8",
        ),
        (
            ", stopbits = 3",
            None,
            "site s1, meter grid-import, source.stopbits: Input should be 1 or 2",
        ),
        (', parity = "N"', "", "is declared with different settings"),
    ],
)
def test_bad_tic_line_settings_are_refused_naming_the_key(
    settings: str, second: str | None, fragment: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_sites(_tic_site("/dev/ttyUSB0", settings, second))
    assert fragment in str(err.value), str(err.value)


def test_each_demo_run_gets_its_own_serial_ports(tmp_path: Path) -> None:
    sample = read_sites(SAMPLE_CONFIG.parent / "microville112-serial.toml")
    one = relocate_serial_ports(sample, tmp_path / "run-1")
    two = relocate_serial_ports(sample, tmp_path / "run-2")

    def ports(config: SitesConfig) -> set[str]:
        return {
            m.source.port  # type: ignore[union-attr]
            for m in config.sites[0].meters
            if m.source.type in ("tic", "modbus")
        }

    assert ports(sample) == {"/tmp/microville/ttyTIC", "/tmp/microville/ttyRS485"}
    assert ports(one) == {str(tmp_path / "run-1" / "ttyTIC"), str(tmp_path / "run-1" / "ttyRS485")}
    assert ports(one).isdisjoint(ports(two))
    # Everything else is the sample's.
    assert [m.id for m in one.sites[0].meters] == [m.id for m in sample.sites[0].meters]
    assert one.sites[0].meters[0].source.model_copy(update={"port": "x"}) == (  # type: ignore[union-attr]
        sample.sites[0].meters[0].source.model_copy(update={"port": "x"})  # type: ignore[union-attr]
    )
