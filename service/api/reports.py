"""``/api/v1/sites/{site}/reports``: list, serve and generate monthly reports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field

from domain.reporting import Language, Month
from service.alerts.engine import AlertEngine
from service.api.deps import LedgerDep, SiteDep, StoreDep, now
from service.api.limits import AuthorizedRoute
from service.monthly_report.make import generate_report
from stores.reports import ReportArchive, ReportRecord

router = APIRouter(
    prefix="/api/v1/sites/{site}/reports", tags=["reports"], route_class=AuthorizedRoute
)

MEDIA = {"pdf": "application/pdf", "html": "text/html; charset=utf-8"}


def _archive(request: Request) -> ReportArchive:
    archive: ReportArchive | None = request.app.state.reports
    if archive is None:
        raise HTTPException(404, "reports are off: set MICROVILLE_REPORTS_DIR")
    return archive


ArchiveDep = Annotated[ReportArchive, Depends(_archive)]


def _month(month: Annotated[str, Path(description="Calendar month, YYYY-MM")]) -> Month:
    try:
        return Month.parse(month)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


MonthDep = Annotated[Month, Depends(_month)]
LanguageQuery = Annotated[
    Language | None, Query(alias="lang", description="fr or en; default: the site's language")
]


class ReportOut(BaseModel):
    month: str
    language: Language
    generated_at: datetime
    scheduled: bool = Field(description="made by the scheduler (else on request)")
    emailed_at: datetime | None
    pdf_sha256: str
    html_sha256: str
    intact: bool = Field(description="the stored files still match the recorded hashes")
    pdf_url: str
    html_url: str

    @classmethod
    def of(cls, r: ReportRecord, archive: ReportArchive) -> ReportOut:
        base = f"/api/v1/sites/{r.site}/reports/{r.month}"
        query = f"?lang={r.language.value}"
        return cls(
            month=str(r.month),
            language=r.language,
            generated_at=r.generated_at,
            scheduled=r.scheduled,
            emailed_at=r.emailed_at,
            pdf_sha256=r.pdf_sha256,
            html_sha256=r.html_sha256,
            intact=archive.intact(r),
            pdf_url=f"{base}/pdf{query}",
            html_url=f"{base}/html{query}",
        )


@router.get("", response_model=list[ReportOut])
def list_reports(site: SiteDep, archive: ArchiveDep) -> list[ReportOut]:
    """The site's archived reports, newest first, each with its hashes and integrity."""
    return [ReportOut.of(r, archive) for r in archive.reports(site.id)]


@router.get("/{month}/{fmt}", response_class=Response)
def get_report(
    site: SiteDep,
    archive: ArchiveDep,
    month: MonthDep,
    fmt: Literal["pdf", "html"],
    lang: LanguageQuery = None,
) -> Response:
    """One archived report, as PDF or HTML."""
    language = lang or site.language
    record = archive.get(site.id, month, language)
    if record is None:
        raise HTTPException(
            404,
            f"no {language.value} report for {month}: POST /api/v1/sites/{site.id}/reports/"
            f"{month}?lang={language.value} to generate it",
        )
    filename = f"{site.id}-{month}-{language.value}.{fmt}"
    return Response(
        archive.read(record, fmt),
        media_type=MEDIA[fmt],
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "X-Content-SHA256": record.sha256(fmt),
        },
    )


@router.post("/{month}", response_model=ReportOut, status_code=201)
def create_report(
    request: Request,
    site: SiteDep,
    store: StoreDep,
    ledger: LedgerDep,
    archive: ArchiveDep,
    month: MonthDep,
    lang: LanguageQuery = None,
) -> ReportOut:
    """Generate (or regenerate, e.g. after late data) a month's report; every version's
    hashes stay on record."""
    alerts: AlertEngine | None = request.app.state.alerts
    record = generate_report(
        site, store, ledger, archive, month, lang, alerts, now=now(request, site.tz)
    )
    return ReportOut.of(record, archive)
