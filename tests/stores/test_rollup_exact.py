"""Rollups are exact (issue #17): on each store, every energy, estimate, coverage and
counter figure read through the rollups (clean stretches answered as runs) equals the
figure computed from the raw readings themselves, whatever the readings: resets,
rollovers, glitches, spikes, gaps, duplicates, overwrites, late arrivals in any order,
DST days and a half-hour time zone."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from helpers.raw_store import RawStore
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.balance import MeterEnergy
from domain.periods import Step, period_bounds
from domain.readings import Reading
from domain.site import Site, parse_sites
from domain.store import ReadingStore
from service.usecases.kernel import meter_energies

QUARTER = timedelta(minutes=15)
#: (zone, first local day): the autumn clock change, and India's half hour.
ZONES = [("Europe/Paris", datetime(2026, 10, 23)), ("Asia/Kolkata", datetime(2026, 3, 10))]
EVENTS = ["rise", "rise", "rise", "flat", "gap", "long_gap", "glitch", "spike", "reset", "rollover"]
ROLLOVER_AT = 1e7


def _site(site_id: str, tz: str, max_power_w: float | None) -> Site:
    power = f", max_power_w = {max_power_w}" if max_power_w else ""
    return parse_sites(
        f"""
[[sites]]
id = "{site_id}"
name = "Rollup site"
timezone = "{tz}"
floor_area_m2 = 100
location = {{ lat = 47.47, lon = -0.55 }}

[[sites.meters]]
id = "in"
role = "grid_import"
source = {{ topic = "{site_id}/in", format = "number" }}
quality = {{ rollover_at = {ROLLOVER_AT}, glitch_window_s = 3600 {power} }}
"""
    ).sites[0]


def _readings(site_id: str, t0: datetime, events: list[str], rng: random.Random) -> list[Reading]:
    """Quarter-hourly readings over four days with the ``events`` at random places."""
    at = {rng.randrange(4 * 96): e for e in events}
    value, t, out = 9_990_000.0 - rng.randrange(2) * 5_000_000, t0, []
    for i in range(4 * 96):
        event = at.get(i, "rise")
        t += QUARTER
        if event == "gap":
            t += rng.choice([1, 2, 3]) * QUARTER
        elif event == "long_gap":
            t += timedelta(hours=rng.choice([2, 5, 30]))
        if event == "rise":
            value += rng.choice([0.0, 50.0, 125.5, 400.0])
        elif event == "glitch":
            out.append(Reading(site_id, "in", "energy", value * 0.5, t))
            t += QUARTER
        elif event == "spike":
            out.append(Reading(site_id, "in", "energy", value + 5e6, t))
            t += QUARTER
        elif event == "reset":
            value = 10.0
        elif event == "rollover":
            value = (value + 3000.0) % ROLLOVER_AT
        out.append(Reading(site_id, "in", "energy", value, t))
    return out


def _figures(e: MeterEnergy) -> tuple[object, ...]:
    return (e.energy_wh, e.estimated_wh, e.coverage, e.resets, e.rollovers, e.glitches, e.spikes)


@settings(
    max_examples=int(os.environ.get("ROLLUP_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    zone=st.sampled_from(ZONES),
    events=st.lists(st.sampled_from(EVENTS), max_size=8),
    max_power_w=st.sampled_from([None, 2000.0, 300.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_figures_from_the_rollups_equal_those_from_the_raw_readings(
    store: ReadingStore,
    zone: tuple[str, datetime],
    events: list[str],
    max_power_w: float | None,
    seed: int,
) -> None:
    rng = random.Random(seed)
    tz, first_day = ZoneInfo(zone[0]), zone[1]
    site = _site(f"r{uuid.uuid4().hex[:10]}", zone[0], max_power_w)
    t0 = first_day.replace(tzinfo=tz).astimezone(UTC)
    readings = _readings(site.id, t0, events, rng)
    # Redeliveries, overwrites of a time with another value, late and shuffled batches.
    extra = rng.sample(readings, k=min(len(readings), 20))
    overwrites = [
        Reading(r.site, r.meter, r.quantity, r.value + rng.choice([-200.0, 300.0]), r.time)
        for r in rng.sample(readings, k=5)
    ]
    batches = [*_shuffled_batches(readings + extra, rng), overwrites]
    raw = RawStore()
    for batch in batches:
        store.write(batch)
        raw.write(batch)
    flush = getattr(store, "flush_rollups", None)
    if rng.random() < 0.5 and flush is not None:
        flush()  # else some days are still dirty: read raw, as they must be
    meters = list(site.meters)
    for start, end, step in (
        (first_day, first_day + timedelta(days=4), Step.DAY),
        (first_day + timedelta(days=1), first_day + timedelta(days=3), Step.HOUR),
        (first_day - timedelta(days=2), first_day + timedelta(days=6), Step.MONTH),
    ):
        bounds = period_bounds(start, end, step, tz)
        got = meter_energies(site, store, meters, bounds)["in"]
        want = meter_energies(site, raw, meters, bounds)["in"]
        assert _figures(got) == _figures(want), (step, start)


def _shuffled_batches(readings: Sequence[Reading], rng: random.Random) -> list[list[Reading]]:
    """Mostly in order, in batches of up to 50, with a day published last and a few
    batches swapped: how a replay after an outage and out-of-order QoS 1 arrive."""
    ordered = list(readings)
    late_day = [r for r in ordered if r.time.day == ordered[len(ordered) // 2].time.day]
    rest = [r for r in ordered if r not in late_day]
    batches, i = [], 0
    while i < len(rest):
        size = rng.randint(1, 50)
        batches.append(rest[i : i + size])
        i += size
    for _ in range(3):
        if len(batches) > 1:
            i, j = rng.sample(range(len(batches)), 2)
            batches[i], batches[j] = batches[j], batches[i]
    return [b for b in batches if b] + [late_day]


def test_clean_days_reach_the_service_as_runs(store: ReadingStore) -> None:
    # Four clean days in Paris across the clock change: each local day is one run (its
    # head hour, then the rest), not 23 to 25 hourly slots; the figures are the raw ones.
    tz = ZoneInfo("Europe/Paris")
    first_day = ZONES[0][1]
    site = _site("runs", "Europe/Paris", None)
    readings = _readings(
        site.id, first_day.replace(tzinfo=tz).astimezone(UTC), [], random.Random(1)
    )
    store.write(readings)
    raw = RawStore()
    raw.write(readings)
    getattr(store, "flush_rollups", lambda: None)()
    bounds = period_bounds(first_day, first_day + timedelta(days=4), Step.DAY, tz)
    slots = store.index_slots(
        site.id, ["in"], "energy", bounds[0], bounds[-1], timedelta(hours=1), bounds
    )["in"].slots
    assert [s.hours for s in slots] == [1, 23, 1, 23, 1, 24, 1, 22]  # 25 h on 25 October
    assert sum(s.count for s in slots) == len(readings)
    got = meter_energies(site, store, list(site.meters), bounds)["in"]
    assert _figures(got) == _figures(meter_energies(site, raw, list(site.meters), bounds)["in"])
    # The readings end an hour before the fourth day does (it lasts 24 h, the 25th 25 h).
    assert got.coverage == [1.0, 1.0, 1.0, 23 / 24]
