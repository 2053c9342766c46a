"""The alert rules through the engine on synthetic indexes: coverage, per-meter
intervals, trajectory, resets, windows (elapsed time, coverage, hysteresis), alerts whose
rule disappears, acknowledgements, a clock set back, balances that cannot be computed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers.support import GRID_AND_PV_METERS, SITE_S1, Clock

from domain.periods import localize
from domain.readings import Reading
from domain.site import SitesConfig, parse_sites
from domain.store import ReadingStore
from microville.settings import Settings
from service.alerts.engine import AlertEngine
from service.alerts.outbox import Outbox
from service.app import create_app

# --- rules through the engine on synthetic indexes ---------------------------------------


STEP = timedelta(minutes=15)


def _rules_site(rules: str, meters: str = GRID_AND_PV_METERS) -> SitesConfig:
    """A site with these ``[sites.alerts]`` rules (no reminders)."""
    return parse_sites(SITE_S1 + "\n[sites.alerts]\nreminder_h = 10000\n" + rules + meters)


def _write_indexes(
    store: ReadingStore,
    start: datetime,
    end: datetime,
    rate_wh: Callable[[str, datetime], float],
    gaps: tuple[tuple[datetime, datetime], ...] = (),
    resets: dict[str, datetime] | None = None,
    site: str = "s1",
) -> None:
    """Indexes of pv/in/out of ``site`` every 15 min over [start, end]: each rises by
    ``rate_wh(meter, t)`` per step; no reading inside a gap; back to 0 at a reset."""
    readings, value = [], {"pv": 5e5, "in": 5e5, "out": 5e5}
    t = start
    while t <= end:
        for meter in value:
            if resets and resets.get(meter) == t:
                value[meter] = 0.0
            if not any(a <= t < b for a, b in gaps):
                readings.append(Reading(site, meter, "energy", value[meter], t))
            value[meter] += rate_wh(meter, t)
        t += STEP
    store.write(readings)


def _run(engine: AlertEngine, clock: Clock, times: list[datetime], rule: str
         ) -> list[tuple[datetime, str]]:  # fmt: skip
    events = []
    for t in times:
        clock.t = t
        events += [(n.time, n.event) for n in engine.evaluate() if n.rule == rule]
    return events


@pytest.fixture
def make_engine(tmp_path: Path, store: ReadingStore) -> Iterator[Callable[..., AlertEngine]]:
    made: list[tuple[AlertEngine, Outbox]] = []

    def make(sites: SitesConfig, clock: Clock) -> AlertEngine:
        outbox = Outbox(tmp_path / f"alerts{len(made)}.db", [])
        engine = AlertEngine(sites, store, outbox.path, outbox, clock=clock)
        made.append((engine, outbox))
        return engine

    yield make
    for engine, outbox in made:
        engine.stop()
        outbox.close()


def test_a_meter_that_never_reported_gets_its_interval_from_when_it_was_first_watched(
    store: ReadingStore, tmp_path: Path
) -> None:
    """A fresh install (empty store), silent_after_s = 7200: no alert at the first
    evaluation nor after a restart 1 h later; the three meters fire after 2 h, saying
    they never reported."""
    sites = _rules_site("windows = []\n" + QUIET.replace("1e7", "7200"))
    t0 = datetime(2026, 5, 10, 12, tzinfo=UTC)
    path = tmp_path / "alerts.db"
    outbox = Outbox(path, [])
    clock = Clock(t0)
    engine = AlertEngine(sites, store, path, outbox, clock=clock)
    assert engine.evaluate() == []
    engine.stop()
    clock.t = t0 + timedelta(hours=1)
    engine = AlertEngine(sites, store, path, outbox, clock=clock)  # restarted
    assert engine.evaluate() == []
    clock.t = t0 + timedelta(hours=2)  # exactly the interval: not longer
    assert engine.evaluate() == []
    clock.t = t0 + timedelta(hours=2, minutes=1)
    silent = engine.evaluate()
    assert sorted((n.alert_id, n.event) for n in silent) == [
        ("s1:silent:in", "firing"), ("s1:silent:out", "firing"), ("s1:silent:pv", "firing")
    ]  # fmt: skip
    assert all("has never reported" in n.message and n.figures["silent_s"] is None
               and n.figures["watched_since"] == t0.isoformat() for n in silent)  # fmt: skip
    engine.stop()
    outbox.close()


def test_coverage_is_not_judged_in_the_months_first_hours_and_has_hysteresis(
    store: ReadingStore, make_engine: Callable[..., AlertEngine]
) -> None:
    sites = _rules_site('windows = []\ntrajectory = false\nresets = false\n'
                        'silent_after_s = 1e7\n')  # fmt: skip
    tz = sites.sites[0].tz
    may = localize(datetime(2026, 5, 1), tz)
    gap = (may + timedelta(days=2), may + timedelta(days=2, hours=12))  # 12 h without data
    _write_indexes(store, may - timedelta(days=3), may + timedelta(days=19),
                   lambda m, t: 100.0, gaps=(gap,))  # fmt: skip
    clock = Clock(may)
    engine = make_engine(sites, clock)
    times = [may + timedelta(minutes=5), may + timedelta(minutes=20),  # 1st, just past 0:00
             may + timedelta(days=1, hours=12), may + timedelta(days=3),  # the gap: 12 h of 72
             may + timedelta(days=12), may + timedelta(days=18)]  # fmt: skip
    coverage: dict[datetime, float] = {}
    events = []
    for t in times:
        clock.t = t
        for n in engine.evaluate():
            if n.rule == "coverage":
                events.append((t, n.event))
        status = [a for a in engine.alerts("s1") if a.rule == "coverage"]
        if status and isinstance(c := status[0].figures.get("coverage"), float):
            coverage[t] = c
    assert events == [(times[3], "firing"), (times[5], "resolved")]
    # Day 12: back above min_coverage (0.95) but not above 0.97: still firing, no flap.
    assert 0.95 < coverage[times[4]] <= 0.97
    assert coverage[times[5]] > 0.97


def test_coverage_messages_fit_their_event_and_never_round_up_to_the_threshold(
    store: ReadingStore, make_engine: Callable[..., AlertEngine]
) -> None:
    """A 10-hour gap on 2 May: 8 days 4 h into the month coverage is 186/196 = 94.9 %,
    which ``:.0%`` printed as "95 %, below the 95 %"; reminded an hour later, resolved
    on the 16th at 97.2 %, the resolved message said it was still below."""
    sites = parse_sites(SITE_S1 + "\n[sites.alerts]\nreminder_h = 1\nwindows = []\n"
                        "trajectory = false\nresets = false\nsilent_after_s = 1e7\n"
                        + GRID_AND_PV_METERS)  # fmt: skip
    tz = sites.sites[0].tz
    may = localize(datetime(2026, 5, 1), tz)
    gap = (may + timedelta(days=2), may + timedelta(days=2, hours=10, minutes=15))
    _write_indexes(store, may - timedelta(days=1), may + timedelta(days=16),
                   lambda m, t: 100.0, gaps=(gap,))  # fmt: skip
    clock = Clock(may)
    engine = make_engine(sites, clock)
    said: list[tuple[str, float, str]] = []
    for t in (may + timedelta(hours=196), may + timedelta(hours=197, minutes=30),
              may + timedelta(days=15)):  # fmt: skip
        clock.t = t
        said += [(n.event, float(str(n.figures["coverage"])), n.message)
                 for n in engine.evaluate() if n.rule == "coverage"]  # fmt: skip
    assert [(e, round(c, 4)) for e, c, _ in said] == [
        ("firing", round(1 - 10 / 196, 4)), ("reminder", round(1 - 10 / 197.5, 4)),
        ("resolved", round(1 - 10 / 360, 4)),
    ]  # fmt: skip
    (_, _, firing), (_, _, reminder), (_, _, resolved) = said
    assert "coverage is 94.8%, below the 95% a target needs" in firing
    assert "coverage is still 94.9%, below the 95%" in reminder
    assert "coverage is back to 97.2%, above the 95%" in resolved
    for message in (firing, reminder, resolved):
        assert "95%, below" not in message
    assert "below" not in resolved


def test_a_meters_own_expected_interval_overrides_the_sites(
    store: ReadingStore, make_engine: Callable[..., AlertEngine]
) -> None:
    meters = GRID_AND_PV_METERS.replace(
        'id = "pv"\n', 'id = "pv"\nexpected_interval_s = 1200\n'
    )  # the PV inverter reports every 5 minutes: 20 min of silence is a gap
    sites = _rules_site("windows = []\ntrajectory = false\ncoverage = false\n"
                        "resets = false\nsilent_after_s = 7200\n", meters)  # fmt: skip
    end = datetime(2026, 5, 10, 12, tzinfo=UTC)
    _write_indexes(store, end - timedelta(days=1), end, lambda m, t: 100.0)
    clock = Clock(end)
    engine = make_engine(sites, clock)
    silent = _run(engine, clock, [end + timedelta(minutes=15)], "silent_meter")
    assert silent == []
    clock.t = end + timedelta(minutes=21)
    assert [n.alert_id for n in engine.evaluate() if n.rule == "silent_meter"] == ["s1:silent:pv"]
    clock.t = end + timedelta(hours=2, minutes=1)  # now the site's 2 h for the others
    assert sorted(n.alert_id for n in engine.evaluate() if n.rule == "silent_meter") == [
        "s1:silent:in", "s1:silent:out"]  # fmt: skip


def test_a_measurement_meter_with_an_expected_interval_is_watched(
    store: ReadingStore, make_engine: Callable[..., AlertEngine]
) -> None:
    """A heat pump's power (a measurement) that sets expected_interval_s = 600 is watched;
    a measurement without it is not (only index meters are watched by default)."""
    measurements = (
        '\n[[sites.meters]]\nid = "heatpump"\nrole = "measurement"\nunit = "W"\n'
        'expected_interval_s = 600\nsource = { topic = "s1/hp", format = "number" }\n'
        '\n[[sites.meters]]\nid = "spare"\nrole = "measurement"\nunit = "W"\n'
        'source = { topic = "s1/spare", format = "number" }\n'
    )
    sites = _rules_site("windows = []\n" + QUIET.replace("1e7", "7200"),
                        GRID_AND_PV_METERS + measurements)  # fmt: skip
    end = datetime(2026, 5, 10, 12, tzinfo=UTC)
    _write_indexes(store, end - timedelta(days=1), end, lambda m, t: 100.0)
    store.write([Reading("s1", "heatpump", "power", 1500.0, end - timedelta(minutes=m))
                 for m in (60, 45, 30, 20)])  # fmt: skip
    clock = Clock(end - timedelta(minutes=15))  # 5 min after its last reading
    engine = make_engine(sites, clock)
    assert engine.evaluate() == []
    clock.t = end + timedelta(minutes=1)  # 21 min > 10 min
    assert [(n.alert_id, n.event) for n in engine.evaluate()] == [("s1:silent:heatpump", "firing")]
    clock.t = end + timedelta(hours=3)  # the index meters too; never "spare"
    assert sorted(n.alert_id for n in engine.evaluate()) == [
        "s1:silent:in", "s1:silent:out", "s1:silent:pv"]  # fmt: skip


@pytest.mark.parametrize(("monthly_kwh", "fires"), [(-200.0, True), (300.0, False)])
def test_trajectory_of_a_first_year_site_uses_the_seasonal_profile(
    store: ReadingStore, make_engine: Callable[..., AlertEngine], monthly_kwh: float,
    fires: bool,
) -> None:  # fmt: skip
    profile = ", ".join([str(monthly_kwh)] * 12)
    rules = (f"windows = []\ncoverage = false\nresets = false\nsilent_after_s = 1e7\n"
             f"seasonal_net_kwh = [{profile}]\n")  # fmt: skip
    sites = _rules_site(rules)
    tz = sites.sites[0].tz
    year = localize(datetime(2026, 1, 1), tz)
    now = year + timedelta(days=45)  # 15 February: no data of last year at all
    # +24 Wh per 15 min of net export since 1 January: about +104 kWh so far.
    # Readings from 1 January 00:00: the first closes last December's last slot, which
    # must not pass for a month of last year.
    _write_indexes(store, year, now, lambda m, t: {"pv": 50.0, "in": 26.0, "out": 50.0}[m])
    clock = Clock(now)
    engine = make_engine(sites, clock)
    events = [n for n in engine.evaluate() if n.rule == "trajectory"]
    (status,) = [a for a in engine.alerts("s1") if a.rule == "trajectory"] or [None]
    # ytd + half of February + March…December, all from the profile.
    expected = 45 * 96 * 24 / 1000 + monthly_kwh * (14 / 28 + 10)
    if fires:
        assert [n.event for n in events] == ["firing"]
        assert status is not None
        figures = status.figures
        assert figures["projected_year_end_net_kwh"] == pytest.approx(expected, rel=0.01)
        assert figures["months_from_last_year"] == 0
        assert figures["months_from_seasonal_profile"] == 11
        assert "seasonal profile" in events[0].message
    else:
        assert events == [] and status is None


def test_trajectory_without_last_year_nor_profile_says_nothing(
    store: ReadingStore, make_engine: Callable[..., AlertEngine]
) -> None:
    sites = _rules_site("windows = []\ncoverage = false\nresets = false\nsilent_after_s = 1e7\n")
    tz = sites.sites[0].tz
    year = localize(datetime(2026, 1, 1), tz)
    _write_indexes(store, year, year + timedelta(days=45), lambda m, t: 100.0 if m == "in" else 1)
    clock = Clock(year + timedelta(days=45))
    assert [n for n in make_engine(sites, clock).evaluate() if n.rule == "trajectory"] == []


def test_counter_reset_fires_for_the_meter_that_went_back_to_zero(
    store: ReadingStore, make_engine: Callable[..., AlertEngine]
) -> None:
    sites = _rules_site("windows = []\ntrajectory = false\ncoverage = false\n"
                        "silent_after_s = 1e7\n")  # fmt: skip
    tz = sites.sites[0].tz
    may = localize(datetime(2026, 5, 1), tz)
    _write_indexes(store, may - timedelta(days=1), may + timedelta(days=10),
                   lambda m, t: 100.0, resets={"in": may + timedelta(days=4)})  # fmt: skip
    clock = Clock(may)
    engine = make_engine(sites, clock)
    times = [may + timedelta(days=3), may + timedelta(days=5), may + timedelta(days=9)]
    clock.t = times[0]
    assert [n for n in engine.evaluate() if n.rule == "counter_reset"] == []
    clock.t = times[1]
    fired = [n for n in engine.evaluate() if n.rule == "counter_reset"]
    assert [(n.alert_id, n.event) for n in fired] == [("s1:reset:in", "firing")]
    assert fired[0].figures["resets"] == 1
    clock.t = times[2]  # still this month: no second notification
    assert [n for n in engine.evaluate() if n.rule == "counter_reset"] == []


def test_a_balance_hovering_around_zero_fires_once_and_does_not_flap(
    store: ReadingStore, make_engine: Callable[..., AlertEngine]
) -> None:
    """Today's net swings between −0.5 and +0.5 kWh hour after hour (inside the 1 kWh
    hysteresis), then clears +1 kWh: one firing, one resolution. Judged from the first
    hour (min_elapsed_h 0; the default waits until noon)."""
    sites = _rules_site('windows = ["today"]\nhysteresis_kwh = 1\nmin_elapsed_h = { today = 0 }\n'
                        "trajectory = false\ncoverage = false\nresets = false\n"
                        "silent_after_s = 1e7\n")  # fmt: skip
    tz = sites.sites[0].tz
    day = localize(datetime(2026, 5, 4), tz)

    def rate(meter: str, t: datetime) -> float:
        hour = int((t - day).total_seconds() // 3600)
        if meter == "pv" or hour < 0:
            return 0.0
        # hour 0: −0.5 kWh net; then alternately +1 and −1 kWh an hour; from 12: +1.5.
        swing = -500 if hour == 0 else (1000 if hour % 2 else -1000) if hour < 12 else 1500
        return max(swing, 0) / 4 if meter == "out" else max(-swing, 0) / 4

    _write_indexes(store, day - timedelta(hours=2), day + timedelta(hours=16), rate)
    clock = Clock(day)
    engine = make_engine(sites, clock)
    times = [day + timedelta(hours=h) for h in range(1, 15)]
    events = _run(engine, clock, times, "balance_today")
    assert events == [(times[0], "firing"), (times[12], "resolved")]


# --- balance windows: elapsed time, coverage, hysteresis ---------------------------------

#: A gas meter counting in m³, without kwh_per_m3: its energy is unknown.
GAS_M3_METER = (
    '\n[[sites.meters]]\nid = "gas"\ncarrier = "gas"\nunit = "m3"\nrole = "grid_import"\n'
    'source = { topic = "s1/gas", format = "number" }\n'
)
QUIET = "trajectory = false\ncoverage = false\nresets = false\nsilent_after_s = 1e7\n"


def test_a_window_is_judged_once_enough_of_it_has_passed(
    store: ReadingStore, make_engine: Callable[..., AlertEngine]
) -> None:
    """A sunny April, then from 1 May only imports: today's balance is judged from noon
    (12 h), the month's from the 2nd (24 h), not on their first minutes of night."""
    sites = _rules_site('windows = ["today", "month_to_date"]\n' + QUIET)
    tz = sites.sites[0].tz
    may = localize(datetime(2026, 5, 1), tz)

    def rate(meter: str, t: datetime) -> float:
        sunny = t < may
        return {"pv": 400.0 if sunny else 0.0, "out": 300.0 if sunny else 0.0, "in": 50.0}[meter]

    _write_indexes(store, may - timedelta(days=5), may + timedelta(days=2), rate)
    clock = Clock(may)
    engine = make_engine(sites, clock)
    # 21:00 on the 30th, 00:20, 11:50, 12:20, 23:00 on the 1st, 00:20 on the 2nd
    hours = [-3, 1 / 3, 11 + 5 / 6, 12 + 1 / 3, 23, 24 + 1 / 3]
    times = [may + timedelta(hours=h) for h in hours]
    events: list[tuple[datetime, str, str]] = []
    for t in times:
        clock.t = t
        events += [(t, n.rule, n.event) for n in engine.evaluate()]
    assert events == [(times[3], "balance_today", "firing"),
                      (times[5], "balance_month_to_date", "firing")]  # fmt: skip
    # Past midnight the new day is not judged yet: today's alert keeps firing, unnotified.
    (today,) = [a for a in engine.alerts("s1") if a.rule == "balance_today"]
    assert today.state == "firing" and today.last_seen == times[4]
    (month,) = [a for a in engine.alerts("s1") if a.rule == "balance_month_to_date"]
    # Windows end at the last quarter hour: 00:15 on the 2nd.
    assert month.figures["elapsed_h"] == pytest.approx(24.25)
    assert month.figures["end"] == (may + timedelta(hours=24.25)).isoformat()


