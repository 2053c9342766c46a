"""Modbus: register decoding (pure), shipped maps, and a gateway line polling emulated
devices over real serial bytes (socat pseudo-terminals) and over TCP."""

from __future__ import annotations

import logging
import math
import struct
import threading
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers.support import SITE_S1, wait_until
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.modbus_maps import (
    NOT_IMPLEMENTED,
    RegisterMap,
    RegisterSpec,
    decode_registers,
    encode_value,
    not_implemented_words,
    shipped_maps,
)
from domain.readings import Reading
from domain.site import parse_sites
from firmware_sim.modbus_emulator import (
    ModbusRtuEmulator,
    ModbusTcpEmulator,
    building_values,
)
from firmware_sim.virtual_serial import VirtualSerialPair
from gateway.sources.modbus.source import ModbusLineSource, modbus_sources, plan_reads
from gateway.sources.registry import SOURCE_FACTORIES, SourceOptions

INT_RANGES = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
WORD_ORDERS = ("big", "little")


def spec(data_type: str, word_order: str = "big", scale: float = 1.0) -> RegisterSpec:
    return RegisterSpec.model_validate(
        {
            "name": "x",
            "address": 0,
            "data_type": data_type,
            "word_order": word_order,
            "scale": scale,
            "unit": "W",
        }
    )


def words_of(data: bytes, word_order: str) -> list[int]:
    """Independent oracle: big-endian bytes → words in register order."""
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    return words if word_order == "big" else words[::-1]


def is_sentinel(n: int, s: RegisterSpec) -> bool:
    """Whether ``n`` is stored as the type's "not implemented" value."""
    return n % (1 << (16 * s.count)) == NOT_IMPLEMENTED[s.data_type]


# -- decode / encode, pure ------------------------------------------------------------


@given(st.data())
def test_integers_round_trip_in_every_type_and_word_order(data: st.DataObject) -> None:
    data_type = data.draw(st.sampled_from(sorted(INT_RANGES)))
    word_order = data.draw(st.sampled_from(WORD_ORDERS))
    lo, hi = INT_RANGES[data_type]
    s = spec(data_type, word_order)
    n = data.draw(st.integers(lo, hi).filter(lambda v: not is_sentinel(v, s)))
    words = words_of(n.to_bytes(2 * s.count, "big", signed=lo < 0), word_order)
    assert decode_registers(s, words) == float(n)
    if abs(n) <= 2**53:  # exact as a float, so encodable back
        assert encode_value(s, float(n)) == words


@given(
    st.sampled_from(WORD_ORDERS),
    st.floats(width=32, allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False),
)
def test_floats_round_trip(word_order: str, f32: float, f64: float) -> None:
    s32, s64 = spec("float32", word_order), spec("float64", word_order)
    words32 = words_of(struct.pack(">f", f32), word_order)
    words64 = words_of(struct.pack(">d", f64), word_order)
    assert decode_registers(s32, words32) == f32
    assert decode_registers(s64, words64) == f64
    assert encode_value(s32, f32) == words32
    assert encode_value(s64, f64) == words64


def test_word_order_known_vectors() -> None:
    assert encode_value(spec("uint32"), 0x12345678) == [0x1234, 0x5678]
    assert encode_value(spec("uint32", "little"), 0x12345678) == [0x5678, 0x1234]
    assert encode_value(spec("float32"), 1.0) == [0x3F80, 0x0000]
    assert encode_value(spec("float32", "little"), 1.0) == [0x0000, 0x3F80]
    assert encode_value(spec("int64", "little"), -2) == [0xFFFE, 0xFFFF, 0xFFFF, 0xFFFF]
    assert decode_registers(spec("int16"), [0xFFFF]) == -1.0
    assert decode_registers(spec("float64"), [0x4059, 0, 0, 0]) == 100.0


