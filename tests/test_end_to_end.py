"""Simulator → real Mosquitto → gateway → store (real InfluxDB, SQLite) → API.

A month of the sample building, published as its devices would, must come back from
the API within 0.1 % of the simulator's ground truth.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import SAMPLE_CONFIG
from fastapi.testclient import TestClient

from microville.domain.periods import localize
from microville.domain.site import read_sites
from microville.domain.store import ReadingStore
from microville.firmware_sim.publisher import run_simulation
from microville.gateway.gateway import Gateway
from microville.gateway.sources import SourceOptions
from microville.mqtt import MqttSettings
from microville.service.app import create_app
from microville.settings import Settings

STEP = timedelta(minutes=15)


@pytest.mark.e2e
def test_a_month_through_the_whole_chain_matches_ground_truth(
    mosquitto_url: str, store: ReadingStore, tmp_path: Path
) -> None:
    sites = read_sites(SAMPLE_CONFIG)
    site = sites.sites[0]
    mqtt = MqttSettings(url=mosquitto_url)
    # October holds the autumn clock change: the month is 745 hours long.
    start = localize(datetime(2026, 10, 1), site.tz)
    end = localize(datetime(2026, 11, 1), site.tz)

    gateway = Gateway(sites, store, SourceOptions(mqtt, f"e2e-{tmp_path.name}"), batch_delay_s=0.2)
    gateway.start()
    try:
        assert gateway.wait_ready(10)
        truth = run_simulation([site], mqtt, start, end, STEP, seed=7, speed=0)[site.id]
        steps = (end.timestamp() - start.timestamp()) / STEP.total_seconds()  # 745 h, in UTC
        expected = (int(steps) + 1) * len(site.meters)
        deadline = time.monotonic() + 120
        while store.count(site.id) < expected and time.monotonic() < deadline:
            time.sleep(0.2)
        assert store.count(site.id) == expected
        assert gateway.dead_letters.total == 0
    finally:
        gateway.stop()

    app = create_app(Settings(config=str(SAMPLE_CONFIG), mqtt_url=mosquitto_url), store=store)
    with TestClient(app) as client:
        month = client.get(
            f"/api/v1/sites/{site.id}/balance",
            params={"start": "2026-10-01", "end": "2026-11-01", "step": "month"},
        )
        days = client.get(
            f"/api/v1/sites/{site.id}/balance",
            params={"start": "2026-10-01", "end": "2026-11-01", "step": "day"},
        )
    assert month.status_code == 200 and days.status_code == 200
    (october,) = month.json()["periods"]
    for figure in ("production", "import", "export", "consumption"):
        assert october[f"{figure}_kwh"] == pytest.approx(truth[f"{figure}_wh"] / 1000, rel=1e-3), (
            figure
        )
    assert truth["production_wh"] > 0 and truth["import_wh"] > 0 and truth["export_wh"] > 0
    assert october["coverage"] == 1.0
    # The 31 local days add up to the month, the 25-hour day included.
    daily = days.json()["periods"]
    assert len(daily) == 31
    assert sum(d["production_kwh"] for d in daily) == pytest.approx(
        october["production_kwh"], rel=1e-9
    )
    assert daily[24]["start"] == "2026-10-25T00:00:00+02:00"
    assert daily[25]["start"] == "2026-10-26T00:00:00+01:00"
