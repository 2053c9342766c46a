"""Linky TIC frames as a meter sends them (Enedis-NOI-CPT_54E), and ways to damage them.

Pure encoding for the Linky emulator and the tests: groups with their checksum, whole
frames in either mode from the building's indexes and powers, and the faults of a real
line (a digit changed under its old checksum, a bad checksum, a frame cut by EOT, noise
between frames). No I/O.

The checksum is computed here on its own, not imported from the gateway's decoder, so
that the emulator checks the decoder rather than agreeing with it by construction.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np

from microville.domain.tic_labels import TicMode

STX: Final = b"\x02"
ETX: Final = b"\x03"
EOT: Final = b"\x04"
_FRAMING_BYTES: Final = frozenset(b"\x02\x03\x04")
_FORBIDDEN_IN_FIELDS: Final = frozenset(b"\x02\x03\x04\n\r\t")
_PARIS: Final = ZoneInfo("Europe/Paris")

#: Nominal single-phase voltage [V], used to derive currents from apparent power.
NOMINAL_VOLTAGE_V: Final = 230.0
#: Subscribed apparent power of the emulated meter [kVA] (and its current at 200 V).
SUBSCRIBED_KVA: Final = 6
#: Standard-mode MSG1 (32 characters, spaces kept) and PJOURF+1 (11 blocks of 8).
MSG1_NO_MESSAGE: Final = "PAS DE          MESSAGE         "
PJOURF1_BASE: Final = " ".join(["00008001", *["NONUTILE"] * 10])


def _checksum_char(payload: bytes) -> bytes:
    return bytes([(sum(payload) & 0x3F) + 0x20])


def _check_field(what: str, value: str) -> bytes:
    raw = value.encode("ascii", "strict") if value.isascii() else None
    if raw is None or any(b in _FORBIDDEN_IN_FIELDS for b in raw):
        raise ValueError(f"TIC {what} {value!r}: ASCII without HT, CR, LF, STX, ETX, EOT")
    return raw


def format_horodate(t: datetime, synchronised: bool = True) -> str:
    """``SAAMMJJhhmmss`` of ``t`` in Europe/Paris time: ``E`` in summer time, ``H`` in
    winter time, lowercase when the meter clock is not synchronised."""
    if t.tzinfo is None:
        raise ValueError(f"horodate of a naive datetime {t!r}: give a time zone")
    local = t.astimezone(_PARIS)
    season = "E" if local.dst() else "H"
    if not synchronised:
        season = season.lower()
    return season + local.strftime("%y%m%d%H%M%S")


def encode_group(
    label: str,
    data: str,
    mode: TicMode,
    horodate: datetime | str | None = None,
) -> bytes:
    """One group ``LF … CR`` with its checksum.

    Historic: ``label SP data SP checksum``, checksum over ``label SP data``. Standard:
    ``label HT [horodate HT] data HT checksum``, checksum over all before it (the last
    HT included). ``horodate`` (standard only) is a datetime, formatted as a synchronised
    clock's, or the 13 characters as sent.
    """
    label_raw = _check_field("label", label)
    if not label_raw or b" " in label_raw:
        raise ValueError(f"TIC label {label!r}: non-empty, without spaces")
    data_raw = _check_field("data", data)
    if mode is TicMode.HISTORIC:
        if horodate is not None:
            raise ValueError(f"TIC group {label}: no horodate in historic mode")
        covered = label_raw + b" " + data_raw
        return b"\n" + covered + b" " + _checksum_char(covered) + b"\r"
    fields = [label_raw]
    if horodate is not None:
        text = horodate if isinstance(horodate, str) else format_horodate(horodate)
        fields.append(_check_field("horodate", text))
    fields.append(data_raw)
    covered = b"\t".join(fields) + b"\t"
    return b"\n" + covered + _checksum_char(covered) + b"\r"


def encode_frame(groups: list[bytes]) -> bytes:
    """``STX group… ETX``."""
    return STX + b"".join(groups) + ETX


def _digits(value: float, width: int, what: str) -> str:
    """A non-negative count as the meter shows it: whole units (floor), zero-padded,
    capped at the field's width."""
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be finite and >= 0, got {value!r}")
    return f"{min(math.floor(value), 10**width - 1):0{width}d}"


