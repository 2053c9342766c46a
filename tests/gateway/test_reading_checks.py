"""The one reading check of every source (``domain.reading_checks``): pure, then through
each real adapter — MQTT over a real Mosquitto, a Linky TIC over a pseudo-terminal, Modbus
devices from the emulator over TCP. A negative index, an absurd magnitude and a time out
of range are refused and dead-lettered, with the same reason kinds whichever source they
came from, while the good readings beside them are stored."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from helpers.support import SITE_S1, wait_until

from domain.modbus_maps import shipped_maps
from domain.reading_checks import (
    EARLIEST,
    LATEST,
    MAX_ABS_VALUE,
    MAX_AHEAD,
    ReadingRefused,
    checked_reading,
)
from domain.readings import Reading
from domain.site import Meter, MqttSource, parse_sites
from domain.tic_labels import TicMode
from firmware_sim.modbus_emulator import ModbusTcpEmulator
from firmware_sim.tic_frames import encode_frame, encode_group
from gateway.deadletter import DeadLetter, DeadLetterLog, reason_kind
from gateway.gateway import Gateway
from gateway.sources.registry import SourceOptions
from microville.mqtt import MqttSettings
from stores.sqlite import SqliteStore

#: The reason kinds (``reason_kind``) of the three refusals, the same for every source.
NEGATIVE, MAGNITUDE, TIME = "negative index", "value out of range", "time out of range"


def _meter(role: str = "grid_import", unit: str = "Wh") -> Meter:
    return Meter(id="m", role=role, unit=unit, source=MqttSource(topic="t", format="number"))


# --- the check, pure ----------------------------------------------------------------------


def test_a_good_value_is_converted_to_the_base_unit_at_its_time(now: datetime) -> None:
    t = now - timedelta(hours=1)
    assert checked_reading("s1", _meter(), 12.5, "kWh", t, now) == Reading(
        "s1", "m", "energy", 12_500.0, t
    )
    # No unit from the device: the meter's configured one.
    assert checked_reading("s1", _meter(unit="kWh"), 2.0, None, t, now).value == 2000.0
    # A measurement may be negative (grid power while the site exports).
    power = checked_reading("s1", _meter("measurement", "W"), -1520.0, "W", t, now)
    assert power.value == -1520.0


@pytest.mark.parametrize(
    ("value", "time_from_now", "time"),
    [
        (0.0, timedelta(0), None),  # zero is a valid index
        (MAX_ABS_VALUE, timedelta(0), None),  # the largest magnitude kept
        (1.0, MAX_AHEAD, None),  # as far ahead as a device clock may be
        (1.0, None, EARLIEST),  # the first instant kept
    ],
)
def test_the_bounds_themselves_are_kept(
    now: datetime, value: float, time_from_now: timedelta | None, time: datetime | None
) -> None:
    at = now + time_from_now if time_from_now is not None else time
    assert at is not None
    assert checked_reading("s1", _meter(), value, "Wh", at, now).value == value


@pytest.mark.parametrize(
    ("role", "value", "unit", "time_from_now", "time", "kind", "says"),
    [
        ("grid_import", -5.0, "kWh", timedelta(0), None, NEGATIVE, "-5 kWh"),
        ("production", -0.001, "Wh", timedelta(0), None, NEGATIVE, "-0.001 Wh"),
        ("grid_import", 1e13, "kWh", timedelta(0), None, MAGNITUDE, "(beyond 1e+15 Wh)"),
        ("measurement", -2e15, "W", timedelta(0), None, MAGNITUDE, "-2e+15 W"),
        ("grid_import", 1.0, "Wh", timedelta(days=1), None, TIME, "1.0 days ahead"),
        ("grid_import", 1.0, "Wh", MAX_AHEAD + timedelta(seconds=1), None, TIME, "ahead"),
        ("measurement", 1.0, "W", None, datetime(1970, 1, 1, tzinfo=UTC), TIME, "not set"),
        ("measurement", 1.0, "W", None, LATEST, TIME, "from 2100-01-01 on"),
        ("grid_import", 1.0, "W", timedelta(0), None, "unit '…' measures power, "
         "expected energy (in Wh or a multiple)", "'W' measures power"),
        ("grid_import", float("nan"), "Wh", timedelta(0), None, "value nan is not a finite "
         "number", "nan"),
    ],
)  # fmt: skip
def test_each_defect_is_refused_with_a_reason_naming_it(
    now: datetime,
    role: str,
    value: float,
    unit: str,
    time_from_now: timedelta | None,
    time: datetime | None,
    kind: str,
    says: str,
) -> None:
    meter = _meter(role, "W" if role == "measurement" else "Wh")
    at = now + time_from_now if time_from_now is not None else time
    assert at is not None
    with pytest.raises(ReadingRefused) as refused:
        checked_reading("s1", meter, value, unit, at, now)
    reason = str(refused.value)
    assert reason.startswith("meter s1/m: ") and says in reason, reason
    assert reason_kind(reason) == kind


# --- through each source --------------------------------------------------------------


def _stored(
    store: SqliteStore, meters: list[str], quantity: str, around: datetime
) -> dict[str, list[float]]:
    """Every value stored for ``meters`` within two days of ``around``, oldest first."""
    start = around.replace(microsecond=0) - timedelta(days=2)
    sums = store.slot_sums(
        "s1", meters, quantity, start, start + timedelta(days=4), timedelta(seconds=1)
    )
    return {m: [s.total for s in slots] for m, slots in sums.items()}


def _refused(gateway: Gateway) -> list[DeadLetter]:
    return [d for d in gateway.dead_letters.recent if d.origin != "store"]


def _kinds(letters: list[DeadLetter]) -> set[str]:
    return {reason_kind(d.reason) for d in letters}


MQTT_CONFIG = (
    SITE_S1
    + """
