"""Data quality in energy_per_period: resets, rollovers, glitches, gaps, silences, DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.balance import MeterEnergy, energy_per_period
from domain.periods import Step, period_bounds
from domain.quality import IndexRules
from domain.store import IndexSeries, IndexSlot

PARIS = ZoneInfo("Europe/Paris")
H = timedelta(hours=1)

# 10 Jan 2026 00:00+01:00 = 9 Jan 23:00Z: the first hour of a winter day in Paris.
T0 = datetime(2026, 1, 9, 23, tzinfo=UTC)
ONE_DAY = period_bounds(datetime(2026, 1, 10), datetime(2026, 1, 11), Step.DAY, PARIS)
FIRST_HOURS = [T0 + i * H for i in range(5)]  # hours 0–3 of 10 Jan, one period each
TWO_DAYS = period_bounds(datetime(2026, 1, 10), datetime(2026, 1, 12), Step.DAY, PARIS)


def _hourly(start_utc: datetime, values: dict[int, float]) -> list[IndexSlot]:
    """Slots ending at ``start_utc + (i + 1) h`` for each ``i`` in ``values``."""
    return [
        IndexSlot(end=start_utc + (i + 1) * H, last_value=v, count=1)
        for i, v in sorted(values.items())
    ]


def _counts(result: MeterEnergy) -> tuple[int, int, int]:
    return result.resets, result.rollovers, result.glitches


def _hour_values(start_utc: datetime, values: list[float]) -> list[IndexSlot]:
    return _hourly(start_utc, dict(enumerate(values)))


# ---------------------------------------------------------------- backward jumps


def test_reset_counts_the_new_value_from_zero() -> None:
    series = IndexSeries(baseline=5000.0, slots=_hourly(T0, {0: 20.0, 1: 120.0}))
    result = energy_per_period(series, ONE_DAY, H)
    # 20 < 0.1 × 5000 = 500: reset, worth 20 (0 → 20); then 120 − 20 = 100. Total 120.
    assert result.energy_wh == pytest.approx([120.0])
    assert result.estimated_wh == [0.0]  # adjacent slots: measured
    assert _counts(result) == (1, 0, 0)


def test_reset_ratio_is_a_rule() -> None:
    series = IndexSeries(baseline=5000.0, slots=_hourly(T0, {0: 20.0, 1: 5100.0}))
    # reset_ratio 0: no drop is a reset, 20 is a glitch; energy resumes above 5000: 100.
    result = energy_per_period(series, ONE_DAY, H, IndexRules(reset_ratio=0.0))
    assert result.energy_wh == pytest.approx([100.0])
    assert _counts(result) == (0, 0, 1)


def test_glitch_is_ignored_without_a_spike() -> None:
    # 1000 (baseline) → 1100 → 900 → 1150 → 1200, one hour each.
    series = IndexSeries(baseline=1000.0, slots=_hourly(T0, {0: 1100, 1: 900, 2: 1150, 3: 1200}))
    result = energy_per_period(series, FIRST_HOURS, H)
    # 900 ≥ 0.1 × 1100 = 110: a glitch; the reference stays 1100 (end of hour 0).
    # 1150 − 1100 = 50 over hours 1–2 (two slots, the glitch hour being no information):
    # 25 + 25, estimated. Hour 3: 1200 − 1150 = 50, measured. No 250 (1150 − 900) spike.
    assert result.energy_wh == pytest.approx([100.0, 25.0, 25.0, 50.0])
    assert result.estimated_wh == pytest.approx([0.0, 25.0, 25.0, 0.0])
    assert sum(result.energy_wh) == pytest.approx(200.0)  # 1200 − 1000, the true increase
    assert _counts(result) == (0, 0, 1)


def test_a_run_of_low_readings_is_one_glitch_until_the_index_climbs_back() -> None:
    # 1100 → 900 → 950 → 1000 (still below 1100) → 1150.
    values = {0: 1100.0, 1: 900.0, 2: 950.0, 3: 1000.0, 4: 1150.0}
    series = IndexSeries(baseline=1000.0, slots=_hourly(T0, values))
    result = energy_per_period(series, ONE_DAY, H)
    # 100, then nothing until 1150: 1150 − 1100 = 50. Total 150 = 1150 − 1000.
    assert result.energy_wh == pytest.approx([150.0])
    assert result.estimated_wh == pytest.approx([50.0])  # spread over hours 1–4
    assert _counts(result) == (0, 0, 1)


def test_glitch_at_the_end_is_not_energy() -> None:
    series = IndexSeries(baseline=1000.0, slots=_hourly(T0, {0: 1100.0, 1: 1050.0}))
    result = energy_per_period(series, ONE_DAY, H)
    assert result.energy_wh == pytest.approx([100.0])  # 1100 − 1000; 1050 ignored
    assert _counts(result) == (0, 0, 1)


def test_rollover_at_capacity() -> None:
    rules = IndexRules(rollover_at=1e9)
    series = IndexSeries(baseline=999_999_900.0, slots=_hourly(T0, {0: 150.0, 1: 400.0}))
    result = energy_per_period(series, FIRST_HOURS[:3], H, rules)
    # 999 999 900 ≥ 1e9 × (1 − 0.1): rollover, 1e9 − 999 999 900 + 150 = 250; then 250.
    assert result.energy_wh == pytest.approx([250.0, 250.0])
    assert result.estimated_wh == [0.0, 0.0]
    assert _counts(result) == (0, 1, 0)


def test_small_drop_near_capacity_is_a_glitch_not_a_rollover() -> None:
    rules = IndexRules(rollover_at=1e9)
    series = IndexSeries(
        baseline=999_999_900.0, slots=_hourly(T0, {0: 999_999_850.0, 1: 999_999_950.0})
    )
    result = energy_per_period(series, FIRST_HOURS[:3], H, rules)
    # 999 999 850 is not near zero: a glitch, ignored; then 999 999 950 − 999 999 900 = 50,
    # spread over the two hours since the last good value (25 + 25, estimated).
    assert sum(result.energy_wh) == pytest.approx(50.0)
    assert _counts(result) == (0, 0, 1)


def test_meter_installed_inside_the_window_spreads_nothing_before_its_first_reading() -> None:
    # First reading in hour 2 (slot ending 02:00), none before the window: its first
    # value is the baseline, made within that slot, not at the window's start.
    series = IndexSeries(
        baseline=100.0, slots=_hourly(T0, {2: 100.0, 3: 160.0}), starts_inside=True
    )
    result = energy_per_period(series, FIRST_HOURS, H)
    assert result.energy_wh == pytest.approx([0.0, 0.0, 0.0, 60.0])
    assert result.estimated_wh == [0.0, 0.0, 0.0, 0.0]


def test_same_drop_without_a_capacity_is_a_reset() -> None:
    series = IndexSeries(baseline=999_999_900.0, slots=_hourly(T0, {0: 150.0}))
    result = energy_per_period(series, ONE_DAY, H)
    assert result.energy_wh == pytest.approx([150.0])  # 150 < 0.1 × 999 999 900: from 0
    assert _counts(result) == (1, 0, 0)


def test_drop_far_from_capacity_is_not_a_rollover() -> None:
    rules = IndexRules(rollover_at=1e9)
    series = IndexSeries(baseline=500_000_000.0, slots=_hourly(T0, {0: 150.0}))
    result = energy_per_period(series, ONE_DAY, H, rules)
    # 5e8 < 1e9 × 0.9: not near the capacity; 150 < 0.1 × 5e8: a reset, worth 150.
    assert result.energy_wh == pytest.approx([150.0])
    assert _counts(result) == (1, 0, 0)


# ---------------------------------------------------------------- comebacks and spikes
# Issue #4 audit: a drop to 0 that the index comes back from is not a reset, and a spike
# up that is undone is not energy.


def test_drop_to_zero_the_index_comes_back_from_is_a_glitch_not_a_reset() -> None:
    # 1 000 000 (baseline) → 1 000 010 → 0 → 1 000 020 → 1 000 030, one hour each.
    values = [1_000_010.0, 0.0, 1_000_020.0, 1_000_030.0]
    series = IndexSeries(baseline=1_000_000.0, slots=_hour_values(T0, values))
    result = energy_per_period(series, FIRST_HOURS, H)
    # 0 < 0.1 × 1 000 010 but the next hour is back above 1 000 010: a glitch. Then
    # 1 000 020 − 1 000 010 = 10 over hours 1–2 (5 + 5, estimated), 10 in hour 3.
    # Before the fix: a reset, then 1 000 020 counted from 0: 1 000 040 Wh.
    assert result.energy_wh == pytest.approx([10.0, 5.0, 5.0, 10.0])
    assert sum(result.energy_wh) == pytest.approx(30.0)
    assert result.estimated_wh == pytest.approx([0.0, 5.0, 5.0, 0.0])
    assert _counts(result) == (0, 0, 1)


def test_a_run_of_zeros_longer_than_the_window_is_a_reset() -> None:
    # Back at the old index only 2 h after the drop: beyond the default 1 h window.
    values = [1_000_010.0, 0.0, 0.0, 1_000_020.0]
    series = IndexSeries(baseline=1_000_000.0, slots=_hour_values(T0, values))
    result = energy_per_period(series, FIRST_HOURS, H)
    assert _counts(result) == (1, 0, 0)
    # With a 2 h window the same readings are one glitch: 30 Wh in all.
    rules = IndexRules(glitch_window_s=7200)
    result = energy_per_period(series, FIRST_HOURS, H, rules)
    assert sum(result.energy_wh) == pytest.approx(20.0)  # 1 000 020 − 1 000 000
    assert _counts(result) == (0, 0, 1)


def test_spike_undone_by_the_next_reading_is_not_energy() -> None:
    # 1000 (baseline) → 1010 → 99 999 999 → 1020 → 1030.
    values = [1010.0, 99_999_999.0, 1020.0, 1030.0]
    series = IndexSeries(baseline=1000.0, slots=_hour_values(T0, values))
    result = energy_per_period(series, FIRST_HOURS, H)
    # 1020 < 0.1 × 99 999 999 would be a reset, but it is back above 1010: the rise was
    # undone, a spike. Before the fix: 99 998 989 + 1020 (reset) + 20 = 100 000 029 Wh.
    assert result.energy_wh == pytest.approx([10.0, 5.0, 5.0, 10.0])
    assert sum(result.energy_wh) == pytest.approx(30.0)
    assert (result.resets, result.glitches, result.spikes) == (0, 0, 1)


def test_a_repeated_spike_value_is_one_spike_when_undone_within_the_window() -> None:
    values = [1010.0, 99_999_999.0, 99_999_999.0, 1020.0]
    series = IndexSeries(1000.0, _hour_values(T0, values))
    # Undone 2 h after it began: beyond the default 1 h window, the rise counts …
    assert sum(energy_per_period(series, FIRST_HOURS, H).energy_wh) > 1e8
    # … within a 2 h window it is one spike.
    result = energy_per_period(series, FIRST_HOURS, H, IndexRules(glitch_window_s=7200))
    assert sum(result.energy_wh) == pytest.approx(20.0)
    assert result.spikes == 1


def test_rise_above_the_plausible_power_is_a_spike() -> None:
    # 1000 → 1500 → 9000 → 2000 → 2500: 500 Wh an hour, one reading 7 500 Wh too high
    # that is not undone as a reset would be (9000 → 2000 is a glitch drop).
    values = [1500.0, 9000.0, 2000.0, 2500.0]
    series = IndexSeries(baseline=1000.0, slots=_hour_values(T0, values))
    without = energy_per_period(series, FIRST_HOURS, H)
    assert sum(without.energy_wh) == pytest.approx(8000.0)  # 9000 counted, 2000 a glitch
    # At most 3 kW: 7500 Wh within at most 2 h (slot ends 1 h apart, ± one slot) is 3.75 kW.
    rules = IndexRules(max_power_w=3000)
    result = energy_per_period(series, FIRST_HOURS, H, rules)
    assert result.energy_wh == pytest.approx([500.0, 250.0, 250.0, 500.0])
    assert (result.glitches, result.spikes) == (0, 1)


def test_a_real_gap_is_not_a_spike() -> None:
    # 2 kW for 3 h of silence: 6000 Wh between slot ends 3 h apart, under 2.5 kW × 4 h.
    series = IndexSeries(baseline=0.0, slots=_hourly(T0, {0: 2000.0, 3: 8000.0}))
    result = energy_per_period(series, FIRST_HOURS, H, IndexRules(max_power_w=2500))
    assert sum(result.energy_wh) == pytest.approx(8000.0)
    assert result.spikes == 0


def test_the_last_slot_is_judged_with_the_slots_after_the_window() -> None:
    # The spike is in the last hour of the window; the slot after it shows it undone,
    # and the gap from 03:00 to that good reading at 05:00 (20 Wh) is split as in a
    # longer query: 10 Wh estimated in the last hour.
    values = [1010.0, 1020.0, 1030.0, 99_999_999.0, 1050.0]
    series = IndexSeries(baseline=1000.0, slots=_hour_values(T0, values))
    result = energy_per_period(series, FIRST_HOURS, H)
    assert result.energy_wh == pytest.approx([10.0, 10.0, 10.0, 10.0])
    assert result.estimated_wh == pytest.approx([0.0, 0.0, 0.0, 10.0])
    assert result.spikes == 1
    assert result.coverage == [1.0, 1.0, 1.0, 1.0]  # the slot after is not counted


# ---------------------------------------------------------------- gaps


def test_gap_of_five_slots_across_midnight_is_spread_pro_rata() -> None:
    # Day 1: 10 Wh per hour, readings for hours 0–20 (hour 20 ends 21:00 at 1210).
    # Day 2: 20 Wh per hour from 1240, readings from hour 25 (01:00–02:00, 1280) to 47.
    values = {i: 1000.0 + 10 * (i + 1) for i in range(21)}
    values |= {i: 1240.0 + 20 * (i - 23) for i in range(25, 48)}
    result = energy_per_period(IndexSeries(1000.0, _hourly(T0, values)), TWO_DAYS, H)
    # Gap 21:00 → 02:00 = 5 h, 1280 − 1210 = 70 Wh, 14 Wh/h: 3 h (42) to day 1, 2 h (28)
    # to day 2, all estimated (the truth was 30 + 40; only the total is known).
    # Day 1: 1210 − 1000 + 42 = 252; day 2: 28 + (1720 − 1280) = 468.
    assert result.energy_wh == pytest.approx([252.0, 468.0])
    assert result.estimated_wh == pytest.approx([42.0, 28.0])
    assert sum(result.energy_wh) == pytest.approx(1720.0 - 1000.0)  # total preserved
    assert result.coverage == pytest.approx([21 / 24, 23 / 24])  # hours 25–47: 23 slots


def test_gap_from_the_baseline_is_estimated() -> None:
    # Baseline at 00:00 (100), first reading at the end of hour 3 (140): 40 over 4 h.
    series = IndexSeries(baseline=100.0, slots=_hourly(T0, {3: 140.0}))
    result = energy_per_period(series, FIRST_HOURS, H)
    assert result.energy_wh == pytest.approx([10.0, 10.0, 10.0, 10.0])
    assert result.estimated_wh == pytest.approx([10.0, 10.0, 10.0, 10.0])


def test_no_baseline_energy_before_the_first_reading_is_unknown() -> None:
    series = IndexSeries(baseline=None, slots=_hourly(T0, {3: 140.0, 4: 150.0}))
    result = energy_per_period(series, ONE_DAY, H)
    assert result.energy_wh == pytest.approx([10.0])  # 150 − 140; nothing before 140
    assert result.estimated_wh == [0.0]


def test_three_weeks_of_silence_in_a_year() -> None:
    # 2025 by month, hourly slots, 100 Wh every hour; silent from 20 Feb 00:00 to
    # 13 Mar 00:00 (21 days): no slot ends in (silence_start, silence_end].
    bounds = period_bounds(datetime(2025, 1, 1), datetime(2026, 1, 1), Step.MONTH, PARIS)
    start, end = bounds[0].astimezone(UTC), bounds[-1].astimezone(UTC)  # real hours
    silence_start = datetime(2025, 2, 20, tzinfo=PARIS).astimezone(UTC)
    silence_end = datetime(2025, 3, 13, tzinfo=PARIS).astimezone(UTC)
    hours = round((end - start) / H)
    assert hours == 8760  # 365 × 24; the DST hours cancel out
    slots = [
        IndexSlot(t, 100.0 * i, 1)
        for i in range(1, hours + 1)
        if not silence_start < (t := start + i * H) <= silence_end
    ]
    result = energy_per_period(IndexSeries(0.0, slots), bounds, H)
    # Gap from 20 Feb 00:00 to the next slot end, 13 Mar 01:00: 21 days + 1 h = 505 h,
    # 50 500 Wh. February gets 9 days = 216 h (21 600 Wh), March 289 h (28 900 Wh);
    # at a steady rate the spread equals the truth: Feb 28 × 24 × 100 = 67 200,
    # March (31 × 24 − 1 DST hour) × 100 = 74 300.
    assert result.energy_wh[1] == pytest.approx(67_200.0)
    assert result.energy_wh[2] == pytest.approx(74_300.0)
    assert result.estimated_wh[1] == pytest.approx(21_600.0)
    assert result.estimated_wh[2] == pytest.approx(28_900.0)
    assert [e for k, e in enumerate(result.estimated_wh) if k not in (1, 2)] == [0.0] * 10
    assert sum(result.energy_wh) == pytest.approx(876_000.0)  # 8760 × 100
    # Coverage: Feb misses 9 × 24 = 216 of 672 slots; March 12 × 24 = 288 of 743.
    assert result.coverage[1] == pytest.approx(456 / 672)
    assert result.coverage[2] == pytest.approx(455 / 743)
    assert [c for k, c in enumerate(result.coverage) if k not in (1, 2)] == [1.0] * 10
    assert _counts(result) == (0, 0, 0)


# ---------------------------------------------------------------- DST


@pytest.mark.parametrize(
    ("first_day", "day_hours"),
    [(datetime(2026, 3, 28), 23), (datetime(2026, 10, 24), 25)],
    ids=["spring-forward", "fall-back"],
)
def test_gap_over_a_dst_day_is_spread_by_real_hours(first_day: datetime, day_hours: int) -> None:
    # Three Paris days, the middle one 23 h or 25 h long; 10 Wh every real hour.
    # Readings until 20:00 on day 1, then silence until 04:00 on day 3.
    bounds = period_bounds(first_day, first_day + timedelta(days=3), Step.DAY, PARIS)
    start, end = bounds[0].astimezone(UTC), bounds[-1].astimezone(UTC)  # real hours
    hours = round((end - start) / H)
    assert hours == 24 + day_hours + 24
    silent = range(20 + 1, 24 + day_hours + 4)  # slot ends 21:00 day 1 … 03:00 day 3
    slots = [IndexSlot(start + i * H, 10.0 * i, 1) for i in range(1, hours + 1) if i not in silent]
    result = energy_per_period(IndexSeries(0.0, slots), bounds, H)
    # Gap 20:00 day 1 → 04:00 day 3 = 4 + day_hours + 4 real hours, 10 Wh each.
    # Day 1: 200 + 40; day 2: all of it spread, 10 × day_hours; day 3: 40 + 200.
    assert result.energy_wh == pytest.approx([240.0, 10.0 * day_hours, 240.0])
    assert result.estimated_wh == pytest.approx([40.0, 10.0 * day_hours, 40.0])
    # Slots ending 01:00–20:00 on day 1 (20 of 24), 04:00–24:00 on day 3 (21 of 24).
    assert result.coverage == pytest.approx([20 / 24, 0.0, 21 / 24])


def test_repeated_hour_with_local_slot_ends_is_a_gap_of_two_slots() -> None:
    # 02:00+02:00 and 03:00+01:00 read one hour apart on the wall, two in real time.
    bounds = period_bounds(datetime(2026, 10, 25), datetime(2026, 10, 26), Step.DAY, PARIS)
    slots = [
        IndexSlot(datetime(2026, 10, 25, 2, tzinfo=PARIS), 100.0, 1),  # fold 0: +02:00
        IndexSlot(datetime(2026, 10, 25, 3, tzinfo=PARIS), 120.0, 1),  # +01:00
    ]
    assert slots[1].end - slots[0].end == H  # the wall-clock trap
    result = energy_per_period(IndexSeries(None, slots), bounds, H)
    assert result.energy_wh == pytest.approx([20.0])
    assert result.estimated_wh == pytest.approx([20.0])  # 2 real hours: estimated


# ---------------------------------------------------------------- properties


@st.composite
def clean_series(
    draw: st.DrawFn,
) -> tuple[float | None, list[tuple[int, float]], list[datetime], timedelta]:
    """A non-decreasing index on random slots (random gaps), split at random slot ends.

    Returns the baseline, ``(slot number, value)`` pairs, the bounds and the slot width.
    """
    slot = draw(st.sampled_from([timedelta(minutes=15), timedelta(minutes=30), H]))
    n_slots = draw(st.integers(min_value=1, max_value=200))
    t0 = datetime(2026, 3, 1, tzinfo=UTC)  # aligned on the epoch for every slot width
    cuts = draw(st.sets(st.integers(min_value=1, max_value=max(1, n_slots - 1)), max_size=20))
    bounds = [t0 + k * slot for k in [0, *sorted(c for c in cuts if c < n_slots), n_slots]]
    filled = sorted(draw(st.sets(st.integers(min_value=1, max_value=n_slots))))
    baseline = draw(
        st.none() | st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
    )
    value = baseline if baseline is not None else 0.0
    readings = []
    for k in filled:
        value += draw(st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False))
        readings.append((k, value))
    return baseline, readings, bounds, slot


def _series(
    baseline: float | None, readings: list[tuple[int, float]], t0: datetime, slot: timedelta
) -> IndexSeries:
    return IndexSeries(baseline, [IndexSlot(t0 + k * slot, v, 1) for k, v in readings])


def _check_invariants(result: MeterEnergy, n_periods: int) -> None:
    assert len(result.energy_wh) == len(result.estimated_wh) == n_periods
    assert all(e >= 0 for e in result.energy_wh)
    assert all(
        0 <= s <= e + 1e-9 for s, e in zip(result.estimated_wh, result.energy_wh, strict=True)
    )


@given(clean_series())
def test_non_decreasing_index_telescopes(
    scenario: tuple[float | None, list[tuple[int, float]], list[datetime], timedelta],
) -> None:
    baseline, readings, bounds, slot = scenario
    result = energy_per_period(_series(baseline, readings, bounds[0], slot), bounds, slot)
    _check_invariants(result, len(bounds) - 1)
    known = ([(0, baseline)] if baseline is not None else []) + readings
    expected = known[-1][1] - known[0][1] if known else 0.0
    assert sum(result.energy_wh) == pytest.approx(expected, rel=1e-9, abs=1e-3)
    # What is not estimated is exactly the increases between readings at most one slot
    # or one hour apart (hourly readings in quarter-hour slots are no gap).
    measured = sum(v - u for (i, u), (j, v) in pairwise(known) if (j - i) * slot <= max(slot, H))
    assert sum(result.energy_wh) - sum(result.estimated_wh) == pytest.approx(
        measured, rel=1e-9, abs=1e-3
    )
    assert _counts(result) == (0, 0, 0)


@given(clean_series(), st.data())
def test_glitches_change_nothing_but_coverage(
    scenario: tuple[float | None, list[tuple[int, float]], list[datetime], timedelta],
    data: st.DataObject,
) -> None:
    baseline, readings, bounds, slot = scenario
    n_slots = round((bounds[-1] - bounds[0]) / slot)
    taken = {k for k, _ in readings}
    first = 0 if baseline is not None else (readings[0][0] if readings else n_slots)
    # Bad readings in empty slots after the first known value, below the last good value
    # (the running maximum) but at or above reset_ratio × it: glitches, not resets.
    free = [k for k in range(first + 1, n_slots + 1) if k not in taken]
    bad = data.draw(st.sets(st.sampled_from(free)) if free else st.just(set[int]()))
    merged: list[tuple[int, float]] = []
    reference = baseline
    glitches, in_run = 0, False
    clean = dict(readings)
    for k in range(1, n_slots + 1):
        if k in clean:
            merged.append((k, clean[k]))
            reference, in_run = clean[k], False
        elif k in bad and reference is not None and reference >= 1:
            share = data.draw(
                st.floats(min_value=0.1, max_value=0.99, allow_nan=False, allow_infinity=False)
            )
            merged.append((k, reference * share))
            glitches += 0 if in_run else 1
            in_run = True
    without = energy_per_period(_series(baseline, readings, bounds[0], slot), bounds, slot)
    with_ = energy_per_period(_series(baseline, merged, bounds[0], slot), bounds, slot)
    _check_invariants(with_, len(bounds) - 1)
    # A glitch moves neither the reference value nor its time: same split, same estimate.
    assert with_.energy_wh == pytest.approx(without.energy_wh, rel=1e-12, abs=1e-6)
    assert with_.estimated_wh == pytest.approx(without.estimated_wh, rel=1e-12, abs=1e-6)
    assert _counts(with_) == (0, 0, glitches)


@given(clean_series(), st.data())
def test_resets_add_the_new_value(
    scenario: tuple[float | None, list[tuple[int, float]], list[datetime], timedelta],
    data: st.DataObject,
) -> None:
    baseline, readings, bounds, slot = scenario
    # Replay the same consumption, the counter restarting from 0 before some readings.
    known = ([(0, baseline)] if baseline is not None else []) + readings
    consumed = sum(v - u for (_, u), (_, v) in pairwise(known))
    index = known[0][1] if known else 0.0
    replayed: list[tuple[int, float]] = []
    resets = 0
    for (_, u), (k, v) in pairwise(known):
        step = v - u
        # A reset is told apart when the new value is below 0.1 × the previous one.
        if index > 0 and step < 0.1 * index and data.draw(st.booleans()):
            index = step
            resets += 1
        else:
            index += step
        replayed.append((k, index))
    if baseline is None and readings:
        replayed.insert(0, readings[0])
    # The reset arithmetic alone: with the default window, a new counter that climbs back
    # to the old index within the hour reads as a glitch (see the comeback tests).
    rules = IndexRules(glitch_window_s=0)
    result = energy_per_period(_series(baseline, replayed, bounds[0], slot), bounds, slot, rules)
    _check_invariants(result, len(bounds) - 1)
    assert sum(result.energy_wh) == pytest.approx(consumed, rel=1e-9, abs=1e-3)
    assert _counts(result) == (resets, 0, 0)


@given(clean_series(), st.data())
def test_drops_to_zero_the_index_comes_back_from_change_nothing(
    scenario: tuple[float | None, list[tuple[int, float]], list[datetime], timedelta],
    data: st.DataObject,
) -> None:
    baseline, readings, bounds, slot = scenario
    # Runs of zeros (a meter rebooting) in empty slots right before good readings: each
    # run is back at the index within the default window, so each is a glitch.
    taken = {k for k, _ in readings}
    n_before = int(3600 / slot.total_seconds())  # slots the default window spans
    bad = set()
    previous = baseline
    for k, value in readings:
        # A 0 after a 0 is no drop: only after a positive good value.
        before, previous = previous, value
        if before is not None and before > 0:
            run = data.draw(st.integers(min_value=0, max_value=n_before))
            bad |= {j for j in range(k - run, k) if j > 0 and j not in taken}
    # Never before the first known value (no reference yet to judge it against).
    first = 0 if baseline is not None else (readings[0][0] if readings else 0)
    bad = {j for j in bad if j > first}
    merged = sorted([*readings, *((j, 0.0) for j in bad)])
    without = energy_per_period(_series(baseline, readings, bounds[0], slot), bounds, slot)
    with_ = energy_per_period(_series(baseline, merged, bounds[0], slot), bounds, slot)
    _check_invariants(with_, len(bounds) - 1)
    assert with_.energy_wh == pytest.approx(without.energy_wh, rel=1e-12, abs=1e-6)
    assert (with_.resets, with_.spikes) == (0, 0)


# ---------------------------------------------------------------- baseline judged as inside


def test_a_zero_baseline_before_the_start_is_judged_in_the_slots_read_before_it() -> None:
    # 1 000 000 at 22:00Z, a bad 0 at 23:00Z (the last reading before 10 Jan 00:00+01:00),
    # back at 1 000 010 at 00:00Z: 10 Wh on the 10th, as inside a longer query.
    slots = _hourly(T0 - 2 * H, {0: 1_000_000.0, 1: 0.0, 2: 1_000_010.0})
    # As the store answers from `since` (one hour before): baseline 1 000 000, two slots.
    series = IndexSeries(1_000_000.0, slots[1:])
    result = energy_per_period(series, ONE_DAY, H, since=T0 - H)
    assert result.energy_wh == pytest.approx([10.0])
    assert _counts(result) == (0, 0, 0)  # the glitch is the day before's, counted there
    # Read from the start only, the 0 is the baseline: 1 000 010 would be energy.
    alone = energy_per_period(IndexSeries(0.0, slots[2:]), ONE_DAY, H)
    assert alone.energy_wh == pytest.approx([1_000_010.0])


def test_a_spike_baseline_is_not_a_reset_of_the_next_period() -> None:
    slots = _hourly(T0 - 2 * H, {0: 5000.0, 1: 99_999_999.0, 2: 5010.0, 3: 5020.0})
    result = energy_per_period(IndexSeries(5000.0, slots[1:]), ONE_DAY, H, since=T0 - H)
    assert result.energy_wh == pytest.approx([20.0])
    assert (result.resets, result.spikes) == (0, 0)


def _store_answer(
    readings: dict[int, float], t0: datetime, slot: timedelta, since: int, until: int
) -> IndexSeries:
    """What a store answers for slots ``(since, until]`` of ``readings`` (slot number →
    value, read at the slot's end): the baseline at or before ``since`` and its time,
    else the first value after it, and the time of the first reading after ``until``."""
    before = [(k, v) for k, v in sorted(readings.items()) if k <= since]
    inside = [(k, v) for k, v in sorted(readings.items()) if since < k <= until]
    after = [k for k in sorted(readings) if k > until]
    first = before[-1] if before else (inside[0] if inside else None)
    slots = [IndexSlot(t0 + k * slot, v, 1) for k, v in inside]
    return IndexSeries(
        None if first is None else first[1],
        slots,
        starts_inside=not before and bool(inside),
        baseline_time=None if first is None else t0 + first[0] * slot,
        next_time=t0 + after[0] * slot if after else None,
    )


@st.composite
def glitchy_index(
    draw: st.DrawFn,
) -> tuple[dict[int, float], list[tuple[int, float]], timedelta, list[int], list[int]]:
    """A clean non-decreasing index on random slots with gaps, bad readings (a 0, a
    small drop, a spike) anywhere between two good readings within the glitch window of
    the next one, period cuts anywhere and sub-queries made of runs of periods.

    Returns all readings, the good ones, the slot width, the cuts (slot numbers) and the
    indexes of the cuts where a sub-query starts or ends."""
    slot = draw(st.sampled_from([timedelta(minutes=15), timedelta(minutes=30), H]))
    window = round(3600 / slot.total_seconds())  # default glitch_window_s, in slots
    n_slots = draw(st.integers(min_value=window + 3, max_value=150))
    filled = sorted(draw(st.sets(st.integers(min_value=0, max_value=n_slots + window))))
    value = draw(st.floats(min_value=0, max_value=1e6))
    good = []
    for k in filled:
        value += draw(st.floats(min_value=0, max_value=1e4))
        good.append((k, value))
    readings = dict(good)
    top = value
    for (i, u), (j, _) in pairwise(good):
        free = [m for m in range(max(i + 1, j - window), j)]
        if not free or not draw(st.booleans()):
            continue
        m = draw(st.sampled_from(free))
        kinds = ["zero", "drop", "spike"] if u > 0 else ["spike"]
        kind = draw(st.sampled_from(kinds))
        share = draw(st.floats(min_value=0.1, max_value=0.99))
        # Spikes above any good value, each below the ones before (none comes back).
        spike = 10 * top + 1e6 * (1 + n_slots + window - m)
        readings[m] = {"zero": 0.0, "drop": u * share, "spike": spike}[kind]
    start = window + 1  # room for the slots read before the first period
    inner = draw(st.sets(st.integers(min_value=start + 1, max_value=n_slots - 1), max_size=12))
    cuts = [start, *sorted(inner), n_slots]
    joints = (
        draw(st.sets(st.integers(min_value=1, max_value=len(cuts) - 2), max_size=6))
        if len(cuts) > 2
        else set()
    )
    return readings, good, slot, cuts, [0, *sorted(joints), len(cuts) - 1]


@given(glitchy_index())
def test_sub_queries_add_up_to_the_whole_with_glitches_anywhere(
    scenario: tuple[dict[int, float], list[tuple[int, float]], timedelta, list[int], list[int]],
) -> None:
    readings, _good, slot, cuts, joints = scenario
    t0 = datetime(2026, 3, 1, tzinfo=UTC)  # aligned on the epoch for every slot width
    reach = round(3600 / slot.total_seconds()) + 1  # the default window, and a slot

    def query(i: int, j: int) -> MeterEnergy:
        # As meter_energies reads the store: a reach before, three after, and two past
        # the first reading after the end.
        since, until = cuts[i] - reach, cuts[j] + 3 * reach
        after = min((k for k in readings if k > cuts[j]), default=None)
        until = until if after is None else max(until, after + 2 * reach)
        series = _store_answer(readings, t0, slot, since, until)
        bounds = [t0 + c * slot for c in cuts[i : j + 1]]
        return energy_per_period(series, bounds, slot, since=t0 + since * slot)

    whole = query(0, len(cuts) - 1)
    parts = [query(i, j) for i, j in pairwise(joints)]
    _check_invariants(whole, len(cuts) - 1)
    # Totals telescope whatever the gaps: a month adds up to the same days of a year.
    assert sum(sum(p.energy_wh) for p in parts) == pytest.approx(
        sum(whole.energy_wh), rel=1e-9, abs=1e-6
    )
    # Each glitch and spike is counted once, in the query holding it; none is a reset.
    for count in ("resets", "rollovers", "glitches", "spikes"):
        assert sum(getattr(p, count) for p in parts) == getattr(whole, count)
    assert whole.resets == 0
    # Period by period too, whatever gap straddles a sub-query's edge: the baseline's
    # time splits a gap across the start as the whole query does (issue #13).
    for (i, j), p in zip(pairwise(joints), parts, strict=True):
        assert p.energy_wh == pytest.approx(whole.energy_wh[i:j], rel=1e-9, abs=1e-6)
        assert p.estimated_wh == pytest.approx(whole.estimated_wh[i:j], rel=1e-9, abs=1e-6)
        assert p.coverage == pytest.approx(whole.coverage[i:j])


def test_a_drop_inside_a_slot_is_judged_from_the_slots_highest_value() -> None:
    # Hour 1 held 1 500 (the old meter's last reading), then the new meter's 0 and 40:
    # 500 Wh measured, then a reset (+40). A spike inside hour 2 (a highest value of
    # 99 999 999, undone by its last, 80) is a spike, not energy.
    slots = [
        IndexSlot(T0 + H, 1000.0, 1),
        IndexSlot(T0 + 2 * H, 40.0, 3, max_value=1500.0),
        IndexSlot(T0 + 3 * H, 60.0, 1),
        IndexSlot(T0 + 4 * H, 80.0, 2, max_value=99_999_999.0),
    ]
    result = energy_per_period(IndexSeries(900.0, slots), FIRST_HOURS, H)
    assert result.energy_wh == pytest.approx([100.0, 540.0, 20.0, 20.0])
    assert result.estimated_wh == [0.0, 0.0, 0.0, 0.0]
    assert (result.resets, result.spikes) == (1, 1)
