"""Query rows: latency of the service's use cases on the dataset in each store, beside a
naive baseline that pulls the raw points into pandas; the service's memory during the
year query, through its API."""

from __future__ import annotations

import io
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no stubs installed

from bench.dataset import SITE, Dataset, one_month, period, site_toml, sites
from bench.procs import LogWatcher, peak_rss_mib
from bench.results import Row, failed
from bench.services import free_port, stop
from domain.periods import Step, period_bounds
from domain.store import ReadingStore
from service.usecases.balance import electricity_balance
from service.usecases.targets import targets_report
from stores.ledger import SqliteLedger

SECTION = "query"
#: p95 targets (ms) of the year balance by month, per store.
YEAR_TARGET_MS = {"InfluxDB": 100.0, "SQLite": 300.0}


def latency(fn: Callable[[], object], repeats: int, warmup: int = 1) -> dict[str, Any]:
    """p50/p95 in ms over ``repeats`` warm calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    p95 = float(np.percentile(times, 95)) if len(times) > 1 else times[0]
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(p95, 2),
        "min_ms": round(min(times), 2),
        "max_ms": round(max(times), 2),
        "repeats": repeats,
    }


def _row(name: str, stats: dict[str, Any], target_ms: float | None = None, note: str = "") -> Row:
    row = Row(SECTION, name, value=stats["p95_ms"], unit="ms p50 / p95", details=stats, note=note)
    if target_ms is not None:
        row.target = f"p95 < {target_ms:g}"
        row.meets_target = stats["p95_ms"] < target_ms
    return row


# --- naive baseline: raw points into pandas -----------------------------------------------


def _raw_influx(url: str, db: str, meter: str, a: datetime, b: datetime) -> pd.Series:
    q = (
        f'SELECT "value" FROM "energy" WHERE "site" = \'{SITE}\' AND "meter" = \'{meter}\''
        f" AND time >= {int(a.timestamp())}s AND time <= {int(b.timestamp())}s"
    )
    resp = httpx.get(
        f"{url}/query",
        params={"db": db, "q": q, "epoch": "s"},
        headers={"Accept": "application/csv"},
        timeout=600,
    )
    resp.raise_for_status()
    frame = pd.read_csv(io.StringIO(resp.text), usecols=["time", "value"])
    return pd.Series(frame["value"].to_numpy(), index=frame["time"].to_numpy())


def _raw_sqlite(path: Path, meter: str, a: datetime, b: datetime) -> pd.Series:
    import sqlite3

    with sqlite3.connect(path) as db:
        frame = pd.read_sql_query(
            "SELECT ts_ms / 1000 AS time, value FROM readings WHERE site = ? AND"
            " quantity = 'energy' AND meter = ? AND ts_ms >= ? AND ts_ms <= ? ORDER BY ts_ms",
            db,
            params=(SITE, meter, int(a.timestamp()) * 1000, int(b.timestamp()) * 1000),
        )
    return pd.Series(frame["value"].to_numpy(), index=frame["time"].to_numpy())


def naive_balance(
    ds: Dataset,
    pull: Callable[[str, datetime, datetime], pd.Series],
    a: datetime,
    b: datetime,
    step: Step,
) -> dict[str, list[float]]:
    """Energy per period and role: index at each boundary (last point at or before it),
    differences summed by role. What one writes in a notebook; no data-quality rules."""
    bounds = np.array([int(x.timestamp()) for x in period_bounds(a, b, step, ds.tz)])
    out: dict[str, list[float]] = {}
    for meter, role in ds.roles():
        s = pull(meter, a, b)
        idx = np.searchsorted(s.index.to_numpy(), bounds, side="right") - 1
        at_bounds = s.to_numpy()[np.clip(idx, 0, None)]
        energy = np.diff(at_bounds)
        prev = out.setdefault(role, [0.0] * len(energy))
        out[role] = [p + e for p, e in zip(prev, energy.tolist(), strict=True)]
    return out


# --- the rows -------------------------------------------------------------------------------


def run_store(
    ds: Dataset,
    store_name: str,
    store: ReadingStore,
    pull: Callable[[str, datetime, datetime], pd.Series],
    ledger: SqliteLedger,
    repeats: int,
    naive_repeats: int,
    log: Callable[[str], None],
) -> list[Row]:
    site = sites(ds).sites[0]
    year = period(ds)
    month = one_month(ds)
    span = "year" if (year[1] - year[0]).days >= 365 else f"{(year[1] - year[0]).days} days"
    rows: list[Row] = []
    cases: list[tuple[str, Callable[[], object], float | None, Callable[[], object] | None]] = [
        (
            f"{store_name}: {span} balance by month",
            lambda: electricity_balance(site, store, *year, Step.MONTH),
            YEAR_TARGET_MS[store_name] if span == "year" else None,
            lambda: naive_balance(ds, pull, *year, Step.MONTH),
        ),
        (
            f"{store_name}: month balance by day",
            lambda: electricity_balance(site, store, *month, Step.DAY),
            None,
            lambda: naive_balance(ds, pull, *month, Step.DAY),
        ),
        (
            f"{store_name}: target verdicts ({span})",
            lambda: targets_report(site, store, ledger, *year),
            None,
            None,
        ),
    ]
    for name, fn, target, naive in cases:
        log(name)
        try:
            rows.append(_row(name, latency(fn, repeats), target))
        except Exception as exc:
            rows.append(failed(SECTION, name, exc))
        if naive is None:
            continue
        naive_name = f"{name}, naive (raw points → pandas)"
        log(naive_name)
        try:
            stats = latency(naive, naive_repeats, warmup=0)
            rows.append(_row(naive_name, stats, note=_agreement(site, store, ds, pull, name)))
        except Exception as exc:
            rows.append(failed(SECTION, naive_name, exc))
    return rows


def _agreement(site: Any, store: ReadingStore, ds: Dataset, pull: Any, name: str) -> str:
    """Does the naive pull find the production the use case finds? (A check, not a timing.)"""
    a, b = period(ds) if "by month" in name else one_month(ds)
    step = Step.MONTH if "by month" in name else Step.DAY
    ours = electricity_balance(site, store, a, b, step).total.figures.production_wh
    theirs = sum(naive_balance(ds, pull, a, b, step).get("production", [0.0]))
    if ours == 0:
        return "no production to compare"
    return f"production agrees to {abs(theirs - ours) / ours:.1e}"


def service_memory(
    ds: Dataset, store_url: str, work: Path, repeats: int, label: str
) -> tuple[Row, Row]:
    """Run ``microville serve`` on the store, ask the year by month ``repeats`` times:
    (API latency row, peak RSS row)."""
    work.mkdir(parents=True, exist_ok=True)
    config = work / "benchq-site.toml"
    config.write_text(site_toml(ds))
    port = free_port()
    token = secrets.token_hex(32)
    env = {
        **os.environ,
        "MICROVILLE_LEDGER_PATH": str(work / "ledger.db"),
        "MICROVILLE_ALERTS_PATH": "",
        "MICROVILLE_ALERT_INTERVAL_S": "0",
        "MICROVILLE_API_TOKENS_PATH": str(work / "api-tokens.db"),
        # A read token from the environment, as Grafana's: the API's access control runs.
        "MICROVILLE_API_READ_TOKEN": token,
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "microville",
            "serve",
            "-c",
            str(config),
            "--store",
            store_url,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    watcher = LogWatcher(proc, work / f"serve-{label}.log", "Uvicorn running")
    a, b = period(ds)
    name = f"API {label}: GET /balance, whole span by month"
    try:
        if not watcher.wait(120):
            raise RuntimeError(f"service did not start: {watcher.tail()[-300:]}")
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            timeout=120,
            headers={"Authorization": f"Bearer {token}"},
        ) as http:

            def ask() -> None:
                resp = http.get(
                    f"/api/v1/sites/{SITE}/balance",
                    params={
                        "start": a.date().isoformat(),
                        "end": b.date().isoformat(),
                        "step": "month",
                    },
                )
                resp.raise_for_status()

            stats = latency(ask, repeats)
        rss = peak_rss_mib(proc.pid)
    finally:
        stop(proc)
    api = _row(name, stats)
    mem = Row(
        "memory",
        f"service peak RSS (VmHWM), {label}, year query via the API",
        "ok" if rss is not None else "failed",
        rss,
        "MiB",
    )
    return api, mem