def test_a_window_covered_below_min_coverage_fires_and_says_it_proves_nothing(
    store: ReadingStore, make_engine: Callable[..., AlertEngine]
) -> None:
    """Data from 1 June only (the demo's case): the year to date is negative, 7 % covered."""
    sites = _rules_site('windows = ["year_to_date", "rolling_7d"]\n' + QUIET)
    tz = sites.sites[0].tz
    june, now = localize(datetime(2026, 6, 1), tz), localize(datetime(2026, 6, 12, 21), tz)
    _write_indexes(store, june, now, lambda m, t: 100.0 if m == "in" else 0.0)
    clock = Clock(now)
    fired = {n.rule: n for n in make_engine(sites, clock).evaluate()}
    ytd = fired["balance_year_to_date"]
    assert ytd.event == "firing" and isinstance(ytd.figures["net_kwh"], float)
    year_h = (now - localize(datetime(2026, 1, 1), tz)).total_seconds() / 3600
    covered_h = (now - june).total_seconds() / 3600
    assert ytd.figures["coverage"] == pytest.approx(covered_h / year_h, abs=0.005)  # 7.3 %
    assert (ytd.figures["min_coverage"], ytd.figures["provable"]) == (0.95, "no")
    assert "data coverage 7.3%, below the 95% a proof needs" in ytd.message
    # The last 7 days are fully covered: an ordinary alert.
    week = fired["balance_rolling_7d"]
    assert week.figures["provable"] == "yes" and "below" not in week.message


