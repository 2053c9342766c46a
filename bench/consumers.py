"""The consumers whose drain is timed: the microville gateway as a real process, and the
peer pipeline, Node-RED with its MQTT-in and InfluxDB-out nodes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench import workload as wl
from bench.drain import Drain, wait_for_count
from bench.procs import LogWatcher, peak_rss_mib
from bench.services import free_port, influx_count, stop

#: Where the peer pipeline is installed (package.json and lock committed; `npm ci`).
PEER_DIR = Path(__file__).resolve().parent / "peer"


def _timed_drain(
    proc: subprocess.Popen[bytes],
    watcher: LogWatcher,
    influx_url: str,
    db: str,
    expected: int,
    stall_s: float,
) -> Drain:
    drain = Drain(expected=expected)
    try:
        if not watcher.wait(120):
            drain.note = f"never connected: {watcher.tail()[-300:]}"
            return drain
        stored, done_at = wait_for_count(lambda: influx_count(influx_url, db), expected, stall_s)
        drain.stored = stored
        if done_at is not None and watcher.seen_at is not None:
            drain.elapsed_s = done_at - watcher.seen_at
        drain.peak_rss_mib = peak_rss_mib(proc.pid)
        if proc.poll() is not None:
            drain.note = f"exited with {proc.returncode}: {watcher.tail()[-300:]}"
    finally:
        stop(proc)
    return drain


def gateway_drain(
    work: Path,
    mqtt_port: int,
    influx_url: str,
    db: str,
    client_id: str,
    expected: int,
    stall_s: float,
) -> Drain:
    """Run ``microville gateway`` on the bench site until its session's backlog is stored."""
    work.mkdir(parents=True, exist_ok=True)
    config = work / "bench-site.toml"
    config.write_text(wl.site_toml())
    host = influx_url.removeprefix("http://")
    env = {
        **os.environ,
        "MICROVILLE_GATEWAY_CLIENT_ID": client_id,
        # Its store-and-forward buffer in the bench's own folder, not /var/lib/microville.
        "MICROVILLE_BUFFER_PATH": str(work / f"gateway-buffer-{db}.db"),
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "microville",
            "gateway",
            "-c",
            str(config),
            "--store",
            f"influxdb://{host}/{db}",
            "--mqtt",
            f"mqtt://127.0.0.1:{mqtt_port}",
        ],
        env=env,
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    watcher = LogWatcher(proc, work / f"gateway-{db}.log", "connected to MQTT")
    return _timed_drain(proc, watcher, influx_url, db, expected, stall_s)


