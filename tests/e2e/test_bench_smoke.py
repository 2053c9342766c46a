"""`microville bench --quick` runs the whole bench on tiny sizes against real services and
writes well-formed JSON with every row; the figures themselves are not checked (speed is
for the benchmark, not for the tests)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bench.consumers import peer_unavailable
from cli.main import app

PEERS = ("mqtt in → function → influxdb out", "mqtt in → function → join 1,000 → influxdb batch")
SECTIONS = {"ingestion", "load", "query", "what-if", "report", "memory"}
EXPECTED_ROWS = [
    "publisher (paho, QoS 1) → broker, single-reading messages",
    "ceiling: broker → plain paho subscriber, single-reading messages",
    "microville gateway → InfluxDB, single-reading messages",
    *[f"peer: Node-RED, {v} → InfluxDB, single-reading messages" for v in PEERS],
    "publisher (paho, QoS 1) → broker, SenML packs of 10",
    "ceiling: broker → plain paho subscriber, SenML packs of 10",
    "microville gateway → InfluxDB, SenML packs of 10",
    *[f"peer: Node-RED, {v} → InfluxDB, SenML packs of 10" for v in PEERS],
    "ceiling: InfluxDB bulk line protocol (httpx, 5,000 lines per write)",
    "InfluxDB bulk line protocol (50,000 lines per write)",
    "SQLite executemany",
    *[
        f"{store}: {row}"
        for store in ("InfluxDB", "SQLite")
        for row in (
            "7 days balance by month",
            "7 days balance by month, naive (raw points → pandas)",
            "month balance by day",
            "month balance by day, naive (raw points → pandas)",
            "target verdicts (7 days)",
            "by month, service floor (store's answer in memory)",
            "monthly report (figures + HTML + PDF)",
        )
    ],
    "InfluxDB: reading the hourly slots from an hourly rollup",
    "API InfluxDB: GET /balance, whole span by month",
    "API SQLite: GET /balance, whole span by month",
    "gateway peak RSS (VmHWM) while draining",
    "service peak RSS (VmHWM), InfluxDB, year query via the API",
    "service peak RSS (VmHWM), SQLite, year query via the API",
]


def test_quick_bench_writes_every_row(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    result = CliRunner().invoke(
        app, ["bench", "--quick", "--output", str(out), "--work-dir", str(tmp_path / "work")]
    )
    doc = json.loads(out.read_text())
    names = [r["name"] for r in doc["rows"]]
    assert [n for n in EXPECTED_ROWS if n not in names] == []
    assert doc["mode"] == "quick"
    assert doc["machine"]["nproc"] >= 1 and doc["machine"]["ram_gib"] > 0
    assert doc["sizes"]["query_meters"] == 2 and doc["sizes"]["query_points"] > 0
    for row in doc["rows"]:
        assert row["section"] in SECTIONS, row
        assert row["status"] in {"ok", "failed", "not available", "skipped"}, row
        # A figure only for what ran; a reason for what did not.
        assert (row["value"] is not None) == (row["status"] == "ok"), row
        if row["status"] != "ok":
            assert row["note"], row
    by_name = {r["name"]: r for r in doc["rows"]}
    # The pipelines under test ran, lost nothing, and measured something.
    ours = [n for n in EXPECTED_ROWS[:13] if not n.startswith("peer:")]
    for name in ours:
        assert by_name[name]["status"] == "ok", by_name[name]
        assert by_name[name]["value"] > 0
    for kind in ("single-reading messages", "SenML packs of 10"):
        details = by_name[f"microville gateway → InfluxDB, {kind}"]["details"]
        assert details["lost_readings"] == 0
        assert details["stored_readings"] == details["expected_readings"] > 0
    for store in ("InfluxDB", "SQLite"):
        row = by_name[f"{store}: 7 days balance by month"]
        assert row["status"] == "ok" and 0 < row["details"]["p50_ms"] <= row["details"]["p95_ms"]
        naive = by_name[f"{store}: 7 days balance by month, naive (raw points → pandas)"]
        assert naive["note"].startswith("production agrees to"), naive
    for name in EXPECTED_ROWS[:13]:
        if not name.startswith("peer:"):
            continue
        if peer_unavailable() is None:  # installed: it ran, and either stored all or says why
            assert by_name[name]["details"]["expected_readings"] > 0, by_name[name]
        else:
            assert by_name[name]["status"] == "not available", by_name[name]
    ours_failed = any(
        r["status"] == "failed" and not r["name"].startswith("peer:") for r in doc["rows"]
    )
    assert result.exit_code == (1 if ours_failed else 0), result.output


def test_node_red_peer_is_pinned() -> None:
    """The peer pipeline installs from a committed lock file (`npm ci`)."""
    peer = Path(__file__).resolve().parents[2] / "bench" / "peer"
    lock = json.loads((peer / "package-lock.json").read_text())
    deps = lock["packages"][""]["dependencies"]
    assert {"node-red", "node-red-contrib-influxdb"} <= set(deps)
    assert lock["packages"]["node_modules/node-red"]["version"].startswith("4.")
