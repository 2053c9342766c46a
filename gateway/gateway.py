"""The gateway: every configured source, one batch writer, one dead-letter log."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from microville.domain.readings import Reading
from microville.domain.site import MqttSource, SitesConfig, TicSource
from microville.domain.store import ReadingStore
from microville.gateway.batcher import BatchWriter
from microville.gateway.deadletter import DeadLetter, DeadLetterLog
from microville.gateway.sources import SOURCE_FACTORIES, Source, SourceOptions

# Importing the source modules registers their factories.
from microville.gateway import mqtt_source as _mqtt  # noqa: F401  isort: skip
from microville.gateway import modbus_source as _modbus  # noqa: F401  isort: skip
from microville.gateway import tic_source as _tic  # noqa: F401  isort: skip

log = logging.getLogger(__name__)


def build_sources(config: SitesConfig, options: SourceOptions) -> list[Source]:
    """Every source the configuration needs, from the registered factories."""
    return [source for factory in SOURCE_FACTORIES.values() for source in factory(config, options)]


class Gateway:
    """Runs the sources and is their sink: readings to the batch writer, rejects to the
    dead-letter log.

    Lifecycle: ``start()`` once (returns at once), ``stop()`` once (stops the sources,
    then writes what is pending).
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
    ) -> None:
        self.dead_letters = dead_letters or DeadLetterLog()
        self.writer = BatchWriter(store, max_size=batch_size, max_delay_s=batch_delay_s)
        self.sources = (
            sources if sources is not None else build_sources(config, options or SourceOptions())
        )
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

    def stop(self) -> None:
        for source in self.sources:
            source.stop()
        self.writer.stop()

    def accept(self, readings: Sequence[Reading]) -> None:
        self.writer.add(readings)

    def reject(self, origin: str, reason: str, payload: bytes) -> None:
        self.dead_letters.add(DeadLetter(datetime.now(UTC), origin, reason, payload))
        # A cumulative count per site and kind of source, stored beside the readings so
        # that the data-quality dashboard shows what was refused.
        kind = origin.split(":", 1)[0] if origin.startswith(("tic:", "modbus:")) else "mqtt"
        now = datetime.now(UTC)
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
