"""The gateway: every configured source, one batch writer, one dead-letter log."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime

from domain.readings import Reading
from domain.site import MqttSource, SitesConfig, TicSource
from domain.store import ReadingStore
from gateway.batcher import BatchWriter, OnSafe
from gateway.buffer import ReadingBuffer
from gateway.deadletter import DeadLetter, DeadLetterLog
from gateway.metrics import GatewayMetrics
from gateway.sources.registry import SOURCE_FACTORIES, Source, SourceOptions

# Importing the source modules registers their factories.
from gateway.sources.mqtt import source as _mqtt  # noqa: F401  isort: skip
from gateway.sources.modbus import source as _modbus  # noqa: F401  isort: skip
from gateway.sources.tic import source as _tic  # noqa: F401  isort: skip

log = logging.getLogger(__name__)


def build_sources(config: SitesConfig, options: SourceOptions) -> list[Source]:
    """Every source the configuration needs, from the registered factories."""
    return [source for factory in SOURCE_FACTORIES.values() for source in factory(config, options)]


class Gateway:
    """Runs the sources and is their sink: readings to the batch writer (store, or the
    store-and-forward ``buffer`` while the store fails), rejects to the dead-letter log.

    Lifecycle: ``start()`` once (returns at once), optionally ``serve_metrics()``,
    ``stop()`` once (stops the sources, then saves what is pending to the store or the
    buffer).
    """

    def __init__(
        self,
        config: SitesConfig,
        store: ReadingStore,
        options: SourceOptions | None = None,
        dead_letters: DeadLetterLog | None = None,
        batch_size: int = 5000,
        batch_delay_s: float = 1.0,
        sources: list[Source] | None = None,
        buffer: ReadingBuffer | None = None,
        max_backoff_s: float = 10.0,
    ) -> None:
        options = options or SourceOptions()
        #: Stamps dead letters and the reject counts (receive time, as on readings).
        self.clock = options.clock
        self.dead_letters = dead_letters or DeadLetterLog()
        self.buffer = buffer
        self.metrics = GatewayMetrics(self)
        #: Set if the writer thread ever ends before ``stop()``: the process must exit.
        self.failed = threading.Event()
        self.writer = BatchWriter(
            store,
            max_size=batch_size,
            max_delay_s=batch_delay_s,
            max_backoff_s=max_backoff_s,
            buffer=buffer,
            on_refused=self._refused_by_store,
            on_write=self.metrics.observe_write,
            on_death=self.failed.set,
        )
        self._last: dict[tuple[str, str], datetime] = {}
        self._last_lock = threading.Lock()
        self.sources = sources if sources is not None else build_sources(config, options)
        self._rejected: dict[tuple[str, str], int] = {}
        self._count_lock = threading.Lock()
        self._sites_by_origin: dict[str, list[str]] = {}
        for site in config.sites:
            for meter in site.meters:
                src = meter.source
                if isinstance(src, MqttSource):
                    origin = src.topic
                elif isinstance(src, TicSource):
                    origin = f"tic:{src.port}"
                else:
                    origin = f"modbus:{src.line}"
                sites = self._sites_by_origin.setdefault(origin, [])
                if site.id not in sites:
                    sites.append(site.id)

    def source(self, name: str) -> Source:
        return next(s for s in self.sources if s.name == name)

    @property
    def ready(self) -> bool:
        return all(s.ready for s in self.sources)

    @property
    def received(self) -> int:
        return sum(s.received for s in self.sources)

    def wait_ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self.ready:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def start(self) -> None:
        self.writer.start()
        for source in self.sources:
            source.start(self)
        log.info("gateway started: %s", ", ".join(s.name for s in self.sources) or "no source")

    def serve_metrics(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve Prometheus ``/metrics`` until ``stop()``; return the port."""
        return self.metrics.serve(host, port)

    def stop(self) -> None:
        for source in self.sources:
            source.stop()
        self.writer.stop()
        if self.buffer is not None:
            self.buffer.close()
        self.metrics.close()

    def last_readings(self) -> dict[tuple[str, str], datetime]:
        """Time of the latest reading accepted per (site, meter)."""
        with self._last_lock:
            return dict(self._last)

    def accept(self, readings: Sequence[Reading], on_safe: OnSafe | None = None) -> None:
        with self._last_lock:
            for r in readings:
                key = (r.site, r.meter)
                last = self._last.get(key)
                if last is None or r.time > last:
                    self._last[key] = r.time
        self.writer.add(readings, on_safe)

    def _refused_by_store(self, reading: Reading, reason: str) -> None:
        payload = json.dumps(
            {
                "site": reading.site,
                "meter": reading.meter,
                "quantity": reading.quantity,
                "value": reading.value,
                "time": reading.time.isoformat(),
            }
        )
        self.dead_letters.add(
            DeadLetter(self.clock(), "store", f"refused by the store: {reason}", payload.encode())
        )

    def reject(self, origin: str, reason: str, payload: bytes) -> None:
        now = self.clock()
        self.dead_letters.add(DeadLetter(now, origin, reason, payload))
        # A cumulative count per site and kind of source, stored beside the readings so
        # that the data-quality dashboard shows what was refused.
        kind = origin.split(":", 1)[0] if origin.startswith(("tic:", "modbus:")) else "mqtt"
        counts = []
        with self._count_lock:
            for site in self._sites_of(origin):
                key = (site, kind)
                self._rejected[key] = self._rejected.get(key, 0) + 1
                counts.append(Reading(site, kind, "dead_letters", float(self._rejected[key]), now))
        if counts:
            self.writer.add(counts)

    def _sites_of(self, origin: str) -> list[str]:
        """The sites whose meters read from ``origin`` (a topic, ``tic:port``,
        ``modbus:line …``)."""
        if origin in self._sites_by_origin:
            return self._sites_by_origin[origin]
        return sorted(
            {site for prefix, sites in self._sites_by_origin.items()
             if prefix.startswith(("tic:", "modbus:")) and origin.startswith(prefix)
             for site in sites}
        )  # fmt: skip
