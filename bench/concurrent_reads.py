"""Concurrent readers: ``clients`` callers at once on the year's balance through the
service (``microville serve``, a real process), and ``/health`` timed under that load.

Finding F6 of the audit (issue #14): queries used to queue behind one store lock and the
health check behind the queries. The read rate limit is lifted for the run (one token
for every client, as a shared dashboard would be): the figure is the service's, not the
limit's. Run alone (before/after comparisons, another interpreter for the service):

    python -m bench.concurrent_reads --store sqlite --meters 20
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import dataset as dsm
from bench.procs import LogWatcher
from bench.results import Row
from bench.services import free_port, running_influxdb, running_mosquitto, stop

SECTION = "query"
#: Targets of the audit: /health must answer the compose healthcheck under load; the
#: balance's < 1 s under 50 clients needs rollups on every store (another issue).
HEALTH_P95_TARGET_MS = 100.0


def _percentiles(times_ms: list[float]) -> dict[str, Any]:
    if not times_ms:
        return {"p50_ms": None, "p95_ms": None, "n": 0}
    return {
        "p50_ms": round(statistics.median(times_ms), 1),
        "p95_ms": round(float(np.percentile(times_ms, 95)), 1),
        "max_ms": round(max(times_ms), 1),
        "n": len(times_ms),
    }


@contextmanager
def serving(
    ds: dsm.Dataset, store_url: str, work: Path, mqtt_url: str, python: str
) -> Iterator[tuple[str, str]]:
    """``microville serve`` on the store, with ``python``: (base URL, read token)."""
    work.mkdir(parents=True, exist_ok=True)
    config = work / "benchq-site.toml"
    config.write_text(dsm.site_toml(ds))
    port = free_port()
    token = secrets.token_hex(32)
    env = {
        **os.environ,
        "MICROVILLE_LEDGER_PATH": str(work / "ledger.db"),
        "MICROVILLE_ALERTS_PATH": "",
        "MICROVILLE_ALERT_INTERVAL_S": "0",
        "MICROVILLE_REPORT_INTERVAL_S": "0",
        "MICROVILLE_API_TOKENS_PATH": str(work / "api-tokens.db"),
        "MICROVILLE_API_READ_TOKEN": token,
        "MICROVILLE_API_READ_BURST": "100000",
        "MICROVILLE_API_READ_PER_MINUTE": "1000000",
        "MICROVILLE_MQTT_URL": mqtt_url,
        "PYTHONUNBUFFERED": "1",
    }
    argv = [python, "-m", "microville", "serve", "-c", str(config), "--store", store_url]
    proc = subprocess.Popen(
        [*argv, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    watcher = LogWatcher(proc, work / "serve-concurrent.log", "Uvicorn running")
    try:
        if not watcher.wait(300):
            raise RuntimeError(f"service did not start: {watcher.tail()[-300:]}")
        yield f"http://127.0.0.1:{port}", token
    finally:
        stop(proc)


def measure(
    base_url: str, token: str, ds: dsm.Dataset, clients: int, per_client: int
) -> dict[str, Any]:
    """``clients`` threads each asking the year by month ``per_client`` times, while one
    more asks /health in a loop: the latencies of both, and the statuses seen."""
    a, b = dsm.period(ds)
    params = {"start": a.date().isoformat(), "end": b.date().isoformat(), "step": "month"}
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients + 2)
    balance_ms: list[float] = []
    health_ms: list[float] = []
    statuses: dict[str, int] = {}
    done = threading.Event()
    with httpx.Client(base_url=base_url, timeout=600, headers=headers, limits=limits) as http:
        http.get(f"/api/v1/sites/{dsm.SITE}/balance", params=params).raise_for_status()  # warm

        def reader() -> None:
            for _ in range(per_client):
                t = time.perf_counter()
                resp = http.get(f"/api/v1/sites/{dsm.SITE}/balance", params=params)
                balance_ms.append((time.perf_counter() - t) * 1000)
                statuses[str(resp.status_code)] = statuses.get(str(resp.status_code), 0) + 1

        def prober() -> None:
            while not done.is_set():
                t = time.perf_counter()
                http.get("/health")
                health_ms.append((time.perf_counter() - t) * 1000)
                done.wait(0.05)

        probe = threading.Thread(target=prober)
        started = time.perf_counter()
        probe.start()
        with ThreadPoolExecutor(clients) as pool:
            for f in [pool.submit(reader) for _ in range(clients)]:
                f.result()
        elapsed = time.perf_counter() - started
        done.set()
        probe.join()
    return {
        "clients": clients,
        "requests": clients * per_client,
        "throughput_rps": round(clients * per_client / elapsed, 2),
        "balance": _percentiles(balance_ms),
        "health": _percentiles(health_ms),
        "statuses": statuses,
    }


def rows(label: str, figures: dict[str, Any]) -> list[Row]:
    n = figures["clients"]
    balance, health = figures["balance"], figures["health"]
    return [
        Row(
            SECTION,
            f"API {label}: {n} clients at once on the year's balance by month",
            value=balance["p95_ms"],
            unit="ms p95",
            details=figures,
            note="p95 < 1 s needs rollups on every store (issue #14, F6)",
        ),
        Row(
            SECTION,
            f"API {label}: GET /health under {n} clients' year queries",
            value=health["p95_ms"],
            unit="ms p95",
            target=f"p95 < {HEALTH_P95_TARGET_MS:g}",
            meets_target=health["p95_ms"] is not None and health["p95_ms"] < HEALTH_P95_TARGET_MS,
            details=health,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "influxdb"], default="sqlite")
    parser.add_argument("--meters", type=int, default=20)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--per-client", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("bench/var").resolve())
    parser.add_argument("--python", default=sys.executable, help="the service's interpreter")
    args = parser.parse_args()
    args.work = args.work.resolve()  # the service runs in a directory of its own
    ds = dsm.Dataset(args.meters, date(2025, 1, 1), date(2026, 1, 1))
    cache = args.work / "query"
    with running_mosquitto(args.work / "mosquitto-concurrent") as mqtt_port:
        mqtt_url = f"mqtt://127.0.0.1:{mqtt_port}"
        if args.store == "sqlite":
            path, _, _ = dsm.load_sqlite(ds, cache)
            with serving(
                ds, f"sqlite:///{path}", args.work / "concurrent", mqtt_url, args.python
            ) as (
                url,
                token,
            ):
                figures = measure(url, token, ds, args.clients, args.per_client)
        else:
            with running_influxdb(args.work / "influxdb-concurrent") as influx_url:
                db = f"benchq_{ds.meters}m"
                dsm.load_influx(ds, influx_url, db, cache)
                host = influx_url.removeprefix("http://")
                store_url = f"influxdb://{host}/{db}"
                with serving(ds, store_url, args.work / "concurrent", mqtt_url, args.python) as (
                    url,
                    token,
                ):
                    figures = measure(url, token, ds, args.clients, args.per_client)
    print(json.dumps({"store": args.store, "meters": args.meters, **figures}, indent=1))


if __name__ == "__main__":
    main()
