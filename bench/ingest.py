"""Ingestion rows: the machine's ceiling, the microville gateway and the peer pipeline on
the same backlog of QoS 1 messages, each drained into a fresh InfluxDB database."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench import workload as wl
from bench.consumers import gateway_drain, nodered_drain, peer_unavailable
from bench.drain import Drain
from bench.mqtt_load import ceiling_drain, forget_session, prepare_session, publish
from bench.results import Row, Status, failed
from bench.services import influx_count, influx_query
from gateway.sources.mqtt.source import session_client_id

SECTION = "ingestion"
TARGETS = {"single": ("≥ 30,000", 30_000.0), "senml": ("≥ 100,000", 100_000.0)}
LABEL = {"single": "single-reading messages", "senml": "SenML packs of 10"}
PEER_PER_MESSAGE = "mqtt in → function → influxdb out"
PEER_BATCHED = "mqtt in → function → join 1,000 → influxdb batch"


def _nodered_errors(log: Path) -> str:
    """The most frequent error Node-RED logged, e.g. sockets exhausted by one HTTP write per
    message: why the readings it had acknowledged to the broker are not in the store."""
    counts: dict[str, int] = {}
    try:
        for line in log.read_text(errors="replace").splitlines():
            if "[error]" in line:
                reason = line.split("] ", 2)[-1][:80]
                counts[reason] = counts.get(reason, 0) + 1
    except OSError:
        return ""
    if not counts:
        return ""
    reason, n = max(counts.items(), key=lambda kv: kv[1])
    return f"; Node-RED logged {sum(counts.values()):,} errors, e.g. {n:,}× {reason!r}"


def _fresh_db(influx_url: str, db: str) -> None:
    influx_query(influx_url, f'DROP DATABASE "{db}"', method="POST")
    influx_query(influx_url, f'CREATE DATABASE "{db}"', method="POST")


def _drop_db(influx_url: str, db: str) -> None:
    influx_query(influx_url, f'DROP DATABASE "{db}"', method="POST")


def bulk_write(influx_url: str, db: str, lines: list[str], batch: int = 5000) -> float:
    """InfluxDB's own rate: pre-formatted line protocol, ``batch`` lines per request, one
    client, as the gateway's batch writer sends them. Elapsed seconds."""
    bodies = ["\n".join(lines[i : i + batch]).encode() for i in range(0, len(lines), batch)]
    with httpx.Client(base_url=influx_url, timeout=120) as http:
        start = time.monotonic()
        for body in bodies:
            resp = http.post("/write", params={"db": db, "precision": "ms"}, content=body)
            if resp.status_code != 204:
                raise RuntimeError(f"InfluxDB write failed ({resp.status_code}): {resp.text}")
        return time.monotonic() - start


def _drain_row(name: str, kind: wl.Kind, drain: Drain, target: tuple[str, float] | None) -> Row:
    per_message = wl.CHANNELS if kind == "senml" else 1
    unit = "msg/s" if kind == "single" else "readings/s"
    amount = drain.expected if kind == "senml" else drain.expected // per_message
    rate = drain.per_s(amount)
    row = Row(SECTION, name, unit=unit, details=drain.details())
    if target:
        row.target = target[0]
    if rate is None:
        row.status = "failed"
        row.note = f"lost {drain.lost} of {drain.expected} readings" + (
            f"; {drain.note}" if drain.note else ""
        )
        return row
    row.value = round(rate, 1)
    row.note = "zero loss" if drain.lost == 0 else f"lost {drain.lost}"
    if target:
        row.meets_target = rate >= target[1] and drain.lost == 0
    return row


