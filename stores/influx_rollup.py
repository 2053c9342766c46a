"""The InfluxDB store's rollups: their points, the dirty markers that keep them honest,
and the parsing of their answers (pure: no HTTP here).

InfluxDB has no transaction to keep a rollup in step with the raw points, so the
mechanism is *dirty days*. Before it writes raw points, a writer marks each
(site, quantity, meter, UTC day) it touches as dirty (``rollup_dirty``, one point per
day and writer, field ``dirty`` at 1); it recomputes those days from the raw points later (every
``rollup_interval_s``, on :meth:`~stores.influx.InfluxStore.flush_rollups` and on
close), writes their ``rollup_hour`` and ``rollup_day`` points, and only then marks
them clean (0). A query reads the markers first, then the rollups: a day dirty
for any writer, or without a day point (never rolled up: a database from before the
rollups), is read from the raw points. So a figure is never read from a stale rollup:
at worst, from the raw points. A writer killed between the two steps leaves its days
dirty; it takes them back when it starts again (same ``writer`` id), and
``microville rollup rebuild`` repairs any day.

Layout (one database, its default retention policy): measurement ``rollup_hour``
(tags ``site``, ``meter``, ``quantity``; fields ``last``, ``count``, ``high``; time the
hour's start, the hour ``(h·1h, (h+1)·1h]``), ``rollup_day`` (fields of
:class:`domain.rollup.DayRow`; time the day's start), ``rollup_dirty`` (tag ``writer``,
field ``dirty``: not ``value``, so that no count of readings counts it).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from domain.rollup import DayRow, HourRow

HOUR_M, DAY_M, DIRTY_M = "rollup_hour", "rollup_day", "rollup_dirty"
HOUR_NS, DAY_S = 3_600_000_000_000, 86_400
#: (site, quantity, meter, epoch day)
DayKey = tuple[str, str, str, int]


def _tags(site: str, quantity: str, meter: str) -> str:
    # The ids are checked by the store (letters, digits, "_-.:"): nothing to escape.
    return f"meter={meter},quantity={quantity},site={site}"


def hour_line(site: str, quantity: str, meter: str, row: HourRow) -> str:
    """A ``rollup_hour`` point, second precision."""
    return (
        f"{HOUR_M},{_tags(site, quantity, meter)} last={row.last!r},count={row.count}i,"
        f"high={row.high!r} {row.hour * 3600}"
    )


def day_line(site: str, quantity: str, meter: str, d: DayRow) -> str:
    """A ``rollup_day`` point, second precision."""
    return (
        f"{DAY_M},{_tags(site, quantity, meter)} hours={d.hours}i,first={d.first!r},"
        f"first_count={d.first_count}i,last={d.last!r},count={d.count}i,high={d.high!r},"
        f"clean={'true' if d.clean else 'false'},max_rise={d.max_rise!r} {d.day * DAY_S}"
    )


def dirty_line(key: DayKey, writer: str, dirty: bool) -> str:
    """A ``rollup_dirty`` marker of ``writer`` for the day ``key``, second precision."""
    site, quantity, meter, day = key
    return (
        f"{DIRTY_M},{_tags(site, quantity, meter)},writer={writer} "
        f"dirty={1 if dirty else 0}i {day * DAY_S}"
    )


def parse_raw_hours(result: dict[str, Any]) -> dict[str, list[HourRow]]:
    """{meter: hours} from ``SELECT last, count, max … GROUP BY time(1h, 1ns), "meter"
    fill(none)`` on raw points (bucket ``t`` covers the hour ``(t − 1 ns) // 1 h``)."""
    out: dict[str, list[HourRow]] = {}
    for s in result.get("series", []):
        out[s["tags"]["meter"]] = [
            HourRow((t - 1) // HOUR_NS, float(last), int(n), float(high))
            for t, last, n, high in s["values"]
        ]
    return out


def parse_rollup_hours(result: dict[str, Any]) -> dict[str, list[HourRow]]:
    """{meter: hours} from ``SELECT "last", "count", "high" FROM rollup_hour … GROUP BY
    "meter"``."""
    return {
        s["tags"]["meter"]: [
            HourRow(t // HOUR_NS, float(last), int(n), float(high))
            for t, last, n, high in s["values"]
        ]
        for s in result.get("series", [])
    }


DAY_FIELDS = '"hours", "first", "first_count", "last", "count", "high", "clean", "max_rise"'


def parse_days(result: dict[str, Any]) -> dict[str, list[DayRow]]:
    """{meter: days} from ``SELECT <DAY_FIELDS> FROM rollup_day … GROUP BY "meter"``."""
    out: dict[str, list[DayRow]] = {}
    for s in result.get("series", []):
        out[s["tags"]["meter"]] = [
            DayRow(
                t // (DAY_S * 1_000_000_000),
                int(hours),
                float(first),
                int(first_count),
                float(last),
                int(n),
                float(high),
                bool(clean),
                float(max_rise),
            )
            for t, hours, first, first_count, last, n, high, clean, max_rise in s["values"]
        ]
    return out


def parse_dirty(result: dict[str, Any]) -> dict[str, set[int]]:
    """{meter: days dirty for some writer} from ``SELECT "dirty" FROM rollup_dirty …
    GROUP BY "meter", "writer"``."""
    out: dict[str, set[int]] = defaultdict(set)
    for s in result.get("series", []):
        for t, value in s["values"]:
            if value:
                out[s["tags"]["meter"]].add(t // (DAY_S * 1_000_000_000))
    return out


def parse_dirty_keys(result: dict[str, Any]) -> set[DayKey]:
    """Days still dirty, as keys, from ``SELECT "dirty" FROM rollup_dirty … GROUP BY
    "site", "quantity", "meter"``."""
    return {
        (s["tags"]["site"], s["tags"]["quantity"], s["tags"]["meter"], t // (DAY_S * 10**9))
        for s in result.get("series", [])
        for t, value in s["values"]
        if value
    }
