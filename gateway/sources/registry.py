"""The source plugin interface and its registry.

A *source* turns a way in (an MQTT subscription, a TIC serial line, a Modbus bus) into
readings. Sources are built from the site configuration by the factory registered
under their source ``type``; the gateway starts them all and gives each the same sink.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from domain.readings import Reading
from domain.site import SitesConfig
from microville.mqtt import MqttSettings


class Sink(Protocol):
    """Where sources deliver. Both methods are thread-safe and never raise."""

    def accept(
        self, readings: Sequence[Reading], on_safe: Callable[[], None] | None = None
    ) -> None:
        """Queue readings for storage; ``on_safe`` is called (from another thread) once
        they, and everything accepted or rejected before, are in the store or the
        on-disk buffer — when a source may acknowledge them (MQTT PUBACK)."""

    def reject(self, origin: str, reason: str, payload: bytes) -> None:
        """Record what could not be turned into readings (dead letter), with why."""


class Source(Protocol):
    """Lifecycle contract:

    - ``start(sink)`` is called once; it returns at once and the source runs in its own
      thread(s), delivering to ``sink`` until ``stop()``.
    - A source never dies on bad input or a lost device: it rejects the input to the
      sink, or reconnects with backoff (logging once per outage, not per retry).
    - ``ready`` is set while the source is connected to its device or broker and able
      to receive; ``stop()`` is called once and returns when the threads are done.
    """

    #: Unique among the gateway's sources, e.g. ``mqtt``, ``tic:/dev/ttyUSB0``.
    name: str

    @property
    def received(self) -> int:
        """Messages, frames or polls received so far (good or bad)."""

    @property
    def ready(self) -> bool: ...

    def start(self, sink: Sink) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class SourceOptions:
    """Runtime settings that are not in the site file (they differ per deployment)."""

    mqtt: MqttSettings = field(default_factory=MqttSettings)
    mqtt_client_id: str = "microville-gateway"
    #: Time stamped on readings whose device gives none (receive time). A simulation
    #: running an accelerated clock passes its own.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    #: The present that device times are checked against (a time more than
    #: ``reading_checks.MAX_AHEAD`` ahead of it is refused); ``None``: ``clock``. The demo,
    #: whose MQTT devices publish ahead of its accelerated ``clock``, passes the wall clock.
    now: Callable[[], datetime] | None = None

    @property
    def present(self) -> Callable[[], datetime]:
        """The clock device times are checked against: ``now``, else ``clock``."""
        return self.now or self.clock


SourceFactory = Callable[[SitesConfig, SourceOptions], list[Source]]

#: Source factories by source ``type`` of the configuration; each builds the sources
#: for every meter of that type (one per broker, serial line or bus).
SOURCE_FACTORIES: dict[str, SourceFactory] = {}


def register_source(source_type: str) -> Callable[[SourceFactory], SourceFactory]:
    def add(factory: SourceFactory) -> SourceFactory:
        SOURCE_FACTORIES[source_type] = factory
        return factory

    return add
