"""Store-and-forward: the on-disk buffer, the batch writer's routing between the store,
the buffer and the dead-letter log, idempotent writes in both stores, bounded dead letters."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers.support import wait_until

from domain.readings import Reading
from domain.store import ReadingStore, StoreError
from gateway.batcher import BatchWriter
from gateway.buffer import BufferError, ReadingBuffer
from gateway.deadletter import (
    KEEP_PAYLOAD_BYTES,
    MAX_REASON_KINDS,
    DeadLetter,
    DeadLetterLog,
)

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def _readings(n: int, start: int = 0, meter: str = "m") -> list[Reading]:
    return [
        Reading("s1", meter, "energy", float(i), T0 + timedelta(seconds=i, microseconds=7))
        for i in range(start, start + n)
    ]


class Switchable:
    """A real store behind a switch: while ``down``, writes fail as an unreachable
    server's do; every successful write is recorded in order."""

    def __init__(self, store: ReadingStore) -> None:
        self.store = store
        self.down = threading.Event()
        self.batches: list[list[Reading]] = []

    def write(self, readings: Sequence[Reading]) -> None:
        if self.down.is_set():
            raise StoreError("store unreachable (test switch)")
        self.store.write(readings)
        self.batches.append(list(readings))

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


# --- the buffer -----------------------------------------------------------------------


def test_buffer_keeps_order_across_reopen_and_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "buffer.db"
    buffer = ReadingBuffer(path, max_readings=10)
    buffer.append(_readings(4))
    buffer.append(_readings(3, start=4))
    with pytest.raises(BufferError, match="buffer full"):
        buffer.append(_readings(4, start=7))  # all or nothing: 7 + 4 > 10
    assert buffer.depth == 7 and buffer.fill_ratio == pytest.approx(0.7)
    buffer.close()

    reopened = ReadingBuffer(path, max_readings=10)  # what a restarted gateway finds
    assert reopened.depth == 7
    first, key = reopened.peek(5)
    assert first == _readings(5)  # same values, same instants to the microsecond
    reopened.drop_through(key)
    rest, key = reopened.peek(100)
    assert rest == _readings(2, start=5)
    reopened.drop_through(key)
    assert reopened.depth == 0 and reopened.peek(10) == ([], 0)
    reopened.close()


# --- the writer: store, buffer, dead letters ------------------------------------------


def test_store_outage_goes_to_the_buffer_and_is_replayed_in_order(
    tmp_path: Path, store: ReadingStore
) -> None:
    target = Switchable(store)
    buffer = ReadingBuffer(tmp_path / "buffer.db")
    acked: list[int] = []
    writer = BatchWriter(target, max_size=50, max_delay_s=0.05, max_backoff_s=0.2, buffer=buffer)
    writer.start()
    try:
        writer.add(_readings(100), on_safe=lambda: acked.append(1))
        assert wait_until(lambda: writer.written == 100)

        target.down.set()
        for k in range(5):
            writer.add(_readings(100, start=100 + 100 * k), on_safe=lambda k=k: acked.append(k + 2))
        # Acknowledged while the store is down: the readings are safe on disk.
        assert wait_until(lambda: acked == [1, 2, 3, 4, 5, 6])
        assert buffer.depth == 500 and store.count("s1") == 100

        target.down.clear()
        assert writer.drain(30)
        assert store.count("s1") == 600 and buffer.depth == 0
        assert writer.replayed == 500
        # Replayed oldest first: the store saw the readings in the order they came.
        seen = [r.value for batch in target.batches for r in batch]
        assert seen == sorted(seen) and len(seen) == 600
    finally:
        writer.stop()
        buffer.close()


def test_stop_saves_pending_readings_in_the_buffer_when_the_store_is_down(
    tmp_path: Path, store: ReadingStore
) -> None:
    target = Switchable(store)
    target.down.set()
    path = tmp_path / "buffer.db"
    buffer = ReadingBuffer(path)
    writer = BatchWriter(target, max_size=1000, max_delay_s=60, buffer=buffer)
    writer.start()
    writer.add(_readings(30))
    writer.stop()  # the batch is not due yet: stopping saves it
    buffer.close()

    target.down.clear()
    reopened = ReadingBuffer(path)
    assert reopened.depth == 30
    writer = BatchWriter(target, max_size=1000, max_delay_s=0.05, buffer=reopened)
    writer.start()
    assert writer.drain(30)
    writer.stop()
    reopened.close()
    assert store.count("s1") == 30


