"""REPORT SLOT — the time to generate one monthly report, through the project's own
report generator when it is importable. Nothing is timed (and no figure is shown) when
it is not: the row then says why.

Wired to ``service.monthly_report.figures.monthly_report`` (the figures) and
``service.monthly_report.render.render`` (HTML and the PDF printed from it). If those
move, change ``_generator`` below; the rest of the bench does not depend on them.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from domain.clock import system_clock
from domain.site import Site
from domain.store import ReadingStore
from stores.ledger import SqliteLedger


def _generator() -> tuple[Callable[..., Any], Callable[..., Any], Any, Any]:
    """(monthly_report, render, Month, Language), or ImportError/AttributeError."""
    data = importlib.import_module("service.monthly_report.figures")
    render = importlib.import_module("service.monthly_report.render")
    reporting = importlib.import_module("domain.reporting")
    return data.monthly_report, render.render, reporting.Month, reporting.Language


def unavailable() -> str | None:
    try:
        _generator()
    except (ImportError, AttributeError) as exc:
        return f"report generator not available ({exc})"
    return None


def time_report(
    site: Site, store: ReadingStore, ledger: SqliteLedger, month_start: datetime
) -> dict[str, Any]:
    """Seconds to gather the figures and to render HTML + PDF of the month starting at
    ``month_start`` (local); sizes of what came out, so that an empty report shows."""
    monthly_report, render, month_cls, language = _generator()
    month = month_cls(month_start.year, month_start.month)
    t0 = time.perf_counter()
    report = monthly_report(site, store, ledger, month, now=system_clock())
    t1 = time.perf_counter()
    rendered = render(report, language.FR)
    t2 = time.perf_counter()
    return {
        "total_s": round(t2 - t0, 3),
        "figures_s": round(t1 - t0, 3),
        "render_s": round(t2 - t1, 3),
        "html_bytes": len(rendered.html),
        "pdf_bytes": len(rendered.pdf),
    }
