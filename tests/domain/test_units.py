"""Unit normalisation: every value is stored in one base unit per dimension."""

from __future__ import annotations

import math

import pytest

from domain.units import UnitError, to_base, unit_of


@pytest.mark.parametrize(
    ("value", "symbol", "dimension", "expected"),
    [
        (1234.5, "Wh", "energy", 1234.5),  # base unit: unchanged
        (2.5, "kWh", "energy", 2500.0),  # 2.5 × 1000
        (12.345, "kWh", "energy", 12345.0),  # 12.345 × 1000
        (0.0035, "MWh", "energy", 3500.0),  # 0.0035 × 1 000 000
        (7200.0, "J", "energy", 2.0),  # 7200 J / 3600 J per Wh
        (300.0, "W", "power", 300.0),  # base unit: unchanged
        (1.2, "kW", "power", 1200.0),  # 1.2 × 1000
        (0.5, "MW", "power", 500_000.0),  # 0.5 × 1 000 000
        (250.0, "L", "volume", 0.25),  # 250 × 0.001 m3
        (2.0, "t", "mass", 2000.0),  # 2 × 1000 kg
        (0.0, "kWh", "energy", 0.0),
        (-3.0, "kWh", "energy", -3000.0),  # sign is the router's business, not the unit's
    ],
)
def test_to_base_converts_to_the_base_unit(
    value: float, symbol: str, dimension: str, expected: float
) -> None:
    assert to_base(value, symbol, dimension) == pytest.approx(expected, rel=1e-12)


def test_power_unit_for_an_energy_value_names_both_dimensions() -> None:
    with pytest.raises(UnitError) as info:
        to_base(350.0, "W", "energy")
    message = str(info.value)
    assert "'W'" in message
    assert "power" in message
    assert "energy" in message
    assert "Wh" in message  # says which unit was expected


def test_energy_unit_for_a_power_value_is_rejected() -> None:
    with pytest.raises(UnitError, match=r"'kWh' measures energy, expected power"):
        to_base(1.0, "kWh", "power")


@pytest.mark.parametrize("symbol", ["kwh", "KWH", "Wh ", "", "BTU", "m³"])
def test_unknown_unit_is_rejected_with_its_symbol(symbol: str) -> None:
    with pytest.raises(UnitError) as info:
        to_base(1.0, symbol, "energy")
    assert f"unknown unit {symbol!r}" in str(info.value)
    assert "kWh" in str(info.value)  # lists the known units


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_rejected(value: float) -> None:
    with pytest.raises(UnitError, match="not a finite number"):
        to_base(value, "kWh", "energy")


def test_unit_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        to_base(1.0, "furlong", "energy")


def test_unit_of_returns_dimension_and_factor() -> None:
    kwh = unit_of("kWh")
    assert (kwh.symbol, kwh.dimension, kwh.to_base) == ("kWh", "energy", 1000.0)
    with pytest.raises(UnitError):
        unit_of("kw")
