"""SerialLine: reopen with backoff, one warning per outage — on real pseudo-terminals.

A "half-dead adapter" is a real pty whose other end hangs up right after the gateway
opened it: the open succeeds, the first read fails (EIO from the kernel, through real
pyserial). The clock and the backoff wait are injected, so the tests count opens,
warnings and waits over a bounded number of cycles instead of sleeping.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import serial

from gateway.sources.tic.serial_line import SerialLine


class FakeTime:
    """A monotonic clock that moves only when the line waits (or the test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        self.waits.append(round(seconds, 6))
        self.now += seconds
        return stop.is_set()


class Ptys:
    """Opens a real pty slave with real pyserial; ``hang_up`` closes the other end at
    once (open succeeds, read fails), else keeps it for the test to write to."""

    def __init__(self) -> None:
        self.hang_up = True
        self.opens = 0
        self.masters: list[int] = []

    def open(self, _port: str, baudrate: int, **settings: Any) -> serial.Serial:
        self.opens += 1
        master, slave = os.openpty()
        port = serial.Serial(os.ttyname(slave), baudrate, **settings)
        os.close(slave)
        if self.hang_up:
            os.close(master)
        else:
            self.masters.append(master)
        return port

    def close(self) -> None:
        for fd in self.masters:
            os.close(fd)


@pytest.fixture
def ptys() -> Iterator[Ptys]:
    p = Ptys()
    yield p
    p.close()


def _line(ptys: Ptys, fake: FakeTime, **kwargs: Any) -> SerialLine:
    return SerialLine(
        "/dev/ttyTEST",
        9600,
        read_timeout_s=0.01,
        opener=ptys.open,
        clock=fake.clock,
        wait=fake.wait,
        **kwargs,
    )


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_port_that_opens_then_fails_backs_off_and_warns_once(
    ptys: Ptys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gateway.sources.tic.serial_line")
    fake = FakeTime()
    line = _line(ptys, fake, backoff_min_s=0.2, backoff_max_s=5.0)
    stop = threading.Event()
    for _ in range(12):
        assert line.read(stop) == b""
    # Each read opens the port once (the first without waiting), fails on read, and the
    # next open waits a backoff that keeps doubling up to its maximum.
    assert ptys.opens == line.open_attempts == 12
    assert line.failures == 12
    assert fake.waits == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]
    assert line.outages == 1
    assert len(_warnings(caplog)) == 1, _warnings(caplog)
    assert not any("is back" in r.getMessage() for r in caplog.records)
    assert line.in_outage and not line.connected


def test_the_outage_ends_when_data_comes_and_backoff_restarts(
    ptys: Ptys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.sources.tic.serial_line")
    fake = FakeTime()
    line = _line(ptys, fake, backoff_min_s=0.2, backoff_max_s=5.0)
    stop = threading.Event()
    for _ in range(4):
        line.read(stop)
    ptys.hang_up = False  # the adapter works again
    assert line.read(stop) == b""  # opened after 1.6 s; nothing sent yet: still out
    assert line.in_outage and line.connected
    os.write(ptys.masters[-1], b"\x02frame\x03")
    data = line.read(stop)  # what has arrived of it: at least one byte
    assert data and b"\x02frame\x03".startswith(data)
    assert not line.in_outage
    assert [m for m in (r.getMessage() for r in caplog.records) if "is back" in m]
    assert line.backoff_s == 0.2
    # A second outage is a second warning, and its first retry waits the minimum again.
    ptys.close()
    ptys.masters.clear()
    ptys.hang_up = True
    fake.waits.clear()
    for _ in range(3):
        line.read(stop)
    assert fake.waits == [0.2, 0.4]
    assert line.outages == 2
    assert len(_warnings(caplog)) == 2


def test_a_silent_but_healthy_port_ends_the_outage_after_a_while(ptys: Ptys) -> None:
    fake = FakeTime()
    line = _line(ptys, fake, healthy_after_s=5.0)
    stop = threading.Event()
    line.read(stop)  # fails: outage
    ptys.hang_up = False
    line.read(stop)  # open, silent
    fake.now += 4.9
    line.read(stop)
    assert line.in_outage
    fake.now += 0.1
    line.read(stop)
    assert not line.in_outage and line.outages == 1


def test_a_port_that_cannot_be_opened_backs_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway.sources.tic.serial_line")
    fake = FakeTime()
    line = SerialLine(
        "/nonexistent/ttyUSB9", 9600, backoff_max_s=1.0, clock=fake.clock, wait=fake.wait
    )
    stop = threading.Event()
    for _ in range(6):
        assert line.read(stop) == b""
    assert line.open_attempts == 6
    assert fake.waits == [0.2, 0.4, 0.8, 1.0, 1.0]
    assert len(_warnings(caplog)) == 1


def test_stop_interrupts_the_backoff(ptys: Ptys) -> None:
    fake = FakeTime()
    line = _line(ptys, fake)
    stop = threading.Event()
    line.read(stop)
    stop.set()
    assert line.read(stop) == b""
    assert ptys.opens == 1
