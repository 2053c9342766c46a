"""The time, as something code is handed rather than reads: tests and simulations pass
a clock of their own, production the system's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

#: A function returning the current instant, aware.
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The machine's time, in UTC."""
    return datetime.now(UTC)


def fixed_clock(instant: datetime) -> Clock:
    """A clock that always reads ``instant`` (aware)."""
    if instant.tzinfo is None:
        raise ValueError(f"fixed_clock needs an aware instant, got {instant.isoformat()}")
    return lambda: instant
