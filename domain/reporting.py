"""Monthly impact reports: their configuration and their schedule (pure).

A month's report is due on the 1st of the following month at a local time of day; the
instant is computed in the site's timezone, so it stays at that wall-clock time across
DST changes (a time that does not exist that day moves forward by the gap).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time
from enum import StrEnum
from typing import Annotated, Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from domain.periods import localize


class Language(StrEnum):
    FR = "fr"
    EN = "en"


class ReportSettings(BaseModel):
    """``[sites.reports]``: when a site's monthly report is made and who receives it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Generate the previous month's report on the 1st at this local time.
    at: time = time(6, 0)
    #: Name of an e-mail channel of ``alert_channels`` whose SMTP server sends the report.
    email_channel: str | None = None
    #: Who receives it; empty: the e-mail channel's own recipients.
    recipients: list[Annotated[str, Field(min_length=3)]] = Field(default_factory=list)


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month, e.g. ``Month.parse("2026-10")``."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not (1 <= self.month <= 12 and 1970 <= self.year <= 9998):
            raise ValueError(f"no such month: {self.year:04d}-{self.month:02d}")

    @classmethod
    def parse(cls, text: str) -> Self:
        m = _MONTH.match(text.strip())
        if m is None:
            raise ValueError(f"month {text!r}: expected YYYY-MM, e.g. 2026-10")
        return cls(int(m[1]), int(m[2]))

    @classmethod
    def of(cls, t: datetime, tz: ZoneInfo) -> Self:
        """The month holding the instant ``t`` in the timezone ``tz``."""
        local = t.astimezone(tz)
        return cls(local.year, local.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def shift(self, months: int) -> Month:
        k = self.year * 12 + self.month - 1 + months
        return Month(k // 12, k % 12 + 1)

    def start(self, tz: ZoneInfo) -> datetime:
        """Local midnight on the 1st, as an aware datetime in ``tz``."""
        return localize(datetime(self.year, self.month, 1), tz)

    def end(self, tz: ZoneInfo) -> datetime:
        return self.shift(1).start(tz)


def run_at(month: Month, at: time, tz: ZoneInfo) -> datetime:
    """When ``month``'s report is due: the 1st of the next month at local ``at`` [UTC]."""
    nxt = month.shift(1)
    wall = datetime(nxt.year, nxt.month, 1, at.hour, at.minute, at.second)
    return localize(wall, tz).astimezone(UTC)


def due_months(
    first: Month, now: datetime, at: time, tz: ZoneInfo, done: set[Month]
) -> list[Month]:
    """Months from ``first`` on whose report is due at ``now`` and not yet ``done``,
    oldest first: the months missed while the service was down are caught up."""
    out: list[Month] = []
    month = first
    while run_at(month, at, tz) <= now:
        if month not in done:
            out.append(month)
        month = month.shift(1)
    return out


def months_between(first: Month, last: Month) -> list[Month]:
    """``first`` to ``last`` included."""
    if last < first:
        raise ValueError(f"{last} is before {first}")
    out = [first]
    while out[-1] < last:
        out.append(out[-1].shift(1))
    return out
