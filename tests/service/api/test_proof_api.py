"""The proof endpoints (energy, carbon, waste, ledger, targets) on both stores, on a
hand-computed year."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers.support import GRID_AND_PV_METERS, SITE_S1

from domain.readings import INTENSITY_METER, INTENSITY_QUANTITY, Reading
from domain.records import WasteEntry
from domain.store import ReadingStore
from microville.settings import Settings
from service.app import create_app
from stores.ledger import SqliteLedger

CONFIG = SITE_S1 + "occupants = 20\n" + GRID_AND_PV_METERS

# Local year 2026 in Paris: 2025-12-31T23:00Z → 2026-12-31T23:00Z, 8760 hours.
YEAR_START = datetime(2025, 12, 31, 23, tzinfo=UTC)
HOURS = 8760
# Per hour: PV +3 kWh, import +1 kWh, export +2 kWh → consumption 2 kWh.
PER_HOUR_WH = {"pv": 3000.0, "in": 1000.0, "out": 2000.0}
SILENT = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 22, tzinfo=UTC))  # 3 weeks


def _seed_year(store: ReadingStore, silent_meter: str | None = None) -> None:
    readings = []
    for h in range(HOURS + 1):
        t = YEAR_START + timedelta(hours=h)
        for meter, wh in PER_HOUR_WH.items():
            if meter == silent_meter and SILENT[0] < t < SILENT[1]:
                continue
            readings.append(Reading("s1", meter, "energy", wh * h, t))
    for i in range(0, len(readings), 5000):
        store.write(readings[i : i + 5000])


@pytest.fixture
def client(tmp_path: Path, store: ReadingStore) -> Iterator[TestClient]:
    config = tmp_path / "sites.toml"
    config.write_text(CONFIG)
    ledger = SqliteLedger(tmp_path / "ledger.db")
    app = create_app(Settings(config=str(config)), store=store, ledger=ledger)
    with TestClient(app) as c:
        yield c
    ledger.close()


MATERIALS = [
    {"name": "reused steel beams", "category": "structure", "quantity": 1000, "unit": "kg",
     "factor_kgco2e_per_unit": 0.5, "new_factor_kgco2e_per_unit": 2.0, "reused": True,
     "biogenic_kgco2e_per_unit": 0, "source": "FDES réemploi"},
    {"name": "wood fibre insulation", "category": "envelope", "quantity": 100, "unit": "m3",
     "factor_kgco2e_per_unit": 95, "reused": False, "biogenic_kgco2e_per_unit": 40,
     "source": "INIES FDES"},
]  # fmt: skip
WASTE = [
    {"time": "2026-04-01T10:00:00+02:00", "stream": "recycling", "mass_kg": 800},
    {"time": "2026-05-01T10:00:00+02:00", "stream": "composting", "mass_kg": 100},
    {"time": "2026-06-01T10:00:00+02:00", "stream": "landfill", "mass_kg": 100},
    {"time": "2026-02-01T10:00:00+01:00", "stream": "reuse", "mass_kg": 5000,
     "phase": "renovation", "material": "doors"},
]  # fmt: skip


#: The Mondays from 2026-01-05 to 2027-01-04: weekly collections weigh all of 2026 (the
#: last one, in 2027, weighs the last days of December).
MONDAYS = [datetime(2026, 1, 5, 9, tzinfo=UTC) + timedelta(weeks=w) for w in range(53)]


def _weekly_collections(kg_per_stream: dict[str, float]) -> list[dict[str, object]]:
    """``kg_per_stream`` over 2026, split evenly over its 52 Monday collections."""
    return [
        {"time": t.isoformat(), "stream": stream, "mass_kg": kg / 52 if t.year == 2026 else 1.0}
        for t in MONDAYS
        for stream, kg in kg_per_stream.items()
    ]


def _ledger(client: TestClient) -> None:
    assert client.post("/api/v1/sites/s1/materials", json=MATERIALS).status_code == 201
    # The year's operation waste of WASTE (800 recycled, 100 composted, 100 landfilled),
    # collected weekly, and the renovation's reused doors.
    weekly = _weekly_collections({"recycling": 800, "composting": 100, "landfill": 100})
    resp = client.post("/api/v1/sites/s1/waste-entries", json=[*weekly, WASTE[3]])
    assert resp.status_code == 201, resp.text


def test_year_targets_give_three_verdicts_with_their_evidence(
    client: TestClient, store: ReadingStore
) -> None:
    _seed_year(store)
    _ledger(client)
    resp = client.get("/api/v1/sites/s1/targets", params={"period": "2026"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    verdicts = {v["target"]: v for v in body["verdicts"]}
    assert {t: v["verdict"] for t, v in verdicts.items()} == {
        "positive_energy": "met", "zero_carbon": "met", "zero_waste": "met",
    }  # fmt: skip
    # The works' ledger holds reused doors only: no construction waste to recover.
    assert verdicts["zero_waste"]["notes"] == [
        "renovation ledger: 1 entry, reuse only (no waste generated)"
    ]
    energy = body["energy"]
    assert energy["carriers"]["electricity"]["production_kwh"] == pytest.approx(26_280)
    assert energy["final_net_kwh"] == pytest.approx(8_760)  # 26 280 − 17 520
    # BEPOS: 2.3 × (export − import) = 2.3 × (17 520 − 8 760) = 20 148 kWhep.
    assert energy["primary_net_kwhep"] == pytest.approx(20_148)
    assert energy["primary_net_kwhep_per_m2"] == pytest.approx(201.48)
    assert energy["evidence"] == {"coverage": 1.0, "estimated_kwh": 0.0}
    carbon = body["carbon"]
    assert carbon["operational_kg"] == pytest.approx(8_760 * 0.079)  # 692.04
    assert carbon["avoided_kg"] == pytest.approx(17_520 * 0.079)  # 1 384.08
    # Embodied 1000 × 0.5 + 100 × 95 = 10 000 kg over 50 years; 2026 is 365 of 365.25 days.
    assert body["embodied"]["total_kg"] == pytest.approx(10_000)
    assert body["embodied"]["if_new_kg"] == pytest.approx(1000 * 2.0 + 100 * 95)
    assert body["embodied"]["biogenic_stored_kg"] == pytest.approx(4_000)
    amortised = 10_000 / 50 * 365 / 365.25
    assert carbon["embodied_amortised_kg"] == pytest.approx(amortised)
    assert carbon["net_kg"] == pytest.approx(692.04 + amortised - 1_384.08)
    assert {f["carrier"]: f["value"] for f in body["carbon_factors"]} == {"electricity": 0.079}
    assert "RE2020" in body["carbon_factors"][0]["source"]
    waste = body["waste"]["operation"]
    assert waste["generated_kg"] == pytest.approx(1_000)
    assert waste["diversion_rate"] == pytest.approx(0.9)  # 1 − 100 / 1000
    assert waste["generated_kg_per_occupant"] == pytest.approx(50)
    assert body["waste"]["renovation"]["reused_kg"] == pytest.approx(5_000)
    (criterion,) = verdicts["zero_waste"]["criteria"]
    assert criterion["figure"] == "material_recovery_rate"  # L541-1's target
    assert criterion["value"] == pytest.approx(0.9)  # (800 + 100) / 1000
    assert criterion["threshold"] == 0.7


def test_positive_year_is_not_provable_when_a_meter_was_silent_three_weeks(
    client: TestClient, store: ReadingStore
) -> None:
    _seed_year(store, silent_meter="in")
    _ledger(client)
    body = client.get("/api/v1/sites/s1/targets", params={"period": "2026"}).json()
    verdicts = {v["target"]: v for v in body["verdicts"]}
    assert verdicts["positive_energy"]["verdict"] == "not_provable"
    assert verdicts["zero_carbon"]["verdict"] == "not_provable"
    assert verdicts["zero_waste"]["verdict"] == "met"
    # 3 weeks = 504 hourly slots without an import reading, out of 8 760.
    assert verdicts["positive_energy"]["coverage"] == pytest.approx(1 - 504 / 8760, abs=1e-3)
    energy = body["energy"]
    # The energy across the silence is known from the index on each side, but estimated.
    assert energy["carriers"]["electricity"]["import_kwh"] == pytest.approx(8_760)
    assert energy["evidence"]["estimated_kwh"] == pytest.approx(505, abs=2)
    assert energy["primary_net_kwhep"] == pytest.approx(20_148)


def test_carbon_lists_the_reused_products_without_a_new_factor(client: TestClient) -> None:
    bricks = {"name": "reused bricks", "category": "masonry", "quantity": 2000, "unit": "kg",
              "factor_kgco2e_per_unit": 0.01, "reused": True, "source": "on site"}  # fmt: skip
    assert client.post("/api/v1/sites/s1/materials", json=[*MATERIALS, bricks]).status_code == 201
    body = client.get("/api/v1/sites/s1/carbon", params={"period": "2026"}).json()
    embodied = body["embodied"]
    # The steel beams' comparison only: 1000 × (2.0 − 0.5); the bricks counted as installed.
    assert embodied["avoided_by_reuse_kg"] == pytest.approx(1_500)
    assert embodied["reused_without_new_factor"] == ["reused bricks"]
    targets = client.get("/api/v1/sites/s1/targets", params={"period": "2026"}).json()
    assert targets["embodied"]["reused_without_new_factor"] == ["reused bricks"]


def test_carbon_uses_the_imported_grid_intensity_hour_by_hour(
    client: TestClient, store: ReadingStore
) -> None:
    _seed_year(store)
    # 100 g/kWh for the first two hours of the year (15-min samples), nothing after.
    quarter_hours = [YEAR_START + timedelta(minutes=15 * i) for i in range(8)]
    store.write([Reading("s1", INTENSITY_METER, INTENSITY_QUANTITY, 0.1, t) for t in quarter_hours])
    body = client.get(
        "/api/v1/sites/s1/carbon",
        params={"start": "2026-01-01", "end": "2026-01-02", "step": "day"},
    ).json()
    (day,) = body["periods"]
    assert day["intensity_series_hours"] == 2 and day["hours"] == 24
    # 2 h × 1 kWh × 0.1 + 22 h × 1 kWh × 0.079 = 1.938 kg; exports likewise × 2 kWh.
    assert day["operational_kg"] == pytest.approx(0.2 + 22 * 0.079)
    assert day["avoided_kg"] == pytest.approx(0.4 + 44 * 0.079)


#: Collection days of October 2026: every moment of the month has one within 7 days.
OCTOBER_COLLECTIONS = ("2026-10-05", "2026-10-12", "2026-10-19", "2026-10-26", "2026-10-31")


def _october_entries(kg_per_stream: dict[str, float]) -> list[dict[str, object]]:
    """``kg_per_stream`` split evenly over the weekly collections of October."""
    n = len(OCTOBER_COLLECTIONS)
    return [
        {"time": f"{day}T10:00:00+01:00", "stream": stream, "mass_kg": kg / n}
        for day in OCTOBER_COLLECTIONS
        for stream, kg in kg_per_stream.items()
    ]


def _zero_waste(client: TestClient) -> dict[str, object]:
    resp = client.get("/api/v1/sites/s1/targets", params={"period": "2026-10"})
    assert resp.status_code == 200, resp.text
    (verdict,) = [v for v in resp.json()["verdicts"] if v["target"] == "zero_waste"]
    return dict(verdict)


def test_zero_waste_is_judged_on_material_recovery_not_diversion(client: TestClient) -> None:
    entries = _october_entries({"energy_recovery": 600, "recycling": 200, "landfill": 200})
    assert client.post("/api/v1/sites/s1/waste-entries", json=entries).status_code == 201
    waste = client.get("/api/v1/sites/s1/waste", params={"period": "2026-10"}).json()
    assert waste["operation"]["diversion_rate"] == pytest.approx(0.8)  # 1 − 200 / 1000
    assert waste["operation"]["material_recovery_rate"] == pytest.approx(0.2)  # 200 / 1000
    verdict = _zero_waste(client)
    assert verdict["verdict"] == "not_met"
    assert verdict["criteria"] == [
        {"figure": "material_recovery_rate", "value": pytest.approx(0.2), "threshold": 0.7,
         "direction": "min", "verdict": "not_met", "coverage": verdict["coverage"]},
    ]  # fmt: skip
    assert verdict["notes"] == ["no renovation ledger in the period: operation waste only"]


def test_zero_waste_also_judges_the_renovation_ledger_on_l541_1(client: TestClient) -> None:
    # Operation: 80 % recovered as material, weekly (met). The works' ledger: 3 t
    # recycled, 2 t landfilled, 4 t of doors reused (réemploi: prevention, not waste).
    operation = _october_entries({"recycling": 800, "landfill": 200})
    works = [
        {"time": "2026-10-02T10:00:00+02:00", "stream": stream, "mass_kg": kg,
         "phase": "renovation", "destination": "site", "material": material}
        for stream, kg, material in (("recycling", 3000, "concrete"),
                                     ("landfill", 2000, "plaster"), ("reuse", 4000, "doors"))
    ]  # fmt: skip
    assert client.post("/api/v1/sites/s1/waste-entries", json=operation).status_code == 201
    assert _zero_waste(client)["verdict"] == "met"  # operation only, before the works
    assert client.post("/api/v1/sites/s1/waste-entries", json=works).status_code == 201
    waste = client.get("/api/v1/sites/s1/waste", params={"period": "2026-10"}).json()
    assert waste["renovation"]["material_recovery_rate"] == pytest.approx(0.6)
    verdict = _zero_waste(client)
    criteria = {c["figure"]: c for c in verdict["criteria"]}
    # 3000 / (3000 + 2000) = 0.6 < 0.7: the works miss L541-1's target; it was "met".
    renovation = criteria["renovation_material_recovery_rate"]
    assert renovation["value"] == pytest.approx(0.6)
    assert (renovation["threshold"], renovation["verdict"]) == (0.7, "not_met")
    assert criteria["material_recovery_rate"]["verdict"] == "met"  # operation stays
    assert verdict["verdict"] == "not_met"
    assert verdict["notes"] == ["renovation ledger: 3 entries (the récolement as entered)"]


def test_preparation_for_reuse_counts_as_material_recovery(client: TestClient) -> None:
    entries = _october_entries(
        {"preparation_for_reuse": 300, "recycling": 300, "landfill": 400, "reuse": 500}
    )
    resp = client.post("/api/v1/sites/s1/waste-entries", json=entries)
    assert resp.status_code == 201, resp.text
    operation = client.get("/api/v1/sites/s1/waste", params={"period": "2026-10"}).json()[
        "operation"
    ]
    assert operation["mass_kg"]["preparation_for_reuse"] == pytest.approx(300)
    assert operation["generated_kg"] == pytest.approx(1_000)  # réemploi (500) left out
    assert operation["reused_kg"] == pytest.approx(500)
    assert operation["material_recovery_rate"] == pytest.approx(0.6)  # (300 + 300) / 1000
    assert _zero_waste(client)["verdict"] == "not_met"  # 0.6 < 0.7


@pytest.mark.parametrize(
    "path, body, message",
    [
        ("materials", [{**MATERIALS[1], "unit": "furlong"}], "unit"),
        ("materials", [MATERIALS[1], {**MATERIALS[1], "quantity": -3}], "quantity"),
        ("waste-entries", [WASTE[0], {**WASTE[1], "mass_kg": -5}], "mass_kg"),
        ("waste-entries", [{**WASTE[0], "time": "2026-04-01T10:00:00"}], "time"),
        ("waste-entries", [{**WASTE[0], "stream": "ocean"}], "stream"),
    ],
)
def test_bad_ledger_input_is_refused_and_nothing_is_written(
    client: TestClient, path: str, body: list[dict[str, object]], message: str
) -> None:
    resp = client.post(f"/api/v1/sites/s1/{path}", json=body)
    assert resp.status_code == 422
    assert message in resp.text
    listed = client.get(
        f"/api/v1/sites/s1/{path}", params={"start": "2000-01-01", "end": "2100-01-01"}
    )
    assert listed.json() == []


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize(
    "path, record, field",
    [
        ("waste-entries", WASTE[0], "mass_kg"),
        ("materials", MATERIALS[0], "quantity"),
        ("materials", MATERIALS[0], "factor_kgco2e_per_unit"),
        ("materials", MATERIALS[0], "new_factor_kgco2e_per_unit"),
        ("materials", MATERIALS[0], "biogenic_kgco2e_per_unit"),
    ],
)
def test_non_finite_ledger_numbers_are_refused_naming_the_field(
    client: TestClient, path: str, record: dict[str, object], field: str, value: float
) -> None:
    valid = WASTE[1] if path == "waste-entries" else MATERIALS[1]
    # JSON's Infinity / -Infinity / NaN (httpx refuses to write them): Python's parser,
    # and so the API's, reads them.
    resp = client.post(
        f"/api/v1/sites/s1/{path}",
        content=json.dumps([valid, {**record, field: value}]),
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 422, resp.text
    (problem,) = resp.json()["detail"]
    assert problem["loc"] == ["body", 1, field] and "finite" in problem["msg"]
    listed = client.get(
        f"/api/v1/sites/s1/{path}", params={"start": "2000-01-01", "end": "2100-01-01"}
    )
    assert listed.json() == []  # nothing half-written
    for endpoint in ("waste", "targets"):
        assert (
            client.get(f"/api/v1/sites/s1/{endpoint}", params={"period": "2026"}).status_code == 200
        )


def test_a_bad_stored_waste_entry_is_reported_not_a_500(client: TestClient, tmp_path: Path) -> None:
    """A row stored before non-finite masses were refused (Infinity became JSON null)."""
    good = [
        {**WASTE[0], "time": f"{day}T10:00:00+01:00", "mass_kg": 100} for day in OCTOBER_COLLECTIONS
    ]
    assert client.post("/api/v1/sites/s1/waste-entries", json=good).status_code == 201
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        db.execute(
            "INSERT INTO waste_entries (site, ts_ms, record) VALUES (?, ?, ?)",
            ("s1", 1_791_014_400_000, '{"time": "2026-10-03T10:00:00+02:00", '
             '"stream": "landfill", "mass_kg": null, "phase": "operation"}'),
        )  # fmt: skip
        (bad_id,) = db.execute("SELECT MAX(id) FROM waste_entries").fetchone()
    waste = client.get("/api/v1/sites/s1/waste", params={"period": "2026-10"})
    assert waste.status_code == 200, waste.text
    body = waste.json()
    assert body["operation"]["mass_kg"] == {"recycling": pytest.approx(500)}
    assert body["unreadable_entries"] == [bad_id]
    # The ledger cannot prove the period while a record of it is unreadable.
    verdict = _zero_waste(client)
    assert verdict["verdict"] == "not_provable"
    listed = client.get("/api/v1/sites/s1/waste-entries", params={"period": "2026-10"})
    assert listed.status_code == 200 and len(listed.json()) == 5
    # Deleting the bad row (by the id the report names) makes the period provable again.
    assert client.delete(f"/api/v1/sites/s1/waste-entries/{bad_id}").status_code == 204
    assert _zero_waste(client)["verdict"] == "met"


def test_the_ledger_refuses_a_record_that_would_not_read_back(tmp_path: Path) -> None:
    """A model built without validation (model_construct) cannot smuggle Infinity in."""
    ledger = SqliteLedger(tmp_path / "ledger.db")
    good = WasteEntry.model_validate(WASTE[0])
    bad = WasteEntry.model_construct(**{**good.__dict__, "mass_kg": math.inf})
    with pytest.raises(ValueError, match="would not read back"):
        ledger.add_waste_entries("s1", [good, bad])
    assert ledger.waste_records("s1") == ([], [])  # nothing half-written
    ledger.close()


def test_materials_csv_import_reports_every_bad_row(client: TestClient) -> None:
    header = (
        "name,category,quantity,unit,factor_kgco2e_per_unit,new_factor_kgco2e_per_unit,"
        "reused,biogenic_kgco2e_per_unit,source\n"
    )
    good = "straw bales,envelope,12,t,30,,no,1200,FDES\n"
    bad = "door,joinery,-1,unit,0,,yes,0,réemploi\nbeam,structure,3,parsec,1,,no,0,x\n"
    resp = client.post(
        "/api/v1/sites/s1/materials/csv",
        content=header + good + bad,
        headers={"content-type": "text/csv"},
    )
    assert resp.status_code == 422
    assert "line 3" in resp.text and "line 4" in resp.text
    assert client.get("/api/v1/sites/s1/materials").json() == []
    ok = client.post(
        "/api/v1/sites/s1/materials/csv",
        content=header + good,
        headers={"content-type": "text/csv"},
    )
    assert ok.status_code == 201 and ok.json()[0]["material"]["name"] == "straw bales"


@pytest.mark.parametrize(
    "params, message",
    [
        ({"period": "2026-13"}, "not a year (2026), a month"),
        ({"period": "2026-02-30"}, "not a calendar day"),
        ({"period": "26-10"}, "not a year (2026), a month"),
        ({"period": "2026", "start": "2026-01-01"}, "either period or start/end"),
        ({"start": "2026-02-01", "end": "2026-01-01"}, "end must be after start"),
    ],
)
def test_bad_periods_are_refused_with_a_message(
    client: TestClient, params: dict[str, str], message: str
) -> None:
    for endpoint in ("targets", "energy", "carbon", "waste"):
        resp = client.get(f"/api/v1/sites/s1/{endpoint}", params=params)
        assert resp.status_code == 422, (endpoint, resp.text)
        assert message in resp.text


def test_a_period_may_be_a_local_day_of_23_hours(client: TestClient, store: ReadingStore) -> None:
    # 2026-03-29 in Paris: 2026-03-28T23:00Z → 2026-03-29T22:00Z, 23 hours.
    t0 = datetime(2026, 3, 28, 22, tzinfo=UTC)
    store.write(
        [
            Reading("s1", m, "energy", wh * h, t0 + timedelta(hours=h))
            for h in range(26)
            for m, wh in PER_HOUR_WH.items()
        ]
    )
    body = client.get("/api/v1/sites/s1/balance", params={"period": "2026-03-29"}).json()
    (day,) = body["periods"]
    assert (day["start"], day["end"]) == ("2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00")
    assert day["production_kwh"] == pytest.approx(23 * 3.0)
    assert day["coverage"] == pytest.approx(1.0)


def test_energy_reports_each_meters_quality(client: TestClient, store: ReadingStore) -> None:
    t0 = datetime(2026, 1, 4, 23, tzinfo=UTC)  # 2026-01-05 00:00 local
    # The import meter is replaced at 03:00 (reset to 0) and glitches at 06:00.
    index = [0, 1000, 2000, 3000, 200, 1200, 1000, 2200, 3200]
    store.write(
        [
            Reading("s1", "in", "energy", float(v), t0 + timedelta(hours=h))
            for h, v in enumerate(index)
        ]
    )
    body = client.get(
        "/api/v1/sites/s1/energy",
        params={"start": "2026-01-05", "end": "2026-01-06", "step": "day"},
    ).json()
    meters = {m["id"]: m for m in body["meters"]}
    # 3000 Wh; 200 < 0.1 × 3000: a reset, +200; +1000; 1000 is a glitch (ignored);
    # 1200 → 2200 +1000; +1000. Total 6200 Wh.
    assert meters["in"]["energy_kwh"] == pytest.approx(6.2)
    assert (meters["in"]["resets"], meters["in"]["glitches"], meters["in"]["rollovers"]) == (
        1,
        1,
        0,
    )
    assert body["total"]["carriers"]["electricity"]["import_kwh"] == pytest.approx(6.2)


def test_a_month_is_the_same_days_of_the_year_with_a_bad_reading_as_its_baseline(
    client: TestClient, store: ReadingStore
) -> None:
    # Import meter, 1 kWh an hour from 1 Jan 00:00 local to 1 Mar; the reading at
    # 1 Feb 00:00 local (February's baseline) is a bad 0, the one at 1 Mar 00:00 a spike.
    t0 = datetime(2025, 12, 31, 23, tzinfo=UTC)
    feb, mar = datetime(2026, 1, 31, 23, tzinfo=UTC), datetime(2026, 2, 28, 23, tzinfo=UTC)
    hours = round((mar - t0) / timedelta(hours=1)) + 3
    bad = {feb: 0.0, mar: 99_999_999.0}
    readings = []
    for h in range(hours):
        t = t0 + timedelta(hours=h)
        readings.append(Reading("s1", "in", "energy", bad.get(t, 1000.0 * h), t))
    store.write(readings)

    def import_kwh(**params: str) -> list[float]:
        resp = client.get("/api/v1/sites/s1/energy", params={"step": "month", **params})
        assert resp.status_code == 200, resp.text
        return [p["carriers"]["electricity"]["import_kwh"] for p in resp.json()["periods"]]

    year = import_kwh(period="2026")
    # January: 744 h; February 672 h (the bad readings are ignored, not energy); January
    # alone was 743 (the gap over the 0 at its end was not split with February).
    assert year[:2] == pytest.approx([744.0, 672.0])
    assert import_kwh(period="2026-01") == pytest.approx([744.0])
    # Read alone, February started from the 0: it was 1 415 kWh (a rise from 0).
    assert import_kwh(period="2026-02") == pytest.approx([672.0])
    march = client.get("/api/v1/sites/s1/energy", params={"period": "2026-03", "step": "month"})
    meter = {m["id"]: m for m in march.json()["meters"]}["in"]
    # March's baseline is the spike: not a reset of March (it was 1 reset, 1 418 kWh).
    assert (meter["resets"], meter["spikes"], meter["energy_kwh"]) == (0, 0, pytest.approx(2.0))


def test_targets_carry_each_meters_data_quality_beside_the_verdicts(
    client: TestClient, store: ReadingStore, tmp_path: Path
) -> None:
    # test_energy_reports_each_meters_quality's day, asked of /targets: the import
    # meter's reset and glitch, its estimated energy, beside the verdicts.
    t0 = datetime(2026, 1, 4, 23, tzinfo=UTC)
    index = [0, 1000, 2000, 3000, 200, 1200, 1000, 2200, 3200]
    store.write(
        [
            Reading("s1", "in", "energy", float(v), t0 + timedelta(hours=h))
            for h, v in enumerate(index)
        ]
    )
    with sqlite3.connect(tmp_path / "ledger.db") as db:  # a row that no longer reads
        db.execute(
            "INSERT INTO waste_entries (site, ts_ms, record) VALUES (?, ?, ?)",
            ("s1", int(datetime(2026, 1, 5, 10, tzinfo=UTC).timestamp() * 1000),
             '{"time": "2026-01-05T11:00:00+01:00", "stream": "landfill", "mass_kg": null}'),
        )  # fmt: skip
        (bad_id,) = db.execute("SELECT MAX(id) FROM waste_entries").fetchone()
    params = {"start": "2026-01-05", "end": "2026-01-06"}
    body = client.get("/api/v1/sites/s1/targets", params=params).json()
    quality = body["data_quality"]
    energy = client.get("/api/v1/sites/s1/energy", params={**params, "step": "day"}).json()
    # The same figures as /energy's, from the same report.
    assert quality["meters"] == energy["meters"]
    meters = {m["id"]: m for m in quality["meters"]}
    assert (meters["in"]["resets"], meters["in"]["glitches"]) == (1, 1)
    assert meters["in"]["energy_kwh"] == pytest.approx(6.2)
    assert quality["estimated_kwh"] == pytest.approx(energy["total"]["evidence"]["estimated_kwh"])
    assert quality["unconverted_meters"] == []
    assert quality["unreadable_entries"] == [bad_id]
    verdicts = {v["target"]: v for v in body["verdicts"]}
    assert verdicts["positive_energy"]["meters"] == ["pv", "in", "out"]
    assert verdicts["zero_carbon"]["meters"] == ["in", "out"]
    assert verdicts["zero_waste"]["verdict"] == "not_provable"


def test_waste_scales_count_with_the_entries(tmp_path: Path, store: ReadingStore) -> None:
    config = tmp_path / "sites.toml"
    config.write_text(
        SITE_S1
        + """waste_entry_interval_days = 0  # all waste weighed: entries are not expected
