"""The one backoff rule every retry loop follows (microville/backoff.py)."""

from __future__ import annotations

import pytest

from microville.backoff import Backoff, backoff_delay


def test_delays_double_from_the_first_and_stop_at_the_cap() -> None:
    b = Backoff(0.5, 3.0)
    assert b.pending_s == 0.5
    assert [b.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.reset()
    assert b.next() == 0.5


def test_the_stateless_rule_matches_the_state() -> None:
    b = Backoff(5.0, 3600.0)
    assert [b.next() for _ in range(12)] == [backoff_delay(k, 5.0, 3600.0) for k in range(1, 13)]
    assert backoff_delay(10_000, 5.0, 3600.0) == 3600.0  # no overflow after many failures


def test_negative_backoffs_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Backoff(-1.0, 1.0)
