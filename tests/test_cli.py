"""The `microville` command as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
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


def _demo_rows(stdout: str) -> dict[str, tuple[float, float]]:
    """{figure: (API value, ground truth)} from the demo's table."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 3 and cells[0].endswith("_kwh") and cells[2]:
            rows[cells[0]] = (float(cells[1].replace(",", "")), float(cells[2].replace(",", "")))
    return rows


@pytest.mark.parametrize(
    "config, figures",
    [
        ("microville112", ["production_kwh", "import_kwh", "export_kwh", "consumption_kwh"]),
        # Linky in standard mode on a TIC pty, SunSpec inverter on a Modbus RTU pty.
        ("microville112-serial", ["production_kwh", "import_kwh", "export_kwh"]),
    ],
)
def test_demo_runs_the_whole_chain_on_embedded_defaults(
    tmp_path: Path, config: str, figures: list[str]
) -> None:
    result = _run(
        "demo",
        "--config",
        config,
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
    rows = _demo_rows(result.stdout)
    for figure in figures:
        api, truth = rows[figure]
        # The table shows one decimal: the API's figure and the truth print the same.
        assert api == truth and truth > 0, (figure, api, truth)
