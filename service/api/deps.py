"""Request dependencies shared by the routers: the site, the stores, the period."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Path, Query, Request

from domain.clock import Clock
from domain.periods import Step, localize
from domain.site import Site, SitesConfig
from domain.store import Ledger, ReadingStore


def _sites(request: Request) -> SitesConfig:
    sites: SitesConfig = request.app.state.sites
    return sites


def _store(request: Request) -> ReadingStore:
    store: ReadingStore = request.app.state.store
    return store


def _ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


def _max_rows(request: Request) -> int:
    max_rows: int = request.app.state.max_rows
    return max_rows


SitesDep = Annotated[SitesConfig, Depends(_sites)]
#: Records one request may add (settings.api_max_rows).
MaxRowsDep = Annotated[int, Depends(_max_rows)]
StoreDep = Annotated[ReadingStore, Depends(_store)]
LedgerDep = Annotated[Ledger, Depends(_ledger)]


def _site(site: str, sites: SitesDep) -> Site:
    found = sites.site(site)
    if found is None:
        raise HTTPException(
            404, f"unknown site {site!r}; known: {', '.join(s.id for s in sites.sites)}"
        )
    return found


SiteDep = Annotated[Site, Depends(_site)]

#: The id of a ledger record: SQLite keeps 64-bit signed integers, and a larger number in
#: a query is an OverflowError (a 500), not "no such record".
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the record's id")]


#: The instants the API serves: slots are aligned on the Unix epoch, and InfluxDB keeps
#: nanoseconds in 64 bits (up to 2262); a date outside is a 422 naming its parameter.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def now(request: Request, tz: ZoneInfo) -> datetime:
    """The current time in ``tz`` by the app's clock (the default end of a period)."""
    clock: Clock = request.app.state.clock
    return clock().astimezone(tz)


def _out_of_range(name: str, value: str) -> HTTPException:
    return HTTPException(
        422,
        f"{name}: {value!r} is out of range: dates from {EARLIEST:%Y-%m-%d} to"
        f" {LATEST:%Y-%m-%d} (UTC) are served",
    )


def _in_range(make: Callable[[], datetime], name: str, value: str) -> datetime:
    """``make()``, or a 422 naming ``name`` when the date does not exist in Python's
    calendar (year 0 or past 9999) or lies outside ``[EARLIEST, LATEST]``."""
    try:
        t = make()
    except (ValueError, OverflowError):
        raise _out_of_range(name, value) from None
    if not EARLIEST <= t <= LATEST:
        raise _out_of_range(name, value)
    return t


def parse_time(value: str | None, name: str, default: datetime, site: Site) -> datetime:
    if value is None:
        return default
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(
            422, f"{name}: {value!r} is not an ISO 8601 date or date-time (e.g. 2026-10-01)"
        ) from None
    return _in_range(lambda: localize(parsed, site.tz), name, value)


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime


def _period(
    request: Request,
    site: SiteDep,
    start: Annotated[
        str | None,
        Query(
            description="ISO date or date-time, local time unless an offset is given."
            " Default: first of this month"
        ),
    ] = None,
    end: Annotated[
        str | None, Query(description="ISO date or date-time, exclusive. Default: now")
    ] = None,
    period: Annotated[
        str | None,
        Query(
            description="A local calendar year (2026), month (2026-10) or day (2026-10-25),"
            " instead of start/end"
        ),
    ] = None,
) -> Period:
    tz = site.tz
    if period is not None:
        if start is not None or end is not None:
            raise HTTPException(422, "period: give either period or start/end, not both")
        if m := re.fullmatch(r"(\d{4})", period):
            year = int(m[1])
            return Period(
                _in_range(lambda: localize(datetime(year, 1, 1), tz), "period", period),
                _in_range(lambda: localize(datetime(year + 1, 1, 1), tz), "period", period),
            )
        if (m := re.fullmatch(r"(\d{4})-(\d{2})", period)) and 1 <= int(m[2]) <= 12:
            year, month = int(m[1]), int(m[2])
            nxt = (year + month // 12, month % 12 + 1)
            return Period(
                _in_range(lambda: localize(datetime(year, month, 1), tz), "period", period),
                _in_range(lambda: localize(datetime(*nxt, 1), tz), "period", period),
            )
        if m := re.fullmatch(r"\d{4}-\d{2}-\d{2}", period):
            try:
                day = datetime.strptime(period, "%Y-%m-%d")
            except ValueError:
                if re.fullmatch(r"0000-\d{2}-\d{2}", period):
                    raise _out_of_range("period", period) from None
                raise HTTPException(422, f"period: {period!r} is not a calendar day") from None
            return Period(
                _in_range(lambda: localize(day, tz), "period", period),
                _in_range(lambda: localize(day + timedelta(days=1), tz), "period", period),
            )
        raise HTTPException(
            422, f"period: {period!r} is not a year (2026), a month (2026-10) or a day (2026-10-25)"
        )
    current = now(request, tz)
    month_start = localize(datetime(current.year, current.month, 1), tz)
    t0 = parse_time(start, "start", month_start, site)
    t1 = parse_time(end, "end", current.replace(microsecond=0) + timedelta(seconds=1), site)
    return Period(t0, t1)


PeriodDep = Annotated[Period, Depends(_period)]
StepQuery = Annotated[Step, Query(description="Period length, cut at local boundaries")]
