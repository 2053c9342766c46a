"""The emulated serial devices of a site: one virtual cable per serial line, a Linky on
each TIC port, the Modbus devices of each RTU line, all following one simulated building
on one accelerated clock."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pandas as pd

from domain.site import Meter, ModbusSource, Role, Site, SitesConfig, TicSource
from domain.tic_labels import TicMode
from firmware_sim.building import index_at, power_at
from firmware_sim.clock import SimulatedClock
from firmware_sim.linky_emulator import LinkyEmulator
from firmware_sim.modbus_emulator import ModbusRtuEmulator, Values, building_values
from firmware_sim.virtual_serial import VirtualSerialPair

#: The emulator's end of the cable sits next to the device path the gateway opens.
EMULATOR_SUFFIX = ".emulator"


def _grid_meter_values(frame: pd.DataFrame, clock: SimulatedClock, import_column: str) -> Values:
    """An SDM630 counting ``import_column`` as import and, for a grid meter, the export."""
    grid = import_column == "import_wh"

    def values(_unit_id: int, now: datetime) -> dict[str, float]:
        t = clock.at(now)
        imported = index_at(frame, import_column, t)
        exported = index_at(frame, "export_wh", t) if grid else 0.0
        net_w = power_at(frame, "load_power_w", t) - power_at(frame, "pv_power_w", t)
        power_w = net_w if grid else power_at(frame, "heat_pump_power_w", t)
        return {
            "import_energy": imported / 1000,
            "export_energy": exported / 1000,
            "total_energy": (imported + exported) / 1000,
            "total_power": power_w,
            "frequency": 50.0,
            **{f"voltage_l{p}": 230.0 for p in (1, 2, 3)},
        }

    return values


def _device_values(
    meters: list[Meter], map_name: str, frame: pd.DataFrame, clock: SimulatedClock
) -> Values:
    roles = {m.role for m in meters}
    if map_name == "sunspec-inverter":
        return building_values(frame, clock.at)
    if roles & {Role.GRID_IMPORT, Role.GRID_EXPORT}:
        return _grid_meter_values(frame, clock, "import_wh")
    return _grid_meter_values(frame, clock, "heat_pump_wh")


def relocate_serial_ports(config: SitesConfig, folder: Path) -> SitesConfig:
    """``config`` with every emulated serial port (TIC ports, Modbus RTU ports) moved into
    ``folder`` under its own file name: the demo's sample says /tmp/microville/ttyTIC,
    each run gets its own folder, so two demos at once do not take each other's cable."""
    data = config.model_dump(by_alias=True, exclude_unset=True)
    for site in data.get("sites", []):
        for meter in site.get("meters", []):
            source = meter.get("source", {})
            if source.get("type") == "tic" or (
                source.get("type") == "modbus" and source.get("transport", "rtu") == "rtu"
            ):
                source["port"] = str(folder / Path(source["port"]).name)
    return SitesConfig.model_validate(data)


class SerialDevices:
    """Lifecycle: ``plug()`` the cables and power the Modbus devices (they only answer
    when asked), so the gateway can open its ends; ``start()`` the Linkys, which emit on
    their own; ``done()`` tells when every Linky has sent its frame at ``end``; ``stop()``
    once.

    A TIC port configured in mode ``auto`` gets a Linky in standard mode.
    """

    def __init__(
        self,
        config: SitesConfig,
        site: Site,
        building: pd.DataFrame,
        clock: SimulatedClock,
        end: datetime,
        corruption: float = 0.0,
        frame_interval_s: float = 0.02,
    ) -> None:
        self.pairs: list[VirtualSerialPair] = []
        self.linkys: list[LinkyEmulator] = []
        self.modbus: list[ModbusRtuEmulator] = []
        tic_ports: dict[str, TicSource] = {}
        rtu_lines: dict[str, dict[int, list[Meter]]] = defaultdict(lambda: defaultdict(list))
        for meter in site.meters:
            src = meter.source
            if isinstance(src, TicSource):
                tic_ports.setdefault(src.port, src)
            elif isinstance(src, ModbusSource) and src.transport == "rtu":
                rtu_lines[src.line][src.unit_id].append(meter)
        for port, tic in tic_ports.items():
            pair = self._pair(port)
            mode = TicMode.HISTORIC if tic.mode == "historic" else TicMode.STANDARD
            self.linkys.append(
                LinkyEmulator(
                    pair.emulator_path,
                    mode,
                    building,
                    clock,
                    end,
                    frame_interval_s=frame_interval_s,
                    corruption=corruption,
                    first_frame_at=clock.start,
                )
            )
        for line, units in rtu_lines.items():
            pair = self._pair(line)
            devices, values = {}, {}
            for unit_id, meters in units.items():
                src = meters[0].source
                assert isinstance(src, ModbusSource)
                register_map = config.register_map(src.map)
                assert register_map is not None  # validated with the configuration
                devices[unit_id] = register_map
                values[unit_id] = _device_values(meters, src.map, building, clock)
            self.modbus.append(
                ModbusRtuEmulator(
                    pair.emulator_path,
                    devices,
                    lambda unit_id, now, v=values: v[unit_id](unit_id, now),
                    baudrate=src.baudrate,
                    bytesize=src.bytesize,
                    parity=src.parity,
                    stopbits=src.stopbits,
                )
            )

    def _pair(self, device_path: str) -> VirtualSerialPair:
        pair = VirtualSerialPair(device_path, Path(device_path + EMULATOR_SUFFIX))
        self.pairs.append(pair)
        return pair

    @property
    def ports(self) -> list[str]:
        return [str(pair.device_path) for pair in self.pairs]

    def plug(self) -> None:
        for pair in self.pairs:
            pair.plug()
        for modbus in self.modbus:
            modbus.start()

    def start(self) -> None:
        for linky in self.linkys:
            linky.start()

    def done(self) -> bool:
        return all(linky.done.is_set() for linky in self.linkys)

    def stop(self) -> None:
        for emulator in [*self.linkys, *self.modbus]:
            emulator.stop()
        for pair in self.pairs:
            pair.unplug()
