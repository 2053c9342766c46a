"""Real processes for the fault and fuzz tests: a restartable InfluxDB, `microville
gateway` in a subprocess (its /metrics read back), a QoS 1 publisher that counts what
the broker acknowledged, and the count of what was stored."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from domain.store import ReadingStore
from helpers.services import _binary, _stop, _wait_port, free_port, influxdb_config
from helpers.support import SITE_S1, wait_until
from microville.mqtt import MqttSettings, make_client

T0 = datetime(2026, 10, 1, tzinfo=UTC)
METERS = ("a", "b")
MQTT_CONFIG = SITE_S1 + "".join(
    f"""
[[sites.meters]]
id = "{m}"
role = "submeter"
use = "other"
source = {{ topic = "fault/{m}", format = "senml", name = "energy" }}
"""
    for m in METERS
)


class Influx:
    """An InfluxDB 1.x that can be stopped and started again on the same port and data."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.port, self._rpc = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        work.mkdir(parents=True, exist_ok=True)
        (work / "influxdb.conf").write_text(influxdb_config(work, self.port, self._rpc))

    def start(self) -> None:
        log = self.work / "influxd.log"
        with log.open("ab") as out:
            self._proc = subprocess.Popen(
                [_binary("influxd"), "run", "-config", str(self.work / "influxdb.conf")],
                stdout=out,
                stderr=out,
            )
        _wait_port(self.port, self._proc, log)
        assert wait_until(lambda: httpx.get(f"{self.url}/ping").status_code == 204, 20)

    def stop(self) -> None:
        if self._proc is not None:
            _stop(self._proc)
            self._proc = None


GATEWAY_COMMAND = (sys.executable, "-m", "microville", "gateway", "-c", "sites.toml")


class GatewayProcess:
    """`microville gateway` in a subprocess, with its own buffer, dead letters and
    metrics port; the same files and MQTT client id across restarts."""

    def __init__(
        self,
        work: Path,
        config: str,
        store_url: str,
        mqtt_url: str | None,
        buffer_path: Path | None = None,
        wrapper: tuple[str, ...] = (),
    ) -> None:
        """``wrapper`` runs before the command and ``exec``s it (same pid), e.g. to give
        the gateway a mount namespace of its own."""
        self.work = work
        self.buffer_path = buffer_path or work / "buffer.db"
        self.wrapper = wrapper
        work.mkdir(parents=True, exist_ok=True)
        (work / "sites.toml").write_text(config)
        self.metrics_port = free_port()
        self.store_url = store_url
        self.mqtt_url = mqtt_url or "mqtt://127.0.0.1:1"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        env = {
            **os.environ,
            "MICROVILLE_BUFFER_PATH": str(self.buffer_path),
            "MICROVILLE_DEAD_LETTER_FILE": str(self.work / "dead-letters.jsonl"),
            "MICROVILLE_GATEWAY_METRICS_PORT": str(self.metrics_port),
            "MICROVILLE_GATEWAY_CLIENT_ID": f"gw-{self.work.name}",
        }
        self.starts += 1
        with (self.work / f"gateway-{self.starts}.log").open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    *self.wrapper,
                    *GATEWAY_COMMAND,
                    "--store",
                    self.store_url,
                    "--mqtt",
                    self.mqtt_url,
                ],
                cwd=self.work,  # no stray .env
                env=env,
                stdout=out,
                stderr=out,
            )

    def log(self) -> str:
        return (self.work / f"gateway-{self.starts}.log").read_text()[-3000:]

    def metrics(self) -> dict[str, float]:
        """Samples by name with their labels, e.g. ``source_up{source="mqtt"}``; {} if down."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return {}
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                name = s.name.removeprefix("microville_gateway_")
                out[f"{name}{{{labels}}}" if labels else name] = s.value
        return out

    def wait_source_up(self, source: str, up: bool = True, timeout_s: float = 30) -> None:
        key = f'source_up{{source="{source}"}}'
        ok = wait_until(lambda: self.metrics().get(key) == (1.0 if up else 0.0), timeout_s)
        assert ok, f"{source} not {'up' if up else 'down'}: {self.log()}"

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM: the graceful shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"gateway did not stop on SIGTERM: {self.log()}") from None


# --- publishing and counting ----------------------------------------------------------


def message(i: int) -> tuple[str, bytes]:
    """Message ``i``: meter a or b, a reading at T0 + i minutes, index 10·i Wh."""
    t = (T0 + timedelta(minutes=i)).timestamp()
    return f"fault/{METERS[i % 2]}", json.dumps([{"n": "energy", "t": t, "v": 10 * i}]).encode()


class Publisher:
    """A device publishing with QoS 1 and retrying until the broker acknowledges (so a
    broker restart may make it send a message twice, as real devices do)."""

    def __init__(self, url: str) -> None:
        settings = MqttSettings(url=url, reconnect_min_s=1, reconnect_max_s=1)
        self.client = make_client(
            settings, client_id=f"pub-{uuid.uuid4().hex[:8]}", persistent=False
        )
        self.client.connect_async(settings.host, settings.port, keepalive=5)
        self.client.loop_start()
        self.sent: set[int] = set()  # indexes of messages the broker acknowledged

    def publish(self, i: int, topic: str, payload: bytes) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.client.is_connected():
                info = self.client.publish(topic, payload, qos=1)
                with contextlib.suppress(RuntimeError, ValueError):  # disconnected: again
                    info.wait_for_publish(3)
                if info.is_published():
                    self.sent.add(i)
                    return
            time.sleep(0.05)
        raise AssertionError(f"message {i} never acknowledged by the broker")

    def publish_range(self, indexes: range, pace_s: float = 0.0) -> None:
        for i in indexes:
            self.publish(i, *message(i))
            if pace_s:
                time.sleep(pace_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def stored(store: ReadingStore, last: int) -> dict[int, float]:
    """{message index: stored value} for every reading stored, from one-minute slots."""
    out: dict[int, float] = {}
    series = store.index_slots(
        "s1", list(METERS), "energy", T0 - timedelta(minutes=1), T0 + timedelta(minutes=last + 1),
        timedelta(minutes=1),
    )  # fmt: skip
    for meter_series in series.values():
        for slot in meter_series.slots:
            i = round((slot.end - T0) / timedelta(minutes=1))
            assert slot.count == 1, f"message {i} stored {slot.count} times"
            out[i] = slot.last_value
    return out


def assert_all_stored(store: ReadingStore, sent: set[int], gw: GatewayProcess) -> None:
    last = max(sent)
    done = wait_until(lambda: len(stored(store, last)) >= len(sent), 60)
    got = stored(store, last)
    assert done, f"{len(got)} of {len(sent)} stored; missing {sorted(sent - set(got))[:20]}"
    assert set(got) == sent
    assert all(got[i] == 10 * i for i in sent)
