"""The Modbus source: polls every configured meter of one line, RTU or TCP.

A *line* is one RS-485 bus behind one serial port, or one Modbus TCP host:port; every
device on it (unit id) is polled in turn by one thread with one pymodbus synchronous
client, since a bus carries one request at a time.

Each cycle reads, per device and register table, the registers the meters need (their
value registers and the SunSpec scale-factor registers these name), grouping registers
that follow one another into one request. Values are decoded with the register map
(:func:`~domain.modbus_maps.decode_registers`) and converted to the meter's
base unit; a value the device flags as not implemented (or a NaN) is rejected to the
sink with its reason, and so is one refused by the check of every source
(:func:`~domain.reading_checks.checked_reading`: negative index, magnitude,
time — a Modbus value's time is the gateway's clock, so a clock that is not set).

Failures never stop the thread: timeouts and bad frames are counted (pymodbus retries
the request ``retries`` times); a lost port or connection (USB adapter pulled, TCP reset)
closes the client and reopens it with exponential backoff, logging one warning when the
outage starts and one info line when it ends. A device that stops answering while its
line is fine (other units answer, or the port reopens and still nobody does) is warned
about once, and said once when it answers again.

pymodbus logs an error for every timed-out request; these are counted here, so its
messages below CRITICAL logged from a polling thread of this module are dropped
(:class:`_QuietPollingThreads`) — pymodbus elsewhere in the process keeps its log.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from domain.modbus_maps import RegisterSpec, decode_registers
from domain.reading_checks import ReadingRefused, checked_reading
from domain.site import Meter, SitesConfig
from domain.site import ModbusSource as ModbusSourceConfig
from gateway.sources.registry import Sink, Source, SourceOptions, register_source
from microville.backoff import Backoff

log = logging.getLogger(__name__)

Table = Literal["holding", "input"]

#: Most registers asked for in one request. The protocol allows 125; Eastron meters
#: answer at most 30 to 40 values (60 to 80 registers) per request.
MAX_REGISTERS_PER_READ = 60

#: Modbus exception codes, for the log.
EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}


@dataclass(frozen=True)
class ModbusPoint:
    """One meter read on a line: where its value is and how to decode it."""

    site: str
    meter: Meter
    config: ModbusSourceConfig
    spec: RegisterSpec
    scale: RegisterSpec | None = None

    @property
    def unit_id(self) -> int:
        return self.config.unit_id

    def registers(self) -> list[tuple[Table, int]]:
        """Every (table, address) this point needs, scale factor included."""
        specs = [self.spec] if self.scale is None else [self.spec, self.scale]
        return [(s.table, a) for s in specs for a in range(s.address, s.address + s.count)]


@dataclass(frozen=True)
class ReadBlock:
    """One read request: ``count`` registers of ``table`` from ``address`` of a device."""

    unit_id: int
    table: Table
    address: int
    count: int


def plan_reads(
    points: Sequence[ModbusPoint], max_registers: int = MAX_REGISTERS_PER_READ
) -> list[ReadBlock]:
    """Group the registers the points need into as few requests as possible.

    Only registers that follow one another are grouped (a gap could be an address the
    device does not serve, answered with an exception); a run longer than
    ``max_registers`` is split.
    """
    wanted: dict[tuple[int, Table], set[int]] = {}
    for point in points:
        for table, address in point.registers():
            wanted.setdefault((point.unit_id, table), set()).add(address)
    blocks = []
    for (unit_id, table), addresses in sorted(wanted.items()):
        start = previous = -2
        for address in sorted(addresses):
            if address == previous + 1 and address - start < max_registers:
                previous = address
                continue
            if start >= 0:
                blocks.append(ReadBlock(unit_id, table, start, previous - start + 1))
            start = previous = address
        blocks.append(ReadBlock(unit_id, table, start, previous - start + 1))
    return blocks


class _QuietPollingThreads(logging.Filter):
    """Drops pymodbus records below CRITICAL emitted by a polling thread of a
    :class:`ModbusLineSource` (by thread id), and only those."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.CRITICAL or record.thread not in self.threads


#: The logger pymodbus writes to (``pymodbus.logging``), and the filter on it.
PYMODBUS_LOGGER = logging.getLogger("pymodbus.logging")
_QUIET = _QuietPollingThreads()
PYMODBUS_LOGGER.addFilter(_QUIET)


