"""Linky TIC frames as a meter sends them (Enedis-NOI-CPT_54E), and ways to damage them.

Pure encoding for the Linky emulator and the tests: groups with their checksum, whole
frames in either mode from the building's indexes and powers, and the faults of a real
line (a digit changed under its old checksum, a bad checksum, a frame cut by EOT, noise
between frames). No I/O.

The checksum is computed here on its own, not imported from the gateway's decoder, so
that the emulator checks the decoder rather than agreeing with it by construction.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np

from domain.tic_labels import TicMode

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
#: A real ADSC (standard) / ADCO (historic) has 12 characters.
DEFAULT_ADSC: Final = "021234567890"


class Tariff(StrEnum):
    """Supplier tariff options the emulated Linky counts under."""

    BASE = "base"
    HCHP = "hchp"  # off-peak / peak hours
    TEMPO = "tempo"  # off-peak / peak of blue, white and red days


@dataclass(frozen=True)
class TariffSlot:
    """The indexes counting at one instant: supplier ``EASF{supplier+1:02d}``,
    distributor ``EASD{distributor+1:02d}``, and the labels a meter shows then."""

    supplier: int
    distributor: int
    ltarf: str  # standard LTARF, 16 characters
    ptec: str  # historic PTEC, 4 characters
    colour: int  # Tempo day colour: 0 blue, 1 white, 2 red (0 for other tariffs)


#: Off-peak hours of the emulated meter (local time): 22:00 to 06:00.
OFF_PEAK_HOURS: Final = (22, 6)
_COLOURS: Final = (("BLEU", "JB"), ("BLANC", "JW"), ("ROUGE", "JR"))
_TEMPO_DEMAIN: Final = ("BLEU", "BLAN", "ROUG")
NGTF: Final = {
    Tariff.BASE: "      BASE      ",
    Tariff.HCHP: "H PLEINE/CREUSE ",
    Tariff.TEMPO: "     TEMPO      ",
}


def tempo_colour(day: datetime) -> int:
    """The colour of the Tempo day holding ``day``'s date (local): an illustrative fixed
    calendar, not RTE's — red on some weekdays from November to March, white on some
    days but Sundays all year, blue otherwise (0 blue, 1 white, 2 red)."""
    n = day.timetuple().tm_yday
    if day.month in (11, 12, 1, 2, 3) and day.weekday() < 5 and n % 9 == 4:
        return 2
    if day.weekday() < 6 and n % 5 == 2:
        return 1
    return 0


def tariff_slot(tariff: Tariff, t: datetime) -> TariffSlot:
    """Which indexes count at ``t``. Off-peak is 22:00-06:00 Paris time; a Tempo day runs
    from 06:00 to 06:00 the next day. Supplier indexes: BASE EASF01; HC/HP EASF01 HC,
    EASF02 HP; Tempo EASF01-06 = HC/HP blue, HC/HP white, HC/HP red. Distributor
    indexes (the emulator's grid, TURPE four time slots): EASD01 HP and EASD02 HC of the
    high season (November to March), EASD03 HP and EASD04 HC of the low season."""
    local = t.astimezone(_PARIS)
    off_peak = local.hour >= OFF_PEAK_HOURS[0] or local.hour < OFF_PEAK_HOURS[1]
    high_season = local.month in (11, 12, 1, 2, 3)
    distributor = (0 if high_season else 2) + (1 if off_peak else 0)
    if tariff is Tariff.BASE:
        return TariffSlot(0, distributor, "       BASE     ", "TH..", 0)
    if tariff is Tariff.HCHP:
        if off_peak:
            return TariffSlot(0, distributor, " HEURE  CREUSE  ", "HC..", 0)
        return TariffSlot(1, distributor, " HEURE  PLEINE  ", "HP..", 0)
    colour = tempo_colour(local - timedelta(hours=OFF_PEAK_HOURS[1]))
    name, suffix = _COLOURS[colour]
    period = "HC" if off_peak else "HP"
    ltarf = f"    {period}  {name}".ljust(16)
    return TariffSlot(
        2 * colour + (0 if off_peak else 1), distributor, ltarf, period + suffix, colour
    )


class TariffIndexes:
    """The supplier (EASF01-10) and distributor (EASD01-04) indexes of a meter whose
    total drawn index is ``total_wh(t)``, split by the tariff slot in force.

    Whole Wh, as the meter shows them: each index adds the floored total's increase
    while its slot is in force, so EAST = Σ EASF = Σ EASD exactly (floor of the total)
    and every index only grows. The total at ``start`` is shared out by fixed
    shares. Stateless in ``t`` (any order of calls), within [start, end].
    """

    _SHARES: Final = (0.22, 0.4, 0.08, 0.14, 0.04, 0.12)

    def __init__(
        self,
        tariff: Tariff,
        total_wh: Callable[[datetime], float],
        start: datetime,
        end: datetime,
    ) -> None:
        self.tariff = tariff
        self._total = total_wh
        times = [start]
        t = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        while t <= end:  # slots change on whole hours (Paris is a whole-hour offset)
            if tariff_slot(tariff, t) != tariff_slot(tariff, t - timedelta(hours=1)):
                times.append(t)
            t += timedelta(hours=1)
        self._times = times
        first = math.floor(total_wh(start))
        n = {Tariff.BASE: 1, Tariff.HCHP: 2, Tariff.TEMPO: 6}[tariff]
        shares = self._SHARES[:n]
        supplier = [math.floor(first * s / sum(shares)) for s in shares] + [0] * (10 - n)
        supplier[0] += first - sum(supplier)
        distributor = [math.floor(first * s) for s in (0.25, 0.15, 0.35, 0.25)]
        distributor[0] += first - sum(distributor)
        self._at: list[tuple[int, list[int], list[int]]] = []
        floor = first
        for i, time in enumerate(times):
            if i:
                slot = tariff_slot(tariff, times[i - 1])
                now = math.floor(total_wh(time))
                supplier[slot.supplier] += now - floor
                distributor[slot.distributor] += now - floor
                floor = now
            self._at.append((floor, list(supplier), list(distributor)))

    def at(self, t: datetime) -> tuple[list[int], list[int]]:
        """(EASF01-10, EASD01-04) at ``t`` (before ``start``: as at ``start``)."""
        k = max(0, bisect.bisect_right(self._times, t) - 1)
        floor, supplier, distributor = self._at[k]
        slot = tariff_slot(self.tariff, max(t, self._times[0]))
        grown = max(0, math.floor(self._total(t)) - floor) if t >= self._times[0] else 0
        supplier, distributor = list(supplier), list(distributor)
        supplier[slot.supplier] += grown
        distributor[slot.distributor] += grown
        return supplier, distributor


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
    adsc: str = DEFAULT_ADSC,
    prm: str = "01234567890123",
    synchronised: bool = True,
    tariff: Tariff = Tariff.BASE,
    supplier: Sequence[int] | None = None,
    distributor: Sequence[int] | None = None,
) -> bytes:
    """A full single-phase Linky frame at time ``t``, counting under ``tariff``.

    Indexes are whole Wh (floor of ``import_wh``/``export_wh``): the meter counts whole
    Wh. ``supplier`` (EASF01-10) and ``distributor`` (EASD01-04) are the split indexes
    (:class:`TariffIndexes`); each must sum to the floored ``import_wh`` (EAST). Without
    them, everything counts on index 1 (BASE). Historic mode carries no injection
    (``export_wh``/``injected_va`` unused) and shows the supplier indexes as BASE,
    HCHC/HCHP or BBRHCJB…BBRHPJR. Standard mode is a producer's frame; the daily maxima
    and load-curve points are the current powers at ``t`` (a stateless emulator).
    """
    s_va = _digits(power_va, 5, "power_va")
    current = max(power_va, injected_va) / NOMINAL_VOLTAGE_V
    east_wh = math.floor(import_wh) if math.isfinite(import_wh) else -1
    if supplier is None:
        supplier = [max(east_wh, 0)] + [0] * 9
    if distributor is None:
        distributor = [max(east_wh, 0)] + [0] * 3
    if len(supplier) != 10 or len(distributor) != 4:
        raise ValueError("supplier: 10 indexes (EASF01-10), distributor: 4 (EASD01-04)")
    for what, split in (("supplier", supplier), ("distributor", distributor)):
        if east_wh >= 0 and sum(split) != east_wh:
            raise ValueError(f"{what} indexes sum to {sum(split)}, not EAST {east_wh}")
    slot = tariff_slot(tariff, t)
    if mode is TicMode.HISTORIC:
        h = TicMode.HISTORIC
        wh = [_digits(v, 9, "index") for v in supplier]
        if tariff is Tariff.BASE:
            option, indexes = "BASE", [encode_group("BASE", _digits(import_wh, 9, "import_wh"), h)]
        elif tariff is Tariff.HCHP:
            option = "HC.."
            indexes = [encode_group("HCHC", wh[0], h), encode_group("HCHP", wh[1], h)]
        else:
            option = "BBR("
            names = [f"BBR{p}{c}" for _, c in _COLOURS for p in ("HC", "HP")]
            indexes = [encode_group(n, wh[i], h) for i, n in enumerate(names)]
        tomorrow = tempo_colour(t.astimezone(_PARIS) + timedelta(hours=18))
        groups = [
            encode_group("ADCO", adsc, h),
            encode_group("OPTARIF", option, h),
            encode_group("ISOUSC", f"{SUBSCRIBED_KVA * 5:02d}", h),
            *indexes,
            encode_group("PTEC", slot.ptec, h),
            *(
                [encode_group("DEMAIN", _TEMPO_DEMAIN[tomorrow], h)]
                if tariff is Tariff.TEMPO
                else []
            ),
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
        encode_group("NGTF", NGTF[tariff], s),
        encode_group("LTARF", slot.ltarf, s),
        encode_group("EAST", east, s),
        *(
            encode_group(f"EASF{n:02d}", _digits(v, 9, "EASF"), s)
            for n, v in enumerate(supplier, 1)
        ),
        *(
            encode_group(f"EASD{n:02d}", _digits(v, 9, "EASD"), s)
            for n, v in enumerate(distributor, 1)
        ),
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
        encode_group("NTARF", f"{slot.supplier + 1:02d}", s),
        encode_group("NJOURF", "00", s),
        encode_group("NJOURF+1", "00", s),
        encode_group("PJOURF+1", _next_day_profile(tariff, t), s),
    ]
    return encode_frame(groups)


def _next_day_profile(tariff: Tariff, t: datetime) -> str:
    """PJOURF+1: tomorrow's switch times (``hhmm``) and index actions (``400n``: index n)."""
    if tariff is Tariff.BASE:
        return PJOURF1_BASE
    hc, hp = 1, 2
    if tariff is Tariff.TEMPO:
        colour = tempo_colour(t.astimezone(_PARIS) + timedelta(hours=18))
        hc, hp = 2 * colour + 1, 2 * colour + 2
    blocks = [f"0000400{hc}", f"0600400{hp}", f"2200400{hc}"]
    return " ".join([*blocks, *["NONUTILE"] * 8])


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
