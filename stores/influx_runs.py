"""The InfluxDB store's query path with period bounds: clean days from ``rollup_day``,
the other hours from ``rollup_hour``, and every day dirty or never rolled up from the raw
points (:mod:`stores.influx_rollup` says why that is never stale).

Two requests: the baselines, the dirty markers (read first), the day points and their
count; then, for each stretch of hours not read as whole days, its hours and their count.
Each answer is checked whole as every other answer of the adapter is
(:func:`stores.influx.parse_query_answer`, :func:`stores.influx.check_complete`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from domain.rollup import HOURS_PER_DAY, DayRow, HourRow, Piece, runs_of, whole_days
from domain.store import IndexSlot
from stores.influx_rollup import (
    DAY_FIELDS,
    DAY_M,
    DAY_S,
    DIRTY_M,
    HOUR_M,
    parse_days,
    parse_dirty,
    parse_raw_hours,
    parse_rollup_hours,
)

Query = Callable[..., list[dict[str, Any]]]
#: More stretches than this for a group of meters: the whole window is read at once.
MAX_STRETCHES = 40
HOUR_S = 3600


@dataclass(frozen=True)
class Stretch:
    """Hours ``[start, stop)`` read from ``rollup_hour`` (``raw`` false) or the raw points."""

    start: int
    stop: int
    raw: bool


def stretches(first_h: int, stop_h: int, whole: set[int], rolled: set[int]) -> list[Stretch]:
    """The hours of ``[first_h, stop_h)`` outside the ``whole`` days, in stretches of one
    kind: from ``rollup_hour`` on days ``rolled`` up (a day point, not dirty), else raw."""
    out: list[Stretch] = []
    h = first_h
    while h < stop_h:
        day = h // HOURS_PER_DAY
        stop = min(stop_h, (day + 1) * HOURS_PER_DAY)
        if day not in whole:
            raw = day not in rolled
            if out and out[-1].stop == h and out[-1].raw == raw:
                out[-1] = Stretch(out[-1].start, stop, raw)
            else:
                out.append(Stretch(h, stop, raw))
        h = stop
    return out


def day_statements(
    measurement: str, where: str, days: tuple[int, int], window: tuple[int, int]
) -> list[str]:
    """The dirty markers of the ``window`` days (first), the day points of ``days``
    (both ``[a, b]`` in epoch days) and their count."""
    span = (
        f"{where} AND \"quantity\" = '{measurement}'"
        f" AND time >= {days[0] * DAY_S}s AND time <= {days[1] * DAY_S}s"
    )
    marks = (
        f"{where} AND \"quantity\" = '{measurement}'"
        f" AND time >= {window[0] * DAY_S}s AND time <= {window[1] * DAY_S}s"
    )
    return [
        f'SELECT "dirty" FROM {DIRTY_M} WHERE {marks} GROUP BY "meter", "writer"',
        f'SELECT {DAY_FIELDS} FROM {DAY_M} WHERE {span} GROUP BY "meter"',
        f'SELECT count("last") FROM {DAY_M} WHERE {span} GROUP BY "meter"',
    ]


def stretch_statements(quantity: str, measurement: str, where: str, s: Stretch) -> list[str]:
    """The hours of stretch ``s`` and their count (hours for ``rollup_hour``, readings for
    the raw points)."""
    a, b = s.start * HOUR_S, s.stop * HOUR_S
    if s.raw:
        window = f"{where} AND time > {a}s AND time <= {b}s"
        return [
            f'SELECT last("value"), count("value"), max("value") FROM {measurement}'
            f' WHERE {window} GROUP BY time(1h, 1ns), "meter" fill(none)',
            f'SELECT count("value") FROM {measurement} WHERE {window} GROUP BY "meter"',
        ]
    window = f"{where} AND \"quantity\" = '{quantity}' AND time >= {a}s AND time < {b}s"
    return [
        f'SELECT "last", "count", "high" FROM {HOUR_M} WHERE {window} GROUP BY "meter"',
        f'SELECT count("last") FROM {HOUR_M} WHERE {window} GROUP BY "meter"',
    ]


def run_slots(
    query: Query,
    where_of: Callable[[Sequence[str]], str],
    quantity: str,
    measurement: str,
    meters: Sequence[str],
    window_h: tuple[int, int],
    cut_hours: list[int],
    check: Callable[[str, dict[str, int], dict[str, int]], None],
    counts_of: Callable[[dict[str, Any]], dict[str, int]],
) -> dict[str, list[IndexSlot]]:
    """Each meter's slots over the hours ``[window_h[0], window_h[1])``, clean stretches
    between the cuts as runs."""
    first_h, stop_h = window_h
    wanted = [d for d in whole_days(cut_hours) if first_h <= d * HOURS_PER_DAY < stop_h - 23]
    where = where_of(meters)
    window_days = (first_h // HOURS_PER_DAY, (stop_h - 1) // HOURS_PER_DAY)
    days_asked = (wanted[0], wanted[-1]) if wanted else window_days
    dirty_r, days_r, count_r = query(*day_statements(quantity, where, days_asked, window_days))
    dirty = parse_dirty(dirty_r)
    day_rows = parse_days(days_r)
    check("rollup days", counts_of(count_r), {m: len(v) for m, v in day_rows.items()})
    wanted_set = set(wanted)
    whole: dict[str, list[DayRow]] = {}
    plan: dict[tuple[Stretch, ...], list[str]] = defaultdict(list)
    for m in meters:
        rows = [d for d in day_rows.get(m, []) if d.day not in dirty.get(m, set())]
        whole[m] = [d for d in rows if d.clean and d.day in wanted_set]
        # Days with a day point read from rollup_hour; the first and last days of the
        # window were not asked for theirs unless whole: read raw (cheap, a day each).
        rolled = {d.day for d in rows}
        plan[tuple(stretches(first_h, stop_h, {d.day for d in whole[m]}, rolled))].append(m)
    hours: dict[str, list[HourRow]] = defaultdict(list)
    for planned, group in plan.items():
        for m, found in _stretch_hours(
            query,
            where_of(group),
            quantity,
            measurement,
            list(planned),
            (first_h, stop_h),
            check,
            counts_of,
        ).items():
            hours[m].extend(found)
    out: dict[str, list[IndexSlot]] = {}
    for m in meters:
        pieces = [Piece.of_day(d) for d in whole[m]] + [Piece.of_hour(h) for h in hours[m]]
        pieces.sort(key=lambda p: p.start)
        out[m] = runs_of(pieces, cut_hours)
    return out


def _stretch_hours(
    query: Query,
    where: str,
    quantity: str,
    measurement: str,
    planned: list[Stretch],
    window_h: tuple[int, int],
    check: Callable[[str, dict[str, int], dict[str, int]], None],
    counts_of: Callable[[dict[str, Any]], dict[str, int]],
) -> dict[str, list[HourRow]]:
    """The hours of the ``planned`` stretches for the meters of ``where``."""
    if not planned:
        return {}
    keep: set[int] | None = None
    if len(planned) > MAX_STRETCHES:  # many short stretches: the window at once, raw
        keep = {h for s in planned for h in range(s.start, s.stop)}
        planned = [Stretch(window_h[0], window_h[1], True)]
    statements = [q for s in planned for q in stretch_statements(quantity, measurement, where, s)]
    results = query(*statements)
    out: dict[str, list[HourRow]] = defaultdict(list)
    for i, s in enumerate(planned):
        rows_r, count_r = results[2 * i], results[2 * i + 1]
        got = parse_raw_hours(rows_r) if s.raw else parse_rollup_hours(rows_r)
        in_rows = {m: (sum(r.count for r in v) if s.raw else len(v)) for m, v in got.items()}
        check(f"hours {s.start}–{s.stop}", counts_of(count_r), in_rows)
        for m, v in got.items():
            out[m].extend(r for r in v if keep is None or r.hour in keep)
    return out
