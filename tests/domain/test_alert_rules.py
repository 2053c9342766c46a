"""Alert logic: windows, hysteresis, the state machine, the year-end projection.

2026 in Europe/Paris: clocks go forward on Sunday 29 March at 02:00 (+01:00 → +02:00)
and back on Sunday 25 October at 03:00 (+02:00 → +01:00). 2027: forward on 28 March.
Durations are computed in UTC (same-tzinfo subtraction is wall clock).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import get_args
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.alert_config import AlertRules, WindowName
from domain.alerts import (
    AlertState,
    AlertStatus,
    Window,
    balance_firing,
    project_year_end,
    silent_meters,
    step,
    threshold_firing,
    window_bounds,
)
from domain.site import ConfigError, parse_sites

PARIS = ZoneInfo("Europe/Paris")
H = timedelta(hours=1)


def paris(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, fold: int = 0
) -> datetime:
    """A Paris wall time (``fold=1``: the second occurrence of the repeated hour)."""
    return datetime(year, month, day, hour, minute, tzinfo=PARIS, fold=fold)


def _span(bounds: tuple[datetime, datetime]) -> timedelta:
    start, end = bounds
    return end.astimezone(UTC) - start.astimezone(UTC)


def _iso(bounds: tuple[datetime, datetime]) -> tuple[str, str]:
    return bounds[0].isoformat(), bounds[1].isoformat()


# ---------------------------------------------------------------- windows


def test_rolling_7d_across_spring_forward_lasts_167_hours() -> None:
    bounds = window_bounds(Window.ROLLING_7D, paris(2026, 3, 31, 12), PARIS)
    assert _iso(bounds) == ("2026-03-24T12:00:00+01:00", "2026-03-31T12:00:00+02:00")
    # 24th 12:00+01 = 11:00Z → 31st 12:00+02 = 10:00Z: 7 × 24 − 1 = 167 h
    assert _span(bounds) == 167 * H


def test_rolling_7d_across_fall_back_lasts_169_hours() -> None:
    bounds = window_bounds(Window.ROLLING_7D, paris(2026, 10, 28, 12), PARIS)
    assert _iso(bounds) == ("2026-10-21T12:00:00+02:00", "2026-10-28T12:00:00+01:00")
    # 21st 10:00Z → 28th 11:00Z: 7 × 24 + 1 = 169 h
    assert _span(bounds) == 169 * H


def test_rolling_7d_without_dst_change_lasts_168_hours() -> None:
    bounds = window_bounds(Window.ROLLING_7D, paris(2026, 6, 10, 8, 15), PARIS)
    assert _iso(bounds) == ("2026-06-03T08:15:00+02:00", "2026-06-10T08:15:00+02:00")
    assert _span(bounds) == 168 * H


def test_rolling_7d_start_in_the_skipped_hour_moves_forward() -> None:
    # 7 days before 5 April 02:30 is 29 March 02:30, which does not exist → 03:30+02:00.
    bounds = window_bounds(Window.ROLLING_7D, paris(2026, 4, 5, 2, 30), PARIS)
    assert bounds[0].isoformat() == "2026-03-29T03:30:00+02:00"
    # 29th 01:30Z → 5 April 00:30Z: 7 × 24 − 1 = 167 h
    assert _span(bounds) == 167 * H


def test_rolling_7d_start_in_the_repeated_hour_takes_the_first() -> None:
    # 7 days before 1 November 02:30+01 is 25 October 02:30, ambiguous → +02:00.
    bounds = window_bounds(Window.ROLLING_7D, paris(2026, 11, 1, 2, 30), PARIS)
    assert bounds[0].isoformat() == "2026-10-25T02:30:00+02:00"
    # 25th 00:30Z → 1 Nov 01:30Z: 7 × 24 + 1 = 169 h
    assert _span(bounds) == 169 * H


def test_today_on_the_23_hour_day() -> None:
    bounds = window_bounds(Window.TODAY, paris(2026, 3, 29, 12), PARIS)
    assert _iso(bounds) == ("2026-03-29T00:00:00+01:00", "2026-03-29T12:00:00+02:00")
    # 28th 23:00Z → 29th 10:00Z = 11 h (12 on the wall clock)
    assert _span(bounds) == 11 * H


def test_today_in_the_second_repeated_hour() -> None:
    # 25 October 02:30, second occurrence (+01:00) = 01:30Z; midnight +02:00 = 24th 22:00Z.
    now = paris(2026, 10, 25, 2, 30, fold=1)
    bounds = window_bounds(Window.TODAY, now, PARIS)
    assert bounds[0].isoformat() == "2026-10-25T00:00:00+02:00"
    assert bounds[1].astimezone(UTC) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert _span(bounds) == timedelta(hours=3, minutes=30)  # 22:00Z → 01:30Z


def test_now_in_utc_is_returned_in_the_site_timezone() -> None:
    # 10:00Z on 31 March = 12:00+02:00 in Paris
    bounds = window_bounds(Window.TODAY, datetime(2026, 3, 31, 10, tzinfo=UTC), PARIS)
    assert _iso(bounds) == ("2026-03-31T00:00:00+02:00", "2026-03-31T12:00:00+02:00")
    assert all(b.tzinfo == PARIS for b in bounds)


def test_naive_now_is_a_local_wall_time() -> None:
    bounds = window_bounds(Window.TODAY, datetime(2026, 3, 31, 12), PARIS)
    assert _iso(bounds) == ("2026-03-31T00:00:00+02:00", "2026-03-31T12:00:00+02:00")


def test_today_at_midnight_is_empty() -> None:
    start, end = window_bounds(Window.TODAY, paris(2026, 5, 4), PARIS)
    assert start == end


def test_month_to_date_across_spring_forward() -> None:
    bounds = window_bounds(Window.MONTH_TO_DATE, paris(2026, 3, 31, 12), PARIS)
    assert _iso(bounds) == ("2026-03-01T00:00:00+01:00", "2026-03-31T12:00:00+02:00")
    # 1 Mar 00:00+01 = 28 Feb 23:00Z → 31 Mar 10:00Z = 30 d 11 h = 30 × 24 + 11 = 731 h
    assert _span(bounds) == 731 * H


def test_year_to_date() -> None:
    bounds = window_bounds(Window.YEAR_TO_DATE, paris(2026, 3, 31, 12), PARIS)
    assert _iso(bounds) == ("2026-01-01T00:00:00+01:00", "2026-03-31T12:00:00+02:00")
    # 31 Dec 23:00Z → 31 Mar 10:00Z: 31 + 28 + 30 = 89 d, + 11 h → 89 × 24 + 11 = 2147 h
    assert _span(bounds) == 2147 * H


def test_rolling_12m_same_wall_time_a_year_before() -> None:
    bounds = window_bounds(Window.ROLLING_12M, paris(2026, 3, 31, 12), PARIS)
    # DST began on 30 March 2025, so 31 March 2025 is +02:00 as well.
    assert _iso(bounds) == ("2025-03-31T12:00:00+02:00", "2026-03-31T12:00:00+02:00")
    assert _span(bounds) == 365 * 24 * H  # 8760 h


def test_rolling_12m_from_winter_to_summer_time() -> None:
    # 15 March 2026 12:00+01 back to 15 March 2025 12:00+01: 365 days, no net DST shift
    bounds = window_bounds(Window.ROLLING_12M, paris(2026, 3, 15, 12), PARIS)
    assert bounds[0].isoformat() == "2025-03-15T12:00:00+01:00"
    assert _span(bounds) == 8760 * H


def test_rolling_12m_from_29_february_clamps_to_28() -> None:
    bounds = window_bounds(Window.ROLLING_12M, paris(2028, 2, 29, 12), PARIS)
    assert bounds[0].isoformat() == "2027-02-28T12:00:00+01:00"
    assert _span(bounds) == 366 * 24 * H  # 28 Feb 2027 → 29 Feb 2028: 366 days


def test_rolling_12m_start_in_the_skipped_hour_moves_forward() -> None:
    # 29 March 2027 02:30+02 → 29 March 2026 02:30, which does not exist → 03:30+02:00
    bounds = window_bounds(Window.ROLLING_12M, paris(2027, 3, 29, 2, 30), PARIS)
    assert bounds[0].isoformat() == "2026-03-29T03:30:00+02:00"
    assert _span(bounds) == 365 * 24 * H - H  # 8759 h


def test_window_parses_from_configuration_names() -> None:
    names = ["today", "rolling_7d", "month_to_date", "rolling_12m", "year_to_date"]
    assert [Window(n) for n in names] == list(Window)


@given(
    window=st.sampled_from(list(Window)),
    now=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31)),
    fold=st.sampled_from([0, 1]),
    tz=st.sampled_from([PARIS, ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")]),
)
def test_window_starts_before_now_and_in_tz(
    window: Window, now: datetime, fold: int, tz: ZoneInfo
) -> None:
    aware = now.replace(tzinfo=tz, fold=fold)
    start, end = window_bounds(window, aware, tz)
    assert start.tzinfo == tz and end.tzinfo == tz
    assert end.astimezone(UTC) == aware.astimezone(UTC)
    assert start.astimezone(UTC) <= end.astimezone(UTC)
    assert end.astimezone(UTC) - start.astimezone(UTC) <= timedelta(days=367)


# ---------------------------------------------------------------- hysteresis


def test_balance_hovering_around_zero_does_not_flap() -> None:
    nets = [+5, -1, +0.5, -0.2, +0.8, +2.5]
    states = []
    firing = False
    for net in nets:
        firing = balance_firing(net, firing, hysteresis_kwh=1.0)
        states.append(firing)
    # +5 ≥ 0: off; −1 < 0: fires; +0.5, −0.2, +0.8 not above +1: stays; +2.5 > 1: resolves
    assert states == [False, True, True, True, True, False]


def test_balance_boundaries() -> None:
    assert balance_firing(0.0, False, 1.0) is False  # 0 is not < 0
    assert balance_firing(1.0, True, 1.0) is True  # 1 is not > +1
    assert balance_firing(1.0001, True, 1.0) is False
    assert balance_firing(-0.0001, False, 0.0) is True
    assert balance_firing(0.0, True, 0.0) is True  # zero hysteresis: resolves above 0
    assert balance_firing(float("nan"), True, 1.0) is True  # unknown keeps the state
    assert balance_firing(float("nan"), False, 1.0) is False


def test_negative_hysteresis_is_refused() -> None:
    with pytest.raises(ValueError, match="hysteresis"):
        balance_firing(0.0, False, -1.0)


def test_threshold_firing() -> None:
    # coverage: fires below 0.95, resolves above 0.97
    assert threshold_firing(0.94, False, 0.95, 0.97) is True
    assert threshold_firing(0.96, True, 0.95, 0.97) is True
    assert threshold_firing(0.96, False, 0.95, 0.97) is False
    assert threshold_firing(0.98, True, 0.95, 0.97) is False
    with pytest.raises(ValueError, match="resolve_above"):
        threshold_firing(0.5, False, 0.95, 0.9)


# ---------------------------------------------------------------- state machine

T0 = paris(2026, 6, 1, 9)
ID = dict(alert_id="site-a:balance:rolling_7d", site="site-a", rule="balance")


def _fire(now: datetime = T0, reminder: timedelta | None = None) -> AlertStatus:
    status, event = step(None, True, now, {"net_kwh": -3.0}, reminder, **ID)
    assert status is not None and event == "firing"
    return status


def test_nothing_happens_until_it_fires() -> None:
    assert step(None, False, T0, {}, None, **ID) == (None, None)


def test_first_firing_opens_an_episode() -> None:
    status = _fire()
    assert status == AlertStatus(
        alert_id="site-a:balance:rolling_7d",
        site="site-a",
        rule="balance",
        state=AlertState.FIRING,
        first_seen=T0,
        last_seen=T0,
        resolved_at=None,
        last_notified=T0,
        acknowledged=False,
        figures={"net_kwh": -3.0},
    )


def test_still_firing_updates_without_notifying_again() -> None:
    status = _fire()
    later = T0 + 3 * H
    status2, event = step(status, True, later, {"net_kwh": -4.0}, None, **ID)
    assert event is None
    assert status2 is not None
    assert status2.first_seen == T0 and status2.last_seen == later
    assert status2.last_notified == T0
    assert status2.figures == {"net_kwh": -4.0}


def test_reminder_only_after_the_interval() -> None:
    every = 6 * H
    status: AlertStatus | None = _fire(reminder=every)
    events = []
    for hours in (1, 5, 6, 7, 11, 12):
        status, event = step(status, True, T0 + hours * H, {}, every, **ID)
        events.append(event)
    # notified at 0 h; 1 h, 5 h < 6 h; 6 h − 0 = 6 h ≥ 6 h: reminder (notified at 6 h);
    # 7 h, 11 h: < 6 h since 6 h; 12 h − 6 h = 6 h: reminder
    assert events == [None, None, "reminder", None, None, "reminder"]
    assert status is not None and status.last_notified == T0 + 12 * H
    assert status.first_seen == T0


def test_no_reminder_when_acknowledged() -> None:
    every = 6 * H
    status: AlertStatus | None = replace(_fire(reminder=every), acknowledged=True)
    for hours in (6, 24, 240):
        status, event = step(status, True, T0 + hours * H, {}, every, **ID)
        assert event is None
    assert status is not None and status.acknowledged and status.last_notified == T0


def test_reminder_interval_is_real_time_across_dst() -> None:
    # notified 29 March 00:00+01 (23:00Z); 06:00+02 is 04:00Z: 5 h elapsed, not 6
    start = paris(2026, 3, 29, 0)
    status = _fire(start, reminder=6 * H)
    _, event = step(status, True, paris(2026, 3, 29, 6), {}, 6 * H, **ID)
    assert event is None
    _, event = step(status, True, paris(2026, 3, 29, 7), {}, 6 * H, **ID)  # 05:00Z: 6 h
    assert event == "reminder"


def test_never_notified_firing_status_gets_a_reminder() -> None:
    status = replace(_fire(), last_notified=None)
    assert step(status, True, T0 + H, {}, 6 * H, **ID)[1] == "reminder"
    assert step(status, True, T0 + H, {}, None, **ID)[1] is None


def test_resolution() -> None:
    status = _fire()
    status2, _ = step(status, True, T0 + H, {"net_kwh": -1.0}, None, **ID)
    resolved, event = step(status2, False, T0 + 2 * H, {"net_kwh": 2.5}, None, **ID)
    assert event == "resolved"
    assert resolved is not None
    assert resolved.state is AlertState.RESOLVED
    assert resolved.resolved_at == T0 + 2 * H
    assert resolved.last_notified == T0 + 2 * H
    assert resolved.first_seen == T0
    assert resolved.last_seen == T0 + H  # the last evaluation that saw it firing
    assert resolved.figures == {"net_kwh": 2.5}


def test_resolved_stays_quiet() -> None:
    resolved, _ = step(_fire(), False, T0 + H, {}, 6 * H, **ID)
    again, event = step(resolved, False, T0 + 48 * H, {"net_kwh": 9.0}, 6 * H, **ID)
    assert (again, event) == (resolved, None)


def test_firing_again_after_resolution_opens_a_new_episode() -> None:
    first = replace(_fire(), acknowledged=True)
    resolved, _ = step(first, False, T0 + H, {}, None, **ID)
    reopened, event = step(resolved, True, T0 + 5 * H, {"net_kwh": -2.0}, None, **ID)
    assert event == "firing"
    assert reopened is not None
    assert reopened.state is AlertState.FIRING
    assert reopened.first_seen == T0 + 5 * H
    assert reopened.resolved_at is None
    assert reopened.acknowledged is False  # a new episode must be acknowledged again
    assert reopened.alert_id == first.alert_id


def test_step_refuses_inconsistent_input() -> None:
    status = _fire()
    with pytest.raises(ValueError, match="aware"):
        step(status, True, datetime(2026, 6, 1, 10), {}, None, **ID)
    with pytest.raises(ValueError, match="before"):
        step(status, True, T0 - H, {}, None, **ID)
    with pytest.raises(ValueError, match="not"):
        step(status, True, T0 + H, {}, None, alert_id="other", site="site-a", rule="balance")
    with pytest.raises(ValueError, match="positive"):
        step(status, True, T0 + H, {}, timedelta(0), **ID)


def test_figures_are_copied() -> None:
    figures: dict[str, float | str | None] = {"net_kwh": -3.0}
    status, _ = step(None, True, T0, figures, None, **ID)
    figures["net_kwh"] = 99.0
    assert status is not None and status.figures == {"net_kwh": -3.0}


def _run(
    nets: list[float], hysteresis: float, reminder: timedelta | None = None
) -> list[str | None]:
    status: AlertStatus | None = None
    events: list[str | None] = []
    for i, net in enumerate(nets):
        was = status is not None and status.state is AlertState.FIRING
        firing = balance_firing(net, was, hysteresis)
        status, event = step(status, firing, T0 + i * H, {"net_kwh": net}, reminder, **ID)
        events.append(event)
    return events


def test_hovering_series_notifies_once_and_resolves_once() -> None:
    events = _run([+5, -1, +0.5, -0.2, +0.8, +2.5], 1.0)
    assert events == [None, "firing", None, None, None, "resolved"]


nets_strategy = st.lists(
    st.floats(min_value=-10, max_value=10, allow_nan=False) | st.sampled_from([0.0, 1.0]),
    max_size=60,
)


@given(
    nets=nets_strategy,
    hysteresis=st.sampled_from([0.0, 0.5, 1.0, 3.0]),
    reminder_h=st.none() | st.integers(1, 5),
)
def test_firing_events_are_bounded_by_genuine_dips(
    nets: list[float], hysteresis: float, reminder_h: int | None
) -> None:
    reminder = None if reminder_h is None else reminder_h * H
    events = _run(nets, hysteresis, reminder)
    # Dips below 0 after having been above +hysteresis since the previous dip.
    dips, recovered = 0, False
    for net in nets:
        if net > hysteresis:
            recovered = True
        elif net < 0 and recovered:
            dips += 1
            recovered = False
    assert events.count("firing") <= dips + 1
    # firing / resolved alternate, starting with firing; reminders only while firing.
    transitions = [e for e in events if e in ("firing", "resolved")]
    assert transitions == ["firing", "resolved"] * (len(transitions) // 2) + (
        ["firing"] if len(transitions) % 2 else []
    )
    firing = False
    for event in events:
        if event == "firing":
            firing = True
        elif event == "resolved":
            firing = False
        elif event == "reminder":
            assert firing


@given(
    script=st.lists(
        st.tuples(st.booleans(), st.integers(0, 600), st.booleans()), min_size=1, max_size=40
    ),
    reminder_min=st.none() | st.integers(1, 240),
)
def test_state_machine_invariants(
    script: list[tuple[bool, int, bool]], reminder_min: int | None
) -> None:
    reminder = None if reminder_min is None else timedelta(minutes=reminder_min)
    status: AlertStatus | None = None
    now = T0
    for firing, gap_min, ack in script:
        now += timedelta(minutes=gap_min)
        before = status
        status, event = step(status, firing, now, {}, reminder, **ID)
        if status is None:
            assert before is None and not firing and event is None
            continue
        assert status.state is (AlertState.FIRING if firing else AlertState.RESOLVED)
        if event is not None:
            assert status.last_notified == now
        elif before is not None:
            assert status.last_notified == before.last_notified
        if event == "reminder":
            assert before is not None and before.last_notified is not None
            assert reminder is not None and not before.acknowledged
            assert now - before.last_notified >= reminder
        if event == "firing":
            assert status.first_seen == now and not status.acknowledged
        if firing and before is not None and before.state is AlertState.FIRING:
            assert event in (None, "reminder")
            assert status.first_seen == before.first_seen
        if ack and status.state is AlertState.FIRING:
            status = replace(status, acknowledged=True)


# ---------------------------------------------------------------- projection

LAST_YEAR = {6: -100.0, 7: 200.0, 8: 300.0, 9: 100.0, 10: -50.0, 11: -200.0, 12: -250.0}


def test_projection_from_last_year() -> None:
    # 16 June 00:00: 15 of June's 30 days to come → ½ × −100 = −50
    # July–December: 200 + 300 + 100 − 50 − 200 − 250 = 100
    # 1200 − 50 + 100 = 1250
    assert project_year_end(1200.0, paris(2026, 6, 16), PARIS, LAST_YEAR) == pytest.approx(1250.0)


def test_projection_falls_back_on_the_seasonal_profile() -> None:
    last_year = {6: -100.0, 7: 200.0, 8: 300.0, 9: 100.0, 10: -50.0}  # monitoring began Nov
    profile = {m: -1000.0 for m in range(1, 13)} | {11: -150.0, 12: -300.0}
    # ½ × −100 + (200 + 300 + 100 − 50) + (−150 − 300) = −50 + 550 − 450 = 50 → 1250;
    # last year wins over the profile (−1000) where both are known
    assert project_year_end(1200.0, paris(2026, 6, 16), PARIS, last_year, profile) == (
        pytest.approx(1250.0)
    )


def test_projection_from_the_profile_alone() -> None:
    profile = {m: 10.0 * m for m in range(1, 13)}
    # 1 December 12:00, 744 h in December: 30 d 12 h = 732 h to come → 732/744 × 120 = 118.0645…
    # no month after December
    result = project_year_end(0.0, paris(2026, 12, 1, 12), PARIS, None, profile)
    assert result == pytest.approx(120 * 732 / 744)


def test_projection_pro_rata_of_real_time_in_a_25_hour_month() -> None:
    # October 2026: 1 Oct 00:00+02 = 30 Sep 22:00Z → 1 Nov 00:00+01 = 31 Oct 23:00Z: 745 h.
    # From 25 Oct 00:00+02 (24th 22:00Z): 7 d 1 h = 169 h to come → 169/745 × −745 = −169
    last_year = {10: -745.0, 11: 0.0, 12: 0.0}
    result = project_year_end(500.0, paris(2026, 10, 25), PARIS, last_year)
    assert result == pytest.approx(500.0 - 169.0)


def test_projection_at_the_start_of_the_year_takes_twelve_months() -> None:
    last_year = {m: float(m) for m in range(1, 13)}
    # all of January to come, then February–December: 1 + 2 + … + 12 = 78
    assert project_year_end(0.0, paris(2026, 1, 1), PARIS, last_year) == pytest.approx(78.0)


def test_projection_ignores_months_already_past() -> None:
    # Only December is needed on 31 December 12:00: 12 h of 744 → 1/62 × −620 = −10
    assert project_year_end(500.0, paris(2026, 12, 31, 12), PARIS, {12: -620.0}) == (
        pytest.approx(490.0)
    )


def test_projection_impossible_without_data() -> None:
    assert project_year_end(1200.0, paris(2026, 6, 16), PARIS, None) is None
    assert project_year_end(1200.0, paris(2026, 6, 16), PARIS, None, None) is None
    # a month still needed (December) is in neither source
    partial = {m: 1.0 for m in range(1, 12)}
    assert project_year_end(1200.0, paris(2026, 6, 16), PARIS, partial, {1: 5.0}) is None
    # NaN counts as unknown, and then the profile is used
    assert project_year_end(0.0, paris(2026, 12, 16), PARIS, {12: float("nan")}) is None
    # 16 Dec 00:00: 16 of 31 days to come → 16/31 × −31 = −16
    nan_then_profile = project_year_end(
        0.0, paris(2026, 12, 16), PARIS, {12: float("nan")}, {12: -31.0}
    )
    assert nan_then_profile == pytest.approx(-16.0)


# ---------------------------------------------------------------- silent meters


def test_silent_meters() -> None:
    now = paris(2026, 6, 1, 12)
    quarter = timedelta(minutes=15)
    last_seen = {
        "fresh": paris(2026, 6, 1, 11, 50),  # 10 min < 15 min
        "exactly": paris(2026, 6, 1, 11, 45),  # 15 min: not longer than expected
        "late": paris(2026, 6, 1, 11, 30),  # 30 min = 1800 s
        "never": None,
        "unwatched": paris(2026, 1, 1),  # no expected interval: not judged
        "utc": datetime(2026, 6, 1, 8, tzinfo=UTC),  # 10:00+02 → 2 h = 7200 s
    }
    watched = {m: paris(2026, 6, 1, 11) for m in ("never", "absent")}
    watched["new"] = paris(2026, 6, 1, 11, 50)  # watched for 10 min < 15 min
    meters = ("fresh", "exactly", "late", "never", "utc", "absent", "new", "unknown")
    expected = {m: quarter for m in meters}
    assert silent_meters(last_seen, now, expected, watched) == {
        "late": 1800.0,
        "never": None,  # never reported, watched for 1 h
        "utc": 7200.0,
        "absent": None,  # watched but missing from last_seen: never seen
    }
    # Without a watch start, a never-seen meter is watched from now: not silent yet.
    assert silent_meters(last_seen, now, expected) == {"late": 1800.0, "utc": 7200.0}


def test_silence_is_real_time_across_dst() -> None:
    # 29 March 01:30+01 = 00:30Z → 03:30+02 = 01:30Z: 1 h, though 2 h on the wall clock
    last_seen = {"pv": paris(2026, 3, 29, 1, 30)}
    now = paris(2026, 3, 29, 3, 30)
    assert silent_meters(last_seen, now, {"pv": timedelta(minutes=90)}) == {}
    assert silent_meters(last_seen, now, {"pv": timedelta(minutes=30)}) == {"pv": 3600.0}


def test_silent_meters_refuses_bad_input() -> None:
    now = paris(2026, 6, 1, 12)
    with pytest.raises(ValueError, match="aware"):
        silent_meters({}, datetime(2026, 6, 1, 12), {"pv": H})
    with pytest.raises(ValueError, match="positive"):
        silent_meters({}, now, {"pv": timedelta(0)})


# ---------------------------------------------------------------- configuration

_SITE = """
[[sites]]
id = "s1"
name = "Test site"
timezone = "Europe/Paris"
floor_area_m2 = 100
location = { lat = 47.47, lon = -0.55 }
"""
_ELECTRICITY = """
[[sites.meters]]
id = "in"
role = "grid_import"
source = { topic = "s1/in", format = "number" }
"""


def test_hysteresis_defaults_scale_with_the_window_and_the_trajectory() -> None:
    rules = AlertRules()
    margins = {w: rules.window_hysteresis_kwh(w) for w in get_args(WindowName)}
    assert margins == {"today": 1, "rolling_7d": 5, "month_to_date": 10,
                       "rolling_12m": 50, "year_to_date": 50}  # fmt: skip
    assert rules.trajectory_hysteresis_kwh == 200


def test_hysteresis_by_window_overrides_only_the_windows_named() -> None:
    rules = AlertRules.model_validate({"hysteresis_kwh": {"rolling_7d": 20}})
    assert rules.window_hysteresis_kwh("rolling_7d") == 20
    assert rules.window_hysteresis_kwh("year_to_date") == 50  # its default
    one = AlertRules.model_validate({"hysteresis_kwh": 3})  # one number: every window
    assert {one.window_hysteresis_kwh(w) for w in get_args(WindowName)} == {3}
    with pytest.raises(ValidationError, match="hysteresis_kwh"):
        AlertRules.model_validate({"hysteresis_kwh": {"weekly": 2}})
    with pytest.raises(ValidationError, match="hysteresis_kwh"):
        AlertRules.model_validate({"hysteresis_kwh": {"today": -1}})


def test_min_elapsed_defaults_and_overrides() -> None:
    rules = AlertRules.model_validate({"min_elapsed_h": {"today": 6}})
    assert rules.window_min_elapsed_h("today") == 6
    assert rules.window_min_elapsed_h("month_to_date") == 24
    assert rules.window_min_elapsed_h("rolling_7d") == 0
    with pytest.raises(ValidationError, match="min_elapsed_h"):
        AlertRules.model_validate({"min_elapsed_h": {"rolling_7d": -1}})


def test_primary_energy_alerts_refuse_a_carrier_without_a_factor() -> None:
    heat = """
