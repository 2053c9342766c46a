"""Energy and carbon endpoints on both stores: index spikes and comebacks, gas in m³,
sub-meters per carrier, and the autumn clock change (issue #4 audit)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers.support import SITE_S1

from domain.eco2mix import parse_eco2mix_csv
from domain.readings import INTENSITY_METER, INTENSITY_QUANTITY, Reading
from domain.site import ConfigError, parse_sites
from domain.store import ReadingStore
from microville.settings import Settings
from service.app import create_app
from stores.ledger import SqliteLedger

H = timedelta(hours=1)
QUARTER = timedelta(minutes=15)
# 2026-01-05 00:00 in Paris.
T0 = datetime(2026, 1, 4, 23, tzinfo=UTC)
DAY = {"start": "2026-01-05", "end": "2026-01-06", "step": "day"}

IMPORT_METER = """
[[sites.meters]]
id = "in"
role = "grid_import"
source = { topic = "s1/in", format = "number" }
"""

Client = Callable[[str], TestClient]


@pytest.fixture
def client_for(tmp_path: Path, store: ReadingStore) -> Iterator[Client]:
    """A client of an app on ``store`` for the site file ``SITE_S1 + meters``."""
    ledger = SqliteLedger(tmp_path / "ledger.db")
    clients: list[TestClient] = []

    def make(meters: str) -> TestClient:
        config = tmp_path / "sites.toml"
        config.write_text(SITE_S1 + meters)
        app = create_app(Settings(config=str(config)), store=store, ledger=ledger)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)
    ledger.close()


def _write(
    store: ReadingStore, meter: str, quantity: str, start: datetime, values: list[float]
) -> None:
    store.write([Reading("s1", meter, quantity, v, start + i * H) for i, v in enumerate(values)])


# ---------------------------------------------------------------- 1. spikes, comebacks


def test_drop_to_zero_and_spike_are_not_energy_on_the_store(
    client_for: Client, store: ReadingStore
) -> None:
    # Hourly readings from 00:00 local: 1 000 Wh an hour, with a reading of 0 at 03:00
    # (back at the index at 04:00) and a spike at 24:00, the day's last reading, undone
    # at 01:00 the next day: the slot past the day's end is read to judge it.
    values = [1_000_000.0 + 1000 * h for h in range(26)]
    values[3] = 0.0
    values[24] = 99_999_999.0
    _write(store, "in", "energy", T0, values)
    body = _get_energy(client_for(IMPORT_METER), DAY)
    meters = {m["id"]: m for m in body["meters"]}
    # 24 h × 1 kWh, the last hour's reading ignored: 23 kWh measured to the 23:00 reading,
    # and the 2 kWh from 23:00 to 01:00 split over that gap as in a two-day query: +1 kWh
    # estimated (and the 2 kWh from 02:00 to 04:00 around the 0). Before the fix: 0 a
    # reset (+1 004 000 Wh at 04:00) and the spike counted: about 100 001 kWh.
    assert meters["in"]["energy_kwh"] == pytest.approx(24.0)
    assert meters["in"]["estimated_kwh"] == pytest.approx(3.0)
    assert (meters["in"]["resets"], meters["in"]["glitches"], meters["in"]["spikes"]) == (
        0,
        1,
        1,
    )
    assert body["total"]["carriers"]["electricity"]["import_kwh"] == pytest.approx(24.0)


def _get_energy(client: TestClient, params: dict[str, str]) -> dict:  # type: ignore[type-arg]
    resp = client.get("/api/v1/sites/s1/energy", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


# ---------------------------------------------------------------- 2. gas in m³


def _gas_meter(meter_id: str, role: str, extra: str = "") -> str:
    return f"""
