"""Modbus register maps: declarative tables of what a device serves where.

A map is a named list of registers (address, table, data type, word order, byte order,
scale, unit). Maps shipped with the project live in ``domain/maps/*.toml``; a site file may
declare its own under ``[[register_maps]]``. Decoding and encoding of register words
(:func:`decode_registers`, :func:`encode_value`) are pure functions; the I/O lives in the
gateway (client) and firmware_sim (server).

A SunSpec scale-factor register (``W_SF``…) is an ordinary int16 register of the map,
named by the ``scale_register`` of the registers it scales. A scale factor has no unit,
but every register declares one: by convention it carries the unit of the value it
scales.
"""

from __future__ import annotations

import math
import struct
import tomllib
from collections.abc import Sequence
from functools import cache
from importlib.resources import files
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.units import UnitError, unit_of

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

    ``word_order`` ``big``: most significant word first; ``byte_order`` ``big``: most
    significant byte first within each word (the Modbus norm). With the value's bytes
    A B C D (A most significant), the four layouts of a 32-bit value are big/big ABCD,
    little/big CDAB, big/little BADC and little/little DCBA.

    ``scale`` multiplies the raw number; ``scale_register`` names an int16 register of
    the same map holding a power of ten (SunSpec scale factor) applied on top.
    """

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_]{0,63}$")]
    address: Annotated[int, Field(ge=0, le=65535)]
    table: Literal["holding", "input"] = "holding"
    data_type: DataType
    word_order: Literal["big", "little"] = "big"
    byte_order: Literal["big", "little"] = "big"
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

    @model_validator(mode="after")
    def _consistent_registers(self) -> Self:
        names = [r.name for r in self.registers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"map {self.name!r}: duplicate register names {dupes}")
        for spec in self.registers:
            if spec.scale_register is None:
                continue
            sf = self.register(spec.scale_register)
            if sf is None or sf.data_type != "int16":
                raise ValueError(
                    f"map {self.name!r}: register {spec.name!r} has scale_register "
                    f"{spec.scale_register!r}, which must be an int16 register of the map"
                )
        return self


@cache
def shipped_maps() -> dict[str, RegisterMap]:
    """Register maps shipped in ``domain/maps/*.toml``, by name."""
    maps = {}
    for entry in files("domain.maps").iterdir():
        if entry.name.endswith(".toml"):
            register_map = RegisterMap.model_validate(tomllib.loads(entry.read_text("utf-8")))
            maps[register_map.name] = register_map
    return maps


#: ``struct`` format of each data type (big-endian bytes within the words).
_STRUCT: dict[str, str] = {
    "int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "float32": "f",
    "int64": "q", "uint64": "Q", "float64": "d",
}  # fmt: skip

#: SunSpec "not implemented" values of the integer types, as unsigned register contents.
#: A device serves them for a point it does not measure; decoding one is an error, never
#: a reading. The choice holds for every map, SunSpec or not: a meter whose genuine
#: value is exactly 0x8000 (int16) or 0xFFFF (uint16)… is an edge case worth losing.
#: Two deliberate departures: SunSpec's acc16/acc32/acc64 accumulators use 0 as their
#: sentinel, but they are modelled here as uint16/uint32/uint64 (0 is the valid first
#: value of a fresh energy counter); floats have no sentinel of their own — SunSpec
#: serves NaN (0x7FC00000), rejected as every NaN and infinity is.
NOT_IMPLEMENTED: dict[str, int] = {
    "int16": 0x8000,
    "uint16": 0xFFFF,
    "int32": 0x8000_0000,
    "uint32": 0xFFFF_FFFF,
    "int64": 0x8000_0000_0000_0000,
    "uint64": 0xFFFF_FFFF_FFFF_FFFF,
}

#: Range of a SunSpec scale factor (``sunssf``: a power of ten).
SCALE_FACTOR_RANGE = range(-10, 11)


def decode_registers(
    spec: RegisterSpec, words: Sequence[int], scale_factor: int | None = None
) -> float:
    """Turn the 16-bit ``words`` read at ``spec.address`` into a number in ``spec.unit``.

    Parameters
    ----------
    spec : RegisterSpec
        Data type, word order (``big``: most significant word first) and ``scale``.
    words : sequence of int
        Exactly ``spec.count`` register contents, 0 to 0xFFFF, in address order.
    scale_factor : int, optional
        SunSpec scale factor read from ``spec.scale_register``: the value is multiplied
        by ``10 ** scale_factor`` on top of ``scale``; from -10 to 10.

    Returns
    -------
    float
        ``raw × scale × 10 ** scale_factor``.

    Raises
    ------
    ValueError
        Wrong word count or a word out of range, a "not implemented" sentinel
        (:data:`NOT_IMPLEMENTED`), a NaN or infinite float, a scale factor out of range.
    """
    data = _words_to_bytes(spec, words)
    sentinel = NOT_IMPLEMENTED.get(spec.data_type)
    if sentinel is not None and int.from_bytes(data, "big") == sentinel:
        width = 4 * spec.count
        raise ValueError(
            f"register {spec.name!r} holds 0x{sentinel:0{width}X}, the SunSpec "
            f"'not implemented' value of {spec.data_type}"
        )
    (raw,) = struct.unpack(">" + _STRUCT[spec.data_type], data)
    if not math.isfinite(raw):
        raise ValueError(f"register {spec.name!r} holds {raw} ({spec.data_type}), not a number")
    value = float(raw) * spec.scale
    if scale_factor is not None:
        _check_scale_factor(spec, scale_factor)
        # Dividing by an exact power of ten rounds once: 1234 × 10**-1 gives 123.4.
        value = value * 10**scale_factor if scale_factor >= 0 else value / 10**-scale_factor
    return value


def encode_value(spec: RegisterSpec, value: float, scale_factor: int | None = None) -> list[int]:
    """The inverse of :func:`decode_registers`: the words a device serves for ``value``.

    Integer types are rounded to the nearest raw step (``scale × 10 ** scale_factor``).

    Raises
    ------
    ValueError
        ``value`` not finite, out of the data type's range once scaled, or landing on a
        "not implemented" sentinel; a scale factor out of range.
    """
    if not math.isfinite(value):
        raise ValueError(f"cannot encode {value} into register {spec.name!r}")
    if spec.scale == 0:
        raise ValueError(f"register {spec.name!r} has scale 0: nothing can be encoded")
    raw = value / spec.scale
    if scale_factor is not None:
        _check_scale_factor(spec, scale_factor)
        raw = raw / 10**scale_factor if scale_factor >= 0 else raw * 10**-scale_factor
    nbytes = 2 * spec.count
    if spec.data_type.startswith("float"):
        try:
            data = struct.pack(">" + _STRUCT[spec.data_type], raw)
        except OverflowError:
            raise ValueError(
                f"{value} does not fit register {spec.name!r} ({spec.data_type})"
            ) from None
    else:
        signed = spec.data_type.startswith("int")
        try:
            data = round(raw).to_bytes(nbytes, "big", signed=signed)
        except OverflowError:
            raise ValueError(
                f"{value} does not fit register {spec.name!r} ({spec.data_type}"
                f"{'' if scale_factor is None else f', scale factor {scale_factor}'})"
            ) from None
        if int.from_bytes(data, "big") == NOT_IMPLEMENTED[spec.data_type]:
            raise ValueError(
                f"{value} would read as 'not implemented' in register {spec.name!r} "
                f"({spec.data_type})"
            )
    return _to_words(spec, data)


def _to_words(spec: RegisterSpec, data: bytes) -> list[int]:
    """The register words of the big-endian ``data``, in ``spec``'s word and byte order."""
    words = [int.from_bytes(data[i : i + 2], spec.byte_order) for i in range(0, len(data), 2)]
    return words if spec.word_order == "big" else words[::-1]


def not_implemented_words(spec: RegisterSpec) -> list[int]:
    """The words of a point the device does not provide: the type's sentinel, NaN for floats."""
    nan = {"float32": "7FC00000", "float64": "7FF8000000000000"}.get(spec.data_type)
    if nan is not None:
        return _to_words(spec, bytes.fromhex(nan))
    return _to_words(spec, NOT_IMPLEMENTED[spec.data_type].to_bytes(2 * spec.count, "big"))


def _words_to_bytes(spec: RegisterSpec, words: Sequence[int]) -> bytes:
    if len(words) != spec.count:
        raise ValueError(
            f"register {spec.name!r} ({spec.data_type}) spans {spec.count} words, got {len(words)}"
        )
    if any(not 0 <= w <= 0xFFFF for w in words):
        raise ValueError(f"register {spec.name!r}: words must be 0 to 0xFFFF, got {list(words)}")
    ordered = words if spec.word_order == "big" else list(reversed(words))
    return b"".join(w.to_bytes(2, spec.byte_order) for w in ordered)


def _check_scale_factor(spec: RegisterSpec, scale_factor: int) -> None:
    if scale_factor not in SCALE_FACTOR_RANGE:
        raise ValueError(
            f"scale factor {scale_factor} of register {spec.name!r} is out of the SunSpec "
            f"range -10 to 10"
        )
