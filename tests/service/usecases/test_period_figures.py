"""A period's figures on both stores through the energy use case (issue #13, parts 3-4):
a meter swapped inside a slot keeps the old meter's last rise, and a day's energy,
estimate and coverage are the same asked alone or inside a longer range."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from helpers.support import SITE_S1
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.periods import Step
from domain.readings import Reading
from domain.site import Site, parse_sites
from domain.store import ReadingStore
from service.usecases.energy import EnergyReport, energy_report

PARIS = ZoneInfo("Europe/Paris")
H = timedelta(hours=1)
QUARTER = timedelta(minutes=15)
IMPORT_METER = """
[[sites.meters]]
id = "in"
role = "grid_import"
source = { topic = "s1/in", format = "number" }
"""


def _site() -> Site:
    return parse_sites(SITE_S1 + IMPORT_METER).sites[0]


def _day(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=PARIS)


def _import(report: EnergyReport, k: int) -> tuple[float, float, float]:
    """(energy [Wh], estimated [Wh], coverage) of the import meter in period ``k``."""
    e = report.meters["in"]
    return e.energy_wh[k], e.estimated_wh[k], e.coverage[k]


# ---------------------------------------------------------------- 3. a swap inside a slot


def test_meter_swapped_inside_an_hour_keeps_the_old_meters_last_rise(
    store: ReadingStore,
) -> None:
    # 14 October 2026, quarter-hourly readings from 00:00 local: the old meter rises
    # 400 Wh a quarter up to 11:15, is swapped, and the new one reads 0 at 11:30 and
    # rises 400 Wh a quarter to 24:00. The old meter's 45 quarters and the new one's 50
    # are measured: 38 000 Wh. The hour (11:00, 12:00] local holds 11:15 (old) and
    # 11:30 to 12:00 (new): before the fix only its last value was seen, the old
    # meter's 11:00 → 11:15 rise (400 Wh) was lost from the day, month and year.
    t0 = _day(2026, 10, 14)
    old = [
        Reading("s1", "in", "energy", 2_000_000.0 + 400 * i, t0 + i * QUARTER) for i in range(46)
    ]
    new = [Reading("s1", "in", "energy", 400.0 * (i - 46), t0 + i * QUARTER) for i in range(46, 97)]
    store.write(old + new)
    site = _site()
    for start, end, step in (
        (t0, _day(2026, 10, 15), Step.DAY),
        (_day(2026, 10, 1), _day(2026, 11, 1), Step.MONTH),
        (_day(2026, 1, 1), _day(2027, 1, 1), Step.YEAR),
    ):
        report = energy_report(site, store, start, end, step)
        meter = report.meters["in"]
        assert meter.energy_wh == [pytest.approx(38_000.0)], step
        assert meter.estimated_wh == [0.0] and meter.resets == 1
        assert report.total.carriers["electricity"].import_wh == pytest.approx(38_000.0)


# ---------------------------------------------------------------- 4. query-independent days


@pytest.mark.parametrize(
    ("last_before", "first_after"),
    [
        # The brief's 7-hour gap across midnight: 21:00 on the 14th → 04:00 on the 15th.
        ((2026, 10, 14, 21), (2026, 10, 15, 4)),
        # A gap longer than the look-ahead past a day's end: 20:00 → 02:00 two days on.
        ((2026, 10, 14, 20), (2026, 10, 16, 2)),
    ],
)
def test_a_day_alone_has_the_figures_it_has_inside_a_range(
    store: ReadingStore,
    last_before: tuple[int, int, int, int],
    first_after: tuple[int, int, int, int],
) -> None:
    # Hourly import readings, 1 kWh an hour, from 13 to 18 October local, none in the gap.
    gap = (datetime(*last_before, tzinfo=PARIS), datetime(*first_after, tzinfo=PARIS))
    t = _day(2026, 10, 13)
    readings = []
    while t <= _day(2026, 10, 18):
        if not gap[0] < t < gap[1]:
            hours = (t - _day(2026, 10, 13)) / H
            readings.append(Reading("s1", "in", "energy", 5_000_000.0 + 1000 * hours, t))
        t = (t.astimezone(UTC) + H).astimezone(PARIS)
    store.write(readings)
    site = _site()
    days = [_day(2026, 10, d) for d in range(14, 18)]
    whole = energy_report(site, store, days[0], days[-1], Step.DAY)
    # The range's days: 24 kWh each, the gap's energy pro rata of its hours.
    assert sum(whole.meters["in"].energy_wh) == pytest.approx(72_000.0)
    for k, day in enumerate(days[:-1]):
        alone = energy_report(site, store, day, days[k + 1], Step.DAY)
        assert _import(alone, 0) == pytest.approx(_import(whole, k), abs=1e-6), day


# ---------------------------------------------------------------- property, both stores

#: 23 to 28 October 2026 local, the 25th 25 hours long (the autumn clock change).
DAYS = [_day(2026, 10, d) for d in range(23, 29)]
STEP = timedelta(minutes=20)
#: Readings every 20 minutes from 22 October 00:00 local to 29 October 00:00 local.
N_READINGS = round((_day(2026, 10, 29) - _day(2026, 10, 22)) / STEP) + 1
_examples = itertools.count()


@st.composite
def gappy_index(draw: st.DrawFn) -> tuple[list[float | None], int, int]:
    """A meter's index every 20 minutes (``None``: lost in a gap), with resets to 0 at
    least a day apart (a new meter, whose first hours are never lost), and a range of
    whole days ``DAYS[a:b]``."""
    rises = draw(st.lists(st.floats(min_value=50, max_value=500), min_size=8, max_size=8))
    day = round(24 * H / STEP)
    resets = sorted(draw(st.sets(st.integers(min_value=1, max_value=N_READINGS - 1), max_size=3)))
    resets = [r for i, r in enumerate(resets) if i == 0 or r - resets[i - 1] >= day]
    gaps = draw(
        st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=N_READINGS - 1),
                st.integers(min_value=2, max_value=round(40 * H / STEP)),
            ),
            max_size=3,
        )
    )
    kept = set(range(N_READINGS))
    for first, length in gaps:
        kept -= set(range(first, first + length))
    for r in resets:  # the new meter's first two hours are read
        kept |= set(range(r, r + 6))
    index, value = [], draw(st.floats(min_value=1e6, max_value=1e7))
    for i in range(N_READINGS):
        value = 0.0 if i in resets else value + rises[i // day]
        index.append(value if i in kept else None)
    a = draw(st.integers(min_value=0, max_value=len(DAYS) - 2))
    b = draw(st.integers(min_value=a + 1, max_value=len(DAYS) - 1))
    return index, a, b


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(scenario=gappy_index())
def test_a_day_is_the_same_alone_inside_any_range_and_in_the_whole(
    store: ReadingStore, scenario: tuple[list[float | None], int, int]
) -> None:
    """Gaps of up to 40 h anywhere (across midnight, across a range's edges), resets
    (some inside an hour): each day has the same energy (to 1e-6 Wh), estimate and
    coverage asked alone, inside the range ``DAYS[a:b]`` and inside the whole range."""
    index, a, b = scenario
    meter = f"in{next(_examples)}"  # the store is shared by the examples
    t0 = _day(2026, 10, 22).astimezone(UTC)
    store.write(
        [
            Reading("s1", meter, "energy", v, t0 + i * STEP)
            for i, v in enumerate(index)
            if v is not None
        ]
    )
    site = parse_sites(SITE_S1 + IMPORT_METER.replace('"in"', f'"{meter}"')).sites[0]

    def figures(start: datetime, end: datetime) -> list[float]:
        """Energy [Wh], estimated [Wh] and coverage of each day, in a row."""
        e = energy_report(site, store, start, end, Step.DAY).meters[meter]
        return [x for day in zip(e.energy_wh, e.estimated_wh, e.coverage, strict=True) for x in day]

    whole = figures(DAYS[0], DAYS[-1])
    inside = figures(DAYS[a], DAYS[b])
    assert inside == pytest.approx(whole[3 * a : 3 * b], abs=1e-6)
    for k in range(a, b):
        alone = figures(DAYS[k], DAYS[k + 1])
        assert alone == pytest.approx(whole[3 * k : 3 * k + 3], abs=1e-6), DAYS[k]
