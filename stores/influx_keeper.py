"""The writer side of the InfluxDB rollups: dirty markers before the raw points, rollup
points after, and the rebuild and verify commands (the mechanism is described in
:mod:`stores.influx_rollup`).

Lifecycle: one :class:`RollupKeeper` per :class:`~stores.influx.InfluxStore`; every
write goes through :meth:`RollupKeeper.writing`; :meth:`RollupKeeper.flush` at close.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from domain.rollup import DayRow, HourRow, day_row
from domain.store import StoreError
from stores.influx_rollup import (
    DAY_FIELDS,
    DAY_M,
    DAY_S,
    DIRTY_M,
    HOUR_M,
    DayKey,
    day_line,
    dirty_line,
    hour_line,
    parse_days,
    parse_dirty_keys,
    parse_raw_hours,
    parse_rollup_hours,
)

_log = logging.getLogger("stores.influx")
Query = Callable[..., list[dict[str, Any]]]
Post = Callable[[Sequence[str], str], None]
Where = Callable[[str, Sequence[str]], str]
Progress = Callable[[int, int], None]
#: Days rolled up per request.
CHUNK = 100
#: Far enough ahead for "until the end" (2100-01-01) [s].
_FAR = 4_102_444_800
#: An id or measurement name that may reach a query between quotes.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


class RollupKeeper:
    """Marks days dirty, rolls them up, rebuilds and verifies them.

    Parameters
    ----------
    query, post : callables
        The store's ``/query`` (statements → checked results) and ``/write`` (lines,
        precision).
    where : callable
        The store's ``WHERE`` clause for a site and meters (ids checked).
    writer : str
        This writer's id in the markers (checked by the store).
    interval_s : float
        Least time between two rollups during writes [s].
    """

    def __init__(self, query: Query, post: Post, where: Where, writer: str, interval_s: float):
        self._query, self._post, self._where = query, post, where
        self.writer, self.interval_s = writer, interval_s
        self._lock = threading.RLock()
        self._dirty: set[DayKey] = set()  # marked by this writer, not yet rolled up
        self._adopted = False
        self._rolled_at = time.monotonic()

    @contextmanager
    def writing(self, days: set[DayKey]) -> Iterator[None]:
        """Mark ``days`` dirty, let the raw points be written, roll up when due."""
        with self._lock:
            self._adopt()
            if new := days - self._dirty:
                self._post([dirty_line(k, self.writer, True) for k in sorted(new)], "s")
                self._dirty |= new
            yield
            if time.monotonic() - self._rolled_at >= self.interval_s:
                try:
                    self.flush()
                except StoreError as exc:  # the days stay dirty: read raw, rolled up later
                    _log.warning("rollup of %d days postponed: %s", len(self._dirty), exc)

    def _adopt(self) -> None:
        """Once: take back the days this writer left dirty (a run killed before its
        rollup)."""
        if self._adopted:
            return
        (result,) = self._query(
            f'SELECT "dirty" FROM {DIRTY_M} WHERE "writer" = \'{self.writer}\''
            ' GROUP BY "site", "quantity", "meter"'
        )
        self._dirty |= parse_dirty_keys(result)
        self._adopted = True

    def flush(self, only_if_dirty: bool = False) -> None:
        """Roll up every day this writer marked dirty, then mark them clean."""
        with self._lock:
            if only_if_dirty and not self._dirty:
                return
            self._adopt()
            days = sorted(self._dirty)
            for i in range(0, len(days), CHUNK):
                chunk = days[i : i + CHUNK]
                self._roll_up(chunk, [self.writer])
                self._dirty -= set(chunk)
            self._rolled_at = time.monotonic()

    def _expected(self, days: Sequence[DayKey]) -> dict[DayKey, list[HourRow]]:
        """The hour rows of ``days`` computed from the raw points (empty: no points)."""
        groups: dict[tuple[str, str, int], list[str]] = {}
        for site, quantity, meter, day in days:
            groups.setdefault((site, quantity, day), []).append(meter)
        statements = [
            f'SELECT last("value"), count("value"), max("value") FROM "{quantity}"'
            f" WHERE {self._where(site, meters)} AND time > {day * DAY_S}s"
            f' AND time <= {(day + 1) * DAY_S}s GROUP BY time(1h, 1ns), "meter" fill(none)'
            for (site, quantity, day), meters in groups.items()
        ]
        out: dict[DayKey, list[HourRow]] = {}
        results = self._query(*statements) if statements else []
        for ((site, quantity, day), meters), result in zip(groups.items(), results, strict=True):
            hours = parse_raw_hours(result)
            for meter in meters:
                out[(site, quantity, meter, day)] = hours.get(meter, [])
        return out

    def _roll_up(self, days: Sequence[DayKey], writers: Sequence[str]) -> None:
        """Recompute the rollup points of ``days`` from the raw points, write them, then
        clear the markers of ``writers`` for those days. A day without raw points loses
        its rollup points."""
        lines: list[str] = []
        for (site, quantity, meter, day), rows in self._expected(days).items():
            if not rows:
                self._drop(site, quantity, meter, day)
                continue
            lines += [hour_line(site, quantity, meter, r) for r in rows]
            lines.append(day_line(site, quantity, meter, day_row(day, rows)))
        if lines:
            self._post(lines, "s")
        self._post([dirty_line(k, w, False) for k in days for w in writers], "s")

    def _drop(self, site: str, quantity: str, meter: str, day: int) -> None:
        tags = f"\"site\" = '{site}' AND \"meter\" = '{meter}' AND \"quantity\" = '{quantity}'"
        window = f"time >= {day * DAY_S}s AND time < {(day + 1) * DAY_S}s"
        self._query(
            f"DELETE FROM {HOUR_M} WHERE {tags} AND {window}",
            f"DELETE FROM {DAY_M} WHERE {tags} AND {window}",
            method="POST",
        )

    # --- rebuild and verify -----------------------------------------------------------

    def days(
        self, site: str | None, since: datetime | None, until: datetime | None
    ) -> list[DayKey]:
        """Every day holding raw points or rollup points, of ``site`` (all: ``None``)
        within ``[since, until)``."""
        (shown,) = self._query("SHOW MEASUREMENTS")
        names = [v[0] for s in shown.get("series", []) for v in s["values"]]
        quantities = [n for n in names if _NAME.fullmatch(n) and not n.startswith("rollup_")]
        # Both ends explicit: without an upper one InfluxDB stops a GROUP BY time at now.
        lower = int(since.timestamp()) if since else 0
        upper = int(until.timestamp()) if until else _FAR
        span = f"time >= {lower}s AND time < {upper}s"
        if site and not _NAME.fullmatch(site):
            raise StoreError(f"invalid site id {site!r}")
        tag = f" AND \"site\" = '{site}'" if site else ""
        statements = [
            f'SELECT count("value") FROM "{q}" WHERE {span}{tag}'
            ' GROUP BY time(1d, 1ns), "site", "meter" fill(none)'
            for q in quantities
        ] + [
            f'SELECT count("last") FROM {DAY_M} WHERE {span}{tag}'
            ' GROUP BY time(1d), "site", "quantity", "meter" fill(none)'
        ]
        results = self._query(*statements)
        keys: set[DayKey] = set()
        for q, result in zip(quantities, results, strict=False):
            for s in result.get("series", []):
                t = s["tags"]
                keys |= {
                    (t["site"], q, t["meter"], (v[0] - 1) // (DAY_S * 10**9)) for v in s["values"]
                }
        for s in results[-1].get("series", []):
            t = s["tags"]
            keys |= {
                (t["site"], t["quantity"], t["meter"], v[0] // (DAY_S * 10**9)) for v in s["values"]
            }
        return sorted(keys)

    def rebuild(
        self,
        site: str | None = None,
        since: datetime | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Recompute the rollups of every day of ``site`` from ``since`` on, and clear
        every writer's markers of those days; the number of days. Run it with the
        gateways stopped: a marker cleared under a live writer would let its next raw
        points go unrolled until its next rollup."""
        keys = self.days(site, since, None)
        writers = self._writers()
        for i in range(0, len(keys), CHUNK):
            chunk = keys[i : i + CHUNK]
            self._post([dirty_line(k, self.writer, True) for k in chunk], "s")
            self._roll_up(chunk, sorted({*writers, self.writer}))
            if progress:
                progress(min(i + CHUNK, len(keys)), len(keys))
        return len(keys)

    def _writers(self) -> list[str]:
        (result,) = self._query(f'SHOW TAG VALUES FROM {DIRTY_M} WITH KEY = "writer"')
        return [v[1] for s in result.get("series", []) for v in s["values"]]

    def verify(
        self,
        site: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        progress: Progress | None = None,
    ) -> list[str]:
        """Each day whose rollup points differ from what the raw points give, named with
        the first hour that differs; days still dirty are named too (they are read raw)."""
        keys = self.days(site, since, until)
        problems: list[str] = []
        for i in range(0, len(keys), CHUNK):
            chunk = keys[i : i + CHUNK]
            expected = self._expected(chunk)
            stored_hours, stored_days, dirty = self._stored(chunk)
            for key in chunk:
                problems += _compare(
                    key, expected[key], stored_hours.get(key, []), stored_days.get(key), dirty
                )
            if progress:
                progress(min(i + CHUNK, len(keys)), len(keys))
        return problems

    def _stored(
        self, days: Sequence[DayKey]
    ) -> tuple[dict[DayKey, list[HourRow]], dict[DayKey, DayRow], set[DayKey]]:
        statements: list[str] = []
        for site, quantity, meter, day in days:
            where = (
                f"{self._where(site, [meter])} AND \"quantity\" = '{quantity}'"
                f" AND time >= {day * DAY_S}s AND time < {(day + 1) * DAY_S}s"
            )
            statements += [
                f'SELECT "last", "count", "high" FROM {HOUR_M} WHERE {where} GROUP BY "meter"',
                f'SELECT {DAY_FIELDS} FROM {DAY_M} WHERE {where} GROUP BY "meter"',
                f'SELECT "dirty" FROM {DIRTY_M} WHERE {where} GROUP BY "site", "quantity", "meter"',
            ]
        results = self._query(*statements)
        hours: dict[DayKey, list[HourRow]] = {}
        day_rows: dict[DayKey, DayRow] = {}
        dirty: set[DayKey] = set()
        for n, key in enumerate(days):
            h, d, m = results[3 * n : 3 * n + 3]
            hours[key] = parse_rollup_hours(h).get(key[2], [])
            if rows := parse_days(d).get(key[2]):
                day_rows[key] = rows[0]
            dirty |= parse_dirty_keys(m)
        return hours, day_rows, dirty


