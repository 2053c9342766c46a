"""Small helpers shared by the integration tests."""

from __future__ import annotations

import time
from collections.abc import Callable

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
