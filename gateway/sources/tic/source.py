"""The TIC source: a Linky (or older meter) on a serial line, one source per port."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.reading_checks import ReadingRefused, checked_reading
from domain.site import Meter, SitesConfig, TicSource
from domain.tic_labels import TicMode
from gateway.sources.registry import Sink, Source, SourceOptions, register_source
from gateway.sources.tic.decoder import (
    TicFrame,
    TicStreamDecoder,
    frame_values,
    unsynchronised_horodates,
)
from gateway.sources.tic.serial_line import SerialLine

log = logging.getLogger(__name__)

#: Line speed of each mode (both 7 data bits, even parity, 1 stop bit: the defaults of
#: ``bytesize``, ``parity`` and ``stopbits``, which an odd adapter may override).
BAUDRATE = {TicMode.HISTORIC: 1200, TicMode.STANDARD: 9600}
#: With mode "auto", how long to listen at one speed before trying the other: time
#: with the port open, counted from the last frame or from the (re)opening of the port,
#: whichever is later — an unplugged adapter tries no speed, and once back it is heard
#: for a whole window at the speed that last worked.
DETECT_WINDOW_S = 5.0
#: Groups naming the meter: its address (ADCO historic, ADSC standard) and delivery point.
IDENTITY_LABELS = {"ADCO": "meter_id", "ADSC": "meter_id", "PRM": "prm"}


@dataclass(frozen=True)
class TicBinding:
    site: str
    meter: Meter
    label: str


class TicLineSource:
    """Reads TIC frames from one serial port and stores the configured labels.

    Groups with a bad checksum or broken framing are dropped by the decoder and counted;
    the rest of the frame is kept. Dropped groups and lost frames (no valid group, cut by
    EOT, restarted by STX) go to the sink's dead-letter log with their reason. One value
    per label is stored per ``interval_s`` of device time (the first of each interval):
    indexes are cumulative, so the frames skipped lose no energy.

    A meter whose clock is not synchronised (lowercase season in ``DATE``) has its
    values stored at the receive time, horodated ones too; such frames are counted
    (``unsynchronised_frames``) and the condition logged once until it clears.

    The meter's identity (ADCO/ADSC, PRM) is kept as last seen (:attr:`identity`). With
    ``expected_meter_id``, a frame from another meter (a wrong adapter on this port) is
    not stored: it is counted (``identity_mismatches``), dead-lettered and warned about
    once per mismatch, not once per frame; until the meter has said who it is (after a
    start or an outage of the line), its frames wait unstored too.

    See :class:`~gateway.sources.Source` for the lifecycle.
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
        expected_meter_id: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        bytesize: int = 7,
        parity: str = "E",
        stopbits: int = 1,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.name = f"tic:{port}"
        self.received = 0
        self.mode = None if mode == "auto" else TicMode(mode)
        self.decoder = TicStreamDecoder(self.mode)
        first_baudrate = baudrate or BAUDRATE[self.mode or TicMode.STANDARD]
        # ``monotonic`` times the line too: the detection window counts from its opening.
        self.line = line or SerialLine(
            port, first_baudrate, bytesize, parity, stopbits, clock=monotonic
        )
        self._fixed_baudrate = baudrate is not None or self.mode is not None
        self._bindings: dict[str, list[TicBinding]] = defaultdict(list)
        for b in bindings:
            self._bindings[b.label].append(b)
        self._interval_s = interval_s
        self._last_bucket: dict[tuple[str, str], float] = {}
        self._clock = clock
        self._now = now or clock  # what device times (DATE) are checked against
        self._stop = threading.Event()
        self._sink: Sink | None = None
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._monotonic = monotonic
        self._last_frame = 0.0
        self.expected_meter_id = expected_meter_id
        #: Last seen identity: ``meter_id`` (ADCO/ADSC) and ``prm``, when sent.
        self.identity: dict[str, str] = {}
        self.unsynchronised_frames = 0
        self.identity_mismatches = 0
        self._clock_off = False
        self._mismatch: str | None = None
        self._line_outages = 0

    def counters(self) -> dict[str, int]:
        """Cumulative counts for the gateway's metrics (``microville_gateway_tic_*``)."""
        d = self.decoder
        return {
            "tic_frames_decoded": d.frames,
            "tic_groups_dropped": d.groups_dropped,
            "tic_frames_lost": d.frames_lost,
            "tic_frames_interrupted": d.frames_interrupted,
            "tic_bytes_discarded": d.bytes_discarded,
            "tic_unsynchronised_frames": self.unsynchronised_frames,
            "tic_identity_mismatches": self.identity_mismatches,
        }

    def info(self) -> dict[str, str]:
        """The meter's last seen identity, for the ``…_tic_meter_info`` metric."""
        return dict(self.identity)

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
        self._last_frame = self._monotonic()
        while not self._stop.is_set():
            data = self.line.read(self._stop)
            if self.line.outages != self._line_outages:
                # The line went away: whatever is plugged in now has to say who it is.
                self._line_outages = self.line.outages
                self.identity.clear()
            if data:
                for frame in self.decoder.feed(data):
                    self._last_frame = self._monotonic()
                    self._deliver(frame)
                    self._follow_mode(frame.mode)
                self._reject_lost()
            self._maybe_switch_speed()

    def _reject_lost(self) -> None:
        assert self._sink is not None
        for lost in self.decoder.take_lost():
            for reason in lost.dropped:
                self._sink.reject(self.name, reason, b"")
            self._sink.reject(self.name, lost.reason, lost.data)

    def _maybe_switch_speed(self) -> None:
        """Mode auto: no frame for a window with the port open, try the other speed."""
        opened_at = self.line.opened_at
        if self._fixed_baudrate or opened_at is None:
            return
        now = self._monotonic()
        if now - max(self._last_frame, opened_at) < DETECT_WINDOW_S:
            return
        other = 1200 if self.line.baudrate == 9600 else 9600
        log.info("%s: no TIC frame at %d baud, trying %d", self.name, self.line.baudrate, other)
        self.line.set_baudrate(other)
        self._last_frame = now

    def _follow_mode(self, mode: TicMode) -> None:
        """Mode auto: settle on the speed of the mode the frames show (on a real line they
        only decode at it; on a pseudo-terminal, whose speed is nominal, at any)."""
        if not self._fixed_baudrate and self.line.baudrate != BAUDRATE[mode]:
            log.info(
                "%s: %s TIC frames, line set to %d baud", self.name, mode.value, BAUDRATE[mode]
            )
            self.line.set_baudrate(BAUDRATE[mode])

    def _deliver(self, frame: TicFrame) -> None:
        assert self._sink is not None
        self.received += 1
        for reason in frame.dropped:
            self._sink.reject(self.name, reason, b"")
        if not self._identity_fits(frame):
            return
        unsynchronised = unsynchronised_horodates(frame)
        if unsynchronised:
            self.unsynchronised_frames += 1
        if bool(unsynchronised) != self._clock_off:
            self._clock_off = bool(unsynchronised)
            if unsynchronised:
                log.warning(
                    "%s: meter clock not synchronised (%s); storing at the receive time",
                    self.name,
                    ", ".join(unsynchronised),
                )
            else:
                log.info("%s: meter clock synchronised again", self.name)
        values, problems = frame_values(frame, self._clock())
        for problem in problems:
            self._sink.reject(self.name, problem, b"")
        now = self._now()
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
                    reading = checked_reading(
                        b.site, b.meter, value.value, value.unit, value.time, now
                    )
                except ReadingRefused as exc:
                    self._sink.reject(self.name, str(exc), b"")
                    continue  # the interval stays open for the next frame's value
                self._last_bucket[key] = bucket
                readings.append(reading)
        if readings:
            self._sink.accept(readings)

    def _identity_fits(self, frame: TicFrame) -> bool:
        """Note the identity the frame carries; whether it is the expected meter's (a
        frame without its identity group is taken as from the last meter seen)."""
        for label, key in IDENTITY_LABELS.items():
            group = frame.groups.get(label)
            if group is not None:
                self.identity[key] = group.data
        expected = self.expected_meter_id
        seen = self.identity.get("meter_id")
        if expected is None or seen is None or seen == expected:
            if self._mismatch is not None and seen == expected:
                log.info("%s: meter %s is back on this port", self.name, expected)
                self._mismatch = None
            return expected is None or seen is not None
        assert self._sink is not None
        self.identity_mismatches += 1
        if self._mismatch != seen:
            self._mismatch = seen
            reason = (
                f"meter id {seen!r} is not the expected {expected!r}: "
                "its frames are not stored (wrong meter or adapter on this port?)"
            )
            log.warning("%s: %s", self.name, reason)
            self._sink.reject(self.name, reason, b"")
        return False


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
            TicLineSource(
                port,
                src.mode,
                bindings,
                src.baudrate,
                src.interval_s,
                options.clock,
                expected_meter_id=src.meter_id,
                bytesize=src.bytesize,
                parity=src.parity,
                stopbits=src.stopbits,
                now=options.present,
            )
        )
    return sources
