"""Period boundaries in a site's local time, DST included.

A day is cut at local midnight, so it lasts 23 or 25 hours on the days the clocks
change; a month starts on the local first of the month at midnight.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Step(StrEnum):
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"
    YEAR = "year"


def localize(wall: datetime, tz: ZoneInfo) -> datetime:
    """Attach ``tz`` to a naive wall-clock time (an aware one is converted).

    An ambiguous wall time (the repeated hour in autumn) takes its first
    occurrence; a non-existent one (the skipped hour in spring) is moved forward by
    the gap, which is what a clock on the wall shows.
    """
    if wall.tzinfo is not None:
        return wall.astimezone(tz)
    aware = wall.replace(tzinfo=tz, fold=0)
    # Round-trip through UTC resolves a wall time that does not exist.
    return aware.astimezone(UTC).astimezone(tz)


def _next_boundary(t: datetime, step: Step, tz: ZoneInfo) -> datetime:
    """The first boundary of ``step`` strictly after the aware instant ``t``."""
    if step is Step.HOUR:
        # Hours are cut in absolute time: the repeated autumn hour is two periods.
        utc = t.astimezone(UTC)
        local = t.astimezone(tz)
        floor = utc - timedelta(
            minutes=local.minute, seconds=local.second, microseconds=local.microsecond
        )
        return (floor + timedelta(hours=1)).astimezone(tz)
    local = t.astimezone(tz)
    if step is Step.DAY:
        wall = datetime(local.year, local.month, local.day) + timedelta(days=1)
    elif step is Step.MONTH:
        year, month = divmod(local.month, 12)
        wall = datetime(local.year + year, month + 1, 1)
    else:
        wall = datetime(local.year + 1, 1, 1)
    return localize(wall, tz)


def period_bounds(start: datetime, end: datetime, step: Step, tz: ZoneInfo) -> list[datetime]:
    """Boundaries ``[start, b1, b2, …, end]`` of the periods of ``step`` in ``tz``.

    Parameters
    ----------
    start, end : datetime
        Aware instants, or naive local wall times in ``tz``. ``end`` is exclusive.
        When they do not fall on a boundary, the first and last periods are partial.
    step : Step
        Period length, cut on local calendar boundaries.
    tz : ZoneInfo
        The site's timezone.

    Returns
    -------
    list of datetime
        Aware datetimes in ``tz``, strictly increasing; ``len - 1`` periods.
    """
    # Compare in UTC: aware datetimes sharing a tzinfo compare (and subtract) by
    # wall clock, which is wrong across the repeated autumn hour.
    t0, t1 = localize(start, tz).astimezone(UTC), localize(end, tz).astimezone(UTC)
    if t1 <= t0:
        raise ValueError("end must be after start")
    bounds = [t0]
    while (nxt := _next_boundary(bounds[-1], step, tz).astimezone(UTC)) < t1:
        bounds.append(nxt)
    bounds.append(t1)
    return [b.astimezone(tz) for b in bounds]


def common_slot(bounds: list[datetime]) -> timedelta:
    """Widest slot (at most one hour) such that every boundary ends a slot.

    Slots are aligned on the Unix epoch. Whole-hour timezones give one-hour slots;
    India's half hour gives 30 minutes; an arbitrary start minute gives smaller ones.
    """
    seconds = 3600
    for b in bounds:
        seconds = math.gcd(seconds, int(b.timestamp()) % 3600)
        if b.microsecond:
            raise ValueError("period boundaries must be whole seconds")
    return timedelta(seconds=seconds)
