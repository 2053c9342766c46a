"""Waste use case behind the proof: operation waste per stream from the scales and the
manual entries, the renovation ledger apart, with the coverage of each period."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.balance import MeterEnergy
from domain.periods import Step, common_slot
from domain.records import Phase, WasteEntry
from domain.site import Meter, Role, Site
from domain.store import Ledger, ReadingStore, SumSlot
from domain.waste import (
    WasteIndicators,
    WasteStream,
    collection_coverage,
    waste_indicators,
)
from service.usecases.kernel import bounds_of, meter_energies, weighted_coverage

DAY_S = 86400


@dataclass(frozen=True)
class WastePeriod:
    """One period's waste: operation per stream, the renovation ledger apart."""

    start: datetime
    end: datetime
    mass_kg: dict[WasteStream, float]
    indicators: WasteIndicators
    renovation_kg: dict[WasteStream, float]
    renovation: WasteIndicators
    coverage: float


@dataclass(frozen=True)
class RenovationLine:
    """A line of the works' récolement (Cerfa 16288): a stream (recovery route), its
    destination and material, with the mass and the number of entries behind it."""

    stream: WasteStream
    destination: str
    material: str
    mass_kg: float
    entries: int


@dataclass(frozen=True)
class WasteReport:
    site: Site
    start: datetime
    end: datetime
    mass_kg: dict[WasteStream, float]
    indicators: WasteIndicators
    renovation_kg: dict[WasteStream, float]
    renovation: WasteIndicators
    coverage: float
    sources: dict[str, int] = field(default_factory=dict)
    #: Ids of the period's ledger rows that do not read as entries: the figures
    #: cannot be proven while they stand.
    unreadable_entries: list[int] = field(default_factory=list)
    #: Per period of ``step`` (empty without a step).
    step: Step | None = None
    periods: list[WastePeriod] = field(default_factory=list)
    renovation_lines: list[RenovationLine] = field(default_factory=list)


def _renovation_lines(entries: Sequence[WasteEntry]) -> list[RenovationLine]:
    lines: dict[tuple[WasteStream, str, str], list[float]] = defaultdict(list)
    for e in entries:
        lines[(e.stream, e.destination, e.material)].append(e.mass_kg)
    order = list(WasteStream)
    return [
        RenovationLine(stream, destination, material, math.fsum(kg), len(kg))
        for (stream, destination, material), kg in sorted(
            lines.items(), key=lambda item: (order.index(item[0][0]), *item[0][1:])
        )
    ]


def _masses(
    edges: list[float],
    counters: list[Meter],
    energies: dict[str, MeterEnergy],
    weighers: list[Meter],
    weighings: dict[str, list[SumSlot]],
    entries: list[WasteEntry],
) -> tuple[list[dict[WasteStream, float]], list[dict[WasteStream, float]]]:
    """Operational and renovation mass per stream in each period between ``edges``
    [POSIX s], from the counter scales' rises, the weighings and the entries [kg]."""
    n = len(edges) - 1

    def period_of(t: float) -> int | None:
        k = bisect_right(edges, t) - 1
        return k if 0 <= k < n else None

    operation: list[dict[WasteStream, float]] = [defaultdict(float) for _ in range(n)]
    renovation: list[dict[WasteStream, float]] = [defaultdict(float) for _ in range(n)]
    for m in counters:
        assert m.stream is not None
        for k in range(n):
            operation[k][m.stream] += energies[m.id].energy_wh[k]  # kg: the base unit
    for m in weighers:
        assert m.stream is not None
        for w in weighings[m.id]:
            if (at := period_of(w.start.timestamp())) is not None:
                operation[at][m.stream] += w.total
    for e in entries:
        if (at := period_of(e.time.timestamp())) is not None:
            target = renovation if e.phase is Phase.RENOVATION else operation
            target[at][e.stream] += e.mass_kg

    return operation, renovation


