"""The indicators API over both stores, on hand-computed data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers.services import free_port, running_mosquitto
from helpers.support import GRID_AND_PV_METERS, SITE_S1

from domain.readings import Reading
from domain.store import ReadingStore
from microville.settings import Settings
from service.app import create_app
from stores import open_store
from stores.influx import InfluxStore

CONFIG = SITE_S1 + GRID_AND_PV_METERS

# Hourly readings from 2026-10-23T00Z to 2026-10-27T00Z; per hour the indexes grow by
# pv 100 Wh, import 50 Wh, export 30 Wh.
T0 = datetime(2026, 10, 23, tzinfo=UTC)
HOURS = 4 * 24
MISSING = {datetime(2026, 10, 25, h, tzinfo=UTC) for h in (9, 10, 11)}


def _seed(store: ReadingStore, skip: set[datetime] = frozenset()) -> None:  # type: ignore[assignment]
    readings = []
    for h in range(HOURS + 1):
        t = T0 + timedelta(hours=h)
        if t in skip:
            continue
        readings += [
            Reading("s1", "pv", "energy", 100.0 * h, t),
            Reading("s1", "in", "energy", 5000.0 + 50.0 * h, t),
            Reading("s1", "out", "energy", 30.0 * h, t),
        ]
    store.write(readings)


@pytest.fixture
def client(tmp_path: Path, store: ReadingStore, mosquitto_url: str) -> Iterator[TestClient]:
    config = tmp_path / "sites.toml"
    config.write_text(CONFIG)
    app = create_app(Settings(config=str(config), mqtt_url=mosquitto_url), store=store)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def sqlite_client(tmp_path: Path) -> Iterator[TestClient]:
    """For requests refused before any store is read: one adapter is enough."""
    config = tmp_path / "sites.toml"
    config.write_text(CONFIG)
    store = open_store(f"sqlite:///{tmp_path}/readings.db")
    with TestClient(create_app(Settings(config=str(config)), store=store)) as c:
        yield c
    store.close()


def _balance(client: TestClient, **params: str) -> dict:  # type: ignore[type-arg]
    resp = client.get("/api/v1/sites/s1/balance", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_daily_balance_across_the_autumn_dst_switch(
    client: TestClient, store: ReadingStore
) -> None:
    _seed(store)
    body = _balance(client, start="2026-10-24", end="2026-10-27", step="day")
    days = body["periods"]
    assert [d["start"] for d in days] == [
        "2026-10-24T00:00:00+02:00",
        "2026-10-25T00:00:00+02:00",
        "2026-10-26T00:00:00+01:00",
    ]
    # 24 h, 25 h (clocks go back), 24 h.
    assert [d["production_kwh"] for d in days] == pytest.approx([2.4, 2.5, 2.4])
    assert [d["import_kwh"] for d in days] == pytest.approx([1.2, 1.25, 1.2])
    assert [d["export_kwh"] for d in days] == pytest.approx([0.72, 0.75, 0.72])
    oct25 = days[1]
    assert oct25["consumption_kwh"] == pytest.approx(3.0)  # 1.25 + 2.5 − 0.75
    assert oct25["net_kwh"] == pytest.approx(-0.5)  # 2.5 − 3.0
    assert oct25["net_kwh_per_m2"] == pytest.approx(-0.005)
    assert oct25["self_consumption"] == pytest.approx(0.7)  # 1.75 / 2.5
    assert oct25["self_sufficiency"] == pytest.approx(1.75 / 3.0)
    assert oct25["coverage"] == 1.0
    total = body["total"]
    assert total["production_kwh"] == pytest.approx(7.3)
    assert total["consumption_kwh"] == pytest.approx(3.65 + 7.3 - 2.19)
    assert {m["id"]: m["energy_kwh"] for m in body["meters"]} == pytest.approx(
        {"pv": 7.3, "in": 3.65, "out": 2.19}
    )


def test_gap_keeps_energy_and_lowers_coverage(client: TestClient, store: ReadingStore) -> None:
    _seed(store, skip=MISSING)
    body = _balance(client, start="2026-10-24", end="2026-10-27", step="day")
    oct25 = body["periods"][1]
    assert oct25["production_kwh"] == pytest.approx(2.5)  # known from the index on each side
    assert oct25["coverage"] == pytest.approx(22 / 25)  # 3 of 25 hourly slots empty
    assert body["periods"][0]["coverage"] == 1.0
    assert body["total"]["coverage"] == pytest.approx(1 - 3 / 73)


def test_hourly_step_gives_25_hours_on_the_long_day(
    client: TestClient, store: ReadingStore
) -> None:
    _seed(store)
    body = _balance(client, start="2026-10-25", end="2026-10-26", step="hour")
    assert len(body["periods"]) == 25
    assert all(p["production_kwh"] == pytest.approx(0.1) for p in body["periods"])
    assert body["periods"][2]["start"] == "2026-10-25T02:00:00+02:00"
    assert body["periods"][3]["start"] == "2026-10-25T02:00:00+01:00"


def test_month_step_reports_partial_coverage(client: TestClient, store: ReadingStore) -> None:
    _seed(store)
    body = _balance(client, start="2026-10-01", end="2026-11-01", step="month")
    (october,) = body["periods"]
    # Readings at every hour from 2026-10-23T00Z to 27T00Z, each in its own slot: 97
    # filled slots of the 745 hours of October (31 × 24 + the repeated hour).
    assert october["coverage"] == pytest.approx(97 / 745)
    assert october["production_kwh"] == pytest.approx(9.6)


@pytest.mark.parametrize("start", ["2026-10-24T00:00:01", "2026-10-24T00:15"])
def test_coverage_of_a_range_not_on_the_hour(
    client: TestClient, store: ReadingStore, start: str
) -> None:
    # Perfect hourly data; the range starts a second or a quarter past local midnight, so
    # the store's slots are 1 s or 15 min wide. Every hour of the range still holds a
    # reading: coverage 1 and nothing estimated (a gap is an hour without a reading, not
    # an empty 1-second slot). Before: 0.00028 (1 s) and 0.25 (15 min), all estimated.
    _seed(store)
    body = _balance(client, start=start, end="2026-10-27", step="day")
    assert [p["coverage"] for p in body["periods"]] == pytest.approx([1.0, 1.0, 1.0])
    assert body["total"]["coverage"] == pytest.approx(1.0)
    assert body["total"]["estimated_kwh"] == 0.0
    assert all(m["coverage"] == pytest.approx(1.0) for m in body["meters"])
    assert all(m["estimated_kwh"] == 0.0 for m in body["meters"])
    # The first reading inside the range is at 01:00 local: the hour 00:00 → 01:00 is in
    # the first day, so the three days still hold 24, 25 and 24 hourly steps.
    assert [p["production_kwh"] for p in body["periods"]] == pytest.approx([2.4, 2.5, 2.4])


def test_coverage_of_an_hour_with_a_gap_in_a_range_off_the_hour(
    client: TestClient, store: ReadingStore
) -> None:
    _seed(store, skip=MISSING)  # no reading in three hours of 25 October
    body = _balance(client, start="2026-10-24T00:15", end="2026-10-27", step="day")
    oct24, oct25, _ = body["periods"]
    assert oct24["coverage"] == pytest.approx(1.0)
    assert oct25["coverage"] == pytest.approx(22 / 25)
    # The index on each side of the gap spreads 4 hours' energy: 0.4 kWh of PV, 0.2 of
    # import, 0.12 of export are estimated; everything else was measured.
    assert oct25["estimated_kwh"] == pytest.approx(0.4 + 0.2 + 0.12)
    assert oct24["estimated_kwh"] == 0.0


def test_coverage_of_the_default_range(
    client: TestClient, store: ReadingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No parameters: from the first of the month to now + 1 s (a range ending at an odd
    # second). Readings every hour of the month, the last one at 14:00Z.
    now = datetime(2026, 10, 26, 14, 23, 45, tzinfo=UTC)
    # The app's clock (create_app(clock=...)) reads this instant.
    monkeypatch.setattr(client.app.state, "clock", lambda: now)
    month_start = datetime(2026, 9, 30, 22, tzinfo=UTC)  # 1 October 00:00+02:00
    hours = int((datetime(2026, 10, 26, 14, tzinfo=UTC) - month_start) / timedelta(hours=1))
    store.write(
        [
            Reading("s1", m, "energy", 10.0 * h, month_start + timedelta(hours=h))
            for h in range(hours + 1)
            for m in ("pv", "in", "out")
        ]
    )
    resp = client.get("/api/v1/sites/s1/balance")
    assert resp.status_code == 200, resp.text
    total = resp.json()["total"]
    # Only the current hour, 14:00Z → 14:23:46Z, holds no reading yet (was 0.039).
    length = (now + timedelta(seconds=1) - month_start).total_seconds()
    assert total["coverage"] == pytest.approx(1 - (23 * 60 + 46) / length)
    assert total["estimated_kwh"] == 0.0
    assert total["production_kwh"] == pytest.approx(hours * 10 / 1000)


@pytest.mark.parametrize(
    "endpoint", ["balance", "energy", "carbon", "waste", "targets", "waste-entries"]
)
@pytest.mark.parametrize(
    "query, name",
    [
        ("period=0000", "period"),
        ("period=9999", "period"),
        ("period=0000-01", "period"),
        ("period=9999-12", "period"),
        ("period=0001-01-01", "period"),
        ("period=9999-12-31", "period"),
        ("start=0001-01-01", "start"),
        ("start=9999-12-31", "start"),
        ("start=2026-10-01&end=9999-12-31T23:59:59", "end"),
        ("start=0001-01-01T00:00:00%2B14:00", "start"),
    ],
)
def test_out_of_range_dates_are_a_422_naming_the_parameter(
    sqlite_client: TestClient, endpoint: str, query: str, name: str
) -> None:
    # Years 0 and 9999 were a 500 (ValueError or OverflowError building the bounds).
    resp = sqlite_client.get(f"/api/v1/sites/s1/{endpoint}?{query}")
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"].startswith(f"{name}: "), resp.text
    assert "out of range" in resp.json()["detail"]


def test_sites_listing(client: TestClient) -> None:
    resp = client.get("/api/v1/sites")
    assert resp.status_code == 200
    (site,) = resp.json()
    assert site["id"] == "s1" and site["timezone"] == "Europe/Paris"
    assert [m["role"] for m in site["meters"]] == ["production", "grid_import", "grid_export"]
    # One site (the dashboards' timezone variable asks it), the same as in the list.
    one = client.get("/api/v1/sites/s1")
    assert one.status_code == 200 and one.json() == site
    assert client.get("/api/v1/sites/nope").status_code == 404


@pytest.mark.parametrize(
    "path, status, message",
    [
        ("/api/v1/sites/nope/balance", 404, "unknown site 'nope'"),
        ("/api/v1/sites/s1/balance?start=yesterday", 422, "start: 'yesterday' is not an ISO 8601"),
        ("/api/v1/sites/s1/balance?start=2026-10-01&end=2026-13-01", 422, "end: '2026-13-01'"),
        (
            "/api/v1/sites/s1/balance?start=2026-10-02&end=2026-10-01",
            422,
            "end must be after start",
        ),
        ("/api/v1/sites/s1/balance?step=week", 422, "'hour', 'day', 'month' or 'year'"),
        ("/api/v1/sites/s1/balance?start=2026-10-01T10:00:00.5", 422, "whole seconds"),
        (
            "/api/v1/sites/s1/balance?start=2000-01-01&end=2026-01-01&step=hour",
            422,
            "at most 100000",
        ),
    ],
)
def test_bad_requests_get_a_message_naming_the_problem(
    client: TestClient, path: str, status: int, message: str
) -> None:
    resp = client.get(path)
    assert resp.status_code == status
    assert message in resp.text


def test_health_reports_store_and_broker(client: TestClient) -> None:
    resp = client.get("/health")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "store": "ok", "broker": "ok"}


def test_health_is_degraded_when_broker_is_unreachable(tmp_path: Path, store: ReadingStore) -> None:
    config = tmp_path / "sites.toml"
    config.write_text(CONFIG)
    app = create_app(Settings(config=str(config), mqtt_url="mqtt://127.0.0.1:9"), store=store)
    with TestClient(app) as c:
        resp = c.get("/health")
    # 503, so that the compose healthcheck (urlopen raises on it) marks the service.
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "degraded" and body["store"] == "ok"
    assert body["broker"].startswith("unreachable")


def test_health_is_degraded_when_the_store_is_unreachable(tmp_path: Path) -> None:
    config = tmp_path / "sites.toml"
    config.write_text(CONFIG)
    dead = InfluxStore(f"http://127.0.0.1:{free_port()}", "nowhere")
    app = create_app(Settings(config=str(config)), store=dead)
    with TestClient(app) as c:
        resp = c.get("/health")
    assert resp.status_code == 503
    assert resp.json()["status"] == "degraded" and resp.json()["store"].startswith("error")


def test_health_is_degraded_when_the_database_is_missing(tmp_path: Path, influxdb_url: str) -> None:
    """InfluxDB answers /ping to anyone: the health check queries the database, as the
    API does, so a wrong database (or wrong credentials) is not "ok"."""
    config = tmp_path / "sites.toml"
    config.write_text(CONFIG)
    missing = InfluxStore(influxdb_url, f"missing{free_port()}", create_database=False)
    app = create_app(Settings(config=str(config)), store=missing)
    with TestClient(app) as c:
        resp = c.get("/health")
    assert resp.status_code == 503
    assert "database not found" in resp.json()["store"]


def test_health_is_degraded_when_the_broker_refuses_the_account(
    tmp_path: Path, store: ReadingStore
) -> None:
    """A TCP connect would pass: the check logs in, and a refused account is "refused"."""
    config = tmp_path / "sites.toml"
    config.write_text(CONFIG)
    with running_mosquitto(tmp_path / "broker", users={"service": "right"}) as port:
        health = {}
        for password, name in (("right", "right"), ("wrong", "wrong")):
            settings = Settings(
                config=str(config),
                mqtt_url=f"mqtt://127.0.0.1:{port}",
                mqtt_username="service",
                mqtt_password=password,
            )
            with TestClient(create_app(settings, store=store)) as c:
                resp = c.get("/health")
            health[name] = (resp.status_code, resp.json()["broker"])
    assert health["right"] == (200, "ok")
    assert health["wrong"][0] == 503 and health["wrong"][1].startswith("refused")


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert "/api/v1/sites/{site}/balance" in client.get("/openapi.json").json()["paths"]


def test_day_profile_is_the_hourly_balance_by_local_clock_hour(
    client: TestClient, store: ReadingStore
) -> None:
    """The heat map of the day: each local day's flow per clock hour, equal to the
    hourly balance; the 25-hour day adds both 02:00 hours into h02, the 23-hour day has
    no h02."""
    # 2026-03-28 to 2026-03-30 and 2026-10-24 to 2026-10-26 (Paris), hourly indexes.
    for t0, hours in (
        (datetime(2026, 3, 27, 22, tzinfo=UTC), 75),
        (datetime(2026, 10, 23, 21, tzinfo=UTC), 77),
    ):
        store.write(
            [
                # Each hour draws more than the one before: every hour is told apart.
                Reading("s1", m, "energy", wh * (h + 1) * (h + 2) / 2, t0 + timedelta(hours=h))
                for h in range(hours)
                for m, wh in (("pv", 10), ("in", 5), ("out", 3))
            ]
        )
    for start, end in (("2026-03-28", "2026-03-31"), ("2026-10-24", "2026-10-27")):
        resp = client.get(
            "/api/v1/sites/s1/profile", params={"start": start, "end": end, "flow": "import"}
        )
        assert resp.status_code == 200, resp.text
        days = resp.json()["days"]
        hourly = client.get(
            "/api/v1/sites/s1/balance", params={"start": start, "end": end, "step": "hour"}
        ).json()["periods"]
        assert [d["day"] for d in days] == [
            (datetime.fromisoformat(start) + timedelta(days=k)).date().isoformat() for k in range(3)
        ]
        by_day: dict[str, dict[int, float]] = {}
        for p in hourly:
            local = datetime.fromisoformat(p["start"])
            slot = by_day.setdefault(local.date().isoformat(), {})
            slot[local.hour] = slot.get(local.hour, 0.0) + p["import_kwh"]
        for d in days:
            expected = by_day[d["day"]]
            for h in range(24):
                value = d[f"h{h:02d}"]
                if h in expected:
                    assert value == pytest.approx(expected[h]), (d["day"], h)
                else:
                    assert value is None, (d["day"], h)
    spring = client.get("/api/v1/sites/s1/profile", params={"period": "2026-03-29"}).json()
    assert spring["days"][0]["h02"] is None and spring["days"][0]["h03"] is not None
    autumn = client.get("/api/v1/sites/s1/profile", params={"period": "2026-10-25"}).json()
    hours_25 = client.get(
        "/api/v1/sites/s1/balance", params={"period": "2026-10-25", "step": "hour"}
    ).json()["periods"]
    assert len(hours_25) == 25
    both_2am = [p["import_kwh"] for p in hours_25 if p["start"][11:13] == "02"]
    assert len(both_2am) == 2
    assert autumn["days"][0]["h02"] == pytest.approx(sum(both_2am))
    bad = client.get("/api/v1/sites/s1/profile", params={"period": "2026-10", "flow": "gas"})
    assert bad.status_code == 422 and "flow: 'gas'" in bad.text


def test_the_readme_names_the_per_meter_fields_balance_returns(
    sqlite_client: TestClient,
) -> None:
    """The API reference's list (docs/reference/api.md) of what ``/balance`` gives per
    meter is the API's: each field it names is in the OpenAPI schema and in a real
    response, and each field these have is named (the README once promised a
    ``backward_jumps`` the API never had)."""
    import re

    page = Path(__file__).resolve().parents[3] / "docs" / "reference" / "api.md"
    readme = page.read_text(encoding="utf-8")
    section = readme[readme.index("GET /api/v1/sites/{site}/balance") :]
    per_meter = section[section.index("- per meter, under `meters`") : section.index("Unknown")]
    documented = set(re.findall(r"`(\w+)`", per_meter)) - {"meters"}

    spec = sqlite_client.get("/openapi.json").json()
    ok = spec["paths"]["/api/v1/sites/{site}/balance"]["get"]["responses"]["200"]
    balance = ok["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    meters = spec["components"]["schemas"][balance]["properties"]["meters"]["items"]["$ref"]
    in_schema = set(spec["components"]["schemas"][meters.rsplit("/", 1)[-1]]["properties"])
    assert documented == in_schema

    body = _balance(sqlite_client, start="2026-10-24", end="2026-10-25")
    assert body["meters"] and all(set(m) == documented for m in body["meters"])
