"""Secrets stay out of logs, messages and reprs: MQTT password, InfluxDB password and
token, API tokens. They come from the environment (or .env), never from the repository."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLE_CONFIG
from helpers.services import free_port
from helpers.support import wait_until

from microville.settings import Settings, redact_url
from stores import open_store

MQTT_PASSWORD = "mqtt-Secret-4f1c"
INFLUX_PASSWORD = "influx-Secret-9a2e"
INFLUX_TOKEN = "influx-Token-77d0"
API_TOKEN = "api-read-token-" + "x" * 32


def test_settings_never_show_their_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROVILLE_MQTT_PASSWORD", MQTT_PASSWORD)
    monkeypatch.setenv("MICROVILLE_INFLUX_TOKEN", INFLUX_TOKEN)
    monkeypatch.setenv("MICROVILLE_API_READ_TOKEN", API_TOKEN)
    settings = Settings()
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    for secret in (MQTT_PASSWORD, INFLUX_TOKEN, API_TOKEN):
        assert secret not in shown
    assert settings.mqtt_password is not None
    assert settings.mqtt_password.get_secret_value() == MQTT_PASSWORD


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"influxdb://gw:{INFLUX_PASSWORD}@influxdb:8086/db", "influxdb://gw:***@influxdb:8086/db"),
        (f"mqtt://dev:{MQTT_PASSWORD}@broker", "mqtt://dev:***@broker"),
        ("sqlite:///var/lib/microville/readings.db", "sqlite:///var/lib/microville/readings.db"),
        ("mqtt://dev@broker:1883", "mqtt://dev@broker:1883"),
    ],
)
def test_urls_are_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_bad_store_url_is_reported_without_its_password() -> None:
    with pytest.raises(ValueError) as caught:
        open_store(f"influxdb://gw:{INFLUX_PASSWORD}@influxdb:8086/")
    assert "needs host and database" in str(caught.value)
    assert INFLUX_PASSWORD not in str(caught.value)


def test_the_gateway_logs_no_secret(tmp_path: Path, mosquitto_url: str) -> None:
    """A real gateway, verbose, with credentials for the broker and the store: its whole
    log names the store and the broker, and holds none of the secrets."""
    log = tmp_path / "gateway.log"
    env = {
        **os.environ,
        "MICROVILLE_MQTT_USERNAME": "gateway",
        "MICROVILLE_MQTT_PASSWORD": MQTT_PASSWORD,
        "MICROVILLE_INFLUX_TOKEN": INFLUX_TOKEN,
        "MICROVILLE_BUFFER_PATH": str(tmp_path / "buffer.db"),
        "MICROVILLE_GATEWAY_METRICS_PORT": "0",
    }
    store = f"influxdb://gw:{INFLUX_PASSWORD}@127.0.0.1:{free_port()}/db"
    with log.open("wb") as out:
        command = ["gateway", "-v", "-c", str(SAMPLE_CONFIG), "--store", store]
        proc = subprocess.Popen(
            [sys.executable, "-m", "microville", *command, "--mqtt", mosquitto_url],
            cwd=tmp_path,  # no stray .env
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            assert wait_until(lambda: b"gateway running" in log.read_bytes(), 60), log.read_text(
                errors="replace"
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    text = log.read_text(errors="replace")
    assert "gw:***@127.0.0.1" in text  # the store is named, its password masked
    for secret in (MQTT_PASSWORD, INFLUX_PASSWORD, INFLUX_TOKEN):
        assert secret not in text


def test_no_secret_is_committed() -> None:
    """No private key, no .env, and no credential-looking assignment with a value other
    than a placeholder or a ${…} reference in the files git tracks."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert ".env" not in tracked
    assignment = re.compile(
        r"^\s*[A-Z_]*(PASSWORD|TOKEN|SECRET)[A-Z_]*\s*[=:]\s*['\"]?([^'\"\s#]+)", re.MULTILINE
    )
    for name in tracked:
        path = ROOT / name
        if path.suffix in {".png", ".pdf", ".db"} or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        assert "PRIVATE" + " KEY-----" not in text, name  # split: this file is scanned too
        if name.endswith((".env.example", ".yml", ".yaml", ".conf", ".sh", "Dockerfile")):
            for match in assignment.finditer(text):
                value = match[2]
                assert value.startswith(("change-me", "${", "$")), f"{name}: {match[0]!r}"
