"""InfluxDB store over the v1-compatible HTTP API: line protocol on ``/write``,
InfluxQL on ``/query``.

InfluxDB 1.x serves this API natively, 2.x through its v1 compatibility endpoints
(token auth, a DBRP mapping from database to bucket) and 3.x Core likewise, so one
adapter covers the three. Flux is not used: InfluxDB 3 dropped it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from microville.domain.readings import Reading
from microville.domain.store import IndexSeries, IndexSlot, StoreError, StoreRejected, SumSlot

#: Identifiers that may reach a query. Values are also escaped, so this is a
#: second fence, not the only one.
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def quote_literal(value: str) -> str:
    """An InfluxQL string literal: ``'…'`` with backslashes and quotes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(name: str) -> str:
    """An InfluxQL identifier: ``"…"`` with backslashes and double quotes escaped."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _safe(value: str, what: str, error: type[StoreError] = StoreError) -> str:
    # fullmatch: with match, "$" would let a trailing newline through.
    if not _SAFE.fullmatch(value):
        raise error(f"invalid {what} {value!r}: letters, digits, '_', '-', '.', ':' only")
    return value


def _escape_tag(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def to_line(r: Reading) -> str:
    """One reading as a line of InfluxDB line protocol, millisecond precision."""
    return (
        f"{_escape_tag(r.quantity)},meter={_escape_tag(r.meter)},site={_escape_tag(r.site)} "
        f"value={r.value!r} {r.time_ms}"
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(t: datetime) -> int:
    return round(t.timestamp() * 1000)


def _first_points(result: dict[str, Any]) -> dict[str, tuple[datetime, float]]:
    """{meter: (time, value)} from a ``SELECT <selector>(value) … GROUP BY "meter"``
    result (``epoch=ns``: the selected point's time)."""
    return {
        s["tags"]["meter"]: (
            _EPOCH + timedelta(microseconds=s["values"][0][0] // 1000),
            float(s["values"][0][1]),
        )
        for s in result.get("series", [])
    }


class InfluxStore:
    """:class:`~microville.domain.store.ReadingStore` on an InfluxDB server.

    Series: measurement = quantity (``energy``, ``volume``), tags ``site`` and
    ``meter``, field ``value`` (raw index in the base unit).
    """

    def __init__(
        self,
        base_url: str,
        database: str,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout_s: float = 30.0,
        create_database: bool = True,
    ) -> None:
        self.database = _safe(database, "database name")
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = httpx.BasicAuth(username, password or "") if username else None
        self._http = httpx.Client(base_url=base_url, headers=headers, auth=auth, timeout=timeout_s)
        if create_database:
            # Idempotent on 1.x; 2.x/3.x refuse it, and there the bucket exists already.
            with contextlib.suppress(StoreError):
                self._query(f"CREATE DATABASE {quote_identifier(self.database)}", method="POST")

    def _query(self, q: str, method: str = "GET") -> list[dict[str, Any]]:
        params = {"db": self.database, "q": q, "epoch": "ns"}
        try:
            if method == "POST":
                resp = self._http.post("/query", params=params)
            else:
                resp = self._http.get("/query", params=params)
        except httpx.HTTPError as exc:
            raise StoreError(f"InfluxDB unreachable: {exc}") from exc
        if resp.status_code != 200:
            raise StoreError(f"InfluxDB query failed ({resp.status_code}): {resp.text[:300]}")
        results: list[dict[str, Any]] = resp.json().get("results", [])
        for result in results:
            if "error" in result:
                raise StoreError(f"InfluxDB query error: {result['error']}")
        return results

    def write(self, readings: Sequence[Reading]) -> None:
        if not readings:
            return
        for r in readings:
            # A newline in an id would start a line of its own in the body: another point.
            _safe(r.site, "site id", StoreRejected)
            _safe(r.meter, "meter id", StoreRejected)
            _safe(r.quantity, "quantity", StoreRejected)
        body = "\n".join(to_line(r) for r in readings).encode()
        try:
            resp = self._http.post(
                "/write", params={"db": self.database, "precision": "ms"}, content=body
            )
        except httpx.HTTPError as exc:
            raise StoreError(f"InfluxDB unreachable: {exc}") from exc
        if resp.status_code in (400, 413):
            # Bad points (or a body too large): the same body will always be refused.
            raise StoreRejected(
                f"InfluxDB refused the write ({resp.status_code}): {resp.text[:300]}"
            )
        if resp.status_code != 204:
            raise StoreError(f"InfluxDB write failed ({resp.status_code}): {resp.text[:300]}")

    def _where(self, site: str, meters: Sequence[str]) -> str:
        meter_clause = " OR ".join(
            f'"meter" = {quote_literal(_safe(m, "meter id"))}' for m in meters
        )
        return f'"site" = {quote_literal(_safe(site, "site id"))} AND ({meter_clause})'

    def index_slots(
        self,
        site: str,
        meters: Sequence[str],
        quantity: str,
        start: datetime,
        end: datetime,
        slot: timedelta,
    ) -> dict[str, IndexSeries]:
        if not meters:
            return {}
        width_s = round(slot.total_seconds())
        if width_s < 1 or width_s * 1000 != round(slot.total_seconds() * 1000):
            raise StoreError(f"slot {slot} must be a whole number of seconds")
        measurement = quote_identifier(_safe(quantity, "quantity"))
        where = self._where(site, meters)
        start_ms, end_ms = _ms(start), _ms(end)
        # Baseline: the last value at or before start, else the first one after it; the
        # first reading after end (its time). Slots: GROUP BY time with a 1 ns offset
        # makes bucket k cover (k*w, (k+1)*w], so a reading taken exactly at a period
        # boundary closes that period.
        window = f"{where} AND time > {start_ms}ms AND time <= {end_ms}ms"
        q = (
            f'SELECT last("value") FROM {measurement} WHERE {where} AND time <= {start_ms}ms'
            f' GROUP BY "meter";'
            f'SELECT first("value") FROM {measurement} WHERE {window} GROUP BY "meter";'
            f'SELECT first("value") FROM {measurement} WHERE {where} AND time > {end_ms}ms'
            f' GROUP BY "meter";'
            f'SELECT last("value"), count("value"), max("value") FROM {measurement}'
            f' WHERE {window} GROUP BY time({width_s}s, 1ns), "meter" fill(none)'
        )
        before, first, after, slots_result = self._query(q)
        before_points = _first_points(before)
        baselines = _first_points(first) | before_points
        next_times = {m: t for m, (t, _) in _first_points(after).items()}
        width_ns = width_s * 1_000_000_000

        def series_of(meter: str, slots: list[IndexSlot]) -> IndexSeries:
            time, value = baselines.get(meter, (None, None))
            return IndexSeries(
                baseline=value,
                starts_inside=meter in baselines and meter not in before_points,
                baseline_time=time,
                next_time=next_times.get(meter),
                slots=slots,
            )

        out = {m: series_of(m, []) for m in meters}
        for series in slots_result.get("series", []):
            meter = series["tags"]["meter"]
            out[meter] = series_of(
                meter,
                [
                    IndexSlot(
                        end=datetime.fromtimestamp((t - 1 + width_ns) // 1_000_000_000, UTC),
                        last_value=float(last),
                        count=int(count),
                        max_value=float(high) if high > last else None,
                    )
                    for t, last, count, high in series["values"]
                ],
            )
        return out

    def slot_sums(
        self,
        site: str,
        meters: Sequence[str],
        quantity: str,
        start: datetime,
        end: datetime,
        slot: timedelta,
    ) -> dict[str, list[SumSlot]]:
        out: dict[str, list[SumSlot]] = {m: [] for m in meters}
        if not meters:
            return out
        width_s = round(slot.total_seconds())
        if width_s < 1 or width_s * 1000 != round(slot.total_seconds() * 1000):
            raise StoreError(f"slot {slot} must be a whole number of seconds")
        measurement = quote_identifier(_safe(quantity, "quantity"))
        # GROUP BY time without offset: bucket k covers [k*w, (k+1)*w), like the window.
        (result,) = self._query(
            f'SELECT sum("value"), count("value") FROM {measurement}'
            f" WHERE {self._where(site, meters)}"
            f" AND time >= {_ms(start)}ms AND time < {_ms(end)}ms"
            f' GROUP BY time({width_s}s), "meter" fill(none)'
        )
        for series in result.get("series", []):
            out[series["tags"]["meter"]] = [
                SumSlot(datetime.fromtimestamp(t // 1_000_000_000, UTC), float(total), int(n))
                for t, total, n in series["values"]
            ]
        return out

    def hourly_means(
        self, site: str, meter: str, quantity: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, float]]:
        measurement = quote_identifier(_safe(quantity, "quantity"))
        where = self._where(site, [meter])
        (result,) = self._query(
            f'SELECT mean("value") FROM {measurement} WHERE {where}'
            f" AND time >= {_ms(start)}ms AND time < {_ms(end)}ms GROUP BY time(1h) fill(none)"
        )
        return [
            (datetime.fromtimestamp(t // 1_000_000_000, UTC), float(mean))
            for series in result.get("series", [])
            for t, mean in series["values"]
        ]

    def last_seen(
        self, site: str, meters: Sequence[str], quantity: str
    ) -> dict[str, datetime | None]:
        out: dict[str, datetime | None] = dict.fromkeys(meters)
        if not meters:
            return out
        measurement = quote_identifier(_safe(quantity, "quantity"))
        (result,) = self._query(
            f'SELECT last("value") FROM {measurement} WHERE {self._where(site, meters)}'
            ' GROUP BY "meter"'
        )
        for series in result.get("series", []):
            t = series["values"][0][0]
            out[series["tags"]["meter"]] = datetime.fromtimestamp(t / 1e9, UTC)
        return out

    def count(self, site: str) -> int:
        where = f'"site" = {quote_literal(_safe(site, "site id"))}'
        (result,) = self._query(f'SELECT count("value") FROM /.*/ WHERE {where}')
        return sum(int(s["values"][0][1]) for s in result.get("series", []))

    def ping(self) -> None:
        try:
            resp = self._http.get("/ping")
        except httpx.HTTPError as exc:
            raise StoreError(f"InfluxDB unreachable: {exc}") from exc
        if resp.status_code != 204:
            raise StoreError(f"InfluxDB ping answered {resp.status_code}")
        # /ping answers without credentials: a query proves they and the database work.
        self._query("SHOW RETENTION POLICIES")

    def close(self) -> None:
        self._http.close()