def peer_unavailable() -> str | None:
    """Why Node-RED cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed (Node.js ≥ 18)"
    if not (PEER_DIR / "node_modules" / "node-red" / "red.js").exists():
        return f"Node-RED is not installed: run `npm ci` in {PEER_DIR}"
    if not (PEER_DIR / "node_modules" / "node-red-contrib-influxdb").exists():
        return f"node-red-contrib-influxdb is not installed: run `npm ci` in {PEER_DIR}"
    return None


#: The user's function node: SenML (base name, time) to InfluxDB points, as
#: influxdb out takes them ([fields, tags] pairs) or as influxdb batch does (objects).
_SENML_TO_POINTS = """
const meters = METERS;
let bn = "", bt = 0;
const points = [];
for (const r of msg.payload) {
  if (r.bn !== undefined) bn = r.bn;
  if (r.bt !== undefined) bt = r.bt;
  if (r.v === undefined) continue;
  const meter = meters[bn + (r.n || "")];
  if (meter === undefined) continue;
  const ms = Math.round((bt + (r.t || 0)) * 1000);
  points.push(BATCHED
    ? { measurement: "energy", fields: { value: r.v }, tags: { meter: meter, site: SITE },
        timestamp: ms }
    : [{ value: r.v, time: ms }, { meter: meter, site: SITE }]);
}
if (points.length === 0) return null;
msg.payload = points;
return msg;
"""

#: Messages a join node gathers before one batch write (or after 1 s).
JOIN_MESSAGES = 1000


def nodered_flow(
    mqtt_port: int, influx_url: str, db: str, client_id: str, batched: bool
) -> list[dict[str, object]]:
    """mqtt in (QoS 1, persistent session) → function (SenML) → influxdb out, one write per
    message; or, ``batched``, → join (1,000 messages or 1 s) → influxdb batch."""
    host, port = influx_url.removeprefix("http://").split(":")
    meters = {name: meter_id for meter_id, _, name in wl.meters()}
    code = (
        _SENML_TO_POINTS.replace("METERS", json.dumps(meters))
        .replace("SITE", json.dumps(wl.SITE))
        .replace("BATCHED", json.dumps(batched))
    )
    flow: list[dict[str, object]] = [
        {"id": "mv-tab", "type": "tab", "label": "bench"},
        {"id": "mv-broker", "type": "mqtt-broker", "name": "bench broker", "broker": "127.0.0.1",
         "port": str(mqtt_port), "clientid": client_id, "autoConnect": True, "usetls": False,
         "protocolVersion": "4", "keepalive": "60", "cleansession": False},
        {"id": "mv-influx", "type": "influxdb", "hostname": host, "port": port, "protocol": "http",
         "database": db, "name": "bench", "usetls": False, "influxdbVersion": "1.x"},
        {"id": "mv-in", "type": "mqtt in", "z": "mv-tab", "name": "", "topic": "bench/#",
         "qos": "1", "datatype": "json", "broker": "mv-broker", "nl": False, "rap": True,
         "inputs": 0, "wires": [["mv-fn"]]},
        {"id": "mv-fn", "type": "function", "z": "mv-tab", "name": "SenML to points", "func": code,
         "outputs": 1, "wires": [["mv-join" if batched else "mv-out"]]},
    ]  # fmt: skip
    if batched:
        flow += [
            {"id": "mv-join", "type": "join", "z": "mv-tab", "name": "", "mode": "custom",
             "build": "array", "property": "payload", "propertyType": "msg", "key": "topic",
             "joiner": "\\n", "joinerType": "str", "accumulate": False, "timeout": "1",
             "count": str(JOIN_MESSAGES), "useparts": False, "wires": [["mv-flat"]]},
            {"id": "mv-flat", "type": "function", "z": "mv-tab", "name": "flatten",
             "func": "msg.payload = msg.payload.flat();\nreturn msg;", "outputs": 1,
             "wires": [["mv-out"]]},
            {"id": "mv-out", "type": "influxdb batch", "z": "mv-tab", "influxdb": "mv-influx",
             "name": "", "precision": "ms", "retentionPolicy": "", "wires": []},
        ]  # fmt: skip
    else:
        flow.append(
            {"id": "mv-out", "type": "influxdb out", "z": "mv-tab", "influxdb": "mv-influx",
             "name": "", "measurement": "energy", "precision": "ms", "retentionPolicy": "",
             "wires": []}
        )  # fmt: skip
    return flow


def nodered_drain(
    work: Path,
    mqtt_port: int,
    influx_url: str,
    db: str,
    client_id: str,
    expected: int,
    stall_s: float,
    batched: bool,
) -> Drain:
    """Run Node-RED with the bench flow until its session's backlog is stored."""
    user_dir = work / f"nodered-{db}"
    shutil.rmtree(user_dir, ignore_errors=True)
    user_dir.mkdir(parents=True)
    (user_dir / "flows.json").write_text(
        json.dumps(nodered_flow(mqtt_port, influx_url, db, client_id, batched), indent=1)
    )
    (user_dir / "settings.js").write_text(f"""\
module.exports = {{
  uiHost: "127.0.0.1",
  uiPort: {free_port()},
  flowFile: "flows.json",
  credentialSecret: false,
  httpAdminRoot: false,
  httpNodeRoot: false,
  logging: {{ console: {{ level: "info", metrics: false, audit: false }} }},
}};
""")
    proc = subprocess.Popen(
        [
            "node",
            str(PEER_DIR / "node_modules" / "node-red" / "red.js"),
            "--userDir",
            str(user_dir),
            "--settings",
            str(user_dir / "settings.js"),
        ],
        cwd=user_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    watcher = LogWatcher(proc, work / f"nodered-{db}.log", "Connected to broker")
    started = time.monotonic()
    drain = _timed_drain(proc, watcher, influx_url, db, expected, stall_s)
    drain.extra["startup_s"] = (
        None if watcher.seen_at is None else round(watcher.seen_at - started, 2)
    )
    return drain