@pytest.mark.parametrize(
    ("rules", "resolves"), [("", False), ("trajectory_hysteresis_kwh = 10\n", True)]
)
def test_the_trajectory_has_its_own_hysteresis(
    store: ReadingStore, make_engine: Callable[..., AlertEngine], rules: str, resolves: bool
) -> None:
    """The projection climbs from about −22 kWh (15 February) to about +41 kWh (10 March):
    within the default 200 kWh it keeps firing; with 10 kWh it resolves."""
    profile = ", ".join(["-12.0"] * 12)
    sites = _rules_site("windows = []\ncoverage = false\nresets = false\nsilent_after_s = 1e7\n"
                        f"seasonal_net_kwh = [{profile}]\n{rules}")  # fmt: skip
    tz = sites.sites[0].tz
    year = localize(datetime(2026, 1, 1), tz)
    times = [year + timedelta(days=45), year + timedelta(days=68)]
    _write_indexes(store, year, times[1], lambda m, t: {"pv": 50.0, "in": 26.0, "out": 50.0}[m])
    clock = Clock(times[0])
    engine = make_engine(sites, clock)
    events = _run(engine, clock, times, "trajectory")
    (status,) = [a for a in engine.alerts("s1") if a.rule == "trajectory"]
    projected = status.figures["projected_year_end_net_kwh"]
    assert isinstance(projected, float) and 30 < projected < 50
    expected = [(times[0], "firing")] + ([(times[1], "resolved")] if resolves else [])
    assert events == expected
    assert status.figures["resolves_above_kwh"] == (10 if resolves else 200)