def run(
    work: Path,
    mqtt_port: int,
    influx_url: str,
    sizes: dict[str, int],
    with_peer: bool,
    stall_s: float,
    log: Callable[[str], None],
) -> tuple[list[Row], list[Row]]:
    """(ingestion rows, memory rows)."""
    rows: list[Row] = []
    memory: list[Row] = []
    topics = wl.topics()
    peer_reason = peer_unavailable() if with_peer else "skipped (--no-peer)"
    gateway_rss: list[float] = []
    for kind in ("single", "senml"):
        w = wl.workload(kind, sizes[f"{kind}_readings"])
        label = LABEL[kind]

        def backlog(client_id: str, w: wl.Workload = w) -> float:
            prepare_session(mqtt_port, client_id, topics)
            return publish(mqtt_port, w.messages)

        # Ceiling 1: the broker's delivery to a subscriber that only counts.
        log(f"ceiling: broker → paho subscriber, {label}")
        client = f"bench-ceiling-{kind}"
        try:
            publish_s = backlog(client)
            rows.append(
                Row(
                    SECTION,
                    f"publisher (paho, QoS 1) → broker, {label}",
                    value=round(len(w.messages) / publish_s, 1),
                    unit="msg/s",
                    note="backlog published while the consumer is away",
                    details={"messages": len(w.messages), "elapsed_s": round(publish_s, 3)},
                )
            )
            d = ceiling_drain(mqtt_port, client, len(w.messages), stall_s)
            d.expected, d.stored = (
                d.expected * w.readings // len(w.messages),
                d.stored * (w.readings // len(w.messages)),
            )
            rows.append(
                _drain_row(f"ceiling: broker → plain paho subscriber, {label}", kind, d, None)
            )
        except Exception as exc:
            rows.append(failed(SECTION, f"ceiling: broker → plain paho subscriber, {label}", exc))
        finally:
            forget_session(mqtt_port, client)

        # The gateway, as a real process.
        log(f"microville gateway → InfluxDB, {label}")
        db, client = f"bench_gateway_{kind}", f"bench-gateway-{kind}"
        name = f"microville gateway → InfluxDB, {label}"
        sessions = {session_client_id(client, t): [t] for t in topics}
        try:
            _fresh_db(influx_url, db)
            for session, subscribed in sessions.items():  # the gateway's own sessions
                prepare_session(mqtt_port, session, subscribed)
            publish(mqtt_port, w.messages)
            d = gateway_drain(work, mqtt_port, influx_url, db, client, w.readings, stall_s)
            d.messages = len(w.messages)
            rows.append(_drain_row(name, kind, d, TARGETS[kind]))
            if d.peak_rss_mib is not None:
                gateway_rss.append(d.peak_rss_mib)
        except Exception as exc:
            rows.append(failed(SECTION, name, exc, target=TARGETS[kind][0]))
        finally:
            for session in sessions:
                forget_session(mqtt_port, session)
            _drop_db(influx_url, db)

        # The peer pipeline, as a user builds it first, then with batched writes.
        for batched, variant in ((False, PEER_PER_MESSAGE), (True, PEER_BATCHED)):
            name = f"peer: Node-RED, {variant} → InfluxDB, {label}"
            if peer_reason:
                status: Status = "not available" if with_peer else "skipped"
                rows.append(Row(SECTION, name, status, note=peer_reason))
                continue
            log(name)
            suffix = f"{kind}_{'batched' if batched else 'each'}"
            db, client = f"bench_nodered_{suffix}", f"bench-nodered-{suffix}"
            try:
                _fresh_db(influx_url, db)
                backlog(client)
                d = nodered_drain(
                    work, mqtt_port, influx_url, db, client, w.readings, stall_s, batched
                )
                d.messages = len(w.messages)
                row = _drain_row(name, kind, d, None)
                if d.lost and not d.note:
                    row.note += _nodered_errors(work / f"nodered-{db}.log")
                rows.append(row)
                memory.append(
                    Row(
                        "memory",
                        f"Node-RED peak RSS, {variant}, {label}",
                        "ok" if d.peak_rss_mib else "failed",
                        d.peak_rss_mib,
                        "MiB",
                        note="" if d.peak_rss_mib else "not measured",
                    )
                )
            except Exception as exc:
                rows.append(failed(SECTION, name, exc))
            finally:
                forget_session(mqtt_port, client)
                _drop_db(influx_url, db)

    # Ceiling 2: InfluxDB's bulk write rate, the SenML workload's readings.
    log("ceiling: InfluxDB bulk line protocol")
    w = wl.workload("senml", sizes["senml_readings"])
    db = "bench_bulk"
    name = "ceiling: InfluxDB bulk line protocol (httpx, 5,000 lines per write)"
    try:
        _fresh_db(influx_url, db)
        lines = wl.line_protocol(w)
        elapsed = bulk_write(influx_url, db, lines)
        stored = influx_count(influx_url, db)
        rows.append(
            Row(
                SECTION,
                name,
                value=round(len(lines) / elapsed, 1),
                unit="readings/s",
                note="zero loss" if stored == len(lines) else f"lost {len(lines) - stored}",
                details={
                    "readings": len(lines),
                    "stored_readings": stored,
                    "elapsed_s": round(elapsed, 3),
                },
            )
        )
    except Exception as exc:
        rows.append(failed(SECTION, name, exc))
    finally:
        _drop_db(influx_url, db)

    peak = max(gateway_rss) if gateway_rss else None
    memory.insert(
        0,
        Row(
            "memory",
            "gateway peak RSS (VmHWM) while draining",
            "ok" if peak is not None else "failed",
            peak,
            "MiB",
            "< 150",
            None if peak is None else peak < 150,
            note="" if peak is not None else "not measured: no gateway drain finished",
            details={"per_run_mib": gateway_rss},
        ),
    )
    return rows, memory
