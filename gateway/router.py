"""Bind decoded values to configured meters: topic → meters → readings."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from microville.domain.readings import Reading
from microville.domain.site import Meter, SitesConfig
from microville.domain.units import UnitError, to_base
from microville.gateway.decoders import DECODERS, DecodeError


@dataclass(frozen=True)
class Binding:
    site: str
    meter: Meter


@dataclass
class Routed:
    """What one message gave: readings to store and reasons for what was rejected."""

    readings: list[Reading] = field(default_factory=list)
    rejects: list[str] = field(default_factory=list)


class Router:
    """Turns (topic, payload) into readings for the meters configured on that topic.

    A meter whose value is missing or invalid is rejected with a reason while the
    other meters of the same message are still stored.
    """

    def __init__(self, config: SitesConfig) -> None:
        self._bindings: dict[str, list[Binding]] = defaultdict(list)
        for site in config.sites:
            for meter in site.meters:
                self._bindings[meter.source.topic].append(Binding(site.id, meter))

    @property
    def topics(self) -> list[str]:
        return sorted(self._bindings)

    def route(self, topic: str, payload: bytes, received_at: datetime) -> Routed:
        out = Routed()
        bindings = self._bindings.get(topic)
        if not bindings:
            out.rejects.append(f"unknown topic {topic!r}")
            return out
        source = bindings[0].meter.source  # one format per topic, checked by the config
        time_fields = {b.meter.source.time_field for b in bindings}
        values_by_time_field = {}
        for time_field in time_fields:
            try:
                values = DECODERS[source.format](payload, received_at, time_field)
            except DecodeError as exc:
                out.rejects.append(f"{source.format} payload on {topic!r}: {exc}")
                return out
            values_by_time_field[time_field] = {v.key: v for v in values}
        for b in bindings:
            src = b.meter.source
            key = src.name if src.format == "senml" else src.field
            found = values_by_time_field[src.time_field].get(key)
            if found is None:
                what = f"record {key!r}" if src.format == "senml" else f"field {key!r}"
                out.rejects.append(f"meter {b.site}/{b.meter.id}: {what} missing or not numeric")
                continue
            try:
                value = to_base(found.value, found.unit or b.meter.unit, b.meter.dimension)
            except UnitError as exc:
                out.rejects.append(f"meter {b.site}/{b.meter.id}: {exc}")
                continue
            if value < 0:
                out.rejects.append(f"meter {b.site}/{b.meter.id}: negative index {found.value}")
                continue
            out.readings.append(Reading(b.site, b.meter.id, b.meter.dimension, value, found.time))
        return out
