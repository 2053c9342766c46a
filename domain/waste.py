"""Waste streams and indicators (Code de l'environnement L541-1; PEMD récolement).

Pure functions over explicit arguments; no I/O. Masses in kg, rates as fractions in
[0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum


class WasteStream(StrEnum):
    """Where a mass of waste (or a reused product) goes."""

    #: Réemploi: a product reused that never became waste. Prevention: outside the
    #: waste generated and outside the material recovery rate.
    REUSE = "reuse"
    #: Préparation en vue de la réutilisation: waste checked, cleaned or repaired to be
    #: used again. A waste treatment (L541-1): in the waste generated and in material
    #: recovery.
    PREPARATION_FOR_REUSE = "preparation_for_reuse"
    RECYCLING = "recycling"
    COMPOSTING = "composting"
    BACKFILL = "backfill"
    ENERGY_RECOVERY = "energy_recovery"
    LANDFILL = "landfill"  # residual: landfill or incineration without recovery


@dataclass(frozen=True)
class WasteIndicators:
    """Waste indicators of a period (works or operation).

    Parameters
    ----------
    generated_kg : float
        Waste generated [kg]: every stream but ``reuse`` (réemploi is prevention, not
        waste; ``preparation_for_reuse`` treats waste, so it counts).
    reused_kg : float
        Products reused (réemploi) [kg].
    residual_kg : float
        Landfilled or incinerated without recovery [kg].
    material_recovery_rate : float or None
        (preparation for reuse + recycling + composting + backfill) / generated, in
        [0, 1]. Energy recovery does not count (Code de l'environnement L541-1, target
        70 % for construction and demolition waste). Preparation for reuse is a waste
        treatment, in both terms; réemploi (``reuse``) is prevention, outside both: it
        is reported by ``reuse_rate``, so the rate never exceeds 1. ``None`` when
        nothing was generated.
    diversion_rate : float or None
        1 − landfill / generated, in [0, 1]: energy recovery counts as diverted.
        ``None`` when nothing was generated.
    reuse_rate : float or None
        reused / (reused + generated), in [0, 1]; ``None`` when both are 0.
    generated_kg_per_m2, residual_kg_per_m2 : float
        Per floor area [kg/m²].
    generated_kg_per_occupant, residual_kg_per_occupant : float or None
        Per occupant [kg]; ``None`` without a number of occupants.
    """

    generated_kg: float
    reused_kg: float
    residual_kg: float
    material_recovery_rate: float | None
    diversion_rate: float | None
    reuse_rate: float | None
    generated_kg_per_m2: float
    residual_kg_per_m2: float
    generated_kg_per_occupant: float | None
    residual_kg_per_occupant: float | None


#: Streams that count as material recovery (L541-1): not energy recovery.
MATERIAL_RECOVERY = (
    WasteStream.PREPARATION_FOR_REUSE,
    WasteStream.RECYCLING,
    WasteStream.COMPOSTING,
    WasteStream.BACKFILL,
)


def _rate(numerator: float, denominator: float) -> float | None:
    if denominator <= 0:
        return None
    return min(1.0, max(0.0, numerator / denominator))


def waste_indicators(
    mass_kg: Mapping[WasteStream, float], floor_area_m2: float, occupants: int | None
) -> WasteIndicators:
    """Waste indicators from the mass of each stream.

    Parameters
    ----------
    mass_kg : mapping of WasteStream to float
        Mass per stream [kg], ≥ 0; a stream left out weighs 0.
    floor_area_m2 : float
        Floor area [m²], > 0.
    occupants : int or None
        Number of occupants, > 0, or ``None`` when unknown.

    Raises
    ------
    ValueError
        On a negative or non-finite mass, a floor area ≤ 0 or occupants ≤ 0.
    """
    for stream, kg in mass_kg.items():
        if not (math.isfinite(kg) and kg >= 0):
            raise ValueError(f"mass of {stream.value} must be a finite mass ≥ 0 kg, got {kg!r}")
    if not (math.isfinite(floor_area_m2) and floor_area_m2 > 0):
        raise ValueError(f"floor_area_m2 must be > 0, got {floor_area_m2!r}")
    if occupants is not None and occupants <= 0:
        raise ValueError(f"occupants must be > 0, got {occupants!r}")

    def mass(stream: WasteStream) -> float:
        return mass_kg.get(stream, 0.0)

    recovered = math.fsum(mass(s) for s in MATERIAL_RECOVERY)
    landfill = mass(WasteStream.LANDFILL)
    reused = mass(WasteStream.REUSE)
    generated = recovered + mass(WasteStream.ENERGY_RECOVERY) + landfill
    diverted = _rate(landfill, generated)
    return WasteIndicators(
        generated_kg=generated,
        reused_kg=reused,
        residual_kg=landfill,
        material_recovery_rate=_rate(recovered, generated),
        diversion_rate=None if diverted is None else 1.0 - diverted,
        reuse_rate=_rate(reused, reused + generated),
        generated_kg_per_m2=generated / floor_area_m2,
        residual_kg_per_m2=landfill / floor_area_m2,
        generated_kg_per_occupant=None if occupants is None else generated / occupants,
        residual_kg_per_occupant=None if occupants is None else landfill / occupants,
    )


def collection_coverage(
    times_s: Sequence[float], start_s: float, end_s: float, interval_s: float
) -> float:
    """Share of ``[start_s, end_s)`` whose waste was weighed within ``interval_s``.

    Manual entries (and weighings) are events, not a continuous series: a moment ``t``
    is covered when an event lies in ``[t, t + interval_s)`` — the waste present at
    ``t`` was weighed by the next collection, which came in time. Each event at ``e``
    covers ``(e − interval_s, e]``; the coverage is the length of the union of those
    inside the period over the period's length. Events after the period count (the
    collection after its last days), events before it do not.

    Parameters
    ----------
    times_s : sequence of float
        Event times [s since the epoch], in any order.
    start_s, end_s : float
        The period [s since the epoch], ``end_s > start_s``.
    interval_s : float
        The longest expected time between two events [s], > 0.

    Returns
    -------
    float
        In [0, 1]: one entry in January over a year with weekly collections gives
        7 / 365, weekly entries all year round 1.
    """
    if not (end_s > start_s and interval_s > 0):
        raise ValueError(f"need end > start and interval > 0, got {start_s, end_s, interval_s}")
    covered = 0.0
    reach = start_s  # everything before it is counted already
    for e in sorted(t for t in times_s if t >= start_s):
        lo, hi = max(e - interval_s, reach), min(e, end_s)
        if hi > lo:
            covered += hi - lo
        reach = max(reach, hi)
        if e - interval_s >= end_s:
            break
    return covered / (end_s - start_s)
