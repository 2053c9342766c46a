"""Waste scales on both stores: cumulative counters and individual weighings (summed in
the database), per local day across a clock change, and weighings through Mosquitto and
the gateway to /waste."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from helpers.support import SITE_S1, wait_until

from domain.readings import Reading
from domain.site import ConfigError, parse_sites
from domain.store import ReadingStore, SumSlot
from gateway.deadletter import DeadLetterLog
from gateway.gateway import Gateway
from gateway.sources.registry import SourceOptions
from microville.mqtt import MqttSettings
from microville.settings import Settings
from service.app import create_app
from stores.ledger import SqliteLedger

HOUR = timedelta(hours=1)
T0 = datetime(2026, 10, 5, 8, tzinfo=UTC)  # a Monday, 10:00 in Paris
WEIGHINGS_KG = (12.0, 8.0, 15.0, 10.0)


def _config(scale: str, stream: str = "landfill", interval_days: int = 7) -> str:
    return (
        SITE_S1
        + f"""waste_entry_interval_days = {interval_days}
[[sites.meters]]
id = "bin-scale"
role = "waste"
carrier = "waste"
stream = "{stream}"
unit = "kg"
scale = "{scale}"
source = {{ topic = "s1/bin", format = "senml", name = "bin:mass" }}
"""
    )


def _waste(
    tmp_path: Path, store: ReadingStore, config: str, params: dict[str, str]
) -> dict[str, object]:
    path = tmp_path / f"sites-{len(list(tmp_path.glob('sites-*')))}.toml"
    path.write_text(config)
    ledger = SqliteLedger(tmp_path / "ledger.db")
    app = create_app(Settings(config=str(path)), store=store, ledger=ledger)
    with TestClient(app) as client:
        resp = client.get("/api/v1/sites/s1/waste", params=params)
    ledger.close()
    assert resp.status_code == 200, resp.text
    body: dict[str, object] = resp.json()
    return body


def test_slot_sums_add_up_each_slot_in_the_database(store: ReadingStore) -> None:
    times = [T0, T0 + timedelta(minutes=20), T0 + HOUR, T0 + 3 * HOUR]
    store.write(
        [
            Reading("s1", "bin-scale", "mass", kg, t)
            for kg, t in zip(WEIGHINGS_KG, times, strict=True)
        ]
        + [Reading("s1", "other", "mass", 99.0, T0)]
    )
    # [start, end): a weighing at the start counts, one at the end does not.
    sums = store.slot_sums("s1", ["bin-scale", "silent"], "mass", T0, T0 + 3 * HOUR, HOUR)
    assert sums == {
        "bin-scale": [SumSlot(T0, 20.0, 2), SumSlot(T0 + HOUR, 15.0, 1)],
        "silent": [],
    }
    day = store.slot_sums("s1", ["bin-scale"], "mass", T0 - 8 * HOUR, T0 + 16 * HOUR, 24 * HOUR)
    assert day == {"bin-scale": [SumSlot(T0 - 8 * HOUR, 45.0, 4)]}


def test_a_weighing_scale_sums_its_weighings(tmp_path: Path, store: ReadingStore) -> None:
    times = [T0 + h * HOUR for h in range(4)]
    store.write(
        [
            Reading("s1", "bin-scale", "mass", kg, t)
            for kg, t in zip(WEIGHINGS_KG, times, strict=True)
        ]
    )
    day = {"start": "2026-10-05", "end": "2026-10-06"}
    weighed = _waste(tmp_path, store, _config("weighing"), day)
    assert weighed["operation"]["mass_kg"] == {"landfill": pytest.approx(45.0)}  # type: ignore[index]
    # The same values read as a cumulative counter: 12 → 8 (a glitch) → 15 (+3) → 10.
    counted = _waste(tmp_path, store, _config("counter"), day)
    assert counted["operation"]["mass_kg"] == {"landfill": pytest.approx(3.0)}  # type: ignore[index]


def test_weighing_coverage_is_the_share_weighed_within_the_interval(
    tmp_path: Path, store: ReadingStore
) -> None:
    # Weighings on Monday 5 and Monday 12 October (10:00 local), none after.
    store.write([Reading("s1", "bin-scale", "mass", 10.0, T0 + timedelta(weeks=w)) for w in (0, 1)])
    # All waste weighed (no manual entries expected); the scale weighs at least weekly.
    config = _config("weighing", interval_days=0) + "weighing_interval_days = 7\n"
    october = _waste(tmp_path, store, config, {"period": "2026-10"})
    # Oct 1 00:00 → Oct 12 10:00 is weighed (the slots start at 10:00 UTC+2 = 08:00 UTC).
    covered = (T0 + timedelta(weeks=1)) - datetime(2026, 9, 30, 22, tzinfo=UTC)
    month = datetime(2026, 10, 31, 23, tzinfo=UTC) - datetime(2026, 9, 30, 22, tzinfo=UTC)
    assert october["coverage"] == pytest.approx(covered / month)
    assert october["operation"]["mass_kg"] == {"landfill": pytest.approx(20.0)}  # type: ignore[index]


def test_counter_scale_per_local_day_across_the_clock_change(
    tmp_path: Path, store: ReadingStore
) -> None:
    # +2 kg an hour from 2026-10-24 00:00 local (22:00 UTC the day before) to the 27th.
    start = datetime(2026, 10, 23, 22, tzinfo=UTC)
    hours = 24 + 25 + 24
    store.write(
        [Reading("s1", "bin-scale", "mass", 2.0 * h, start + h * HOUR) for h in range(hours + 1)]
    )
    config = _config("counter", stream="composting", interval_days=0)
    body = _waste(
        tmp_path, store, config, {"start": "2026-10-24", "end": "2026-10-27", "step": "day"}
    )
    periods = body["periods"]
    assert isinstance(periods, list)
    assert [p["start"] for p in periods] == [
        "2026-10-24T00:00:00+02:00",
        "2026-10-25T00:00:00+02:00",
        "2026-10-26T00:00:00+01:00",
    ]
    # The 25th lasts 25 hours.
    assert [p["operation"]["mass_kg"]["composting"] for p in periods] == pytest.approx([48, 50, 48])
    assert [p["coverage"] for p in periods] == pytest.approx([1.0, 1.0, 1.0])
    assert body["operation"]["mass_kg"] == {"composting": pytest.approx(146)}  # type: ignore[index]


def test_scale_applies_to_waste_meters_only() -> None:
    only_waste = "'scale' and 'weighing_interval_days' apply to role 'waste' only"
    with pytest.raises(ConfigError, match=only_waste):
        parse_sites(
            SITE_S1
            + """
