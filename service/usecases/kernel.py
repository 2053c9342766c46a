"""The query kernel every use case shares: period bounds, energy per meter from the store's
slots, coverage weighted by duration, and the evidence (coverage, estimated share) behind
a figure.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from domain.balance import MeterEnergy, energy_per_period, slot_end
from domain.periods import Step, common_slot, period_bounds
from domain.quality import NeedsHourlySlots
from domain.rollup import HOUR
from domain.site import Meter, Site
from domain.store import IndexSeries, ReadingStore

MAX_PERIODS = 100_000
YEAR_S = 365.25 * 86400


class QueryError(ValueError):
    """The request is well-formed but cannot be answered as asked."""


def bounds_of(site: Site, start: datetime, end: datetime, step: Step) -> list[datetime]:
    if start.microsecond or end.microsecond:
        raise QueryError("start and end must be whole seconds")
    try:
        bounds = period_bounds(start, end, step, site.tz)
    except ValueError as exc:
        raise QueryError(str(exc)) from None
    if len(bounds) - 1 > MAX_PERIODS:
        raise QueryError(
            f"{len(bounds) - 1} periods asked; at most {MAX_PERIODS}: use a larger step"
        )
    return bounds


def meter_energies(
    site: Site, store: ReadingStore, meters: list[Meter], bounds: list[datetime]
) -> dict[str, MeterEnergy]:
    """Energy (or mass, volume) of each meter per period, aggregated in the store.

    With one-hour slots the store may answer clean stretches between the bounds as runs
    from its rollups; a meter whose runs cannot be judged exactly (a glitch next to one,
    a rise that may be a spike) is read again hour by hour: the figures are the same.
    """
    slot = common_slot(bounds)
    cuts = bounds if slot == HOUR else []
    by_quantity: dict[str, list[Meter]] = defaultdict(list)
    for m in meters:
        by_quantity[m.dimension].append(m)
    out: dict[str, MeterEnergy] = {}
    for quantity, group in by_quantity.items():
        # glitch_window_s and a slot before the start and three times that past the end,
        # so that the baseline and the last slots are judged (spike, glitch or reset?)
        # and a gap across either end split as inside a longer query: a day is the
        # same alone and in its month (energy_per_period).
        window = max(m.quality.glitch_window_s for m in group)
        reach = slot * (math.ceil(window / slot.total_seconds()) + 1)
        since = bounds[0] - reach
        series = _series(site, store, group, quantity, bounds, slot, reach, cuts)
        again = []
        for m in group:
            try:
                out[m.id] = energy_per_period(series[m.id], bounds, slot, m.quality, since)
            except NeedsHourlySlots:
                again.append(m)
        if again:
            hourly = _series(site, store, again, quantity, bounds, slot, reach, [])
            for m in again:
                out[m.id] = energy_per_period(hourly[m.id], bounds, slot, m.quality, since)
    return out


def _series(
    site: Site,
    store: ReadingStore,
    group: list[Meter],
    quantity: str,
    bounds: list[datetime],
    slot: timedelta,
    reach: timedelta,
    cuts: list[datetime],
) -> dict[str, IndexSeries]:
    """The slots of ``group`` from a reach before the bounds to past the reading that
    closes a gap across the end."""
    since, until = bounds[0] - reach, bounds[-1] + 3 * reach
    ids = [m.id for m in group]
    series = store.index_slots(site.id, ids, quantity, since, until, slot, cuts)
    # A gap across the end, however long: read on to two reaches past the reading
    # that closes it, so that it is judged and the gap split as in a longer query.
    needed: dict[str, datetime] = {}
    for meter_id in ids:
        s = series[meter_id]
        after = next((x.end for x in s.slots if x.end > bounds[-1]), None)
        if after is None and s.next_time is not None:
            after = slot_end(s.next_time, slot)
        if after is not None and after + 2 * reach > until:
            needed[meter_id] = after + 2 * reach
    if needed:
        more = store.index_slots(site.id, list(needed), quantity, until, max(needed.values()), slot)
        for meter_id in needed:
            s = series[meter_id]
            series[meter_id] = replace(s, slots=s.slots + more[meter_id].slots)
    return series


def _durations(bounds: list[datetime], i: int, j: int) -> list[float]:
    """Durations of periods ``i`` to ``j`` (excluded) [s]."""
    return [bounds[k + 1].timestamp() - bounds[k].timestamp() for k in range(i, j)]


def weighted_coverage(
    energy: MeterEnergy, bounds: list[datetime], i: int = 0, j: int | None = None
) -> float:
    """Coverage of periods ``i`` to ``j`` (excluded; default: all), weighted by duration."""
    j = len(bounds) - 1 if j is None else j
    durations = _durations(bounds, i, j)
    return sum(c * d for c, d in zip(energy.coverage[i:j], durations, strict=True)) / sum(durations)


@dataclass(frozen=True)
class Evidence:
    """What a figure stands on: the lowest coverage of its meters, the estimated share."""

    coverage: float
    estimated_wh: float


def evidence(energies: list[MeterEnergy], k: int | None, bounds: list[datetime]) -> Evidence:
    """Evidence of period ``k``, or of the whole query when ``k`` is None."""
    return span_evidence(energies, bounds, *((0, len(bounds) - 1) if k is None else (k, k + 1)))


def span_evidence(energies: list[MeterEnergy], bounds: list[datetime], i: int, j: int) -> Evidence:
    """Evidence of periods ``i`` to ``j`` (excluded): the weakest meter's coverage."""
    if not energies:
        return Evidence(coverage=0.0, estimated_wh=0.0)
    coverage = min(weighted_coverage(e, bounds, i, j) for e in energies)
    return Evidence(coverage, sum(sum(e.estimated_wh[i:j]) for e in energies))


def span_indexes(
    bounds: list[datetime], spans: Sequence[tuple[datetime, datetime]]
) -> list[tuple[int, int]]:
    """Period indexes ``(i, j)`` of each span, whose ends must be period bounds."""
    at = {b.timestamp(): k for k, b in enumerate(bounds)}
    out = []
    for a, b in spans:
        if a.timestamp() not in at or b.timestamp() not in at or a >= b:
            raise QueryError(f"span {a.isoformat()} → {b.isoformat()} is not made of whole periods")
        out.append((at[a.timestamp()], at[b.timestamp()]))
    return out
