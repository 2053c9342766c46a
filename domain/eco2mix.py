"""Parser of RTE éCO2mix files, the grid carbon intensity the indicators need (text in,
values out).

RTE éCO2mix carbon intensity: ``taux_co2`` is the direct-emission intensity of the
electricity produced in France [gCO2/kWh], every 15 minutes; it is not a life-cycle
factor.

Pure functions over text already read; no I/O.
"""

from __future__ import annotations

import contextlib
import csv
import math
import re
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

#: Wall-clock timezone of the downloadable éCO2mix files.
PARIS = ZoneInfo("Europe/Paris")

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
#: Cells RTE leaves for a value not (yet) available.
_NO_VALUE = frozenset({"", "nd", "n/a", "-"})
#: The notice closing the downloadable files, not a data row.
_RTE_NOTICE = "rte ne pourra"


def _normalise(header: str) -> str:
    return " ".join(header.strip().casefold().split())


def _rate_column(header: list[str]) -> int | None:
    for i, name in enumerate(header):
        if name == "taux_co2" or name.startswith("taux de co2"):
            return i
    return None


def _rate(cell: str) -> float | None:
    text = cell.strip().replace("\u00a0", "").replace(" ", "")
    if text.casefold() in _NO_VALUE:
        return None
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"taux de CO2 is not a number: {cell.strip()!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"taux de CO2 must be ≥ 0 g/kWh, got {cell.strip()!r}")
    return value


def _iso_instant(cell: str) -> datetime:
    try:
        t = datetime.fromisoformat(cell.strip())
    except ValueError:
        raise ValueError(f"date_heure is not an ISO 8601 date-time: {cell.strip()!r}") from None
    if t.tzinfo is None:
        raise ValueError(f"date_heure has no UTC offset: {cell.strip()!r}")
    return t.astimezone(UTC)


def _wall_time(day_cell: str, time_cell: str) -> datetime:
    day_text, time_text = day_cell.strip(), time_cell.strip()
    if not _DATE.fullmatch(day_text):
        raise ValueError(f"Date is not YYYY-MM-DD: {day_text!r}")
    match = _TIME.fullmatch(time_text)
    if not match:
        raise ValueError(f"Heures is not HH:MM: {time_text!r}")
    try:
        day = date.fromisoformat(day_text)
        clock = time(int(match[1]), int(match[2]), int(match[3] or 0))
    except ValueError as exc:
        raise ValueError(f"Date/Heures {day_text} {time_text}: {exc}") from None
    return datetime.combine(day, clock)


def _localise(wall: datetime, seen: dict[datetime, int], why: str = "") -> datetime:
    """The UTC instant of a Paris wall time; the repeated autumn hour by row order."""
    first, second = wall.replace(tzinfo=PARIS, fold=0), wall.replace(tzinfo=PARIS, fold=1)
    if first.astimezone(UTC).astimezone(PARIS).replace(tzinfo=None) != wall:
        raise ValueError(
            f"{wall:%Y-%m-%d %H:%M} does not exist in Europe/Paris (spring gap: clocks go "
            f"from 02:00 to 03:00){why}"
        )
    if first.utcoffset() == second.utcoffset():
        return first.astimezone(UTC)
    occurrence = seen.get(wall, 0)
    if occurrence >= 2:
        raise ValueError(f"{wall:%Y-%m-%d %H:%M} appears more than twice")
    seen[wall] = occurrence + 1
    # First occurrence: summer time (+02:00); second: winter time (+01:00).
    return (first if occurrence == 0 else second).astimezone(UTC)


def _note_occurrence(day_cell: str, time_cell: str, seen: dict[datetime, int]) -> None:
    """Count a row without a value as an occurrence of its wall time, when it has one."""
    # No value to place: a malformed or nonexistent time loses nothing.
    with contextlib.suppress(ValueError):
        _localise(_wall_time(day_cell, time_cell), seen)


def parse_eco2mix_csv(text: str) -> list[tuple[datetime, float]]:
    """RTE éCO2mix carbon intensity from a CSV export.

    Two layouts are read:

    - open data (ODRÉ): columns ``date_heure`` (ISO 8601 with offset) and
      ``taux_co2``;
    - downloadable file: ``Périmètre;Nature;Date;Heures;…;Taux de Co2`` with
      ``Date`` as ``YYYY-MM-DD`` and ``Heures`` as ``HH:MM`` in Europe/Paris wall
      time. The repeated autumn hour is resolved by row order: the first
      occurrence of a 02:xx time is the +02:00 one, the second the +01:00 one.

    The separator is ``;``, ``,`` or a tab (sniffed on the header). Blank lines,
    byte-order marks, trailing separators, rows without a rate (empty or ``ND``,
    skipped before their time is read: the spring gap's nonexistent quarter-hours come
    as ``ND``) and RTE's closing notice are skipped. A nonexistent local time *with* a
    rate is an error naming its line.

    Returns
    -------
    list of (datetime, float)
        Aware UTC instants and intensities [gCO2/kWh], in time order.

    Raises
    ------
    ValueError
        On an unrecognised header, or listing every malformed row as ``line N: reason``.
    """
    lines = text.replace("\ufeff", "").splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise ValueError("empty éCO2mix file: a header row is expected")
    separator = max(";,\t", key=lines[first].count)
    rows = csv.reader(lines[first:], delimiter=separator)
    header = [_normalise(h) for h in next(rows)]
    rate_at = _rate_column(header)
    if rate_at is not None and "date_heure" in header:
        time_at: tuple[int, ...] = (header.index("date_heure"),)
    elif rate_at is not None and "date" in header and ("heures" in header or "heure" in header):
        hours = "heures" if "heures" in header else "heure"
        time_at = (header.index("date"), header.index(hours))
    else:
        raise ValueError(
            f"line {first + 1}: header: expected columns date_heure and taux_co2, or "
            "Date, Heures and Taux de Co2"
        )
    needed = max(rate_at, *time_at) + 1

    samples: list[tuple[datetime, float]] = []
    errors: list[str] = []
    seen: dict[datetime, int] = {}
    consumed = rows.line_num
    for cells in rows:
        line = first + consumed + 1
        consumed = rows.line_num
        if not any(c.strip() for c in cells):
            continue
        if cells[0].strip().casefold().startswith(_RTE_NOTICE):
            continue
        if len(cells) < needed:
            errors.append(f"line {line}: {len(cells)} field(s), expected at least {needed}")
            continue
        try:
            rate = _rate(cells[rate_at])
            if rate is None:
                # No value (ND, empty): skipped before its time is read — RTE lists the
                # spring gap's quarter-hours as ND — but an autumn 02:xx still takes its
                # occurrence, so that the next one is the winter one.
                if len(time_at) == 2:
                    _note_occurrence(cells[time_at[0]], cells[time_at[1]], seen)
                continue
            if len(time_at) == 1:
                instant = _iso_instant(cells[time_at[0]])
            else:
                wall = _wall_time(cells[time_at[0]], cells[time_at[1]])
                instant = _localise(wall, seen, f" yet has a rate ({cells[rate_at].strip()})")
        except ValueError as exc:
            errors.append(f"line {line}: {exc}")
            continue
        samples.append((instant, rate))
    if errors:
        raise ValueError("invalid éCO2mix file:\n" + "\n".join(errors))
    samples.sort(key=lambda sample: sample[0])
    return samples