[[sites.meters]]
id = "in"
role = "grid_import"
scale = "weighing"
source = { topic = "s1/in", format = "number" }
"""
        )
    with pytest.raises(ConfigError, match="scale"):
        parse_sites(_config("tally"))
    with pytest.raises(ConfigError, match="applies to scale 'weighing' only"):
        parse_sites(_config("counter") + "weighing_interval_days = 3\n")


@pytest.fixture
def gateway(mosquitto_url: str, store: ReadingStore, tmp_path: Path) -> Iterator[Gateway]:
    gw = Gateway(
        parse_sites(_config("weighing")),
        store,
        SourceOptions(MqttSettings(url=mosquitto_url), f"gw-{tmp_path.name}"),
        dead_letters=DeadLetterLog(tmp_path / "dead.jsonl"),
        batch_delay_s=0.1,
    )
    gw.start()
    assert gw.wait_ready(10)
    yield gw
    gw.stop()


def test_weighings_through_mosquitto_and_the_gateway_are_summed(
    gateway: Gateway, store: ReadingStore, mosquitto_url: str, tmp_path: Path
) -> None:
    settings = MqttSettings(url=mosquitto_url)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"scale-{tmp_path.name}")
    pub.connect(settings.host, settings.port)
    pub.loop_start()
    messages = [
        json.dumps([{"bn": "bin:", "bt": (T0 + h * HOUR).timestamp(), "n": "mass", "u": "kg",
                     "v": kg}]).encode()
        for h, kg in enumerate(WEIGHINGS_KG)
    ]  # fmt: skip
    # The second weighing delivered twice (a QoS 1 redelivery): it carries its own time,
    # so it is stored, and counted, once.
    for payload in [*messages[:2], messages[1], *messages[2:]]:
        pub.publish("s1/bin", payload, qos=1).wait_for_publish(5)
    pub.loop_stop()
    pub.disconnect()
    assert wait_until(lambda: gateway.writer.written == 5), gateway.dead_letters.by_reason
    assert gateway.writer.flush(10)
    body = _waste(
        tmp_path, store, _config("weighing"), {"start": "2026-10-05", "end": "2026-10-06"}
    )
    assert body["operation"]["mass_kg"] == {"landfill": pytest.approx(45.0)}  # type: ignore[index]