def test_the_trajectory_counts_only_the_months_of_last_year_it_uses(
    store: ReadingStore, make_engine: Callable[..., AlertEngine]
) -> None:
    """Last year's January and October–December are covered; on 15 February the
    projection takes February–September from the profile and October–December from last
    year: 3 months of last year (its January is in no projection of this year's end)."""
    profile = ", ".join(["-100.0"] * 12)  # the year ends negative: the alert fires
    sites = _rules_site("windows = []\ncoverage = false\nresets = false\nsilent_after_s = 1e7\n"
                        f"seasonal_net_kwh = [{profile}]\n")  # fmt: skip
    tz = sites.sites[0].tz
    last_year = localize(datetime(2025, 1, 1), tz)
    now = localize(datetime(2026, 2, 15), tz)
    gap = (localize(datetime(2025, 2, 1, 1), tz), localize(datetime(2025, 10, 1), tz))
    _write_indexes(store, last_year, now, lambda m, t: {"pv": 50.0, "in": 26.0, "out": 50.0}[m],
                   gaps=(gap,))  # fmt: skip
    clock = Clock(now)
    engine = make_engine(sites, clock)
    engine.evaluate()
    (status,) = [a for a in engine.alerts("s1") if a.rule == "trajectory"]
    assert status.figures["months_from_last_year"] == 3
    assert status.figures["months_from_seasonal_profile"] == 8