[[sites.meters]]
id = "pv"
role = "production"
source = { topic = "checks/pv", format = "senml", name = "pv:energy" }

[[sites.meters]]
id = "pv-power"
role = "measurement"
unit = "W"
source = { topic = "checks/pv", format = "senml", name = "pv:power" }
"""
)


def test_mqtt_refusals_are_dead_lettered_and_the_good_readings_stored(
    mosquitto_url: str, tmp_path: Path, now: datetime
) -> None:
    base = now.replace(microsecond=0)  # device times in whole seconds, as the gateway's
    store = SqliteStore(tmp_path / "readings.db")
    gateway = Gateway(
        parse_sites(MQTT_CONFIG),
        store,
        SourceOptions(MqttSettings(url=mosquitto_url), f"gw-{tmp_path.name}", clock=lambda: base),
        dead_letters=DeadLetterLog(tmp_path / "dead.jsonl"),
        batch_delay_s=0.1,
    )

    def pack(t: datetime, energy_kwh: float, power_w: float) -> bytes:
        return json.dumps(
            [
                {"bn": "pv:", "bt": t.timestamp(), "n": "energy", "u": "kWh", "v": energy_kwh},
                {"n": "power", "u": "W", "v": power_w},
            ]
        ).encode()

    messages = [
        pack(base - timedelta(hours=1), 1.0, 100.0),  # good
        pack(base - timedelta(minutes=50), -5.0, 110.0),  # negative index
        pack(base - timedelta(minutes=40), 1e13, 120.0),  # 1e16 Wh
        pack(base + timedelta(days=1), 1.1, 130.0),  # a device clock a day ahead
        pack(datetime(1999, 12, 31, tzinfo=UTC), 1.1, 140.0),  # a device clock not set
        pack(base - timedelta(minutes=10), 1.2, -300.0),  # good, power negative (exporting)
    ]
    gateway.start()
    try:
        assert gateway.wait_ready(10)
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{tmp_path.name}")
        settings = MqttSettings(url=mosquitto_url)
        pub.connect(settings.host, settings.port)
        pub.loop_start()
        for payload in messages:
            pub.publish("checks/pv", payload, qos=1).wait_for_publish(5)
        pub.loop_stop()
        pub.disconnect()
        assert wait_until(lambda: len(_refused(gateway)) == 6), _refused(gateway)
        assert gateway.writer.flush(10)
        assert _stored(store, ["pv"], "energy", now) == {"pv": [1000.0, 1200.0]}
        # The power beside a refused index is stored (not the ones out of the window).
        power = _stored(store, ["pv-power"], "power", now)
        assert power == {"pv-power": [100.0, 110.0, 120.0, -300.0]}
    finally:
        gateway.stop()
        store.close()
    refused = _refused(gateway)
    assert {d.origin for d in refused} == {"checks/pv"}
    # Each with the message as received; a pack out of the window gives two (energy, power).
    assert [d.payload for d in refused] == [messages[i] for i in (1, 2, 3, 3, 4, 4)]
    assert [reason_kind(d.reason) for d in refused] == [NEGATIVE, MAGNITUDE] + [TIME] * 4
    assert "meter s1/pv: negative index: -5 kWh" in refused[0].reason
    assert "meter s1/pv: value out of range: 10000000000000 kWh" in refused[1].reason
    assert "1.0 days ahead of the gateway's clock" in refused[2].reason
    assert "meter s1/pv-power: time out of range" in refused[3].reason
    assert "is before 2000-01-01" in refused[4].reason


def _tic_config(port: str) -> str:
    meters = ""
    for meter_id, role, label in (("grid-import", "grid_import", "EAST"),
                                  ("grid-export", "grid_export", "EAIT")):  # fmt: skip
        meters += f"""