def _status_word(synchronised: bool, injecting: bool) -> str:
    """STGE of a producer on a base tariff, standard TIC, Euridis and CPL on."""
    bits = 1 << 8  # producer
    bits |= (1 << 9) if injecting else 0  # active energy negative
    bits |= 0 if synchronised else 1 << 16  # clock in degraded mode
    bits |= 1 << 17  # TIC in standard mode
    bits |= 0b11 << 19  # Euridis output on, with security
    bits |= 0b10 << 21  # CPL locked
    bits |= 1 << 23  # CPL synchronised
    return f"{bits:08X}"


def linky_frame(
    mode: TicMode,
    t: datetime,
    import_wh: float,
    export_wh: float,
    power_va: float,
    injected_va: float,
    adsc: str = "0212345678901",
    prm: str = "01234567890123",
    synchronised: bool = True,
) -> bytes:
    """A full single-phase Linky frame, base tariff, at time ``t``.

    Indexes are whole Wh (floor of ``import_wh``/``export_wh``): the meter counts whole
    Wh. Historic mode carries no injection (``export_wh``/``injected_va`` unused).
    Standard mode is a producer's frame; the daily maxima and load-curve points are the
    current powers at ``t`` (a stateless emulator).
    """
    s_va = _digits(power_va, 5, "power_va")
    current = max(power_va, injected_va) / NOMINAL_VOLTAGE_V
    if mode is TicMode.HISTORIC:
        h = TicMode.HISTORIC
        groups = [
            encode_group("ADCO", adsc, h),
            encode_group("OPTARIF", "BASE", h),
            encode_group("ISOUSC", f"{SUBSCRIBED_KVA * 5:02d}", h),
            encode_group("BASE", _digits(import_wh, 9, "import_wh"), h),
            encode_group("PTEC", "TH..", h),
            encode_group("IINST", _digits(round(power_va / NOMINAL_VOLTAGE_V), 3, "IINST"), h),
            encode_group("IMAX", "090", h),
            encode_group("PAPP", s_va, h),
            encode_group("HHPHC", "A", h),
            encode_group("MOTDETAT", "000000", h),
        ]
        return encode_frame(groups)
    s = TicMode.STANDARD
    east = _digits(import_wh, 9, "import_wh")
    eait = _digits(export_wh, 9, "export_wh")
    i_va = _digits(injected_va, 5, "injected_va")
    horodate = format_horodate(t, synchronised)
    yesterday = format_horodate(t - timedelta(days=1), synchronised)
    local = t.astimezone(_PARIS)
    curve = format_horodate(
        t - timedelta(minutes=local.minute % 30, seconds=local.second), synchronised
    )
    mean = format_horodate(
        t - timedelta(minutes=local.minute % 10, seconds=local.second), synchronised
    )
    zero = "0" * 9
    pref = f"{SUBSCRIBED_KVA:02d}"
    groups = [
        encode_group("ADSC", adsc, s),
        encode_group("VTIC", "02", s),
        encode_group("DATE", "", s, horodate),
        encode_group("NGTF", "      BASE      ", s),
        encode_group("LTARF", "       BASE     ", s),
        encode_group("EAST", east, s),
        encode_group("EASF01", east, s),
        *(encode_group(f"EASF{n:02d}", zero, s) for n in range(2, 11)),
        encode_group("EASD01", east, s),
        *(encode_group(f"EASD{n:02d}", zero, s) for n in range(2, 5)),
        encode_group("EAIT", eait, s),
        *(encode_group(f"ERQ{n}", zero, s) for n in range(1, 5)),
        encode_group("IRMS1", _digits(round(current), 3, "IRMS1"), s),
        encode_group("URMS1", _digits(NOMINAL_VOLTAGE_V, 3, "URMS1"), s),
        encode_group("PREF", pref, s),
        encode_group("PCOUP", pref, s),
        encode_group("SINSTS", s_va, s),
        encode_group("SMAXSN", s_va, s, horodate),
        encode_group("SMAXSN-1", s_va, s, yesterday),
        encode_group("SINSTI", i_va, s),
        encode_group("SMAXIN", i_va, s, horodate),
        encode_group("SMAXIN-1", i_va, s, yesterday),
        encode_group("CCASN", s_va, s, curve),
        encode_group("CCAIN", i_va, s, curve),
        encode_group("UMOY1", _digits(NOMINAL_VOLTAGE_V, 3, "UMOY1"), s, mean),
        encode_group("STGE", _status_word(synchronised, injected_va > 0), s),
        encode_group("MSG1", MSG1_NO_MESSAGE, s),
        encode_group("PRM", prm, s),
        encode_group("RELAIS", "000", s),
        encode_group("NTARF", "01", s),
        encode_group("NJOURF", "00", s),
        encode_group("NJOURF+1", "00", s),
        encode_group("PJOURF+1", PJOURF1_BASE, s),
    ]
    return encode_frame(groups)