class _LineDown(Exception):
    """The port or connection is gone: close and reconnect."""


class ModbusLineSource:
    """Polls every Modbus meter of one line; see :class:`~gateway.sources.Source`.

    Line settings (serial parameters, or host and port) come from the meters' config,
    which agree on them; the poll interval is the smallest ``interval_s`` of the meters,
    the request timeout and retries the largest ``timeout_s`` and ``retries``.

    Counters (ints, read from any thread):

    - ``polls`` (also ``received``): read requests made, whatever came of them;
    - ``timeouts``: attempts (pymodbus retries included) that got no byte back;
    - ``crc_errors``: attempts that got bytes back but no valid frame (bad CRC, garbled
      or truncated frame, answer from another unit);
    - ``exceptions``: Modbus exception responses (illegal address…);
    - ``decode_errors``: values rejected to the sink (not implemented, NaN…).
    """

    def __init__(
        self,
        line: str,
        points: Sequence[ModbusPoint],
        *,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        max_registers_per_read: int = MAX_REGISTERS_PER_READ,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if not points:
            raise ValueError(f"modbus line {line}: no meter to poll")
        self.line = line
        self.name = f"modbus:{line}"
        self.points = list(points)
        self.blocks = plan_reads(self.points, max_registers_per_read)
        self.interval_s = min(p.config.interval_s for p in self.points)
        self.timeout_s = max(p.config.timeout_s for p in self.points)
        self.retries = max(p.config.retries for p in self.points)
        #: Reconnection delays: doubled after each failed attempt, up to the maximum.
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        #: Modbus values carry no time: readings are stamped with this clock.
        self._clock = clock
        #: What the readings' times are checked against (``clock`` unless given).
        self._now = now or clock

        self.polls = 0
        self.received = 0  # the Source protocol's counter: the same as polls
        self.timeouts = 0
        self.crc_errors = 0
        self.exceptions = 0
        self.decode_errors = 0

        self._settings = self.points[0].config
        self._client = self._make_client()
        self._sink: Sink | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connected = False
        self._answered = False
        self._outage_since: float | None = None
        self._ever_connected = False
        self._warned_exceptions: set[tuple[ReadBlock, int]] = set()
        #: Units that stopped answering (warned once), since when (monotonic).
        self.silent_units: dict[int, float] = {}
        self._quiet_cycles = 0
        self._cycle_answered: set[int] = set()
        # State of the current attempt, kept by the trace hooks.
        self._attempt_open = False
        self._attempt_bytes = False
        self._attempt_answered = False

    # -- Source protocol -------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        """Cumulative counts for the gateway's metrics (``microville_gateway_modbus_*``)."""
        return {
            "modbus_polls": self.polls,
            "modbus_timeouts": self.timeouts,
            "modbus_crc_errors": self.crc_errors,
            "modbus_exceptions": self.exceptions,
            "modbus_decode_errors": self.decode_errors,
        }

    @property
    def ready(self) -> bool:
        """Connected, and the last poll cycle got at least one answer."""
        return self._connected and self._answered

    def start(self, sink: Sink) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self._sink = sink
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        self._close_client()
        self._connected = False

    # -- the polling thread ----------------------------------------------------------

    def _run(self) -> None:
        _QUIET.threads.add(threading.get_ident())
        try:
            self._poll_forever()
        finally:
            _QUIET.threads.discard(threading.get_ident())

    def _poll_forever(self) -> None:
        backoff = Backoff(self.backoff_initial_s, self.backoff_max_s)
        next_poll = time.monotonic()
        while not self._stopping.is_set():
            if not self._connected:
                if not self._connect():
                    self._stopping.wait(backoff.next())
                    continue
                backoff.reset()
            if self._stopping.wait(max(0.0, next_poll - time.monotonic())):
                break
            started = time.monotonic()
            try:
                answers = self._poll_cycle()
            except _LineDown as exc:
                self._line_down(str(exc))
                continue
            except Exception:  # a bug must not kill the line
                log.exception("unexpected error polling %s", self.name)
                answers = 0
            self._answered = answers > 0
            self._quiet_cycles = 0 if answers else self._quiet_cycles + 1
            if answers or self._quiet_cycles >= 2:
                self._note_silent_units()
            if not answers:
                # Nobody answered: the port may be a stale handle (a pulled adapter
                # often shows as silence). Reopen quietly; the outage is logged only
                # if it cannot be reopened.
                self._close_client()
                self._connected = False
            next_poll = max(started + self.interval_s, time.monotonic())

    def _connect(self) -> bool:
        settings = self._settings
        if settings.transport == "rtu" and "://" not in (settings.port or ""):
            # pymodbus logs an error at each failed open: check first, to stay quiet
            # while the adapter is away.
            ok = os.path.exists(settings.port or "") and self._client.connect()
        else:
            ok = self._client.connect()
        if ok:
            self._connected = True
            if self._outage_since is not None:
                log.info(
                    "modbus line %s is back after %.1f s",
                    self.line,
                    time.monotonic() - self._outage_since,
                )
                self._outage_since = None
            elif not self._ever_connected:
                log.info("connected to modbus line %s", self.line)
            self._ever_connected = True
        else:
            self._outage_started("cannot open it")
        return ok

    def _line_down(self, reason: str) -> None:
        self._close_client()
        self._connected = False
        self._answered = False
        self._outage_started(reason)

    def _outage_started(self, reason: str) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.warning(
                "modbus line %s unavailable (%s); reconnecting with backoff up to %g s",
                self.line,
                reason,
                self.backoff_max_s,
            )

    def _note_silent_units(self) -> None:
        """Once the line is known to be fine, say once which units went silent or came
        back (a whole line silent but reopening fine counts after a second cycle)."""
        now = time.monotonic()
        for unit_id in sorted({b.unit_id for b in self.blocks}):
            silent_since = self.silent_units.get(unit_id)
            if unit_id in self._cycle_answered:
                if silent_since is not None:
                    del self.silent_units[unit_id]
                    log.info(
                        "modbus line %s unit %d answers again after %.1f s",
                        self.line,
                        unit_id,
                        now - silent_since,
                    )
            elif silent_since is None:
                self.silent_units[unit_id] = now
                log.warning(
                    "modbus line %s unit %d does not answer (timeout %g s, %d retries); "
                    "its meters are not read until it does",
                    self.line,
                    unit_id,
                    self.timeout_s,
                    self.retries,
                )

    def _poll_cycle(self) -> int:
        """Read every block, deliver what decodes; return the number of answers."""
        assert self._sink is not None
        answers = 0
        self._cycle_answered = set()
        for unit_id in sorted({b.unit_id for b in self.blocks}):
            words: dict[tuple[Table, int], int] = {}
            when = self._clock()
            for block in self.blocks:
                if block.unit_id != unit_id:
                    continue
                if self._stopping.is_set():
                    return answers
                response = self._read(block)
                if response is None:
                    continue
                answers += 1
                self._cycle_answered.add(unit_id)
                if response.isError():
                    self._exception_response(block, response.exception_code)
                    continue
                registers = list(response.registers)
                if len(registers) != block.count:
                    self.crc_errors += 1  # a frame, but not the answer to this request
                    continue
                for offset, word in enumerate(registers):
                    words[(block.table, block.address + offset)] = word
            self._deliver(unit_id, words, when)
        return answers

    def _read(self, block: ReadBlock) -> ModbusPDU | None:
        """One request; ``None`` when it got no valid answer (counted)."""
        self.polls += 1
        self.received = self.polls
        read = (
            self._client.read_holding_registers
            if block.table == "holding"
            else self._client.read_input_registers
        )
        try:
            return read(block.address, count=block.count, device_id=block.unit_id)
        except ConnectionException as exc:
            self._attempt_open = False  # not a timeout: the line is gone
            raise _LineDown(str(exc) or type(exc).__name__) from None
        except ModbusIOException:
            if self._attempt_answered:  # a valid frame, but from another unit
                self.crc_errors += 1
            return None  # no valid answer after the retries (counted per attempt)
        except ModbusException as exc:  # an answer pymodbus could not decode
            log.debug("%s unit %d: %s", self.name, block.unit_id, exc)
            self.crc_errors += 1
            return None
        finally:
            self._end_attempt()

    def _exception_response(self, block: ReadBlock, code: int) -> None:
        self.exceptions += 1
        if (block, code) not in self._warned_exceptions:  # once per request and code
            self._warned_exceptions.add((block, code))
            log.warning(
                "modbus line %s unit %d answers exception %d (%s) to reading %d %s "
                "register(s) from %d: check its register map",
                self.line,
                block.unit_id,
                code,
                EXCEPTION_NAMES.get(code, "unknown"),
                block.count,
                block.table,
                block.address,
            )

    def _deliver(self, unit_id: int, words: dict[tuple[Table, int], int], when: datetime) -> None:
        assert self._sink is not None
        readings = []
        now = self._now()
        for point in self.points:
            if point.unit_id != unit_id:
                continue
            needed = point.registers()
            if any(key not in words for key in needed):
                continue  # its request failed, already counted
            try:
                value = self._decode(point, words)
                readings.append(
                    checked_reading(point.site, point.meter, value, point.spec.unit, when, now)
                )
            except ReadingRefused as exc:  # decoded fine, but not a value to store
                self._sink.reject(f"modbus:{self.line} unit {unit_id}", str(exc), b"")
            except ValueError as exc:
                self.decode_errors += 1
                self._sink.reject(
                    f"modbus:{self.line} unit {unit_id}",
                    f"site {point.site} meter {point.meter.id} "
                    f"({point.config.map}.{point.spec.name}): {exc}",
                    b"",
                )
        if readings:
            self._sink.accept(readings)

    @staticmethod
    def _decode(point: ModbusPoint, words: dict[tuple[Table, int], int]) -> float:
        """The point's value in its register's unit."""

        def read(spec: RegisterSpec) -> list[int]:
            return [words[(spec.table, a)] for a in range(spec.address, spec.address + spec.count)]

        scale_factor = None
        if point.scale is not None:
            sf = decode_registers(point.scale, read(point.scale))
            if not sf.is_integer():
                raise ValueError(f"scale factor {point.scale.name!r} is {sf}, not an integer")
            scale_factor = int(sf)
        return decode_registers(point.spec, read(point.spec), scale_factor)

    # -- pymodbus client and its trace hooks -----------------------------------------

    def _make_client(self) -> ModbusSerialClient | ModbusTcpClient:
        settings = self._settings
        if settings.transport == "rtu":
            assert settings.port is not None
            return ModbusSerialClient(
                settings.port,
                baudrate=settings.baudrate,
                bytesize=settings.bytesize,
                parity=settings.parity,
                stopbits=settings.stopbits,
                timeout=self.timeout_s,
                retries=self.retries,
                name=self.name,
                trace_packet=self._trace_packet,
                trace_pdu=self._trace_pdu,
            )
        assert settings.host is not None
        return ModbusTcpClient(
            settings.host,
            port=settings.tcp_port,
            timeout=self.timeout_s,
            retries=self.retries,
            name=self.name,
            trace_packet=self._trace_packet,
            trace_pdu=self._trace_pdu,
        )

    def _close_client(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]  # untyped in pymodbus 3.16

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if sending:  # a new attempt (first try or retry)
            self._end_attempt()
            self._attempt_open = True
        elif data:
            self._attempt_bytes = True
        return data

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending:
            self._attempt_answered = True
        return pdu

    def _end_attempt(self) -> None:
        if self._attempt_open and not self._attempt_answered:
            if self._attempt_bytes:
                self.crc_errors += 1
            else:
                self.timeouts += 1
        self._attempt_open = self._attempt_bytes = self._attempt_answered = False


def modbus_points(config: SitesConfig) -> dict[str, list[ModbusPoint]]:
    """Every Modbus meter of the configuration, by line."""
    lines: dict[str, list[ModbusPoint]] = {}
    for site in config.sites:
        for meter in site.meters:
            src = meter.source
            if not isinstance(src, ModbusSourceConfig):
                continue
            register_map = config.register_map(src.map)
            spec = register_map.register(src.register_name) if register_map else None
            assert register_map is not None and spec is not None, "validated by SitesConfig"
            scale = register_map.register(spec.scale_register) if spec.scale_register else None
            lines.setdefault(src.line, []).append(ModbusPoint(site.id, meter, src, spec, scale))
    return lines


@register_source("modbus")
def modbus_sources(config: SitesConfig, options: SourceOptions) -> list[Source]:
    """One source per Modbus line (serial port or TCP host:port)."""
    return [
        ModbusLineSource(line, points, clock=options.clock, now=options.present)
        for line, points in modbus_points(config).items()
    ]
