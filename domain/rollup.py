"""The rollups both stores keep beside the raw indexes, and the runs read from them.

An *hour* ``h`` is the slot ``(h·1h, (h+1)·1h]`` (epoch hours, UTC); a *day* ``d`` the
24 hours ``24d … 24d+23``. Each store keeps, per meter and quantity:

- per hour: its last value, reading count and highest value (:class:`HourRow`);
- per day: what a query needs to read the day as one stretch when it is clean
  (:class:`DayRow`, computed from the day's hours by :func:`day_row`).

A query with period bounds (*cuts*) reads each stretch between two cuts from the day rows
where whole clean days fit and from the hour rows elsewhere (:class:`Piece`), and
:func:`runs_of` joins the clean pieces into runs (:class:`domain.store.IndexSlot` with
``hours > 1``): a year by month reaches the service as a few dozen slots per meter
instead of 8,760, and :mod:`domain.balance` judges a run as the hours it stands for.

Pure functions; no I/O.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from domain.store import IndexSlot

HOUR = timedelta(hours=1)
HOURS_PER_DAY = 24
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def hour_end(h: int) -> datetime:
    """End of epoch hour ``h`` (the slot ``(h·1h, (h+1)·1h]``)."""
    return _EPOCH + timedelta(hours=h + 1)


def hour_of_bound(t: datetime) -> int | None:
    """The epoch hour count of ``t`` when it is a whole hour, else ``None``."""
    seconds = (t - _EPOCH) / timedelta(seconds=1)
    return int(seconds // 3600) if seconds % 3600 == 0 else None


@dataclass(frozen=True, slots=True)
class HourRow:
    """One hour of a meter: its last value, reading count and highest value [base unit]."""

    hour: int
    last: float
    count: int
    high: float


@dataclass(frozen=True, slots=True)
class DayRow:
    """One day of a meter, from its hours.

    Parameters
    ----------
    day : int
        Epoch day: hours ``24·day`` to ``24·day + 23``.
    hours : int
        Hours of the day holding a reading (24 when complete).
    first, first_count : float, int
        Last value [base unit] and reading count of the day's first hour holding one.
    last : float
        Last value of the day's last hour holding one [base unit].
    count : int
        Readings of the day.
    high : float
        Highest value of the day [base unit].
    clean : bool
        All 24 hours hold a reading, none has a value above its last (a drop inside
        it) and no hour's last value is below the previous hour's.
    max_rise : float
        Largest rise between two consecutive hours of the day [base unit] (0 when
        ``clean`` is false: then the day is read hour by hour).
    """

    day: int
    hours: int
    first: float
    first_count: int
    last: float
    count: int
    high: float
    clean: bool
    max_rise: float


def day_row(day: int, hours: Sequence[HourRow]) -> DayRow:
    """The :class:`DayRow` of ``day`` from its hour rows (any order; at least one)."""
    rows = sorted(hours, key=lambda r: r.hour)
    if not rows or any(r.hour // HOURS_PER_DAY != day for r in rows):
        raise ValueError(f"day {day} needs hour rows of that day, got {[r.hour for r in rows]}")
    clean = len(rows) == HOURS_PER_DAY and all(r.high <= r.last for r in rows)
    max_rise = 0.0
    for a, b in itertools.pairwise(rows):
        rise = b.last - a.last
        if rise < 0:
            clean = False
        max_rise = max(max_rise, rise)
    return DayRow(
        day=day,
        hours=len(rows),
        first=rows[0].last,
        first_count=rows[0].count,
        last=rows[-1].last,
        count=sum(r.count for r in rows),
        high=max(r.high for r in rows),
        clean=clean,
        max_rise=max_rise if clean else 0.0,
    )


class Piece(NamedTuple):
    """Hours ``start … stop − 1`` of a meter, from one hour row or one clean day row (a
    tuple: a store may build it straight from its rows, a year holding hundreds)."""

    start: int
    stop: int
    first: float
    first_count: int
    last: float
    readings: int
    high: float
    clean: bool
    max_rise: float

    @classmethod
    def of_hour(cls, row: HourRow) -> Piece:
        return cls(
            row.hour,
            row.hour + 1,
            row.last,
            row.count,
            row.last,
            row.count,
            row.high,
            row.high <= row.last,
            0.0,
        )

    @classmethod
    def of_day(cls, row: DayRow) -> Piece:
        if not row.clean:
            raise ValueError(f"day {row.day} is not clean: it is read hour by hour")
        start = row.day * HOURS_PER_DAY
        return cls(
            start,
            start + HOURS_PER_DAY,
            row.first,
            row.first_count,
            row.last,
            row.count,
            row.high,
            True,
            row.max_rise,
        )


def whole_days(cut_hours: Sequence[int]) -> list[int]:
    """Days lying whole between two consecutive cuts (epoch hours, increasing): the days
    a query may read from its day rows."""
    days: list[int] = []
    for a, b in itertools.pairwise(cut_hours):
        first, last = -(-a // HOURS_PER_DAY), b // HOURS_PER_DAY  # [first, last)
        days.extend(range(first, last))
    return days


def runs_of(pieces: Iterable[Piece], cut_hours: Sequence[int]) -> list[IndexSlot]:
    """The slots of ``pieces`` (sorted, not overlapping), adjacent clean ones joined into
    runs that never reach over a cut: a run's first hour is given as its own slot (its
    head), the rest as one slot of ``hours`` hours. Pieces outside ``[cuts[0],
    cuts[-1])`` and unclean ones stay hour slots. (Plain tuples in :class:`Piece`'s
    order are accepted: a store's rows as they come.)"""
    lo, hi = (cut_hours[0], cut_hours[-1]) if cut_hours else (0, 0)
    cuts = set(cut_hours)
    out: list[IndexSlot] = []
    joined = False  # a run is open: start … stop, its first and last values
    start = stop = first_count = count = 0
    first = last = max_rise = 0.0

    def close() -> None:
        if stop - start == 1:
            out.append(IndexSlot(hour_end(start), last, count))
            return
        out.append(IndexSlot(hour_end(start), first, first_count))
        out.append(
            IndexSlot(
                hour_end(stop - 1),
                last,
                count - first_count,
                hours=stop - start - 1,
                max_rise=max_rise,
            )
        )

    for p_start, p_stop, p_first, p_first_count, p_last, p_n, p_high, p_clean, p_rise in pieces:
        joinable = p_clean and lo <= p_start and p_stop <= hi
        if joinable and joined and p_start == stop and stop not in cuts and p_first >= last:
            rise = p_first - last
            max_rise = max(max_rise, p_rise, rise)
            stop, last, count = p_stop, p_last, count + p_n
            continue
        if joined:
            close()
        joined = bool(joinable)
        if joined:
            start, stop, first, first_count = p_start, p_stop, p_first, p_first_count
            last, count, max_rise = p_last, p_n, p_rise
            continue
        if p_stop - p_start != 1:
            raise ValueError(f"piece {p_start}–{p_stop} must be read hour by hour")
        out.append(IndexSlot(hour_end(p_start), p_last, p_n, p_high if p_high > p_last else None))
    if joined:
        close()
    return out
