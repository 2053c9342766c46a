"""Site configuration: the sample parses, and every error names its key and reason."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import pytest

from domain.site import Carrier, ConfigError, Role, parse_sites, read_sites

SAMPLE = importlib.resources.files("microville") / "sites" / "microville112.toml"


def _site(
    site_id: str = "a",
    *,
    timezone: str = "Europe/Paris",
    lat: float = 47.47,
    extra: str = "",
    meters: str = "",
) -> str:
    """TOML for one site; ``meters`` is appended after the site's keys."""
    return f"""
[[sites]]
id = "{site_id}"
name = "Site {site_id}"
timezone = "{timezone}"
floor_area_m2 = 500
location = {{ lat = {lat}, lon = -0.55 }}
{extra}
{meters}
"""


def _meter(
    meter_id: str = "pv",
    *,
    role: str = "production",
    unit: str = "Wh",
    source: str = '{ topic = "a/pv", format = "senml", name = "energy" }',
    extra: str = "",
) -> str:
    return f"""
[[sites.meters]]
id = "{meter_id}"
role = "{role}"
unit = "{unit}"
source = {source}
{extra}
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_sites(text)
    return str(info.value).splitlines()


def _assert_error(text: str, key: str, reason: str) -> None:
    """Some line of the error reads ``<key>: …<reason>…``."""
    lines = _errors(text)
    assert any(line.startswith(f"{key}: ") and reason in line for line in lines), lines


# ---------------------------------------------------------------- valid configurations


def test_sample_config_parses() -> None:
    with importlib.resources.as_file(SAMPLE) as path:
        config = read_sites(path)
    assert [s.id for s in config.sites] == ["microville112"]
    site = config.site("microville112")
    assert site is not None
    assert site.timezone == "Europe/Paris"
    assert site.tz.key == "Europe/Paris"
    assert site.location.lat == pytest.approx(47.47)
    assert site.floor_area_m2 == 1200
    assert {m.id: m.role for m in site.meters} == {
        "pv": Role.PRODUCTION,
        "grid-import": Role.GRID_IMPORT,
        "grid-export": Role.GRID_EXPORT,
        "heat-pump": Role.SUBMETER,
    }
    heat_pump = next(m for m in site.meters if m.id == "heat-pump")
    assert heat_pump.unit == "kWh"
    assert heat_pump.dimension == "energy"
    assert heat_pump.source.format == "json"
    assert heat_pump.source.field == "aenergy.total"
    assert heat_pump.source.time_field == "ts"
    # Linky: two meters, one topic.
    assert {m.source.topic for m in site.meters_with(Role.GRID_IMPORT)} == {
        m.source.topic for m in site.meters_with(Role.GRID_EXPORT)
    }


def test_two_sites_each_found_by_id() -> None:
    text = _site("alpha", meters=_meter("pv", source='{ topic = "alpha/pv", format = "number" }'))
    text += _site(
        "beta",
        timezone="Asia/Kolkata",
        meters=_meter("pv", source='{ topic = "beta/pv", format = "number" }')
        + _meter(
            "hp",
            role="submeter",
            unit="kWh",
            source='{ topic = "beta/hp", format = "json", field = "e.total" }',
        ),
    )
    config = parse_sites(text)
    alpha, beta = config.site("alpha"), config.site("beta")
    assert alpha is not None and beta is not None
    assert alpha.timezone == "Europe/Paris"
    assert beta.timezone == "Asia/Kolkata"
    assert [m.source.topic for m in alpha.meters] == ["alpha/pv"]
    assert [m.id for m in beta.meters] == ["pv", "hp"]
    assert config.site("gamma") is None


def test_defaults_and_meters_with_filters_by_carrier() -> None:
    config = parse_sites(
        _site(
            meters=_meter("pv")
            + _meter(
                "gas",
                role="submeter",
                unit="m3",
                source='{ topic = "a/gas", format = "number" }',
                extra='carrier = "gas"',
            )
        )
    )
    site = config.sites[0]
    pv = site.meters[0]
    assert pv.carrier is Carrier.ELECTRICITY
    assert pv.source.type == "mqtt"
    assert site.location.altitude_m == 0.0
    assert site.meters_with(Role.SUBMETER) == []
    assert [m.id for m in site.meters_with(Role.SUBMETER, Carrier.GAS)] == ["gas"]
    assert site.meters[1].dimension == "volume"


def test_same_topic_same_format_on_two_meters_is_fine() -> None:
    config = parse_sites(
        _site(
            meters=_meter(
                "imp",
                role="grid_import",
                source='{ topic = "a/linky", format = "senml", name = "import" }',
            )
            + _meter(
                "exp",
                role="grid_export",
                source='{ topic = "a/linky", format = "senml", name = "export" }',
            )
        )
    )
    assert len(config.sites[0].meters) == 2


# ---------------------------------------------------------------- errors, by key path
# A site and a meter are named by their id ("site a, meter pv, unit: …"); by their
# place in the file only where they have no usable id.


def test_a_site_or_meter_without_an_id_is_named_by_its_place() -> None:
    text = _site(meters=_meter(unit="kwh")).replace('id = "a"\n', "", 1)
    lines = _errors(text)
    assert any(line.startswith("sites[0].id: ") for line in lines), lines
    assert any(line.startswith("sites[0].meters[0].unit: ") for line in lines), lines
    text = _site(meters=_meter(unit="kwh")).replace('id = "pv"\n', "", 1)
    lines = _errors(text)
    assert any(line.startswith("site a, meters[0].id: ") for line in lines), lines
    assert any(line.startswith("site a, meters[0].unit: ") for line in lines), lines


def test_unknown_key_in_site() -> None:
    _assert_error(_site(extra='foo = "bar"'), "site a, foo", "unknown key")


def test_unknown_key_in_meter() -> None:
    _assert_error(
        _site(meters=_meter("pv") + _meter("pv2", extra="scale_factor = 2")),
        "site a, meter pv2, scale_factor",
        "unknown key",
    )


def test_bad_timezone() -> None:
    _assert_error(
        _site(timezone="Europe/Pariss"),
        "site a, timezone",
        "unknown IANA timezone 'Europe/Pariss'",
    )


@pytest.mark.parametrize("timezone", ["", "../etc/passwd", "Europe"])
def test_timezone_that_is_not_a_zone_key_is_a_config_error(timezone: str) -> None:
    # "Europe" is a folder of the tz database, not a zone: it must still be reported
    # as a configuration error, not crash with an OS error.
    _assert_error(_site(timezone=timezone), "site a, timezone", "unknown IANA timezone")


@pytest.mark.parametrize("lat", [90.5, -91.0])
def test_latitude_out_of_range(lat: float) -> None:
    _assert_error(_site(lat=lat), "site a, location.lat", "90")


def test_duplicate_meter_id() -> None:
    text = _site(
        meters=_meter("pv")
        + _meter("pv", source='{ topic = "a/pv2", format = "senml", name = "energy" }')
    )
    _assert_error(text, "site a, meters", "duplicate meter id: pv")


def test_duplicate_site_id() -> None:
    _assert_error(_site("a") + _site("a"), "sites", "duplicate site id: a")


def test_bad_role_value() -> None:
    _assert_error(_site(meters=_meter(role="producer")), "site a, meter pv, role", "production")


def test_power_unit_for_a_balance_meter() -> None:
    _assert_error(
        _site(meters=_meter(unit="W")),
        "site a, meter pv",
        "role 'production' needs a cumulative index (energy or volume unit), not power (W)",
    )


def test_power_unit_for_a_measurement() -> None:
    config = parse_sites(_site(meters=_meter(unit="W", role="measurement")))
    assert config.sites[0].meters[0].dimension == "power"


def test_unknown_unit_for_a_meter() -> None:
    _assert_error(_site(meters=_meter(unit="kwh")), "site a, meter pv, unit", "unknown unit 'kwh'")


def test_senml_source_without_name() -> None:
    _assert_error(
        _site(meters=_meter(source='{ topic = "a/pv", format = "senml" }')),
        "site a, meter pv, source",
        "format 'senml' needs 'name'",
    )


def test_json_source_without_field() -> None:
    _assert_error(
        _site(meters=_meter(source='{ topic = "a/pv", format = "json" }')),
        "site a, meter pv, source",
        "format 'json' needs 'field'",
    )


def test_name_on_a_non_senml_source() -> None:
    _assert_error(
        _site(meters=_meter(source='{ topic = "a/pv", format = "number", name = "x" }')),
        "site a, meter pv, source",
        "'name' applies to format 'senml' only",
    )


@pytest.mark.parametrize("topic", ["a/+/pv", "a/#", "+"])
def test_topic_with_wildcard(topic: str) -> None:
    _assert_error(
        _site(meters=_meter(source=f'{{ topic = "{topic}", format = "number" }}')),
        "site a, meter pv, source.topic",
        "without wildcards",
    )


def test_same_topic_with_two_formats_across_sites() -> None:
    text = _site("a", meters=_meter(source='{ topic = "shared/t", format = "number" }'))
    text += _site("b", meters=_meter(source='{ topic = "shared/t", format = "json", field = "e" }'))
    lines = _errors(text)
    assert any(
        "'shared/t'" in line and "'number'" in line and "'json'" in line for line in lines
    ), lines


def test_invalid_toml() -> None:
    lines = _errors('[[sites]]\nid = "a\n')
    assert lines[0].startswith("not valid TOML")


def test_no_site_at_all() -> None:
    _assert_error("sites = []\n", "sites", "at least 1")


def test_every_problem_is_listed() -> None:
    lines = _errors(_site(lat=123.0, extra="foo = 1", meters=_meter(unit="kwh")))
    keys = {line.split(": ", 1)[0] for line in lines}
    assert {"site a, location.lat", "site a, foo", "site a, meter pv, unit"} <= keys


def test_read_sites_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(_site(extra="foo = 1"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        read_sites(path)
    first, *rest = str(info.value).splitlines()
    assert first == f"{path}:"
    assert "site a, foo: unknown key" in rest


def test_read_sites_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_sites(tmp_path / "absent.toml")
