"""`microville demo` as a newcomer runs it: twice in a row, with a port already taken."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers.services import free_port


def _demo(
    tmp_path: Path, *args: str, api_port: int | None = None, timeout_s: float = 300
) -> subprocess.CompletedProcess[str]:
    """The real command, its temporary files under ``tmp_path/tmp`` (to see what it leaves)."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "microville", "demo", "--no-serve",
         "--port", str(api_port or free_port()), *args],
        capture_output=True, text=True, timeout=timeout_s, check=False, cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmp_path / "tmp"), "COLUMNS": "80"},
    )  # fmt: skip


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


@pytest.mark.parametrize("option", ["--port", "--broker-port"])
def test_a_taken_port_is_one_line_naming_the_option_and_leaves_nothing(
    tmp_path: Path, taken_port: int, option: str
) -> None:
    """It hung forever (API port) or gave an 85-line traceback (broker port), leaving an
    empty temporary folder behind."""
    if option == "--port":
        result = _demo(
            tmp_path, "--broker-port", str(free_port()), api_port=taken_port, timeout_s=60
        )
    else:
        result = _demo(tmp_path, "--broker-port", str(taken_port), timeout_s=60)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and result.stderr == "", result.stdout + result.stderr
    assert f"port {taken_port}" in lines[0] and "already in use" in lines[0]
    assert f"choose another with {option}" in lines[0]
    assert list((tmp_path / "tmp").iterdir()) == []  # no serial-port folder left
    assert not (tmp_path / "demo-data").exists()  # nothing made before the refusal


def _days_stored(db: Path) -> set[str]:
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT DISTINCT ts_ms / 86400000 FROM readings").fetchall()
    return {datetime.fromtimestamp(d * 86400, UTC).date().isoformat() for (d,) in rows}


def test_each_demo_run_starts_from_a_fresh_store_unless_keep(tmp_path: Path) -> None:
    """Two demos in one folder mixed their readings (a serial run showed the MQTT run's
    exports and 100 % coverage). Each run also says what it prints without serving:
    no URL of an API that is gone, whole MQTT deliveries, and the period's verdict.
    Two winter days: the balance is negative and an alert fires."""
    db = tmp_path / "demo-data" / "readings.db"
    first = _demo(tmp_path, "--start", "2026-01-05", "--days", "2")
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"demo data in {tmp_path / 'demo-data'}: new" in first.stdout
    assert {"2026-01-04", "2026-01-05", "2026-01-06"} >= _days_stored(db) >= {"2026-01-05"}

    second = _demo(tmp_path, "--start", "2026-01-20", "--days", "2")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "an earlier run's data removed; --keep adds to it instead" in second.stdout
    assert "2026-01-05" not in _days_stored(db) and "2026-01-20" in _days_stored(db)

    kept = _demo(tmp_path, "--start", "2026-01-05", "--days", "2", "--keep")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "kept: this run adds to the data already there" in kept.stdout
    assert {"2026-01-05", "2026-01-20"} <= _days_stored(db)

    for run in (first, second, kept):
        out = run.stdout
        # --no-serve: the API is stopped when the command ends, so no URL of it.
        assert "http://127.0.0.1" not in out and "/docs" not in out, out
        delivered = [ln for ln in out.splitlines() if ln.startswith("delivered on MQTT ")]
        assert delivered, out
        for line in delivered:  # whole: the JSON after the topic parses
            payload = json.loads(line.split(": ", 1)[1])
            assert payload["event"] in {"firing", "reminder", "resolved"}
        assert "written:   demo-data/reports/microville112/2026-01.en.pdf" in out
        verdict = [ln for ln in out.splitlines() if ln.startswith("verdict ")]
        assert len(verdict) == 1 and "positive energy " in verdict[0], out
        assert "% of the data)" in verdict[0]
        assert "Grafana:" in out
