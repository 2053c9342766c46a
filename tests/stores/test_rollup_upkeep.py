"""Rollups kept true (issue #17): ``verify`` names a slot that differs from the raw
readings, ``rebuild`` repairs it, a database from before the rollups is read right and
rolled up, and InfluxDB never answers from a stale rollup (dirty days read raw; a
writer killed before its rollup takes its days back)."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from helpers.raw_store import RawStore

from domain.readings import Reading
from domain.store import ReadingStore
from stores.influx import InfluxStore, to_line
from stores.sqlite import SqliteStore

T0 = datetime(2026, 10, 5, tzinfo=UTC)
H = timedelta(hours=1)
CUTS = [T0 + k * 24 * H for k in range(4)]  # three UTC days


def _days(site: str = "s1", meter: str = "in") -> list[Reading]:
    """Three days of quarter-hourly indexes rising 100 Wh a quarter."""
    return [
        Reading(site, meter, "energy", 1000.0 + 100 * i, T0 + i * timedelta(minutes=15))
        for i in range(1, 3 * 96 + 1)
    ]


def _slots(store: ReadingStore, site: str = "s1") -> list[tuple[int, float, int]]:
    series = store.index_slots(site, ["in"], "energy", CUTS[0], CUTS[-1], H, CUTS)["in"]
    return [(s.hours, s.last_value, s.count) for s in series.slots]


def _raw_slots(readings: list[Reading]) -> list[tuple[float, int]]:
    raw = RawStore()
    raw.write(readings)
    series = raw.index_slots("s1", ["in"], "energy", CUTS[0], CUTS[-1], H)["in"]
    return [(s.last_value, s.count) for s in series.slots]


def _expected_runs() -> list[tuple[int, float, int]]:
    """Each UTC day of :func:`_days`: its first hour, then a run of the other 23."""
    return [
        (1, 1400.0, 4),
        (23, 10600.0, 92),
        (1, 11000.0, 4),
        (23, 20200.0, 92),
        (1, 20600.0, 4),
        (23, 29800.0, 92),
    ]


def _flush(store: ReadingStore) -> None:
    getattr(store, "flush_rollups", lambda: None)()


def test_verify_is_clean_after_writes_names_a_tampered_slot_and_rebuild_repairs_it(
    store: ReadingStore, store_url: str
) -> None:
    readings = _days()
    store.write(readings)
    _flush(store)
    assert store.verify_rollups() == []  # type: ignore[attr-defined]
    assert _slots(store) == _expected_runs()
    _tamper(store, store_url, hour=T0 + 30 * H)  # 6 October, 06:00–07:00 UTC
    problems = store.verify_rollups()  # type: ignore[attr-defined]
    assert len(problems) >= 1 and "2026-10-06" in problems[0], problems
    assert "energy/in" in problems[0] and "site s1" in problems[0]
    assert store.rebuild_rollups(site="s1") >= 1  # type: ignore[attr-defined]
    assert store.verify_rollups() == []  # type: ignore[attr-defined]
    got = store.index_slots("s1", ["in"], "energy", CUTS[0], CUTS[-1], H)["in"].slots
    assert [(s.last_value, s.count) for s in got] == _raw_slots(readings)


def _tamper(store: ReadingStore, store_url: str, hour: datetime) -> None:
    """Change one hour's rollup behind the store's back."""
    if isinstance(store, SqliteStore):
        with sqlite3.connect(store.path) as db:
            db.execute(
                "UPDATE hourly SET last_value = last_value + 1 WHERE hour = ?",
                (int(hour.timestamp()) // 3600,),
            )
        return
    assert isinstance(store, InfluxStore)
    line = (
        f"rollup_hour,meter=in,quantity=energy,site=s1 last=1.0,count=4i,high=1.0"
        f" {int(hour.timestamp())}"
    )
    base = store_url.replace("influxdb://", "http://").rsplit("/", 1)[0]
    httpx.post(f"{base}/write", params={"db": store.database, "precision": "s"}, content=line)


def test_a_sqlite_file_from_before_the_day_rollup_is_rolled_up_when_opened(
    tmp_path: Path,
) -> None:
    path = tmp_path / "readings.db"
    store = SqliteStore(path)
    store.write(_days())
    store.close()
    with sqlite3.connect(path) as db:  # what version 2 left: no daily table
        db.execute("DROP TABLE daily")
        db.execute("UPDATE store_meta SET value = '2' WHERE key = 'rollup'")
    reopened = SqliteStore(path)
    assert reopened.verify_rollups() == []
    assert [h for h, _, _ in _slots(reopened)] == [1, 23, 1, 23, 1, 23]
    reopened.close()


@pytest.fixture
def influx(influxdb_url: str) -> tuple[str, str]:
    return influxdb_url, f"t{uuid.uuid4().hex[:12]}"


def test_influx_raw_points_never_rolled_up_are_read_raw_until_rebuilt(
    influx: tuple[str, str],
) -> None:
    url, db = influx
    store = InfluxStore(url, db)
    readings = _days()
    # Points written before this version (no markers, no rollup points).
    body = "\n".join(to_line(r) for r in readings)
    assert httpx.post(f"{url}/write", params={"db": db, "precision": "ms"}, content=body).is_success
    # Read from the raw points (their clean hours joined into runs all the same).
    assert _slots(store) == _expected_runs()
    got = store.index_slots("s1", ["in"], "energy", CUTS[0], CUTS[-1], H)["in"].slots
    assert [(s.last_value, s.count) for s in got] == _raw_slots(readings)
    assert len(store.verify_rollups()) == 3  # each day named
    assert store.rebuild_rollups() == 3
    assert store.verify_rollups() == []
    assert [h for h, _, _ in _slots(store)] == [1, 23, 1, 23, 1, 23]
    store.close()


def test_influx_a_day_written_again_is_read_raw_until_rolled_up_again(
    influx: tuple[str, str],
) -> None:
    url, db = influx
    store = InfluxStore(url, db, writer="gw-a")
    store.write(_days())
    store.flush_rollups()
    assert [h for h, _, _ in _slots(store)] == [1, 23, 1, 23, 1, 23]
    # A correction of 6 October 12:00 (an overwrite): that day is dirty at once, so the
    # answer is the corrected one, read raw, before any rollup.
    fix = Reading("s1", "in", "energy", 15_000.0, T0 + 36 * H)
    store.write([fix])
    assert [h for h, _, _ in _slots(store)][:2] == [1, 23]
    assert (1, 15_000.0, 4) in _slots(store)
    dirty = store.verify_rollups()
    assert len(dirty) == 1 and "2026-10-06" in dirty[0] and "dirty" in dirty[0]
    store.flush_rollups()
    assert store.verify_rollups() == []
    store.close()


def test_influx_a_writer_killed_before_its_rollup_takes_its_days_back(
    influx: tuple[str, str],
) -> None:
    url, db = influx
    killed = InfluxStore(url, db, writer="gw-b")
    killed.write(_days())  # marked dirty, written raw, never rolled up (no close)
    other = InfluxStore(url, db, writer="gw-c")
    # Another writer's dirty days stay raw whatever it does.
    other.write([Reading("s1", "in", "energy", 1.0, T0 - 30 * 24 * H)])
    other.flush_rollups()
    assert _slots(other) == _expected_runs()  # from the raw points
    assert sum("dirty" in p for p in other.verify_rollups()) == 3
    restarted = InfluxStore(url, db, writer="gw-b")
    restarted.flush_rollups()  # takes back the three days left dirty
    assert restarted.verify_rollups() == []
    assert [h for h, _, _ in _slots(restarted)] == [1, 23, 1, 23, 1, 23]
    for s in (killed, other, restarted):
        s.close()


def test_influx_rolls_up_during_writes_every_interval(influx: tuple[str, str]) -> None:
    url, db = influx
    store = InfluxStore(url, db, rollup_interval_s=0)  # every write rolls up
    readings = _days()
    for i in range(0, len(readings), 50):
        store.write(readings[i : i + 50])
    assert store.verify_rollups() == []
    assert [h for h, _, _ in _slots(store)] == [1, 23, 1, 23, 1, 23]
    store.close()