def waste_report(
    site: Site,
    store: ReadingStore,
    ledger: Ledger,
    start: datetime,
    end: datetime,
    step: Step | None = None,
) -> WasteReport:
    """Operational waste per stream from the scales (waste meters) and the entries; the
    renovation ledger apart, also line by line (stream, destination, material); per
    period of ``step`` when given.

    Mass: a counter scale's rise (its cumulative index, quality rules applied), a
    weighing scale's weighings added up in the store, the entries of the period.
    Coverage, the lowest over the sources: each counter scale's share of slots with a
    reading; for each weighing scale (within its ``weighing_interval_days``) and for
    the manual entries (within ``waste_entry_interval_days``, unless 0), the share of
    the period weighed within that interval
    (:func:`~domain.waste.collection_coverage`); 0 with no source."""
    bounds = bounds_of(site, start, end, step or Step.YEAR)
    n = len(bounds) - 1
    edges = [b.timestamp() for b in bounds]
    scales = [m for m in site.meters if m.role is Role.WASTE]
    counters = [m for m in scales if m.scale == "counter"]
    weighers = [m for m in scales if m.scale == "weighing"]
    interval_s = site.waste_entry_interval_days * DAY_S
    energies = meter_energies(site, store, counters, bounds) if counters else {}
    slot = common_slot(bounds)
    # Weighings after the end count for the coverage of the last days, not for the mass.
    longest = max([interval_s, *(m.weighing_interval_days * DAY_S for m in weighers)])
    ahead = slot * math.ceil(longest / slot.total_seconds())
    weighings = (
        store.slot_sums(
            site.id, [m.id for m in weighers], "mass", bounds[0], bounds[-1] + ahead, slot
        )
        if weighers
        else {}
    )
    records, unreadable = ledger.waste_records(
        site.id, bounds[0], bounds[-1] + timedelta(seconds=interval_s)
    )
    inside = [e for _, e in records if e.time < bounds[-1]]
    collections = sorted(e.time.timestamp() for _, e in records if e.phase is Phase.OPERATION)
    weighed = {m.id: [w.start.timestamp() for w in weighings[m.id]] for m in weighers}

    operation, renovation = _masses(edges, counters, energies, weighers, weighings, inside)

    def coverage(i: int, j: int) -> float:
        parts = [weighted_coverage(energies[m.id], bounds, i, j) for m in counters]
        parts += [
            collection_coverage(weighed[m.id], edges[i], edges[j], m.weighing_interval_days * DAY_S)
            for m in weighers
        ]
        if interval_s:
            parts.append(collection_coverage(collections, edges[i], edges[j], interval_s))
        return min(parts, default=0.0)

    def summed(masses: list[dict[WasteStream, float]], i: int, j: int) -> dict[WasteStream, float]:
        out: dict[WasteStream, float] = defaultdict(float)
        for k in range(i, j):
            for stream, kg in masses[k].items():
                out[stream] += kg
        return dict(out)

    def period(i: int, j: int) -> WastePeriod:
        op, ren = summed(operation, i, j), summed(renovation, i, j)
        return WastePeriod(
            bounds[i],
            bounds[j],
            op,
            waste_indicators(op, site.floor_area_m2, site.occupants),
            ren,
            waste_indicators(ren, site.floor_area_m2, site.occupants),
            coverage(i, j),
        )

    total = period(0, n)
    return WasteReport(
        site,
        bounds[0],
        bounds[-1],
        total.mass_kg,
        total.indicators,
        total.renovation_kg,
        total.renovation,
        total.coverage,
        {
            "scales": len(scales),
            "entries": sum(1 for e in inside if e.phase is Phase.OPERATION),
            "renovation_entries": sum(1 for e in inside if e.phase is Phase.RENOVATION),
        },
        [i for i, _ in unreadable],
        step,
        [period(k, k + 1) for k in range(n)] if step is not None else [],
        _renovation_lines([e for e in inside if e.phase is Phase.RENOVATION]),
    )
