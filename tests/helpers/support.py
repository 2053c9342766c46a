"""Small helpers shared by the integration tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from domain.readings import Reading
from domain.site import SitesConfig, read_sites
from domain.store import ReadingStore
from firmware_sim.building import simulate_building
from firmware_sim.payloads import is_simulated, meter_indexes

#: The shipped sample site (Microville 112) and the simulation seed the tests use with it.
SAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "microville" / "sites" / "microville112.toml"
SEED = 112

#: A one-site configuration header; tests append their own ``[[sites.meters]]``.
SITE_S1 = """
[[sites]]
id = "s1"
name = "Test site"
timezone = "Europe/Paris"
floor_area_m2 = 100
location = { lat = 47.47, lon = -0.55 }
"""


#: A grid meter and a PV meter (site-level keys must come before these tables).
GRID_AND_PV_METERS = """
[[sites.meters]]
id = "pv"
role = "production"
source = { topic = "s1/pv", format = "number" }

[[sites.meters]]
id = "in"
role = "grid_import"
source = { topic = "s1/in", format = "number" }

[[sites.meters]]
id = "out"
role = "grid_export"
source = { topic = "s1/out", format = "number" }
"""


def wait_until(predicate: Callable[[], bool], timeout_s: float = 15.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout_s`` passes; return the last answer."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def load_sample(store: ReadingStore, start: datetime, end: datetime) -> SitesConfig:
    """The sample site's simulated meters, every 30 minutes, written to ``store``."""
    config = read_sites(SAMPLE_CONFIG)
    site = config.sites[0]
    frame = simulate_building(site, start, end, timedelta(minutes=30), seed=SEED)
    indexes = meter_indexes([m for m in site.meters if is_simulated(m)], frame)
    store.write(
        [
            Reading(site.id, meter, "energy", float(v), t.to_pydatetime())
            for meter in indexes.columns
            for t, v in indexes[meter].items()
        ]
    )
    return config


class Clock:
    """A clock the test sets by hand (`clock.t = …`)."""

    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t