def corrupt_checksum(frame: bytes, label: str) -> bytes:
    """``frame`` with the checksum of the group ``label`` replaced by another valid
    checksum character (so only the checksum test can catch it)."""
    for sep in (b"\t", b" "):
        start = frame.find(b"\n" + label.encode("ascii") + sep)
        if start >= 0:
            break
    else:
        raise ValueError(f"no group {label!r} in the frame")
    end = frame.find(b"\r", start)
    if end < 0:
        raise ValueError(f"group {label!r} has no CR")
    old = frame[end - 1]
    new = (old - 0x20 + 1) % 0x40 + 0x20
    return frame[: end - 1] + bytes([new]) + frame[end:]


def corrupt_data(frame: bytes, label: str, position: int = 0, delta: int = 1) -> bytes:
    """``frame`` with one digit of the group ``label`` changed and its checksum kept, as
    a bit error on the line would: the group still looks well-formed (a number of the
    same width, a valid horodate), so only the checksum test can catch it.

    The digit changed is in the data, or in the horodate when the data is empty
    (``DATE``): the ``position``-th digit from the end (cycled over the digits there),
    moved by ``delta`` (1-9) modulo 10. A digit changed by 1-9 always changes the sum
    by 1-9 (mod 64), so the checksum always disagrees with the new data.
    """
    if not 1 <= delta <= 9:
        raise ValueError(f"delta must be 1-9, got {delta}")
    for sep in (b"\t", b" "):
        start = frame.find(b"\n" + label.encode("ascii") + sep)
        if start >= 0:
            break
    else:
        raise ValueError(f"no group {label!r} in the frame")
    end = frame.find(b"\r", start)
    if end < 0:
        raise ValueError(f"group {label!r} has no CR")
    offset = start + 1 + len(label) + 1  # after LF, the label and its separator
    field = frame[offset : end - 2]  # up to the separator before the checksum
    if sep == b"\t":
        # Standard: [horodate HT] data; the data, or the horodate when it is empty. (In
        # historic mode all of it is the data, spaces included.)
        *head, data = field.split(sep)
        if data or not head:
            offset += len(field) - len(data)
            field = data
        else:
            offset += len(field) - len(data) - 1 - len(head[-1])
            field = head[-1]
    digits = [i for i, b in enumerate(field) if 0x30 <= b <= 0x39]
    if not digits:
        raise ValueError(f"group {label!r} has no digit to change")
    at = offset + digits[-1 - position % len(digits)]
    new = (frame[at] - 0x30 + delta) % 10 + 0x30
    return frame[:at] + bytes([new]) + frame[at + 1 :]


def truncate(frame: bytes, at: int) -> bytes:
    """The first ``at`` bytes of ``frame``, then EOT: a frame cut short by the meter."""
    return frame[:at] + EOT


def line_noise(rng: random.Random | np.random.Generator, n: int) -> bytes:
    """``n`` random bytes of line noise, never STX, ETX or EOT: noise between frames
    garbles groups but does not fake frame boundaries. ``rng``: a seeded
    :class:`random.Random` or NumPy generator."""
    out = bytearray()
    while len(out) < n:
        chunk = rng.randbytes(n) if isinstance(rng, random.Random) else rng.bytes(n)
        out += bytes(b for b in chunk if b not in _FRAMING_BYTES)
    return bytes(out[:n])