# --- alerts whose condition disappears ---------------------------------------------------


def test_alerts_whose_rule_is_removed_resolve_once_saying_why(
    store: ReadingStore, tmp_path: Path
) -> None:
    """Firing: the 7-day balance, the trajectory (from a seasonal profile), three silent
    meters. The configuration then drops the window, the profile and the PV meter, and
    later disables the site's alerts."""
    profile = ", ".join(["-100.0"] * 12)
    before = _rules_site('windows = ["rolling_7d"]\ncoverage = false\nresets = false\n'
                         f'silent_after_s = 3600\nseasonal_net_kwh = [{profile}]\n')  # fmt: skip
    tz = before.sites[0].tz
    end = localize(datetime(2026, 5, 10), tz)
    _write_indexes(store, end - timedelta(days=9), end, lambda m, t: 100.0 if m == "in" else 0.0)
    path = tmp_path / "alerts.db"
    outbox = Outbox(path, [])
    clock = Clock(end + timedelta(hours=2))
    engine = AlertEngine(before, store, path, outbox, clock=clock)
    firing = {n.alert_id for n in engine.evaluate() if n.event == "firing"}
    assert firing == {"s1:balance:rolling_7d", "s1:trajectory:year_end",
                      "s1:silent:pv", "s1:silent:in", "s1:silent:out"}  # fmt: skip
    engine.stop()

    meters = GRID_AND_PV_METERS.split("[[sites.meters]]")
    without_pv = "".join("[[sites.meters]]" + m for m in meters[1:] if 'id = "pv"' not in m)
    after = _rules_site("windows = []\ncoverage = false\nresets = false\nsilent_after_s = 3600\n",
                        without_pv)  # fmt: skip
    clock.t = end + timedelta(hours=3)
    engine = AlertEngine(after, store, path, outbox, clock=clock)
    resolved = {n.alert_id: n for n in engine.evaluate()}
    assert set(resolved) == {"s1:balance:rolling_7d", "s1:trajectory:year_end", "s1:silent:pv"}
    assert all(n.event == "resolved" for n in resolved.values())
    week = resolved["s1:balance:rolling_7d"]
    assert week.figures["resolved_reason"] == "rule removed from the configuration"
    assert isinstance(net := week.figures["net_kwh"], float) and net < 0  # its last figures
    assert "rule removed" in week.message
    assert (
        resolved["s1:silent:pv"].figures["resolved_reason"] == "rule removed from the configuration"
    )
    trajectory = resolved["s1:trajectory:year_end"]
    assert "can no longer be projected" in str(trajectory.figures["resolved_reason"])
    assert "can no longer be projected" in trajectory.message
    clock.t = end + timedelta(hours=4)
    assert engine.evaluate() == []  # notified once
    states = {a.alert_id: a.state for a in engine.alerts("s1")}
    assert states["s1:silent:in"] == "firing" and states["s1:silent:pv"] == "resolved"
    engine.stop()

    disabled = _rules_site("enabled = false\n", without_pv)
    clock.t = end + timedelta(hours=5)
    engine = AlertEngine(disabled, store, path, outbox, clock=clock)
    last = engine.evaluate()
    assert sorted((n.alert_id, n.event) for n in last) == [
        ("s1:silent:in", "resolved"), ("s1:silent:out", "resolved")]  # fmt: skip
    assert {n.figures["resolved_reason"] for n in last} == {"alerts disabled for the site"}
    engine.stop()
    outbox.close()


