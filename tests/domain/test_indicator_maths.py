"""Indicator maths: factors, energy, carbon, materials, waste, targets, éCO2mix import."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.carbon import (
    avoided_co2_kg,
    hourly_intensity,
    net_carbon,
    operational_co2_kg,
)
from domain.eco2mix import parse_eco2mix_csv
from domain.energy import CarrierEnergy, energy_balance, uses_breakdown
from domain.factors import (
    CARBON_FACTORS,
    PRIMARY_ENERGY_FACTORS,
    Factor,
    carbon_factor,
    primary_factor,
)
from domain.materials import Material, embodied, parse_materials_csv
from domain.site import Carrier, Site, Use
from domain.targets import Targets, Verdict, judge
from domain.waste import WasteStream, collection_coverage, waste_indicators

PARIS = ZoneInfo("Europe/Paris")
E, G, H, W = Carrier.ELECTRICITY, Carrier.GAS, Carrier.HEAT, Carrier.WOOD

energies = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)


def make_site(**overrides: Any) -> Site:
    return Site.model_validate(
        {
            "id": "microville112",
            "name": "Microville 112",
            "timezone": "Europe/Paris",
            "location": {"lat": 45.0, "lon": 4.0},
            "floor_area_m2": 1000,
            **overrides,
        }
    )


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# ================================================================ factors


def test_default_factors_are_the_stated_ones_with_their_source() -> None:
    site = make_site()
    elec = primary_factor(site, E)
    assert elec == Factor(2.3, "kWhep/kWh", "RE2020 (arrêté du 4 août 2021)")
    assert primary_factor(site, G) == Factor(1.0, "kWhep/kWh", "RE2020 (arrêté du 4 août 2021)")
    carbon = carbon_factor(site, E)
    assert carbon is not None
    assert (carbon.value, carbon.unit) == (0.079, "kgCO2e/kWh")
    assert "electricity for heating" in carbon.source
    assert "Base Empreinte" in carbon.source
    assert "carbon_factors_kg_per_kwh.electricity" in carbon.source
    assert carbon_factor(site, G) == CARBON_FACTORS[G]
    assert CARBON_FACTORS[G].value == 0.227
    assert CARBON_FACTORS[W].value == 0.030
    assert "pellets and logs" in CARBON_FACTORS[W].source


def test_carriers_without_a_stated_default_have_none() -> None:
    site = make_site()
    assert set(PRIMARY_ENERGY_FACTORS) == {E, G}
    assert set(CARBON_FACTORS) == {E, G, W}
    assert primary_factor(site, H) is None  # heat networks: per network
    assert primary_factor(site, W) is None
    assert primary_factor(site, Carrier.OTHER) is None
    assert carbon_factor(site, H) is None
    assert carbon_factor(site, Carrier.OTHER) is None


def test_site_overrides_take_precedence() -> None:
    site = make_site(
        primary_energy_factors={"heat": 0.6, "electricity": 2.58},
        carbon_factors_kg_per_kwh={"electricity": 0.052},
    )
    assert primary_factor(site, H) == Factor(0.6, "kWhep/kWh", "site configuration")
    assert primary_factor(site, E) == Factor(2.58, "kWhep/kWh", "site configuration")
    assert carbon_factor(site, E) == Factor(0.052, "kgCO2e/kWh", "site configuration")
    assert carbon_factor(site, G) == CARBON_FACTORS[G]  # not overridden: the default


# ================================================================ energy


def test_energy_balance_two_carriers_hand_computed() -> None:
    b = energy_balance(
        {
            E: CarrierEnergy(import_wh=5_000, export_wh=3_000, production_wh=10_000),
            G: CarrierEnergy(import_wh=8_000, export_wh=0, production_wh=0),
        },
        {E: 2.3, G: 1.0},
        floor_area_m2=100,
    )
    assert b.consumption_wh[E] == pytest.approx(12_000)  # 5000 + 10000 − 3000
    assert b.consumption_wh[G] == pytest.approx(8_000)  # 8000 + 0 − 0
    assert b.total_consumption_wh == pytest.approx(20_000)
    assert b.total_production_wh == pytest.approx(10_000)
    assert b.final_net_wh == pytest.approx(-10_000)  # 10000 − 20000
    # 2.3 × (3000 − 5000) + 1.0 × (0 − 8000) = −4600 − 8000
    assert b.primary_net_whep == pytest.approx(-12_600)
    assert b.final_net_wh_per_m2 == pytest.approx(-100)  # −10000 / 100
    assert b.primary_net_whep_per_m2 == pytest.approx(-126)  # −12600 / 100
    assert b.missing_factors == ()


def test_energy_balance_energy_positive() -> None:
    b = energy_balance(
        {E: CarrierEnergy(import_wh=2_000, export_wh=15_000, production_wh=20_000)},
        {E: 2.3},
        floor_area_m2=1_000,
    )
    assert b.consumption_wh[E] == pytest.approx(7_000)  # 2000 + 20000 − 15000
    assert b.final_net_wh == pytest.approx(13_000)  # 20000 − 7000
    # 2.3 × (15000 − 2000): the 5000 Wh self-consumed weigh nothing
    assert b.primary_net_whep == pytest.approx(29_900)
    assert b.primary_net_whep_per_m2 == pytest.approx(29.9)


def test_energy_balance_without_a_needed_factor_has_no_primary_net() -> None:
    b = energy_balance(
        {
            E: CarrierEnergy(import_wh=1_000, export_wh=0, production_wh=0),
            H: CarrierEnergy(import_wh=4_000, export_wh=0, production_wh=0),
        },
        {E: 2.3},
        floor_area_m2=10,
    )
    assert b.primary_net_whep is None
    assert b.primary_net_whep_per_m2 is None
    assert b.missing_factors == (H,)
    assert b.final_net_wh == pytest.approx(-5_000)  # 0 − (1000 + 4000)


def test_a_carrier_exchanging_nothing_needs_no_factor() -> None:
    # Solar thermal heat produced and used on site: no import, no export.
    b = energy_balance(
        {
            E: CarrierEnergy(import_wh=1_000, export_wh=0, production_wh=0),
            H: CarrierEnergy(import_wh=0, export_wh=0, production_wh=3_000),
        },
        {E: 2.3},
        floor_area_m2=10,
    )
    assert b.primary_net_whep == pytest.approx(-2_300)  # 2.3 × (0 − 1000)
    assert b.consumption_wh[H] == pytest.approx(3_000)
    assert b.final_net_wh == pytest.approx(-1_000)  # 3000 − (1000 + 3000)


def test_energy_balance_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="water is not an energy carrier"):
        energy_balance({Carrier.WATER: CarrierEnergy(1, 0, 0)}, {}, 10)
    with pytest.raises(ValueError, match="floor_area_m2"):
        energy_balance({}, {}, 0)
    with pytest.raises(ValueError, match="primary factor"):
        energy_balance({E: CarrierEnergy(1, 0, 0)}, {E: -1.0}, 10)
    with pytest.raises(ValueError, match="import_wh"):
        CarrierEnergy(import_wh=-1, export_wh=0, production_wh=0)
    with pytest.raises(ValueError, match="export_wh"):
        CarrierEnergy(import_wh=0, export_wh=math.nan, production_wh=0)


def test_uses_breakdown_hand_computed() -> None:
    uses = uses_breakdown(12_000, {Use.HEATING: 5_000, Use.LIGHTING: 2_000})
    # 12000 − (5000 + 2000) = 5000 unmetered
    assert uses == {"heating": 5_000, "lighting": 2_000, "unmetered": 5_000}
    assert not uses.submeters_exceed_consumption
    assert uses.excess_wh == 0


def test_uses_breakdown_never_negative() -> None:
    uses = uses_breakdown(10_000, {Use.HEATING: 7_000, Use.HOT_WATER: 4_000})
    # 10000 − 11000 = −1000: remainder 0, flagged, excess 1000
    assert uses["unmetered"] == 0
    assert uses.submeters_exceed_consumption
    assert uses.excess_wh == pytest.approx(1_000)
    assert uses_breakdown(500, {}) == {"unmetered": 500}
    with pytest.raises(ValueError, match="heating"):
        uses_breakdown(1_000, {Use.HEATING: -1})


@given(
    st.dictionaries(
        st.sampled_from([E, G, H, W, Carrier.OTHER]),
        st.tuples(energies, energies, energies),
        max_size=5,
    ),
    st.floats(min_value=1, max_value=1e6),
)
def test_consumption_identity_per_carrier(
    raw: dict[Carrier, tuple[float, float, float]], area: float
) -> None:
    per_carrier = {c: CarrierEnergy(*v) for c, v in raw.items()}
    b = energy_balance(per_carrier, dict.fromkeys(raw, 1.0), area)
    for carrier, e in per_carrier.items():
        assert b.consumption_wh[carrier] == e.import_wh + e.production_wh - e.export_wh
    exports = math.fsum(e.export_wh for e in per_carrier.values())
    imports = math.fsum(e.import_wh for e in per_carrier.values())
    assert b.final_net_wh == pytest.approx(exports - imports, abs=1e-3)
    assert b.final_net_wh_per_m2 == pytest.approx(b.final_net_wh / area)


@given(energies, energies, energies, st.floats(min_value=0, max_value=5))
def test_primary_net_for_electricity_only(
    import_wh: float, export_wh: float, production_wh: float, factor: float
) -> None:
    e = CarrierEnergy(import_wh, export_wh, production_wh)
    b = energy_balance({E: e}, {E: factor}, 1.0)
    assert b.primary_net_whep is not None
    # f × (production − consumption) = f × (export − import)
    expected = factor * (production_wh - e.consumption_wh)
    assert b.primary_net_whep == pytest.approx(expected, abs=1e-3 * max(1.0, factor))


# ================================================================ carbon


def test_operational_and_avoided_co2_hour_by_hour() -> None:
    # 1 kWh × 0.05 + 2 kWh × 0.1 + 0 kWh × 0.2 = 0.05 + 0.2 = 0.25 kg
    assert operational_co2_kg([1_000, 2_000, 0], [0.05, 0.1, 0.2]) == pytest.approx(0.25)
    # 0 kWh × 0.03 + 5 kWh × 0.04 = 0.2 kg
    assert avoided_co2_kg([0, 5_000], [0.03, 0.04]) == pytest.approx(0.2)


def test_constant_factor_is_a_repeated_intensity() -> None:
    imports = [1_000.0, 3_000.0]
    # (1 + 3) kWh × 0.079 = 0.316 kg
    assert operational_co2_kg(imports, [0.079] * len(imports)) == pytest.approx(0.316)
    assert operational_co2_kg([], []) == 0


def test_co2_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2 hours of import but 1 intensities"):
        operational_co2_kg([1, 2], [0.1])
    with pytest.raises(ValueError, match="hour 1"):
        operational_co2_kg([1, -2], [0.1, 0.1])
    with pytest.raises(ValueError, match="intensity"):
        avoided_co2_kg([1], [-0.1])


def test_net_carbon_reports_avoided_separately() -> None:
    n = net_carbon(operational_kg=100, embodied_amortised_kg=50, avoided_kg=30)
    assert n.net_kg == pytest.approx(120)  # 100 + 50 − 30
    assert (n.operational_kg, n.embodied_amortised_kg, n.avoided_kg) == (100, 50, 30)
    assert net_carbon(10, 5, 20).net_kg == pytest.approx(-5)  # 10 + 5 − 20
    with pytest.raises(ValueError, match="avoided_kg"):
        net_carbon(1, 1, -1)


def test_hourly_intensity_means_per_hour_in_kg() -> None:
    samples = [
        (utc(2024, 1, 15, 0, 0), 40.0),
        (utc(2024, 1, 15, 0, 45), 52.0),  # any order
        (utc(2024, 1, 15, 0, 15), 44.0),
        (utc(2024, 1, 15, 0, 30), 48.0),
        (utc(2024, 1, 15, 1, 0), 60.0),  # h + 1 h belongs to the next hour
    ]
    hours = [utc(2024, 1, 15, 0), utc(2024, 1, 15, 1), utc(2024, 1, 15, 2)]
    result = hourly_intensity(samples, hours)
    # (40 + 44 + 48 + 52) / 4 = 46 g/kWh = 0.046 kg/kWh; 60 g = 0.06 kg; none: None
    assert result[0] == pytest.approx(0.046)
    assert result[1] == pytest.approx(0.060)
    assert result[2] is None


def test_hourly_intensity_repeated_autumn_hour_is_two_hours() -> None:
    # 2023-10-29 in Paris: 02:00+02:00 = 00:00Z and 02:00+01:00 = 01:00Z.
    first = utc(2023, 10, 29, 0).astimezone(PARIS)
    second = utc(2023, 10, 29, 1).astimezone(PARIS)
    assert first.hour == second.hour == 2
    samples = [(utc(2023, 10, 29, 0, 30), 30.0), (utc(2023, 10, 29, 1, 30), 50.0)]
    assert hourly_intensity(samples, [first, second]) == [
        pytest.approx(0.030),
        pytest.approx(0.050),
    ]


def test_hourly_intensity_needs_aware_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        hourly_intensity([(datetime(2024, 1, 1), 1.0)], [utc(2024, 1, 1)])
    with pytest.raises(ValueError, match="timezone-aware"):
        hourly_intensity([], [datetime(2024, 1, 1)])


# ================================================================ materials


def material(**fields: Any) -> Material:
    base: dict[str, Any] = {
        "name": "CLT panel",
        "category": "structure",
        "quantity": 20.0,
        "unit": "m3",
        "factor_kgco2e_per_unit": 150.0,
        "reused": False,
        "biogenic_kgco2e_per_unit": 700.0,
        "source": "INIES FDES 12345 (2022)",
    }
    return Material.model_validate({**base, **fields})


MATERIALS = [
    material(),
    material(
        name="Reused doors",
        category="joinery",
        quantity=10.0,
        unit="unit",
        factor_kgco2e_per_unit=2.0,  # transport only
        new_factor_kgco2e_per_unit=60.0,
        reused=True,
        biogenic_kgco2e_per_unit=0.0,
        source="transport estimate; new: INIES FDES 678",
    ),
    material(
        name="Reused bricks",
        category="masonry",
        quantity=1_000.0,
        unit="kg",
        factor_kgco2e_per_unit=0.0,
        reused=True,
        biogenic_kgco2e_per_unit=0.0,
        source="réemploi on site",
    ),
]


def test_embodied_hand_computed() -> None:
    e = embodied(MATERIALS, study_period_years=50, period_years=1)
    assert e.total_kg == pytest.approx(3_020)  # 20 × 150 + 10 × 2 + 1000 × 0
    assert e.amortised_kg == pytest.approx(60.4)  # 3020 × 1 / 50
    assert e.biogenic_stored_kg == pytest.approx(14_000)  # 20 × 700
    assert e.if_new_kg == pytest.approx(3_600)  # 20 × 150 + 10 × 60 + 1000 × 0
    assert e.avoided_by_reuse_kg == pytest.approx(580)  # 3600 − 3020
    # The bricks are reused without a new factor: their avoided carbon is unknown, not 0.
    assert e.reused_without_new_factor == ("Reused bricks",)
    assert embodied(MATERIALS, 50, 0.5).amortised_kg == pytest.approx(30.2)  # 3020 × 0.5 / 50
    assert embodied([], 50, 1).total_kg == 0


def test_embodied_rejects_bad_periods() -> None:
    with pytest.raises(ValueError, match="study_period_years"):
        embodied(MATERIALS, 0, 1)
    with pytest.raises(ValueError, match="period_years"):
        embodied(MATERIALS, 50, -1)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"quantity": 0.0}, "quantity"),
        ({"unit": "m²"}, "unit"),
        ({"factor_kgco2e_per_unit": -1.0}, "factor_kgco2e_per_unit"),
        ({"new_factor_kgco2e_per_unit": -1.0}, "new_factor_kgco2e_per_unit"),
        ({"biogenic_kgco2e_per_unit": -5.0}, "biogenic_kgco2e_per_unit"),
        ({"source": "  "}, "source"),
        ({"quantity": "3"}, "quantity"),  # strict: no string coercion
        ({"reused": "yes"}, "reused"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_material_validation(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        material(**fields)
    assert field in str(info.value)


def test_new_factor_is_for_reused_products_only() -> None:
    with pytest.raises(ValidationError, match="applies to a reused product"):
        material(new_factor_kgco2e_per_unit=90.0)
    assert material(new_factor_kgco2e_per_unit=150.0).reused is False  # same factor: fine


def test_material_is_frozen() -> None:
    with pytest.raises(ValidationError):
        MATERIALS[0].quantity = 1  # type: ignore[misc]


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.001, max_value=1e6),
            st.floats(min_value=0, max_value=1e4),
        ),
        max_size=10,
    ),
    st.integers(min_value=1, max_value=200),
)
def test_amortised_embodied_over_the_study_period_is_the_total(
    rows: list[tuple[float, float]], years: int
) -> None:
    items = [material(quantity=q, factor_kgco2e_per_unit=f) for q, f in rows]
    total = embodied(items, years, years).total_kg
    per_year = [embodied(items, years, 1).amortised_kg for _ in range(years)]
    assert math.fsum(per_year) == pytest.approx(total, rel=1e-9, abs=1e-9)
    assert embodied(items, years, years).amortised_kg == pytest.approx(total)


GOOD_COMMA_CSV = """\
name,category,quantity,unit,factor_kgco2e_per_unit,new_factor_kgco2e_per_unit,reused,biogenic_kgco2e_per_unit,source
CLT panel,structure,20,m3,150,,false,700,INIES FDES 12345 (2022)
Reused doors,joinery,10,unit,2,60,true,0,"transport estimate, new: INIES FDES 678"