@given(
    data_type=st.sampled_from(["int16", "uint16", "int32", "uint32"]),
    word_order=st.sampled_from(WORD_ORDERS),
    scale_factor=st.integers(-10, 10),
    data=st.data(),
)
def test_sunspec_scale_factor_round_trips(
    data_type: str, word_order: str, scale_factor: int, data: st.DataObject
) -> None:
    lo, hi = INT_RANGES[data_type]
    s = spec(data_type, word_order)
    n = data.draw(st.integers(lo, hi).filter(lambda v: not is_sentinel(v, s)))
    words = encode_value(s, float(n))
    value = decode_registers(s, words, scale_factor)
    assert math.isclose(value, n * 10.0**scale_factor, rel_tol=1e-12)
    assert encode_value(s, value, scale_factor) == words


def test_scale_and_scale_factor_values() -> None:
    assert decode_registers(spec("int16"), [1234], scale_factor=-1) == 123.4
    assert decode_registers(spec("uint16", scale=0.01), [23050]) == 230.5
    assert decode_registers(spec("uint32"), [0, 12], scale_factor=3) == 12000.0
    assert decode_registers(spec("int16", scale=0.1), [1000], scale_factor=-2) == 1.0
    assert encode_value(spec("int16"), 123.4, scale_factor=-1) == [1234]
    assert encode_value(spec("uint16", scale=0.01), 230.5) == [23050]
    assert encode_value(spec("int16"), -32.76, scale_factor=-3) == [(-32760) & 0xFFFF]


@pytest.mark.parametrize("data_type", sorted(NOT_IMPLEMENTED))
def test_not_implemented_sentinels_raise(data_type: str) -> None:
    for word_order in WORD_ORDERS:
        s = spec(data_type, word_order)
        words = not_implemented_words(s)
        with pytest.raises(ValueError, match="not implemented"):
            decode_registers(s, words)
        sentinel_value = NOT_IMPLEMENTED[data_type]
        if data_type.startswith("int"):
            sentinel_value -= 2 ** (16 * s.count)  # the signed reading of the sentinel
        # 2**64 - 1 is no float: it rounds up to 2**64, out of range.
        expected = "does not fit" if data_type == "uint64" else "not implemented"
        with pytest.raises(ValueError, match=expected):
            encode_value(s, float(sentinel_value))


@pytest.mark.parametrize("data_type", ["float32", "float64"])
def test_nan_and_infinities_raise(data_type: str) -> None:
    s = spec(data_type)
    fmt = ">f" if data_type == "float32" else ">d"
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="not a number"):
            decode_registers(s, words_of(struct.pack(fmt, bad), "big"))
        with pytest.raises(ValueError, match="cannot encode"):
            encode_value(s, bad)
    with pytest.raises(ValueError, match="not a number"):
        decode_registers(s, not_implemented_words(s))  # SunSpec float NI is a NaN


def test_bad_input_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match="spans 2 words, got 1"):
        decode_registers(spec("float32"), [0])
    with pytest.raises(ValueError, match="0 to 0xFFFF"):
        decode_registers(spec("uint16"), [0x10000])
    with pytest.raises(ValueError, match="range -10 to 10"):
        decode_registers(spec("int16"), [1], scale_factor=11)
    with pytest.raises(ValueError, match="does not fit"):
        encode_value(spec("int16"), 40000)
    with pytest.raises(ValueError, match="does not fit"):
        encode_value(spec("uint16"), -1)
    with pytest.raises(ValueError, match="does not fit"):
        encode_value(spec("int16"), 3276.8, scale_factor=-1)
    with pytest.raises(ValueError, match="does not fit"):
        encode_value(spec("float32"), 1e39)


# -- shipped maps -----------------------------------------------------------------------


def test_shipped_maps_load_and_scale_registers_exist() -> None:
    maps = shipped_maps()
    assert {"sdm630", "sunspec-inverter"} <= set(maps)
    for register_map in maps.values():
        for r in register_map.registers:
            if r.scale_register is not None:
                sf = register_map.register(r.scale_register)
                assert sf is not None, f"{register_map.name}.{r.name}"
                assert sf.data_type == "int16"
        for table in ("holding", "input"):  # no two registers share an address
            used = [
                a
                for r in register_map.registers
                if r.table == table
                for a in range(r.address, r.address + r.count)
            ]
            assert len(used) == len(set(used)), register_map.name


