"""Embedded store: one SQLite file in WAL mode, so everything runs with nothing but pip.

Beside the raw readings, two rollups are kept exact in the same transaction as every
write (:mod:`domain.rollup`): per hour (last value, count and highest value of each
meter's hour) and per UTC day (what reads a clean day as one stretch). A year by month
is read as a few hundred rows per meter instead of 525,600 readings, and reaches the
service as a few dozen runs.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from domain.readings import Reading
from domain.rollup import (
    HOURS_PER_DAY,
    HourRow,
    Piece,
    day_row,
    hour_of_bound,
    runs_of,
    whole_days,
)
from domain.store import (
    IndexSeries,
    IndexSlot,
    StoreError,
    StoreRejected,
    SumSlot,
    folder_problem,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    site     TEXT    NOT NULL,
    quantity TEXT    NOT NULL,
    meter    TEXT    NOT NULL,
    ts_ms    INTEGER NOT NULL,  -- epoch milliseconds, UTC
    value    REAL    NOT NULL,  -- base unit, raw cumulative index
    PRIMARY KEY (site, quantity, meter, ts_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Hour h covers (h·1h, (h+1)·1h] like the slots of index_slots: the last index of the
# hour, how many readings it holds and its highest index (a meter swapped inside the
# hour), recomputed from `readings` for every hour a write touches (so overwrites and
# late readings keep it exact).
_HOURLY = """
CREATE TABLE IF NOT EXISTS hourly (
    site       TEXT    NOT NULL,
    quantity   TEXT    NOT NULL,
    meter      TEXT    NOT NULL,
    hour       INTEGER NOT NULL,
    last_value REAL    NOT NULL,
    count      INTEGER NOT NULL,
    max_value  REAL    NOT NULL,
    PRIMARY KEY (site, quantity, meter, hour)
) WITHOUT ROWID;
"""
_DAILY = """
CREATE TABLE IF NOT EXISTS daily (
    site        TEXT    NOT NULL,
    quantity    TEXT    NOT NULL,
    meter       TEXT    NOT NULL,
    day         INTEGER NOT NULL,
    hours       INTEGER NOT NULL,
    first_value REAL    NOT NULL,
    first_count INTEGER NOT NULL,
    last_value  REAL    NOT NULL,
    count       INTEGER NOT NULL,
    max_value   REAL    NOT NULL,
    clean       INTEGER NOT NULL,
    max_rise    REAL    NOT NULL,
    PRIMARY KEY (site, quantity, meter, day)
) WITHOUT ROWID;
"""
HOUR_MS = 3_600_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: "2": max_value added; "3": the daily rollup. A file of an earlier version has its
#: rollups rebuilt when it is opened.
_ROLLUP_VERSION = "3"
#: More hour ranges than this in one query: the whole window's hours are read instead.
_MAX_RANGES = 40

# The last value is read back by its time: SQLite's bare-column rule (the value of the
# row holding the MAX) is undefined with two MAX() in one query.
_HOURS_OF = f"""
SELECT g.site, g.quantity, g.meter, g.h, l.value, g.n, g.mx FROM (
    SELECT r.site, r.quantity, r.meter, (r.ts_ms - 1) / {HOUR_MS} AS h, MAX(r.ts_ms) AS t,
           COUNT(*) AS n, MAX(r.value) AS mx
      FROM {{source}}
     GROUP BY r.site, r.quantity, r.meter, h
) g JOIN readings l
  ON l.site = g.site AND l.quantity = g.quantity AND l.meter = g.meter AND l.ts_ms = g.t
