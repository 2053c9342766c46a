"""``microville bench``: starts a private Mosquitto and InfluxDB, runs every section,
prints the table and writes the JSON results."""

from __future__ import annotations

import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import dataset as dsm
from bench import ingest, query, report_slot, whatif
from bench.results import Row, failed, load_average, print_table, write_json
from bench.services import running_influxdb, running_mosquitto

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_WORK = BENCH_DIR / "var"
DEFAULT_OUTPUT = BENCH_DIR / "results" / "latest.json"


@dataclass(frozen=True)
class Sizes:
    single_readings: int
    senml_readings: int
    dataset: dsm.Dataset
    repeats: int
    naive_repeats: int
    stall_s: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "single_readings": self.single_readings,
            "senml_readings": self.senml_readings,
            "query_meters": self.dataset.meters,
            "query_start": self.dataset.start.isoformat(),
            "query_end": self.dataset.end.isoformat(),
            "query_points": self.dataset.points,
            "repeats": self.repeats,
            "naive_repeats": self.naive_repeats,
        }


QUICK = Sizes(2_000, 10_000, dsm.Dataset(2, date(2025, 6, 1), date(2025, 6, 8)), 3, 1, 15)
FULL = Sizes(200_000, 1_000_000, dsm.Dataset(20, date(2025, 1, 1), date(2026, 1, 1)), 20, 3, 60)


def run_bench(
    quick: bool,
    output: Path,
    work: Path,
    with_peer: bool,
    console: Console,
    single_readings: int | None = None,
    senml_readings: int | None = None,
) -> list[Row]:
    sizes = QUICK if quick else FULL
    if single_readings:
        sizes = replace(sizes, single_readings=single_readings)
    if senml_readings:
        sizes = replace(sizes, senml_readings=senml_readings)
    work.mkdir(parents=True, exist_ok=True)
    load_before = load_average()
    started = time.monotonic()

    def log(msg: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:7.1f}s[/dim] {msg}", highlight=False)

    rows: list[Row] = []
    memory: list[Row] = []
    # Ingestion databases are fresh each run; the query data lives on in this InfluxDB.
    with (
        running_mosquitto(work / "mosquitto") as mqtt_port,
        running_influxdb(work / "influxdb") as influx_url,
    ):
        try:
            ingest_rows, ingest_memory = ingest.run(
                work / "ingest",
                mqtt_port,
                influx_url,
                {"single_readings": sizes.single_readings, "senml_readings": sizes.senml_readings},
                with_peer,
                sizes.stall_s,
                log,
            )
            rows += ingest_rows
            memory += ingest_memory
        except Exception as exc:
            traceback.print_exc()
            rows.append(failed(ingest.SECTION, "ingestion", exc))
        q_rows, q_memory = _query_section(sizes, work, influx_url, log)
        rows += q_rows
        memory += q_memory
    rows += memory
    load_after = load_average()
    write_json(
        output,
        "quick" if quick else "full",
        sizes.as_dict(),
        rows,
        {
            "load_average_before": load_before,
            "load_average_after": load_after,
            "duration_s": round(time.monotonic() - started, 1),
            "with_peer": with_peer,
        },
    )
    print_table(console, rows)
    console.print(f"results: {output}", highlight=False)
    return rows