Reused bricks,masonry,1000,kg,0,,yes,,réemploi on site
"""

GOOD_SEMICOLON_CSV = (
    "\ufeffsource;name;category;quantity;unit;factor_kgco2e_per_unit;"
    "new_factor_kgco2e_per_unit;reused;biogenic_kgco2e_per_unit;\r\n"
    "FDES 1;Fibre de bois;isolant;1 250,5;kg;0,85;;non;1,6;\r\n"
    "réemploi;Parquet, chêne;finition;40;m2;0;25,5;oui;12;\r\n"
)


def test_parse_materials_comma_csv() -> None:
    items = parse_materials_csv(GOOD_COMMA_CSV)
    assert [m.name for m in items] == ["CLT panel", "Reused doors", "Reused bricks"]
    assert items[1].source == "transport estimate, new: INIES FDES 678"
    assert items[1].new_factor_kgco2e_per_unit == 60
    assert items[2].reused and items[2].biogenic_kgco2e_per_unit == 0
    assert items[0].new_factor_kgco2e_per_unit is None
    assert embodied(items, 50, 1).total_kg == pytest.approx(3_020)  # as MATERIALS


def test_parse_materials_semicolon_csv_with_bom_decimal_comma_and_trailing_separator() -> None:
    wood, parquet = parse_materials_csv(GOOD_SEMICOLON_CSV)
    assert wood.quantity == pytest.approx(1_250.5)
    assert wood.factor_kgco2e_per_unit == pytest.approx(0.85)
    assert wood.biogenic_kgco2e_per_unit == pytest.approx(1.6)
    assert not wood.reused
    assert parquet.name == "Parquet, chêne"
    assert parquet.reused and parquet.new_factor_kgco2e_per_unit == pytest.approx(25.5)
    assert parquet.unit == "m2"


def test_parse_materials_reports_every_bad_row_with_line_and_field() -> None:
    text = (
        "name,category,quantity,unit,factor_kgco2e_per_unit,new_factor_kgco2e_per_unit,"
        "reused,biogenic_kgco2e_per_unit,source\n"
        "ok,structure,1,kg,1,,false,0,FDES\n"  # line 2: fine
        "bad qty,structure,abc,kg,1,,false,0,FDES\n"  # line 3
        "neg,structure,-2,kg,1,,false,0,FDES\n"  # line 4
        "unit,structure,1,m²,1,,maybe,0,FDES\n"  # line 5: two fields
        "\n"  # line 6: blank
        "short,structure,1\n"  # line 7
        "nosource,structure,1,kg,1,,false,0,\n"  # line 8
        "too many,structure,1,kg,1,,false,0,FDES,extra\n"  # line 9
        "new?,structure,1,kg,1,5,false,0,FDES\n"  # line 10: new factor, not reused
    )
    with pytest.raises(ValueError) as info:
        parse_materials_csv(text)
    message = str(info.value)
    assert "line 2" not in message
    assert "line 3: quantity: not a number: 'abc'" in message
    assert "line 4: quantity: Input should be greater than 0 (got -2.0)" in message
    assert "line 5: reused: expected true or false, got 'maybe'" in message
    assert "line 5: unit" not in message  # conversions fail first: reported per field
    assert "line 7: unit, factor_kgco2e_per_unit" in message
    assert "line 8: source:" in message
    assert "line 9: row: 10 fields" in message
    assert "line 10: row: new_factor_kgco2e_per_unit applies to a reused product" in message


def test_parse_materials_reports_unit_with_its_line() -> None:
    text = GOOD_COMMA_CSV.replace(",m3,", ",m²,")
    with pytest.raises(ValueError, match=r"line 2: unit: Input should be 'kg'"):
        parse_materials_csv(text)


def test_parse_materials_header_problems() -> None:
    with pytest.raises(ValueError, match="empty materials file"):
        parse_materials_csv("\n\n")
    with pytest.raises(ValueError, match=r"line 1: header: unknown column\(s\) colour; missing"):
        parse_materials_csv("name,colour\nx,red\n")
    assert parse_materials_csv(GOOD_COMMA_CSV.splitlines()[0]) == []


# ================================================================ waste


def test_waste_indicators_hand_computed() -> None:
    w = waste_indicators(
        {
            WasteStream.REUSE: 500,
            WasteStream.RECYCLING: 3_000,
            WasteStream.COMPOSTING: 200,
            WasteStream.BACKFILL: 800,
            WasteStream.ENERGY_RECOVERY: 600,
            WasteStream.LANDFILL: 400,
        },
        floor_area_m2=1_000,
        occupants=20,
    )
    assert w.generated_kg == pytest.approx(5_000)  # 3000 + 200 + 800 + 600 + 400, not reuse
    assert w.reused_kg == 500
    assert w.material_recovery_rate == pytest.approx(0.8)  # (3000 + 200 + 800) / 5000
    assert w.diversion_rate == pytest.approx(0.92)  # 1 − 400 / 5000
    assert w.reuse_rate == pytest.approx(500 / 5_500)  # 500 / (500 + 5000)
    assert w.residual_kg == 400
    assert w.generated_kg_per_m2 == pytest.approx(5.0)  # 5000 / 1000
    assert w.residual_kg_per_m2 == pytest.approx(0.4)  # 400 / 1000
    assert w.generated_kg_per_occupant == pytest.approx(250)  # 5000 / 20
    assert w.residual_kg_per_occupant == pytest.approx(20)  # 400 / 20


def test_energy_recovery_is_not_material_recovery() -> None:
    w = waste_indicators({WasteStream.ENERGY_RECOVERY: 1_000}, 100, None)
    assert w.material_recovery_rate == 0  # 0 / 1000: L541-1
    assert w.diversion_rate == 1  # 1 − 0 / 1000: still kept out of landfill
    assert w.generated_kg_per_occupant is None
    assert w.residual_kg_per_occupant is None


def test_preparation_for_reuse_is_waste_and_material_recovery() -> None:
    w = waste_indicators(
        {
            WasteStream.PREPARATION_FOR_REUSE: 300,
            WasteStream.RECYCLING: 300,
            WasteStream.LANDFILL: 400,
            WasteStream.REUSE: 250,  # réemploi: prevention, in neither term
        },
        100,
        None,
    )
    assert w.generated_kg == pytest.approx(1_000)  # 300 + 300 + 400
    assert w.material_recovery_rate == pytest.approx(0.6)  # (300 + 300) / 1000
    assert w.diversion_rate == pytest.approx(0.6)  # 1 − 400 / 1000
    assert w.reuse_rate == pytest.approx(250 / 1_250)


def test_material_recovery_target_defaults_to_l541_1() -> None:
    t = Targets()
    assert t.material_recovery_rate_min == 0.7
    assert "L541-1" in Targets.model_fields["material_recovery_rate_min"].description  # type: ignore[operator]
    assert t.diversion_rate_min is None  # a diversion target only when asked for


DAY = 86_400.0
YEAR_2026 = (0.0, 365 * DAY)  # any 365-day period: only the differences matter


def test_collection_coverage_hand_computed() -> None:
    week = 7 * DAY
    # One entry on day 14 of a year of weekly collections: it weighs days 7-14 only.
    assert collection_coverage([14 * DAY], *YEAR_2026, week) == pytest.approx(7 / 365)
    # Every Monday (day 4, 11, …) and one the next year: all of it.
    mondays = [(4 + 7 * w) * DAY for w in range(53)]
    assert collection_coverage(mondays, *YEAR_2026, week) == pytest.approx(1.0)
    # Without the collection of the next year, the days after the last Monday (day 361)
    # are not weighed yet: 4 of 365.
    assert collection_coverage(mondays[:-1], *YEAR_2026, week) == pytest.approx(361 / 365)
    # Fortnightly collections judged against a weekly interval: half of each fortnight.
    fortnights = [(14 * w) * DAY for w in range(1, 28)]
    assert collection_coverage(fortnights, *YEAR_2026, week) == pytest.approx(0.5, abs=0.01)
    assert collection_coverage(fortnights, *YEAR_2026, 2 * week) == pytest.approx(1.0)
    # Before the period: nothing; at its very start: an instant, nothing.
    assert collection_coverage([-DAY, 0.0], *YEAR_2026, week) == 0.0
    assert collection_coverage([], *YEAR_2026, week) == 0.0
    with pytest.raises(ValueError):
        collection_coverage([DAY], 0.0, DAY, 0.0)


@given(
    st.lists(st.floats(min_value=-30 * DAY, max_value=400 * DAY), max_size=30),
    st.floats(min_value=-30 * DAY, max_value=400 * DAY),
    st.floats(min_value=1.0, max_value=30 * DAY),
)
def test_collection_coverage_is_a_fraction_and_more_entries_never_lower_it(
    times: list[float], extra: float, interval: float
) -> None:
    c = collection_coverage(times, *YEAR_2026, interval)
    assert 0.0 <= c <= 1.0 + 1e-12
    assert collection_coverage([*times, extra], *YEAR_2026, interval) >= c - 1e-12
    assert collection_coverage(times, *YEAR_2026, interval * 2) >= c - 1e-12


def test_waste_rates_without_waste() -> None:
    only_reuse = waste_indicators({WasteStream.REUSE: 300}, 100, 5)
    assert only_reuse.generated_kg == 0
    assert only_reuse.material_recovery_rate is None
    assert only_reuse.diversion_rate is None
    assert only_reuse.reuse_rate == 1  # 300 / (300 + 0)
    nothing = waste_indicators({}, 100, 5)
    assert (nothing.material_recovery_rate, nothing.diversion_rate, nothing.reuse_rate) == (
        None,
        None,
        None,
    )
    assert nothing.residual_kg_per_occupant == 0


def test_waste_indicators_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="landfill"):
        waste_indicators({WasteStream.LANDFILL: -1}, 100, None)
    with pytest.raises(ValueError, match="floor_area_m2"):
        waste_indicators({}, 0, None)
    with pytest.raises(ValueError, match="occupants"):
        waste_indicators({}, 100, 0)


@given(st.dictionaries(st.sampled_from(list(WasteStream)), energies))
def test_waste_rates_are_fractions(mass: dict[WasteStream, float]) -> None:
    w = waste_indicators(mass, 100, 3)
    for rate in (w.material_recovery_rate, w.diversion_rate, w.reuse_rate):
        assert rate is None or 0 <= rate <= 1
    if w.generated_kg > 0:
        assert w.material_recovery_rate is not None and w.diversion_rate is not None
        assert w.material_recovery_rate <= w.diversion_rate + 1e-12  # recovered ⊂ diverted


# ================================================================ targets


def test_judge_hand_cases() -> None:
    assert judge(10, 0, "min", coverage=1, min_coverage=0.95) is Verdict.MET
    assert judge(0, 0, "min", coverage=1, min_coverage=0.95) is Verdict.MET  # ≥
    assert judge(-1, 0, "min", coverage=1, min_coverage=0.95) is Verdict.NOT_MET
    assert judge(0.69, 0.7, "min", coverage=0.99, min_coverage=0.95) is Verdict.NOT_MET
    assert judge(120, 0, "max", coverage=1, min_coverage=0.95) is Verdict.NOT_MET
    assert judge(0, 0, "max", coverage=1, min_coverage=0.95) is Verdict.MET  # ≤
    assert judge(10, 0, "min", coverage=0.94, min_coverage=0.95) is Verdict.NOT_PROVABLE
    assert judge(None, 0, "min", coverage=1, min_coverage=0.95) is Verdict.NOT_PROVABLE
    assert judge(math.nan, 0, "max", coverage=1, min_coverage=0.95) is Verdict.NOT_PROVABLE
    assert Verdict.NOT_PROVABLE.value == "not_provable"
    with pytest.raises(ValueError, match="direction"):
        judge(1, 0, "above", 1, 0.95)  # type: ignore[arg-type]


finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)
fraction = st.floats(min_value=0, max_value=1)


@given(st.one_of(st.none(), finite), finite, st.sampled_from(["min", "max"]), fraction, fraction)
def test_judge_is_consistent(
    value: float | None,
    threshold: float,
    direction: Literal["min", "max"],
    coverage: float,
    min_coverage: float,
) -> None:
    verdict = judge(value, threshold, direction, coverage, min_coverage)
    if value is None or coverage < min_coverage:
        assert verdict is Verdict.NOT_PROVABLE
        return
    other: Literal["min", "max"] = "max" if direction == "min" else "min"
    opposite = judge(value, threshold, other, coverage, min_coverage)
    if direction == "min":
        assert (verdict is Verdict.MET) == (value >= threshold)
    else:
        assert (verdict is Verdict.MET) == (value <= threshold)
    if value != threshold:
        assert {verdict, opposite} == {Verdict.MET, Verdict.NOT_MET}
    else:
        assert verdict is opposite is Verdict.MET
    # More coverage never turns a provable verdict unprovable.
    assert judge(value, threshold, direction, 1.0, min_coverage) is verdict


# ================================================================ éCO2mix import


def test_parse_eco2mix_open_data_comma() -> None:
    text = (
        "date_heure,taux_co2\n"
        "2024-01-15T00:00:00+01:00,45\n"
        "2024-01-15T00:15:00+01:00,\n"  # no rate yet: skipped
        "2024-01-15T00:30:00+01:00,47.5\n"
    )
    assert parse_eco2mix_csv(text) == [
        (utc(2024, 1, 14, 23, 0), 45.0),
        (utc(2024, 1, 14, 23, 30), 47.5),
    ]


def test_parse_eco2mix_open_data_semicolon_with_bom_and_trailing_separator() -> None:
    text = (
        "\ufeffperimetre;nature;date_heure;consommation;taux_co2;\n"
        "France;Données temps réel;2024-07-01T12:00:00+02:00;45000;21;\n"
        "\ufeffFrance;Données temps réel;2024-07-01T11:45:00+02:00;44800;22;\n"
    )
    assert parse_eco2mix_csv(text) == [  # in time order
        (utc(2024, 7, 1, 9, 45), 22.0),
        (utc(2024, 7, 1, 10, 0), 21.0),
    ]


DOWNLOAD_HEADER = (
    "Périmètre;Nature;Date;Heures;Consommation;Prévision J-1;Prévision J;Fioul;Charbon;"
    "Gaz;Nucléaire;Eolien;Solaire;Hydraulique;Pompage;Bioénergies;Ech. physiques;"
    "Taux de Co2;Ech. comm. Angleterre\n"
)


def download_row(day: str, hours: str, rate: str) -> str:
    return f"France;Données définitives;{day};{hours};45000;{';' * 12}{rate};-1000\n"


def test_parse_eco2mix_download_format_local_time() -> None:
    text = (
        DOWNLOAD_HEADER
        + download_row("2023-06-01", "00:00", "32")
        + download_row("2023-06-01", "00:15", "")
        + download_row("2023-06-01", "00:30", "ND")
        + download_row("2023-06-01", "01:00", "30,5")
        + "RTE ne pourra être tenu responsable de l'usage qui pourrait être fait des données\n"
    )
    # Summer time: Paris = UTC + 2 h.
    assert parse_eco2mix_csv(text) == [
        (utc(2023, 5, 31, 22, 0), 32.0),
        (utc(2023, 5, 31, 23, 0), 30.5),
    ]


def test_parse_eco2mix_download_format_comma_separated() -> None:
    text = DOWNLOAD_HEADER.replace(";", ",") + download_row("2024-01-15", "08:00", "61").replace(
        ";", ","
    )
    assert parse_eco2mix_csv(text) == [(utc(2024, 1, 15, 7, 0), 61.0)]  # winter: UTC + 1 h


def test_parse_eco2mix_autumn_repeated_hour_by_row_order() -> None:
    # 01:45 summer, 02:xx summer, 02:xx again (winter), 03:00 winter
    walls = ["01:45", "02:00", "02:15", "02:30", "02:45", "02:00", "02:15", "02:30", "02:45"]
    walls.append("03:00")
    rates = [str(10 + i) for i in range(len(walls))]
    text = DOWNLOAD_HEADER + "".join(
        download_row("2023-10-29", w, r) for w, r in zip(walls, rates, strict=True)
    )
    samples = parse_eco2mix_csv(text)
    times = [t for t, _ in samples]
    # 01:45+02:00 = 23:45Z the day before; 02:00+02:00 = 00:00Z; second 02:00+01:00 = 01:00Z;
    # 03:00+01:00 = 02:00Z: ten quarter-hours in a row, none lost.
    assert times[0] == utc(2023, 10, 28, 23, 45)
    assert times[1] == utc(2023, 10, 29, 0, 0)
    assert times[5] == utc(2023, 10, 29, 1, 0)
    assert times[-1] == utc(2023, 10, 29, 2, 0)
    assert all(b - a == timedelta(minutes=15) for a, b in pairwise(times))
    assert [r for _, r in samples] == [float(r) for r in rates]
    hours = [utc(2023, 10, 29, 0).astimezone(PARIS), utc(2023, 10, 29, 1).astimezone(PARIS)]
    # (11 + 12 + 13 + 14) / 4 = 12.5 g; (15 + 16 + 17 + 18) / 4 = 16.5 g
    assert hourly_intensity(samples, hours) == [pytest.approx(0.0125), pytest.approx(0.0165)]


def test_parse_eco2mix_autumn_hour_with_an_empty_first_occurrence() -> None:
    # The first 02:00 has no rate: it still is the first occurrence.
    text = (
        DOWNLOAD_HEADER
        + download_row("2023-10-29", "02:00", "")
        + download_row("2023-10-29", "02:00", "40")
    )
    assert parse_eco2mix_csv(text) == [(utc(2023, 10, 29, 1, 0), 40.0)]


def test_parse_eco2mix_reports_each_malformed_row_with_its_line() -> None:
    text = (
        DOWNLOAD_HEADER  # line 1
        + download_row("2023-06-01", "00:00", "32")  # line 2: fine
        + download_row("01/06/2023", "00:15", "32")  # line 3: date format
        + download_row("2023-06-01", "0h30", "32")  # line 4: time format
        + download_row("2023-06-01", "00:45", "abc")  # line 5: rate
        + download_row("2023-06-01", "01:00", "-3")  # line 6: negative
        + "France;Données définitives;2023-06-01\n"  # line 7: short
        + download_row("2024-03-31", "02:15", "20")  # line 8: spring gap
        + download_row("2023-06-31", "01:00", "20")  # line 9: no such day
    )
    with pytest.raises(ValueError) as info:
        parse_eco2mix_csv(text)
    message = str(info.value)
    assert "line 2" not in message
    assert "line 3: Date is not YYYY-MM-DD: '01/06/2023'" in message
    assert "line 4: Heures is not HH:MM: '0h30'" in message
    assert "line 5: taux de CO2 is not a number: 'abc'" in message
    assert "line 6: taux de CO2 must be ≥ 0" in message
    assert "line 7: 3 field(s), expected at least 18" in message
    assert "line 8: 2024-03-31 02:15 does not exist in Europe/Paris" in message
    assert "line 9: Date/Heures 2023-06-31 01:00" in message


def test_parse_eco2mix_third_occurrence_and_naive_time_are_errors() -> None:
    text = DOWNLOAD_HEADER + download_row("2023-10-29", "02:30", "1") * 3
    with pytest.raises(ValueError, match="line 4: 2023-10-29 02:30 appears more than twice"):
        parse_eco2mix_csv(text)
    with pytest.raises(ValueError, match="line 2: date_heure has no UTC offset"):
        parse_eco2mix_csv("date_heure;taux_co2\n2024-01-01T00:00:00;40\n")
    with pytest.raises(ValueError, match="line 3: date_heure is not an ISO 8601"):
        parse_eco2mix_csv("date_heure;taux_co2\n2024-01-01T00:00:00Z;40\nyesterday;41\n")


def test_parse_eco2mix_header_problems() -> None:
    with pytest.raises(ValueError, match="empty éCO2mix file"):
        parse_eco2mix_csv("")
    with pytest.raises(ValueError, match="line 2: header: expected columns"):
        parse_eco2mix_csv("\nHorodate;Valeur\n2024-01-01T00:00:00+01:00;270\n")
