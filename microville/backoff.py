"""Exponential backoff, the one rule every retry loop follows (batch writer, serial line,
Modbus line, alert outbox): the first retry after ``initial_s``, each next one twice as
long, capped at ``max_s``; a success starts again from ``initial_s``."""

from __future__ import annotations


def backoff_delay(failures: int, initial_s: float, max_s: float) -> float:
    """Wait before the next attempt after ``failures`` failed ones in a row.

    Parameters
    ----------
    failures : int
        Failed attempts so far (≥ 1 for a retry; 0 gives ``initial_s`` too).
    initial_s, max_s : s
        First wait and cap.
    """
    return min(max_s, initial_s * 2.0 ** min(max(failures - 1, 0), 64))


class Backoff:
    """The state of one retry loop: ``next()`` after each failure gives the wait owed,
    ``reset()`` after a success."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        if initial_s < 0 or max_s < 0:
            raise ValueError("backoffs must not be negative")
        self.initial_s = initial_s
        self.max_s = max_s
        self.failures = 0

    @property
    def pending_s(self) -> float:
        """The wait the next failure will owe."""
        return backoff_delay(self.failures + 1, self.initial_s, self.max_s)

    def next(self) -> float:
        self.failures += 1
        return backoff_delay(self.failures, self.initial_s, self.max_s)

    def reset(self) -> None:
        self.failures = 0
