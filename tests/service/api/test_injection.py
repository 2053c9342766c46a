"""Injection through every identifier that reaches a query, on both stores: InfluxQL and
line protocol are built from validated identifiers only, SQL from bound parameters only.

A hostile id either is refused (StoreError; InfluxDB's safe alphabet) or matches nothing
(SQLite binds it as a value); it never reads another series, writes another point, or
changes what is stored. Through the API, the site id is checked against the
configuration before anything is queried, and every other id is typed or bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from helpers.support import GRID_AND_PV_METERS, SITE_S1

from domain.materials import Material
from domain.readings import Reading
from domain.store import IndexSeries, ReadingStore, StoreError, StoreRejected
from microville.settings import Settings
from service.app import create_app
from stores.influx import InfluxStore
from stores.ledger import SqliteLedger

T0 = datetime(2026, 10, 1, tzinfo=UTC)
HOSTILE = [
    "s1' OR '1'='1",
    "s1' OR 1=1 --",
    's1" OR "1"="1',
    "s1'; DROP TABLE readings; --",
    'energy" WHERE 1=1; DROP MEASUREMENT "energy',
    "/.*/",
    "s1\\",
    "s1\n",
    "s1\nenergy,meter=pv,site=s1 value=1e12 1790000000000",
    "pv,site=s1",
    "%",
    "*",
    "s1\x00",
    "ş1",
    "a" * 5000,
]
POSITIONS = ("site", "meter", "quantity")


def _seed(store: ReadingStore) -> list[Reading]:
    readings = [
        Reading(site, meter, "energy", 1000.0 * h, T0 + timedelta(hours=h))
        for site in ("s1", "s2")
        for meter in ("pv", "in")
        for h in range(6)
    ]
    store.write(readings)
    return readings


def _ids(position: str, hostile: str) -> dict[str, str]:
    ids = {"site": "s1", "meter": "pv", "quantity": "energy"}
    ids[position] = hostile
    return ids


def _matches_nothing(result: Any) -> bool:
    if isinstance(result, int):
        return result == 0
    if isinstance(result, list):
        return result == []
    assert isinstance(result, dict)
    return all(
        v is None or (isinstance(v, IndexSeries) and v.baseline is None and not v.slots)
        for v in result.values()
    )


def _queries(store: ReadingStore, site: str, meter: str, quantity: str) -> dict[str, Any]:
    """Each read of the store port, with these ids; a StoreError counts as refused."""
    end = T0 + timedelta(hours=6)
    calls = {
        "index_slots": lambda: store.index_slots(
            site, [meter], quantity, T0, end, timedelta(hours=1)
        ),
        "hourly_means": lambda: store.hourly_means(site, meter, quantity, T0, end),
        "last_seen": lambda: store.last_seen(site, [meter], quantity),
        "count": lambda: store.count(site),
    }
    out: dict[str, Any] = {}
    for name, call in calls.items():
        try:
            out[name] = call()
        except StoreError as exc:
            out[name] = exc
    return out


def _fingerprint(store: ReadingStore) -> tuple[Any, ...]:
    """What is stored for both sites, as the port reads it."""
    end = T0 + timedelta(hours=6)
    return tuple(
        (
            store.count(site),
            store.index_slots(site, ["pv", "in"], "energy", T0, end, timedelta(hours=1)),
            store.hourly_means(site, "in", "energy", T0, end),
        )
        for site in ("s1", "s2")
    )


@pytest.mark.parametrize("position", POSITIONS)
def test_hostile_ids_read_nothing_and_change_nothing(store: ReadingStore, position: str) -> None:
    _seed(store)
    before = _fingerprint(store)
    influx = isinstance(store, InfluxStore)
    for hostile in HOSTILE:
        ids = _ids(position, hostile)
        for name, result in _queries(store, **ids).items():
            if name == "count" and position != "site":
                continue  # count takes the site only
            where = f"{name}({position}={hostile[:60]!r})"
            if influx:
                # Outside the safe alphabet: refused before any query is built.
                assert isinstance(result, StoreError), where
                assert "invalid" in str(result), where
            else:
                assert not isinstance(result, Exception), f"{where}: {result}"
                assert _matches_nothing(result), f"{where} read {result}"
    assert _fingerprint(store) == before


@pytest.mark.parametrize("position", POSITIONS)
def test_hostile_ids_write_nothing_but_their_own_point(store: ReadingStore, position: str) -> None:
    _seed(store)
    before = _fingerprint(store)
    for hostile in HOSTILE:
        ids = _ids(position, hostile)
        reading = Reading(value=7.0, time=T0 + timedelta(days=30), **ids)
        if isinstance(store, InfluxStore):
            # No line of the body can be forged: the whole write is refused, for good.
            with pytest.raises(StoreRejected, match="invalid"):
                store.write([reading])
        else:
            store.write([reading])
            # Stored under exactly that id, readable with exactly that id.
            seen = store.last_seen(ids["site"], [ids["meter"]], ids["quantity"])
            assert seen == {ids["meter"]: reading.time}
    if not isinstance(store, InfluxStore) and position == "site":
        assert store.count("s1") == before[0][0]
    after = _fingerprint(store)
    if position == "site" or isinstance(store, InfluxStore):
        assert after == before
    else:
        # A new point of s1 under another meter or measurement: the seeded series stand.
        assert after[1] == before[1]
        assert after[0][1] == before[0][1] and after[0][2] == before[0][2]


def test_the_ledger_binds_every_id(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    material = Material(
        name="steel",
        category="structure",
        quantity=1.0,
        unit="kg",
        factor_kgco2e_per_unit=2.0,
        reused=False,
        source="test",
    )
    (kept,) = ledger.add_materials("s1", [material])
    for hostile in HOSTILE:
        assert ledger.materials(hostile) == []
        assert ledger.waste_entries(hostile) == []
        assert not ledger.delete_material(hostile, kept)
        assert not ledger.delete_waste_entry(hostile, kept)
        (own,) = ledger.add_materials(hostile, [material])
        assert [i for i, _ in ledger.materials(hostile)] == [own]
    assert [i for i, _ in ledger.materials("s1")] == [kept]
    ledger.close()


# --- through the API ------------------------------------------------------------------------


@pytest.fixture
def api(tmp_path: Path, store: ReadingStore) -> Iterator[TestClient]:
    config = tmp_path / "sites.toml"
    config.write_text(SITE_S1 + GRID_AND_PV_METERS)
    _seed(store)
    # Dozens of refused writes: past the default write limit, which is not the subject.
    app = create_app(
        Settings(config=str(config), api_write_burst=10_000, api_read_burst=10_000), store=store
    )
    with TestClient(app) as client:  # conftest's admin token: every check passes but these
        yield client


def _state(client: TestClient) -> tuple[Any, ...]:
    balance = client.get(
        "/api/v1/sites/s1/balance", params={"start": "2026-10-01", "end": "2026-10-02"}
    )
    assert balance.status_code == 200, balance.text
    materials = client.get("/api/v1/sites/s1/materials").json()
    return balance.json()["total"], materials


def test_hostile_ids_through_the_api_are_refused_with_a_message(api: TestClient) -> None:
    before = _state(api)
    for hostile in HOSTILE:
        path_safe = quote(hostile, safe="")
        for path in ("balance", "energy", "carbon", "materials", "alerts", "waste-entries"):
            response = api.get(f"/api/v1/sites/{path_safe}/{path}")
            assert response.status_code in (404, 422), (path, hostile, response.text)
            assert response.json()["detail"], (path, hostile)
        # Ids after the site: an alert id is bound, record ids are integers.
        ack = api.post(f"/api/v1/sites/s1/alerts/{path_safe}/acknowledge")
        assert ack.status_code in (404, 422), (hostile, ack.text)
        for kind in ("materials", "waste-entries"):
            delete = api.delete(f"/api/v1/sites/s1/{kind}/{path_safe}")
            assert delete.status_code in (404, 422), (kind, hostile, delete.text)
        for param in ("start", "end", "period", "step"):
            response = api.get("/api/v1/sites/s1/balance", params={param: hostile})
            assert response.status_code == 422, (param, hostile, response.text)
            assert response.json()["detail"], (param, hostile)
    assert _state(api) == before


def test_hostile_text_in_a_record_is_kept_as_text(api: TestClient) -> None:
    before = _state(api)
    body = [
        {
            "name": hostile[:200],
            "category": "structure",
            "quantity": 1,
            "unit": "kg",
            "factor_kgco2e_per_unit": 1,
            "reused": False,
            "source": hostile[:200],
        }
        for hostile in HOSTILE
        if "\x00" not in hostile
    ]
    response = api.post("/api/v1/sites/s1/materials", json=body)
    assert response.status_code == 201, response.text
    stored = api.get("/api/v1/sites/s1/materials").json()
    # Kept as text (the model strips surrounding whitespace, nothing else).
    assert [m["material"]["name"] for m in stored] == [m["name"].strip() for m in body]
    assert _state(api)[0] == before[0]  # the readings did not move
