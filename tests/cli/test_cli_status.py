"""`microville status`: the real command against real services, and its pure parts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import SAMPLE_CONFIG
from helpers.services import free_port

from cli.status import (
    ApiFacts,
    BrokerFacts,
    ConfigFacts,
    Level,
    Row,
    StatusFacts,
    StoreFacts,
    api_rows,
    config_rows,
    exit_code,
    format_row,
    reading_rows,
    report_rows,
    settings_rows,
)
from domain.readings import Reading
from domain.site import read_sites
from microville.settings import Settings
from stores.sqlite import SqliteStore

SITES = read_sites(SAMPLE_CONFIG)
SITE = SITES.sites[0]
#: The sample's meters the tests give readings; the last one stays silent.
HEARD = [m.id for m in SITE.meters[:-1]]
NEVER = SITE.meters[-1].id
PREFIX = 15  # "level topic    " before a row's text


def _status(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "microville", "status", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,  # no .env but the test's
        env={**os.environ, "COLUMNS": "80", **env},
    )


def _rows(stdout: str) -> list[str]:
    """The printed rows, each with its continuation lines joined back."""
    rows: list[str] = []
    for line in stdout.splitlines():
        if line.startswith(" " * PREFIX) and rows:
            rows[-1] += " " + line.strip()
        else:
            rows.append(line)
    return rows


def _of(rows: list[str], level: str, topic: str) -> list[str]:
    return [r for r in rows if r.split()[:2] == [level, topic]]


@pytest.fixture
def env(tmp_path: Path, mosquitto_url: str, now: datetime) -> dict[str, str]:
    """Settings naming real services: a SQLite store holding readings of every sample
    meter but the last, the tests' Mosquitto; no API on the configured port."""
    store = SqliteStore(tmp_path / "readings.db")
    store.write(
        [
            Reading(SITE.id, m.id, m.dimension, 1000.0 + k, now - timedelta(minutes=10 * k))
            for m in SITE.meters
            if m.id in HEARD
            for k in range(3)
        ]
    )
    store.close()
    return {
        "MICROVILLE_CONFIG": str(SAMPLE_CONFIG),
        "MICROVILLE_STORE_URL": "sqlite://readings.db",  # relative: short lines
        "MICROVILLE_MQTT_URL": mosquitto_url,
        "MICROVILLE_API_PORT": str(free_port()),
        "MICROVILLE_BUFFER_PATH": str(tmp_path / "state" / "buffer.db"),
    }


def test_everything_reachable_exits_0_with_each_meters_last_reading(
    tmp_path: Path, env: dict[str, str], now: datetime
) -> None:
    result = _status(tmp_path, **env)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "Traceback" not in out
    rows = _rows(result.stdout)
    assert all(r.split()[0] in ("ok", "warn", "error") for r in rows), out
    assert not [r for r in rows if r.startswith("error")], out
    assert _of(rows, "ok", "config")[0].endswith("valid: 1 site: microville112 (4 meters)")
    (store,) = _of(rows, "ok", "store")
    assert "sqlite://readings.db reachable" in store and "on disk" in store and "WAL" in store
    (broker,) = _of(rows, "ok", "broker")
    assert env["MICROVILLE_MQTT_URL"] in broker and "accepts anonymous clients" in broker
    # The newest reading of each meter, in the site's time; its age (and so ok or warn)
    # depends on the machine's clock, not asserted.
    newest = f"{now.astimezone(SITE.tz):%Y-%m-%d %H:%M %Z}"
    meters = [r for r in rows if r.split()[1] == "meter"]
    for meter in HEARD:
        assert any(f"{SITE.id}/{meter}: {newest}," in r for r in meters), out
    assert any(r.startswith("warn") and f"{SITE.id}/{NEVER}: never reported" in r for r in rows)
    # No API on the configured port: a warning, not an error.
    (api,) = _of(rows, "warn", "api")
    assert f"GET http://127.0.0.1:{env['MICROVILLE_API_PORT']}/health" in api
    assert "nothing answers" in api
    assert _of(rows, "ok", "summary")
    assert all(len(line) <= 80 for line in result.stdout.splitlines()), result.stdout