def _query_section(
    sizes: Sizes, work: Path, influx_url: str, log: Callable[[str], None]
) -> tuple[list[Row], list[Row]]:
    from stores.influx import InfluxStore
    from stores.ledger import SqliteLedger
    from stores.sqlite import SqliteStore

    ds = sizes.dataset
    rows: list[Row] = []
    memory: list[Row] = []
    cache = work / "query"
    db = f"benchq_{ds.meters}m"
    log(f"loading {ds.points:,} points into InfluxDB")
    try:
        elapsed, cached = dsm.load_influx(ds, influx_url, db, cache)
        rows.append(
            _load_row("InfluxDB bulk line protocol (50,000 lines per write)", ds, elapsed, cached)
        )
        influx_ok = True
    except Exception as exc:
        rows.append(failed("load", "InfluxDB bulk line protocol (50,000 lines per write)", exc))
        influx_ok = False
    log(f"loading {ds.points:,} points into SQLite")
    try:
        sqlite_path, elapsed, cached = dsm.load_sqlite(ds, cache)
        rows.append(_load_row("SQLite executemany", ds, elapsed, cached))
        sqlite_ok = True
    except Exception as exc:
        rows.append(failed("load", "SQLite executemany", exc))
        sqlite_ok = False

    shutil.rmtree(work / "service", ignore_errors=True)
    (work / "service").mkdir(parents=True)
    ledger = SqliteLedger(work / "service" / "ledger.db")
    site = dsm.sites(ds).sites[0]
    month_start = dsm.one_month(ds)[0]
    host = influx_url.removeprefix("http://")
    stores: list[tuple[str, bool, Callable[[], Any], Callable[..., Any], str]] = [
        (
            "InfluxDB",
            influx_ok,
            lambda: InfluxStore(influx_url, db, create_database=False),
            lambda m, a, b: query._raw_influx(influx_url, db, m, a, b),
            f"influxdb://{host}/{db}",
        ),
        (
            "SQLite",
            sqlite_ok,
            lambda: SqliteStore(sqlite_path),
            lambda m, a, b: query._raw_sqlite(sqlite_path, m, a, b),
            f"sqlite:///{sqlite_path}",
        ),
    ]
    report_reason = report_slot.unavailable()
    for name, ok, opener, pull, url in stores:
        if not ok:
            rows.append(Row(query.SECTION, f"{name}: queries", "failed", note="data not loaded"))
            continue
        store = opener()
        try:
            rows += query.run_store(
                ds, name, store, pull, ledger, sizes.repeats, sizes.naive_repeats, log
            )
            rows += _whatif_rows(ds, name, store, influx_url, db, sizes.repeats, log)
            # REPORT SLOT: see bench.report_slot.
            report_name = f"{name}: monthly report (figures + HTML + PDF)"
            if report_reason:
                rows.append(
                    Row(
                        "report",
                        report_name,
                        "not available",
                        unit="s",
                        target="< 10",
                        note=report_reason,
                    )
                )
            else:
                log(report_name)
                try:
                    timing = report_slot.time_report(site, store, ledger, month_start)
                    rows.append(
                        Row(
                            "report",
                            report_name,
                            value=timing["total_s"],
                            unit="s",
                            target="< 10",
                            meets_target=timing["total_s"] < 10,
                            details=timing,
                        )
                    )
                except Exception as exc:
                    rows.append(failed("report", report_name, exc, unit="s", target="< 10"))
        finally:
            store.close()
        log(f"service on {name}: year query through the API")
        try:
            api, mem = query.service_memory(ds, url, work / "service", sizes.repeats, name)
            rows.append(api)
            memory.append(mem)
        except Exception as exc:
            rows.append(failed(query.SECTION, f"API {name}: GET /balance", exc))
            memory.append(failed("memory", f"service peak RSS, {name}", exc, unit="MiB"))
    ledger.close()
    return rows, memory


def _load_row(name: str, ds: dsm.Dataset, elapsed: float | None, cached: bool) -> Row:
    details = {"points": ds.points, "meters": ds.meters, "elapsed_s": elapsed}
    if cached or elapsed is None:
        return Row(
            "load",
            name,
            "skipped",
            unit="points/s",
            details=details,
            note="data cached from an earlier run (delete bench/var/ to reload)",
        )
    return Row(
        "load",
        name,
        value=round(ds.points / elapsed, 1),
        unit="points/s",
        details=details,
        note=f"{ds.points:,} points in {elapsed:.1f} s",
    )


def _whatif_rows(
    ds: dsm.Dataset,
    name: str,
    store: Any,
    influx_url: str,
    db: str,
    repeats: int,
    log: Callable[[str], None],
) -> list[Row]:
    """Evidence for the proposed rollups (see bench.whatif)."""
    rows: list[Row] = []
    floor = f"{name}: by month, service floor (store's answer in memory)"
    log(floor)
    try:
        stats = whatif.service_floor(ds, store, repeats)
        rows.append(
            Row(
                whatif.SECTION,
                floor,
                value=stats["p95_ms"],
                unit="ms p50 / p95",
                details=stats,
                note="what no store optimisation removes",
            )
        )
    except Exception as exc:
        rows.append(failed(whatif.SECTION, floor, exc))
    if name != "InfluxDB":
        return rows  # the SQLite store keeps an hourly rollup of its own
    rollup = f"{name}: reading the hourly slots from an hourly rollup"
    log(rollup)
    try:
        stats = whatif.influx_rollup_read(influx_url, db, ds, repeats)
        rows.append(
            Row(
                whatif.SECTION,
                rollup,
                value=stats["p95_ms"],
                unit="ms p50 / p95",
                details=stats,
                note=f"{stats['slots']:,} slots; not in the store yet",
            )
        )
    except Exception as exc:
        rows.append(failed(whatif.SECTION, rollup, exc))
    return rows
