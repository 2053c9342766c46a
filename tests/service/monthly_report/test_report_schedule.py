"""When monthly reports are due (pure), and the scheduler that makes and mails them:
exactly one per month across DST changes and after downtime."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from helpers.receivers import Inbox
from helpers.support import SAMPLE_CONFIG as SAMPLE
from helpers.support import load_sample

from domain.periods import localize
from domain.reporting import Month, due_months, months_between, run_at
from domain.site import ConfigError, SitesConfig, parse_sites
from domain.store import ReadingStore
from service.monthly_report.make import ReportScheduler
from stores.ledger import SqliteLedger
from stores.reports import ReportArchive

PARIS = ZoneInfo("Europe/Paris")
SIX = time(6, 0)


# --- the schedule (pure) ------------------------------------------------------------------


def test_run_time_is_six_local_on_the_first_whatever_the_season() -> None:
    # October's report: 1 November, 06:00 CET = 05:00 UTC (DST ended on 25 October).
    assert run_at(Month(2026, 10), SIX, PARIS) == datetime(2026, 11, 1, 5, tzinfo=UTC)
    # March's report: 1 April, 06:00 CEST = 04:00 UTC (DST began on 29 March).
    assert run_at(Month(2026, 3), SIX, PARIS) == datetime(2026, 4, 1, 4, tzinfo=UTC)
    # December's: 1 January of the next year.
    assert run_at(Month(2026, 12), SIX, PARIS) == datetime(2027, 1, 1, 5, tzinfo=UTC)


def test_a_month_is_due_from_its_run_time_on_and_only_once() -> None:
    oct_run = datetime(2026, 11, 1, 5, tzinfo=UTC)
    first = Month(2026, 10)
    assert due_months(first, oct_run - timedelta(seconds=1), SIX, PARIS, set()) == []
    assert due_months(first, oct_run, SIX, PARIS, set()) == [first]
    assert due_months(first, oct_run, SIX, PARIS, {first}) == []


def test_missed_months_are_all_due_oldest_first() -> None:
    now = datetime(2027, 2, 10, tzinfo=UTC)
    due = due_months(Month(2026, 9), now, SIX, PARIS, {Month(2026, 11)})
    assert [str(m) for m in due] == ["2026-09", "2026-10", "2026-12", "2027-01"]


def test_months_parse_shift_and_span() -> None:
    assert str(Month.parse("2026-01").shift(-1)) == "2025-12"
    assert str(Month(2026, 12).shift(1)) == "2027-01"
    assert len(months_between(Month(2025, 11), Month(2026, 10))) == 12
    for bad in ("2026-13", "2026-1", "26-10", "", "2026-00"):
        with pytest.raises(ValueError, match="month"):
            Month.parse(bad)
    assert Month.of(datetime(2026, 10, 31, 23, 30, tzinfo=UTC), PARIS) == Month(2026, 11)


def test_report_settings_must_name_an_email_channel() -> None:
    text = _with_reports(SAMPLE.read_text(), 'reports = { email_channel = "nowhere" }')
    with pytest.raises(ConfigError, match="email_channel 'nowhere'"):
        parse_sites(text)


def _with_reports(sample: str, reports: str) -> str:
    """The sample site with its ``reports = …`` line replaced."""
    line = next(x for x in sample.splitlines() if x.startswith("reports = "))
    return sample.replace(line, reports, 1)


# --- the scheduler ------------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _config_with_mail(port: int) -> SitesConfig:
    reports = (
        'reports = { at = "06:00", email_channel = "board", recipients = ["board@coop.example"] }'
    )
    return parse_sites(
        _with_reports(SAMPLE.read_text(), reports)
        + f"""
[[alert_channels]]
type = "email"
name = "board"
host = "127.0.0.1"
port = {port}
starttls = false
sender = "monitor@coop.example"
recipients = ["ops@coop.example"]
timeout_s = 2
"""
    )


@pytest.fixture
def data(tmp_path: Path) -> Iterator[tuple[ReadingStore, SqliteLedger]]:
    from stores.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "readings.db")
    load_sample(
        store, localize(datetime(2026, 9, 1), PARIS), localize(datetime(2026, 11, 2), PARIS)
    )
    ledger = SqliteLedger(tmp_path / "ledger.db")
    yield store, ledger
    ledger.close()
    store.close()


def test_one_report_per_month_across_the_autumn_dst_change_mailed_once(
    data: tuple[ReadingStore, SqliteLedger], tmp_path: Path, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    store, ledger = data
    config = _config_with_mail(port)
    archive = ReportArchive(tmp_path / "reports")
    # First start on 20 October: September is owed (its run time has passed).
    clock = Clock(datetime(2026, 10, 20, 12, tzinfo=UTC))
    scheduler = ReportScheduler(config, store, ledger, archive, clock=clock)
    made = [str(r.month) for r in scheduler.run_due()]
    assert made == ["2026-09"]
    # Every 30 minutes up to 2 November: October's report comes at 06:00 local on the 1st
    # (05:00 UTC, after the change to winter time), once.
    times: dict[str, datetime] = {}
    while clock.now < datetime(2026, 11, 2, tzinfo=UTC):
        clock.now += timedelta(minutes=30)
        for record in scheduler.run_due():
            times[str(record.month)] = clock.now
    assert times == {"2026-10": datetime(2026, 11, 1, 5, tzinfo=UTC)}
    assert [str(r.month) for r in archive.reports("microville112")] == ["2026-10", "2026-09"]
    # Each mailed once, to the site's recipients, with both files attached.
    assert len(inbox.messages) == 2
    october = inbox.messages[-1]
    assert "octobre 2026" in october["Subject"]
    assert inbox.envelopes[-1].rcpt_tos == ["board@coop.example"]
    names = sorted(str(p.get_filename()) for p in october.iter_attachments())
    assert names == ["microville112-2026-10-fr.html", "microville112-2026-10-fr.pdf"]
    pdf = next(p for p in october.iter_attachments() if p.get_content_type() == "application/pdf")
    record = archive.get("microville112", Month(2026, 10), config.sites[0].language)
    # Sent and recorded at the scheduler's clock, not the wall clock.
    sent = datetime(2026, 11, 1, 5, tzinfo=UTC)
    assert record is not None and record.emailed_at == sent
    assert parsedate_to_datetime(october["Date"]) == sent
    assert pdf.get_content() == archive.read(record, "pdf")
    archive.close()


def test_downtime_is_caught_up_at_start_and_mail_retried_until_the_server_is_back(
    data: tuple[ReadingStore, SqliteLedger], tmp_path: Path, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    store, ledger = data
    archive = ReportArchive(tmp_path / "reports")
    archive.set_first_month("microville112", Month(2026, 8))  # was running in August
    down = _config_with_mail(port=1)  # nothing listens on port 1: mail fails
    clock = Clock(datetime(2026, 11, 15, tzinfo=UTC))  # back after two months down
    made = ReportScheduler(down, store, ledger, archive, clock=clock).run_due()
    assert [str(r.month) for r in made] == ["2026-08", "2026-09", "2026-10"]
    assert inbox.messages == []
    # Restarted with a working mail server: nothing regenerated, everything mailed once.
    up = ReportScheduler(_config_with_mail(port), store, ledger, archive, clock=clock)
    assert up.run_due() == []
    assert up.run_due() == []
    assert sorted(m["X-Microville-Report"] for m in inbox.messages) == [
        "microville112/2026-08/fr",
        "microville112/2026-09/fr",
        "microville112/2026-10/fr",
    ]
    archive.close()