def test_shipped_map_addresses() -> None:
    sdm = shipped_maps()["sdm630"]
    expected_sdm = {
        "voltage_l1": 0x0000,
        "voltage_l2": 0x0002,
        "voltage_l3": 0x0004,
        "current_l1": 0x0006,
        "total_power": 0x0034,
        "frequency": 0x0046,
        "import_energy": 0x0048,
        "export_energy": 0x004A,
        "total_energy": 0x0156,
    }
    for name, address in expected_sdm.items():
        r = sdm.register(name)
        assert r is not None and r.address == address and r.table == "input"
        assert r.data_type == "float32" and r.word_order == "big"
    assert {sdm.register(n).unit for n in ("import_energy", "export_energy")} == {"kWh"}  # type: ignore[union-attr]

    inverter = shipped_maps()["sunspec-inverter"]
    expected_inverter = {
        "ac_power": (40083, "int16", "ac_power_sf"),
        "ac_power_sf": (40084, "int16", None),
        "ac_frequency": (40085, "uint16", "ac_frequency_sf"),
        "lifetime_energy": (40093, "uint32", "lifetime_energy_sf"),
        "lifetime_energy_sf": (40095, "int16", None),
    }
    for name, (address, data_type, scale_register) in expected_inverter.items():
        r = inverter.register(name)
        assert r is not None and r.table == "holding"
        assert (r.address, r.data_type, r.scale_register) == (address, data_type, scale_register)


def test_a_map_with_a_dangling_scale_register_is_refused() -> None:
    with pytest.raises(ValidationError, match="scale_register 'w_sf'"):
        RegisterMap.model_validate(
            {
                "name": "bad",
                "registers": [
                    {
                        "name": "w",
                        "address": 0,
                        "data_type": "int16",
                        "unit": "W",
                        "scale_register": "w_sf",
                    }
                ],
            }
        )


# -- real I/O ---------------------------------------------------------------------------

SDM_VALUES = {
    "voltage_l1": 231.5,
    "total_power": -1520.25,
    "frequency": 50.0,
    "import_energy": 12345.5,  # kWh
    "export_energy": 678.25,  # kWh
}
INVERTER_VALUES = {"ac_power": 1234.5, "lifetime_energy": 9_876_543.0}
SCALE_FACTORS = {"ac_power_sf": -1, "lifetime_energy_sf": 0}


def site_config(where: str, silent_unit: int | None = None) -> str:
    """Six meters on one line: an SDM630 at unit 1, a SunSpec inverter at unit 2."""
    common = f"{where}, interval_s = 0.1, timeout_s = 0.1, retries = 1"
    meters = [
        ("grid_import", "grid_import", "Wh", 1, "sdm630", "import_energy"),
        ("grid_export", "grid_export", "Wh", 1, "sdm630", "export_energy"),
        ("grid_power", "measurement", "W", 1, "sdm630", "total_power"),
        ("voltage", "measurement", "V", 1, "sdm630", "voltage_l1"),
        ("frequency", "measurement", "Hz", 1, "sdm630", "frequency"),
        ("pv", "production", "Wh", 2, "sunspec-inverter", "lifetime_energy"),
        ("pv_power", "measurement", "W", 2, "sunspec-inverter", "ac_power"),
    ]
    if silent_unit is not None:
        meters.append(("ghost", "measurement", "W", silent_unit, "sdm630", "total_power"))
    text = SITE_S1
    for meter_id, role, unit, unit_id, map_name, register in meters:
        what = f'map = "{map_name}", register = "{register}"'
        text += f"""
[[sites.meters]]
id = "{meter_id}"
role = "{role}"
unit = "{unit}"
source = {{ type = "modbus", {common}, unit_id = {unit_id}, {what} }}
"""
    return text


