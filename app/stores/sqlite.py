"""Embedded store: one SQLite file in WAL mode, so everything runs with nothing but pip."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from microville.domain.readings import Reading
from microville.domain.store import IndexSeries, IndexSlot, StoreError, StoreRejected

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    site     TEXT    NOT NULL,
    quantity TEXT    NOT NULL,
    meter    TEXT    NOT NULL,
    ts_ms    INTEGER NOT NULL,  -- epoch milliseconds, UTC
    value    REAL    NOT NULL,  -- base unit, raw cumulative index
    PRIMARY KEY (site, quantity, meter, ts_ms)
) WITHOUT ROWID;
"""


def _ms(t: datetime) -> int:
    return round(t.timestamp() * 1000)


class SqliteStore:
    """:class:`~microville.domain.store.ReadingStore` on a SQLite file.

    One connection shared under a lock: SQLite serialises writers anyway, and WAL
    lets readers in other processes (the service) proceed during writes.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    def write(self, readings: Sequence[Reading]) -> None:
        rows = [(r.site, r.quantity, r.meter, r.time_ms, r.value) for r in readings]
        try:
            with self._lock, self._db:
                self._db.executemany("INSERT OR REPLACE INTO readings VALUES (?, ?, ?, ?, ?)", rows)
        except (sqlite3.IntegrityError, sqlite3.DataError) as exc:
            # A value SQLite cannot hold (NaN becomes NULL): retrying cannot help.
            raise StoreRejected(f"SQLite refused the write: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite write failed: {exc}") from exc

    def index_slots(
        self,
        site: str,
        meters: Sequence[str],
        quantity: str,
        start: datetime,
        end: datetime,
        slot: timedelta,
    ) -> dict[str, IndexSeries]:
        width = round(slot.total_seconds() * 1000)
        start_ms, end_ms = _ms(start), _ms(end)
        out: dict[str, IndexSeries] = {}
        try:
            with self._lock:
                for meter in meters:
                    key = (site, quantity, meter)
                    before = self._db.execute(
                        "SELECT value FROM readings WHERE site=? AND quantity=? AND meter=?"
                        " AND ts_ms <= ? ORDER BY ts_ms DESC LIMIT 1",
                        (*key, start_ms),
                    ).fetchone()
                    first = (
                        before
                        or self._db.execute(
                            "SELECT value FROM readings WHERE site=? AND quantity=? AND meter=?"
                            " AND ts_ms > ? AND ts_ms <= ? ORDER BY ts_ms LIMIT 1",
                            (*key, start_ms, end_ms),
                        ).fetchone()
                    )
                    # Slot b covers (b*width, (b+1)*width]; SQLite returns the bare
                    # column `value` from the row holding MAX(ts_ms).
                    rows = self._db.execute(
                        "SELECT (ts_ms - 1) / ? AS b, MAX(ts_ms), value, COUNT(*) FROM readings"
                        " WHERE site=? AND quantity=? AND meter=? AND ts_ms > ? AND ts_ms <= ?"
                        " GROUP BY b ORDER BY b",
                        (width, *key, start_ms, end_ms),
                    ).fetchall()
                    out[meter] = IndexSeries(
                        baseline=first[0] if first else None,
                        starts_inside=before is None and first is not None,
                        slots=[
                            IndexSlot(
                                end=datetime.fromtimestamp((b + 1) * width / 1000, UTC),
                                last_value=value,
                                count=count,
                            )
                            for b, _, value, count in rows
                        ],
                    )
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite query failed: {exc}") from exc
        return out

    def hourly_means(
        self, site: str, meter: str, quantity: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, float]]:
        try:
            with self._lock:
                rows = self._db.execute(
                    "SELECT ts_ms / 3600000 AS h, AVG(value) FROM readings"
                    " WHERE site=? AND quantity=? AND meter=? AND ts_ms >= ? AND ts_ms < ?"
                    " GROUP BY h ORDER BY h",
                    (site, quantity, meter, _ms(start), _ms(end)),
                ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite query failed: {exc}") from exc
        return [(datetime.fromtimestamp(h * 3600, UTC), float(mean)) for h, mean in rows]

    def last_seen(
        self, site: str, meters: Sequence[str], quantity: str
    ) -> dict[str, datetime | None]:
        out: dict[str, datetime | None] = {}
        try:
            with self._lock:
                for meter in meters:
                    (ts,) = self._db.execute(
                        "SELECT MAX(ts_ms) FROM readings WHERE site=? AND quantity=? AND meter=?",
                        (site, quantity, meter),
                    ).fetchone()
                    out[meter] = None if ts is None else datetime.fromtimestamp(ts / 1000, UTC)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite query failed: {exc}") from exc
        return out

    def count(self, site: str) -> int:
        try:
            with self._lock:
                row = self._db.execute("SELECT COUNT(*) FROM readings WHERE site=?", (site,))
                return int(row.fetchone()[0])
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite query failed: {exc}") from exc

    def ping(self) -> None:
        try:
            with self._lock:
                self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store unusable: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()
