"""Linky emulator → pseudo-terminal → pyserial → gateway → store → balance API."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from support import SITE_S1, wait_until

from microville.domain.periods import localize
from microville.domain.site import SitesConfig, parse_sites
from microville.domain.store import ReadingStore
from microville.domain.tic_labels import TicMode
from microville.firmware_sim.building import ground_truth, index_at, simulate_building
from microville.firmware_sim.clock import SimulatedClock
from microville.firmware_sim.linky_emulator import LinkyEmulator
from microville.firmware_sim.virtual_serial import VirtualSerialPair
from microville.gateway.gateway import Gateway
from microville.gateway.sources import SourceOptions
from microville.service.app import create_app
from microville.settings import Settings

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


@pytest.mark.e2e
@pytest.mark.parametrize("bench", [(TicMode.STANDARD, 0.3)], indirect=True, ids=["corrupted"])
def test_no_wrong_value_is_stored_from_corrupted_frames(bench: Bench) -> None:
    bench.run()
    bench.finish()
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
    caplog.set_level(logging.INFO, logger="microville.gateway.serial_line")
    bench.run()
    assert bench.emulator is not None and bench.gateway is not None
    assert wait_until(lambda: bench.gateway is not None and bench.gateway.writer.written > 5, 10)
    bench.emulator.stop()
    bench.pair.unplug()
    assert wait_until(lambda: not bench.gateway.sources[0].ready, 5)  # type: ignore[union-attr]
    before = bench.gateway.writer.written
    bench.pair.plug()
    bench.emulator = bench.new_emulator()
    bench.emulator.start()
    bench.finish()
    assert bench.gateway.writer.written > before
    outages = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(outages) == 1, [r.getMessage() for r in outages]
    assert any("is back" in r.getMessage() for r in caplog.records)
