"""Linky TIC decoding (Enedis-NOI-CPT_54E): bytes in, groups and values out, no I/O.

Wire format, both modes (7E1 on the line; the serial layer delivers 7-bit bytes):

- a frame is ``STX (0x02) group… ETX (0x03)``; ``EOT (0x04)`` interrupts it;
- a group is ``LF (0x0A) … CR (0x0D)``; between them, historic mode:
  ``label SP data SP checksum`` with the checksum over ``label SP data`` (the separator
  before the checksum excluded); standard mode: ``label HT [horodate HT] data HT
  checksum`` with the checksum over everything up to and including the last HT;
- checksum character: ``chr((sum(bytes) & 0x3F) + 0x20)``, from ``' '`` to ``'_'``.

Data may hold spaces (NGTF, LTARF, MSG1, PJOURF+1), and the checksum may itself be a
space, so groups are split on the mode's separator by position, never stripped.

:class:`TicStreamDecoder` takes bytes in any chunking and returns whole frames; a group
with a bad checksum or broken framing is dropped (with its reason) and the rest of the
frame kept. :func:`frame_values` turns a frame into :class:`DecodedValue` items.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Final
from zoneinfo import ZoneInfo

from domain.tic_labels import TicMode, tic_label
from gateway.sources.decoded import DecodedValue

STX: Final = 0x02
ETX: Final = 0x03
EOT: Final = 0x04
LF: Final = 0x0A
CR: Final = 0x0D
SP: Final = 0x20
HT: Final = 0x09

#: A frame still open after this many bytes is discarded (a standard frame is ~1 KiB).
MAX_FRAME_BYTES: Final = 8192
#: Lost frames held until the source takes them (beyond, the oldest are forgotten; they
#: stay counted).
MAX_PENDING_LOST: Final = 256
#: Bytes of a lost frame kept with it (for the dead-letter log).
LOST_FRAME_BYTES: Final = 1024

#: Offsets of the horodate season letters (E: summer, H: winter; lowercase: same
#: offset, meter clock not synchronised).
_SEASON_OFFSETS: Final = {"E": 2, "H": 1}
_PARIS: Final = ZoneInfo("Europe/Paris")
#: Labels on the wire: capitals, digits, '+' and '-' (NJOURF+1, SMAXSN-1).
_LABEL: Final = re.compile(r"[A-Z0-9+\-]+")
_DIGITS: Final = re.compile(r"[0-9]+")
_FRAMING: Final = re.compile(rb"[\x02\x03\x04]")
#: Historic energy indexes are exactly 9 digits (Wh, zero-padded).
_HISTORIC_INDEX_DIGITS: Final = 9


class TicError(ValueError):
    """A group or horodate that does not follow the TIC format; the message says why."""


@dataclass(frozen=True, slots=True)
class TicGroup:
    """One information group with a valid checksum.

    Parameters
    ----------
    label : str
        As on the wire, e.g. ``EAST``.
    data : str
        As on the wire, spaces kept; empty for ``DATE``.
    horodate : datetime or None
        Standard mode horodated groups: the horodate in UTC; ``None`` otherwise.
    clock_synchronised : bool or None
        From the season letter's case; ``None`` without a horodate or when the season
        does not apply (a space).
    """

    label: str
    data: str
    horodate: datetime | None
    clock_synchronised: bool | None


@dataclass(frozen=True)
class TicFrame:
    """The valid groups of one frame, by label, and the reasons of the dropped ones."""

    mode: TicMode
    groups: dict[str, TicGroup]
    dropped: list[str]

    @property
    def clock_synchronised(self) -> bool | None:
        """From the season letter of ``DATE`` (standard mode); ``None`` without one."""
        date = self.groups.get("DATE")
        return None if date is None else date.clock_synchronised


@dataclass(frozen=True)
class LostFrame:
    """A frame that gives no value at all: why, the reasons of its dropped groups (if
    it was decoded), and its first :data:`LOST_FRAME_BYTES` bytes from STX."""

    reason: str
    dropped: tuple[str, ...]
    data: bytes


def checksum(payload: bytes) -> int:
    """The checksum byte of ``payload``: ``(sum & 0x3F) + 0x20``.

    ``payload`` is what the mode's rule covers: ``label SP data`` in historic mode,
    ``label HT … HT`` (the HT before the checksum included) in standard mode.
    """
    return (sum(payload) & 0x3F) + 0x20


def parse_horodate(text: str) -> tuple[datetime, bool | None]:
    """Decode a horodate ``SAAMMJJhhmmss`` into (aware UTC datetime, clock synchronised).

    The season ``S`` gives the offset: ``E`` summer (UTC+2), ``H`` winter (UTC+1); in
    lowercase the meter clock is not synchronised (flag ``False``). A space means the
    season does not apply: the time is Europe/Paris local time (an ambiguous autumn
    time is taken as the first, summer one; a spring-gap time with the winter offset)
    and the flag is ``None``.
    """
    if len(text) != 13:
        raise TicError(f"horodate {text!r}: expected 13 characters SAAMMJJhhmmss")
    season, digits = text[0], text[1:]
    if not digits.isascii() or not digits.isdigit():
        raise TicError(f"horodate {text!r}: AAMMJJhhmmss must be digits")
    year, month, day, hour, minute, second = (int(digits[i : i + 2]) for i in range(0, 12, 2))
    try:
        local = datetime(2000 + year, month, day, hour, minute, second)
    except ValueError as exc:
        raise TicError(f"horodate {text!r}: {exc}") from None
    if season == " ":
        return local.replace(tzinfo=_PARIS).astimezone(UTC), None
    offset = _SEASON_OFFSETS.get(season.upper())
    if offset is None:
        raise TicError(f"horodate {text!r}: season {season!r} is not E, H, e, h or space")
    aware = local.replace(tzinfo=timezone(timedelta(hours=offset)))
    return aware.astimezone(UTC), season.isupper()


def _check_bytes(raw: bytes, mode: TicMode) -> str:
    if not raw.isascii():
        raise TicError(f"group {raw[:24]!r}: non-ASCII byte")
    text = raw.decode("ascii")
    allowed_control = "\t" if mode is TicMode.STANDARD else ""
    for ch in text:
        if (ch < " " or ch == "\x7f") and ch not in allowed_control:
            raise TicError(f"group {raw[:24]!r}: control character {ch!r}")
    return text


def parse_group(raw: bytes, mode: TicMode) -> TicGroup:
    """Decode one group: the bytes between LF and CR, both excluded.

    Checks, in order: ASCII without control characters (HT allowed in standard mode),
    the separators (before the checksum, after the label), the checksum, the label, the
    field count (from the label table when the label is known: horodated or not), the
    horodate.

    Raises
    ------
    TicError
        The message names the label when there is one and says what is wrong.
    """
    text = _check_bytes(raw, mode)
    sep = "\t" if mode is TicMode.STANDARD else " "
    if len(text) < 3:
        raise TicError(f"group {text!r}: too short")
    if text[-2] != sep:
        raise TicError(f"group {text[:24]!r}: missing separator before the checksum")
    body = text[:-2]
    if mode is TicMode.STANDARD:
        fields = body.split(sep)
    else:
        # The data may hold spaces: the label ends at the first one.
        label, found, data = body.partition(sep)
        fields = [label, data] if found else [label]
    label = fields[0]
    name = label if _LABEL.fullmatch(label) else repr(label[:24])
    if len(fields) == 1:
        raise TicError(f"group {name}: missing separator between label and data")
    covered = raw[:-1] if mode is TicMode.STANDARD else raw[:-2]
    want_cs = checksum(covered)
    if raw[-1] != want_cs:
        raise TicError(f"group {name}: bad checksum {text[-1]!r} (expected {chr(want_cs)!r})")
    if name != label:
        raise TicError(f"group {name}: bad label")
    row = tic_label(mode, label)
    expected = None if row is None else (3 if row.horodated else 2)
    if len(fields) not in (2, 3) or (expected is not None and len(fields) != expected):
        want = "2 or 3" if expected is None else str(expected)
        raise TicError(f"group {label}: wrong field count {len(fields)} (expected {want})")
    horodate: datetime | None = None
    synchronised: bool | None = None
    if len(fields) == 3:
        try:
            horodate, synchronised = parse_horodate(fields[1])
        except TicError as exc:
            raise TicError(f"group {label}: {exc}") from None
    return TicGroup(label, fields[-1], horodate, synchronised)


def detect_mode(raw_groups: list[bytes], body: bytes = b"") -> TicMode:
    """The mode of a frame from its groups: the separator before most checksums.

    Without a majority (no group, a tie), standard if any HT is in ``body``.
    """
    standard = sum(1 for g in raw_groups if len(g) >= 2 and g[-2] == HT)
    historic = sum(1 for g in raw_groups if len(g) >= 2 and g[-2] == SP)
    if standard != historic:
        return TicMode.STANDARD if standard > historic else TicMode.HISTORIC
    return TicMode.STANDARD if HT in body else TicMode.HISTORIC


def _split_groups(body: bytes) -> tuple[list[bytes], list[str]]:
    """Cut a frame body into LF…CR groups; pieces that are not one are broken framing."""
    groups: list[bytes] = []
    broken: list[str] = []
    chunks = body.split(b"\r")
    for i, chunk in enumerate(chunks):
        terminated = i < len(chunks) - 1
        head, *tails = chunk.split(b"\n")
        if head and tails:
            broken.append(f"broken framing: stray bytes {head[:24]!r} before LF")
        elif head:
            where = "group without LF" if terminated else "stray bytes before ETX"
            broken.append(f"broken framing: {where} {head[:24]!r}")
        elif terminated and not tails:
            broken.append("broken framing: stray CR")
        for j, part in enumerate(tails):
            if j < len(tails) - 1:
                broken.append(f"broken framing: group without CR {part[:24]!r}")
            elif terminated:
                groups.append(part)
            else:
                broken.append(f"broken framing: group without CR before ETX {part[:24]!r}")
    return groups, broken


def decode_frame(body: bytes, mode: TicMode | None = None) -> TicFrame:
    """Decode the bytes between STX and ETX (both excluded); ``mode=None`` detects it."""
    raw_groups, dropped = _split_groups(body)
    if mode is None:
        mode = detect_mode(raw_groups, body)
    groups: dict[str, TicGroup] = {}
    for raw in raw_groups:
        try:
            group = parse_group(raw, mode)
        except TicError as exc:
            dropped.append(str(exc))
            continue
        if group.label in groups:
            dropped.append(f"group {group.label}: duplicate label in one frame")
            continue
        groups[group.label] = group
    return TicFrame(mode, groups, dropped)


class TicStreamDecoder:
    """Incremental frame decoder: feed bytes as they come, get whole frames back.

    Parameters
    ----------
    mode : TicMode or None
        Fixed mode, or ``None`` to detect it from each frame's separators.

    Counters (public, cumulative):

    - ``frames``: frames returned (a frame with no valid group is not returned);
    - ``groups_ok`` / ``groups_dropped``: groups kept / dropped in ETX-terminated frames;
    - ``frames_lost``: ETX-terminated frames without a valid group (not returned);
    - ``frames_interrupted``: frames cut by EOT (their groups are not decoded);
    - ``bytes_discarded``: bytes outside any frame (garbage before an STX, stray ETX or
      EOT), plus the whole of a frame abandoned without ETX or EOT (an STX inside it
      restarts; beyond :data:`MAX_FRAME_BYTES` it is dropped);
    - ``mode``: the mode of the last decoded frame (the fixed mode from the start).

    Every frame that gives nothing (no valid group, cut by EOT, restarted by an STX,
    over-long) is also kept as a :class:`LostFrame` until :meth:`take_lost` (at most
    :data:`MAX_PENDING_LOST`), so that the source can dead-letter it with its reason.
    """

    def __init__(self, mode: TicMode | None = None) -> None:
        self.fixed_mode = mode
        self.mode: TicMode | None = mode
        self.frames = 0
        self.groups_ok = 0
        self.groups_dropped = 0
        self.frames_lost = 0
        self.frames_interrupted = 0
        self.bytes_discarded = 0
        self._lost: deque[LostFrame] = deque(maxlen=MAX_PENDING_LOST)
        self._buffer = bytearray()
        self._in_frame = False

    @property
    def buffered(self) -> int:
        """Bytes held for the frame in progress (bounded by :data:`MAX_FRAME_BYTES`)."""
        return len(self._buffer)

    def take_lost(self) -> list[LostFrame]:
        """The frames lost since the last call, oldest first."""
        lost = list(self._lost)
        self._lost.clear()
        return lost

    def _lose(self, reason: str, body: bytes | bytearray, dropped: tuple[str, ...] = ()) -> None:
        self._lost.append(LostFrame(reason, dropped, b"\x02" + bytes(body[:LOST_FRAME_BYTES])))

    def feed(self, data: bytes) -> list[TicFrame]:
        """Take the next bytes of the line; return the frames they complete."""
        frames: list[TicFrame] = []
        pos, end = 0, len(data)
        while pos < end:
            if not self._in_frame:
                start = data.find(STX, pos)
                if start < 0:
                    self.bytes_discarded += end - pos
                    return frames
                self.bytes_discarded += start - pos
                self._in_frame = True
                pos = start + 1
                continue
            match = _FRAMING.search(data, pos)
            stop = match.start() if match else end
            if len(self._buffer) + stop - pos > MAX_FRAME_BYTES:
                # Over-long, so not a frame: drop the STX and everything since, up to
                # the next control byte, without ever holding more than the bound.
                self.bytes_discarded += 1 + len(self._buffer) + stop - pos
                self._lose(
                    f"frame over {MAX_FRAME_BYTES} bytes without ETX: discarded", self._buffer
                )
                self._reset()
                pos = stop
                continue
            self._buffer += data[pos:stop]
            if match is None:
                return frames
            control = data[stop]
            pos = stop + 1
            if control == ETX:
                frame = self._finish()
                if frame is not None:
                    frames.append(frame)
            elif control == EOT:
                self.frames_interrupted += 1
                self._lose(
                    f"frame interrupted by EOT after {len(self._buffer)} bytes", self._buffer
                )
                self._reset()
            else:  # STX inside a frame: its ETX was lost; start again from here
                self.bytes_discarded += 1 + len(self._buffer)
                self._lose(
                    f"frame without ETX ({len(self._buffer)} bytes), restarted by STX", self._buffer
                )
                self._buffer.clear()
        return frames

    def _reset(self) -> None:
        self._buffer.clear()
        self._in_frame = False

    def _finish(self) -> TicFrame | None:
        body = bytes(self._buffer)
        self._reset()
        frame = decode_frame(body, self.fixed_mode)
        self.groups_ok += len(frame.groups)
        self.groups_dropped += len(frame.dropped)
        if not frame.groups:
            self.frames_lost += 1
            why = f"frame without a valid group ({len(frame.dropped)} dropped)"
            self._lose(why, body, tuple(frame.dropped))
            return None
        self.frames += 1
        self.mode = frame.mode
        return frame


def _number(label: str, data: str, mode: TicMode, index: bool) -> float:
    if not _DIGITS.fullmatch(data):
        raise TicError(f"group {label}: {data!r} is not a number")
    if mode is TicMode.HISTORIC and index and len(data) != _HISTORIC_INDEX_DIGITS:
        raise TicError(f"group {label}: index {data!r} is not 9 digits")
    return float(int(data))


def frame_values(frame: TicFrame, received_at: datetime) -> tuple[list[DecodedValue], list[str]]:
    """The numeric groups of ``frame`` as values keyed by label, and the problems found.

    A group is a value when its label has a unit in
    :data:`~domain.tic_labels.TIC_LABELS` and its data is a decimal
    number (historic indexes: exactly 9 digits); text labels and unknown labels are
    skipped silently, a numeric label with other data is a problem. Times: the frame's
    ``DATE`` when the meter clock is synchronised, else ``received_at``; a horodated
    group (SMAXSN, CCASN, UMOY1…) at its own horodate only when that is trusted (see
    :func:`unsynchronised_horodates`), else at the frame's time.
    """
    time = received_at
    date = frame.groups.get("DATE")
    if (
        frame.mode is TicMode.STANDARD
        and date is not None
        and date.horodate is not None
        and date.clock_synchronised
    ):
        time = date.horodate
    values: list[DecodedValue] = []
    problems: list[str] = []
    for group in frame.groups.values():
        row = tic_label(frame.mode, group.label)
        if row is None or row.unit is None:
            continue
        try:
            number = _number(group.label, group.data, frame.mode, row.index)
        except TicError as exc:
            problems.append(str(exc))
            continue
        own = group.horodate if _trusted(group, frame.clock_synchronised) else None
        values.append(DecodedValue(group.label, number, row.unit, own or time))
    return values, problems


def _trusted(group: TicGroup, frame_clock: bool | None) -> bool:
    """A group's horodate is the meter clock's: trusted when its season letter is
    uppercase, or a space (no season) while ``DATE`` does not say the clock is off."""
    if group.horodate is None or group.clock_synchronised is False:
        return False
    return group.clock_synchronised is True or frame_clock is not False


def unsynchronised_horodates(frame: TicFrame) -> list[str]:
    """Labels whose horodate comes from an unsynchronised meter clock (``DATE``
    included): :func:`frame_values` stamps their values with the frame's time instead
    (the receive time when ``DATE`` is off too) — an unset clock says e.g. 2019."""
    clock = frame.clock_synchronised
    return [
        label
        for label, group in frame.groups.items()
        if group.horodate is not None and not _trusted(group, clock)
    ]