# --- acknowledgement ----------------------------------------------------------------------


def test_an_acknowledgement_is_recorded_in_the_history_with_who_and_when(
    store: ReadingStore, tmp_path: Path
) -> None:
    sites = _rules_site('windows = ["rolling_7d"]\n' + QUIET)
    tz = sites.sites[0].tz
    end = localize(datetime(2026, 5, 10), tz)
    _write_indexes(store, end - timedelta(days=8), end, lambda m, t: 100.0 if m == "in" else 0.0)
    path = tmp_path / "alerts.db"
    outbox = Outbox(path, [])
    clock = Clock(end)
    engine = AlertEngine(sites, store, path, outbox, clock=clock)
    assert [n.event for n in engine.evaluate()] == ["firing"]
    app = create_app(Settings(config="/dev/null"), store=store, sites=sites, alerts=engine)
    with TestClient(app) as client:  # with the tests' admin token, named "tests"
        clock.t = end + timedelta(minutes=7, seconds=30)
        ack = client.post("/api/v1/sites/s1/alerts/s1:balance:rolling_7d/acknowledge")
        assert ack.status_code == 200 and ack.json()["acknowledged"] is True
        clock.t = end + timedelta(minutes=9)
        assert client.post("/api/v1/sites/s1/alerts/s1:balance:rolling_7d/acknowledge").is_success
        history = client.get("/api/v1/sites/s1/alerts").json()["history"]
    assert [(e["event"], e["by"]) for e in history] == [("acknowledged", "tests"),
                                                        ("firing", None)]  # fmt: skip
    assert datetime.fromisoformat(history[0]["time"]) == end + timedelta(minutes=7, seconds=30)
    # The monthly report lists the alerts' own events.
    month = engine.events_between("s1", end - timedelta(days=9), end + timedelta(days=1))
    assert [e["event"] for e in month] == ["firing"]
    engine.stop()
    outbox.close()


