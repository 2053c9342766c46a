"""What the `microville` commands say when something is wrong (issue #15, items 8b, 9,
10, 11): the option and the expected form, the file and the cause, the known sites, a
site or meter by its id, a missing folder rather than a new tree of them, a month
without data, and help texts that stay whole at 80 columns."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from conftest import SAMPLE_CONFIG
from helpers.services import free_port
from typer.testing import CliRunner

from cli.main import app as cli_app


def _invoke(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, args, env=env)
    # One line per message whatever the width: compare with the whitespace squeezed.
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture
def report_env(tmp_path: Path) -> dict[str, str]:
    return {
        "MICROVILLE_LEDGER_PATH": str(tmp_path / "ledger.db"),
        "MICROVILLE_REPORTS_DIR": str(tmp_path / "reports"),
        "MICROVILLE_STORE_URL": f"sqlite://{tmp_path}/readings.db",
    }


@pytest.mark.parametrize(
    "args, message",
    [
        (["--month", "2026-13"], "--month: no such month 2026-13 (expected YYYY-MM, e.g. 2026-10)"),
        (["--month", "10/2026"], "--month: '10/2026' is not a month (expected YYYY-MM, e.g."),
        (["--month", "2026-03", "--until", "2026-13"], "--until: no such month 2026-13 (expected"),
        (["--month", "2026-03", "--until", "2026-01"], "--until: 2026-01 is before --month"),
        (["--month", "2026-03", "--lang", "de"], "--lang: 'de' is not a language (expected fr or"),
    ],
)  # fmt: skip
def test_report_options_are_named_with_their_expected_form(
    report_env: dict[str, str], args: list[str], message: str
) -> None:
    # Was "invalid option no such month: 2026-13", "invalid option 2026-01 is before …".
    code, out = _invoke(
        ["report", "--site", "microville112", *args, "-c", str(SAMPLE_CONFIG)], report_env
    )
    assert code == 2, out
    assert message in out
    assert "invalid option" not in out


def test_an_unknown_site_lists_the_known_ones_as_the_api_does(
    report_env: dict[str, str], tmp_path: Path
) -> None:
    # Was "unknown site 'nope'"; the API answers "unknown site 'nope'; known: …".
    code, out = _invoke(
        ["report", "--site", "nope", "--month", "2026-03", "-c", str(SAMPLE_CONFIG)], report_env
    )
    assert code == 2, out
    assert "--site: unknown site 'nope'; known: microville112" in out
    eco2mix = tmp_path / "eco2mix.csv"
    eco2mix.write_text("date_heure;taux_co2\n2026-01-01T00:00:00+01:00;40\n")
    code, out = _invoke(
        ["import", "carbon-intensity", str(eco2mix), "--site", "nope", "-c", str(SAMPLE_CONFIG)],
        report_env,
    )
    assert code == 2, out
    assert "--site: unknown site 'nope'; known: microville112" in out


def test_simulate_names_the_site_option_and_the_known_sites() -> None:
    code, out = _invoke(["simulate", "--site", "nope", "-c", str(SAMPLE_CONFIG)])
    assert code == 2, out
    assert "--site: no site 'nope'; known: microville112" in out


def test_a_month_not_over_yet_says_when_it_can_be_reported(report_env: dict[str, str]) -> None:
    # Was "cannot report 2099-01 is not over yet in Europe/Paris: no report before it ends".
    code, out = _invoke(
        ["report", "--site", "microville112", "--month", "2099-01", "-c", str(SAMPLE_CONFIG)],
        report_env,
    )
    assert code == 2, out
    assert (
        "cannot report microville112 2099-01: the month is not over yet in Europe/Paris; "
        "it can be reported from 2099-02-01 00:00 (Europe/Paris)." in out
    )


@pytest.mark.parametrize("kind, cause", [("missing", "No such file or directory"),
                                         ("folder", "Is a directory")])  # fmt: skip
def test_check_config_on_a_file_it_cannot_read_names_the_file_and_the_cause(
    tmp_path: Path, kind: str, cause: str
) -> None:
    path = tmp_path / "sites.toml"
    if kind == "folder":
        path.mkdir()
    code, out = _invoke(["check-config", str(path)])
    # Was "invalid cannot read …/sites.toml: No such file or directory".
    assert code == 2, out
    assert out == f"cannot read the site configuration {path}: {cause}"


def test_a_command_whose_configuration_cannot_be_read_names_the_file_and_the_cause(
    tmp_path: Path, report_env: dict[str, str]
) -> None:
    path = tmp_path / "sites.toml"
    path.mkdir()
    code, out = _invoke(
        ["report", "--site", "s", "--month", "2026-03", "-c", str(path)], report_env
    )
    # Was "configuration error in cannot read …/sites.toml: Is a directory".
    assert code == 2, out
    assert out == f"cannot read the site configuration {path}: Is a directory"


def test_check_config_names_the_site_and_the_meter_by_their_ids(tmp_path: Path) -> None:
    text = SAMPLE_CONFIG.read_text(encoding="utf-8")
    text = text.replace("floor_area_m2 = 1200\n", "floor_area_m2 = 1200\ncolour = 1\n", 1)
    text = text.replace('role = "production"\nunit = "Wh"', 'role = "production"\nunit = "W"', 1)
    text = text.replace(', name = "urn:dev:mv112-linky:export" }', " }", 1)
    bad = tmp_path / "bad.toml"
    bad.write_text(text, encoding="utf-8")
    code, out = _invoke(["check-config", str(bad)])
    # Was "sites[0].colour: unknown key", "sites[0].meters[0]: role 'production' needs …".
    assert code == 2, out
    assert "site microville112, colour: unknown key" in out
    assert "site microville112, meter pv: role 'production' needs a cumulative index" in out
    assert "site microville112, meter grid-export, source: format 'senml' needs 'name'" in out
    assert "sites[0]" not in out


def _run_refused(
    args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "microville", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
        env={**os.environ, **env},
    )


@pytest.fixture
def runtime_env(tmp_path: Path) -> dict[str, str]:
    return {
        "MICROVILLE_CONFIG": str(SAMPLE_CONFIG),
        "MICROVILLE_STORE_URL": f"sqlite://{tmp_path}/readings.db",
        "MICROVILLE_LEDGER_PATH": str(tmp_path / "ledger.db"),
        "MICROVILLE_ALERTS_PATH": "",
        "MICROVILLE_REPORTS_DIR": "",
        "MICROVILLE_API_TOKENS_PATH": str(tmp_path / "api-tokens.db"),
        "MICROVILLE_BUFFER_PATH": str(tmp_path / "buffer.db"),
        "MICROVILLE_GATEWAY_METRICS_PORT": "0",
        "MICROVILLE_MQTT_URL": f"mqtt://127.0.0.1:{free_port()}",
    }


@pytest.mark.parametrize(
    "command, setting",
    [
        ("serve", "MICROVILLE_STORE_URL"),
        ("gateway", "MICROVILLE_STORE_URL"),
        ("gateway", "MICROVILLE_BUFFER_PATH"),
        ("serve", "MICROVILLE_LEDGER_PATH"),
    ],
)
def test_a_path_into_a_folder_that_does_not_exist_is_refused_not_created(
    tmp_path: Path, runtime_env: dict[str, str], command: str, setting: str
) -> None:
    # Was: the tree made silently, and a new empty database served or filled.
    missing = tmp_path / "nonexistent" / "dir"
    file = missing / "readings.db"
    env = {**runtime_env, setting: f"sqlite://{file}" if setting.endswith("URL") else str(file)}
    args = [command] + (["--port", str(free_port())] if command == "serve" else [])
    result = _run_refused(args, env, tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "Traceback" not in out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    assert f"folder {missing} does not exist: create it first (mkdir -p {missing})" in out
    assert not (tmp_path / "nonexistent").exists()


def test_report_refuses_a_ledger_in_a_folder_that_does_not_exist(
    tmp_path: Path, report_env: dict[str, str]
) -> None:
    missing = tmp_path / "nonexistent"
    env = {**report_env, "MICROVILLE_LEDGER_PATH": str(missing / "ledger.db")}
    code, out = _invoke(
        ["report", "--site", "microville112", "--month", "2026-03", "-c", str(SAMPLE_CONFIG)], env
    )
    assert code == 2, out
    assert f"folder {missing} does not exist: create it first (mkdir -p {missing})" in out
    assert not missing.exists()


def test_a_report_of_a_month_without_data_warns(report_env: dict[str, str]) -> None:
    # Was: the report made and its hash printed, as for any month, without a word.
    code, out = _invoke(
        ["report", "--site", "microville112", "--month", "2026-03", "--lang", "en",
         "-c", str(SAMPLE_CONFIG)],
        report_env,
    )  # fmt: skip
    assert code == 0, out
    assert (
        "warning: no data for microville112 in 2026-03 (no meter reading in the store for "
        'that month): the report says "no data"' in out
    )
    assert "2026-03 (en):" in out and "sha256" in out


def _commands(group: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    """Every command and group under ``group`` (typer's own click: duck-typed)."""
    found: list[tuple[list[str], Any]] = [(path, group)]
    ctx = typer.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None
        if hasattr(cmd, "list_commands"):
            found += _commands(cmd, [*path, name])
        else:
            found.append(([*path, name], cmd))
    return found


def _squeezed(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize(
    "path, command",
    _commands(typer.main.get_command(cli_app), []),
    ids=lambda v: " ".join(v) or "microville" if isinstance(v, list) else "",
)
def test_every_help_text_is_whole_at_80_columns(path: list[str], command: Any) -> None:
    """At 80 columns nothing is cut (no ellipsis) and every text is there, whole: the
    command's own help, each subcommand's first sentence, each option's help."""
    result = CliRunner().invoke(
        cli_app, [*path, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"}, terminal_width=80
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert max(len(line) for line in out.splitlines()) <= 80, out
    texts = [command.help or ""]
    texts += [p.help for p in command.params if getattr(p, "help", None)]
    if hasattr(command, "list_commands"):
        ctx = typer.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            first = (sub.help or "").split("\n\n")[0]
            texts.append(first.split(". ")[0])
    for text in texts:
        assert _squeezed(text) in _squeezed(out), (text, out)
    # An ellipsis only where a help text has one of its own.
    assert out.count("…") == sum(t.count("…") for t in texts), out
    assert "..." not in out.replace("[ARGS]...", ""), out
