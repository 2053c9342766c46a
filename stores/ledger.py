"""The ledger: materials of the renovation and waste entries, in one SQLite file.

These are records entered by people (through the API or a CSV import), not time series,
so they live beside the time-series store whatever it is. Every write is one
transaction: a batch with one bad record writes nothing.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from domain.materials import Material
from domain.records import WasteEntry
from domain.store import folder_problem

_SCHEMA = """
CREATE TABLE IF NOT EXISTS materials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site TEXT NOT NULL,
    record TEXT NOT NULL  -- Material as JSON
);
CREATE TABLE IF NOT EXISTS waste_entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    record TEXT NOT NULL  -- WasteEntry as JSON
);
CREATE INDEX IF NOT EXISTS waste_entries_site_ts ON waste_entries (site, ts_ms);
"""


log = logging.getLogger(__name__)

_Record = TypeVar("_Record", bound=BaseModel)


def _record(kind: type[_Record], item: _Record) -> str:
    """``item`` as the JSON the ledger keeps, refused (ValueError) unless it reads back
    as ``kind``: JSON has no Infinity or NaN, a model built without validation could
    hold one, and it would be stored as null."""
    text = item.model_dump_json()
    try:
        kind.model_validate_json(text)
    except ValidationError as exc:
        raise ValueError(f"{kind.__name__} would not read back from the ledger: {exc}") from None
    return text


class SqliteLedger:
    """Lifecycle: create, use from any thread, ``close()`` once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if problem := folder_problem(self.path):  # a typo must not become a new ledger
            raise FileNotFoundError(f"cannot open the ledger {self.path}: {problem}")
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def add_materials(self, site: str, materials: Sequence[Material]) -> list[int]:
        records = [_record(Material, m) for m in materials]  # all checked before any write
        with self._lock, self._db:
            return [
                int(
                    self._db.execute(
                        "INSERT INTO materials (site, record) VALUES (?, ?)",
                        (site, record),
                    ).lastrowid
                    or 0
                )
                for record in records
            ]

    def materials(self, site: str) -> list[tuple[int, Material]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, record FROM materials WHERE site=? ORDER BY id", (site,)
            ).fetchall()
        return [(i, Material.model_validate_json(r)) for i, r in rows]

    def delete_material(self, site: str, material_id: int) -> bool:
        with self._lock, self._db:
            cur = self._db.execute(
                "DELETE FROM materials WHERE site=? AND id=?", (site, material_id)
            )
        return cur.rowcount > 0

    def add_waste_entries(self, site: str, entries: Sequence[WasteEntry]) -> list[int]:
        records = [(e, _record(WasteEntry, e)) for e in entries]  # all checked first
        with self._lock, self._db:
            return [
                int(
                    self._db.execute(
                        "INSERT INTO waste_entries (site, ts_ms, record) VALUES (?, ?, ?)",
                        (site, round(e.time.timestamp() * 1000), record),
                    ).lastrowid
                    or 0
                )
                for e, record in records
            ]

    def waste_entries(
        self, site: str, start: datetime | None = None, end: datetime | None = None
    ) -> list[tuple[int, WasteEntry]]:
        """Entries of ``site`` with ``start <= time < end`` (all when not given); a row
        that no longer reads as an entry is left out (see :meth:`waste_records`)."""
        return self.waste_records(site, start, end)[0]

    def waste_records(
        self, site: str, start: datetime | None = None, end: datetime | None = None
    ) -> tuple[list[tuple[int, WasteEntry]], list[tuple[int, str]]]:
        """Entries of ``site`` with ``start <= time < end``, and the ``(id, reason)`` of
        the rows there that do not read as an entry (written by an older version that
        let a non-finite mass through as null, or edited by hand): one bad row must not
        make the whole ledger unreadable, nor be dropped without a word."""
        lo = round(start.timestamp() * 1000) if start else -(2**62)
        hi = round(end.timestamp() * 1000) if end else 2**62
        with self._lock:
            rows = self._db.execute(
                "SELECT id, record FROM waste_entries WHERE site=? AND ts_ms >= ? AND ts_ms < ?"
                " ORDER BY ts_ms, id",
                (site, lo, hi),
            ).fetchall()
        entries: list[tuple[int, WasteEntry]] = []
        unreadable: list[tuple[int, str]] = []
        for i, record in rows:
            try:
                entries.append((i, WasteEntry.model_validate_json(record)))
            except ValidationError as exc:
                reason = "; ".join(
                    f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors()
                )
                log.warning("ledger: waste entry %d of site %r unreadable: %s", i, site, reason)
                unreadable.append((i, reason))
        return entries, unreadable

    def delete_waste_entry(self, site: str, entry_id: int) -> bool:
        with self._lock, self._db:
            cur = self._db.execute(
                "DELETE FROM waste_entries WHERE site=? AND id=?", (site, entry_id)
            )
        return cur.rowcount > 0

    def close(self) -> None:
        with self._lock:
            self._db.close()
