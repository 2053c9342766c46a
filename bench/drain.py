"""How a consumer's drain of a queued backlog is timed: from the moment it is connected
until the store holds every reading sent."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Drain:
    """One consumer run. ``elapsed_s`` is ``None`` when the store never got everything."""

    expected: int
    stored: int = 0
    elapsed_s: float | None = None
    messages: int = 0
    peak_rss_mib: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.stored)

    def per_s(self, amount: int) -> float | None:
        if self.elapsed_s is None or self.elapsed_s <= 0:
            return None
        return amount / self.elapsed_s

    def details(self) -> dict[str, Any]:
        return {
            "expected_readings": self.expected,
            "stored_readings": self.stored,
            "lost_readings": self.lost,
            "messages": self.messages,
            "elapsed_s": None if self.elapsed_s is None else round(self.elapsed_s, 3),
            "peak_rss_mib": self.peak_rss_mib,
            **self.extra,
        }


def wait_for_count(
    count: Callable[[], int], expected: int, stall_s: float, poll_s: float = 0.2
) -> tuple[int, float | None]:
    """Poll ``count`` until it reaches ``expected``: (last count, monotonic time reached),
    or (last count, None) once it has not moved for ``stall_s``."""
    last, last_change = -1, time.monotonic()
    while True:
        n = count()
        now = time.monotonic()
        if n >= expected:
            return n, now
        if n != last:
            last, last_change = n, now
        elif now - last_change > stall_s:
            return n, None
        time.sleep(poll_s)
