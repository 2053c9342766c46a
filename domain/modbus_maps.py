"""Modbus register maps: declarative tables of what a device serves where.

A map is a named list of registers (address, table, data type, word order, scale,
unit). Maps shipped with the project live in ``domain/maps/*.toml``; a site file may
declare its own under ``[[register_maps]]``. Decoding and encoding of register words are
pure functions; the I/O lives in the gateway (client) and firmware_sim (server).
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib.resources import files
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from microville.domain.units import UnitError, unit_of

DataType = Literal["int16", "uint16", "int32", "uint32", "float32", "int64", "uint64", "float64"]

#: 16-bit words per data type.
WORDS: dict[str, int] = {
    "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2,
    "int64": 4, "uint64": 4, "float64": 4,
}  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisterSpec(_Strict):
    """One value served by a device.

    ``scale`` multiplies the raw number; ``scale_register`` names an int16 register of
    the same map holding a power of ten (SunSpec scale factor) applied on top.
    """

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_]{0,63}$")]
    address: Annotated[int, Field(ge=0, le=65535)]
    table: Literal["holding", "input"] = "holding"
    data_type: DataType
    word_order: Literal["big", "little"] = "big"
    scale: float = 1.0
    scale_register: str | None = None
    unit: str
    description: str = ""

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, unit: str) -> str:
        try:
            unit_of(unit)
        except UnitError as exc:
            raise ValueError(str(exc)) from None
        return unit

    @property
    def count(self) -> int:
        """Number of 16-bit registers the value spans."""
        return WORDS[self.data_type]


class RegisterMap(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    description: str = ""
    registers: Annotated[list[RegisterSpec], Field(min_length=1)]

    def register(self, name: str) -> RegisterSpec | None:
        return next((r for r in self.registers if r.name == name), None)


@cache
def shipped_maps() -> dict[str, RegisterMap]:
    """Register maps shipped in ``domain/maps/*.toml``, by name."""
    maps = {}
    for entry in files("microville.domain.maps").iterdir():
        if entry.name.endswith(".toml"):
            register_map = RegisterMap.model_validate(tomllib.loads(entry.read_text("utf-8")))
            maps[register_map.name] = register_map
    return maps
