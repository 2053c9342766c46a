"""The `microville` command as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import SAMPLE_CONFIG
from services import free_port


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "microville", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_check_config_accepts_the_sample() -> None:
    result = _run("check-config", str(SAMPLE_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok site microville112" in result.stdout


def test_check_config_names_each_bad_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[sites]]\nid = "s"\nname = "S"\ntimezone = "Europe/Pariss"\nfloor_area_m2 = 10\n'
        "location = { lat = 47, lon = 0 }\ncolour = 1\n"
    )
    result = _run("check-config", str(bad))
    assert result.returncode == 2
    assert "sites[0].timezone: unknown IANA timezone 'Europe/Pariss'" in result.stdout
    assert "sites[0].colour: unknown key" in result.stdout


def test_demo_runs_the_whole_chain_on_embedded_defaults(tmp_path: Path) -> None:
    result = _run(
        "demo",
        "--days",
        "3",
        "--no-serve",
        "--data-dir",
        str(tmp_path),
        "--port",
        str(free_port()),
        "--broker-port",
        str(free_port()),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 rejected" in result.stdout
    assert "/api/v1/sites/microville112/balance" in result.stdout
    # The API's figures and the simulator's ground truth, side by side, agree.
    rows = [line for line in result.stdout.splitlines() if "production_kwh" in line]
    (row,) = rows
    api, truth = [cell.strip() for cell in row.strip("│ ").split("│")[1:3]]
    assert api == truth and float(api.replace(",", "")) > 0
