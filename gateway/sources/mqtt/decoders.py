"""Payload decoders: bytes in, values out, nothing else.

Each decoder takes the payload and the receive time and returns
:class:`DecodedValue` items keyed by what the configuration selects on: the SenML
resolved name, the JSON dotted path, or ``None`` for a bare number. A payload that
cannot be decoded raises :class:`DecodeError` with the reason.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.sources.decoded import DecodedValue

#: RFC 8428 §4.5.3: a time below 2**28 seconds is relative to now.
SENML_RELATIVE_LIMIT = 2**28
#: RFC 8428 §4.4: the SenML version this decoder implements (bver, default 10).
SENML_VERSION = 10
#: The labels this decoder understands (RFC 8428 §4, §6): any other label ending in "_"
#: is "must understand" (§12.2/§12.3) and makes the pack an error.
SENML_LABELS = frozenset(
    {"bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "vs", "vb", "vd", "s", "t", "ut"}
)
#: A meter's message is a few hundred bytes; anything this large is not one (and is
#: not parsed: a hostile payload must not cost memory or time).
MAX_PAYLOAD_BYTES = 64 * 1024
#: JSON nesting accepted (Shelly-style objects are 2-3 deep).
MAX_JSON_DEPTH = 16


class DecodeError(ValueError):
    """The payload is not what its format promises; the message says why."""


Decoder = Callable[[bytes, datetime, str | None], list[DecodedValue]]


def _finite(value: Any, what: str) -> float:
    # bool is an int in Python; a switch state is not a meter value.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DecodeError(f"{what} is {type(value).__name__}, expected a number")
    number = float(value)
    if not math.isfinite(number):
        raise DecodeError(f"{what} is not finite ({value!r})")
    return number


def check_size(payload: bytes) -> None:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DecodeError(f"oversized payload: {len(payload)} bytes > {MAX_PAYLOAD_BYTES}")


def _depth(obj: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node
        if isinstance(node, dict | list):
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _load_json(payload: bytes) -> Any:
    check_size(payload)
    try:
        # NaN/Infinity literals become errors; a huge integer becomes inf (then rejected).
        obj = json.loads(payload, parse_constant=_reject_constant, parse_int=float)
    except UnicodeDecodeError:
        raise DecodeError("payload is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc.msg} at position {exc.pos}") from None
    except RecursionError:
        raise DecodeError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    # Each level opens a bracket: with few brackets in the bytes (brackets inside strings
    # only add to the count), the walk over the parsed value is not needed.
    few = payload.count(b"[") + payload.count(b"{") <= MAX_JSON_DEPTH
    if not few and _depth(obj) > MAX_JSON_DEPTH:
        raise DecodeError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return obj


def _reject_constant(name: str) -> Any:
    raise DecodeError(f"non-finite number {name} in JSON")


def _epoch(seconds: float, what: str) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise DecodeError(f"{what} {seconds!r} is out of range") from None


def decode_senml(
    payload: bytes, received_at: datetime, _time_field: str | None = None
) -> list[DecodedValue]:
    """SenML JSON (RFC 8428): base name/time/unit resolution, numeric values.

    A record with a string, boolean or data value is skipped: it is not a reading.
    """
    pack = _load_json(payload)
    if not isinstance(pack, list) or not pack:
        raise DecodeError("SenML pack must be a non-empty JSON array")
    base_name, base_time, base_unit, base_value = "", 0.0, None, 0.0
    values: list[DecodedValue] = []
    for i, record in enumerate(pack):
        if not isinstance(record, dict):
            raise DecodeError(f"SenML record {i} is not an object")
        unknown = sorted(k for k in record if k.endswith("_") and k not in SENML_LABELS)
        if unknown:
            raise DecodeError(
                f"SenML record {i}: must-understand field {unknown[0]!r} is not supported"
                " (RFC 8428 §4.4: the pack cannot be processed)"
            )
        if "bver" in record:
            bver = record["bver"]
            if isinstance(bver, bool) or not isinstance(bver, int | float) or bver != int(bver):
                raise DecodeError(f"SenML record {i}: bver must be an integer")
            if bver > SENML_VERSION:
                raise DecodeError(
                    f"SenML record {i}: bver {int(bver)} is newer than the supported"
                    f" version {SENML_VERSION}"
                )
        if "bn" in record:
            if not isinstance(record["bn"], str):
                raise DecodeError(f"SenML record {i}: bn must be a string")
            base_name = record["bn"]
        if "bt" in record:
            base_time = _finite(record["bt"], f"SenML record {i} bt")
        if "bu" in record:
            if not isinstance(record["bu"], str):
                raise DecodeError(f"SenML record {i}: bu must be a string")
            base_unit = record["bu"]
        if "bv" in record:
            base_value = _finite(record["bv"], f"SenML record {i} bv")
        if "v" not in record and "s" not in record:
            continue  # a base-only record, or a string/boolean/data value
        n = record.get("n", "")
        if not isinstance(n, str):
            raise DecodeError(f"SenML record {i}: n must be a string")
        name = base_name + n
        if not name:
            raise DecodeError(f"SenML record {i} has no name (n or bn)")
        raw = record["v"] if "v" in record else record["s"]
        value = base_value + _finite(raw, f"SenML record {i} ({name}) value")
        if not math.isfinite(value):
            raise DecodeError(f"SenML record {i} ({name}): bv + v is not finite")
        t = base_time + (_finite(record["t"], f"SenML record {i} t") if "t" in record else 0.0)
        if not math.isfinite(t):
            raise DecodeError(f"SenML record {i}: bt + t is not finite")
        if t == 0.0:
            time = received_at
        elif t < SENML_RELATIVE_LIMIT:
            try:
                time = received_at + timedelta(seconds=t)
            except OverflowError:
                raise DecodeError(f"SenML record {i} relative time {t!r} is out of range") from None
        else:
            time = _epoch(t, f"SenML record {i} time")
        unit = record.get("u", base_unit)
        if unit is not None and not isinstance(unit, str):
            raise DecodeError(f"SenML record {i}: u must be a string")
        values.append(DecodedValue(key=name, value=value, unit=unit, time=time))
    if not values:
        raise DecodeError("SenML pack holds no numeric value")
    return values


def _flatten(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    # Recursion is bounded: _load_json refused anything deeper than MAX_JSON_DEPTH.
    for key, value in obj.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            yield from _flatten(value, path)
        else:
            yield path, value


def _device_time(raw: Any, field: str) -> datetime:
    if isinstance(raw, str):
        try:
            t = datetime.fromisoformat(raw)
        except ValueError:
            raise DecodeError(f"time field {field!r}: {raw!r} is not ISO 8601") from None
        if t.tzinfo is None:
            raise DecodeError(f"time field {field!r}: {raw!r} has no UTC offset")
        try:
            return t.astimezone(UTC)
        except OverflowError:  # year 1 or 9999 shifted by its offset
            raise DecodeError(f"time field {field!r}: {raw!r} is out of range") from None
    seconds = _finite(raw, f"time field {field!r}")
    # Epoch milliseconds are common on small devices; seconds would be year > 5000.
    return _epoch(seconds / 1000 if seconds > 1e11 else seconds, f"time field {field!r}")


def _empty_object(obj: dict[str, Any], path: str) -> bool:
    """Whether the dotted ``path`` leads to an object with no leaves (``_flatten`` skips it)."""
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return isinstance(node, dict)


def decode_json(
    payload: bytes, received_at: datetime, time_field: str | None = None
) -> list[DecodedValue]:
    """A JSON object; every numeric leaf becomes a value keyed by its dotted path.

    Non-numeric leaves (strings, booleans, lists) are ignored here; a configured field
    that is missing or not a number is reported by the router. ``time_field`` gives the
    device time; without it in the payload, the values take ``received_at``.
    """
    obj = _load_json(payload)
    if not isinstance(obj, dict):
        raise DecodeError(f"expected a JSON object, got {type(obj).__name__}")
    leaves = dict(_flatten(obj))
    # Device time when the payload carries it, receive time otherwise; a time that is
    # there but unreadable (a string without offset, null, an object) is refused.
    time = received_at
    if time_field is not None:
        if time_field in leaves:
            time = _device_time(leaves.pop(time_field), time_field)
        elif any(path.startswith(f"{time_field}.") for path in leaves) or _empty_object(
            obj, time_field
        ):
            raise DecodeError(f"time field {time_field!r} is an object, expected a time")
    values = []
    for path, raw in leaves.items():
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            continue
        if not math.isfinite(raw):
            raise DecodeError(f"field {path!r} is not finite")
        values.append(DecodedValue(key=path, value=float(raw), unit=None, time=time))
    return values


#: A JSON-style decimal number; Python's float() would also take "1_000" or "nan".
_NUMBER = re.compile(rb"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def decode_number(
    payload: bytes, received_at: datetime, _time_field: str | None = None
) -> list[DecodedValue]:
    """A bare decimal number as text, e.g. ``1234.5`` (surrounding whitespace allowed)."""
    if len(payload) > 64:
        raise DecodeError(f"not a bare number: {len(payload)} bytes")
    text = payload.strip()
    if not _NUMBER.fullmatch(text):
        shown = payload[:40].decode("utf-8", "replace")
        raise DecodeError(f"not a bare number: {shown!r}")
    number = float(text)
    if not math.isfinite(number):
        raise DecodeError(f"not finite: {text.decode()!r}")
    return [DecodedValue(key=None, value=number, unit=None, time=received_at)]


#: Decoders by the format name used in the configuration.
DECODERS: dict[str, Decoder] = {
    "senml": decode_senml,
    "json": decode_json,
    "number": decode_number,
}
