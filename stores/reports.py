"""The archive of monthly reports: files on disk, their SHA-256 in SQLite.

Every version ever generated keeps its row in ``report_versions``, so a report changed
after it was sent (a file edited, or regenerated with late data) shows: the current
files' hashes no longer match what was recorded and e-mailed.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from domain.reporting import Language, Month
from domain.store import folder_problem

Format = Literal["pdf", "html"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    site TEXT NOT NULL,
    month TEXT NOT NULL,
    language TEXT NOT NULL,
    generated_at TEXT NOT NULL,
    pdf_sha256 TEXT NOT NULL,
    html_sha256 TEXT NOT NULL,
    scheduled INTEGER NOT NULL,
    emailed_at TEXT,
    PRIMARY KEY (site, month, language)
);
CREATE TABLE IF NOT EXISTS report_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site TEXT NOT NULL,
    month TEXT NOT NULL,
    language TEXT NOT NULL,
    generated_at TEXT NOT NULL,
    pdf_sha256 TEXT NOT NULL,
    html_sha256 TEXT NOT NULL
);
-- The first month the scheduler owes a report for, per site: months before it were
-- never due (the service did not exist yet); months after it are caught up if missed.
CREATE TABLE IF NOT EXISTS report_schedule (
    site TEXT PRIMARY KEY,
    first_month TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class ReportRecord:
    site: str
    month: Month
    language: Language
    generated_at: datetime
    pdf_sha256: str
    html_sha256: str
    scheduled: bool
    emailed_at: datetime | None

    def sha256(self, fmt: Format) -> str:
        return self.pdf_sha256 if fmt == "pdf" else self.html_sha256


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ReportArchive:
    """Reports under ``root``: ``<site>/<YYYY-MM>.<lang>.pdf|html`` and ``reports.db``.

    Thread-safe: the scheduler's thread and the API's share one archive.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        # The archive's own folder is made, not its parents: a typo is an error.
        if problem := folder_problem(self.root):
            raise FileNotFoundError(f"cannot open the report archive {self.root}: {problem}")
        self.root.mkdir(exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.root / "reports.db", check_same_thread=False)
        self._db.executescript(_SCHEMA)

    def path(self, site: str, month: Month, language: Language, fmt: Format) -> Path:
        return self.root / site / f"{month}.{language.value}.{fmt}"

    def save(
        self,
        site: str,
        month: Month,
        language: Language,
        pdf: bytes,
        html: bytes,
        generated_at: datetime,
        scheduled: bool,
    ) -> ReportRecord:
        """Write the files (atomically: a reader never sees half a PDF) and record them."""
        for fmt, data in (("pdf", pdf), ("html", html)):
            target = self.path(site, month, language, fmt)  # type: ignore[arg-type]
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(target.suffix + ".partial")
            partial.write_bytes(data)
            partial.replace(target)
        record = ReportRecord(
            site, month, language, generated_at, sha256_hex(pdf), sha256_hex(html), scheduled, None
        )
        row = (site, str(month), language.value, generated_at.astimezone(UTC).isoformat())
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO reports VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (*row, record.pdf_sha256, record.html_sha256, int(scheduled)),
            )
            self._db.execute(
                "INSERT INTO report_versions (site, month, language, generated_at, pdf_sha256,"
                " html_sha256) VALUES (?, ?, ?, ?, ?, ?)",
                (*row, record.pdf_sha256, record.html_sha256),
            )
        return record

    def get(self, site: str, month: Month, language: Language) -> ReportRecord | None:
        found = self._select("WHERE site=? AND month=? AND language=?", site, str(month), language)
        return found[0] if found else None

    def reports(self, site: str) -> list[ReportRecord]:
        """The site's reports, newest month first."""
        return self._select("WHERE site=? ORDER BY month DESC, language", site)

    def versions(self, site: str, month: Month, language: Language) -> int:
        with self._lock:
            (n,) = self._db.execute(
                "SELECT COUNT(*) FROM report_versions WHERE site=? AND month=? AND language=?",
                (site, str(month), language.value),
            ).fetchone()
        return int(n)

    def read(self, record: ReportRecord, fmt: Format) -> bytes:
        return self.path(record.site, record.month, record.language, fmt).read_bytes()

    def intact(self, record: ReportRecord) -> bool:
        """Whether both files still hash to what was recorded when they were made."""
        try:
            return all(
                sha256_hex(self.read(record, fmt)) == record.sha256(fmt) for fmt in ("pdf", "html")
            )
        except FileNotFoundError:
            return False

    def mark_emailed(self, record: ReportRecord, at: datetime) -> None:
        with self._lock, self._db:
            self._db.execute(
                "UPDATE reports SET emailed_at=? WHERE site=? AND month=? AND language=?",
                (at.astimezone(UTC).isoformat(), record.site, str(record.month), record.language),
            )

    def first_month(self, site: str) -> Month | None:
        with self._lock:
            row = self._db.execute(
                "SELECT first_month FROM report_schedule WHERE site=?", (site,)
            ).fetchone()
        return Month.parse(row[0]) if row else None

    def set_first_month(self, site: str, month: Month) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO report_schedule VALUES (?, ?)", (site, str(month))
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _select(self, where: str, *params: object) -> list[ReportRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT site, month, language, generated_at, pdf_sha256, html_sha256,"
                f" scheduled, emailed_at FROM reports {where}",
                tuple(p.value if isinstance(p, Language) else p for p in params),
            ).fetchall()
        return [
            ReportRecord(
                site=r[0],
                month=Month.parse(r[1]),
                language=Language(r[2]),
                generated_at=datetime.fromisoformat(r[3]),
                pdf_sha256=r[4],
                html_sha256=r[5],
                scheduled=bool(r[6]),
                emailed_at=datetime.fromisoformat(r[7]) if r[7] else None,
            )
            for r in rows
        ]
