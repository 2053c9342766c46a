"""A Mosquitto and an InfluxDB 1.x of the bench's own (own config, data dir, loopback
port), adapted from tests/helpers/services.py: the broker queues QoS 1 messages without
limit so that a backlog of a million readings is kept whole for a subscriber that is away."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/usr/local/bin")
    if found is None:
        raise RuntimeError(f"{name} is not installed: see README 'Set up' (.ci/run installs it)")
    return found


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 30) -> None:
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


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def mosquitto_config(port: int, data_dir: Path) -> str:
    return f"""\
listener {port} 127.0.0.1
allow_anonymous true
# Sessions live in memory for the run; nothing to restore afterwards.
persistence false
persistence_location {data_dir}/
# A subscriber away while the backlog is published must get every QoS 1 message:
# no count or byte limit on its queue, none on messages in flight.
max_queued_messages 0
max_queued_bytes 0
max_inflight_messages 0
persistent_client_expiration 1d
log_dest stderr
log_type error
log_type warning
log_type notice
user {getpass.getuser()}
"""


@contextmanager
def running_mosquitto(work: Path) -> Iterator[int]:
    """Start a private Mosquitto; yield its port."""
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    conf = work / "mosquitto.conf"
    conf.write_text(mosquitto_config(port, work))
    log = work / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary("mosquitto"), "-c", str(conf)], stdout=out, stderr=out)
    try:
        wait_port(port, proc, log)
        yield port
    finally:
        stop(proc)


def influxdb_config(
    work: Path, http_port: int, rpc_port: int, bulk: bool = False, max_row_limit: int = 0
) -> str:
    """An InfluxDB 1.x configuration under ``work`` on loopback ports; ``bulk`` lifts the
    series and body-size limits for loading a year of data in large writes;
    ``max_row_limit`` caps the rows of a non-chunked answer (0, 1.x's default: no cap)."""
    limits = "  max-series-per-database = 0\n" if bulk else ""
    body = "  max-body-size = 0\n" if bulk else ""
    body += f"  max-row-limit = {max_row_limit}\n"
    return f"""\
reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{work}/meta"
[data]
  dir = "{work}/data"
  wal-dir = "{work}/wal"
  query-log-enabled = false
{limits}[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
{body}[continuous_queries]
  enabled = false
"""


@contextmanager
def running_influxdb(work: Path) -> Iterator[str]:
    """Start an InfluxDB 1.x with its own config, data dir and port; yield its URL.

    The data dir survives the run so that the year of query data is loaded once.
    """
    http_port, rpc_port = free_port(), free_port()
    work.mkdir(parents=True, exist_ok=True)
    conf = work / "influxdb.conf"
    conf.write_text(influxdb_config(work, http_port, rpc_port, bulk=True))
    log = work / "influxd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary("influxd"), "run", "-config", str(conf)], stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{http_port}"
    try:
        wait_port(http_port, proc, log, timeout_s=120)
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/ping").status_code != 204:
            if time.monotonic() > deadline:
                raise RuntimeError("InfluxDB does not answer /ping")
            time.sleep(0.1)
        yield url
    finally:
        stop(proc)


def influx_query(
    url: str, q: str, db: str | None = None, method: str = "GET"
) -> list[dict[str, object]]:
    params = {"q": q, **({"db": db} if db else {})}
    resp = httpx.request(method, f"{url}/query", params=params, timeout=300)
    resp.raise_for_status()
    results: list[dict[str, object]] = resp.json().get("results", [])
    for r in results:
        if "error" in r:
            raise RuntimeError(f"InfluxDB: {r['error']}")
    return results


def influx_count(url: str, db: str, measurement: str = "energy") -> int:
    (result,) = influx_query(url, f'SELECT count("value") FROM "{measurement}"', db)
    series = result.get("series")
    if not isinstance(series, list) or not series:
        return 0
    return int(series[0]["values"][0][1])