[[sites.meters]]
id = "compost-scale"
role = "waste"
carrier = "waste"
stream = "composting"
unit = "kg"
source = { topic = "s1/compost", format = "number" }
"""
    )
    t0 = datetime(2026, 2, 28, 23, tzinfo=UTC)  # March, local
    # A mass counter read hourly through March: +2 kg an hour.
    hours = 31 * 24
    store.write(
        [
            Reading("s1", "compost-scale", "mass", 2.0 * h, t0 + timedelta(hours=h))
            for h in range(hours + 1)
        ]
    )
    ledger = SqliteLedger(tmp_path / "ledger.db")
    ledger.add_waste_entries("s1", [WasteEntry.model_validate(WASTE[2])])  # landfill, June
    app = create_app(Settings(config=str(config)), store=store, ledger=ledger)
    with TestClient(app) as client:
        march = client.get("/api/v1/sites/s1/waste", params={"period": "2026-03"}).json()
        year = client.get("/api/v1/sites/s1/waste", params={"period": "2026"}).json()
    ledger.close()
    # March 2026 lasts 743 local hours (clocks go forward on the 29th): 2 × 743 kg.
    assert march["operation"]["mass_kg"] == {"composting": pytest.approx(2.0 * 743)}
    assert march["coverage"] == pytest.approx(1.0)
    assert march["operation"]["diversion_rate"] == 1.0
    # Over the year the scale reported for 745 hourly slots only (its 744 h of readings
    # and the first one); the 100 kg landfilled in June count too.
    assert year["operation"]["residual_kg"] == pytest.approx(100)
    assert year["operation"]["diversion_rate"] == pytest.approx(1 - 100 / (2.0 * hours + 100))
    assert year["coverage"] == pytest.approx(745 / 8760)


def test_one_manual_entry_does_not_make_a_year_provable(client: TestClient) -> None:
    entry = {"time": "2026-01-15T10:00:00+01:00", "stream": "recycling", "mass_kg": 500}
    assert client.post("/api/v1/sites/s1/waste-entries", json=[entry]).status_code == 201
    year = client.get("/api/v1/sites/s1/waste", params={"period": "2026"}).json()
    # Weekly collections expected (the default): the entry weighs Jan 8-15 only.
    assert year["coverage"] == pytest.approx(7 / 365)
    assert year["operation"]["material_recovery_rate"] == 1.0
    verdicts = client.get("/api/v1/sites/s1/targets", params={"period": "2026"}).json()
    (zero_waste,) = [v for v in verdicts["verdicts"] if v["target"] == "zero_waste"]
    assert zero_waste["verdict"] == "not_provable"
    assert zero_waste["coverage"] == pytest.approx(7 / 365)
    # The week before the entry is fully covered.
    week = client.get(
        "/api/v1/sites/s1/waste", params={"start": "2026-01-08T10:00", "end": "2026-01-15T10:00"}
    ).json()
    assert week["coverage"] == pytest.approx(1.0)


def test_weekly_collections_prove_the_year_and_the_interval_is_per_site(
    tmp_path: Path, store: ReadingStore
) -> None:
    fortnightly = [t for i, t in enumerate(MONDAYS) if i % 2 == 0]  # 27 Mondays
    entries = [WasteEntry(time=t, stream="recycling", mass_kg=10) for t in fortnightly]  # type: ignore[arg-type]
    coverages = {}
    for days in (7, 14):
        config = tmp_path / f"sites-{days}.toml"
        config.write_text(SITE_S1 + f"waste_entry_interval_days = {days}\n")
        ledger = SqliteLedger(tmp_path / f"ledger-{days}.db")
        ledger.add_waste_entries("s1", entries)
        app = create_app(Settings(config=str(config)), store=store, ledger=ledger)
        with TestClient(app) as c:
            coverages[days] = c.get("/api/v1/sites/s1/waste", params={"period": "2026"}).json()[
                "coverage"
            ]
        ledger.close()
    # Every other Monday (9 h UTC) from Jan 5: a fortnightly interval covers it all; a
    # weekly one, the week before each: Jan 1 00:00 local (Dec 31 23 h UTC) to Jan 5
    # (4 d 10 h), 25 weeks (Jan 19 … Dec 21) and Dec 28 9 h to the end, 23 h UTC, by the
    # collection of 2027-01-04 (3 d 14 h): 183 days.
    assert coverages[14] == pytest.approx(1.0)
    assert coverages[7] == pytest.approx(183 / 365)


def test_waste_per_month_with_local_boundaries(client: TestClient) -> None:
    weekly = _weekly_collections({"recycling": 520, "landfill": 52})
    assert client.post("/api/v1/sites/s1/waste-entries", json=weekly).status_code == 201
    resp = client.get("/api/v1/sites/s1/waste", params={"period": "2026", "step": "month"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["step"] == "month" and len(body["periods"]) == 12
    march = body["periods"][2]
    # Local boundaries: March starts in winter time and ends in summer time.
    assert (march["start"], march["end"]) == (
        "2026-03-01T00:00:00+01:00",
        "2026-04-01T00:00:00+02:00",
    )
    # Mondays of March 2026 (9 h UTC): the 2nd, 9th, 16th, 23rd and 30th.
    assert march["operation"]["mass_kg"] == {
        "recycling": pytest.approx(5 * 10),
        "landfill": pytest.approx(5 * 1),
    }
    assert march["operation"]["diversion_rate"] == pytest.approx(1 - 5 / 55)
    assert march["coverage"] == pytest.approx(1.0)
    # The totals are kept, and are the periods' sums.
    assert body["operation"]["mass_kg"]["recycling"] == pytest.approx(520)
    assert sum(p["operation"]["generated_kg"] for p in body["periods"]) == pytest.approx(572)
    totals = client.get("/api/v1/sites/s1/waste", params={"period": "2026"}).json()
    assert totals["step"] is None and totals["periods"] == []
    assert totals["operation"] == body["operation"]


@pytest.mark.parametrize("step", ["hour", "week", ""])
def test_waste_step_is_day_month_or_year(client: TestClient, step: str) -> None:
    resp = client.get("/api/v1/sites/s1/waste", params={"period": "2026", "step": step})
    assert resp.status_code == 422
    assert "step" in resp.text


def test_renovation_waste_per_stream_and_destination(client: TestClient) -> None:
    works = [
        ("2026-02-02", "recycling", 1200, "plaster", "Recyclerie du plâtre, Angers"),
        ("2026-02-09", "recycling", 800, "plaster", "Recyclerie du plâtre, Angers"),
        ("2026-02-09", "recycling", 700, "wood", "Recyclerie du plâtre, Angers"),
        ("2026-02-10", "preparation_for_reuse", 400, "wood", "Atelier bois, Trélazé"),
        ("2026-02-11", "landfill", 300, "mixed", "ISDND, Lasse"),
        ("2026-02-12", "reuse", 500, "doors", "on site"),
    ]
    entries = [
        {"time": f"{d}T10:00:00+01:00", "stream": s, "mass_kg": kg, "phase": "renovation",
         "material": mat, "destination": dest}
        for d, s, kg, mat, dest in works
    ]  # fmt: skip
    assert client.post("/api/v1/sites/s1/waste-entries", json=entries).status_code == 201
    body = client.get("/api/v1/sites/s1/waste", params={"period": "2026"}).json()
    lines = [
        (x["stream"], x["destination"], x["material"], x["mass_kg"], x["entries"])
        for x in body["renovation_lines"]
    ]
    assert lines == [  # in the streams' order, then destination and material
        ("reuse", "on site", "doors", 500, 1),
        ("preparation_for_reuse", "Atelier bois, Trélazé", "wood", 400, 1),
        ("recycling", "Recyclerie du plâtre, Angers", "plaster", 2000, 2),
        ("recycling", "Recyclerie du plâtre, Angers", "wood", 700, 1),
        ("landfill", "ISDND, Lasse", "mixed", 300, 1),
    ]
    renovation = body["renovation"]
    assert renovation["generated_kg"] == pytest.approx(3_400)  # all but the reused doors
    assert renovation["material_recovery_rate"] == pytest.approx(3_100 / 3_400)
    assert body["operation"]["generated_kg"] == 0 and body["sources"]["renovation_entries"] == 6
