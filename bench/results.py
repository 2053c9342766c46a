"""Benchmark rows: what was measured, printed as a table and written as JSON."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

Status = Literal["ok", "failed", "not available", "skipped"]


@dataclass
class Row:
    """One figure. ``value`` is ``None`` unless ``status`` is ``ok``: no figure is ever
    made up for something that did not run."""

    section: str
    name: str
    status: Status = "ok"
    value: float | None = None
    unit: str = ""
    #: Human-readable target ("≥ 30000", "< 100") and whether the value meets it.
    target: str = ""
    meets_target: bool | None = None
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def failed(section: str, name: str, exc: BaseException, unit: str = "", target: str = "") -> Row:
    return Row(
        section, name, "failed", unit=unit, target=target, note=f"{type(exc).__name__}: {exc}"
    )


def machine() -> dict[str, Any]:
    """Where the figures come from: they mean little without it."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "ram_gib": round(mem_kb / 1024**2, 1),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def write_json(
    path: Path, mode: str, sizes: dict[str, Any], rows: list[Row], meta: dict[str, Any]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "machine": machine(),
        "sizes": sizes,
        **meta,
        "rows": [asdict(r) for r in rows],
    }
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def shown_value(r: Row) -> str:
    if r.status != "ok" or r.value is None:
        return r.status
    if "p50_ms" in r.details:
        return f"{_fmt(r.details['p50_ms'])} / {_fmt(r.details['p95_ms'])}"
    return _fmt(r.value)


def print_table(console: Console, rows: list[Row]) -> None:
    table = Table(title="Microville benchmarks", show_lines=False)
    for col, justify in (
        ("section", "left"),
        ("row", "left"),
        ("value", "right"),
        ("unit", "left"),
        ("target", "left"),
        ("note", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        mark = {True: " [green]✓[/green]", False: " [red]✗[/red]", None: ""}[r.meets_target]
        style = "" if r.status == "ok" else "yellow"
        table.add_row(
            r.section,
            r.name,
            shown_value(r),
            r.unit,
            (r.target + mark) if r.target else "",
            r.note,
            style=style,
        )
    console.print(table)
