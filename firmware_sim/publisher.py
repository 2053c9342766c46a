"""Publish simulated buildings over MQTT and return the ground truth to check against."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from paho.mqtt.client import Client, MQTTMessageInfo
from rich.progress import Progress

from domain.site import Meter, MqttSource, Site
from firmware_sim.building import ground_truth, simulate_building, site_seed
from firmware_sim.payloads import (
    carries_device_time,
    encode_payload,
    is_simulated,
    meter_indexes,
)
from microville.mqtt import MqttSettings, make_client

log = logging.getLogger(__name__)

#: Seconds to wait for the broker to accept the connection, then for each acknowledgement.
TIMEOUT_S = 30.0
#: Unacknowledged messages allowed before publishing waits for the oldest one.
MAX_PENDING = 10_000


def run_simulation(
    sites: list[Site],
    mqtt: MqttSettings,
    start: datetime,
    end: datetime,
    step: timedelta,
    seed: int,
    speed: float = 0.0,
    progress: bool = False,
    pv_outages: Sequence[tuple[datetime, datetime]] = (),
    windows: Mapping[str, tuple[datetime, datetime]] | None = None,
) -> dict[str, dict[str, float]]:
    """Simulate ``sites`` and publish their meter indexes at every step, QoS 1.

    Parameters
    ----------
    sites : list of Site
        Sites to simulate; site ``i`` is seeded from ``seed`` and ``i``.
    mqtt : MqttSettings
        Broker to publish to.
    start, end : datetime
        Timezone-aware bounds, both included; ``end - start`` is a multiple of ``step``.
    step : timedelta
        Time between two readings of a meter.
    seed : int
        Seed of the whole run; same seed, same buildings.
    speed : float
        Simulated seconds per real second (86400: a day per second); 0 publishes as
        fast as the broker acknowledges. Meters whose payload has no device time are
        published only in real time (``speed == 1``), since the gateway stamps them
        with the receive time.
    progress : bool
        Show a progress bar on the console.
    pv_outages : sequence of (datetime, datetime)
        Intervals without PV production (see ``simulate_building``).
    windows : mapping of site id to (datetime, datetime), optional
        A site's own ``(start, end)`` instead of ``start``/``end``: sites in different
        timezones each run from their own local midnight. Their readings are published
        in time order on one timeline.

    Returns
    -------
    dict of str to dict
        Per site id, the exact energies over its window from
        :func:`~firmware_sim.building.ground_truth` [Wh].
    """
    truth: dict[str, dict[str, float]] = {}
    # (first reading's time in UTC, topic, meters, one row of indexes per step)
    streams: list[tuple[datetime, str, list[Meter], list[dict[str, Any]]]] = []
    for i, site in enumerate(sites):
        s0, s1 = (windows or {}).get(site.id, (start, end))
        frame = simulate_building(site, s0, s1, step, site_seed(seed, i), pv_outages=pv_outages)
        truth[site.id] = ground_truth(frame, s0, s1)
        meters = _published_meters(site, real_time=speed == 1)
        indexes = meter_indexes(meters, frame)
        for topic in dict.fromkeys(m.source.topic for m in meters):
            on_topic = [m for m in meters if m.source.topic == topic]
            rows = indexes[[m.id for m in on_topic]].to_dict("records")
            # In UTC: same-zone aware arithmetic would be wall-clock time.
            streams.append((s0.astimezone(UTC), topic, on_topic, rows))

    # One timeline: every instant at which some site publishes, in order.
    instants = sorted({s0 + k * step for s0, _, _, rows in streams for k in range(len(rows))})
    client = _connect(mqtt)
    pending: deque[MQTTMessageInfo] = deque()
    t0 = time.monotonic()
    try:
        with Progress(disable=not progress, transient=True) as bar:
            for t in bar.track(instants, description="publishing"):
                if speed > 0:
                    elapsed = (t - instants[0]).total_seconds() / speed
                    time.sleep(max(0.0, t0 + elapsed - time.monotonic()))
                for s0, topic, on_topic, rows in streams:
                    k, off = divmod(t - s0, step)
                    if off or not 0 <= k < len(rows):
                        continue
                    payload = encode_payload(on_topic, rows[k], t)
                    pending.append(client.publish(topic, payload, qos=1))
                _await_acks(pending, MAX_PENDING)
            _await_acks(pending, 0)
    finally:
        client.disconnect()
        client.loop_stop()
    return truth


def write_truth(truth: dict[str, dict[str, float]], path: str | Path) -> None:
    """Save the ground truth of :func:`run_simulation` as JSON, each energy in Wh and kWh.

    Parameters
    ----------
    truth : dict of str to dict
        Per site id, energies keyed ``*_wh`` [Wh].
    path : str or Path
        File to write; a key ``x_wh`` is written as ``x_wh`` [Wh] and ``x_kwh`` [kWh].
    """
    document: dict[str, dict[str, Any]] = {
        site_id: {
            key: value
            for name, value_wh in figures.items()
            for key, value in (
                (name, value_wh),
                (name.removesuffix("_wh") + "_kwh", value_wh / 1000.0),
            )
        }
        for site_id, figures in truth.items()
    }
    Path(path).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _published_meters(site: Site, real_time: bool) -> list[Meter]:
    """The site's MQTT meters the simulator can feed, warning once about the others
    (serial meters are fed by the device emulators)."""
    on_mqtt = [m for m in site.meters if isinstance(m.source, MqttSource)]
    skipped = [m.id for m in on_mqtt if not is_simulated(m)]
    if skipped:
        log.warning("site %s: not simulated (not electricity): %s", site.id, ", ".join(skipped))
    meters = [m for m in on_mqtt if is_simulated(m)]
    if real_time:
        return meters
    timeless = [m.id for m in meters if not carries_device_time(m)]
    if timeless:
        log.warning(
            "site %s: %s not published: their payload has no device time, so they are "
            "only published in real time (speed 1)",
            site.id,
            ", ".join(timeless),
        )
    return [m for m in meters if carries_device_time(m)]


def _connect(settings: MqttSettings) -> Client:
    """A connected client with its network loop running; raise ConnectionError otherwise."""
    client = make_client(
        settings, client_id=f"microville-sim-{uuid.uuid4().hex[:12]}", persistent=False
    )
    connected = threading.Event()
    outcome: list[Any] = []

    def on_connect(client: Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        outcome.append(reason)
        connected.set()

    client.on_connect = on_connect
    client.connect(settings.host, settings.port, keepalive=settings.keepalive_s)
    client.loop_start()
    if not connected.wait(TIMEOUT_S) or outcome[0].is_failure:
        client.loop_stop()
        reason = outcome[0] if outcome else "timeout"
        raise ConnectionError(f"MQTT broker {settings.host}:{settings.port} refused: {reason}")
    return client


def _await_acks(pending: deque[MQTTMessageInfo], limit: int) -> None:
    """Drop acknowledged messages from ``pending``; wait while more than ``limit`` remain."""
    while pending and (len(pending) > limit or pending[0].is_published()):
        info = pending.popleft()
        info.wait_for_publish(TIMEOUT_S)
        if not info.is_published():
            raise TimeoutError(f"message {info.mid} not acknowledged within {TIMEOUT_S} s")