[[sites.meters]]
id = "heat"
carrier = "heat"
role = "grid_import"
source = { topic = "s1/heat", format = "number" }
"""
    primary = '\n[sites.alerts]\nenergy = "primary"\n'
    with pytest.raises(ConfigError, match=r"site s1: alerts.energy = 'primary' needs: "
                       r"primary_energy_factors\.heat is not set"):  # fmt: skip
        parse_sites(_SITE + primary + _ELECTRICITY + heat)
    # The factor given, or the alerts in final energy: accepted.
    with_factor = "primary_energy_factors = { heat = 0.77 }\n"
    assert parse_sites(_SITE + with_factor + primary + _ELECTRICITY + heat).sites
    assert parse_sites(_SITE + _ELECTRICITY + heat).sites
    # Electricity alone has its default factor (2.3).
    assert parse_sites(_SITE + primary + _ELECTRICITY).sites


def test_primary_energy_alerts_refuse_a_gas_meter_in_m3_without_kwh_per_m3() -> None:
    gas = """
[[sites.meters]]
id = "gas"
carrier = "gas"
unit = "m3"
role = "grid_import"
source = { topic = "s1/gas", format = "number" }
"""
    primary = '\n[sites.alerts]\nenergy = "primary"\n'
    with pytest.raises(ConfigError, match="meter 'gas' counts in m3 without kwh_per_m3"):
        parse_sites(_SITE + primary + _ELECTRICITY + gas)
    converted = gas.replace('unit = "m3"\n', 'unit = "m3"\nkwh_per_m3 = 11.2\n')
    assert parse_sites(_SITE + primary + _ELECTRICITY + converted).sites
