"""Both store adapters, against a real SQLite file and a real InfluxDB server."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers.support import wait_until
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.readings import Reading
from domain.store import ReadingStore, StoreError
from stores.sqlite import SqliteStore

T0 = datetime(2026, 10, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _index(site: str, meter: str, values: list[tuple[int, float]]) -> list[Reading]:
    """Readings at T0 + minutes."""
    return [Reading(site, meter, "energy", v, T0 + timedelta(minutes=m)) for m, v in values]


def test_slots_hold_last_value_and_count_and_boundary_reading_closes_its_slot(
    store: ReadingStore,
) -> None:
    # Readings every 15 min from 00:00 to 03:00, index = 10 Wh × step number.
    store.write(_index("s1", "pv", [(15 * i, 10.0 * i) for i in range(13)]))
    series = store.index_slots("s1", ["pv"], "energy", T0 + HOUR, T0 + 3 * HOUR, HOUR)["pv"]
    # The 01:00 reading (40 Wh) is the index at the start: it closes slot (00:00, 01:00].
    assert series.baseline == 40.0 and not series.starts_inside
    assert [(s.end, s.last_value, s.count) for s in series.slots] == [
        (T0 + 2 * HOUR, 80.0, 4),  # 01:15, 01:30, 01:45, 02:00
        (T0 + 3 * HOUR, 120.0, 4),
    ]


def test_slot_keeps_its_highest_value_after_a_drop_and_series_carry_their_times(
    store: ReadingStore,
) -> None:
    # A meter swapped at 01:15: 500 Wh then 0 and 30 Wh in the slot (01:00, 02:00].
    store.write(_index("s1", "pv", [(50, 400.0), (75, 500.0), (90, 0.0), (105, 30.0)]))
    store.write(_index("s1", "pv", [(300, 90.0)]))  # 05:00, after the window
    series = store.index_slots("s1", ["pv"], "energy", T0 + HOUR, T0 + 2 * HOUR, HOUR)["pv"]
    assert [(s.last_value, s.count, s.max_value) for s in series.slots] == [(30.0, 3, 500.0)]
    assert series.baseline == 400.0 and series.baseline_time == T0 + timedelta(minutes=50)
    assert series.next_time == T0 + 5 * HOUR
    inside = store.index_slots("s1", ["pv"], "energy", T0, T0 + HOUR, HOUR)["pv"]
    assert inside.starts_inside and inside.baseline_time == T0 + timedelta(minutes=50)
    assert inside.slots[0].max_value is None  # no drop inside: the last is the highest
    assert inside.next_time == T0 + timedelta(minutes=75)


def test_duplicate_delivery_is_stored_once(store: ReadingStore) -> None:
    readings = _index("s1", "pv", [(0, 1.0), (15, 2.0)])
    store.write(readings)
    store.write(readings)  # QoS 1 redelivery
    assert store.count("s1") == 2


def test_meters_and_sites_are_kept_apart(store: ReadingStore) -> None:
    store.write(_index("s1", "pv", [(0, 1.0), (60, 5.0)]))
    store.write(_index("s1", "grid", [(0, 100.0), (60, 170.0)]))
    store.write(_index("s2", "pv", [(0, 1000.0), (60, 9000.0)]))
    out = store.index_slots("s1", ["pv", "grid", "absent"], "energy", T0, T0 + HOUR, HOUR)
    assert out["pv"].baseline == 1.0 and out["pv"].slots[0].last_value == 5.0
    assert out["grid"].baseline == 100.0 and out["grid"].slots[0].last_value == 170.0
    assert out["absent"].baseline is None and out["absent"].slots == []
    assert store.count("s1") == 4 and store.count("s2") == 2


def test_meter_without_reading_before_start_starts_from_its_first_reading(
    store: ReadingStore,
) -> None:
    # Installed at 00:50: the energy before its first reading is unknown, the energy
    # after it is not lost (00:50 → 01:30 lies in the same slot).
    store.write(_index("s1", "pv", [(50, 7.0), (70, 9.0), (90, 12.0)]))
    series = store.index_slots("s1", ["pv"], "energy", T0, T0 + 2 * HOUR, HOUR)["pv"]
    assert series.baseline == 7.0 and series.starts_inside
    assert [(s.end, s.last_value, s.count) for s in series.slots] == [
        (T0 + HOUR, 7.0, 1),
        (T0 + 2 * HOUR, 12.0, 2),
    ]
    empty = store.index_slots("s1", ["absent"], "energy", T0, T0 + 2 * HOUR, HOUR)["absent"]
    assert empty.baseline is None and empty.slots == []


def test_sub_hour_slots(store: ReadingStore) -> None:
    store.write(_index("s1", "pv", [(10, 1.0), (20, 2.0), (40, 3.0)]))
    series = store.index_slots("s1", ["pv"], "energy", T0, T0 + HOUR, timedelta(minutes=30))["pv"]
    assert [(s.end, s.last_value, s.count) for s in series.slots] == [
        (T0 + timedelta(minutes=30), 2.0, 2),
        (T0 + HOUR, 3.0, 1),
    ]


@pytest.mark.parametrize(
    "site, meter",
    [("s1' OR '1'='1", "pv"), ("s1", 'pv" OR 1=1 --'), ("s1", "pv'); DROP DATABASE x; --")],
)
def test_hostile_identifiers_do_not_leak_other_data(
    store: ReadingStore, site: str, meter: str
) -> None:
    store.write(_index("s1", "pv", [(0, 1.0), (60, 5.0)]))
    try:
        out = store.index_slots(site, [meter], "energy", T0, T0 + HOUR, HOUR)
    except StoreError as exc:
        assert "invalid" in str(exc)  # InfluxDB adapter refuses such ids outright
    else:  # SQLite binds parameters: the id is just a value that matches nothing
        assert out[meter].baseline is None and out[meter].slots == []
    assert store.count("s1") == 2


def test_ping(store: ReadingStore) -> None:
    store.ping()


def test_unreachable_influxdb_raises_store_error() -> None:
    from stores.influx import InfluxStore

    dead = InfluxStore("http://127.0.0.1:9", "db", create_database=False, timeout_s=1)
    with pytest.raises(StoreError, match="unreachable"):
        dead.ping()
    with pytest.raises(StoreError, match="unreachable"):
        dead.write(_index("s1", "pv", [(0, 1.0)]))


def test_last_seen_per_meter(store: ReadingStore) -> None:
    store.write(_index("s1", "pv", [(0, 1.0), (90, 5.0)]))
    store.write(_index("s1", "grid", [(30, 100.0)]))
    seen = store.last_seen("s1", ["pv", "grid", "absent"], "energy")
    assert seen == {
        "pv": T0 + timedelta(minutes=90),
        "grid": T0 + timedelta(minutes=30),
        "absent": None,
    }


# --- SQLite's hourly rollup -----------------------------------------------------------

_BATCHES = st.lists(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.integers(min_value=-90, max_value=3 * 24 * 60 + 90),  # minutes from T0
            st.floats(min_value=0, max_value=1e6, allow_nan=False),
        ),
        min_size=1,
        max_size=40,
    ),
    min_size=1,
    max_size=6,
)


def _expected_slots(
    readings: dict[tuple[str, int], float], meter: str, start: datetime, end: datetime, width: int
) -> list[tuple[datetime, float, int]]:
    """(end, last value, count, highest value if above the last) per slot (b·w, (b+1)·w]
    in (start, end], from raw readings."""
    t0, t1 = round(start.timestamp()), round(end.timestamp())
    slots: dict[int, tuple[int, float, int, float]] = {}
    for (m, t), value in readings.items():
        if m == meter and t0 < t <= t1:
            b = (t - 1) // width
            last_t, last_v, n, high = slots.get(b, (t, value, 0, value))
            high = max(high, value)
            slots[b] = (t, value, n + 1, high) if t >= last_t else (last_t, last_v, n + 1, high)
    return [
        (datetime.fromtimestamp((b + 1) * width, UTC), v, n, high if high > v else None)
        for b, (_, v, n, high) in sorted(slots.items())
    ]


@settings(max_examples=40, deadline=None)
@given(batches=_BATCHES)
def test_sqlite_hourly_rollup_answers_like_the_raw_readings(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[tuple[str, int, float]]]
) -> None:
    """Batches in any order, overwriting earlier readings and landing in old hours: the
    slots read through the rollup equal the slots computed from the raw readings."""
    from stores.sqlite import SqliteStore

    store = SqliteStore(tmp_path_factory.mktemp("rollup") / "r.db")
    final: dict[tuple[str, int], float] = {}
    for batch in batches:
        store.write(
            [
                Reading("s1", m, "energy", v, T0 + timedelta(minutes=minute))
                for m, minute, v in batch
            ]
        )
        for m, minute, v in batch:
            final[(m, round((T0 + timedelta(minutes=minute)).timestamp()))] = v
    start, end = T0, T0 + 3 * 24 * HOUR
    for width in (HOUR, 2 * HOUR, 24 * HOUR, timedelta(minutes=30)):
        got = store.index_slots("s1", ["a", "b"], "energy", start, end, width)
        for meter in ("a", "b"):
            slots = [(s.end, s.last_value, s.count, s.max_value) for s in got[meter].slots]
            want = _expected_slots(final, meter, start, end, round(width.total_seconds()))
            assert slots == want, (meter, width)
    store.close()


def test_sqlite_rollup_is_built_for_a_file_written_before_it_existed(tmp_path: Path) -> None:
    import sqlite3

    from stores.sqlite import SqliteStore

    path = tmp_path / "old.db"
    store = SqliteStore(path)
    store.write(_index("s1", "pv", [(15 * i, 10.0 * i) for i in range(13)]))
    store.close()
    with sqlite3.connect(path) as db:  # as a file of an earlier version: no rollup
        db.execute("DELETE FROM hourly")
        db.execute("DELETE FROM store_meta")
    reopened = SqliteStore(path)
    series = reopened.index_slots("s1", ["pv"], "energy", T0, T0 + 3 * HOUR, HOUR)["pv"]
    assert [(s.last_value, s.count) for s in series.slots] == [(40.0, 4), (80.0, 4), (120.0, 4)]
    reopened.close()


def test_a_year_across_every_shard_is_answered_whole(store: ReadingStore) -> None:
    """A year of hourly indexes for three meters spans 53 of InfluxDB's 7-day shards; the
    slots hold every reading (the completeness check finds nothing to refuse) and sums
    per day count every value."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    hours = 365 * 24
    meters = ["pv", "in", "out"]
    store.write(
        [
            Reading("s1", m, "energy", float(h), start + h * HOUR)
            for m in meters
            for h in range(hours + 1)
        ]
    )
    end = start + hours * HOUR
    series = store.index_slots("s1", meters, "energy", start, end, HOUR)
    for m in meters:
        assert series[m].baseline == 0.0 and len(series[m].slots) == hours
        assert sum(s.count for s in series[m].slots) == hours
        assert series[m].slots[-1].last_value == float(hours)
    sums = store.slot_sums("s1", ["pv"], "energy", start, end, timedelta(days=1))["pv"]
    assert len(sums) == 365 and sum(s.count for s in sums) == hours


