"""What-if rows behind the proposed query optimisation: how long the year balance by month
would take if the store answered from an hourly rollup. Two measured parts:

- the service's own floor: the use case with ``index_slots`` answered from memory (the
  same hourly slots the store returned), i.e. the time no store can remove;
- reading the year's hourly slots from a rollup made here once (InfluxDB ``SELECT … INTO``
  a measurement) instead of aggregating the raw points. (The SQLite store keeps such a
  rollup itself since 9eafc50: its year row measures it directly.)

Nothing here changes the stores: these rows are evidence for a proposal, labelled so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from bench.dataset import SITE, Dataset, period, sites
from bench.query import latency
from bench.services import influx_query
from domain.periods import Step
from domain.readings import Reading
from domain.store import IndexSeries, ReadingStore, SumSlot
from service.usecases.balance import electricity_balance

SECTION = "what-if"


class MemoStore:
    """A store whose ``index_slots`` answers from what the real store answered once."""

    def __init__(self, real: ReadingStore) -> None:
        self._real = real
        self._memo: dict[tuple[Any, ...], dict[str, IndexSeries]] = {}

    def index_slots(
        self,
        site: str,
        meters: Sequence[str],
        quantity: str,
        start: datetime,
        end: datetime,
        slot: timedelta,
        cuts: Sequence[datetime] = (),
    ) -> dict[str, IndexSeries]:
        key = (site, tuple(meters), quantity, start, end, slot, tuple(cuts))
        if key not in self._memo:
            self._memo[key] = self._real.index_slots(site, meters, quantity, start, end, slot, cuts)
        return self._memo[key]

    def write(self, readings: Sequence[Reading]) -> None:
        raise NotImplementedError

    def slot_sums(
        self,
        site: str,
        meters: Sequence[str],
        quantity: str,
        start: datetime,
        end: datetime,
        slot: timedelta,
    ) -> dict[str, list[SumSlot]]:
        return self._real.slot_sums(site, meters, quantity, start, end, slot)

    def hourly_means(
        self, site: str, meter: str, quantity: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, float]]:
        return self._real.hourly_means(site, meter, quantity, start, end)

    def last_seen(
        self, site: str, meters: Sequence[str], quantity: str
    ) -> dict[str, datetime | None]:
        return self._real.last_seen(site, meters, quantity)

    def count(self, site: str) -> int:
        return self._real.count(site)

    def ping(self) -> None:
        self._real.ping()

    def close(self) -> None:
        pass


def service_floor(ds: Dataset, store: ReadingStore, repeats: int) -> dict[str, Any]:
    """p50/p95 of the year by month with the store's answer already in memory."""
    site = sites(ds).sites[0]
    memo = MemoStore(store)
    a, b = period(ds)
    return latency(lambda: electricity_balance(site, memo, a, b, Step.MONTH), repeats)


def influx_rollup_read(url: str, db: str, ds: Dataset, repeats: int) -> dict[str, Any]:
    """Make ``energy_1h`` (last index and count per meter and hour, slots (h-1, h]) once,
    then time reading the year's slots of every meter from it, JSON decoded."""
    a, b = period(ds)
    a_s, b_s = int(a.timestamp()), int(b.timestamp())
    shown: Any = influx_query(url, "SHOW MEASUREMENTS", db)[0].get("series") or []
    names = [v[0] for s in shown for v in s["values"]]
    if "energy_1h" not in names:
        influx_query(
            url,
            'SELECT last("value") AS "last", count("value") AS "n" INTO "energy_1h"'
            f' FROM "energy" WHERE time > {a_s - 3600}s AND time <= {b_s}s'
            ' GROUP BY time(1h, 1ns), "meter", "site"',
            db,
            method="POST",
        )
    # The rollup's own points are the slots: read them as they are, no GROUP BY.
    q = (
        f'SELECT "last", "n" FROM "energy_1h" WHERE "site" = \'{SITE}\''
        f' AND time > {a_s}s AND time <= {b_s}s GROUP BY "meter"'
    )
    with httpx.Client(base_url=url, timeout=120) as http:

        def read() -> int:
            resp = http.get("/query", params={"db": db, "q": q, "epoch": "ns"})
            resp.raise_for_status()
            series = resp.json()["results"][0].get("series", [])
            return sum(len(s["values"]) for s in series)

        slots = read()
        stats = latency(read, repeats)
    stats["slots"] = slots
    return stats
