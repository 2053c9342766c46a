"""A serial line that survives its device going away (a USB adapter unplugged)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import serial

from microville.backoff import Backoff

log = logging.getLogger(__name__)


class SerialPort(Protocol):
    """What :class:`SerialLine` uses of a :class:`serial.Serial`."""

    baudrate: int

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def close(self) -> None: ...


#: Opens a port: ``(port, baudrate, timeout=…, bytesize=…, parity=…, stopbits=…)``.
PortOpener = Callable[..., SerialPort]
#: Waits ``seconds`` unless ``stop`` is set first; returns whether ``stop`` is set.
Wait = Callable[[threading.Event, float], bool]


def _wait(stop: threading.Event, seconds: float) -> bool:
    return stop.wait(seconds)


class SerialLine:
    """pyserial port opened on demand and reopened with backoff after any error.

    ``read()`` returns the bytes available (possibly none after ``read_timeout_s``); it
    never raises for a missing or failing device: it closes the port and, before the
    next attempt to open it, waits with exponential backoff between ``backoff_min_s``
    and ``backoff_max_s``.

    An *outage* starts at the first failure (open or read) and is logged then, once. It
    ends only when the line delivers data again, or stays open without error for
    ``healthy_after_s`` (a meter that is silent, not gone) — not at a mere successful
    open: a port that opens and then fails on read (a half-dead adapter) keeps the
    outage going, and its backoff keeps growing across these open-then-fail cycles.
    The end is logged once too; only then does the backoff go back to its minimum.

    ``opener``, ``clock`` and ``wait`` are :class:`serial.Serial`, :func:`time.monotonic`
    and ``stop.wait`` unless given (tests inject them to count cycles without sleeping).
    """

    def __init__(
        self,
        port: str,
        baudrate: int,
        bytesize: int = 7,
        parity: str = "E",
        stopbits: int = 1,
        read_timeout_s: float = 0.2,
        backoff_min_s: float = 0.2,
        backoff_max_s: float = 30.0,
        healthy_after_s: float = 5.0,
        opener: PortOpener | None = None,
        clock: Callable[[], float] = time.monotonic,
        wait: Wait = _wait,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self._settings = {"bytesize": bytesize, "parity": parity, "stopbits": stopbits}
        self._read_timeout_s = read_timeout_s
        self._healthy_after_s = healthy_after_s
        self._opener: PortOpener = opener or serial.Serial
        self._clock = clock
        self._wait = wait
        self._serial: SerialPort | None = None
        self._opened_at = 0.0
        self._down_since: float | None = None
        #: Delay before the next attempt to open, once the port failed; doubled per failure.
        self._backoff = Backoff(backoff_min_s, backoff_max_s)
        self._retry_at: float | None = None
        #: Outages so far (each logged once), attempts to open the port, failures seen.
        self.outages = 0
        self.open_attempts = 0
        self.failures = 0

    @property
    def connected(self) -> bool:
        """The port is open (the device may still be mid-outage, see :attr:`in_outage`)."""
        return self._serial is not None

    @property
    def settings(self) -> dict[str, object]:
        """``bytesize``, ``parity`` and ``stopbits`` the port is opened with."""
        return dict(self._settings)

    @property
    def opened_at(self) -> float | None:
        """When (``clock`` time) the port was last opened; ``None`` while it is closed."""
        return self._opened_at if self._serial is not None else None

    @property
    def in_outage(self) -> bool:
        return self._down_since is not None

    @property
    def backoff_s(self) -> float:
        """The wait before the next attempt to open after a failure."""
        return self._backoff.pending_s

    def set_baudrate(self, baudrate: int) -> None:
        """Change the speed (mode auto-detection tries 9600 then 1200 baud)."""
        self.baudrate = baudrate
        if self._serial is not None:
            self._serial.baudrate = baudrate

    def read(self, stop: threading.Event) -> bytes:
        """Bytes from the line; ``b""`` on timeout, on ``stop``, or while the device is away
        (then after waiting out the backoff)."""
        if self._serial is None and not self._open(stop):
            return b""
        assert self._serial is not None
        try:
            waiting = self._serial.in_waiting
            data = bytes(self._serial.read(max(1, waiting)))
        except (serial.SerialException, OSError) as exc:
            self._fail(str(exc))
            return b""
        if self._down_since is not None and (
            data or self._clock() - self._opened_at >= self._healthy_after_s
        ):
            self._recovered()
        return data

    def close(self) -> None:
        if self._serial is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                self._serial.close()
            self._serial = None

    def _open(self, stop: threading.Event) -> bool:
        """One attempt to open the port, after the backoff owed by the last failure."""
        if self._retry_at is not None:
            delay = self._retry_at - self._clock()
            if delay > 0 and self._wait(stop, delay):
                return False
        if stop.is_set():
            return False
        self.open_attempts += 1
        try:
            port = self._opener(
                self.port, self.baudrate, timeout=self._read_timeout_s, **self._settings
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            self._fail(str(exc))
            return False
        self._opened_at = self._clock()  # before `connected` says so
        self._serial = port
        return True

    def _fail(self, reason: str) -> None:
        self.close()
        self.failures += 1
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
            self.outages += 1
            log.warning("serial %s unavailable (%s); retrying with backoff", self.port, reason)
        else:
            log.debug("serial %s still unavailable (%s)", self.port, reason)
        self._retry_at = now + self._backoff.next()

    def _recovered(self) -> None:
        assert self._down_since is not None
        log.info("serial %s is back after %.1f s", self.port, self._clock() - self._down_since)
        self._down_since = None
        self._retry_at = None
        self._backoff.reset()
