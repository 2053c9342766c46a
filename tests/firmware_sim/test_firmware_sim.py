"""Building simulator: model, payloads, and publishing to a real Mosquitto."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import paho.mqtt.client as paho
import pandas as pd
import pytest

from domain.site import Meter, MqttSource, Site, read_sites
from firmware_sim.building import ground_truth, simulate_building
from firmware_sim.payloads import encode_payload, meter_indexes
from firmware_sim.publisher import run_simulation, write_truth
from microville.mqtt import MqttSettings

PARIS = ZoneInfo("Europe/Paris")
STEP = timedelta(minutes=15)
INDEXES = ["pv_wh", "import_wh", "export_wh", "heat_pump_wh", "load_wh"]
SAMPLE_CONFIG = Path(__file__).parents[2] / "microville" / "sites" / "microville112.toml"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


@pytest.fixture(scope="module")
def site() -> Site:
    return read_sites(SAMPLE_CONFIG).sites[0]


def _meters(site: Site, topic: str) -> list[Meter]:
    return [m for m in site.meters if m.source.topic == topic]


def test_same_seed_same_building(site: Site) -> None:
    start = datetime(2026, 1, 5, tzinfo=PARIS)
    end = start + timedelta(days=7)
    frame = simulate_building(site, start, end, STEP, seed=7)
    pd.testing.assert_frame_equal(frame, simulate_building(site, start, end, STEP, seed=7))
    other = simulate_building(site, start, end, STEP, seed=8)
    assert not np.allclose(frame["pv_power_w"], other["pv_power_w"])


def test_indexes_start_at_zero_and_never_decrease(site: Site) -> None:
    start = datetime(2026, 3, 1, tzinfo=PARIS)
    frame = simulate_building(site, start, start + timedelta(days=60), STEP, seed=1)
    assert (frame[INDEXES].iloc[0] == 0).all()
    assert (frame[INDEXES].diff().iloc[1:] >= 0).all().all()
    assert frame.index[0] == start and str(frame.index.tz) == "UTC"


def test_ground_truth_is_the_energy_between_two_instants(site: Site) -> None:
    start = datetime(2026, 1, 5, tzinfo=PARIS)
    frame = simulate_building(site, start, start + timedelta(days=14), STEP, seed=3)
    t1, t2 = frame.index[100], frame.index[900]
    truth = ground_truth(frame, t1, t2)
    balance_wh = truth["import_wh"] + truth["production_wh"] - truth["export_wh"]
    assert truth["consumption_wh"] == pytest.approx(balance_wh, rel=1e-12)
    # The power at t holds over [t, t + step): the truth is the sum over [t1, t2).
    within = frame.loc[t1:t2].iloc[:-1]
    assert truth["production_wh"] == pytest.approx(within["pv_power_w"].sum() / 4, rel=1e-12)
    assert 0 < truth["heat_pump_wh"] < truth["consumption_wh"]


def test_pv_is_zero_at_night_and_produces_at_noon_in_june(site: Site) -> None:
    start = datetime(2026, 6, 21, tzinfo=PARIS)
    frame = simulate_building(site, start, start + timedelta(days=1), STEP, seed=5)
    pv_w = frame["pv_power_w"].tz_convert(PARIS)
    assert pv_w.at[pd.Timestamp("2026-06-21 02:00", tz=PARIS)] == 0
    assert pv_w.at[pd.Timestamp("2026-06-21 23:00", tz=PARIS)] == 0
    assert pv_w.at[pd.Timestamp("2026-06-21 14:00", tz=PARIS)] > 10_000


@pytest.mark.parametrize(("day", "hours"), [((2026, 10, 25), 25), ((2026, 3, 29), 23)])
def test_a_local_day_across_dst_has_its_real_length(
    site: Site, day: tuple[int, int, int], hours: int
) -> None:
    start = datetime(*day, tzinfo=PARIS)
    end = datetime.combine(start.date() + timedelta(days=1), datetime.min.time(), PARIS)
    frame = simulate_building(site, start, end, STEP, seed=1)
    assert len(frame) == hours * 4 + 1
    assert frame.index[-1] == end


def test_bounds_must_be_aware_and_on_the_step_grid(site: Site) -> None:
    start = datetime(2026, 6, 1, tzinfo=PARIS)
    with pytest.raises(ValueError, match="timezone-aware"):
        simulate_building(site, start.replace(tzinfo=None), start + STEP, STEP, seed=1)
    with pytest.raises(ValueError, match="multiple"):
        simulate_building(site, start, start + timedelta(minutes=20), STEP, seed=1)


def test_senml_pack_has_base_name_and_time(site: Site) -> None:
    t = datetime(2026, 6, 1, 12, tzinfo=UTC)
    payload = encode_payload(
        _meters(site, "microville112/linky"), {"grid-import": 1.5, "grid-export": 2000.25}, t
    )
    base, *records = json.loads(payload)
    assert base == {"bn": "urn:dev:mv112-linky:", "bt": t.timestamp()}
    assert records == [
        {"n": "import", "u": "Wh", "v": 1.5},
        {"n": "export", "u": "Wh", "v": 2000.25},
    ]


def test_senml_names_without_a_shared_prefix_stay_whole(now: datetime) -> None:
    meters = [
        Meter(id=i, role="production", source=MqttSource(topic="t", format="senml", name=name))
        for i, name in (("a", "urn:dev:a:energy"), ("b", "urn:dev:b:energy"))
    ]
    base, *records = json.loads(encode_payload(meters, {"a": 1.0, "b": 2.0}, now))
    assert "bn" not in base
    assert [r["n"] for r in records] == ["urn:dev:a:energy", "urn:dev:b:energy"]


def test_json_payload_nests_the_value_in_the_meter_unit(site: Site) -> None:
    t = datetime(2026, 6, 1, 12, tzinfo=UTC)
    meters = _meters(site, "microville112/shelly-heatpump/status")
    document = json.loads(encode_payload(meters, {"heat-pump": 12345.0}, t))
    assert document == {"aenergy": {"total": 12.345}, "ts": t.timestamp()}


def test_number_payload_is_the_bare_value_in_the_meter_unit(now: datetime) -> None:
    meter = Meter(
        id="lights", role="submeter", unit="kWh", source=MqttSource(topic="t", format="number")
    )
    payload = encode_payload([meter], {"lights": 2500.0}, now)
    assert payload == b"2.5"
    assert json.loads(payload) == 2.5


def test_meters_read_the_column_of_their_role(site: Site) -> None:
    start = datetime(2026, 1, 5, tzinfo=PARIS)
    frame = simulate_building(site, start, start + timedelta(days=1), STEP, seed=1)
    lights = Meter(id="lights", role="submeter", source=MqttSource(topic="t", format="number"))
    indexes = meter_indexes([*site.meters, lights], frame)
    expected = {
        "pv": frame["pv_wh"],
        "grid-import": frame["import_wh"],
        "grid-export": frame["export_wh"],
        "heat-pump": frame["heat_pump_wh"],
        "lights": 0.15 * frame["load_wh"],
    }
    for meter_id, column in expected.items():
        np.testing.assert_array_equal(indexes[meter_id], column)


def test_write_truth_saves_wh_and_kwh(tmp_path: Path) -> None:
    path = tmp_path / "truth.json"
    write_truth({"s": {"production_wh": 1500.0}}, path)
    assert json.loads(path.read_text()) == {"s": {"production_wh": 1500.0, "production_kwh": 1.5}}


@pytest.fixture
def broker_port(tmp_path: Path) -> Iterator[int]:
    """A private Mosquitto on a free local port, stopped after the test."""
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n")
    broker = subprocess.Popen(
        [MOSQUITTO, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if broker.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("mosquitto did not start")
                time.sleep(0.05)
        yield port
    finally:
        broker.terminate()
        broker.wait(10)


def test_every_step_reaches_the_broker_with_the_truth_as_last_index(
    site: Site, broker_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    # A bare number has no device time: it is published in real time (speed 1) only.
    lights = Meter(
        id="lights",
        role="submeter",
        source=MqttSource(topic="microville112/lights", format="number"),
    )
    site = site.model_copy(update={"meters": [*site.meters, lights]})
    received: list[tuple[str, bytes]] = []
    subscribed = threading.Event()
    subscriber = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="test-sub")
    subscriber.on_connect = lambda c, *_: c.subscribe("microville112/#", qos=1)
    subscriber.on_subscribe = lambda *_: subscribed.set()
    subscriber.on_message = lambda c, u, msg: received.append((msg.topic, msg.payload))
    subscriber.connect("127.0.0.1", broker_port)
    subscriber.loop_start()
    try:
        assert subscribed.wait(10)
        start = datetime(2026, 1, 12, tzinfo=PARIS)
        end = start + timedelta(days=1)
        mqtt = MqttSettings(url=f"mqtt://127.0.0.1:{broker_port}")
        truth = run_simulation([site], mqtt, start, end, STEP, seed=112)[site.id]
        expected = 97 * 3  # steps × topics (pv, linky, heat pump; not lights)
        deadline = time.monotonic() + 10
        while len(received) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        subscriber.disconnect()
        subscriber.loop_stop()

    assert len(received) == expected
    assert "lights not published" in caplog.text
    last = {topic: json.loads(payload) for topic, payload in received}
    pv, linky = last["microville112/pv"], last["microville112/linky"]
    assert pv[0]["bt"] == linky[0]["bt"] == end.timestamp()
    assert pv[1]["v"] == truth["production_wh"]
    assert [r["v"] for r in linky[1:]] == [truth["import_wh"], truth["export_wh"]]
    heat_pump = last["microville112/shelly-heatpump/status"]
    assert heat_pump["aenergy"]["total"] * 1000 == pytest.approx(truth["heat_pump_wh"])