def test_a_balance_with_an_unconverted_gas_meter_is_not_judged_and_says_why(
    store: ReadingStore, make_engine: Callable[..., AlertEngine], caplog: pytest.LogCaptureFixture
) -> None:
    """A gas meter in m³ without kwh_per_m3: the electricity alone is negative, but the
    site's balance is unknown, so no balance alert fires; the log says why."""
    gas = GAS_M3_METER
    sites = _rules_site('windows = ["rolling_7d"]\n' + QUIET, GRID_AND_PV_METERS + gas)
    tz = sites.sites[0].tz
    t0 = localize(datetime(2026, 5, 1), tz)
    _write_indexes(store, t0, t0 + timedelta(days=8), lambda m, t: 50.0 if m == "in" else 0.0)
    engine = make_engine(sites, Clock(t0 + timedelta(days=8)))
    with caplog.at_level(logging.ERROR):
        events = engine.evaluate()
    assert [n.rule for n in events if n.rule == "balance_rolling_7d"] == []
    assert "meters in m3 without kwh_per_m3: gas" in caplog.text
    converted = _rules_site(
        'windows = ["rolling_7d"]\n' + QUIET,
        GRID_AND_PV_METERS + gas.replace('unit = "m3"\n', 'unit = "m3"\nkwh_per_m3 = 10.5\n'),
    )
    fired = make_engine(converted, Clock(t0 + timedelta(days=8))).evaluate()
    assert [(n.rule, n.event) for n in fired if n.rule == "balance_rolling_7d"] == [
        ("balance_rolling_7d", "firing")
    ]


def test_the_trajectory_is_not_projected_from_a_balance_missing_an_unconverted_meter(
    store: ReadingStore, make_engine: Callable[..., AlertEngine], caplog: pytest.LogCaptureFixture
) -> None:
    """The year-end projection of a site with a gas meter in m³ and no kwh_per_m3 would be
    the electricity's alone: held and said, not fired; converted, it fires."""
    gas = GAS_M3_METER
    rules = (
        "windows = []\ntrajectory = true\ntrajectory_hysteresis_kwh = 1\n"
        "seasonal_net_kwh = [-100, -80, -40, 0, 40, 60, 60, 50, 10, -30, -80, -100]\n"
        "coverage = false\nresets = false\nsilent_after_s = 1e7\n"
    )
    sites = _rules_site(rules, GRID_AND_PV_METERS + gas)
    tz = sites.sites[0].tz
    t0 = localize(datetime(2026, 1, 1), tz)
    _write_indexes(store, t0, t0 + timedelta(days=20), lambda m, t: 50.0 if m == "in" else 0.0)
    now = t0 + timedelta(days=20)
    with caplog.at_level(logging.ERROR):
        held = make_engine(sites, Clock(now)).evaluate()
    assert [n.rule for n in held if n.rule == "trajectory"] == []
    assert "year-to-date" in caplog.text
    converted = _rules_site(
        rules, GRID_AND_PV_METERS + gas.replace('unit = "m3"\n', 'unit = "m3"\nkwh_per_m3 = 10.5\n')
    )
    fired = make_engine(converted, Clock(now)).evaluate()
    assert [(n.rule, n.event) for n in fired if n.rule == "trajectory"] == [
        ("trajectory", "firing")
    ]


# --- a clock set back -----------------------------------------------------------------------


