"""Simulator → real Mosquitto → gateway → store (real InfluxDB, SQLite) → API.

A month of the sample building, published as its devices would, must come back from
the API within 0.1 % of the simulator's ground truth.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import SAMPLE_CONFIG
from fastapi.testclient import TestClient

from domain.periods import localize
from domain.site import read_sites
from domain.store import ReadingStore
from firmware_sim.publisher import run_simulation
from gateway.gateway import Gateway
from gateway.sources.registry import SourceOptions
from microville.mqtt import MqttSettings
from microville.settings import Settings
from service.app import create_app

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


TWO_SITES = """
[[sites]]
id = "angers"
name = "Angers"
timezone = "Europe/Paris"
floor_area_m2 = 1200
location = { lat = 47.47, lon = -0.55 }

[[sites.meters]]
id = "pv"
role = "production"
source = { topic = "angers/pv", format = "senml", name = "urn:dev:angers-pv:energy" }

[[sites.meters]]
id = "grid-import"
role = "grid_import"
source = { topic = "angers/linky", format = "senml", name = "urn:dev:angers-linky:import" }

[[sites.meters]]
id = "grid-export"
role = "grid_export"
source = { topic = "angers/linky", format = "senml", name = "urn:dev:angers-linky:export" }

[[sites]]
id = "kathmandu"
name = "Kathmandu"
timezone = "Asia/Kathmandu"
floor_area_m2 = 800
location = { lat = 27.7, lon = 85.32 }

[[sites.meters]]
id = "pv"
role = "production"
source = { topic = "kathmandu/pv", format = "senml", name = "urn:dev:ktm-pv:energy" }

[[sites.meters]]
id = "grid-import"
role = "grid_import"
source = { topic = "kathmandu/grid", format = "senml", name = "urn:dev:ktm-grid:import" }

[[sites.meters]]
id = "grid-export"
role = "grid_export"
source = { topic = "kathmandu/grid", format = "senml", name = "urn:dev:ktm-grid:export" }
"""


@pytest.mark.e2e
def test_two_sites_in_far_timezones_each_match_their_ground_truth(
    mosquitto_url: str, store: ReadingStore, tmp_path: Path
) -> None:
    # Paris (+01:00/+02:00) and Kathmandu (+05:45): `microville simulate` runs each site
    # from its own local midnight (it used Paris's start and Kathmandu's end for both,
    # and crashed); each site's local days must add up to its own ground truth.
    config = tmp_path / "sites.toml"
    config.write_text(TWO_SITES)
    sites = read_sites(config)
    truth_file = tmp_path / "truth.json"
    mqtt = MqttSettings(url=mosquitto_url)
    gateway = Gateway(sites, store, SourceOptions(mqtt, f"e2e2-{tmp_path.name}"), batch_delay_s=0.2)
    gateway.start()
    try:
        assert gateway.wait_ready(10)
        # October 24 to 27 holds Paris's 25-hour day; Kathmandu has no DST.
        done = subprocess.run(
            [sys.executable, "-m", "microville", "simulate", "-c", str(config), "--mqtt",
             mosquitto_url, "--start", "2026-10-24", "--days", "3", "--speed", "0",
             "--truth", str(truth_file)],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        # Readings every 15 minutes, both ends included: 73 h and 72 h, 3 meters each.
        expected = {"angers": (73 * 4 + 1) * 3, "kathmandu": (72 * 4 + 1) * 3}
        deadline = time.monotonic() + 120
        while any(store.count(s) < n for s, n in expected.items()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert {s: store.count(s) for s in expected} == expected
        assert gateway.dead_letters.total == 0
    finally:
        gateway.stop()
    truth = json.loads(truth_file.read_text())

    app = create_app(Settings(config=str(config), mqtt_url=mosquitto_url), store=store)
    with TestClient(app) as client:
        for site in sites.sites:
            resp = client.get(
                f"/api/v1/sites/{site.id}/balance",
                params={"start": "2026-10-24", "end": "2026-10-27", "step": "day"},
            )
            assert resp.status_code == 200, resp.text
            body = resp.json()
            total = body["total"]
            for figure in ("production", "import", "export", "consumption"):
                assert total[f"{figure}_kwh"] == pytest.approx(
                    truth[site.id][f"{figure}_kwh"], rel=1e-3
                ), (site.id, figure)
            assert truth[site.id]["production_kwh"] > 0 and truth[site.id]["import_kwh"] > 0
            assert total["coverage"] == 1.0 and total["estimated_kwh"] == 0.0
            assert [p["start"][-6:] for p in body["periods"]] == (
                ["+02:00", "+02:00", "+01:00"] if site.id == "angers" else ["+05:45"] * 3
            )
