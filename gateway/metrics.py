"""The gateway's Prometheus metrics, in a registry of its own (several gateways may
share a process, as in the tests), served on ``/metrics`` by ``serve()``."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from gateway.gateway import Gateway

PREFIX = "microville_gateway"

#: Counters a source may report through ``counters()``, exported per source as
#: ``microville_gateway_<name>_total{source}``; name → help.
SOURCE_COUNTERS: dict[str, str] = {
    "tic_frames_decoded": "TIC frames decoded with at least one valid group",
    "tic_groups_dropped": "TIC groups dropped (bad checksum, broken framing, bad field)",
    "tic_frames_lost": "TIC frames without a single valid group",
    "tic_frames_interrupted": "TIC frames cut by EOT",
    "tic_bytes_discarded": "Bytes outside any TIC frame, or of frames abandoned without ETX",
    "tic_unsynchronised_frames": "TIC frames from an unsynchronised meter clock "
    "(stored at the receive time)",
    "tic_identity_mismatches": "TIC frames from another meter than the expected one (not stored)",
    "modbus_polls": "Modbus read requests made",
    "modbus_timeouts": "Modbus attempts (retries included) that got no byte back",
    "modbus_crc_errors": "Modbus attempts that got bytes but no valid frame (bad CRC, garbled)",
    "modbus_exceptions": "Modbus exception responses (illegal address, device failure...)",
    "modbus_decode_errors": "Modbus values rejected (not implemented, NaN...)",
}


@runtime_checkable
class CountingSource(Protocol):
    """A source with counters of its own (line errors, lost frames…)."""

    name: str

    def counters(self) -> Mapping[str, int]: ...


@runtime_checkable
class IdentifiedSource(Protocol):
    """A source that knows the device it reads (a Linky's ADSC and PRM)."""

    name: str

    def info(self) -> Mapping[str, str]: ...


class _GatewayCollector(Collector):
    """Reads the gateway's own counters at scrape time: nothing to keep in step."""

    def __init__(self, gateway: Gateway) -> None:
        self._gw = gateway

    def collect(self) -> Iterator[Metric]:
        gw = self._gw
        received = CounterMetricFamily(
            f"{PREFIX}_messages_received",
            "MQTT messages, TIC frames and Modbus polls received (good or bad)",
            labels=["source"],
        )
        up = GaugeMetricFamily(
            f"{PREFIX}_source_up",
            "1 while the source is connected to its broker or device",
            labels=["source"],
        )
        for source in gw.sources:
            received.add_metric([source.name], source.received)
            up.add_metric([source.name], 1.0 if source.ready else 0.0)
        yield received
        yield up
        yield from self._source_counters()
        w = gw.writer
        yield CounterMetricFamily(
            f"{PREFIX}_readings_stored", "Readings written to the store", value=w.written
        )
        yield CounterMetricFamily(
            f"{PREFIX}_readings_buffered",
            "Readings put in the store-and-forward buffer while the store failed",
            value=w.buffered,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_readings_replayed",
            "Readings replayed from the buffer into the store",
            value=w.replayed,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_store_write_errors", "Failed store writes", value=w.write_errors
        )
        yield CounterMetricFamily(
            f"{PREFIX}_buffer_errors",
            "Failed buffer reads and writes (disk full, permissions), retried with backoff",
            value=w.buffer_errors,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_writer_internal_errors",
            "Unexpected errors caught in the batch writer thread, retried with backoff",
            value=w.internal_errors,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_writer_up",
            "1 while the batch writer thread runs (0: nothing is stored; the process exits)",
            value=1.0 if w.alive else 0.0,
        )
        rejected = CounterMetricFamily(
            f"{PREFIX}_rejected",
            "Messages, frame groups and readings rejected to the dead-letter log, by reason",
            labels=["reason"],
        )
        for reason, count in gw.dead_letters.counts_by_reason().items():
            rejected.add_metric([reason], count)
        yield rejected
        yield GaugeMetricFamily(
            f"{PREFIX}_backlog_readings",
            "Readings in memory, not yet in the store or the buffer",
            value=w.backlog,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_buffer_readings", "Readings waiting in the buffer", value=w.buffer_depth
        )
        capacity = gw.buffer.max_readings if gw.buffer is not None else 0
        yield GaugeMetricFamily(
            f"{PREFIX}_buffer_capacity_readings", "Readings the buffer can hold", value=capacity
        )
        age = GaugeMetricFamily(
            f"{PREFIX}_last_reading_age_seconds",
            "Seconds since the time of each meter's latest reading",
            labels=["site", "meter"],
        )
        now = gw.clock()
        for (site, meter), t in gw.last_readings().items():
            age.add_metric([site, meter], (now - t).total_seconds())
        yield age

    def _source_counters(self) -> Iterator[Metric]:
        families: dict[str, CounterMetricFamily] = {}
        meters = InfoMetricFamily(
            f"{PREFIX}_tic_meter",
            "Identity last seen on each TIC line (ADCO/ADSC as meter_id, PRM)",
            labels=["source"],
        )
        for source in self._gw.sources:
            if isinstance(source, CountingSource):
                for name, value in source.counters().items():
                    if name not in families:
                        families[name] = CounterMetricFamily(
                            f"{PREFIX}_{name}", SOURCE_COUNTERS.get(name, name), labels=["source"]
                        )
                    families[name].add_metric([source.name], value)
            if isinstance(source, IdentifiedSource) and (identity := source.info()):
                meters.add_metric([source.name], dict(identity))
        yield from families.values()
        yield meters


class GatewayMetrics:
    """Metrics of one gateway: a store-latency histogram plus everything the gateway
    already counts, collected at scrape time."""

    def __init__(self, gateway: Gateway) -> None:
        self.registry = CollectorRegistry()
        self.store_write_seconds = Histogram(
            f"{PREFIX}_store_write_seconds",
            "Duration of successful store writes (one batch)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.registry.register(_GatewayCollector(gateway))
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def observe_write(self, seconds: float) -> None:
        self.store_write_seconds.observe(seconds)

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` on ``host:port`` (0: any free port); return the port."""
        self._server, self._thread = start_http_server(port, host, registry=self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