def test_an_unreachable_broker_is_named_with_its_cause_and_exits_1(
    tmp_path: Path, env: dict[str, str]
) -> None:
    url = f"mqtt://gateway:s3cret-password@127.0.0.1:{free_port()}"  # nothing listens
    result = _status(tmp_path, "--mqtt", url, **env)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out
    (broker,) = _of(_rows(result.stdout), "error", "broker")
    assert url.replace("s3cret-password", "***") in broker
    assert "unreachable" in broker and "refused" in broker.lower()
    assert "s3cret-password" not in out
    assert _of(_rows(result.stdout), "error", "summary")


@pytest.mark.parametrize(
    ("where", "cause"),
    [
        ("missing/readings.db", "folder missing does not exist"),
        ("file/readings.db", "file is not a folder"),
    ],
)
def test_a_store_path_that_cannot_be_a_store_is_one_error_and_exits_1(
    tmp_path: Path, env: dict[str, str], where: str, cause: str
) -> None:
    (tmp_path / "file").write_text("not a folder")
    result = _status(tmp_path, "--store", f"sqlite://{where}", **env)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out
    rows = _rows(result.stdout)
    (store,) = [r for r in rows if r.split()[1] == "store"]
    assert store.startswith("error") and f"sqlite://{where}: {cause}" in store
    assert not (tmp_path / "missing").exists()  # a status check creates nothing
    # The other services are still checked.
    assert _of(rows, "ok", "broker")


