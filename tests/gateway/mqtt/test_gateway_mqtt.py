"""The gateway on a real Mosquitto: good data stored, bad data dead-lettered, never a stop."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from helpers.support import SITE_S1, wait_until

from domain.site import parse_sites
from domain.store import ReadingStore
from gateway.deadletter import DeadLetterLog
from gateway.gateway import Gateway
from gateway.sources.registry import SourceOptions
from microville.mqtt import MqttSettings

CONFIG = (
    SITE_S1
    + """
[[sites.meters]]
id = "pv"
role = "production"
source = { topic = "t/pv", format = "senml", name = "pv:energy" }

[[sites.meters]]
id = "import"
role = "grid_import"
unit = "kWh"
source = { topic = "t/import", format = "number" }
"""
)


def _publisher(url: str) -> mqtt.Client:
    settings = MqttSettings(url=url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-publisher")
    client.connect(settings.host, settings.port)
    client.loop_start()
    return client


@pytest.fixture
def gateway(
    mosquitto_url: str, store: ReadingStore, tmp_path: Path, now: datetime
) -> Iterator[Gateway]:
    # Receive times and dead letters are stamped with the tests' "now", not the wall clock.
    gw = Gateway(
        parse_sites(CONFIG),
        store,
        SourceOptions(MqttSettings(url=mosquitto_url), f"gw-{tmp_path.name}", clock=lambda: now),
        dead_letters=DeadLetterLog(tmp_path / "dead.jsonl"),
        batch_delay_s=0.1,
    )
    gw.start()
    assert gw.wait_ready(10)
    yield gw
    gw.stop()


def _senml(t: datetime, wh: float) -> bytes:
    return json.dumps(
        [{"bn": "pv:", "bt": t.timestamp(), "n": "energy", "u": "Wh", "v": wh}]
    ).encode()


def test_bad_messages_are_dead_lettered_and_good_data_after_them_is_stored(
    gateway: Gateway, store: ReadingStore, mosquitto_url: str, tmp_path: Path, now: datetime
) -> None:
    t = (now - timedelta(days=60)).replace(minute=0, second=0, microsecond=0)
    pub = _publisher(mosquitto_url)
    bad = [
        ("t/pv", b"not json"),
        ("t/pv", b'[{"n": "pv:energy", "v": NaN}]'),
        ("t/pv", b'[{"n": "pv:energy", "u": "furlong", "v": 1}]'),
        ("t/pv", b'{"v": 1}'),
        ("t/pv", b'[{"n": "pv:energy", "v": "12"}]'),
        ("t/import", b"\xff\xfe"),
        ("t/unknown", b"1"),
    ]
    pub.publish("t/pv", _senml(t, 1000.0), qos=1).wait_for_publish(5)
    for topic, payload in bad:
        pub.publish(topic, payload, qos=1).wait_for_publish(5)
    pub.publish("t/pv", _senml(t + timedelta(minutes=15), 1500.0), qos=1).wait_for_publish(5)
    pub.publish("t/import", b"12.5", qos=1).wait_for_publish(5)
    pub.disconnect()

    # t/unknown is not subscribed: the broker never sends it. The six others are rejected.
    assert wait_until(lambda: gateway.dead_letters.total == 6), gateway.dead_letters.by_reason
    assert gateway.writer.flush(10)

    def energy_readings() -> int:
        window = (t - timedelta(days=1), now + timedelta(hours=1))
        series = store.index_slots("s1", ["pv", "import"], "energy", *window, timedelta(hours=1))
        return sum(s.count for m in series.values() for s in m.slots) + sum(
            m.baseline is not None and not m.slots for m in series.values()
        )

    assert wait_until(lambda: energy_readings() == 3), energy_readings()
    # The rejects are counted per site and kind of source beside the readings (the
    # data-quality dashboard shows them): the cumulative count reached 6.
    assert wait_until(lambda: bool(store.last_seen("s1", ["mqtt"], "dead_letters")["mqtt"]))
    rejected = store.index_slots(
        "s1",
        ["mqtt"],
        "dead_letters",
        t,
        now + timedelta(hours=2),
        timedelta(hours=1),
    )["mqtt"]
    assert max(s.last_value for s in rejected.slots) == 6
    series = store.index_slots(
        "s1", ["pv"], "energy", t - timedelta(hours=1), t + timedelta(hours=1), timedelta(hours=1)
    )["pv"]
    assert [s.last_value for s in series.slots] == [1000.0, 1500.0]
    reasons = [
        json.loads(line)["reason"] for line in (tmp_path / "dead.jsonl").read_text().splitlines()
    ]
    assert len(reasons) == 6
    assert any("not JSON" in r for r in reasons)
    assert any("non-finite number NaN" in r for r in reasons)
    assert any("furlong" in r for r in reasons)
    assert any("not a bare number" in r for r in reasons)


def test_bare_number_is_stamped_with_receive_time_and_normalised(
    gateway: Gateway, store: ReadingStore, mosquitto_url: str, now: datetime
) -> None:
    pub = _publisher(mosquitto_url)
    pub.publish("t/import", b"12.5", qos=1).wait_for_publish(5)
    pub.disconnect()
    assert wait_until(lambda: gateway.writer.written == 1)
    hour = timedelta(hours=1)
    series = store.index_slots("s1", ["import"], "energy", now - 2 * hour, now + 2 * hour, hour)
    (slot,) = series["import"].slots
    assert slot.last_value == 12_500.0  # 12.5 kWh in Wh
    assert slot.end - hour < now <= slot.end  # stamped with the gateway's clock at receipt


def test_unknown_topic_is_dead_lettered_not_fatal(gateway: Gateway, now: datetime) -> None:
    gateway.source("mqtt").handle("t/nope", b"1", now)
    assert gateway.dead_letters.total == 1
    assert gateway.dead_letters.recent[-1].received_at == now
    assert "unknown topic" in gateway.dead_letters.recent[-1].reason


def test_messages_queued_while_gateway_was_away_are_delivered(
    mosquitto_url: str, store: ReadingStore, tmp_path: Path
) -> None:
    """Persistent session: QoS 1 messages published while the gateway is down arrive
    when it comes back with the same client id."""
    settings = MqttSettings(url=mosquitto_url)
    client_id = f"gw-away-{tmp_path.name}"
    gw = Gateway(parse_sites(CONFIG), store, SourceOptions(settings, client_id), batch_delay_s=0.1)
    gw.start()
    assert gw.wait_ready(10)
    gw.stop()

    t = datetime(2026, 10, 2, tzinfo=UTC)
    pub = _publisher(mosquitto_url)
    for i in range(50):
        pub.publish("t/pv", _senml(t + timedelta(minutes=i), float(i)), qos=1).wait_for_publish(5)
    pub.disconnect()

    gw = Gateway(parse_sites(CONFIG), store, SourceOptions(settings, client_id), batch_delay_s=0.1)
    gw.start()
    try:
        assert wait_until(lambda: store.count("s1") == 50, 15), store.count("s1")
    finally:
        gw.stop()
