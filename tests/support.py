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


def wait_until(predicate: Callable[[], bool], timeout_s: float = 15.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout_s`` passes; return the last answer."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
