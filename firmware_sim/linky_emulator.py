"""A Linky on a serial line: TIC frames whose indexes follow the simulated building."""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import serial

from domain.tic_labels import TicMode
from firmware_sim.building import index_at, power_at
from firmware_sim.clock import SimulatedClock
from firmware_sim.tic_frames import (
    Tariff,
    TariffIndexes,
    corrupt_data,
    line_noise,
    linky_frame,
    truncate,
)

log = logging.getLogger(__name__)

#: Groups whose data the corruption may change (under their old checksum).
CORRUPTIBLE = {
    TicMode.STANDARD: ("EAST", "EAIT", "SINSTS", "DATE", "ADSC"),
    TicMode.HISTORIC: ("BASE", "PAPP", "IINST", "ADCO"),
}


class LinkyEmulator:
    """Writes a frame every ``frame_interval_s`` real seconds to the serial ``port`` (the
    emulator end of a :class:`~firmware_sim.virtual_serial.VirtualSerialPair`),
    with the building's import and export indexes at the clock's simulated time.

    ``corruption`` is the share of frames damaged on the way (a digit of one group's
    data — an index, a power, the date, the meter id — changed under its old checksum,
    so that only checksum verification can catch it; a frame cut by EOT; or line noise
    before it); the frames at ``end`` are always intact, so the last index the gateway
    sees is the true one; so is the first frame, which gives the index at the period's
    start. With ``record_sent``, the true indexes of every frame written
    are kept in :attr:`sent_indexes` (import, and export in standard mode), for tests.
    The first frame is dated ``first_frame_at`` when given (the start of a simulated
    period), so that the gateway has the index at the period's start.

    ``tariff`` (default: Tempo in standard mode, BASE in historic mode) splits the drawn
    energy over the supplier and distributor indexes by the time of day and the Tempo
    day colour (:func:`~firmware_sim.tic_frames.tariff_slot`), EAST (or the
    historic total) staying their exact sum.

    Lifecycle: ``start()`` once; ``done`` is set after the frame at ``end`` is written;
    ``stop()`` once.
    """

    def __init__(
        self,
        port: str | Path,
        mode: TicMode,
        building: pd.DataFrame,
        clock: SimulatedClock,
        end: datetime,
        frame_interval_s: float = 0.05,
        corruption: float = 0.0,
        seed: int = 0,
        first_frame_at: datetime | None = None,
        record_sent: bool = False,
        tariff: Tariff | None = None,
    ) -> None:
        self.port = str(port)
        self.mode = mode
        self.building = building
        self.clock = clock
        self.end = end
        self.frame_interval_s = frame_interval_s
        self.corruption = corruption
        self.first_frame_at = first_frame_at
        self.frames_written = 0
        self.frames_corrupted = 0
        #: Damage done, by kind: ``data EAST`` (a digit of EAST changed)…, ``EOT``, ``noise``.
        self.damage: Counter[str] = Counter()
        self.record_sent = record_sent
        #: True whole-Wh indexes sent: ``{"import": {...}, "export": {...}}``.
        self.sent_indexes: dict[str, set[int]] = {"import": set(), "export": set()}
        self.done = threading.Event()
        if tariff is None:
            tariff = Tariff.TEMPO if mode is TicMode.STANDARD else Tariff.BASE
        self.tariff = tariff
        start = building.index[0].to_pydatetime()
        self.indexes = TariffIndexes(
            tariff, lambda t: index_at(building, "import_wh", t), start, max(start, end)
        )
        self._rng = np.random.default_rng(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"linky:{port}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def frame_at(self, t: datetime) -> bytes:
        b = self.building
        net_w = power_at(b, "load_power_w", t) - power_at(b, "pv_power_w", t)
        import_wh, export_wh = index_at(b, "import_wh", t), index_at(b, "export_wh", t)
        if self.record_sent:
            self.sent_indexes["import"].add(math.floor(import_wh))
            self.sent_indexes["export"].add(math.floor(export_wh))
        supplier, distributor = self.indexes.at(t)
        return linky_frame(
            self.mode,
            t,
            import_wh=import_wh,
            export_wh=export_wh,
            power_va=max(net_w, 0.0),
            injected_va=max(-net_w, 0.0),
            tariff=self.tariff,
            supplier=supplier,
            distributor=distributor,
        )

    def _damage(self, frame: bytes) -> bytes:
        self.frames_corrupted += 1
        kind = self._rng.integers(3)
        if kind == 0:
            label = str(self._rng.choice(CORRUPTIBLE[self.mode]))
            position, delta = int(self._rng.integers(12)), int(self._rng.integers(1, 10))
            self.damage[f"data {label}"] += 1
            return corrupt_data(frame, label, position, delta)
        if kind == 1:
            self.damage["EOT"] += 1
            return truncate(frame, int(self._rng.integers(2, len(frame) - 1)))
        self.damage["noise"] += 1
        return line_noise(self._rng, int(self._rng.integers(1, 40))) + frame

    def _run(self) -> None:
        with serial.Serial(self.port, 9600, timeout=1, write_timeout=10) as line:
            while not self._stop.is_set():
                t = min(self.clock.now(), self.end)
                if self.frames_written == 0 and self.first_frame_at is not None:
                    t = self.first_frame_at
                frame = self.frame_at(t)
                final = t >= self.end
                first = self.frames_written == 0
                if not (final or first) and self._rng.random() < self.corruption:
                    frame = self._damage(frame)
                # The final frame goes twice: a reader starting mid-frame still gets one.
                line.write(frame * (2 if final else 1))
                self.frames_written += 1
                if final:
                    line.flush()
                    self.done.set()
                    return
                self._stop.wait(self.frame_interval_s)