def test_sqlite_rollup_of_version_1_is_rebuilt_with_the_highest_values(tmp_path: Path) -> None:
    import sqlite3

    from stores.sqlite import SqliteStore

    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as db:  # a file of version 1: no max_value column
        db.executescript(
            "CREATE TABLE readings (site TEXT NOT NULL, quantity TEXT NOT NULL,"
            " meter TEXT NOT NULL, ts_ms INTEGER NOT NULL, value REAL NOT NULL,"
            " PRIMARY KEY (site, quantity, meter, ts_ms)) WITHOUT ROWID;"
            "CREATE TABLE hourly (site TEXT NOT NULL, quantity TEXT NOT NULL,"
            " meter TEXT NOT NULL, hour INTEGER NOT NULL, last_value REAL NOT NULL,"
            " count INTEGER NOT NULL, PRIMARY KEY (site, quantity, meter, hour)) WITHOUT ROWID;"
            "CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO store_meta VALUES ('rollup', '1');"
        )
        t = round(T0.timestamp() * 1000)
        db.executemany(
            "INSERT INTO readings VALUES ('s1', 'energy', 'pv', ?, ?)",
            [(t + 15 * 60_000, 500.0), (t + 30 * 60_000, 10.0)],
        )
        db.execute(
            "INSERT INTO hourly VALUES ('s1', 'energy', 'pv', ?, 10.0, 2)", (t // 3_600_000,)
        )
    store = SqliteStore(path)
    series = store.index_slots("s1", ["pv"], "energy", T0, T0 + HOUR, HOUR)["pv"]
    assert [(s.last_value, s.count, s.max_value) for s in series.slots] == [(10.0, 2, 500.0)]
    store.write(_index("s1", "pv", [(45, 20.0)]))  # the rebuilt table takes writes
    series = store.index_slots("s1", ["pv"], "energy", T0, T0 + HOUR, HOUR)["pv"]
    assert [(s.last_value, s.count, s.max_value) for s in series.slots] == [(20.0, 3, 500.0)]
    store.close()


def test_sqlite_reads_do_not_queue_behind_the_write_lock(tmp_path: Path) -> None:
    """The service answers many readers from one store: a read must not wait for the
    lock writes take (every query used to take it, so 50 readers went one by one and
    /health behind them)."""
    store = SqliteStore(tmp_path / "readings.db")
    store.write(_index("s", "m", [(0, 1.0), (60, 2.0), (120, 3.0)]))
    answers: list[object] = []

    def read() -> None:
        answers.append(store.last_seen("s", ["m"], "energy"))
        store.ping()
        answers.append(store.index_slots("s", ["m"], "energy", T0, T0 + 2 * HOUR, HOUR))

    with store._lock:  # as a long write holds it
        threading.Thread(target=read, daemon=True).start()
        assert wait_until(lambda: len(answers) == 2, timeout_s=10)
    assert answers[0] == {"m": T0 + 2 * HOUR}
    store.close()


def test_sqlite_commits_are_durable_before_the_write_returns(tmp_path: Path) -> None:
    """The gateway acknowledges a reading (MQTT PUBACK) once ``write`` returns: with
    ``synchronous=NORMAL`` a power cut could still lose that commit; FULL syncs it."""
    store = SqliteStore(tmp_path / "readings.db")
    try:
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        store.close()
