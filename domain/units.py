"""Units accepted on the way in and the base unit each is stored in.

Every reading is normalised to one base unit per dimension before storage:
energy in Wh, power in W, apparent power in VA, current in A, voltage in V,
frequency in Hz, volume in m3, mass in kg.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final


class UnitError(ValueError):
    """A unit that is unknown, or does not fit the quantity it was given for."""


@dataclass(frozen=True)
class Unit:
    """One accepted unit: its symbol, dimension and factor to the base unit."""

    symbol: str
    dimension: str
    to_base: float


BASE_UNITS: Final[dict[str, str]] = {
    "energy": "Wh",
    "power": "W",
    "apparent_power": "VA",
    "current": "A",
    "voltage": "V",
    "frequency": "Hz",
    "volume": "m3",
    "mass": "kg",
    "carbon_intensity": "kgCO2e/kWh",
}

UNITS: Final[dict[str, Unit]] = {
    u.symbol: u
    for u in (
        Unit("Wh", "energy", 1.0),
        Unit("kWh", "energy", 1e3),
        Unit("MWh", "energy", 1e6),
        Unit("J", "energy", 1.0 / 3600.0),
        Unit("W", "power", 1.0),
        Unit("kW", "power", 1e3),
        Unit("MW", "power", 1e6),
        Unit("VA", "apparent_power", 1.0),
        Unit("kVA", "apparent_power", 1e3),
        Unit("A", "current", 1.0),
        Unit("V", "voltage", 1.0),
        Unit("Hz", "frequency", 1.0),
        Unit("m3", "volume", 1.0),
        Unit("L", "volume", 1e-3),
        Unit("kg", "mass", 1.0),
        Unit("t", "mass", 1e3),
        Unit("kgCO2e/kWh", "carbon_intensity", 1.0),
        Unit("gCO2e/kWh", "carbon_intensity", 1e-3),
    )
}


def unit_of(symbol: str) -> Unit:
    """Return the :class:`Unit` for ``symbol``; raise :class:`UnitError` if unknown."""
    try:
        return UNITS[symbol]
    except KeyError:
        known = ", ".join(UNITS)
        raise UnitError(f"unknown unit {symbol!r} (known: {known})") from None


def to_base(value: float, symbol: str, dimension: str) -> float:
    """Convert ``value`` expressed in ``symbol`` to the base unit of ``dimension``.

    Parameters
    ----------
    value : float
        Finite number in unit ``symbol``.
    symbol : str
        Unit symbol, e.g. ``"kWh"``.
    dimension : str
        Expected dimension (``"energy"``, ``"power"``…); a unit of another
        dimension is an error, so a power value cannot land in an energy index.

    Returns
    -------
    float
        ``value`` in the base unit of ``dimension`` (Wh for energy, W for power).
    """
    if not math.isfinite(value):
        raise UnitError(f"value {value!r} is not a finite number")
    unit = unit_of(symbol)
    if unit.dimension != dimension:
        raise UnitError(
            f"unit {symbol!r} measures {unit.dimension}, expected {dimension} "
            f"(in {BASE_UNITS[dimension]} or a multiple)"
        )
    return value * unit.to_base
