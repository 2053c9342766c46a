"""Energy per period from cumulative indexes, and the electricity balance.

Pure functions over explicit arguments; no I/O.
Nomenclature: ``*_wh`` energies in Wh, rates as fractions in [0, 1].
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from microville.domain.store import IndexSeries


@dataclass(frozen=True)
class MeterEnergy:
    """Energy of one meter per period.

    Parameters
    ----------
    energy_wh : list of float
        Energy per period [Wh], the increase of the index across the period.
    coverage : list of float
        Share of each period's slots that had at least one reading, in [0, 1].
    backward_jumps : int
        Times the index went down (reset or glitch); such a drop is never counted as
        negative energy.
    """

    energy_wh: list[float]
    coverage: list[float]
    backward_jumps: int


def energy_per_period(
    series: IndexSeries, bounds: Sequence[datetime], slot: timedelta
) -> MeterEnergy:
    """Split a meter's index increase over the periods between ``bounds``.

    The increase between two consecutive known index values is attributed to the
    period holding the later value's slot end. Because the index is cumulative, the
    sum over periods equals the index at the end minus the index at the start,
    whatever messages were lost in between.

    Parameters
    ----------
    series : IndexSeries
        Last index value per slot [Wh], and the baseline at ``bounds[0]``.
    bounds : sequence of datetime
        Period boundaries, aware, increasing; each ends a slot.
    slot : timedelta
        Slot width the series was aggregated with.
    """
    # In UTC: aware datetimes sharing a tzinfo subtract by wall clock (a 25 h day
    # would count 24 h).
    bounds = [b.astimezone(UTC) for b in bounds]
    n = len(bounds) - 1
    energy = [0.0] * n
    filled = [0] * n
    jumps = 0
    previous = series.baseline
    for s in series.slots:
        # Slot (end - slot, end] lies in period k when bounds[k] < end <= bounds[k+1].
        k = bisect_left(bounds, s.end) - 1
        if not 0 <= k < n:
            continue
        if s.count > 0:
            filled[k] += 1
        if previous is not None:
            delta = s.last_value - previous
            if delta >= 0:
                energy[k] += delta
            else:
                jumps += 1
        previous = s.last_value
    coverage = [filled[k] / max(1, round((bounds[k + 1] - bounds[k]) / slot)) for k in range(n)]
    return MeterEnergy(energy_wh=energy, coverage=coverage, backward_jumps=jumps)


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
