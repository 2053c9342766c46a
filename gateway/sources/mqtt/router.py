"""Bind decoded values to configured meters: topic → meters → readings."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from domain.reading_checks import ReadingRefused, checked_reading
from domain.readings import Reading
from domain.site import Meter, MqttSource, SitesConfig
from gateway.sources.decoded import DecodedValue
from gateway.sources.mqtt.decoders import DECODERS, DecodeError


@dataclass(frozen=True)
class Binding:
    site: str
    meter: Meter
    source: MqttSource


@dataclass
class Routed:
    """What one message gave: readings to store and reasons for what was rejected."""

    readings: list[Reading] = field(default_factory=list)
    rejects: list[str] = field(default_factory=list)


class Router:
    """Turns (topic, payload) into readings for the meters configured on that topic.

    A meter whose value is missing or invalid is rejected with a reason while the
    other meters of the same message are still stored; each value goes through
    :func:`~domain.reading_checks.checked_reading`, the check of every source.
    """

    def __init__(self, config: SitesConfig) -> None:
        self._bindings: dict[str, list[Binding]] = defaultdict(list)
        for site in config.sites:
            for meter in site.meters:
                if isinstance(meter.source, MqttSource):
                    binding = Binding(site.id, meter, meter.source)
                    self._bindings[meter.source.topic].append(binding)

    @property
    def topics(self) -> list[str]:
        return sorted(self._bindings)

    def route(
        self, topic: str, payload: bytes, received_at: datetime, now: datetime | None = None
    ) -> Routed:
        """``now``: the gateway's clock that device times are checked against
        (default ``received_at``)."""
        out = Routed()
        bindings = self._bindings.get(topic)
        if not bindings:
            out.rejects.append(f"unknown topic {topic!r}")
            return out
        source = bindings[0].source  # one format per topic, checked by the config
        # Decoded values by time field, then by key; a SenML pack may hold several
        # records of one name at different times, and each is a reading.
        decoded: dict[str | None, dict[str | None, list[DecodedValue]]] = {}
        for time_field in {b.source.time_field for b in bindings}:
            try:
                values = DECODERS[source.format](payload, received_at, time_field)
            except DecodeError as exc:
                out.rejects.append(f"{source.format} payload on {topic!r}: {exc}")
                return out
            by_key = decoded.setdefault(time_field, defaultdict(list))
            for v in values:
                by_key[v.key].append(v)
        for b in bindings:
            src = b.source
            key = src.name if src.format == "senml" else src.field
            found = decoded[src.time_field].get(key)
            if not found:
                what = f"record {key!r}" if src.format == "senml" else f"field {key!r}"
                out.rejects.append(f"meter {b.site}/{b.meter.id}: {what} missing or not numeric")
                continue
            for value in found:
                self._bind(b, value, out, received_at if now is None else now)
        return out

    @staticmethod
    def _bind(b: Binding, found: DecodedValue, out: Routed, now: datetime) -> None:
        if found.unit == "":
            # An empty SenML unit is not "no unit" (RFC 8428 §4.5.2: omit u for that):
            # reading it in the meter's unit could change its meaning.
            out.rejects.append(
                f'meter {b.site}/{b.meter.id}: empty unit (u or bu is ""), which is not a'
                " unit; omit it to mean the meter's configured unit"
            )
            return
        try:
            reading = checked_reading(b.site, b.meter, found.value, found.unit, found.time, now)
        except ReadingRefused as exc:
            out.rejects.append(str(exc))
            return
        out.readings.append(reading)