EXPECTED = {
    "grid_import": ("energy", 12_345_500.0),
    "grid_export": ("energy", 678_250.0),
    "grid_power": ("power", -1520.25),
    "voltage": ("voltage", 231.5),
    "frequency": ("frequency", 50.0),
    "pv": ("energy", 9_876_543.0),
    "pv_power": ("power", 1234.5),
}


class FakeSink:
    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.rejects: list[tuple[str, str, bytes]] = []
        self._lock = threading.Lock()

    def accept(self, readings: Sequence[Reading]) -> None:
        with self._lock:
            self.readings.extend(readings)

    def reject(self, origin: str, reason: str, payload: bytes) -> None:
        with self._lock:
            self.rejects.append((origin, reason, payload))

    def latest(self) -> dict[str, Reading]:
        with self._lock:
            return {r.meter: r for r in self.readings}

    def count(self) -> int:
        with self._lock:
            return len(self.readings)


class Devices:
    """What the emulated devices serve; the test changes it while they run."""

    def __init__(self) -> None:
        self.served: dict[int, dict[str, float]] = {1: dict(SDM_VALUES), 2: dict(INVERTER_VALUES)}

    def __call__(self, unit_id: int, _now: datetime) -> Mapping[str, float]:
        return dict(self.served[unit_id])


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[VirtualSerialPair]:
    with VirtualSerialPair(tmp_path / "ttyGW", tmp_path / "ttyEMU") as p:
        yield p


@pytest.fixture
def devices() -> Devices:
    return Devices()


@pytest.fixture
def emulator(pair: VirtualSerialPair, devices: Devices) -> Iterator[ModbusRtuEmulator]:
    maps = shipped_maps()
    emu = ModbusRtuEmulator(
        pair.emulator_path,
        {1: maps["sdm630"], 2: maps["sunspec-inverter"]},
        devices,
        scale_factors=SCALE_FACTORS,
        baudrate=19200,
    )
    emu.start()
    yield emu
    emu.stop()


#: The sources' clock: Modbus values carry no time, each is stamped with the poll's.
POLLED_AT = datetime(2026, 6, 1, 12, tzinfo=UTC)


def line_source(config_text: str) -> ModbusLineSource:
    sources = modbus_sources(parse_sites(config_text), SourceOptions(clock=lambda: POLLED_AT))
    assert len(sources) == 1
    source = sources[0]
    assert isinstance(source, ModbusLineSource)
    return source


@pytest.fixture
def running() -> Iterator[list[ModbusLineSource]]:
    """Sources started by a test, stopped at its end whatever happens."""
    started: list[ModbusLineSource] = []
    yield started
    for source in started:
        source.stop()


def start(source: ModbusLineSource, running: list[ModbusLineSource]) -> FakeSink:
    sink = FakeSink()
    source.start(sink)
    running.append(source)
    return sink


def assert_values_served(sink: FakeSink, meters: Mapping[str, tuple[str, float]]) -> None:
    def served() -> bool:
        latest = sink.latest()
        return all(m in latest and latest[m].value == v for m, (_, v) in meters.items())

    wait_until(served, 5)
    latest = sink.latest()
    assert set(meters) <= set(latest), latest.keys()
    for meter, (quantity, value) in meters.items():
        reading = latest[meter]
        assert (reading.site, reading.quantity, reading.value) == ("s1", quantity, value), meter
        assert reading.time.tzinfo is UTC
        assert reading.time == POLLED_AT


def test_modbus_factory_is_registered() -> None:
    import gateway.gateway  # noqa: F401  registers every source type

    assert "modbus" in SOURCE_FACTORIES


def test_reads_are_grouped_per_device_and_table() -> None:
    source = line_source(site_config('port = "/dev/null"'))
    blocks = {(b.unit_id, b.table, b.address, b.count) for b in source.blocks}
    assert blocks == {
        (1, "input", 0x0000, 2),  # voltage_l1
        (1, "input", 0x0034, 2),  # total_power
        (1, "input", 0x0046, 6),  # frequency, import, export
        (2, "holding", 40083, 2),  # ac_power + W_SF
        (2, "holding", 40093, 3),  # lifetime energy (2) + WH_SF
    }
    assert (source.name, source.interval_s, source.timeout_s, source.retries) == (
        "modbus:/dev/null",
        0.1,
        0.1,
        1,
    )
    assert max(b.count for b in plan_reads(source.points, max_registers=4)) == 4


