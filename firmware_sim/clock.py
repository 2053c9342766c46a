"""An accelerated clock shared by the emulators and, in simulations, the gateway."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class SimulatedClock:
    """Simulated time: ``start`` when created, running ``speed`` times real time.

    ``speed = 86400`` runs one simulated day per real second; ``speed = 1`` is real time
    (shifted to ``start``).
    """

    def __init__(self, start: datetime, speed: float) -> None:
        if speed <= 0:
            raise ValueError("a simulated clock needs a positive speed")
        self.start = start.astimezone(UTC)
        self.speed = speed
        self._real_start = time.monotonic()

    def now(self) -> datetime:
        elapsed_s = (time.monotonic() - self._real_start) * self.speed
        return self.start + timedelta(seconds=elapsed_s)

    def real_seconds_until(self, t: datetime) -> float:
        """Real seconds until the simulated time reaches ``t`` (negative when past)."""
        return (t - self.now()).total_seconds() / self.speed
