"""Electricity balance and energy per period from cumulative indexes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.balance import balance, energy_per_period
from domain.periods import Step, period_bounds
from domain.store import IndexSeries, IndexSlot

PARIS = ZoneInfo("Europe/Paris")
H = timedelta(hours=1)

# ---------------------------------------------------------------- balance()


def test_balance_hand_computed() -> None:
    b = balance(production_wh=10_000, import_wh=5_000, export_wh=3_000)
    assert b.consumption_wh == pytest.approx(12_000)  # 5000 + 10000 − 3000
    assert b.net_wh == pytest.approx(-2_000)  # 3000 − 5000
    assert b.self_consumption == pytest.approx(0.7)  # (10000 − 3000) / 10000
    assert b.self_sufficiency == pytest.approx(7 / 12)  # 7000 / 12000
    assert (b.production_wh, b.import_wh, b.export_wh) == (10_000, 5_000, 3_000)


def test_balance_energy_positive() -> None:
    b = balance(production_wh=20_000, import_wh=2_000, export_wh=15_000)
    assert b.consumption_wh == pytest.approx(7_000)  # 2000 + 20000 − 15000
    assert b.net_wh == pytest.approx(13_000)  # 15000 − 2000 > 0: energy-positive
    assert b.self_consumption == pytest.approx(0.25)  # 5000 / 20000
    assert b.self_sufficiency == pytest.approx(5 / 7)  # 5000 / 7000


def test_balance_everything_produced_is_used() -> None:
    b = balance(production_wh=4_000, import_wh=0, export_wh=0)
    assert b.consumption_wh == pytest.approx(4_000)
    assert b.net_wh == pytest.approx(0)
    assert b.self_consumption == pytest.approx(1.0)
    assert b.self_sufficiency == pytest.approx(1.0)


def test_balance_without_production() -> None:
    b = balance(production_wh=0, import_wh=4_000, export_wh=0)
    assert b.consumption_wh == pytest.approx(4_000)
    assert b.net_wh == pytest.approx(-4_000)
    assert b.self_consumption is None  # nothing produced: no rate
    assert b.self_sufficiency == pytest.approx(0.0)  # 0 / 4000


def test_balance_all_zero_has_no_rates() -> None:
    b = balance(0, 0, 0)
    assert b.consumption_wh == 0
    assert b.self_consumption is None
    assert b.self_sufficiency is None


def test_balance_rates_clamped_when_meters_disagree() -> None:
    # Export slightly above production (meters of different coverage): self-used = −10.
    b = balance(production_wh=1_000, import_wh=500, export_wh=1_010)
    assert b.consumption_wh == pytest.approx(490)  # 500 + 1000 − 1010
    assert b.self_consumption == 0.0  # −10 / 1000 clamped to 0
    assert b.self_sufficiency == 0.0  # −10 / 490 clamped to 0


energies = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)


@given(production=energies, import_=energies, export=energies)
def test_balance_properties(production: float, import_: float, export: float) -> None:
    # Any three indexes' energies, export above production included (meters of different
    # coverage, or a misconfigured one): the identities hold, and each rate is the raw
    # ratio clamped to [0, 1], or None when its denominator is not positive.
    b = balance(production, import_, export)
    assert b.consumption_wh == pytest.approx(import_ + production - export, rel=1e-9, abs=1e-6)
    assert b.net_wh == pytest.approx(export - import_, rel=1e-9, abs=1e-3)
    self_used = production - export
    for rate, denominator in (
        (b.self_consumption, production),
        (b.self_sufficiency, b.consumption_wh),
    ):
        if denominator <= 0:
            assert rate is None
            continue
        raw = self_used / denominator
        assert rate is not None and 0.0 <= rate <= 1.0
        assert rate == (0.0 if raw < 0 else 1.0 if raw > 1 else raw)


# ---------------------------------------------------------------- energy_per_period()


def _hourly(start_utc: datetime, values: dict[int, float]) -> list[IndexSlot]:
    """Slots ending at ``start_utc + (i + 1) h`` for each ``i`` in ``values``."""
    return [
        IndexSlot(end=start_utc + (i + 1) * H, last_value=v, count=1)
        for i, v in sorted(values.items())
    ]


# Two winter days in Paris: 10 Jan 2026 00:00+01:00 = 9 Jan 23:00Z, to 12 Jan 00:00+01:00.
TWO_DAYS = period_bounds(datetime(2026, 1, 10), datetime(2026, 1, 12), Step.DAY, PARIS)
T0 = datetime(2026, 1, 9, 23, tzinfo=UTC)


def _two_day_index(i: int) -> float:
    """10 Wh per hour on day 1 (hours 0–23), 20 Wh per hour on day 2 (hours 24–47)."""
    return 1000 + 10 * (i + 1) if i < 24 else 1240 + 20 * (i - 23)


def test_hourly_slots_split_by_day() -> None:
    series = IndexSeries(
        baseline=1000.0, slots=_hourly(T0, {i: _two_day_index(i) for i in range(48)})
    )
    result = energy_per_period(series, TWO_DAYS, H)
    # Day 1: 1240 − 1000 = 240; day 2: 1720 − 1240 = 480 (24 × 20).
    assert result.energy_wh == pytest.approx([240.0, 480.0])
    assert result.coverage == pytest.approx([1.0, 1.0])
    assert result.estimated_wh == [0.0, 0.0]  # every hour read: all measured
    assert (result.resets, result.rollovers, result.glitches) == (0, 0, 0)


def test_slot_ending_on_a_boundary_belongs_to_the_earlier_period() -> None:
    # One slot ending exactly at day 2's start (10 Jan 23:00Z) counts in day 1.
    series = IndexSeries(baseline=0.0, slots=[IndexSlot(TWO_DAYS[1], 50.0, 1)])
    result = energy_per_period(series, TWO_DAYS, H)
    assert result.energy_wh == [50.0, 0.0]
    assert result.coverage == pytest.approx([1 / 24, 0.0])


def test_gap_is_spread_over_the_periods_it_spans() -> None:
    # Readings for hours 0–19 of day 1, then nothing until hour 27 (day 2, 03:00–04:00).
    kept = {i: _two_day_index(i) for i in range(48) if i <= 19 or i >= 27}
    series = IndexSeries(baseline=1000.0, slots=_hourly(T0, kept))
    result = energy_per_period(series, TWO_DAYS, H)
    # Hour 19 ends at 1200 (1000 + 10 × 20), hour 27 at 1320 (1240 + 20 × 4): the 120 Wh
    # of the 8 h gap are spread 4 h / 4 h: 60 to day 1, 60 to day 2, all estimated.
    # Day 1: 1200 − 1000 + 60 = 260; day 2: 60 + (1720 − 1320) = 460.
    assert result.energy_wh == pytest.approx([260.0, 460.0])
    assert result.estimated_wh == pytest.approx([60.0, 60.0])
    assert sum(result.energy_wh) == pytest.approx(1720.0 - 1000.0)  # total preserved
    assert result.coverage == pytest.approx([20 / 24, 21 / 24])  # hours 27–47: 21 slots


def test_backward_jump_is_never_negative_and_is_counted() -> None:
    bounds = period_bounds(datetime(2026, 1, 10), datetime(2026, 1, 11), Step.DAY, PARIS)
    # 90 → 100 → 110 → reset to 5 → 8 → 20.
    series = IndexSeries(
        baseline=90.0, slots=_hourly(T0, {0: 100.0, 1: 110.0, 2: 5.0, 3: 8.0, 4: 20.0})
    )
    result = energy_per_period(series, bounds, H)
    # 10 + 10 + 5 (5 < 0.1 × 110: a reset, the counter restarted from 0) + 3 + 12 = 40.
    assert result.energy_wh == pytest.approx([40.0])
    assert (result.resets, result.rollovers, result.glitches) == (1, 0, 0)


def test_backward_jump_from_the_baseline() -> None:
    bounds = period_bounds(datetime(2026, 1, 10), datetime(2026, 1, 11), Step.DAY, PARIS)
    series = IndexSeries(baseline=500.0, slots=_hourly(T0, {0: 2.0, 1: 7.0}))
    result = energy_per_period(series, bounds, H)
    # 2 < 0.1 × 500: a reset, worth 2 (from 0), then 7 − 2: 7; never 2 − 500.
    assert result.energy_wh == pytest.approx([7.0])
    assert (result.resets, result.rollovers, result.glitches) == (1, 0, 0)


def test_coverage_is_the_share_of_filled_slots() -> None:
    bounds = period_bounds(datetime(2026, 1, 10), datetime(2026, 1, 11), Step.DAY, PARIS)
    # Every other hour: 12 of 24 slots.
    series = IndexSeries(baseline=0.0, slots=_hourly(T0, {i: float(i) for i in range(0, 24, 2)}))
    result = energy_per_period(series, bounds, H)
    assert result.coverage == pytest.approx([0.5])  # 12 / 24
    assert result.energy_wh == pytest.approx([22.0])  # last value (hour 22) − 0


def test_coverage_with_quarter_hour_slots() -> None:
    bounds = period_bounds(datetime(2026, 1, 10), datetime(2026, 1, 11), Step.DAY, PARIS)
    q = timedelta(minutes=15)
    slots = [IndexSlot(T0 + k * q, float(k), 1) for k in range(1, 49)]  # first 12 hours
    result = energy_per_period(IndexSeries(0.0, slots), bounds, q)
    assert result.coverage == pytest.approx([0.5])  # 48 of 96 quarter hours


def test_hourly_readings_in_kathmandu_quarter_hour_slots_cover_the_day() -> None:
    # Local midnight in Kathmandu is 18:15Z: the slots are 15 minutes wide, the readings
    # hourly (on the UTC hour). Every hour holds a reading: coverage 1 (was 24 of 96
    # slots, 0.25) and nothing estimated (was all of it: readings 4 slots apart).
    ktm = ZoneInfo("Asia/Kathmandu")
    bounds = period_bounds(datetime(2026, 1, 10), datetime(2026, 1, 11), Step.DAY, ktm)
    q = timedelta(minutes=15)
    first = datetime(2026, 1, 9, 19, tzinfo=UTC)  # the first full hour after 18:15Z
    slots = [IndexSlot(first + i * H, 10.0 * (i + 1), 1) for i in range(24)]  # to 18:00Z
    result = energy_per_period(IndexSeries(0.0, slots), bounds, q)
    assert result.energy_wh == pytest.approx([240.0])
    assert result.estimated_wh == [0.0]
    # The last 15 minutes (18:00Z → 18:15Z) have no reading yet: 1 − 15/1440.
    assert result.coverage == pytest.approx([1 - 15 / 1440])


def test_a_missing_hour_in_one_second_slots_is_a_gap() -> None:
    # From 00:00:01 local: one-second slots. Readings on the hour but 05:00 is missing.
    start = datetime(2026, 1, 10, 0, 0, 1)
    bounds = period_bounds(start, datetime(2026, 1, 11), Step.DAY, PARIS)
    s = timedelta(seconds=1)
    slots = [IndexSlot(T0 + (i + 1) * H, 10.0 * (i + 1), 1) for i in range(24) if i != 4]
    result = energy_per_period(IndexSeries(0.0, slots), bounds, s)
    assert result.energy_wh == pytest.approx([240.0])
    assert result.estimated_wh == pytest.approx([20.0])  # 04:00 → 06:00, spread
    # 23 hours covered, the first one for 3599 s: (23 × 3600 − 1) / (86400 − 1).
    assert result.coverage == pytest.approx([(23 * 3600 - 1) / (86400 - 1)])


def test_spring_forward_day_counts_23_slots() -> None:
    bounds = period_bounds(datetime(2026, 3, 29), datetime(2026, 3, 30), Step.DAY, PARIS)
    start = datetime(2026, 3, 28, 23, tzinfo=UTC)  # 29 March 00:00+01:00
    series = IndexSeries(baseline=0.0, slots=_hourly(start, {i: float(i + 1) for i in range(23)}))
    result = energy_per_period(series, bounds, H)
    assert result.coverage == pytest.approx([1.0])  # 23 of 23
    assert result.energy_wh == pytest.approx([23.0])
    half = IndexSeries(baseline=0.0, slots=_hourly(start, {i: 1.0 for i in range(12)}))
    assert energy_per_period(half, bounds, H).coverage == pytest.approx([12 / 23])


def test_fall_back_day_counts_25_slots() -> None:
    bounds = period_bounds(datetime(2026, 10, 25), datetime(2026, 10, 26), Step.DAY, PARIS)
    start = datetime(2026, 10, 24, 22, tzinfo=UTC)  # 25 October 00:00+02:00
    series = IndexSeries(baseline=0.0, slots=_hourly(start, {i: float(i + 1) for i in range(25)}))
    result = energy_per_period(series, bounds, H)
    assert result.coverage == pytest.approx([1.0])  # 25 of 25, not 25 / 24
    assert result.energy_wh == pytest.approx([25.0])


def test_slots_given_in_local_time_across_the_repeated_hour() -> None:
    # Slot ends as Paris-aware datetimes: 02:00+02:00 and 02:00+01:00 read alike on the
    # wall but are an hour apart; each must land in its own hour.
    bounds = period_bounds(datetime(2026, 10, 25), datetime(2026, 10, 26), Step.HOUR, PARIS)
    slots = [IndexSlot(b, float(k), 1) for k, b in enumerate(bounds[1:], start=1)]
    result = energy_per_period(IndexSeries(0.0, slots), bounds, H)
    assert result.energy_wh == pytest.approx([1.0] * 25)
    assert result.coverage == pytest.approx([1.0] * 25)


def test_no_baseline_starts_from_the_first_slot() -> None:
    bounds = period_bounds(datetime(2026, 1, 10), datetime(2026, 1, 11), Step.DAY, PARIS)
    series = IndexSeries(baseline=None, slots=_hourly(T0, {3: 500.0, 4: 520.0, 9: 560.0}))
    result = energy_per_period(series, bounds, H)
    # Energy before the first reading is unknown: 560 − 500 = 60, not 560.
    assert result.energy_wh == pytest.approx([60.0])
    assert result.coverage == pytest.approx([3 / 24])
    assert (result.resets, result.rollovers, result.glitches) == (0, 0, 0)


def test_no_data_at_all() -> None:
    result = energy_per_period(IndexSeries(baseline=None), TWO_DAYS, H)
    assert result.energy_wh == [0.0, 0.0]
    assert result.coverage == [0.0, 0.0]
    assert result.estimated_wh == [0.0, 0.0]
    assert (result.resets, result.rollovers, result.glitches) == (0, 0, 0)


@st.composite
def index_scenarios(draw: st.DrawFn) -> tuple[IndexSeries, list[datetime], timedelta]:
    """A non-decreasing index sampled on random slots, split at random slot ends."""
    slot = draw(st.sampled_from([timedelta(minutes=15), H, timedelta(minutes=30)]))
    n_slots = draw(st.integers(min_value=1, max_value=200))
    t0 = datetime(2026, 3, 1, tzinfo=UTC)  # aligned on the epoch for every slot width
    # Inner boundaries at random slot ends (none when there is a single slot).
    inner = st.integers(min_value=1, max_value=max(1, n_slots - 1))
    cuts = {c for c in draw(st.sets(inner, max_size=20)) if c < n_slots}
    bounds = [t0 + k * slot for k in [0, *sorted(cuts), n_slots]]
    filled = sorted(draw(st.sets(st.integers(min_value=1, max_value=n_slots), max_size=n_slots)))
    steps = draw(
        st.lists(
            st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
            min_size=len(filled),
            max_size=len(filled),
        )
    )
    baseline = draw(
        st.none() | st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
    )
    value = baseline if baseline is not None else 0.0
    slots = []
    for k, step in zip(filled, steps, strict=True):
        value += step
        slots.append(IndexSlot(end=t0 + k * slot, last_value=value, count=1))
    return IndexSeries(baseline=baseline, slots=slots), bounds, slot


@given(index_scenarios())
def test_energy_telescopes_whatever_the_split(
    scenario: tuple[IndexSeries, list[datetime], timedelta],
) -> None:
    series, bounds, slot = scenario
    result = energy_per_period(series, bounds, slot)
    assert len(result.energy_wh) == len(bounds) - 1
    if not series.slots:
        expected = 0.0
    else:
        first = series.baseline if series.baseline is not None else series.slots[0].last_value
        expected = series.slots[-1].last_value - first
    assert sum(result.energy_wh) == pytest.approx(expected, rel=1e-9, abs=1e-3)
    assert all(e >= 0 for e in result.energy_wh)
    assert (result.resets, result.rollovers, result.glitches) == (0, 0, 0)
    assert all(0.0 <= c <= 1.0 for c in result.coverage)
    # Counted minute by minute: a minute is covered when its clock hour, within its
    # period, holds a filled slot; coverage is the covered share of each period.
    ends = [s.end for s in series.slots]
    for (a, b), c in zip(pairwise(bounds), result.coverage, strict=True):
        hours = {(e - timedelta(seconds=1)).replace(minute=0, second=0) for e in ends if a < e <= b}
        minutes = [a + timedelta(minutes=m) for m in range(round((b - a) / timedelta(minutes=1)))]
        covered = sum(1 for m in minutes if m.replace(minute=0) in hours)
        assert c == pytest.approx(covered / len(minutes))
