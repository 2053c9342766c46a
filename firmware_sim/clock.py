"""An accelerated clock shared by the emulators and, in simulations, the gateway."""

from __future__ import annotations

from datetime import UTC, datetime


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
        self._real_start = datetime.now(UTC)

    def restart(self) -> None:
        """Simulated time is ``start`` again, now."""
        self._real_start = datetime.now(UTC)

    def at(self, real: datetime) -> datetime:
        """The simulated time at the real (wall-clock) instant ``real``."""
        return self.start + (real - self._real_start) * self.speed

    def now(self) -> datetime:
        return self.at(datetime.now(UTC))

    def real_seconds_until(self, t: datetime) -> float:
        """Real seconds until the simulated time reaches ``t`` (negative when past)."""
        return (t - self.now()).total_seconds() / self.speed
