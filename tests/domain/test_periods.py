"""Period boundaries in local time, across the DST changes of Europe/Paris.

2026 in Europe/Paris: clocks go forward on Sunday 29 March at 02:00 (+01:00 → +02:00,
a 23 h day) and back on Sunday 25 October at 03:00 (+02:00 → +01:00, a 25 h day).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from domain.periods import Step, common_slot, localize, period_bounds

PARIS = ZoneInfo("Europe/Paris")
H = timedelta(hours=1)


def _durations(bounds: list[datetime]) -> list[timedelta]:
    """Real elapsed time of each period (in UTC: same-tzinfo subtraction is wall clock)."""
    utc = [b.astimezone(UTC) for b in bounds]
    return [b - a for a, b in pairwise(utc)]


def _iso(bounds: list[datetime]) -> list[str]:
    return [b.isoformat() for b in bounds]


def _assert_strictly_increasing(bounds: list[datetime]) -> None:
    stamps = [b.timestamp() for b in bounds]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)


# ---------------------------------------------------------------- days


def test_spring_forward_day_lasts_23_hours() -> None:
    bounds = period_bounds(datetime(2026, 3, 29), datetime(2026, 3, 30), Step.DAY, PARIS)
    assert _iso(bounds) == ["2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"]
    assert _durations(bounds) == [23 * H]  # 00:00+01 = 23:00Z(28th) → 00:00+02 = 22:00Z(29th)


def test_fall_back_day_lasts_25_hours() -> None:
    bounds = period_bounds(datetime(2026, 10, 25), datetime(2026, 10, 26), Step.DAY, PARIS)
    assert _iso(bounds) == ["2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00"]
    assert _durations(bounds) == [25 * H]  # 22:00Z(24th) → 23:00Z(25th)


def test_days_around_spring_forward() -> None:
    bounds = period_bounds(datetime(2026, 3, 28), datetime(2026, 3, 31), Step.DAY, PARIS)
    assert _durations(bounds) == [24 * H, 23 * H, 24 * H]
    assert all(b.astimezone(PARIS).time() == datetime.min.time() for b in bounds)


def test_bounds_are_in_the_site_timezone() -> None:
    bounds = period_bounds(datetime(2026, 10, 24), datetime(2026, 10, 27), Step.DAY, PARIS)
    assert all(b.tzinfo == PARIS for b in bounds)
    assert _durations(bounds) == [24 * H, 25 * H, 24 * H]


# ---------------------------------------------------------------- hours


def test_fall_back_day_has_25_hours() -> None:
    bounds = period_bounds(datetime(2026, 10, 25), datetime(2026, 10, 26), Step.HOUR, PARIS)
    assert len(bounds) - 1 == 25
    assert _durations(bounds) == [H] * 25
    _assert_strictly_increasing(bounds)
    # 02:00 local happens twice: first at +02:00 (00:00Z), then at +01:00 (01:00Z).
    iso = _iso(bounds)
    assert iso[2:5] == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_spring_forward_day_has_23_hours() -> None:
    bounds = period_bounds(datetime(2026, 3, 29), datetime(2026, 3, 30), Step.HOUR, PARIS)
    assert len(bounds) - 1 == 23
    assert _durations(bounds) == [H] * 23
    # 02:00 local never happens: 01:00+01:00 (00:00Z) is followed by 03:00+02:00 (01:00Z).
    assert _iso(bounds)[1:3] == ["2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00"]


def test_partial_hours_at_both_ends() -> None:
    start, end = datetime(2026, 1, 15, 10, 7), datetime(2026, 1, 15, 12, 30)
    bounds = period_bounds(start, end, Step.HOUR, PARIS)
    assert _iso(bounds) == [
        "2026-01-15T10:07:00+01:00",
        "2026-01-15T11:00:00+01:00",
        "2026-01-15T12:00:00+01:00",
        "2026-01-15T12:30:00+01:00",
    ]
    assert _durations(bounds) == [timedelta(minutes=53), H, timedelta(minutes=30)]


def test_hours_ending_inside_the_repeated_hour_first_pass() -> None:
    # End at 02:30 local, first occurrence (+02:00) = 00:30Z: the second 02:00 (01:00Z)
    # comes after the end and must not be a boundary.
    bounds = period_bounds(datetime(2026, 10, 25), datetime(2026, 10, 25, 2, 30), Step.HOUR, PARIS)
    assert [b.astimezone(UTC).isoformat() for b in bounds] == [
        "2026-10-24T22:00:00+00:00",
        "2026-10-24T23:00:00+00:00",
        "2026-10-25T00:00:00+00:00",
        "2026-10-25T00:30:00+00:00",
    ]


def test_start_and_end_in_the_repeated_hour_compare_in_real_time() -> None:
    # 02:50+02:00 (00:50Z) then 02:10+01:00 (01:10Z): the end is 20 min later in real
    # time although its wall clock reads earlier.
    start = datetime(2026, 10, 25, 0, 50, tzinfo=UTC)
    end = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)
    bounds = period_bounds(start, end, Step.HOUR, PARIS)
    assert [b.astimezone(UTC) for b in bounds] == [start, start + 10 * timedelta(minutes=1), end]
    with pytest.raises(ValueError):
        period_bounds(end, start, Step.HOUR, PARIS)


# ---------------------------------------------------------------- months and years


def test_twelve_months_start_at_local_midnight_on_the_first() -> None:
    bounds = period_bounds(datetime(2026, 1, 1), datetime(2027, 1, 1), Step.MONTH, PARIS)
    assert len(bounds) - 1 == 12
    # Summer time (+02:00) from 29 March to 25 October: April … October start at +02:00.
    expected = [
        f"2026-{m:02d}-01T00:00:00+0{2 if 4 <= m <= 10 else 1}:00" for m in range(1, 13)
    ] + ["2027-01-01T00:00:00+01:00"]
    assert _iso(bounds) == expected
    durations = _durations(bounds)
    assert durations[0] == 31 * 24 * H  # January
    assert durations[1] == 28 * 24 * H  # February 2026, not a leap year
    assert durations[2] == (31 * 24 - 1) * H  # March loses an hour: 743 h
    assert durations[9] == (31 * 24 + 1) * H  # October gains one: 745 h
    assert sum(durations, timedelta()) == 365 * 24 * H


def test_december_rolls_over_to_january() -> None:
    bounds = period_bounds(datetime(2026, 11, 15), datetime(2027, 2, 1), Step.MONTH, PARIS)
    assert _iso(bounds) == [
        "2026-11-15T00:00:00+01:00",  # partial first month
        "2026-12-01T00:00:00+01:00",
        "2027-01-01T00:00:00+01:00",
        "2027-02-01T00:00:00+01:00",
    ]


def test_years_with_partial_first_and_last() -> None:
    bounds = period_bounds(datetime(2025, 6, 15), datetime(2028, 3, 1), Step.YEAR, PARIS)
    assert _iso(bounds) == [
        "2025-06-15T00:00:00+02:00",
        "2026-01-01T00:00:00+01:00",
        "2027-01-01T00:00:00+01:00",
        "2028-01-01T00:00:00+01:00",
        "2028-03-01T00:00:00+01:00",
    ]
    # 2026 and 2027 are 365 days; Jan + Feb 2028 (leap) = 31 + 29 = 60 days.
    assert _durations(bounds)[1:] == [365 * 24 * H, 365 * 24 * H, 60 * 24 * H]


def test_partial_days_at_both_ends_over_the_25_hour_day() -> None:
    bounds = period_bounds(
        datetime(2026, 10, 24, 18, 30), datetime(2026, 10, 26, 6), Step.DAY, PARIS
    )
    assert _iso(bounds) == [
        "2026-10-24T18:30:00+02:00",
        "2026-10-25T00:00:00+02:00",
        "2026-10-26T00:00:00+01:00",
        "2026-10-26T06:00:00+01:00",
    ]
    # 18:30 → 24:00 = 5 h 30; the full 25 h day; 00:00 → 06:00 = 6 h.
    assert _durations(bounds) == [timedelta(hours=5, minutes=30), 25 * H, 6 * H]


# ---------------------------------------------------------------- inputs


def test_naive_inputs_are_local_wall_times() -> None:
    naive = period_bounds(datetime(2026, 1, 1), datetime(2026, 1, 2), Step.DAY, PARIS)
    # Local midnight in winter is 23:00Z the day before.
    aware = period_bounds(
        datetime(2025, 12, 31, 23, tzinfo=UTC),
        datetime(2026, 1, 1, 23, tzinfo=UTC),
        Step.DAY,
        PARIS,
    )
    assert naive == aware
    assert naive[0].astimezone(UTC) == datetime(2025, 12, 31, 23, tzinfo=UTC)
    assert naive[0].utcoffset() == H


def test_one_step_of_a_single_period() -> None:
    bounds = period_bounds(datetime(2026, 5, 1), datetime(2026, 6, 1), Step.MONTH, PARIS)
    assert _iso(bounds) == ["2026-05-01T00:00:00+02:00", "2026-06-01T00:00:00+02:00"]


@pytest.mark.parametrize("step", list(Step))
def test_end_not_after_start_is_an_error(step: Step) -> None:
    t = datetime(2026, 5, 1, 12)
    with pytest.raises(ValueError, match="end must be after start"):
        period_bounds(t, t, step, PARIS)
    with pytest.raises(ValueError, match="end must be after start"):
        period_bounds(t, t - timedelta(seconds=1), step, PARIS)


# ---------------------------------------------------------------- localize


def test_localize_non_existent_wall_time_moves_forward() -> None:
    # 02:30 does not exist on 29 March: read with the winter offset it is 01:30Z,
    # which the wall clock shows as 03:30+02:00.
    t = localize(datetime(2026, 3, 29, 2, 30), PARIS)
    assert t.isoformat() == "2026-03-29T03:30:00+02:00"
    assert t.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_localize_ambiguous_wall_time_takes_first_occurrence() -> None:
    t = localize(datetime(2026, 10, 25, 2, 30), PARIS)
    assert t.isoformat() == "2026-10-25T02:30:00+02:00"
    assert t.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_localize_converts_an_aware_time() -> None:
    t = localize(datetime(2026, 7, 1, 10, tzinfo=UTC), PARIS)
    assert t.isoformat() == "2026-07-01T12:00:00+02:00"


# ---------------------------------------------------------------- common_slot


def test_common_slot_paris_days_is_one_hour() -> None:
    bounds = period_bounds(datetime(2026, 3, 28), datetime(2026, 4, 2), Step.DAY, PARIS)
    assert common_slot(bounds) == H  # local midnights are 22:00Z or 23:00Z


def test_common_slot_kolkata_days_is_30_minutes() -> None:
    tz = ZoneInfo("Asia/Kolkata")  # +05:30: midnight is 18:30Z
    bounds = period_bounds(datetime(2026, 1, 1), datetime(2026, 1, 4), Step.DAY, tz)
    assert common_slot(bounds) == timedelta(minutes=30)


def test_common_slot_kathmandu_days_is_15_minutes() -> None:
    tz = ZoneInfo("Asia/Kathmandu")  # +05:45: midnight is 18:15Z
    bounds = period_bounds(datetime(2026, 1, 1), datetime(2026, 1, 4), Step.DAY, tz)
    assert common_slot(bounds) == timedelta(minutes=15)


def test_common_slot_odd_start_minute_is_one_minute() -> None:
    # 10:07+01:00 = 09:07Z: 7 min = 420 s past the hour; gcd(3600, 420) = 60 s.
    bounds = period_bounds(
        datetime(2026, 1, 15, 10, 7), datetime(2026, 1, 15, 12), Step.HOUR, PARIS
    )
    assert common_slot(bounds) == timedelta(seconds=60)


def test_common_slot_rejects_sub_second_bounds() -> None:
    bounds = [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 0, 500, tzinfo=UTC)]
    with pytest.raises(ValueError, match="whole seconds"):
        common_slot(bounds)
