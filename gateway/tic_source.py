"""The TIC source: a Linky (or older meter) on a serial line, one source per port."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from microville.domain.readings import Reading
from microville.domain.site import Meter, SitesConfig, TicSource
from microville.domain.tic_labels import TicMode
from microville.domain.units import UnitError, to_base
from microville.gateway.serial_line import SerialLine
from microville.gateway.sources import Sink, Source, SourceOptions, register_source
from microville.gateway.tic import TicFrame, TicStreamDecoder, frame_values

log = logging.getLogger(__name__)

#: Line speed of each mode (both 7 data bits, even parity, 1 stop bit).
BAUDRATE = {TicMode.HISTORIC: 1200, TicMode.STANDARD: 9600}
#: With mode "auto", how long to listen at one speed before trying the other.
DETECT_WINDOW_S = 5.0


@dataclass(frozen=True)
class TicBinding:
    site: str
    meter: Meter
    label: str


class TicLineSource:
    """Reads TIC frames from one serial port and stores the configured labels.

    Groups with a bad checksum or broken framing are dropped by the decoder and counted;
    the rest of the frame is kept. One value per label is stored per ``interval_s`` of
    device time (the first of each interval): indexes are cumulative, so the frames
    skipped lose no energy. See :class:`~microville.gateway.sources.Source` for the lifecycle.
    """

    def __init__(
        self,
        port: str,
        mode: str,
        bindings: list[TicBinding],
        baudrate: int | None = None,
        interval_s: float = 10.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        line: SerialLine | None = None,
    ) -> None:
        self.name = f"tic:{port}"
        self.received = 0
        self.mode = None if mode == "auto" else TicMode(mode)
        self.decoder = TicStreamDecoder(self.mode)
        first_baudrate = baudrate or BAUDRATE[self.mode or TicMode.STANDARD]
        self.line = line or SerialLine(port, first_baudrate, bytesize=7, parity="E", stopbits=1)
        self._fixed_baudrate = baudrate is not None or self.mode is not None
        self._bindings: dict[str, list[TicBinding]] = defaultdict(list)
        for b in bindings:
            self._bindings[b.label].append(b)
        self._interval_s = interval_s
        self._last_bucket: dict[tuple[str, str], float] = {}
        self._clock = clock
        self._stop = threading.Event()
        self._sink: Sink | None = None
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._last_frame = 0.0

    @property
    def ready(self) -> bool:
        return self.line.connected

    def start(self, sink: Sink) -> None:
        self._sink = sink
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.line.close()

    def _run(self) -> None:
        self._last_frame = time.monotonic()
        while not self._stop.is_set():
            data = self.line.read(self._stop)
            if data:
                for frame in self.decoder.feed(data):
                    self._last_frame = time.monotonic()
                    self._deliver(frame)
            self._maybe_switch_speed()

    def _maybe_switch_speed(self) -> None:
        if self._fixed_baudrate or time.monotonic() - self._last_frame < DETECT_WINDOW_S:
            return
        other = 1200 if self.line.baudrate == 9600 else 9600
        log.info("%s: no TIC frame at %d baud, trying %d", self.name, self.line.baudrate, other)
        self.line.set_baudrate(other)
        self._last_frame = time.monotonic()

    def _deliver(self, frame: TicFrame) -> None:
        assert self._sink is not None
        self.received += 1
        for reason in frame.dropped:
            self._sink.reject(self.name, reason, b"")
        values, problems = frame_values(frame, self._clock())
        for problem in problems:
            self._sink.reject(self.name, problem, b"")
        readings = []
        for value in values:
            for b in self._bindings.get(str(value.key), []):
                # One value per interval of device time: the first of each interval, so
                # a frame at a period boundary (midnight) is always kept.
                key = (b.site, b.meter.id)
                bucket = value.time.timestamp() // self._interval_s if self._interval_s else -1.0
                if bucket >= 0 and self._last_bucket.get(key) == bucket:
                    continue
                try:
                    base = to_base(value.value, value.unit or b.meter.unit, b.meter.dimension)
                except UnitError as exc:
                    self._sink.reject(self.name, f"meter {b.site}/{b.meter.id}: {exc}", b"")
                    continue
                self._last_bucket[key] = bucket
                readings.append(Reading(b.site, b.meter.id, b.meter.dimension, base, value.time))
        if readings:
            self._sink.accept(readings)


@register_source("tic")
def tic_sources(config: SitesConfig, options: SourceOptions) -> list[Source]:
    """One source per serial port; the meters on a port share its settings (validated)."""
    by_port: dict[str, list[tuple[str, Meter, TicSource]]] = defaultdict(list)
    for site in config.sites:
        for meter in site.meters:
            if isinstance(meter.source, TicSource):
                by_port[meter.source.port].append((site.id, meter, meter.source))
    sources: list[Source] = []
    for port, entries in by_port.items():
        src = entries[0][2]
        bindings = [TicBinding(site, meter, s.label) for site, meter, s in entries]
        sources.append(
            TicLineSource(port, src.mode, bindings, src.baudrate, src.interval_s, options.clock)
        )
    return sources
