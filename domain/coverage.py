"""Coverage: the share of a period backed by readings, whatever the slot width.

The store aggregates readings into epoch-aligned slots as wide as the period boundaries
allow: one hour for whole-hour boundaries, 30 or 15 minutes for half- and
quarter-hour timezones, down to one second for a range starting at 00:00:01. Counting
filled slots would make coverage depend on that width (hourly readings fill 1 slot in
3,600 one-second slots). Coverage is counted in *cells* instead: epoch-aligned hours,
the readings' expected cadence. A cell is covered when a slot inside it (and inside the
period) holds a reading; each covered cell counts for its overlap with the period, so a
partial hour at either end weighs its share.

A gap, likewise, is measured against the cell: two readings at most one cell apart are
contiguous (the energy between them is measured), further apart there is a gap (the
energy across it is estimated).

Pure functions; no I/O.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

#: The readings' expected cadence: coverage counts epoch-aligned hours.
CELL = timedelta(hours=1)
_CELL_S = int(CELL.total_seconds())


def _cell_of(end_s: int) -> int:
    """Index ``c`` of the cell ``(c·CELL, (c+1)·CELL]`` holding the slot ending at ``end_s``
    (a slot divides a cell, both aligned on the epoch)."""
    return (end_s - 1) // _CELL_S


def period_coverage(
    filled_ends: Iterable[datetime],
    bounds: Sequence[datetime],
    runs: Iterable[tuple[datetime, int]] = (),
) -> list[float]:
    """Share of each period ``(bounds[k], bounds[k+1]]`` backed by readings, in [0, 1].

    Parameters
    ----------
    filled_ends : iterable of datetime
        Ends of the slots that hold at least one reading (aware). A slot is no wider than
        a cell and aligned on the epoch; it belongs to the period holding its end.
    bounds : sequence of datetime
        Period boundaries, aware, increasing, whole seconds.
    runs : iterable of (datetime, int)
        Runs of whole cells all holding readings: the end of each and its number of
        cells [h]. A run lies inside one period and shares no cell with
        ``filled_ends`` (:func:`domain.rollup.runs_of` makes them so).

    Returns
    -------
    list of float
        Per period: the summed overlap of its covered cells with it, over its length.
    """
    edges = [int(b.astimezone(UTC).timestamp()) for b in bounds]
    n = len(edges) - 1
    covered: set[tuple[int, int]] = set()
    for e in filled_ends:
        end_s = int(e.astimezone(UTC).timestamp())
        k = bisect_left(edges, end_s) - 1
        if 0 <= k < n:
            covered.add((k, _cell_of(end_s)))
    seconds = [0] * n
    for k, c in covered:
        seconds[k] += min((c + 1) * _CELL_S, edges[k + 1]) - max(c * _CELL_S, edges[k])
    for e, cells in runs:
        end_s = int(e.astimezone(UTC).timestamp())
        k = bisect_left(edges, end_s) - 1
        if not (0 <= k < n and edges[k] <= end_s - cells * _CELL_S):
            raise ValueError(f"run of {cells} h ending {e.isoformat()} is not inside one period")
        seconds[k] += cells * _CELL_S
    return [seconds[k] / (edges[k + 1] - edges[k]) for k in range(n)]


def contiguous(since: datetime, until: datetime, slot: timedelta) -> bool:
    """Whether readings in the slots ending at ``since`` and ``until`` are close enough
    for the energy between them to count as measured: at most one slot or one cell
    apart, whichever is wider (hourly readings in 15-minute or 1-second slots are not a
    gap; a missing hour is)."""
    return until - since <= max(slot, CELL)


def coverage_percent(rate: float, decimals: int = 0) -> float:
    """``rate`` as a percentage rounded *down* to ``decimals`` [%].

    A coverage is compared with a threshold (``min_coverage``): rounded to nearest,
    0.949 against 0.95 would print "95 %, below 95 %". Rounded down, a coverage below a
    threshold that has ``decimals`` decimals in percent prints below it, and one at or
    above it prints at or above it; 0.9996 never prints as a complete "100 %".

    Parameters
    ----------
    rate : float
        Share in [0, 1] [-].
    decimals : int
        Decimals kept in the percentage (≥ 0).
    """
    if decimals < 0:
        raise ValueError(f"decimals must be ≥ 0, got {decimals}")
    scale = 10**decimals
    # round(…, 6) first: 0.97 * 100 is 96.99999999999999 in binary floating point.
    return float(math.floor(round(rate * 100 * scale, 6)) / scale)