def test_rtu_line_polls_two_devices_over_real_serial_bytes(
    pair: VirtualSerialPair,
    emulator: ModbusRtuEmulator,
    devices: Devices,
    running: list[ModbusLineSource],
) -> None:
    source = line_source(site_config(f'port = "{pair.device_path}", baudrate = 19200'))
    sink = start(source, running)

    assert_values_served(sink, EXPECTED)  # kWh of the SDM630 stored as Wh
    assert wait_until(lambda: source.ready, 2)
    assert emulator.requests[1] > 0 and emulator.requests[2] > 0

    # The emulator encodes the current values before each answer.
    devices.served[1]["import_energy"] = 12346.0
    devices.served[2]["lifetime_energy"] = 9_876_600.0
    assert_values_served(
        sink, {"grid_import": ("energy", 12_346_000.0), "pv": ("energy", 9_876_600.0)}
    )
    assert source.polls == source.received > 0
    assert (source.timeouts, source.crc_errors, source.exceptions) == (0, 0, 0)
    assert source.decode_errors == 0 and not sink.rejects


def test_not_implemented_value_is_rejected_not_stored(
    pair: VirtualSerialPair,
    emulator: ModbusRtuEmulator,
    devices: Devices,
    running: list[ModbusLineSource],
) -> None:
    devices.served[2]["ac_power"] = math.nan  # served as int16 0x8000
    source = line_source(site_config(f'port = "{pair.device_path}", baudrate = 19200'))
    sink = start(source, running)

    assert wait_until(lambda: source.decode_errors > 0, 5)
    origin, reason, payload = sink.rejects[0]
    assert origin == f"modbus:{pair.device_path} unit 2"
    assert "pv_power" in reason and "not implemented" in reason and payload == b""
    assert_values_served(sink, {k: v for k, v in EXPECTED.items() if k != "pv_power"})
    assert "pv_power" not in sink.latest()


