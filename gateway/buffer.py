"""Store-and-forward buffer: readings the store could not take, kept on disk in order.

While the store is unreachable the batch writer appends here instead of the store and
replays the oldest readings first once it answers again. The buffer is one SQLite
file (a queue table with an autoincrement key for the order) committed with
``synchronous=FULL``: a reading acknowledged to its source (an MQTT PUBACK) survives a
SIGKILL of the gateway and a power cut.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from domain.readings import Reading
from domain.store import folder_problem

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,  -- arrival order, replayed in it
    site     TEXT    NOT NULL,
    meter    TEXT    NOT NULL,
    quantity TEXT    NOT NULL,
    value    REAL,                               -- NULL for NaN: the store decides
    ts_us    INTEGER NOT NULL                    -- epoch microseconds, UTC
);
"""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BufferError(RuntimeError):
    """The buffer file cannot be opened or written (disk full, permissions)."""


class ReadingBuffer:
    """A bounded, durable FIFO of readings.

    ``append`` takes a whole batch or nothing (it raises :class:`BufferError` when the
    batch does not fit under ``max_readings``); ``peek`` returns the oldest readings
    with the key to ``drop_through`` once they are stored. Thread-safe.
    """

    def __init__(self, path: str | Path, max_readings: int = 1_000_000) -> None:
        if max_readings < 1:
            raise ValueError("max_readings must be at least 1")
        self.path = Path(path)
        self.max_readings = max_readings
        self._lock = threading.Lock()
        if problem := folder_problem(self.path):  # a typo must not become a new buffer
            raise BufferError(f"cannot open the buffer {self.path}: {problem}")
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._depth: int = int(self._db.execute("SELECT COUNT(*) FROM pending").fetchone()[0])
        except (sqlite3.Error, OSError) as exc:
            raise BufferError(f"cannot open the buffer {self.path}: {exc}") from exc

    @property
    def depth(self) -> int:
        """Readings waiting for the store."""
        return self._depth

    @property
    def fill_ratio(self) -> float:
        return self._depth / self.max_readings

    def room(self) -> int:
        return self.max_readings - self._depth

    def append(self, readings: list[Reading]) -> None:
        """Keep ``readings`` (in this order, after those already kept), all or none."""
        if not readings:
            return
        with self._lock:
            if len(readings) > self.max_readings - self._depth:
                raise BufferError(
                    f"buffer full: {self._depth} of {self.max_readings} readings kept, "
                    f"{len(readings)} more do not fit"
                )
            rows = [
                (
                    r.site,
                    r.meter,
                    r.quantity,
                    r.value,
                    (r.time - _EPOCH) // timedelta(microseconds=1),
                )
                for r in readings
            ]
            try:
                with self._db:
                    self._db.executemany(
                        "INSERT INTO pending (site, meter, quantity, value, ts_us)"
                        " VALUES (?, ?, ?, ?, ?)",
                        rows,
                    )
            except sqlite3.Error as exc:
                raise BufferError(f"cannot write the buffer {self.path}: {exc}") from exc
            self._depth += len(rows)

    def peek(self, limit: int) -> tuple[list[Reading], int]:
        """The oldest ``limit`` readings and the key of the last one (0 when empty)."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT seq, site, meter, quantity, value, ts_us FROM pending"
                    " ORDER BY seq LIMIT ?",
                    (limit,),
                ).fetchall()
            except sqlite3.Error as exc:
                raise BufferError(f"cannot read the buffer {self.path}: {exc}") from exc
        readings = [
            Reading(
                site,
                meter,
                quantity,
                float("nan") if value is None else value,
                _EPOCH + timedelta(microseconds=ts_us),
            )
            for _, site, meter, quantity, value, ts_us in rows
        ]
        return readings, (rows[-1][0] if rows else 0)

    def drop_through(self, last_key: int) -> None:
        """Forget every reading up to ``last_key`` (they are in the store now)."""
        with self._lock:
            try:
                with self._db:
                    deleted: int = self._db.execute(
                        "DELETE FROM pending WHERE seq <= ?", (last_key,)
                    ).rowcount
            except sqlite3.Error as exc:
                raise BufferError(f"cannot write the buffer {self.path}: {exc}") from exc
            self._depth -= deleted

    def close(self) -> None:
        with self._lock:
            self._db.close()
