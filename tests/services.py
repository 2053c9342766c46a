"""Real services for the tests: a Mosquitto and an InfluxDB 1.x of their own, on free
loopback ports, with their own data directories; stopped at the end of the session."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PROJECT_MOSQUITTO_CONF = ROOT / "deploy" / "mosquitto" / "mosquitto.conf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        raise RuntimeError(f"{name} is not installed: run .ci/run or see README 'Set up'")
    return found


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout_s}s: {log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def mosquitto_test_config(port: int, data_dir: Path) -> str:
    """The project's broker settings, with a loopback test listener and no auth."""
    keep = []
    for line in PROJECT_MOSQUITTO_CONF.read_text().splitlines():
        key = line.split(maxsplit=1)[0] if line.strip() else ""
        if key in (
            "listener",
            "allow_anonymous",
            "password_file",
            "persistence_location",
            "log_dest",
        ):
            continue
        keep.append(line)
    keep += [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        f"persistence_location {data_dir}/",
        "log_dest stderr",
    ]
    return "\n".join(keep) + "\n"


@contextmanager
def running_mosquitto(work: Path) -> Iterator[int]:
    """Start a Mosquitto with the project's config; yield its port."""
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    conf = work / "mosquitto.conf"
    conf.write_text(mosquitto_test_config(port, work))
    log = work / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([_binary("mosquitto"), "-c", str(conf)], stdout=out, stderr=out)
    try:
        _wait_port(port, proc, log)
        yield port
    finally:
        _stop(proc)


@contextmanager
def running_influxdb(work: Path) -> Iterator[str]:
    """Start an InfluxDB 1.x with its own config, data dir and port; yield its URL."""
    http_port, rpc_port = free_port(), free_port()
    work.mkdir(parents=True, exist_ok=True)
    conf = work / "influxdb.conf"
    conf.write_text(f"""\
reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{work}/meta"
[data]
  dir = "{work}/data"
  wal-dir = "{work}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
[continuous_queries]
  enabled = false
""")
    log = work / "influxd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [_binary("influxd"), "run", "-config", str(conf)], stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{http_port}"
    try:
        _wait_port(http_port, proc, log)
        deadline = time.monotonic() + 20
        while httpx.get(f"{url}/ping").status_code != 204:
            if time.monotonic() > deadline:
                raise RuntimeError("InfluxDB does not answer /ping")
            time.sleep(0.1)
        yield url
    finally:
        _stop(proc)