[[sites.meters]]
id = "{meter_id}"
role = "{role}"
source = {{ type = "tic", port = "{port}", mode = "standard", label = "{label}", interval_s = 0 }}
"""
    return SITE_S1 + meters


def _tic_frame(t: datetime, east: str, eait: str) -> bytes:
    s = TicMode.STANDARD
    return encode_frame(
        [
            encode_group("ADSC", "021234567890", s),
            encode_group("DATE", "", s, horodate=t),  # uppercase season: a synchronised clock
            encode_group("EAST", east, s),
            encode_group("EAIT", eait, s),
        ]
    )


@pytest.fixture
def pty() -> Iterator[tuple[int, str]]:
    """A pseudo-terminal: the test writes the master, the gateway reads the slave's name."""
    master, slave = os.openpty()
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def test_tic_refusals_are_dead_lettered_and_the_good_readings_stored(
    pty: tuple[int, str], tmp_path: Path, now: datetime
) -> None:
    """A Linky in standard mode stamps its values with its own clock (DATE, when
    synchronised): that time is checked against the gateway's clock."""
    master, port = pty
    base = now.replace(microsecond=0)  # the meter's DATE is in whole seconds
    store = SqliteStore(tmp_path / "readings.db")
    gateway = Gateway(
        parse_sites(_tic_config(port)),
        store,
        SourceOptions(clock=lambda: base),
        dead_letters=DeadLetterLog(tmp_path / "dead.jsonl"),
        batch_delay_s=0.1,
    )
    frames = [
        _tic_frame(base - timedelta(minutes=30), "000001000", "000000010"),  # good
        _tic_frame(base - timedelta(minutes=20), "9" * 16, "000000020"),  # EAST 1e16 Wh
        _tic_frame(base + timedelta(days=1), "000001100", "000000030"),  # DATE a day ahead
        # The TIC has no sign: a minus is no number (refused by the decoder).
        _tic_frame(base - timedelta(minutes=10), "-00001200", "000000040"),
        _tic_frame(base - timedelta(minutes=5), "000001300", "000000050"),  # good
    ]
    gateway.start()
    try:
        # pyserial flushes the input when it opens the port: write only once it is open.
        assert gateway.wait_ready(5)
        for frame in frames:
            os.write(master, frame)
        assert wait_until(lambda: len(_refused(gateway)) == 4), _refused(gateway)
        assert gateway.writer.flush(10)
        assert _stored(store, ["grid-import", "grid-export"], "energy", now) == {
            "grid-import": [1000.0, 1300.0],
            "grid-export": [10.0, 20.0, 40.0, 50.0],
        }
    finally:
        gateway.stop()
        store.close()
    refused = _refused(gateway)
    assert {d.origin for d in refused} == {f"tic:{port}"}
    reasons = [d.reason for d in refused]
    assert reasons[0].startswith("meter s1/grid-import: value out of range: 1e+16 Wh")
    assert reasons[1].startswith("meter s1/grid-import: time out of range: ")
    assert "1.0 days ahead of the gateway's clock" in reasons[1]
    assert reasons[2].startswith("meter s1/grid-export: time out of range: ")
    assert reasons[3] == "group EAST: '-00001200' is not a number"


#: What the emulated devices serve: an SDM630 (unit 1, kWh) and an inverter (unit 2, Wh).
GOOD = {1: {"import_energy": 12345.5, "export_energy": 678.25, "total_power": -1520.25},
        2: {"lifetime_energy": 9_876_543.0}}  # fmt: skip


