"""The `microville` command as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import SAMPLE_CONFIG
from helpers.services import free_port


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
    assert "site s, timezone: unknown IANA timezone 'Europe/Pariss'" in result.stdout
    assert "site s, colour: unknown key" in result.stdout


def test_check_config_on_a_file_that_is_not_utf8_says_so(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('[[sites]]\nid = "s"\nname = "Fabrique de Sèvres"\n'.encode("latin-1"))
    result = _run("check-config", str(latin1))
    # Was a UnicodeDecodeError traceback, rc 1.
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "not UTF-8 text: byte 0xe8 at line 3" in " ".join(result.stdout.split())


def test_check_config_names_the_line_and_column_of_a_toml_syntax_error(tmp_path: Path) -> None:
    bad = tmp_path / "syntax.toml"
    bad.write_text('[[sites]]\nid = "s"\nname = = "S"\n')
    result = _run("check-config", str(bad))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "not valid TOML" in result.stdout and "(at line 3, column 8)" in result.stdout


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
    # --no-serve: no URL of the API it stopped, the period's verdicts instead.
    assert "/api/v1/sites/microville112/balance" not in result.stdout
    assert "verdict 2026-06-01 → 2026-06-04: positive energy" in result.stdout
    # The scenario: the inverter fails for the last 7 days, the 7-day balance turns negative,
    # the alert fires and reaches the MQTT channel.
    assert "alert firing: Microville 112: the final-energy balance over rolling 7d" in result.stdout
    assert "delivered on MQTT microville/alerts/microville112/balance_rolling_7d" in result.stdout
    # It leaves the simulated month's report, in both languages, PDF and HTML.
    for name in ("2026-06.fr.pdf", "2026-06.fr.html", "2026-06.en.pdf", "2026-06.en.html"):
        path = tmp_path / "reports" / "microville112" / name
        assert path.stat().st_size > 1000 and str(path) in result.stdout, name
    assert (tmp_path / "reports" / "microville112" / "2026-06.en.pdf").read_bytes()[:5] == b"%PDF-"
    rows = _demo_rows(result.stdout)
    for figure in figures:
        api, truth = rows[figure]
        # The table shows one decimal: the API's figure and the truth print the same.
        assert api == truth and truth > 0, (figure, api, truth)


def test_import_commands_load_intensity_and_materials(tmp_path: Path) -> None:
    import os

    from stores.ledger import SqliteLedger
    from stores.sqlite import SqliteStore

    eco2mix = tmp_path / "eco2mix.csv"
    eco2mix.write_text(
        "date_heure;taux_co2\n2026-01-01T00:00:00+01:00;40\n2026-01-01T00:15:00+01:00;44\n"
    )
    db = tmp_path / "readings.db"
    ledger_path = tmp_path / "ledger.db"
    env = {**os.environ, "MICROVILLE_LEDGER_PATH": str(ledger_path)}
    ok = subprocess.run(
        [sys.executable, "-m", "microville", "import", "carbon-intensity", str(eco2mix),
         "--site", "microville112", "-c", str(SAMPLE_CONFIG), "--store", f"sqlite:///{db}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "imported 2 carbon-intensity values" in ok.stdout
    store = SqliteStore(db)
    start = datetime(2025, 12, 31, 23, tzinfo=UTC)
    means = store.hourly_means("microville112", "grid-carbon-intensity", "carbon_intensity",
                               start, start + timedelta(hours=1))  # fmt: skip
    store.close()
    assert means == [(start, pytest.approx(0.042))]  # (40 + 44) / 2 g/kWh in kg/kWh

    materials = SAMPLE_CONFIG.parent / "microville112-materials.csv"
    done = subprocess.run(
        [sys.executable, "-m", "microville", "import", "materials", str(materials),
         "--site", "microville112", "-c", str(SAMPLE_CONFIG)],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    ledger = SqliteLedger(ledger_path)
    assert len(ledger.materials("microville112")) == 7
    ledger.close()

    bad = tmp_path / "bad.csv"
    bad.write_text("date_heure;taux_co2\nyesterday;40\n")
    refused = _run("import", "carbon-intensity", str(bad), "--site", "microville112",
                   "-c", str(SAMPLE_CONFIG), "--store", f"sqlite:///{db}")  # fmt: skip
    assert refused.returncode == 2 and "line 2" in refused.stdout


def test_demo_reports_without_pango_write_the_html_and_say_how_to_get_pdfs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    from rich.console import Console

    from cli.demo import _monthly_reports
    from domain.periods import localize
    from domain.site import read_sites
    from stores.ledger import SqliteLedger
    from stores.sqlite import SqliteStore

    real_import = builtins.__import__

    def no_pango(name: str, *args: object, **kwargs: object) -> object:
        if name == "weasyprint":  # what WeasyPrint raises on a machine without Pango
            raise OSError("cannot load library 'libpango-1.0-0': No such file")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.delitem(sys.modules, "weasyprint", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_pango)
    sites = read_sites(SAMPLE_CONFIG)
    tz = sites.sites[0].tz
    store, ledger = SqliteStore(tmp_path / "r.db"), SqliteLedger(tmp_path / "ledger.db")
    console = Console(record=True, width=200)
    try:
        paths = _monthly_reports(
            console, sites, store, ledger, None,  # type: ignore[arg-type]
            tmp_path / "reports", localize(datetime(2026, 6, 1), tz),
            localize(datetime(2026, 7, 1), tz),
        )  # fmt: skip
    finally:
        store.close()
        ledger.close()
    out = " ".join(console.export_text().split())
    assert "PDF reports skipped" in out and "libpango-1.0-0" in out
    assert "apt-get install libpango-1.0-0 libpangoft2-1.0-0" in out
    # June in French and English, HTML only.
    assert sorted(p.name for p in paths) == ["2026-06.en.html", "2026-06.fr.html"]
    assert all(p.is_file() and "<html" in p.read_text(encoding="utf-8") for p in paths)


def test_simulate_start_may_be_days_before_today(now: datetime) -> None:
    """The compose demo simulates the last 30 days (``--start today-30``), so that the
    dashboards' default ranges show them; anything else that is not a date is refused."""
    from datetime import date

    import typer

    from cli.main import _parse_start

    today = now.date()
    assert _parse_start("today-30", today) == today - timedelta(days=30)
    assert _parse_start("today-0", date(2026, 3, 1)) == date(2026, 3, 1)
    assert _parse_start("today-1", date(2026, 3, 1)) == date(2026, 2, 28)
    assert _parse_start("2026-06-01", today) == date(2026, 6, 1)
    for bad in ("today+3", "today-", "yesterday", "2026-13-01"):
        with pytest.raises(typer.Exit):
            _parse_start(bad, today)


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("MICROVILLE_API_PORT", "abc", "setting error MICROVILLE_API_PORT: Input should be"),
        ("MICROVILLE_API_READ_TOKEN", "change-me-api-read-token", "not a placeholder"),
    ],
)
def test_a_bad_runtime_setting_is_named_without_a_traceback(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    import os

    result = subprocess.run(
        [sys.executable, "-m", "microville", "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env={**os.environ, variable: value},
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("command", ["gateway", "serve"])
@pytest.mark.parametrize(
    ("where", "cause"),
    [
        ("file/sub/readings.db", "is not a folder"),  # a typo'd path through a file
        ("/proc/readings.db", "unable to open database file"),  # a read-only place
    ],
)
def test_a_store_that_cannot_be_opened_is_one_line_not_a_traceback(
    tmp_path: Path, command: str, where: str, cause: str
) -> None:
    import os

    (tmp_path / "file").write_text("not a folder")
    path = where if where.startswith("/") else str(tmp_path / where)
    args = [command] + (["--port", str(free_port())] if command == "serve" else [])
    result = subprocess.run(
        [sys.executable, "-m", "microville", *args, "--store", f"sqlite://{path}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "MICROVILLE_CONFIG": str(SAMPLE_CONFIG)},
    )
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert f"cannot start the {'gateway' if command == 'gateway' else 'service'}:" in out
    assert cause in out and "Traceback" not in out
