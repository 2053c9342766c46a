"""Meter indexes of a simulated building, encoded in each meter's payload format; no I/O.

The simulator feeds each electricity meter from one column of the building frame:

- ``production`` → ``pv_wh``, ``grid_import`` → ``import_wh``,
  ``grid_export`` → ``export_wh``;
- a ``submeter`` whose id contains ``heat`` → ``heat_pump_wh``;
- any other ``submeter`` → ``OTHER_SUBMETER_SHARE`` of ``load_wh``.

Meters of other carriers (gas, heat, water…) are not simulated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from domain.site import Carrier, Meter, Role
from domain.units import unit_of

#: Share of the whole load counted by a submeter that is not the heat pump [-].
OTHER_SUBMETER_SHARE = 0.15

_ROLE_COLUMNS = {
    Role.PRODUCTION: "pv_wh",
    Role.GRID_IMPORT: "import_wh",
    Role.GRID_EXPORT: "export_wh",
}


def is_simulated(meter: Meter) -> bool:
    """Whether the simulator can feed ``meter`` (electricity meters only)."""
    return meter.carrier == Carrier.ELECTRICITY


def carries_device_time(meter: Meter) -> bool:
    """Whether the meter's payload holds the device time (else the receive time is used)."""
    return meter.source.format == "senml" or meter.source.time_field is not None


def meter_indexes(meters: Sequence[Meter], frame: pd.DataFrame) -> pd.DataFrame:
    """Index of each simulated meter at each step.

    Parameters
    ----------
    meters : sequence of Meter
        Electricity meters of one site.
    frame : pandas.DataFrame
        Output of :func:`firmware_sim.building.simulate_building`.

    Returns
    -------
    pandas.DataFrame
        Same index as ``frame``, one column per meter id [Wh].
    """
    columns = {}
    for meter in meters:
        if not is_simulated(meter):
            raise ValueError(f"meter {meter.id!r}: only electricity meters are simulated")
        if meter.role in _ROLE_COLUMNS:
            columns[meter.id] = frame[_ROLE_COLUMNS[meter.role]]
        elif "heat" in meter.id:
            columns[meter.id] = frame["heat_pump_wh"]
        else:
            columns[meter.id] = OTHER_SUBMETER_SHARE * frame["load_wh"]
    return pd.DataFrame(columns, index=frame.index)


def encode_payload(
    meters: Sequence[Meter], values_wh: Mapping[str, float], time: datetime
) -> bytes:
    """Payload of one topic carrying the indexes of ``meters`` at ``time``.

    Parameters
    ----------
    meters : sequence of Meter
        Meters sharing one topic, hence one format; at least one.
    values_wh : mapping of str to float
        Index of each meter by meter id [Wh].
    time : datetime
        Timezone-aware device time, written where the format has room for it.

    Returns
    -------
    bytes
        ``senml``: a SenML pack, a base record (``bn``, the names' part up to their
        last ``:`` when all share it; ``bt`` [s since epoch]) then one record per meter
        in Wh; ``json``: a nested object with each value at its
        meter's dotted ``field``, in the meter's unit, and the epoch seconds at each
        ``time_field``; ``number``: the bare value in the meter's unit (one meter).
    """
    formats = {m.source.format for m in meters}
    if len(formats) != 1 or len({m.source.topic for m in meters}) != 1:
        raise ValueError("meters of one payload must share one topic and one format")
    match formats.pop():
        case "senml":
            return _senml(meters, values_wh, time)
        case "json":
            return _json(meters, values_wh, time)
        case _:
            if len(meters) != 1:
                raise ValueError("a 'number' payload carries one meter")
            meter = meters[0]
            return str(_in_unit(values_wh[meter.id], meter.unit)).encode()


def _in_unit(value_wh: float, unit: str) -> float:
    return float(value_wh) / unit_of(unit).to_base


def _senml(meters: Sequence[Meter], values_wh: Mapping[str, float], time: datetime) -> bytes:
    names = [m.source.name or "" for m in meters]
    prefixes = {name[: name.rfind(":") + 1] for name in names}
    base_name = prefixes.pop() if len(prefixes) == 1 else ""
    base: dict[str, Any] = {"bn": base_name} if base_name else {}
    pack = [base | {"bt": time.timestamp()}]
    pack += [
        {"n": name.removeprefix(base_name), "u": "Wh", "v": float(values_wh[m.id])}
        for m, name in zip(meters, names, strict=True)
    ]
    return json.dumps(pack).encode()


def _json(meters: Sequence[Meter], values_wh: Mapping[str, float], time: datetime) -> bytes:
    document: dict[str, Any] = {}
    for meter in meters:
        src = meter.source
        _put(document, src.field or "", _in_unit(values_wh[meter.id], meter.unit))
        if src.time_field:
            _put(document, src.time_field, time.timestamp())
    return json.dumps(document).encode()


def _put(document: dict[str, Any], path: str, value: float) -> None:
    """Set ``value`` at the dotted ``path`` of ``document``, creating nested objects."""
    *parents, leaf = path.split(".")
    for key in parents:
        document = document.setdefault(key, {})
    document[leaf] = value
