"""``microville rollup verify`` and ``rebuild`` on both stores (issue #17): exact after
writes, the differing slot named with exit code 1, repaired by a rebuild."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from cli.main import app as cli_app
from domain.readings import Reading
from domain.store import ReadingStore

T0 = datetime(2026, 10, 5, tzinfo=UTC)


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, ["rollup", *args])
    return result.exit_code, " ".join(result.output.split())


def test_verify_says_exact_then_names_a_changed_slot_and_rebuild_repairs_it(
    store: ReadingStore, store_url: str
) -> None:
    store.write(
        [
            Reading("s1", "in", "energy", 100.0 * i, T0 + i * timedelta(minutes=15))
            for i in range(1, 2 * 96 + 1)
        ]
    )
    store.close()  # InfluxDB: rolls up what it wrote
    code, out = _run("verify", "--store", store_url)
    assert code == 0 and "rollups exact" in out, out
    if store_url.startswith("sqlite"):
        path = store_url.removeprefix("sqlite://")
        with sqlite3.connect(path) as db:
            db.execute("UPDATE daily SET last_value = 1 WHERE day = ?", (T0.timestamp() // 86400,))
        code, out = _run("verify", "--store", store_url, "--since", "2026-10-05")
        assert code == 1 and "site s1 energy/in day 2026-10-05T00:00:00+00:00" in out, out
        assert "1 rollup slots differ" in out
    code, out = _run("rebuild", "--store", store_url)
    assert code == 0 and "rolled up 2 days" in out, out
    assert _run("verify", "--store", store_url)[0] == 0


def test_an_unknown_site_is_named() -> None:
    code, out = _run("verify", "--site", "nowhere", "--store", "sqlite:///tmp/none.db")
    assert code == 2 and "nowhere" in out, out
