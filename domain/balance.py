"""Energy per period from cumulative indexes, and the electricity balance.

Pure functions over explicit arguments; no I/O.
Nomenclature: ``*_wh`` energies in Wh, rates as fractions in [0, 1].
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.coverage import contiguous, period_coverage
from domain.quality import IndexJudge, IndexRules, NeedsHourlySlots
from domain.store import IndexSeries

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class MeterEnergy:
    """Energy of one meter per period, with what is known about its quality.

    Parameters
    ----------
    energy_wh : list of float
        Energy per period [Wh]: the index increases attributed to the period, never
        negative. Summed over the periods it equals the last good index minus the
        baseline, plus what resets and rollovers hide.
    coverage : list of float
        Share of each period backed by readings, in [0, 1]: its clock hours holding a
        reading, each weighted by its overlap with the period, whatever the slot width
        (:func:`domain.coverage.period_coverage`).
    estimated_wh : list of float
        Part of ``energy_wh`` spread over a gap (readings more than one hour, or one
        slot, apart: :func:`domain.coverage.contiguous`), per period [Wh],
        in [0, ``energy_wh``]. The rest was measured between adjacent slots.
    resets : int
        Backward jumps read as a counter restarting from zero (the new value is energy).
    rollovers : int
        Backward jumps read as the counter wrapping past ``IndexRules.rollover_at``.
    glitches : int
        Bad readings below the last good value, ignored; a run of them counts once —
        including drops the index came back from (not resets).
    spikes : int
        Bad readings above the last good value (an implausible rise, or one undone by a
        drop back), ignored; a run of bad readings counts once, as a glitch or a spike.
    """

    energy_wh: list[float]
    coverage: list[float]
    estimated_wh: list[float]
    resets: int
    rollovers: int
    glitches: int
    spikes: int = 0


def slot_end(t: datetime, slot: timedelta) -> datetime:
    """End of the epoch-aligned slot ``(e − slot, e]`` holding ``t`` (aware)."""
    us, width = (t - _EPOCH) // timedelta(microseconds=1), slot // timedelta(microseconds=1)
    return _EPOCH + timedelta(microseconds=-(-us // width) * width)


def _spread(
    delta: float,
    since: datetime,
    until: datetime,
    k: int,
    bounds: Sequence[datetime],
    slot: timedelta,
    energy: list[float],
    estimated: list[float],
) -> None:
    """Attribute ``delta`` [Wh], accrued over ``(since, until]``, to the periods.

    ``until`` is a slot end in period ``k`` (``len(energy)`` past the last bound).
    Between contiguous readings (at most an hour or a slot apart) it is measured and
    lands in ``k``; over a longer gap it is spread pro rata of time over the periods the
    gap overlaps, and all of it is estimated. The parts before ``bounds[0]`` and after
    ``bounds[-1]`` belong to no period here: the queries next to this one count them.
    """
    n = len(energy)
    if contiguous(since, until, slot):
        if k < n:
            energy[k] += delta
        return
    total = until - since
    last = min(k, n - 1)
    rest = delta
    for j in range(max(0, bisect_right(bounds, since) - 1), last + 1):
        share = (min(until, bounds[j + 1]) - max(since, bounds[j])) / total
        # Inside the window, the later slot's period takes the remainder, so the pieces
        # add up to delta.
        exact = j == k and since >= bounds[0]
        piece = max(0.0, rest) if exact else delta * share
        energy[j] += piece
        estimated[j] += piece
        rest -= piece


def energy_per_period(
    series: IndexSeries,
    bounds: Sequence[datetime],
    slot: timedelta,
    rules: IndexRules = IndexRules(),  # noqa: B008 - frozen, never mutated
    since: datetime | None = None,
) -> MeterEnergy:
    """Split a meter's index increase over the periods between ``bounds``.

    Each slot value is judged against the reference (the last good value, the baseline
    at ``bounds[0]`` being the first) by :class:`domain.quality.IndexJudge`, under
    ``rules``: a rise, a spike, a rollover, a reset or a glitch (the rules are written
    once, in :mod:`domain.quality`). A slot whose highest value is above its last (a
    drop inside it: a meter replaced mid-slot) is judged as two values at its end, its
    highest then its last.

    Spikes and glitches are ignored: the reference (value and time) stays the last good
    value, and energy resumes once the index is back above it. Slots after
    ``bounds[-1]`` are only looked at (to judge the last slots of the window the same
    way as inside a longer query), except the first good value there, judged too, so
    that a gap across the end is split pro rata as in a longer query, whatever its
    length, its part after the end left to the next query. Pass slots up to two
    *reaches* past the first slot after ``bounds[-1]`` (judging a slot may look two
    windows ahead). Slots from ``since`` to ``bounds[0]`` (the reach: ``glitch_window_s``
    rounded up to whole slots, plus one) are judged like the others but count for
    nothing (no energy, reset, glitch or spike): they make the reference at
    ``bounds[0]`` the one a longer query has there, not a bad baseline reading (a 0, a
    spike) that would turn the first rise into a reset or a spike. A gap across
    ``bounds[0]`` is split from the end of the baseline's slot
    (``series.baseline_time``), its part before ``bounds[0]`` left to the query before.
    So a period's energy, estimate and coverage are the same asked alone or inside a
    longer query of the same slot width. Without a baseline time, a gap across
    ``bounds[0]`` counts from ``bounds[0]`` and one across ``bounds[-1]`` is left to the
    next query: consecutive queries still add up to the longer one.

    An increase between values at most one hour (or one slot) apart lands in the later
    slot's period and is measured. Between values further apart (a gap, lost messages,
    a glitch in between), it is spread pro rata of time from the earlier value's slot
    end to the later one's over the periods this overlaps, and is all estimated. Because
    the index is cumulative, the sum over periods equals the last good index minus the
    baseline (plus the resets' and rollovers' corrections), whatever messages were lost.
    Energy before the first known value (no baseline) is unknown and not counted.

    Parameters
    ----------
    series : IndexSeries
        Last (and, after a drop inside it, highest) index value per slot [Wh], and the
        baseline at ``since`` with its time.
    bounds : sequence of datetime
        Period boundaries, aware, increasing; each ends a slot.
    slot : timedelta
        Slot width the series was aggregated with.
    rules : IndexRules
        How to read backward jumps and spikes [Wh, W, s].
    since : datetime, optional
        Start of the query the series was read from, at or before ``bounds[0]`` (a slot
        end), its baseline being the last value at or before it; default ``bounds[0]``.
    """
    # In UTC: aware datetimes sharing a tzinfo subtract by wall clock (a 25 h day
    # would count 24 h).
    bounds = [b.astimezone(UTC) for b in bounds]
    n = len(bounds) - 1
    energy = [0.0] * n
    estimated = [0.0] * n
    resets = rollovers = glitches = spikes = 0
    in_glitch = False
    # A slot whose value dropped inside it (a meter swapped mid-slot) is read as its
    # highest value, then its last: the old meter's last rise counts.
    ends: list[datetime] = []
    values: list[float] = []
    hours: list[int] = []
    max_rises: list[float] = []
    for s in series.slots:
        end = s.end.astimezone(UTC)
        if s.max_value is not None and s.max_value > s.last_value:
            ends.append(end)
            values.append(s.max_value)
            hours.append(1)
            max_rises.append(0.0)
        ends.append(end)
        values.append(s.last_value)
        hours.append(s.hours)
        max_rises.append(s.max_rise)
    start = bounds[0] if since is None else since.astimezone(UTC)
    if start > bounds[0]:
        raise ValueError(f"since {start.isoformat()} is after bounds[0]")
    reference = series.baseline  # last good value
    reference_end = start  # end of its slot (at or before it for a baseline)
    # Whether reference_end is the reference's slot end, not a bound on it (a baseline
    # of unknown time).
    known = series.starts_inside
    if series.starts_inside and series.slots:
        # A meter installed inside the query: its baseline is its first reading, made
        # within the first slot, not at the start; nothing is spread back before it.
        reference_end = max(start, ends[0] - slot)
    elif series.baseline is not None and series.baseline_time is not None:
        # The end of the baseline's slot: a gap from it is split as a longer query does.
        reference_end, known = min(start, slot_end(series.baseline_time, slot)), True

    judge = IndexJudge(ends, values, rules, slot, hours)
    # Measured rises in one period add up as one difference of indexes, last minus
    # first (not a sum of deltas): the same figure whether the hours come one by one or
    # as a run.
    measured = _Measured(energy)

    for i, end in enumerate(ends):
        # Slot (end - slot, end] lies in period k when bounds[k] < end <= bounds[k+1];
        # slots past the last bound are only looked at, to judge the ones before.
        k = bisect_left(bounds, end) - 1
        if k >= n and not known:
            break  # a gap from a baseline of unknown time: left to the next query
        inside = 0 <= k < n  # else read before or after the window: judged, not counted
        value = values[i]
        if reference is None:
            reference, reference_end, known = value, end, True
            continue
        if hours[i] > 1:
            _check_run(judge, i, reference, reference_end, k, n, in_glitch, max_rises[i])
            measured.rise(k, reference, value)
            reference, reference_end, known = value, end, True
            continue
        kind, delta = judge.judge(i, reference, reference_end)
        if kind in ("spike", "glitch"):
            # Counted once per episode, and only inside the window.
            first = 0 if in_glitch or not inside else 1
            spikes += first if kind == "spike" else 0
            glitches += first if kind == "glitch" else 0
            in_glitch = True
            continue
        rollovers += inside and kind == "rollover"
        resets += inside and kind == "reset"
        in_glitch = False
        if delta > 0 and k >= 0:
            # A gap across either end of the window is split pro rata, as the query on
            # the other side splits it; from a baseline of unknown time, from the start.
            since_ = reference_end if known else max(reference_end, bounds[0])
            if kind == "rise" and k < n and contiguous(since_, end, slot):
                measured.rise(k, reference, value)
            else:
                measured.flush()
                _spread(delta, since_, end, k, bounds, slot, energy, estimated)
        if k >= n:
            break  # the reading after the end: the gap to it is split
        reference, reference_end, known = value, end, True
    measured.flush()
    coverage = period_coverage(
        (s.end for s in series.slots if s.count > 0 and s.hours == 1),
        bounds,
        runs=((s.end, s.hours) for s in series.slots if s.hours > 1),
    )
    return MeterEnergy(
        energy_wh=energy,
        coverage=coverage,
        estimated_wh=estimated,
        resets=resets,
        rollovers=rollovers,
        glitches=glitches,
        spikes=spikes,
    )


class _Measured:
    """Measured energy of the current stretch of contiguous rises in one period: added
    to ``energy`` as last index minus first when the stretch ends."""

    def __init__(self, energy: list[float]) -> None:
        self.energy = energy
        self.k = -1
        self.first = self.last = 0.0

    def rise(self, k: int, reference: float, value: float) -> None:
        if k != self.k or reference != self.last:
            self.flush()
            self.k, self.first = k, reference
        self.last = value

    def flush(self) -> None:
        if self.k >= 0:
            self.energy[self.k] += self.last - self.first
        self.k = -1


def _check_run(
    judge: IndexJudge,
    i: int,
    reference: float,
    reference_end: datetime,
    k: int,
    n: int,
    in_glitch: bool,
    max_rise: float,
) -> None:
    """Raise :class:`NeedsHourlySlots` unless each hour of run ``i`` would be judged a
    rise, measured in period ``k``, as its hours read one by one are."""
    rules, hour = judge.rules, timedelta(hours=1)
    head = judge.values[i - 1] if i > 0 else None
    start = judge.ends[i] - judge.hours[i] * hour
    if judge.slot != hour or not 0 <= k < n or in_glitch:
        raise NeedsHourlySlots("a run outside the periods, after a glitch or not in hours")
    if head != reference or reference_end != start:
        raise NeedsHourlySlots("a run whose head was not a good reading")
    # Each rise is from the hour before: at most max_power_w over two hours.
    if rules.max_power_w is not None and max_rise > rules.max_power_w * 2:
        raise NeedsHourlySlots("a run with a rise that may be a spike")
    last = judge.values[i]
    if last == head:
        return  # flat: no rise to undo
    # The run's last rise is undone by the next different value within the window if
    # that value lands in [the value before it, reset_ratio × last): the value before it
    # is at least the head, so only a value from the head up is in doubt.
    for j in range(i + 1, len(judge.ends)):
        first = judge.run_start(j) or judge.ends[j]
        if first - judge.ends[i] > judge.window:
            return
        if judge.values[j] == last:
            continue
        low = judge.values[j] if judge.run_start(j) is None else last
        if head <= low < rules.reset_ratio * last:
            raise NeedsHourlySlots("a run whose last rise may be taken back")
        return


@dataclass(frozen=True)
class Balance:
    """Electricity balance of one period.

    Parameters
    ----------
    production_wh, import_wh, export_wh : float
        Metered energies [Wh].
    consumption_wh : float
        All uses [Wh] = import + production − export.
    net_wh : float
        Production − consumption [Wh] (= export − import); positive means
        energy-positive over the period.
    self_consumption : float or None
        (production − export) / production, in [0, 1]; ``None`` without production.
    self_sufficiency : float or None
        (production − export) / consumption, in [0, 1]; ``None`` without consumption.
    """

    production_wh: float
    import_wh: float
    export_wh: float
    consumption_wh: float
    net_wh: float
    self_consumption: float | None
    self_sufficiency: float | None


def _rate(numerator: float, denominator: float) -> float | None:
    if denominator <= 0:
        return None
    # Meters of slightly different coverage can push a ratio a hair outside [0, 1].
    return min(1.0, max(0.0, numerator / denominator))


def balance(production_wh: float, import_wh: float, export_wh: float) -> Balance:
    """Electricity balance from the three metered energies [Wh]."""
    consumption = import_wh + production_wh - export_wh
    self_used = production_wh - export_wh
    return Balance(
        production_wh=production_wh,
        import_wh=import_wh,
        export_wh=export_wh,
        consumption_wh=consumption,
        net_wh=production_wh - consumption,
        self_consumption=_rate(self_used, production_wh),
        self_sufficiency=_rate(self_used, consumption),
    )