[[sites.meters]]
id = "{meter_id}"
role = "{role}"
carrier = "gas"
unit = "m3"
source = {{ topic = "s1/{meter_id}", format = "number" }}
{extra}
"""


def test_gas_in_m3_is_converted_by_its_calorific_value(
    client_for: Client, store: ReadingStore
) -> None:
    # 1 kWh of electricity and 2 m³ of gas an hour; PCS coefficient 10.5 kWh/m³.
    _write(store, "in", "energy", T0, [1000.0 * h for h in range(25)])
    _write(store, "gas", "volume", T0, [2.0 * h for h in range(25)])
    client = client_for(IMPORT_METER + _gas_meter("gas", "grid_import", "kwh_per_m3 = 10.5"))
    body = _get_energy(client, DAY)
    gas = body["total"]["carriers"]["gas"]
    assert gas["import_kwh"] == pytest.approx(48 * 10.5)  # 504 kWh
    assert body["missing_factors"] == [] and body["unconverted_meters"] == []
    # BEPOS: −(2.3 × 24 + 1.0 × 504) = −559.2 kWhep. Before the fix the gas was dropped:
    # −55.2 kWhep, a balance 504 kWhep too good.
    assert body["total"]["primary_net_kwhep"] == pytest.approx(-(2.3 * 24 + 504))
    carbon = client.get("/api/v1/sites/s1/carbon", params=DAY).json()
    # 24 kWh × 0.079 + 504 kWh × 0.227 (RE2020 natural gas) = 116.304 kg; was 1.896.
    assert carbon["total"]["operational_kg"] == pytest.approx(24 * 0.079 + 504 * 0.227)
    assert {f["carrier"] for f in carbon["carbon_factors"]} == {"electricity", "gas"}


def test_gas_in_m3_without_a_conversion_is_reported_not_dropped(
    client_for: Client, store: ReadingStore
) -> None:
    _write(store, "in", "energy", T0, [1000.0 * h for h in range(25)])
    _write(store, "gas", "volume", T0, [2.0 * h for h in range(25)])
    client = client_for(IMPORT_METER + _gas_meter("gas", "grid_import"))
    body = _get_energy(client, DAY)
    assert body["missing_factors"] == ["gas"]
    assert body["unconverted_meters"] == ["gas"]
    assert body["total"]["primary_net_kwhep"] is None  # no verdict on a partial balance
    # Nor a final net without the gas: it was −24 kWh, the electricity alone.
    for period in (body["total"], *body["periods"]):
        assert period["final_net_kwh"] is None and period["final_net_kwh_per_m2"] is None
        assert period["unconverted_meters"] == ["gas"]
    carbon = client.get("/api/v1/sites/s1/carbon", params=DAY).json()
    assert carbon["missing_factors"] == ["gas"]
    assert carbon["unconverted_meters"] == ["gas"]
    # The targets' evidence says the same, and positive energy is not provable.
    targets = client.get("/api/v1/sites/s1/targets", params=DAY).json()
    assert targets["energy"]["final_net_kwh"] is None
    assert targets["energy"]["unconverted_meters"] == ["gas"]
    verdicts = {v["target"]: v["verdict"] for v in targets["verdicts"]}
    assert verdicts["positive_energy"] == "not_provable"
    assert verdicts["zero_carbon"] == "not_provable"


def test_kwh_per_m3_is_for_volume_meters_only() -> None:
    meter = IMPORT_METER.replace('role = "grid_import"', 'role = "grid_import"\nkwh_per_m3 = 10')
    with pytest.raises(ConfigError, match=r"kwh_per_m3.*volume unit"):
        parse_sites(SITE_S1 + meter)


# ---------------------------------------------------------------- 3. sub-meters per carrier


def test_submeters_split_their_own_carrier_and_the_overflow_is_reported(
    client_for: Client, store: ReadingStore
) -> None:
    # Electricity: import 1 kWh/h, lighting sub-meter 1.5 kWh/h (more than the import:
    # a wrong sub-meter). Gas: 1 m³/h at 10 kWh/m³, heating sub-meter 0.8 m³/h.
    _write(store, "in", "energy", T0, [1000.0 * h for h in range(25)])
    _write(store, "light", "energy", T0, [1500.0 * h for h in range(25)])
    _write(store, "gas", "volume", T0, [1.0 * h for h in range(25)])
    _write(store, "boiler", "volume", T0, [0.8 * h for h in range(25)])
    meters = (
        IMPORT_METER
        + """