def test_unplug_and_replug_resumes_with_one_warning(
    pair: VirtualSerialPair,
    emulator: ModbusRtuEmulator,
    running: list[ModbusLineSource],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.sources.modbus.source")
    source = line_source(site_config(f'port = "{pair.device_path}", baudrate = 19200'))
    source.backoff_initial_s, source.backoff_max_s = 0.05, 0.2
    sink = start(source, running)
    assert_values_served(sink, EXPECTED)

    pair.unplug()  # the USB adapter is pulled: both ends vanish
    emulator.stop()
    assert wait_until(lambda: not source.ready, 3)
    assert wait_until(lambda: any("unavailable" in r.message for r in caplog.records), 3)
    count = sink.count()
    threading.Event().wait(0.6)  # several reconnection attempts
    assert sink.count() == count

    pair.plug()
    emulator.start()
    assert wait_until(lambda: sink.count() > count + len(EXPECTED), 5)
    assert wait_until(lambda: source.ready, 2)
    assert_values_served(sink, EXPECTED)

    ours = [r for r in caplog.records if r.name == "gateway.sources.modbus.source"]
    warnings = [r for r in ours if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.message for r in warnings]
    assert "unavailable" in warnings[0].message
    assert len([r for r in ours if "is back" in r.message]) == 1


def test_a_silent_unit_times_out_and_the_others_are_still_read(
    pair: VirtualSerialPair,
    emulator: ModbusRtuEmulator,
    running: list[ModbusLineSource],
) -> None:
    source = line_source(
        site_config(f'port = "{pair.device_path}", baudrate = 19200', silent_unit=7)
    )
    sink = start(source, running)

    assert wait_until(lambda: source.timeouts >= 4, 5)
    assert_values_served(sink, EXPECTED)
    assert "ghost" not in sink.latest()
    assert source.ready and source._thread is not None and source._thread.is_alive()
    assert source.exceptions == 0  # silence, not an exception response


def test_crc_errors_are_counted_and_retried(
    pair: VirtualSerialPair,
    emulator: ModbusRtuEmulator,
    running: list[ModbusLineSource],
) -> None:
    source = line_source(site_config(f'port = "{pair.device_path}", baudrate = 19200'))
    sink = start(source, running)
    assert_values_served(sink, EXPECTED)

    emulator.corrupt_responses(3)
    assert wait_until(lambda: source.crc_errors >= 3, 5)
    count = sink.count()
    assert wait_until(lambda: sink.count() > count + len(EXPECTED), 5)
    assert source.ready and not sink.rejects


def test_tcp_line_polls_two_devices(devices: Devices, running: list[ModbusLineSource]) -> None:
    maps = shipped_maps()
    emulator = ModbusTcpEmulator(
        {1: maps["sdm630"], 2: maps["sunspec-inverter"]}, devices, scale_factors=SCALE_FACTORS
    )
    with emulator:
        assert emulator.port > 0
        where = f'transport = "tcp", host = "127.0.0.1", tcp_port = {emulator.port}'
        source = line_source(site_config(where))
        assert source.name == f"modbus:127.0.0.1:{emulator.port}"
        sink = start(source, running)
        assert_values_served(sink, EXPECTED)
        assert wait_until(lambda: source.ready, 2)
        assert (source.timeouts, source.crc_errors, source.exceptions) == (0, 0, 0)


# -- the building as an inverter ---------------------------------------------------------


def test_building_values_follow_the_accelerated_clock() -> None:
    index = pd.date_range("2024-06-01T10:00Z", periods=4, freq="10min", name="time")
    power = np.array([6000.0, 12000.0, 0.0, 3000.0])
    energy = np.concatenate(([0.0], np.cumsum(power[:-1] / 6.0)))  # Wh per 10 min
    frame = pd.DataFrame({"pv_power_w": power, "pv_wh": energy}, index=index)
    real0 = datetime(2030, 1, 1, tzinfo=UTC)
    values = building_values(
        frame, lambda now: index[0] + (now - real0) * 60.0, energy_offset_wh=1e6
    )

    at: Any = lambda seconds: values(2, real0 + timedelta(seconds=seconds))  # noqa: E731
    assert at(0)["lifetime_energy"] == 1e6 and at(0)["ac_power"] == 6000.0
    # 15 real seconds = 15 simulated minutes: 1000 Wh + half a step at 12 kW.
    assert at(15)["lifetime_energy"] == pytest.approx(1e6 + 1000.0 + 1000.0)
    assert at(15)["ac_power"] == 12000.0
    assert at(3600)["lifetime_energy"] == 1e6 + energy[-1]  # held at the frame's end
    assert at(-10)["lifetime_energy"] == 1e6  # and at its start

    inverter = shipped_maps()["sunspec-inverter"]
    for name in at(15):
        assert inverter.register(name) is not None, name


def test_line_errors_are_exported_in_the_gateway_metrics(
    tmp_path: Path,
    pair: VirtualSerialPair,
    emulator: ModbusRtuEmulator,
) -> None:
    """Timeouts (a silent unit) and CRC errors (corrupted answers) over a real pty, read
    back from the gateway's /metrics as counters labelled by source."""
    from prometheus_client.parser import text_string_to_metric_families

    from gateway.gateway import Gateway
    from stores import open_store

    config = parse_sites(
        site_config(f'port = "{pair.device_path}", baudrate = 19200', silent_unit=7)
    )
    source = line_source(
        site_config(f'port = "{pair.device_path}", baudrate = 19200', silent_unit=7)
    )
    store = open_store(f"sqlite:///{tmp_path}/readings.db")
    gateway = Gateway(config, store, sources=[source], batch_delay_s=0.1)
    gateway.start()
    try:
        port = gateway.serve_metrics()

        def scrape() -> dict[str, float]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
            return {
                s.name: s.value
                for f in text_string_to_metric_families(text)
                for s in f.samples
                if s.labels.get("source") == source.name
            }

        assert wait_until(lambda: source.timeouts >= 2, 15)
        emulator.corrupt_responses(3)
        assert wait_until(lambda: source.crc_errors >= 3, 15)
        metrics = scrape()
        assert metrics["microville_gateway_modbus_timeouts_total"] >= 2
        assert metrics["microville_gateway_modbus_crc_errors_total"] >= 3
        assert metrics["microville_gateway_modbus_exceptions_total"] == 0
        assert metrics["microville_gateway_modbus_polls_total"] > 0
    finally:
        gateway.stop()
        store.close()


# --- Byte order within words ------------------------------------------------------


def _spec_in(layout: str, data_type: str = "uint32") -> RegisterSpec:
    """A register in one of the layouts ABCD, CDAB, BADC, DCBA (A: most significant byte)."""
    word_order, byte_order = {
        "ABCD": ("big", "big"),
        "CDAB": ("little", "big"),
        "BADC": ("big", "little"),
        "DCBA": ("little", "little"),
    }[layout]
    return RegisterSpec.model_validate(
        {"name": "x", "address": 0, "data_type": data_type, "word_order": word_order,
         "byte_order": byte_order, "unit": "W"}
    )  # fmt: skip


@pytest.mark.parametrize(
    ("layout", "u32", "f32"),
    [
        # 0x12345678 and float32 1.0 (0x3F800000), written out by hand per layout.
        ("ABCD", [0x1234, 0x5678], [0x3F80, 0x0000]),
        ("CDAB", [0x5678, 0x1234], [0x0000, 0x3F80]),
        ("BADC", [0x3412, 0x7856], [0x803F, 0x0000]),
        ("DCBA", [0x7856, 0x3412], [0x0000, 0x803F]),
    ],
)
def test_byte_and_word_order_known_vectors(layout: str, u32: list[int], f32: list[int]) -> None:
    assert encode_value(_spec_in(layout), 0x12345678) == u32
    assert decode_registers(_spec_in(layout), u32) == 0x12345678
    assert encode_value(_spec_in(layout, "float32"), 1.0) == f32
    assert decode_registers(_spec_in(layout, "float32"), f32) == 1.0
    # int16 is one word: only the byte order matters (-2 is 0xFFFE).
    swapped = layout in ("BADC", "DCBA")
    assert encode_value(_spec_in(layout, "int16"), -2) == [0xFEFF if swapped else 0xFFFE]
    # The "not implemented" words are laid out the same way, and still refused.
    for data_type in ("uint32", "float32", "int16"):
        s = _spec_in(layout, data_type)
        with pytest.raises(ValueError, match=r"not implemented|not a number"):
            decode_registers(s, not_implemented_words(s))


def test_a_byte_swapped_device_is_read_over_a_real_pty(
    pair: VirtualSerialPair, running: list[ModbusLineSource]
) -> None:
    where = f'port = "{pair.device_path}", unit_id = 3, interval_s = 0.1, timeout_s = 0.2'
    config = parse_sites(SITE_S1 + f"""
[[register_maps]]
name = "badc-inverter"

[[register_maps.registers]]
name = "energy"
address = 0
data_type = "uint32"
word_order = "little"
byte_order = "little"
unit = "Wh"

[[register_maps.registers]]
name = "power"
address = 2
data_type = "float32"
byte_order = "little"
unit = "W"

[[sites.meters]]
id = "pv"
role = "production"
unit = "Wh"
source = {{ type = "modbus", {where}, map = "badc-inverter", register = "energy" }}

[[sites.meters]]
id = "pv-power"
role = "measurement"
unit = "W"
source = {{ type = "modbus", {where}, map = "badc-inverter", register = "power" }}
""")  # fmt: skip
    register_map = config.register_map("badc-inverter")
    assert register_map is not None
    values = {"energy": 305_419_896.0, "power": 1234.5}
    with ModbusRtuEmulator(pair.emulator_path, {3: register_map}, lambda _u, _t: values):
        (source,) = modbus_sources(config, SourceOptions())
        assert isinstance(source, ModbusLineSource)
        sink = start(source, running)
        assert wait_until(lambda: {"pv", "pv-power"} <= set(sink.latest()), 5)
        latest = sink.latest()
        assert (latest["pv"].value, latest["pv-power"].value) == (305_419_896.0, 1234.5)


def test_byte_order_is_validated_naming_the_key() -> None:
    with pytest.raises(ValidationError, match="byte_order"):
        RegisterSpec.model_validate(
            {"name": "x", "address": 0, "data_type": "uint32", "byte_order": "middle", "unit": "W"}
        )


# --- Logging: scoped, once per outage ------------------------------------------------


def test_pymodbus_is_quiet_only_in_the_polling_threads(
    pair: VirtualSerialPair,
    emulator: ModbusRtuEmulator,
    running: list[ModbusLineSource],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="pymodbus")
    source = line_source(
        site_config(f'port = "{pair.device_path}", baudrate = 19200', silent_unit=7)
    )
    start(source, running)
    assert wait_until(lambda: source.timeouts >= 4, 5)  # pymodbus logs each one
    assert source._thread is not None
    polling = source._thread.ident
    assert not [r for r in caplog.records if r.name.startswith("pymodbus") and r.thread == polling]
    # Another user of pymodbus in the process (here the test's thread) is still heard.
    assert logging.getLogger("pymodbus").getEffectiveLevel() <= logging.ERROR
    logging.getLogger("pymodbus.logging").error("another client's error")
    assert "another client's error" in [r.getMessage() for r in caplog.records]


def test_a_unit_that_stops_answering_is_said_once_and_back_once(
    pair: VirtualSerialPair,
    emulator: ModbusRtuEmulator,
    running: list[ModbusLineSource],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.sources.modbus.source")
    source = line_source(
        site_config(f'port = "{pair.device_path}", baudrate = 19200', silent_unit=7)
    )
    sink = start(source, running)
    assert_values_served(sink, EXPECTED)

    def said(fragment: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if fragment in r.getMessage()]

    # Unit 7 never answers, the others do: one warning however many timeouts.
    assert wait_until(lambda: source.timeouts >= 10, 10)
    assert said("does not answer") == [
        f"modbus line {pair.device_path} unit 7 does not answer (timeout 0.1 s, 1 retries); "
        "its meters are not read until it does"
    ]
    # Every device falls silent while the port is fine (the emulator stops serving).
    emulator.stop()
    assert wait_until(lambda: len(said("does not answer")) == 3, 20)
    timeouts = source.timeouts
    assert wait_until(lambda: source.timeouts >= timeouts + 30, 20)  # two more cycles
    assert sorted(said("does not answer")) == [
        f"modbus line {pair.device_path} unit {u} does not answer (timeout 0.1 s, 1 retries); "
        "its meters are not read until it does"
        for u in (1, 2, 7)
    ]
    assert said("unavailable") == []  # the port itself never failed
    emulator.start()
    count = sink.count()
    assert wait_until(lambda: sink.count() > count + len(EXPECTED), 10)
    assert wait_until(lambda: len(said("answers again")) == 2, 5)
    assert sorted(m.split(" answers")[0] for m in said("answers again")) == [
        f"modbus line {pair.device_path} unit {u}" for u in (1, 2)
    ]
    assert len(said("does not answer")) == 3


def test_sdm630_factory_line_settings_are_the_sources_defaults() -> None:
    # Eastron SDM630MCT-ML User Manual V1.2: parity/stop bits "0 = one stop bit and no
    # parity, default", "9600 baud, default" — 8N1, which the source defaults to.
    description = shipped_maps()["sdm630"].description
    assert "9600 baud, 8 data bits, no parity, 1 stop bit, unit id 1" in description
    assert "even parity" not in description
    config = parse_sites(site_config('port = "/dev/ttyUSB1"'))
    src = config.sites[0].meters[0].source
    assert (src.baudrate, src.bytesize, src.parity, src.stopbits, src.unit_id) == (  # type: ignore[union-attr]
        9600, 8, "N", 1, 1,
    )  # fmt: skip
