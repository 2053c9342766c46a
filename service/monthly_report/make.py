"""Monthly reports as a use case: generate and archive one, mail it, and the scheduler
that makes the previous month's on the 1st and catches up the runs it missed."""

from __future__ import annotations

import logging
import smtplib
import threading
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import NamedTuple

from domain.alert_config import EmailChannel
from domain.clock import Clock, system_clock
from domain.reporting import Language, Month, due_months
from domain.site import Site, SitesConfig
from domain.store import AlertHistory, Ledger, ReadingStore, StoreError
from service.alerts.channels import DeliveryError, smtp_send
from service.monthly_report.figures import HAS_DATA, monthly_report
from service.monthly_report.render import render
from service.monthly_report.words import Texts
from service.usecases.kernel import QueryError
from stores.reports import ReportArchive, ReportRecord

log = logging.getLogger(__name__)


def generate_report(
    site: Site,
    store: ReadingStore,
    ledger: Ledger,
    archive: ReportArchive,
    month: Month,
    language: Language | None = None,
    alerts: AlertHistory | None = None,
    scheduled: bool = False,
    *,
    now: datetime,
) -> ReportRecord:
    """Make ``month``'s report of ``site`` (in the site's language unless told) as PDF
    and HTML at ``now``, and archive both with their hashes. A month not yet over at
    ``now`` is refused."""
    return make_report(
        site, store, ledger, archive, month, language, alerts, scheduled, now=now
    ).record


class MadeReport(NamedTuple):
    record: ReportRecord
    #: The month has data (coverage ≥ ``HAS_DATA``); without, the report says "no data".
    has_data: bool


def make_report(
    site: Site,
    store: ReadingStore,
    ledger: Ledger,
    archive: ReportArchive,
    month: Month,
    language: Language | None = None,
    alerts: AlertHistory | None = None,
    scheduled: bool = False,
    *,
    now: datetime,
) -> MadeReport:
    """:func:`generate_report`, and whether the month had any data."""
    if month.end(site.tz) > now:
        end = month.end(site.tz)
        raise QueryError(
            f"the month is not over yet in {site.timezone}; it can be reported from "
            f"{end:%Y-%m-%d %H:%M} ({site.timezone})."
        )
    language = language or site.language
    report = monthly_report(site, store, ledger, month, alerts, now=now)
    rendered = render(report, language)
    record = archive.save(
        site.id, month, language, rendered.pdf, rendered.html, report.generated_at, scheduled
    )
    return MadeReport(record, report.month_energy.evidence.coverage >= HAS_DATA)


def report_email(
    site: Site,
    record: ReportRecord,
    archive: ReportArchive,
    channel: EmailChannel,
    sent_at: datetime,
) -> EmailMessage:
    """The report's e-mail, dated ``sent_at``: a short text and both files attached."""
    t = Texts(record.language)
    msg = EmailMessage()
    msg["Subject"] = f"{t['title']} — {site.name} — {t.month(record.month)}"
    msg["From"] = channel.sender
    msg["To"] = ", ".join(site.reports.recipients or channel.recipients)
    msg["Date"] = format_datetime(sent_at)
    msg["Message-ID"] = make_msgid(domain=channel.sender.rpartition("@")[2] or "microville.invalid")
    msg["X-Microville-Report"] = f"{site.id}/{record.month}/{record.language.value}"
    body = [
        f"{t['title']} — {site.name} — {t.month(record.month)}",
        "",
        f"PDF SHA-256: {record.pdf_sha256}",
        f"HTML SHA-256: {record.html_sha256}",
    ]
    msg.set_content("\n".join(body) + "\n")
    stem = f"{site.id}-{record.month}-{record.language.value}"
    msg.add_attachment(
        archive.read(record, "pdf"), maintype="application", subtype="pdf", filename=f"{stem}.pdf"
    )
    msg.add_attachment(
        archive.read(record, "html"), maintype="text", subtype="html", filename=f"{stem}.html"
    )
    return msg


class ReportScheduler:
    """Makes each site's previous-month report once it is due (the 1st at the site's
    ``reports.at``, local time), catches up months missed while the service was down,
    and mails each scheduled report once to the site's recipients (retried until sent).

    Lifecycle: ``run_due()`` any time (idempotent); or ``start(interval_s)`` once and
    ``stop()`` once.
    """

    def __init__(
        self,
        sites: SitesConfig,
        store: ReadingStore,
        ledger: Ledger,
        archive: ReportArchive,
        alerts: AlertHistory | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.sites = sites
        self.store = store
        self.ledger = ledger
        self.archive = archive
        self.alerts = alerts
        self.clock = clock
        self._channels = {c.name: c for c in sites.alert_channels if isinstance(c, EmailChannel)}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._run_lock = threading.Lock()

    def run_due(self) -> list[ReportRecord]:
        """Generate what is due now; mail what is not yet mailed. Returns the new reports."""
        with self._run_lock:
            now = self.clock()
            made: list[ReportRecord] = []
            for site in self.sites.sites:
                made += self._generate_due(site, now)
                self._deliver(site)
            return made

    def _generate_due(self, site: Site, now: datetime) -> list[ReportRecord]:
        first = self.archive.first_month(site.id)
        if first is None:
            # First run for this site: the month before this one is the first owed.
            first = Month.of(now, site.tz).shift(-1)
            self.archive.set_first_month(site.id, first)
        done = {r.month for r in self.archive.reports(site.id) if r.language is site.language}
        made = []
        for month in due_months(first, now, site.reports.at, site.tz, done):
            try:
                record = generate_report(
                    site,
                    self.store,
                    self.ledger,
                    self.archive,
                    month,
                    alerts=self.alerts,
                    scheduled=True,
                    now=now,
                )
            except StoreError as exc:
                log.warning(
                    "report %s %s: store unavailable, retried later: %s", site.id, month, exc
                )
                break  # the next months would fail the same way; keep the order
            log.info("report %s %s generated (pdf sha256 %s)", site.id, month, record.pdf_sha256)
            made.append(record)
        return made

    def _deliver(self, site: Site) -> None:
        name = site.reports.email_channel
        if name is None:
            return
        channel = self._channels[name]  # checked when the configuration was read
        recipients = site.reports.recipients or channel.recipients
        for record in self.archive.reports(site.id):
            if not record.scheduled or record.emailed_at is not None:
                continue
            try:
                sent_at = self.clock()
                msg = report_email(site, record, self.archive, channel, sent_at)
                smtp_send(channel, msg, recipients)
            except (OSError, smtplib.SMTPException, DeliveryError) as exc:
                log.warning(
                    "report %s %s: e-mail failed, retried later: %s", site.id, record.month, exc
                )
                return
            self.archive.mark_emailed(record, sent_at)
            log.info("report %s %s mailed to %s", site.id, record.month, ", ".join(recipients))

    def start(self, interval_s: float) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.run_due()
                except Exception:  # a bug must not stop the next months' reports
                    log.exception("report scheduler run failed")
                self._stop.wait(interval_s)

        self._thread = threading.Thread(target=loop, name="report-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)


__all__ = ["ReportScheduler", "generate_report", "report_email"]