def test_an_alert_ahead_of_a_clock_set_back_keeps_its_state_and_the_others_go_on(
    store: ReadingStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """s1's 7-day alert fired at 18:00; the clock goes back to 17:00 (NTP) and a site s2
    and s1's "today" window are added: the alert ahead of the clock keeps its state (said
    once in the log), the others are judged, the API's evaluation answers 200."""
    rules = "\n[sites.alerts]\nreminder_h = 10000\n" + QUIET
    first = parse_sites(SITE_S1 + rules + 'windows = ["rolling_7d"]\n' + GRID_AND_PV_METERS)
    s2 = (SITE_S1 + rules + 'windows = ["rolling_7d"]\n' + GRID_AND_PV_METERS).replace('"s1', '"s2')
    both = parse_sites(
        SITE_S1 + rules + 'windows = ["rolling_7d", "today"]\n' + GRID_AND_PV_METERS + s2
    )
    assert [s.id for s in both.sites] == ["s1", "s2"]
    end = localize(datetime(2026, 5, 10, 18), first.sites[0].tz)
    for site in ("s1", "s2"):
        _write_indexes(store, end - timedelta(days=8), end,
                       lambda m, t: 100.0 if m == "in" else 0.0, site=site)  # fmt: skip
    path = tmp_path / "alerts.db"
    outbox = Outbox(path, [])
    clock = Clock(end)
    engine = AlertEngine(first, store, path, outbox, clock=clock)
    assert [(n.alert_id, n.event) for n in engine.evaluate()] == [
        ("s1:balance:rolling_7d", "firing")
    ]
    engine.stop()

    clock.t = end - timedelta(hours=1)
    engine = AlertEngine(both, store, path, outbox, clock=clock)
    app = create_app(Settings(config="/dev/null"), store=store, sites=both, alerts=engine)
    with caplog.at_level(logging.WARNING), TestClient(app) as client:
        answer = client.post("/api/v1/sites/s2/alerts/evaluate")
        assert answer.status_code == 200
        assert [(e["alert_id"], e["event"]) for e in answer.json()] == [
            ("s2:balance:rolling_7d", "firing")
        ]
        clock.t = end - timedelta(minutes=30)
        assert client.post("/api/v1/sites/s1/alerts/evaluate").json() == []
    ahead = [r for r in caplog.records if "s1:balance:rolling_7d" in r.getMessage()]
    assert len(ahead) == 1 and "clock went back" in ahead[0].getMessage()  # said once
    status = {a.alert_id: a for a in engine.alerts("s1")}
    assert status["s1:balance:rolling_7d"].last_seen == end  # kept as it was
    assert status["s1:balance:today"].first_seen == end - timedelta(hours=1)
    # The clock passes the alert's last evaluation: it is judged again, still firing.
    clock.t = end + timedelta(hours=1)
    assert engine.evaluate() == []
    status = {a.alert_id: a for a in engine.alerts("s1")}
    assert status["s1:balance:rolling_7d"].last_seen == end + timedelta(hours=1)
    engine.stop()
    outbox.close()


def test_a_balance_that_cannot_be_computed_raises_a_proof_at_risk_alert_until_fixed(
    store: ReadingStore, tmp_path: Path
) -> None:
    """A gas meter in m³ without kwh_per_m3 holds the 7-day balance alert: the facility
    manager is told once (balance_unknown, naming the meter and the key), and told it is
    fixed once the meter gets its kwh_per_m3."""
    gas = GAS_M3_METER
    rules = 'windows = ["rolling_7d"]\n' + QUIET
    sites = _rules_site(rules, GRID_AND_PV_METERS + gas)
    t0 = localize(datetime(2026, 5, 1), sites.sites[0].tz)
    _write_indexes(store, t0, t0 + timedelta(days=8), lambda m, t: 50.0 if m == "in" else 0.0)
    path = tmp_path / "alerts.db"
    outbox = Outbox(path, [])
    clock = Clock(t0 + timedelta(days=8))
    engine = AlertEngine(sites, store, path, outbox, clock=clock)
    (unknown,) = engine.evaluate()
    assert (unknown.alert_id, unknown.rule, unknown.event) == (
        "s1:balance:unknown", "balance_unknown", "firing")  # fmt: skip
    assert "rolling 7d" in unknown.message
    assert unknown.figures["to_configure"] == "meter 'gas' counts in m3 without kwh_per_m3"
    clock.t += timedelta(hours=1)
    assert engine.evaluate() == []  # still unknown: told once
    engine.stop()
    converted = _rules_site(
        rules, GRID_AND_PV_METERS + gas.replace('unit = "m3"\n', 'unit = "m3"\nkwh_per_m3 = 10.5\n')
    )
    clock.t += timedelta(hours=1)
    engine = AlertEngine(converted, store, path, outbox, clock=clock)
    assert sorted((n.alert_id, n.event) for n in engine.evaluate()) == [
        ("s1:balance:rolling_7d", "firing"), ("s1:balance:unknown", "resolved")]  # fmt: skip
    engine.stop()
    outbox.close()
