"""Operational, avoided and net carbon, and hourly grid carbon intensity.

Pure functions over explicit arguments; no I/O.
Nomenclature: ``*_wh`` energies in Wh, ``*_kg`` masses of CO2 equivalent in kg,
intensities in kgCO2e/kWh.

An hourly intensity (e.g. RTE éCO2mix ``taux_co2``) is a direct-emission production
intensity, not a life-cycle factor; a constant factor (``factors.carbon_factor``) is
passed as a sequence repeating the same value. Say which one a figure uses.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

HOUR = timedelta(hours=1)


def _weighted_kg(
    energy_wh: Sequence[float], intensity_kg_per_kwh: Sequence[float], what: str
) -> float:
    if len(energy_wh) != len(intensity_kg_per_kwh):
        raise ValueError(
            f"{len(energy_wh)} hours of {what} but {len(intensity_kg_per_kwh)} intensities"
        )
    terms = []
    for i, (wh, kg_per_kwh) in enumerate(zip(energy_wh, intensity_kg_per_kwh, strict=True)):
        if not (math.isfinite(wh) and wh >= 0):
            raise ValueError(f"hour {i}: {what} must be a finite energy ≥ 0 Wh, got {wh!r}")
        if not (math.isfinite(kg_per_kwh) and kg_per_kwh >= 0):
            raise ValueError(f"hour {i}: intensity must be ≥ 0 kgCO2e/kWh, got {kg_per_kwh!r}")
        terms.append(wh / 1000 * kg_per_kwh)
    return math.fsum(terms)


def operational_co2_kg(
    import_wh_per_hour: Sequence[float], intensity_kg_per_kwh_per_hour: Sequence[float]
) -> float:
    """Emissions of the imported energy, hour by hour [kgCO2e].

    Σ_h import_h [kWh] × intensity_h [kgCO2e/kWh].

    Parameters
    ----------
    import_wh_per_hour : sequence of float
        Imported energy of each hour [Wh], ≥ 0.
    intensity_kg_per_kwh_per_hour : sequence of float
        Carbon intensity of each hour [kgCO2e/kWh], same length; for a constant
        factor, the same value repeated.

    Raises
    ------
    ValueError
        On sequences of different lengths, a negative or non-finite value.
    """
    return _weighted_kg(import_wh_per_hour, intensity_kg_per_kwh_per_hour, "import")


def avoided_co2_kg(
    export_wh_per_hour: Sequence[float], intensity_kg_per_kwh_per_hour: Sequence[float]
) -> float:
    """Emissions avoided on the grid by the exported energy, hour by hour [kgCO2e].

    Σ_h export_h [kWh] × intensity_h [kgCO2e/kWh]. Reported on its own (see
    :func:`net_carbon`); never subtracted from the operational emissions elsewhere.

    Raises
    ------
    ValueError
        On sequences of different lengths, a negative or non-finite value.
    """
    return _weighted_kg(export_wh_per_hour, intensity_kg_per_kwh_per_hour, "export")


@dataclass(frozen=True)
class NetCarbon:
    """Carbon balance of a period [kgCO2e].

    Parameters
    ----------
    operational_kg : float
        Emissions of the imported energy [kgCO2e].
    embodied_amortised_kg : float
        Embodied carbon of the works, the period's share [kgCO2e].
    avoided_kg : float
        Emissions avoided by the exported energy [kgCO2e], reported explicitly.
    net_kg : float
        operational + embodied − avoided [kgCO2e]; ≤ 0 means zero carbon.
    """

    operational_kg: float
    embodied_amortised_kg: float
    avoided_kg: float
    net_kg: float


def net_carbon(operational_kg: float, embodied_amortised_kg: float, avoided_kg: float) -> NetCarbon:
    """Net carbon = operational + embodied (amortised) − avoided [kgCO2e].

    Raises
    ------
    ValueError
        On a negative or non-finite term.
    """
    for name, kg in (
        ("operational_kg", operational_kg),
        ("embodied_amortised_kg", embodied_amortised_kg),
        ("avoided_kg", avoided_kg),
    ):
        if not (math.isfinite(kg) and kg >= 0):
            raise ValueError(f"{name} must be a finite mass ≥ 0 kg, got {kg!r}")
    return NetCarbon(
        operational_kg=operational_kg,
        embodied_amortised_kg=embodied_amortised_kg,
        avoided_kg=avoided_kg,
        net_kg=operational_kg + embodied_amortised_kg - avoided_kg,
    )


def _utc(t: datetime, what: str) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{what} {t.isoformat()} must be timezone-aware")
    return t.astimezone(UTC)


def hourly_intensity(
    samples: Sequence[tuple[datetime, float]], hours: Sequence[datetime]
) -> list[float | None]:
    """Mean carbon intensity of each hour, from timestamped samples.

    Parameters
    ----------
    samples : sequence of (datetime, float)
        Aware instants and intensities [gCO2e/kWh] (éCO2mix: every 15 minutes), in
        any order.
    hours : sequence of datetime
        Aware starts of the hours wanted; hour ``h`` covers [h, h + 1 h) in absolute
        time (the repeated autumn hour is two hours).

    Returns
    -------
    list of float or None
        Per hour, the mean of the samples inside it [kgCO2e/kWh] (g → kg: ÷ 1000);
        ``None`` for an hour without a sample.

    Raises
    ------
    ValueError
        On a naive datetime, or a negative or non-finite sample.
    """
    points = sorted((_utc(t, "sample"), g) for t, g in samples)
    for t, g in points:
        if not (math.isfinite(g) and g >= 0):
            raise ValueError(f"sample at {t.isoformat()}: intensity must be ≥ 0, got {g!r}")
    times = [t for t, _ in points]
    result: list[float | None] = []
    for hour in hours:
        # In UTC: adding an hour to a local aware datetime adds wall-clock time.
        start = _utc(hour, "hour")
        lo, hi = bisect_left(times, start), bisect_left(times, start + HOUR)
        inside = [g for _, g in points[lo:hi]]
        result.append(math.fsum(inside) / len(inside) / 1000 if inside else None)
    return result
