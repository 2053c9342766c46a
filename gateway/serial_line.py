"""A serial line that survives its device going away (a USB adapter unplugged)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import serial

log = logging.getLogger(__name__)


class SerialLine:
    """pyserial port opened on demand and reopened with backoff after any error.

    ``read()`` returns the bytes available (possibly none after ``read_timeout_s``); it
    never raises for a missing or failing device: it closes the port, waits with
    exponential backoff between ``backoff_min_s`` and ``backoff_max_s`` and tries again.
    An outage is logged once when it starts and once when it ends, not at every retry.
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
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self._settings = {"bytesize": bytesize, "parity": parity, "stopbits": stopbits}
        self._read_timeout_s = read_timeout_s
        self._backoff_min_s = backoff_min_s
        self._backoff_max_s = backoff_max_s
        self._serial: serial.Serial | None = None
        self._down_since: float | None = None
        self.outages = 0

    @property
    def connected(self) -> bool:
        return self._serial is not None

    def set_baudrate(self, baudrate: int) -> None:
        """Change the speed (mode auto-detection tries 9600 then 1200 baud)."""
        self.baudrate = baudrate
        if self._serial is not None:
            self._serial.baudrate = baudrate

    def read(self, stop: threading.Event) -> bytes:
        """Bytes from the line; ``b""`` on timeout, on ``stop``, or while the device is away."""
        if self._serial is None and not self._open(stop):
            return b""
        assert self._serial is not None
        try:
            waiting = self._serial.in_waiting
            return bytes(self._serial.read(max(1, waiting)))
        except (serial.SerialException, OSError) as exc:
            self._fail(str(exc))
            return b""

    def close(self) -> None:
        if self._serial is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                self._serial.close()
            self._serial = None

    def _open(self, stop: threading.Event) -> bool:
        backoff = self._backoff_min_s
        while not stop.is_set():
            try:
                self._serial = serial.Serial(
                    self.port, self.baudrate, timeout=self._read_timeout_s, **self._settings
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                self._fail(str(exc))
                stop.wait(backoff)
                backoff = min(backoff * 2, self._backoff_max_s)
                continue
            if self._down_since is not None:
                down_s = time.monotonic() - self._down_since
                log.info("serial %s is back after %.1f s", self.port, down_s)
                self._down_since = None
            return True
        return False

    def _fail(self, reason: str) -> None:
        self.close()
        if self._down_since is None:
            self._down_since = time.monotonic()
            self.outages += 1
            log.warning("serial %s unavailable (%s); retrying with backoff", self.port, reason)