def _modbus_config(tcp_port: int) -> str:
    common = (
        f'type = "modbus", transport = "tcp", host = "127.0.0.1", tcp_port = {tcp_port}, '
        "interval_s = 0.1, timeout_s = 0.5, retries = 1"
    )
    text = SITE_S1
    for meter_id, role, unit, unit_id, map_name, register in (
        ("grid_import", "grid_import", "Wh", 1, "sdm630", "import_energy"),
        ("grid_export", "grid_export", "Wh", 1, "sdm630", "export_energy"),
        ("grid_power", "measurement", "W", 1, "sdm630", "total_power"),
        ("pv", "production", "Wh", 2, "sunspec-inverter", "lifetime_energy"),
    ):
        text += f"""
[[sites.meters]]
id = "{meter_id}"
role = "{role}"
unit = "{unit}"
source = {{ {common}, unit_id = {unit_id}, map = "{map_name}", register = "{register}" }}
"""
    return text


def test_modbus_refusals_are_dead_lettered_and_the_good_readings_stored(
    tmp_path: Path, now: datetime
) -> None:
    """Modbus values carry no time: the gateway stamps its own, so the time checked is
    its clock's — refused when that clock is not set (a board without a real-time clock
    before NTP)."""
    served: dict[int, dict[str, float]] = {1: dict(GOOD[1]), 2: dict(GOOD[2])}
    served[1]["import_energy"] = -5.0  # negative index (a signed register misread?)
    served[1]["export_energy"] = 1e13  # kWh: 1e16 Wh
    clock = [now.replace(microsecond=0)]

    def values(unit_id: int, _now: datetime) -> Mapping[str, float]:
        return dict(served[unit_id])

    maps = shipped_maps()
    emulator = ModbusTcpEmulator(
        {1: maps["sdm630"], 2: maps["sunspec-inverter"]},
        values,
        scale_factors={"lifetime_energy_sf": 0},
    )
    with emulator:
        store = SqliteStore(tmp_path / "readings.db")
        gateway = Gateway(
            parse_sites(_modbus_config(emulator.port)),
            store,
            SourceOptions(clock=lambda: clock[0]),
            dead_letters=DeadLetterLog(tmp_path / "dead.jsonl"),
            batch_delay_s=0.1,
        )
        gateway.start()
        try:
            assert wait_until(lambda: {NEGATIVE, MAGNITUDE} <= _kinds(_refused(gateway)))
            assert wait_until(lambda: _stored(store, ["pv"], "energy", now)["pv"] == [9_876_543.0])
            assert gateway.writer.flush(10)
            stored = _stored(store, ["grid_import", "grid_export", "pv"], "energy", now)
            assert stored == {"grid_import": [], "grid_export": [], "pv": [9_876_543.0]}
            assert _stored(store, ["grid_power"], "power", now) == {"grid_power": [-1520.25]}

            # The gateway's clock goes wrong, then right again.
            served[1].update(GOOD[1])
            clock[0] = datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC)
            assert wait_until(lambda: TIME in _kinds(_refused(gateway)))
            clock[0] = now.replace(microsecond=0) + timedelta(minutes=1)
            assert wait_until(
                lambda: (
                    _stored(store, ["grid_import"], "energy", now)["grid_import"] == [12_345_500.0]
                )
            )
            assert gateway.writer.flush(10)
            # Nothing was stored at the wrong clock's time.
            meters = ["grid_import", "grid_export", "pv"]
            in_1970 = _stored(store, meters, "energy", datetime(1970, 1, 3, tzinfo=UTC))
            assert in_1970 == {m: [] for m in meters}
        finally:
            gateway.stop()
            store.close()
    refused = _refused(gateway)
    assert {d.origin for d in refused} == {
        f"modbus:127.0.0.1:{emulator.port} unit 1",
        f"modbus:127.0.0.1:{emulator.port} unit 2",
    }
    reasons = {d.reason.split(" (")[0] for d in refused}
    assert "meter s1/grid_import: negative index: -5 kWh" in reasons
    assert "meter s1/grid_export: value out of range: 9999999827968 kWh" in reasons
    assert "meter s1/pv: time out of range: 1970-01-01T00:00:05+00:00 is before 2000-01-01" in (
        reasons
    )