[[sites.meters]]
id = "light"
role = "submeter"
use = "lighting"
source = { topic = "s1/light", format = "number" }
"""
        + _gas_meter("gas", "grid_import", "kwh_per_m3 = 10")
        + _gas_meter("boiler", "submeter", 'use = "heating"\nkwh_per_m3 = 10')
    )
    uses = _get_energy(client_for(meters), DAY)["total"]["uses"]
    # Gas: 240 kWh, 192 for heating, 48 unmetered. Before the fix the gas heating was
    # taken out of the 24 kWh of electricity.
    assert uses["gas"]["uses_kwh"] == {
        "heating": pytest.approx(192.0),
        "unmetered": pytest.approx(48.0),
    }
    assert uses["gas"]["submeters_exceed_consumption"] is False
    # Electricity: 36 kWh of lighting out of 24 kWh: flagged, 12 kWh over.
    assert uses["electricity"]["uses_kwh"] == {"lighting": pytest.approx(36.0), "unmetered": 0.0}
    assert uses["electricity"]["submeters_exceed_consumption"] is True
    assert uses["electricity"]["excess_kwh"] == pytest.approx(12.0)


# ---------------------------------------------------------------- 4-5. autumn clock change

AUTUMN_DAY = {"start": "2026-10-25", "end": "2026-10-26"}
# 2026-10-25 00:00+02:00 = 2026-10-24T22:00Z; the day lasts 25 hours.
AUTUMN_T0 = datetime(2026, 10, 24, 22, tzinfo=UTC)


def _seed_autumn_day(store: ReadingStore) -> None:
    # 1 kWh an hour; the grid's intensity 0.1 kg/kWh every 15 minutes of the 25 hours.
    _write(store, "in", "energy", AUTUMN_T0, [1000.0 * h for h in range(26)])
    store.write(
        [
            Reading("s1", INTENSITY_METER, INTENSITY_QUANTITY, 0.1, AUTUMN_T0 + q * QUARTER)
            for q in range(25 * 4)
        ]
    )


def test_the_repeated_autumn_hours_use_the_imported_intensity(
    client_for: Client, store: ReadingStore
) -> None:
    _seed_autumn_day(store)
    resp = client_for(IMPORT_METER).get(
        "/api/v1/sites/s1/carbon", params={**AUTUMN_DAY, "step": "day"}
    )
    assert resp.status_code == 200, resp.text
    (day,) = resp.json()["periods"]
    # Before the fix: 23 of 25 (02:00+01:00 and its fold-1 neighbour missed the series).
    assert (day["intensity_series_hours"], day["hours"]) == (25, 25)
    assert day["operational_kg"] == pytest.approx(25 * 0.1)


def test_carbon_by_hour_on_the_autumn_day_has_25_distinct_hours(
    client_for: Client, store: ReadingStore
) -> None:
    _seed_autumn_day(store)
    resp = client_for(IMPORT_METER).get(
        "/api/v1/sites/s1/carbon", params={**AUTUMN_DAY, "step": "hour"}
    )
    assert resp.status_code == 200, resp.text
    periods = resp.json()["periods"]
    starts = [datetime.fromisoformat(p["start"]) for p in periods]
    assert len(periods) == 25 and len(set(starts)) == 25
    assert [s.astimezone(UTC) for s in starts] == [AUTUMN_T0 + h * H for h in range(25)]
    # Each hour is one hour, priced with the series: 1 kWh × 0.1 kg/kWh. Before the fix
    # the first 02:00 got 0 hours and the second 2.
    assert [p["hours"] for p in periods] == [1] * 25
    assert [p["intensity_series_hours"] for p in periods] == [1] * 25
    assert [p["operational_kg"] for p in periods] == pytest.approx([0.1] * 25)


# ---------------------------------------------------------------- 7. éCO2mix spring gap

ECO2MIX_HEADER = "Périmètre;Nature;Date;Heures;Consommation;Taux de Co2\n"


def _eco2mix_row(day: str, hours: str, rate: str) -> str:
    return f"France;Données temps réel;{day};{hours};45000;{rate}\n"


def test_eco2mix_spring_gap_rows_without_a_rate_are_skipped() -> None:
    # 2026-03-29: 02:00-02:45 do not exist in Paris; RTE lists them with ND.
    text = ECO2MIX_HEADER + "".join(
        _eco2mix_row("2026-03-29", w, r)
        for w, r in [("01:45", "30"), ("02:00", "ND"), ("02:15", ""), ("03:00", "32")]
    )
    # Before the fix: "line 3: 2026-03-29 02:00 does not exist", the whole file refused.
    assert parse_eco2mix_csv(text) == [
        (datetime(2026, 3, 29, 0, 45, tzinfo=UTC), 30.0),  # 01:45+01:00
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), 32.0),  # 03:00+02:00
    ]


def test_eco2mix_spring_gap_row_with_a_rate_is_an_error_naming_it() -> None:
    text = ECO2MIX_HEADER + _eco2mix_row("2026-03-29", "01:45", "30")
    text += _eco2mix_row("2026-03-29", "02:30", "31")
    with pytest.raises(ValueError) as info:
        parse_eco2mix_csv(text)
    assert str(info.value) == (
        "invalid éCO2mix file:\nline 3: 2026-03-29 02:30 does not exist in Europe/Paris "
        "(spring gap: clocks go from 02:00 to 03:00) yet has a rate (31)"
    )