def _day_name(key: DayKey) -> str:
    site, quantity, meter, day = key
    when = datetime.fromtimestamp(day * DAY_S, UTC).date().isoformat()
    return f"site {site} {quantity}/{meter} day {when} (UTC)"


def _compare(
    key: DayKey,
    expected: list[HourRow],
    hours: list[HourRow],
    day: DayRow | None,
    dirty: set[DayKey],
) -> list[str]:
    """What is wrong with the rollup of one day (nothing: an empty list)."""
    name = _day_name(key)
    if key in dirty:
        return [
            f"{name}: dirty (being written, or left by a writer stopped before rolling it up):"
            " read raw"
        ]
    if not expected:
        if hours or day:
            return [f"{name}: rollup points for a day without raw points"]
        return []
    got = {r.hour: r for r in hours}
    for want in expected:
        have = got.pop(want.hour, None)
        if have != want:
            at = datetime.fromtimestamp(want.hour * 3600, UTC).isoformat()
            return [f"{name}: hour {at}: rollup {have} but raw gives {want}"]
    if got:
        at = datetime.fromtimestamp(min(got) * 3600, UTC).isoformat()
        return [f"{name}: hour {at}: rollup point without raw points"]
    if day != day_row(key[3], expected):
        return [f"{name}: day point {day} but raw gives {day_row(key[3], expected)}"]
    return []