def test_a_running_api_answers_ok(tmp_path: Path, env: dict[str, str]) -> None:
    serve = subprocess.Popen(
        [sys.executable, "-m", "microville", "serve"],
        cwd=tmp_path,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{env['MICROVILLE_API_PORT']}/health"
    try:
        _wait_for(url, serve)
        result = _status(tmp_path, **env)
    finally:
        serve.terminate()
        serve.wait(10)
    assert result.returncode == 0, result.stdout + result.stderr
    (api,) = _of(_rows(result.stdout), "ok", "api")
    assert f"GET {url}: 200 ok" in api


def _wait_for(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "microville serve exited"
        try:
            httpx.get(url, timeout=1, trust_env=False)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answers {url}")


def test_a_bad_setting_is_named_and_exits_1(tmp_path: Path, env: dict[str, str]) -> None:
    result = _status(tmp_path, **{**env, "MICROVILLE_API_PORT": "abc"})
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "setting error MICROVILLE_API_PORT" in out and "Traceback" not in out


def test_the_help_documents_the_exit_code(tmp_path: Path) -> None:
    result = _status(tmp_path, "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "Exit code: 0 when everything needed is reachable" in text
    assert "1 when something is down or misconfigured" in text


# ---------------------------------------------------------------- pure parts


@pytest.fixture
def seen(now: datetime) -> Iterator[dict[str, datetime | None]]:
    yield {m: now - timedelta(minutes=5) for m in HEARD} | {NEVER: None}


def test_reading_rows_say_ok_silent_never_and_ahead(
    now: datetime, seen: dict[str, datetime | None]
) -> None:
    silent_for = timedelta(seconds=SITE.alerts.silent_after_s) + timedelta(minutes=1)
    seen[HEARD[1]] = now - silent_for
    seen[HEARD[2]] = now + timedelta(hours=2)
    rows = {r.text.split(":")[0].split("/")[1]: r for r in reading_rows(SITE, seen, now)}
    assert rows[HEARD[0]].level is Level.OK
    assert rows[HEARD[0]].text.endswith(", 5 min ago")
    assert rows[HEARD[1]].level is Level.WARN and "silent for longer than" in rows[HEARD[1]].text
    assert rows[HEARD[2]].level is Level.WARN
    assert "2 h 00 min ahead of this machine's clock" in rows[HEARD[2]].text
    assert rows[NEVER].level is Level.WARN and rows[NEVER].text.endswith("never reported")


def test_rows_fit_80_columns_wrapped_between_words_long_urls_kept_whole() -> None:
    text = "word " * 40 + "sqlite:///a/very/long/path/" + "x" * 70 + ".db end"
    lines = format_row(Row(Level.ERROR, "store", text))
    assert lines[0].startswith("error store    word")
    assert all(line.startswith(" " * PREFIX) for line in lines[1:])
    long_url = [line for line in lines if "sqlite:" in line]
    assert len(long_url) == 1 and long_url[0].strip().startswith("sqlite:")
    assert all(len(line) <= 80 for line in lines if line not in long_url)
    assert " ".join(line.strip() for line in lines).split() == ["error", "store", *text.split()]


def test_a_figure_is_not_wrapped_away_from_its_unit() -> None:
    text = "x" * 58 + " 28.7 kB, [Errno 111] refused"
    lines = format_row(Row(Level.OK, "store", text), width=80)
    assert [line.strip() for line in lines[1:]] == ["28.7 kB, [Errno 111] refused"]


def _facts(**changes: object) -> StatusFacts:
    base: dict[str, object] = {
        "settings": Settings(reports_dir="reports"),
        "config": ConfigFacts("sites.toml", sites=SITES),
        "store": StoreFacts("sqlite://r.db", sizes=(4096, 0)),
        "broker": BrokerFacts("mqtt://127.0.0.1:1883", None, "ok"),
        "api": ApiFacts("http://127.0.0.1:8000/health", 200, {"status": "ok"}),
    }
    return StatusFacts(**{**base, **changes})  # type: ignore[arg-type]


def test_exit_code_is_1_on_an_error_only(now: datetime) -> None:
    ok = report_rows(_facts(), now)
    assert exit_code(ok) == 0 and ok[-1].level is Level.OK
    down = report_rows(_facts(api=ApiFacts("http://x/health", error="refused")), now)
    assert exit_code(down) == 0 and any(r.level is Level.WARN for r in down)
    broker = BrokerFacts("mqtt://h:1", "gw", "refused: Not authorized")
    rows = report_rows(_facts(broker=broker), now)
    assert exit_code(rows) == 1 and rows[-1].level is Level.ERROR
    assert Row(Level.ERROR, "broker", "mqtt://h:1 (account 'gw') refused: Not authorized") in rows


def test_config_rows_name_the_first_problem_and_the_fallback() -> None:
    error = "sites.toml:\nsites.0.id: bad id\nsites.0.name: Field required"
    (row,) = config_rows(ConfigFacts("sites.toml", error=error))
    assert row == Row(
        Level.ERROR,
        "config",
        "sites.toml invalid: sites.0.id: bad id (+1 more: microville check-config)",
    )
    fallback, ok = config_rows(ConfigFacts("sample.toml", sites=SITES, instead_of="/x/s.toml"))
    assert fallback.level is Level.WARN and fallback.text.startswith("/x/s.toml not found")
    assert ok.level is Level.OK


def test_api_rows_report_a_degraded_service() -> None:
    body: dict[str, object] = {"status": "degraded", "store": "ok", "broker": "unreachable"}
    (row,) = api_rows(ApiFacts("http://h/health", 503, body))
    assert row == Row(
        Level.WARN, "api", "GET http://h/health: 503 degraded (store ok, broker unreachable)"
    )


def test_settings_rows_refuse_placeholders_and_weak_tokens() -> None:
    settings = Settings(
        mqtt_url="mqtt://gw:change-me-mqtt@h:1883",
        api_read_token="short",
        reports_dir="",
    )
    rows = settings_rows(settings, {"MICROVILLE_LEDGER_PATH": "/srv/file"})
    texts = [(r.level, r.text.split(" ")[0]) for r in rows]
    assert (Level.ERROR, "the") in texts  # the password in MICROVILLE_MQTT_URL
    assert (Level.ERROR, "MICROVILLE_API_READ_TOKEN") in texts
    assert (Level.ERROR, "MICROVILLE_LEDGER_PATH:") in texts
    assert (Level.WARN, "MICROVILLE_REPORTS_DIR") in texts
    assert settings_rows(Settings(reports_dir="r"), {})[0].level is Level.OK