def test_a_reading_the_store_refuses_is_dead_lettered_and_the_rest_stored(
    tmp_path: Path, store: ReadingStore
) -> None:
    refused: list[tuple[Reading, str]] = []
    writer = BatchWriter(
        store,
        max_size=100,
        max_delay_s=0.05,
        buffer=ReadingBuffer(tmp_path / "buffer.db"),
        on_refused=lambda r, why: refused.append((r, why)),
    )
    writer.start()
    good = _readings(40)
    # NaN: a value neither store can hold (SQLite: NOT NULL; InfluxDB: 400).
    bad = Reading("s1", "m", "energy", math.nan, T0 + timedelta(days=1))
    writer.add([*good[:20], bad, *good[20:]])
    assert writer.flush(30)
    writer.stop()
    assert store.count("s1") == 40
    ((reading, why),) = refused
    assert math.isnan(reading.value) and reading.time == bad.time and "refused" in why
    assert writer.buffer_depth == 0  # never retried


def test_without_buffer_room_add_blocks_instead_of_dropping(
    tmp_path: Path, store: ReadingStore
) -> None:
    target = Switchable(store)
    target.down.set()
    buffer = ReadingBuffer(tmp_path / "buffer.db", max_readings=20)
    writer = BatchWriter(
        target, max_size=10, max_delay_s=0.01, max_backoff_s=0.1, buffer=buffer, max_pending=10
    )
    writer.start()
    added = threading.Event()

    def producer() -> None:
        for k in range(6):
            writer.add(_readings(10, start=10 * k))
        added.set()

    thread = threading.Thread(target=producer)
    thread.start()
    # 20 in the buffer, 10 held by the writer, 10 pending: the producer waits.
    assert wait_until(lambda: buffer.depth == 20)
    assert not added.wait(0.5)
    target.down.clear()
    assert added.wait(30)
    thread.join()
    assert writer.drain(30)
    writer.stop()
    assert store.count("s1") == 60


class Faulty:
    """A real store whose next writes raise ``error`` (not a StoreError: a driver's or
    the adapter's own bug), ``failures`` times."""

    def __init__(self, store: ReadingStore, error: BaseException, failures: int) -> None:
        self.store = store
        self.error = error
        self.failures = failures

    def write(self, readings: Sequence[Reading]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise self.error
        self.store.write(readings)

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


def test_an_unexpected_store_error_is_retried_and_the_writer_stays_up(
    tmp_path: Path, store: ReadingStore
) -> None:
    target = Faulty(store, RuntimeError("driver bug"), failures=3)
    acked: list[int] = []
    writer = BatchWriter(target, max_size=10, max_delay_s=0.01, max_backoff_s=0.05)
    writer.start()
    try:
        writer.add(_readings(25), on_safe=lambda: acked.append(1))
        assert wait_until(lambda: acked == [1])
        assert store.count("s1") == 25
        assert writer.alive and writer.write_errors == 3
    finally:
        writer.stop()


# --- idempotent writes ----------------------------------------------------------------


def test_writing_the_same_reading_again_overwrites_it(store: ReadingStore) -> None:
    t = T0 + timedelta(minutes=30)
    store.write([Reading("s1", "m", "energy", 100.0, t)])
    store.write([Reading("s1", "m", "energy", 100.0, t)])  # a redelivered message
    store.write([Reading("s1", "m", "energy", 123.0, t)])  # same key, corrected value
    store.write([Reading("s1", "other", "energy", 5.0, t)])
    assert store.count("s1") == 2
    series = store.index_slots(
        "s1", ["m"], "energy", T0, T0 + timedelta(hours=1), timedelta(hours=1)
    )
    assert [s.last_value for s in series["m"].slots] == [123.0]
    assert [s.count for s in series["m"].slots] == [1]


# --- dead letters ---------------------------------------------------------------------


def test_dead_letter_log_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    log = DeadLetterLog(path, keep=50, max_file_bytes=200_000)
    now = T0
    for i in range(3000):
        # Half from a few kinds with particulars, half from 676 made-up kinds.
        letters = chr(97 + i % 26) + chr(97 + i // 26 % 26)
        reason = f"unknown topic 'x/{i}'" if i % 2 else f"kind {letters}: detail {i}"
        log.add(DeadLetter(now, f"x/{i}", reason, b"\xff" * 100_000))
    assert log.total == 3000
    assert len(log.recent) == 50
    assert all(len(letter.payload) == KEEP_PAYLOAD_BYTES for letter in log.recent)
    assert log.recent[-1].size == 100_000
    # Quoted names and numbers do not make new kinds; the number of kinds is capped.
    kinds = log.counts_by_reason()
    assert kinds["unknown topic '…'"] == 1500 and len(kinds) == MAX_REASON_KINDS + 1
    assert kinds["other"] > 0
    assert path.stat().st_size < 200_000 + 20_000
    assert Path(f"{path}.1").stat().st_size >= 200_000
    last = json.loads(path.read_text().splitlines()[-1])
    assert last["reason"] == "unknown topic 'x/2999'" and last["size"] == 100_000