"""
#: Recompute every hour listed in the temporary table `touched`.
_REFRESH_TOUCHED = "INSERT OR REPLACE INTO hourly " + _HOURS_OF.format(
    # CROSS JOIN: the few touched hours drive the loop, each a range of the primary key.
    source=f"""touched t CROSS JOIN readings r
        ON r.site = t.site AND r.quantity = t.quantity AND r.meter = t.meter
       AND r.ts_ms > t.hour * {HOUR_MS} AND r.ts_ms <= (t.hour + 1) * {HOUR_MS}"""
)
_BUILD_ALL = "INSERT INTO hourly " + _HOURS_OF.format(source="readings r")


_DAY_KEY = (
    "h.site = t.site AND h.quantity = t.quantity AND h.meter = t.meter"
    " AND h.hour >= t.day * 24 AND h.hour < t.day * 24 + 24"
)
_HOURS_OF_TOUCHED_DAYS = (
    "SELECT h.site, h.quantity, h.meter, h.hour, h.last_value, h.count, h.max_value"
    f" FROM touched_days t CROSS JOIN hourly h ON {_DAY_KEY}"
    " ORDER BY h.site, h.quantity, h.meter, h.hour"
)
_INSERT_DAY = "INSERT OR REPLACE INTO daily VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def day_rows(
    hour_rows: Iterable[tuple[str, str, str, int, float, int, float]],
) -> list[tuple[object, ...]]:
    """Rows of ``daily`` from rows ``(site, quantity, meter, hour, last, count, high)``
    of ``hourly`` sorted by key and hour (:func:`domain.rollup.day_row`)."""
    out: list[tuple[object, ...]] = []
    for (site, quantity, meter, day), rows in itertools.groupby(
        hour_rows, key=lambda r: (r[0], r[1], r[2], r[3] // HOURS_PER_DAY)
    ):
        d = day_row(day, [HourRow(r[3], r[4], r[5], r[6]) for r in rows])
        figures = (d.hours, d.first, d.first_count, d.last, d.count, d.high, int(d.clean))
        out.append((site, quantity, meter, d.day, *figures, d.max_rise))
    return out


_HOURS_SORTED = (
    "SELECT site, quantity, meter, hour, last_value, count, max_value FROM hourly"
    " WHERE {where} ORDER BY site, quantity, meter, hour"
)


def _rollup_filter(
    site: str | None, since: datetime | None, until: datetime | None = None
) -> tuple[str, list[object]]:
    """A WHERE clause on ``site`` and the whole UTC days from ``since`` to ``until``
    (``{s}`` stands for the row's site column, ``{t}`` for its hour), and its
    parameters."""
    clauses: list[str] = ["1"]
    params: list[object] = []
    if site is not None:
        clauses.append("{s} = ?")
        params.append(site)
    if since is not None:
        clauses.append("{t} >= ?")
        params.append(_ms(since) // (24 * HOUR_MS) * 24)
    if until is not None:
        clauses.append("{t} < ?")
        params.append(-(-_ms(until) // (24 * HOUR_MS)) * 24)
    return " AND ".join(clauses), params


def _differences(
    what: str,
    want: Mapping[Any, object],
    have: Mapping[Any, object],
) -> list[str]:
    """One line per rollup row that differs from what the readings give."""
    out = []
    for key in sorted(want.keys() | have.keys(), key=repr):
        if want.get(key) == have.get(key):
            continue
        site, quantity, meter, n = key
        at = _time(int(n) * (HOUR_MS if what == "hour" else 24 * HOUR_MS)).isoformat()
        out.append(
            f"site {site} {quantity}/{meter} {what} {at}: rollup {have.get(key)}"
            f" but the readings give {want.get(key)}"
        )
    return out


def _ms(t: datetime) -> int:
    return round(t.timestamp() * 1000)


def _time(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


class SqliteStore:
    """:class:`~domain.store.ReadingStore` on a SQLite file.

    Writes go through one connection under a lock (SQLite serialises writers anyway);
    reads through a connection per thread, each query in a read transaction of its own:
    with WAL they proceed side by side and during writes, rather than queue one by one
    behind a lock (the service's threadpool answers many readers at once).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if problem := folder_problem(self.path):  # a typo must not become a new database
            raise StoreError(f"cannot open SQLite store {self.path}: {problem}")
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a write returns once it is on disk, and the gateway acknowledges a
            # reading (MQTT PUBACK) after it returns; NORMAL could lose the last commits
            # on a power cut. Cost measured in docs/reference/reliability.md.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA + _HOURLY + _DAILY)
            self._db.execute(
                "CREATE TEMP TABLE touched (site TEXT, quantity TEXT, meter TEXT, hour INTEGER,"
                " PRIMARY KEY (site, quantity, meter, hour)) WITHOUT ROWID"
            )
            self._db.execute(
                "CREATE TEMP TABLE touched_days (site TEXT, quantity TEXT, meter TEXT,"
                " day INTEGER, PRIMARY KEY (site, quantity, meter, day)) WITHOUT ROWID"
            )
            self._build_rollup()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from exc
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """This thread's read connection, in a transaction: the statements of one query
        see one snapshot of the file."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            db.isolation_level = None  # transactions are begun explicitly below
            with self._readers_lock:  # not the write lock: a long write must not stall it
                self._readers.append(db)
            self._local.db = db
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("ROLLBACK")  # read only: nothing to keep

    def _build_rollup(self) -> None:
        """Once per file: the rollups of readings written before they existed."""
        row = self._db.execute("SELECT value FROM store_meta WHERE key='rollup'").fetchone()
        if row and row[0] == _ROLLUP_VERSION:
            return
        with self._db:
            # An earlier version's tables lack columns: made anew, then filled.
            self._db.execute("DROP TABLE IF EXISTS hourly")
            self._db.execute("DROP TABLE IF EXISTS daily")
            self._db.execute(_HOURLY)
            self._db.execute(_DAILY)
            self._db.execute(_BUILD_ALL)
            hours = self._db.execute(
                "SELECT site, quantity, meter, hour, last_value, count, max_value FROM hourly"
                " ORDER BY site, quantity, meter, hour"
            )
            self._db.executemany(_INSERT_DAY, day_rows(hours))
            self._db.execute(
                "INSERT OR REPLACE INTO store_meta VALUES ('rollup', ?)", (_ROLLUP_VERSION,)
            )

    def write(self, readings: Sequence[Reading]) -> None:
        rows = [(r.site, r.quantity, r.meter, r.time_ms, r.value) for r in readings]
        hours = {(site, q, meter, (ts - 1) // HOUR_MS) for site, q, meter, ts, _ in rows}
        try:
            with self._lock, self._db:
                self._db.executemany("INSERT OR REPLACE INTO readings VALUES (?, ?, ?, ?, ?)", rows)
                self._db.execute("DELETE FROM touched")
                self._db.executemany("INSERT INTO touched VALUES (?, ?, ?, ?)", hours)
                self._db.execute(_REFRESH_TOUCHED)
                self._refresh_days({(s, q, m, h // HOURS_PER_DAY) for s, q, m, h in hours})
        except (sqlite3.IntegrityError, sqlite3.DataError) as exc:
            # A value SQLite cannot hold (NaN becomes NULL): retrying cannot help.
            raise StoreRejected(f"SQLite refused the write: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite write failed: {exc}") from exc

    def _refresh_days(self, days: set[tuple[str, str, str, int]]) -> None:
        """Recompute the daily rows of ``days`` from their hours (in the write's
        transaction)."""
        self._db.execute("DELETE FROM touched_days")
        self._db.executemany("INSERT INTO touched_days VALUES (?, ?, ?, ?)", days)
        self._db.executemany(_INSERT_DAY, day_rows(self._db.execute(_HOURS_OF_TOUCHED_DAYS)))

    def rebuild_rollups(
        self,
        site: str | None = None,
        since: datetime | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Recompute both rollups of ``site`` (all: ``None``) from the UTC day holding
        ``since`` on, from the readings; the number of days rebuilt."""
        where, params = _rollup_filter(site, since)
        try:
            with self._lock, self._db:
                self._db.execute(
                    f"DELETE FROM hourly WHERE {where.format(s='site', t='hour')}", params
                )
                self._db.execute(
                    f"DELETE FROM daily WHERE {where.format(s='site', t='day * 24')}", params
                )
                if progress:
                    progress(1, 3)
                raw_where = where.format(s="r.site", t=f"((r.ts_ms - 1) / {HOUR_MS})")
                self._db.execute(
                    "INSERT INTO hourly "
                    + _HOURS_OF.format(source=f"readings r WHERE {raw_where}"),
                    params,
                )
                if progress:
                    progress(2, 3)
                rows = day_rows(
                    self._db.execute(
                        _HOURS_SORTED.format(where=where.format(s="site", t="hour")), params
                    )
                )
                self._db.executemany(_INSERT_DAY, rows)
                if progress:
                    progress(3, 3)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite rollup rebuild failed: {exc}") from exc
        return len(rows)

    def verify_rollups(
        self,
        site: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[str]:
        """Each hour and day whose rollup differs from what the readings give, named."""
        where, params = _rollup_filter(site, since, until)
        raw_where = where.format(s="r.site", t=f"((r.ts_ms - 1) / {HOUR_MS})")
        try:
            with self._reading() as db:
                want: dict[tuple[str, str, str, int], tuple[float, int, float]] = {
                    r[:4]: r[4:]
                    for r in db.execute(
                        _HOURS_OF.format(source=f"readings r WHERE {raw_where}"), params
                    )
                }
                if progress:
                    progress(1, 3)
                have = {
                    r[:4]: r[4:]
                    for r in db.execute(
                        _HOURS_SORTED.format(where=where.format(s="site", t="hour")), params
                    )
                }
                if progress:
                    progress(2, 3)
                want_days = {
                    r[:4]: r[4:]
                    for r in day_rows((k + v for k, v in sorted(want.items(), key=repr)))
                }
                have_days = {
                    r[:4]: r[4:]
                    for r in db.execute(
                        f"SELECT * FROM daily WHERE {where.format(s='site', t='day * 24')}", params
                    )
                }
                if progress:
                    progress(3, 3)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite rollup verify failed: {exc}") from exc
        return _differences("hour", want, have) + _differences("day", want_days, have_days)

    def index_slots(
        self,
        site: str,
        meters: Sequence[str],
        quantity: str,
        start: datetime,
        end: datetime,
        slot: timedelta,
        cuts: Sequence[datetime] = (),
    ) -> dict[str, IndexSeries]:
        width = round(slot.total_seconds() * 1000)
        start_ms, end_ms = _ms(start), _ms(end)
        cut_hours = [hour_of_bound(c) for c in cuts]
        # Runs need a period longer than an hour (not the hours of the carbon matching).
        runs = (
            width == HOUR_MS
            and None not in cut_hours
            and any(b - a > 1 for a, b in itertools.pairwise(cut_hours))  # type: ignore[operator]
        )
        out: dict[str, IndexSeries] = {}
        try:
            with self._reading() as db:
                for meter in meters:
                    key = (site, quantity, meter)
                    before = db.execute(
                        "SELECT ts_ms, value FROM readings WHERE site=? AND quantity=? AND meter=?"
                        " AND ts_ms <= ? ORDER BY ts_ms DESC LIMIT 1",
                        (*key, start_ms),
                    ).fetchone()
                    first = (
                        before
                        or db.execute(
                            "SELECT ts_ms, value FROM readings WHERE site=? AND quantity=?"
                            " AND meter=? AND ts_ms > ? AND ts_ms <= ? ORDER BY ts_ms LIMIT 1",
                            (*key, start_ms, end_ms),
                        ).fetchone()
                    )
                    (after,) = db.execute(
                        "SELECT MIN(ts_ms) FROM readings WHERE site=? AND quantity=? AND meter=?"
                        " AND ts_ms > ?",
                        (*key, end_ms),
                    ).fetchone()
                    if runs and start_ms % HOUR_MS == 0 and end_ms % HOUR_MS == 0:
                        slots = self._run_slots(db, key, start_ms, end_ms, cut_hours)  # type: ignore[arg-type]
                    else:
                        slots = [
                            IndexSlot(
                                end=_time((b + 1) * width),
                                last_value=value,
                                count=count,
                                max_value=high if high > value else None,
                            )
                            for b, value, count, high in self._slot_rows(
                                db, key, width, start_ms, end_ms
                            )
                        ]
                    out[meter] = IndexSeries(
                        baseline=first[1] if first else None,
                        starts_inside=before is None and first is not None,
                        baseline_time=_time(first[0]) if first else None,
                        next_time=None if after is None else _time(after),
                        slots=slots,
                    )
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite query failed: {exc}") from exc
        return out

    def _run_slots(
        self,
        db: sqlite3.Connection,
        key: tuple[str, str, str],
        start_ms: int,
        end_ms: int,
        cut_hours: list[int],
    ) -> list[IndexSlot]:
        """The hours of ``(start, end]``: the clean days lying whole between two cuts from
        ``daily``, every other hour from ``hourly``, joined into runs."""
        first_h, stop_h = start_ms // HOUR_MS, end_ms // HOUR_MS  # hours [first_h, stop_h)
        wanted = [d for d in whole_days(cut_hours) if first_h <= d * 24 and d * 24 + 24 <= stop_h]
        days: list[Piece] = []
        if wanted:
            usable = set(wanted)
            days = [
                cast(Piece, row)
                for row in db.execute(
                    "SELECT day * 24, day * 24 + 24, first_value, first_count, last_value, count,"
                    " max_value, 1, max_rise FROM daily WHERE site=? AND quantity=? AND meter=?"
                    " AND day >= ? AND day <= ? AND clean = 1",
                    (*key, wanted[0], wanted[-1]),
                )
                if row[0] // HOURS_PER_DAY in usable
            ]
        # The hours outside the days read whole: the ranges between them.
        ranges, at = [], first_h
        for d in days:
            if d[0] > at:
                ranges.append((at, d[0]))
            at = d[1]
        if stop_h > at:
            ranges.append((at, stop_h))
        pieces = days + self._hour_pieces(
            db, key, ranges, {d[0] // 24 for d in days}, (first_h, stop_h)
        )
        pieces.sort()  # by start: no two pieces share one
        return runs_of(pieces, cut_hours)

    def _hour_pieces(
        self,
        db: sqlite3.Connection,
        key: tuple[str, str, str],
        ranges: list[tuple[int, int]],
        whole: set[int],
        window: tuple[int, int],
    ) -> list[Piece]:
        """The rows of ``hourly`` in the hour ``ranges`` (each ``[a, b)``): the hours of
        ``window`` outside the days in ``whole``."""
        if not ranges:
            return []
        select = (
            "SELECT hour, hour + 1, last_value, count, last_value, count, max_value,"
            " max_value <= last_value, 0.0 FROM hourly"
            " WHERE site=? AND quantity=? AND meter=? AND hour >= ? AND hour < ?"
        )
        if len(ranges) > _MAX_RANGES:  # read the whole window, keep the ranges' hours
            rows = db.execute(select, (*key, *window))
            return [cast(Piece, r) for r in rows if r[0] // HOURS_PER_DAY not in whole]
        # One range scan of the primary key each (an OR of ranges would scan them all).
        sql = " UNION ALL ".join([select] * len(ranges))
        params = [x for a, b in ranges for x in (*key, a, b)]
        return cast(list[Piece], db.execute(sql, params).fetchall())

    def _slot_rows(
        self,
        db: sqlite3.Connection,
        key: tuple[str, str, str],
        width: int,
        start_ms: int,
        end_ms: int,
    ) -> list[tuple[int, float, int, float]]:
        """(slot, last value, count, highest value) of the slots ``(b*width, (b+1)*width]``
        in ``(start, end]``: from the hourly rollup when whole hours make them up, else
        raw. The last value is read back by the time (or hour) of the slot's last row."""
        if width % HOUR_MS or start_ms % HOUR_MS or end_ms % HOUR_MS:
            return db.execute(
                "SELECT g.b, l.value, g.n, g.mx FROM ("
                "  SELECT (ts_ms - 1) / ? AS b, MAX(ts_ms) AS t, COUNT(*) AS n, MAX(value) AS mx"
                "    FROM readings WHERE site=? AND quantity=? AND meter=? AND ts_ms > ?"
                "     AND ts_ms <= ? GROUP BY b"
                ") g JOIN readings l ON l.site=? AND l.quantity=? AND l.meter=? AND l.ts_ms=g.t"
                " ORDER BY g.b",
                (width, *key, start_ms, end_ms, *key),
            ).fetchall()
        hours = (start_ms // HOUR_MS, end_ms // HOUR_MS)
        if width == HOUR_MS:  # the rollup's own slots
            return db.execute(
                "SELECT hour, last_value, count, max_value FROM hourly"
                " WHERE site=? AND quantity=? AND meter=? AND hour >= ? AND hour < ?"
                " ORDER BY hour",
                (*key, *hours),
            ).fetchall()
        return db.execute(
            "SELECT g.b, l.last_value, g.n, g.mx FROM ("
            "  SELECT hour / ? AS b, MAX(hour) AS h, SUM(count) AS n, MAX(max_value) AS mx"
            "    FROM hourly WHERE site=? AND quantity=? AND meter=? AND hour >= ? AND hour < ?"
            "   GROUP BY b"
            ") g JOIN hourly l ON l.site=? AND l.quantity=? AND l.meter=? AND l.hour=g.h"
            " ORDER BY g.b",
            (width // HOUR_MS, *key, *hours, *key),
        ).fetchall()

    def slot_sums(
        self,
        site: str,
        meters: Sequence[str],
        quantity: str,
        start: datetime,
        end: datetime,
        slot: timedelta,
    ) -> dict[str, list[SumSlot]]:
        width = round(slot.total_seconds() * 1000)
        if width < 1:
            raise StoreError(f"slot {slot} must be at least a millisecond")
        out: dict[str, list[SumSlot]] = {}
        try:
            with self._reading() as db:
                for meter in meters:
                    rows = db.execute(
                        "SELECT ts_ms / ? AS b, SUM(value), COUNT(*) FROM readings"
                        " WHERE site=? AND quantity=? AND meter=? AND ts_ms >= ? AND ts_ms < ?"
                        " GROUP BY b ORDER BY b",
                        (width, site, quantity, meter, _ms(start), _ms(end)),
                    ).fetchall()
                    out[meter] = [
                        SumSlot(datetime.fromtimestamp(b * width / 1000, UTC), float(total), n)
                        for b, total, n in rows
                    ]
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite query failed: {exc}") from exc
        return out

    def hourly_means(
        self, site: str, meter: str, quantity: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, float]]:
        try:
            with self._reading() as db:
                rows = db.execute(
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
            with self._reading() as db:
                for meter in meters:
                    (ts,) = db.execute(
                        "SELECT MAX(ts_ms) FROM readings WHERE site=? AND quantity=? AND meter=?",
                        (site, quantity, meter),
                    ).fetchone()
                    out[meter] = None if ts is None else datetime.fromtimestamp(ts / 1000, UTC)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite query failed: {exc}") from exc
        return out

    def count(self, site: str) -> int:
        try:
            with self._reading() as db:
                row = db.execute("SELECT COUNT(*) FROM readings WHERE site=?", (site,))
                return int(row.fetchone()[0])
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite query failed: {exc}") from exc

    def ping(self) -> None:
        try:
            with self._reading() as db:
                db.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store unusable: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()
        with self._readers_lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
