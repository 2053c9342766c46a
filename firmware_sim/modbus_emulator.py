"""Modbus devices emulated from their register maps, for tests and demos.

:class:`ModbusRtuEmulator` serves one or more devices (unit ids) on the emulator end of a
:class:`~firmware_sim.virtual_serial.VirtualSerialPair`, as the devices of an
RS-485 bus would; :class:`ModbusTcpEmulator` serves them over Modbus TCP. Both run a
pymodbus asyncio server in a background thread with its own event loop.

Before answering each read request, the emulator asks ``values(unit_id, now)`` for the
current values (a dict from register name to a number in the register's unit, as the
device reports it) and encodes them into the registers with
:func:`~domain.modbus_maps.encode_value`. Registers the dict leaves out keep
their last value (0 at first). SunSpec scale-factor registers hold fixed values
(``scale_factors``). A NaN value, or one that does not fit its register, is served as
the data type's "not implemented" sentinel, as a device does for a point it lacks.

A unit id not served gets no answer at all, as on a real bus.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusBaseServer, ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from domain.modbus_maps import (
    RegisterMap,
    RegisterSpec,
    encode_value,
    not_implemented_words,
)

log = logging.getLogger(__name__)

#: Current values of a device: ``values(unit_id, now)`` → register name → value.
Values = Callable[[int, datetime], Mapping[str, float]]

#: Scale factors served by the SunSpec ``*_SF`` registers (other ones: 0). With W_SF = 0
#: the int16 AC power reaches 32.7 kW; pass ``{"ac_power_sf": 1}`` for a larger plant.
DEFAULT_SCALE_FACTORS: dict[str, int] = {
    "ac_current_sf": -2,
    "ac_voltage_sf": -1,
    "ac_power_sf": 1,  # tens of W: an int16 holds up to 327 kW
    "ac_frequency_sf": -2,
    "ac_apparent_power_sf": 1,
    "lifetime_energy_sf": 0,
    "dc_current_sf": -2,
    "dc_voltage_sf": -1,
    "dc_power_sf": 0,
}

_TABLE_OF_FUNCTION = {3: "holding", 4: "input"}


class _ModbusEmulator:
    """Common part: the devices, their registers, the server thread."""

    def __init__(
        self,
        devices: Mapping[int, RegisterMap],
        values: Values,
        scale_factors: Mapping[str, int] | None = None,
    ) -> None:
        if not devices or any(not 1 <= unit <= 247 for unit in devices):
            raise ValueError("devices: unit ids 1 to 247, at least one")
        self.devices = dict(devices)
        self.values = values
        self.scale_factors = {**DEFAULT_SCALE_FACTORS, **(scale_factors or {})}
        #: Read requests answered, per unit id.
        self.requests: dict[int, int] = dict.fromkeys(self.devices, 0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: ModbusBaseServer | None = None
        self._warned: set[tuple[int, str]] = set()

    # -- lifecycle --------------------------------------------------------------------

    def start(self, timeout_s: float = 5.0) -> None:
        """Serve in a background thread; return once the server listens."""
        if self._thread is not None:
            raise RuntimeError("emulator already started")
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve(started, failure))
            finally:
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=type(self).__name__, daemon=True)
        self._thread.start()
        if not started.wait(timeout_s):
            self.stop()
            raise RuntimeError(f"{type(self).__name__} did not start in {timeout_s} s")
        if failure:
            self._thread.join()
            self._thread = self._loop = self._server = None
            raise RuntimeError(f"{type(self).__name__} could not start: {failure[0]}")

    def stop(self) -> None:
        """Stop serving; ``start()`` may be called again (same port or path)."""
        loop, thread, server = self._loop, self._thread, self._server
        if loop is None or thread is None:
            return
        if server is not None and not loop.is_closed():
            shutdown = server.shutdown()  # type: ignore[no-untyped-call]  # untyped in pymodbus 3.16
            future = asyncio.run_coroutine_threadsafe(shutdown, loop)
            try:
                future.result(5.0)
            except Exception:  # the port may be gone already (unplugged)
                log.debug("emulator shutdown", exc_info=True)
        thread.join(5.0)
        self._thread = self._loop = self._server = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    async def _serve(self, started: threading.Event, failure: list[BaseException]) -> None:
        try:
            self._server = self._make_server(self._sim_devices())
            await self._server.serve_forever(background=True)
        except BaseException as exc:
            failure.append(exc)
            started.set()
            return
        started.set()
        await self._server.serving

    def _make_server(self, devices: list[SimDevice]) -> ModbusBaseServer:
        raise NotImplementedError

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        return data

    # -- registers --------------------------------------------------------------------

    def _sim_devices(self) -> list[SimDevice]:
        sim = [self._sim_device(unit, register_map) for unit, register_map in self.devices.items()]
        # Unit 0 stands for every unit not listed: its action raises NoSuchIdException,
        # which the server (ignore_missing_devices) answers with silence. Without it
        # pymodbus 3.16 answers "device failure" for an unknown unit.
        everything = [SimData(0, count=65536, values=0, datatype=DataType.REGISTERS)]
        bits = [SimData(0, values=False, datatype=DataType.BITS)]
        sim.append(SimDevice(0, simdata=(bits, bits, everything, everything), action=_absent))
        return sim

    def _sim_device(self, unit_id: int, register_map: RegisterMap) -> SimDevice:
        tables: dict[str, dict[int, int]] = {"holding": {}, "input": {}}
        for spec in register_map.registers:
            for offset, word in enumerate(self._initial_words(unit_id, spec)):
                tables[spec.table][spec.address + offset] = word
        blocks = {name: _runs(words) for name, words in tables.items()}
        bits = [SimData(0, values=False, datatype=DataType.BITS)]
        return SimDevice(
            unit_id,
            simdata=(bits, bits, blocks["holding"], blocks["input"]),
            action=self._make_action(unit_id),
        )

    def _initial_words(self, unit_id: int, spec: RegisterSpec) -> list[int]:
        if spec.name in self._scale_registers(unit_id):
            return encode_value(spec, float(self.scale_factors.get(spec.name, 0)))
        return [0] * spec.count

    def _scale_registers(self, unit_id: int) -> set[str]:
        return {r.scale_register for r in self.devices[unit_id].registers if r.scale_register}

    def _encode(self, unit_id: int, spec: RegisterSpec, value: float) -> list[int]:
        scale_factor = (
            self.scale_factors.get(spec.scale_register, 0) if spec.scale_register else None
        )
        try:
            return encode_value(spec, value, scale_factor)
        except ValueError as exc:
            if not math.isnan(value) and (unit_id, spec.name) not in self._warned:
                self._warned.add((unit_id, spec.name))
                log.warning("unit %d serves %s as not implemented: %s", unit_id, spec.name, exc)
            return not_implemented_words(spec)

    def _make_action(self, unit_id: int) -> Any:
        register_map = self.devices[unit_id]
        scale_registers = self._scale_registers(unit_id)

        async def refresh(
            function_code: int,
            start_address: int,
            _address: int,
            _count: int,
            registers: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            table = _TABLE_OF_FUNCTION.get(function_code)
            if table is None or set_values is not None:
                return None  # writes and other functions: plain register semantics
            self.requests[unit_id] += 1
            try:
                values = self.values(unit_id, datetime.now(UTC))
            except Exception:
                log.exception("values() failed for unit %d", unit_id)
                return ExcCodes.DEVICE_FAILURE
            for spec in register_map.registers:
                if spec.table != table or spec.name in scale_registers or spec.name not in values:
                    continue
                offset = spec.address - start_address
                registers[offset : offset + spec.count] = self._encode(
                    unit_id, spec, float(values[spec.name])
                )
            return None

        return refresh


class ModbusRtuEmulator(_ModbusEmulator):
    """Devices on an RS-485 bus, served over RTU on ``port`` (a serial device path).

    ``corrupt_responses(n)`` damages the CRC of the next ``n`` answers, as line noise
    does, to exercise the client's retries.
    """

    def __init__(
        self,
        port: str | Path,
        devices: Mapping[int, RegisterMap],
        values: Values,
        *,
        scale_factors: Mapping[str, int] | None = None,
        baudrate: int = 9600,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: int = 1,
    ) -> None:
        super().__init__(devices, values, scale_factors)
        self.port = str(port)
        self.baudrate = baudrate
        self.bytesize = bytesize
        self.parity = parity
        self.stopbits = stopbits
        self._corrupt = 0
        self._corrupt_lock = threading.Lock()

    def corrupt_responses(self, count: int) -> None:
        with self._corrupt_lock:
            self._corrupt += count

    def _make_server(self, devices: list[SimDevice]) -> ModbusBaseServer:
        return ModbusSerialServer(
            devices,
            port=self.port,
            baudrate=self.baudrate,
            bytesize=self.bytesize,
            parity=self.parity,
            stopbits=self.stopbits,
            ignore_missing_devices=True,
            trace_packet=self._trace_packet,
        )

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if sending and data:
            with self._corrupt_lock:
                if self._corrupt > 0:
                    self._corrupt -= 1
                    return data[:-1] + bytes([data[-1] ^ 0xFF])
        return data


class ModbusTcpEmulator(_ModbusEmulator):
    """Devices behind a Modbus TCP server (a gateway or a networked device).

    ``port=0`` picks a free port, readable from :attr:`port` once started.
    """

    def __init__(
        self,
        devices: Mapping[int, RegisterMap],
        values: Values,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        scale_factors: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(devices, values, scale_factors)
        self.host = host
        self._port = port

    @property
    def port(self) -> int:
        server = self._server
        if self._port == 0 and server is not None:
            sockets = getattr(server.transport, "sockets", None)
            if sockets:
                return int(sockets[0].getsockname()[1])
        return self._port

    def start(self, timeout_s: float = 5.0) -> None:
        super().start(timeout_s)
        self._port = self.port  # keep the port picked, for a restart

    def _make_server(self, devices: list[SimDevice]) -> ModbusBaseServer:
        return ModbusTcpServer(
            devices, address=(self.host, self._port), ignore_missing_devices=True
        )


async def _absent(*_: object) -> ExcCodes | None:
    raise NoSuchIdException("no such unit on this bus")


def _runs(words: dict[int, int]) -> list[SimData]:
    """Contiguous runs of registers, one SimData each; no register: one invalid one."""
    if not words:
        return [SimData(0, datatype=DataType.INVALID)]
    runs: list[SimData] = []
    run: list[int] = []
    start = previous = -2
    for address in sorted(words):
        if address != previous + 1 and run:
            runs.append(SimData(start, values=run, datatype=DataType.REGISTERS))
            run = []
        if not run:
            start = address
        run.append(words[address])
        previous = address
    runs.append(SimData(start, values=run, datatype=DataType.REGISTERS))
    return runs


def building_values(
    frame: pd.DataFrame,
    sim_time: Callable[[datetime], datetime],
    *,
    energy_offset_wh: float = 0.0,
    voltage_v: float = 230.0,
    frequency_hz: float = 50.0,
) -> Values:
    """The ``values`` of a SunSpec inverter (map ``sunspec-inverter``) producing the PV of
    a :func:`~firmware_sim.building.simulate_building` frame.

    ``sim_time`` maps the real instant of a request to simulated time (e.g.
    :meth:`SimulatedClock.at <firmware_sim.clock.SimulatedClock.at>`), held
    within the frame. ``lifetime_energy`` is the ``pv_wh`` index at that time (plus
    ``energy_offset_wh``), exact between samples since the power holds over each step;
    ``ac_power`` is ``pv_power_w`` of the step; voltages and frequency are nominal, the
    currents follow from a balanced three-phase output.
    """
    index = pd.DatetimeIndex(frame.index)
    t0 = index[0].to_pydatetime()
    seconds = np.asarray((index - index[0]).total_seconds(), dtype=float)
    power_w = frame["pv_power_w"].to_numpy(dtype=float)
    energy_wh = frame["pv_wh"].to_numpy(dtype=float)

    def values(_unit_id: int, now: datetime) -> dict[str, float]:
        sim = sim_time(now)
        x = min(max((sim - t0).total_seconds(), 0.0), float(seconds[-1]))
        i = int(np.searchsorted(seconds, x, side="right")) - 1
        power = float(power_w[i])
        energy = float(energy_wh[i]) + power * (x - float(seconds[i])) / 3600.0
        current = power / (3.0 * voltage_v)
        return {
            "ac_power": power,
            "lifetime_energy": energy_offset_wh + energy,
            "ac_frequency": frequency_hz,
            "ac_voltage_l1": voltage_v,
            "ac_voltage_l2": voltage_v,
            "ac_voltage_l3": voltage_v,
            "ac_current": 3.0 * current,
            "ac_current_l1": current,
            "ac_current_l2": current,
            "ac_current_l3": current,
        }

    return values
