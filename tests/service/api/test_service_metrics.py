"""The service's /metrics: requests by route template and status, latency, store calls,
alert evaluations and the age of each meter's last reading, in an app's own registry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers.services import free_port
from helpers.support import GRID_AND_PV_METERS, SITE_S1
from prometheus_client.parser import text_string_to_metric_families

from domain.clock import fixed_clock
from domain.readings import Reading
from domain.store import ReadingStore
from microville.settings import Settings
from service.app import create_app
from stores import open_store
from stores.influx import InfluxStore

BALANCE = "/api/v1/sites/{site}/balance"


def _samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "sites.toml"
    path.write_text(SITE_S1 + GRID_AND_PV_METERS)
    return path


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[ReadingStore]:
    s = open_store(f"sqlite:///{tmp_path}/readings.db")
    yield s
    s.close()


def test_requests_are_counted_by_route_template_and_status(
    config: Path, sqlite_store: ReadingStore
) -> None:
    app = create_app(Settings(config=str(config)), store=sqlite_store)
    with TestClient(app) as client:
        for _ in range(2):
            ok = client.get("/api/v1/sites/s1/balance", params={"start": "2026-10-01"})
            assert ok.status_code == 200
        assert client.get("/api/v1/sites/nowhere/balance").status_code == 404
        assert client.get("/no/such/path").status_code == 404
        samples = _samples(client)
    total = "microville_http_requests_total"
    assert _value(samples, total, method="GET", route=BALANCE, status="200") == 2
    # The template, not the path: a probe of many sites makes no new series.
    assert _value(samples, total, method="GET", route=BALANCE, status="404") == 1
    assert _value(samples, total, method="GET", route="unmatched", status="404") == 1
    assert not any("nowhere" in str(labels) for _, labels in samples)
    count = "microville_http_request_duration_seconds_count"
    assert _value(samples, count, method="GET", route=BALANCE) == 3
    # Two balances, one query of the store each for the index slots.
    assert (
        _value(samples, "microville_store_query_duration_seconds_count", operation="index_slots")
        == 2
    )


def test_alert_evaluations_and_last_reading_ages(
    config: Path, sqlite_store: ReadingStore, now: datetime
) -> None:
    seen = now.replace(microsecond=0) - timedelta(hours=1)
    sqlite_store.write([Reading("s1", "pv", "energy", 1000.0, seen)])
    app = create_app(Settings(config=str(config)), store=sqlite_store, clock=fixed_clock(now))
    with TestClient(app) as client:
        assert client.post("/api/v1/sites/s1/alerts/evaluate").status_code == 200
        samples = _samples(client)
    assert _value(samples, "microville_alert_evaluations_total", outcome="ok") == 1
    assert _value(samples, "microville_alert_evaluation_duration_seconds_count") == 1
    age = _value(samples, "microville_last_reading_age_seconds", site="s1", meter="pv")
    assert age == (now - seen).total_seconds()
    # A meter never heard from has no age (not a zero that would read "fresh").
    ages = {
        dict(labels)["meter"]
        for name, labels in samples
        if name == "microville_last_reading_age_seconds"
    }
    assert ages == {"pv"}


def test_store_errors_are_counted_and_the_scrape_still_answers(config: Path) -> None:
    down = InfluxStore(f"http://127.0.0.1:{free_port()}", "db", create_database=False)
    app = create_app(Settings(config=str(config)), store=down)
    with TestClient(app) as client:
        response = client.get("/api/v1/sites/s1/balance")
        assert response.status_code == 503 and "store unavailable" in response.text
        samples = _samples(client)
    assert _value(samples, "microville_store_errors_total", operation="index_slots") == 1
    down.close()


def test_each_app_has_its_own_registry(config: Path, sqlite_store: ReadingStore) -> None:
    first = create_app(Settings(config=str(config)), store=sqlite_store)
    second = create_app(Settings(config=str(config)), store=sqlite_store)
    with TestClient(first) as a, TestClient(second) as b:
        assert a.get("/api/v1/sites").status_code == 200
        total = "microville_http_requests_total"
        labels = {"method": "GET", "route": "/api/v1/sites", "status": "200"}
        assert _value(_samples(a), total, **labels) == 1
        assert _value(_samples(b), total, **labels) == 0
