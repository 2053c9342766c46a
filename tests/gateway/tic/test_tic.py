"""Linky TIC: decoding (gateway.sources.tic.decoder), encoding (firmware_sim.tic_frames), the
label table.

Data-driven cases live in ``tests/gateway/tic/fixtures/<case>/``:

- ``input.bin``: raw bytes off the line (one or several frames, garbage, damage);
- ``expected.json``: written by hand from the spec (Enedis-NOI-CPT_54E): the detected
  ``mode``; every frame returned, with its groups (``data`` as sent, ``horodate`` in UTC
  or null, ``synchronised`` when horodated) and its number of ``dropped`` groups (and
  optionally one substring per reason in ``dropped_reasons``); the decoder ``counters``
  after the whole input; the ``values`` of the LAST frame, from ``frame_values`` with
  ``received_at`` = 2026-10-01T12:00:00Z.

Adding a case needs no code: drop a folder in.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from helpers.support import SITE_S1
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.periods import localize
from domain.site import ConfigError, parse_sites
from domain.tic_labels import TIC_LABELS, TicLabel, TicMode, label_problem, tic_label
from domain.units import UNITS
from firmware_sim.building import index_at, simulate_building
from firmware_sim.clock import SimulatedClock
from firmware_sim.linky_emulator import LinkyEmulator
from firmware_sim.tic_frames import (
    Tariff,
    corrupt_checksum,
    encode_frame,
    encode_group,
    format_horodate,
    line_noise,
    linky_frame,
    tariff_slot,
    tempo_colour,
    truncate,
)
from gateway.sources.decoded import DecodedValue
from gateway.sources.tic.decoder import (
    MAX_FRAME_BYTES,
    MAX_PENDING_LOST,
    TicError,
    TicFrame,
    TicGroup,
    TicStreamDecoder,
    checksum,
    frame_values,
    parse_group,
    parse_horodate,
    unsynchronised_horodates,
)

FIXTURES = Path(__file__).parent / "fixtures"
RECEIVED_AT = datetime(2026, 10, 1, 12, tzinfo=UTC)
REQUIRED_CASES = {
    "historic-base",
    "historic-hchc",
    "historic-tempo",
    "historic-ejp",
    "historic-three-phase",
    "standard-producer",
    "standard-three-phase",
    "standard-tempo",
    "standard-unsynchronised",
    "checksum-space-historic",
    "checksum-space-standard",
    "data-with-spaces",
    "bad-checksum",
    "eot-interrupted",
    "garbage-resync",
    "two-frames",
    "missing-separator-historic",
    "missing-separator-standard",
    "broken-framing",
    "stx-restart",
}
COUNTERS = ("frames", "groups_ok", "groups_dropped", "frames_interrupted", "bytes_discarded")
H, S = TicMode.HISTORIC, TicMode.STANDARD


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    expected: dict[str, Any]


def _cases() -> list[Case]:
    return [
        Case(
            d.name,
            (d / "input.bin").read_bytes(),
            json.loads((d / "expected.json").read_text(encoding="utf-8")),
        )
        for d in sorted(p for p in FIXTURES.iterdir() if p.is_dir())
    ]


CASES = _cases()


def _feed(
    data: bytes, chunks: list[int] | None = None, mode: TicMode | None = None
) -> tuple[list[TicFrame], TicStreamDecoder]:
    """Feed ``data`` whole, or cut at ``chunks`` sizes (cycled); return (frames, decoder)."""
    decoder = TicStreamDecoder(mode)
    if chunks is None:
        return decoder.feed(data), decoder
    frames: list[TicFrame] = []
    pos, i = 0, 0
    while pos < len(data):
        size = chunks[i % len(chunks)]
        frames += decoder.feed(data[pos : pos + size])
        pos, i = pos + size, i + 1
    return frames, decoder


def _counters(decoder: TicStreamDecoder) -> dict[str, int]:
    return {name: getattr(decoder, name) for name in COUNTERS}


def _group_json(group: TicGroup) -> dict[str, Any]:
    return {
        "data": group.data,
        "horodate": None if group.horodate is None else group.horodate.isoformat(),
        "synchronised": group.clock_synchronised,
    }


def _value_json(value: DecodedValue) -> dict[str, Any]:
    assert value.time.utcoffset() == timedelta(0)
    return {"key": value.key, "value": value.value, "unit": value.unit, "time": value.time}


# --- Data-driven cases -------------------------------------------------------------


def test_every_required_case_is_there_with_both_files() -> None:
    names = {c.name for c in CASES}
    assert names >= REQUIRED_CASES
    for d in FIXTURES.iterdir():
        assert {p.name for p in d.iterdir()} >= {"input.bin", "expected.json"}, d.name


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_tic_case(case: Case) -> None:
    expected = case.expected
    frames, decoder = _feed(case.data)

    assert decoder.mode == TicMode(expected["mode"])
    assert _counters(decoder) == expected["counters"]
    assert len(frames) == len(expected["frames"])
    for frame, want in zip(frames, expected["frames"], strict=True):
        assert frame.mode == TicMode(expected["mode"])
        got_groups = {label: _group_json(g) for label, g in frame.groups.items()}
        want_groups = {label: {"synchronised": None, **g} for label, g in want["groups"].items()}
        assert got_groups == want_groups
        assert list(frame.groups) == list(want["groups"])  # wire order kept
        assert len(frame.dropped) == want["dropped"], frame.dropped
        for fragment in want.get("dropped_reasons", []):
            assert sum(fragment in reason for reason in frame.dropped) == 1, (
                fragment,
                frame.dropped,
            )

    values, problems = frame_values(frames[-1], RECEIVED_AT)
    assert problems == []
    want_values = [
        {**v, "value": float(v["value"]), "time": datetime.fromisoformat(v["time"])}
        for v in expected["values"]
    ]
    assert [_value_json(v) for v in values] == want_values


def _spec_checksum(covered: bytes) -> int:
    """Enedis-NOI-CPT_54E: (sum of the bytes & 0x3F) + 0x20 — written again here, not
    imported from the decoder, so a fixture is checked against the spec, not the code."""
    return (sum(covered) & 0x3F) + 0x20


CLEAN_CASES = [
    c
    for c in CASES
    if c.expected["counters"]["groups_dropped"] == 0
    and c.expected["counters"]["bytes_discarded"] == 0
    and c.expected["counters"]["frames_interrupted"] == 0
]


@pytest.mark.parametrize("case", CLEAN_CASES, ids=lambda c: c.name)
def test_clean_fixture_groups_carry_the_spec_checksum(case: Case) -> None:
    # Every group of an undamaged fixture: historic checksum over label..data (the SP
    # before the checksum excluded), standard over label..the last HT (included).
    historic = case.expected["mode"] == "historic"
    groups = [g for frame in case.data.split(b"\x02")[1:] for g in frame.split(b"\n")[1:]]
    assert groups
    for raw in groups:
        group = raw[: raw.index(b"\r")]
        covered = group[:-2] if historic else group[:-1]
        assert group[-2:-1] == (b" " if historic else b"\t"), group
        assert group[-1] == _spec_checksum(covered), group


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_tic_case_byte_by_byte_and_odd_chunks_give_the_same(case: Case) -> None:
    whole, whole_decoder = _feed(case.data)
    for chunks in ([1], [3, 1, 7], [64]):
        frames, decoder = _feed(case.data, chunks)
        assert frames == whole, chunks
        assert _counters(decoder) == _counters(whole_decoder), chunks
        assert decoder.mode == whole_decoder.mode


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_tic_case_with_its_mode_fixed_gives_the_same(case: Case) -> None:
    whole, whole_decoder = _feed(case.data)
    fixed, decoder = _feed(case.data, mode=TicMode(case.expected["mode"]))
    assert fixed == whole
    assert _counters(decoder) == _counters(whole_decoder)


# --- Checksum ----------------------------------------------------------------------


def test_checksum_worked_examples_by_hand() -> None:
    # Historic "IINST 002 Y" (the spec's classic example), checksum over "IINST 002":
    #   I 73 + I 73 + N 78 + S 83 + T 84 = 391; + SP 32 = 423; + '0' 48 + '0' 48 + '2' 50
    #   = 569; 569 & 0x3F = 569 - 512 = 57; 57 + 0x20 = 89 = 'Y'.
    assert checksum(b"IINST 002") == ord("Y")
    assert parse_group(b"IINST 002 Y", H) == TicGroup("IINST", "002", None, None)
    # Standard "VTIC HT 02 HT J", checksum over "VTIC\t02\t" (the last HT included):
    #   V 86 + T 84 + I 73 + C 67 = 310; + HT 9 = 319; + '0' 48 + '2' 50 = 417; + HT 9
    #   = 426; 426 & 0x3F = 426 - 384 = 42; 42 + 0x20 = 74 = 'J'.
    assert checksum(b"VTIC\t02\t") == ord("J")
    assert parse_group(b"VTIC\t02\tJ", S) == TicGroup("VTIC", "02", None, None)
    # Without the last HT (the historic rule) it would be 417 & 0x3F = 33 -> 'A': wrong.
    with pytest.raises(TicError, match="bad checksum"):
        parse_group(b"VTIC\t02\tA", S)


def test_checksum_can_be_a_space() -> None:
    # "BASE 002565300": B 66 + A 65 + S 83 + E 69 = 283; + SP 32 = 315; nine digits:
    # 9 * 48 + (2+5+6+5+3) = 453; 315 + 453 = 768 = 12 * 64 -> 0 + 0x20 = ' '.
    assert checksum(b"BASE 002565300") == ord(" ")
    assert parse_group(b"BASE 002565300  ", H).data == "002565300"
    assert checksum(b"SINSTS\t00899\t") == ord(" ")
    assert parse_group(b"SINSTS\t00899\t ", S).data == "00899"


def test_checksum_range_is_space_to_underscore() -> None:
    assert checksum(b"") == 0x20
    assert checksum(bytes([0x3F])) == 0x5F
    assert checksum(bytes([0x40])) == 0x20


# --- Horodates ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "utc", "synchronised"),
    [
        ("E260701143000", datetime(2026, 7, 1, 12, 30, tzinfo=UTC), True),  # UTC+2
        ("H260115080000", datetime(2026, 1, 15, 7, 0, tzinfo=UTC), True),  # UTC+1
        ("e260701143000", datetime(2026, 7, 1, 12, 30, tzinfo=UTC), False),
        ("h260115080000", datetime(2026, 1, 15, 7, 0, tzinfo=UTC), False),
        # Space: Europe/Paris local time, DST from the zone.
        (" 260701143000", datetime(2026, 7, 1, 12, 30, tzinfo=UTC), None),
        (" 260115080000", datetime(2026, 1, 15, 7, 0, tzinfo=UTC), None),
        # 2026-10-25 02:30 happens twice in Paris: the letter tells which.
        ("E261025023000", datetime(2026, 10, 25, 0, 30, tzinfo=UTC), True),
        ("H261025023000", datetime(2026, 10, 25, 1, 30, tzinfo=UTC), True),
        # Without a letter the first (summer) one is taken.
        (" 261025023000", datetime(2026, 10, 25, 0, 30, tzinfo=UTC), None),
        # 2026-03-29 02:30 does not exist in Paris: read with the winter offset.
        (" 260329023000", datetime(2026, 3, 29, 1, 30, tzinfo=UTC), None),
        ("H261231235959", datetime(2026, 12, 31, 22, 59, 59, tzinfo=UTC), True),
    ],
)
def test_parse_horodate(text: str, utc: datetime, synchronised: bool | None) -> None:
    got, flag = parse_horodate(text)
    assert got == utc
    assert got.utcoffset() == timedelta(0)
    assert flag is synchronised


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("E26070114300", "13 characters"),
        ("E2607011430000", "13 characters"),
        ("X260701143000", "season 'X'"),
        ("E2607O1143000", "digits"),
        ("E261301143000", "month"),
        ("E260230120000", "day"),
        ("E260701253000", "hour"),
        ("E26070114300\u0661", "digits"),  # an Arabic-Indic one is not an ASCII digit
    ],
)
def test_parse_horodate_rejects(text: str, fragment: str) -> None:
    with pytest.raises(TicError, match=re.escape(fragment)):
        parse_horodate(text)


# --- parse_group -------------------------------------------------------------------


def test_parse_group_horodated_and_date() -> None:
    assert parse_group(b"DATE\tE260701143000\t\t6", S) == TicGroup(
        "DATE", "", datetime(2026, 7, 1, 12, 30, tzinfo=UTC), True
    )
    group = parse_group(encode_group("SMAXSN", "02850", S, "e260701081234")[1:-1], S)
    assert group == TicGroup("SMAXSN", "02850", datetime(2026, 7, 1, 6, 12, 34, tzinfo=UTC), False)


def test_parse_group_keeps_spaces() -> None:
    raw = encode_group("LTARF", "    HP  BLEU    ", S)[1:-1]
    assert parse_group(raw, S).data == "    HP  BLEU    "


def _sign(covered: bytes, mode: TicMode) -> bytes:
    """A group with the correct checksum for ``covered`` as the mode's rule reads it."""
    if mode is TicMode.STANDARD:
        return covered + bytes([checksum(covered)])
    return covered + b" " + bytes([checksum(covered)])


@pytest.mark.parametrize(
    ("raw", "mode", "fragment"),
    [
        (b"EAST\t000123456\t*", S, "group EAST: bad checksum '*'"),
        (b"BASE 002565285 X", H, "group BASE: bad checksum 'X'"),
        (b"BASE\xe9 002565285 X", H, "non-ASCII"),
        (b"BASE 0025\x0065285 X", H, "control character"),
        (b"BASE\t002565285\tX", H, "control character"),  # HT is standard's separator
        (b"AB", H, "too short"),
        (b"", S, "too short"),
        (b"EAST\t000123456X", S, "missing separator before the checksum"),
        (_sign(b"EAST000123456", H), H, "missing separator between label and data"),
        (_sign(b"EAST000123456\t", S), S, "missing separator between label and data"),
        (_sign(b"east\t000123456\t", S), S, "bad label"),
        (_sign(b"\tE260701143000\t\t", S), S, "bad label"),
        (_sign(b"EAST\tE260701143000\t000123456\t", S), S, "wrong field count 3 (expected 2)"),
        (_sign(b"DATE\t\t", S), S, "wrong field count 2 (expected 3)"),
        (_sign(b"XYZ\ta\tb\tc\t", S), S, "wrong field count 4 (expected 2 or 3)"),
        (_sign(b"SMAXSN\tE261301081234\t02850\t", S), S, "group SMAXSN: horodate"),
        (_sign(b"SMAXSN\tZ260701081234\t02850\t", S), S, "season 'Z'"),
    ],
)
def test_parse_group_errors(raw: bytes, mode: TicMode, fragment: str) -> None:
    with pytest.raises(TicError, match=re.escape(fragment)):
        parse_group(raw, mode)


def test_parse_group_accepts_unknown_labels() -> None:
    assert parse_group(_sign(b"NEWLBL\tabc\t", S), S).data == "abc"
    assert parse_group(_sign(b"NEWLBL\tH260115080000\tabc\t", S), S).horodate is not None


# --- frame_values ------------------------------------------------------------------


def _frame(mode: TicMode, *groups: TicGroup) -> TicFrame:
    return TicFrame(mode, {g.label: g for g in groups}, [])


def test_frame_values_reports_non_numbers_and_skips_text() -> None:
    frame = _frame(
        H,
        TicGroup("ADCO", "031762120856", None, None),
        TicGroup("BASE", "00256528", None, None),  # 8 digits: not a historic index
        TicGroup("PAPP", "0x450", None, None),
        TicGroup("IINST", "-02", None, None),
        TicGroup("IMAX", "090", None, None),
        TicGroup("UNKNOWN", "123", None, None),
    )
    values, problems = frame_values(frame, RECEIVED_AT)
    assert values == [DecodedValue("IMAX", 90.0, "A", RECEIVED_AT)]
    assert problems == [
        "group BASE: index '00256528' is not 9 digits",
        "group PAPP: '0x450' is not a number",
        "group IINST: '-02' is not a number",
    ]


def test_frame_values_time_from_date_only_when_synchronised() -> None:
    t = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)
    east = TicGroup("EAST", "000000010", None, None)
    for flag, want in ((True, t), (False, RECEIVED_AT), (None, RECEIVED_AT)):
        frame = _frame(S, TicGroup("DATE", "", t, flag), east)
        assert frame_values(frame, RECEIVED_AT)[0][0].time == want, flag
    assert frame_values(_frame(S, east), RECEIVED_AT)[0][0].time == RECEIVED_AT


def test_frame_values_reads_varh_as_text() -> None:
    frame = _frame(S, TicGroup("ERQ1", "000000123", None, None))
    assert frame_values(frame, RECEIVED_AT) == ([], [])


# --- TicStreamDecoder --------------------------------------------------------------

_GOOD_HISTORIC = encode_frame(
    [encode_group("ADCO", "031762120856", H), encode_group("BASE", "002565285", H)]
)


def test_decoder_starts_empty() -> None:
    decoder = TicStreamDecoder()
    assert decoder.feed(b"") == []
    assert _counters(decoder) == dict.fromkeys(COUNTERS, 0)
    assert decoder.mode is None
    assert TicStreamDecoder(S).mode is S


def test_decoder_with_the_wrong_fixed_mode_returns_nothing() -> None:
    decoder = TicStreamDecoder(S)
    assert decoder.feed(_GOOD_HISTORIC) == []
    assert decoder.frames == 0
    assert decoder.groups_dropped == 2
    assert decoder.mode is S


def test_frame_without_a_valid_group_is_not_returned_but_counted() -> None:
    decoder = TicStreamDecoder()
    assert decoder.feed(b"\x02\nBASE 002565285 X\r\n\r\x03") == []
    assert decoder.frames == 0
    assert decoder.groups_dropped == 2
    assert decoder.mode is None
    assert len(decoder.feed(b"\x02\x03")) == 0  # empty frame


def test_duplicate_label_in_a_frame_is_dropped() -> None:
    base = encode_group("BASE", "002565285", H)
    frames, _ = _feed(encode_frame([base, encode_group("BASE", "002565286", H)]))
    assert frames[0].groups["BASE"].data == "002565285"
    assert frames[0].dropped == ["group BASE: duplicate label in one frame"]


def test_over_long_frame_is_discarded_with_bounded_memory() -> None:
    decoder = TicStreamDecoder()
    assert decoder.feed(b"\x02" + b"\nA 1 Q\r" * 20_000) == []
    assert decoder.buffered == 0
    assert decoder.bytes_discarded == 1 + 7 * 20_000
    assert len(decoder.feed(_GOOD_HISTORIC)) == 1

    decoder = TicStreamDecoder()
    decoder.feed(b"\x02")
    for _ in range(3 * MAX_FRAME_BYTES):
        decoder.feed(b"Z")
        assert decoder.buffered <= MAX_FRAME_BYTES
    assert decoder.bytes_discarded == 1 + 3 * MAX_FRAME_BYTES
    # The over-long frame's ETX is garbage; the next STX starts a good frame.
    assert decoder.feed(b"\x03" + _GOOD_HISTORIC) != []
    assert decoder.bytes_discarded == 2 + 3 * MAX_FRAME_BYTES


def test_frame_of_exactly_the_bound_is_kept() -> None:
    group = encode_group("ADCO", "031762120856", H)
    filler = encode_group("MSG", "X" * (MAX_FRAME_BYTES - len(group) - 8), H)
    body = group + filler
    assert len(body) == MAX_FRAME_BYTES
    frames, decoder = _feed(b"\x02" + body + b"\x03", [1])
    assert len(frames) == 1
    assert decoder.bytes_discarded == 0


def test_stray_etx_and_eot_outside_a_frame_are_garbage() -> None:
    frames, decoder = _feed(b"\x03\x04" + _GOOD_HISTORIC)
    assert len(frames) == 1
    assert decoder.bytes_discarded == 2
    assert decoder.frames_interrupted == 0


def test_mode_follows_the_frames_when_auto() -> None:
    t = datetime(2026, 7, 1, 12, tzinfo=UTC)
    decoder = TicStreamDecoder()
    decoder.feed(linky_frame(S, t, 1, 2, 3, 4))
    assert decoder.mode is S
    decoder.feed(linky_frame(H, t, 1, 2, 3, 4))
    assert decoder.mode is H


def test_mode_detection_survives_a_stray_ht_in_a_historic_frame() -> None:
    frame = _GOOD_HISTORIC[:-1] + b"\n\t\r" + b"\x03"
    frames, _ = _feed(frame)
    assert frames[0].mode is H
    assert set(frames[0].groups) == {"ADCO", "BASE"}


# --- Label table -------------------------------------------------------------------

REQUIRED_LABELS = {
    H: "ADCO OPTARIF ISOUSC BASE HCHC HCHP EJPHN EJPHPM BBRHCJB BBRHPJB BBRHCJW BBRHPJW "
    "BBRHCJR BBRHPJR PEJP PTEC DEMAIN IINST IINST1 IINST2 IINST3 IMAX IMAX1 IMAX2 IMAX3 "
    "PMAX PAPP HHPHC MOTDETAT ADPS",
    S: "ADSC VTIC DATE NGTF LTARF EAST EASF01 EASF02 EASF03 EASF04 EASF05 EASF06 EASF07 "
    "EASF08 EASF09 EASF10 EASD01 EASD02 EASD03 EASD04 EAIT ERQ1 ERQ2 ERQ3 ERQ4 IRMS1 "
    "IRMS2 IRMS3 URMS1 URMS2 URMS3 PREF PCOUP SINSTS SINSTS1 SINSTS2 SINSTS3 SINSTI "
    "SMAXSN SMAXSN1 SMAXSN2 SMAXSN3 SMAXSN-1 SMAXSN1-1 SMAXSN2-1 SMAXSN3-1 SMAXIN "
    "SMAXIN-1 CCASN CCASN-1 CCAIN CCAIN-1 UMOY1 UMOY2 UMOY3 STGE DPM1 DPM2 DPM3 FPM1 FPM2 "
    "FPM3 MSG1 MSG2 PRM RELAIS NTARF NJOURF NJOURF+1 PJOURF+1 PPOINTE",
}


def test_label_table_has_the_spec_labels() -> None:
    for mode, labels in REQUIRED_LABELS.items():
        missing = [label for label in labels.split() if tic_label(mode, label) is None]
        assert missing == [], mode


def test_label_table_rows_are_consistent() -> None:
    for (mode, label), row in TIC_LABELS.items():
        assert isinstance(row, TicLabel)
        assert (row.mode, row.label) == (mode, label)
        assert row.unit is None or row.unit in UNITS, label
        assert re.fullmatch(r"[A-Z0-9+\-]+", label), label
        if row.index and row.unit is not None:
            assert row.unit == "Wh", label
        if mode is H:
            assert not row.horodated, label


@pytest.mark.parametrize(
    ("mode", "label", "unit", "index", "horodated"),
    [
        (H, "BASE", "Wh", True, False),
        (H, "BBRHPJR", "Wh", True, False),
        (H, "PAPP", "VA", False, False),
        (H, "PMAX", "W", False, False),
        (H, "ISOUSC", "A", False, False),
        (H, "PTEC", None, False, False),
        (S, "EAIT", "Wh", True, False),
        (S, "EASD04", "Wh", True, False),
        (S, "ERQ1", None, True, False),
        (S, "DATE", None, False, True),
        (S, "PREF", "kVA", False, False),
        (S, "SMAXIN-1", "VA", False, True),
        (S, "CCAIN-1", "W", False, True),
        (S, "UMOY3", "V", False, True),
        (S, "FPM2", None, False, True),
        (S, "STGE", None, False, False),
    ],
)
def test_label_rows(
    mode: TicMode, label: str, unit: str | None, index: bool, horodated: bool
) -> None:
    row = tic_label(mode, label)
    assert row is not None
    assert (row.unit, row.index, row.horodated) == (unit, index, horodated)


# --- Encoding ----------------------------------------------------------------------


def test_encode_group_matches_the_spec_by_hand() -> None:
    assert encode_group("IINST", "002", H) == b"\nIINST 002 Y\r"
    assert encode_group("VTIC", "02", S) == b"\nVTIC\t02\tJ\r"
    assert encode_group("BASE", "002565300", H) == b"\nBASE 002565300  \r"
    date = encode_group("DATE", "", S, datetime(2026, 7, 1, 12, 30, tzinfo=UTC))
    assert date.startswith(b"\nDATE\tE260701143000\t\t")
    assert encode_frame([b"\nA\r", b"\nB\r"]) == b"\x02\nA\r\nB\r\x03"


@pytest.mark.parametrize(
    ("label", "data", "mode", "horodate"),
    [
        ("EAST", "12\t3", S, None),
        ("EAST", "12\r3", H, None),
        ("EAST", "caf\u00e9", S, None),
        ("EA ST", "1", H, None),
        ("", "1", S, None),
        ("SMAXSN", "1", H, datetime(2026, 7, 1, tzinfo=UTC)),
    ],
)
def test_encode_group_rejects(
    label: str, data: str, mode: TicMode, horodate: datetime | None
) -> None:
    with pytest.raises(ValueError, match="TIC"):
        encode_group(label, data, mode, horodate)


@pytest.mark.parametrize(
    ("t", "synchronised", "text"),
    [
        (datetime(2026, 7, 1, 12, 30, tzinfo=UTC), True, "E260701143000"),
        (datetime(2026, 1, 15, 7, tzinfo=UTC), True, "H260115080000"),
        (datetime(2026, 7, 1, 12, 30, tzinfo=UTC), False, "e260701143000"),
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), True, "E261025023000"),
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), True, "H261025023000"),
        (datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC), True, "H260329015959"),
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), True, "E260329030000"),
    ],
)
def test_format_horodate_round_trips(t: datetime, synchronised: bool, text: str) -> None:
    assert format_horodate(t, synchronised) == text
    assert parse_horodate(text) == (t, synchronised)


def test_format_horodate_needs_a_time_zone() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_horodate(datetime(2026, 7, 1, 12))


@pytest.mark.parametrize("mode", list(TicMode))
@pytest.mark.parametrize(
    ("import_wh", "export_wh"), [(0.0, 0.0), (1234567.9, 2345.2), (999_999_999.99, 12.999)]
)
def test_linky_frame_round_trips_the_indexes(
    mode: TicMode, import_wh: float, export_wh: float
) -> None:
    t = datetime(2026, 7, 1, 12, 30, 7, tzinfo=UTC)
    frame = linky_frame(mode, t, import_wh, export_wh, power_va=1500.4, injected_va=0.0)
    frames, decoder = _feed(frame, [5])
    assert (decoder.frames, decoder.groups_dropped, decoder.mode) == (1, 0, mode)
    values, problems = frame_values(frames[0], RECEIVED_AT)
    assert problems == []
    by_key = {v.key: v for v in values}
    if mode is H:
        assert by_key["BASE"].value == float(int(import_wh))
        assert by_key["BASE"].time == RECEIVED_AT
        assert by_key["PAPP"].value == 1500.0
        assert "EAIT" not in by_key
        assert list(frames[0].groups) == [
            *("ADCO", "OPTARIF", "ISOUSC", "BASE", "PTEC"),
            *("IINST", "IMAX", "PAPP", "HHPHC", "MOTDETAT"),
        ]
    else:
        assert by_key["EAST"].value == float(int(import_wh))
        assert by_key["EAIT"].value == float(int(export_wh))
        assert by_key["EAST"].time == t  # the DATE horodate, clock synchronised
        assert by_key["SINSTS"].value == 1500.0
        assert by_key["SINSTI"].value == 0.0
        groups = frames[0].groups
        assert groups["NGTF"].data == "      BASE      "
        assert groups["MSG1"].data == "PAS DE          MESSAGE         "
        assert " NONUTILE " in groups["PJOURF+1"].data
        assert groups["DATE"].data == ""
        assert groups["SMAXSN"].horodate == t
        assert groups["CCASN"].horodate == datetime(2026, 7, 1, 12, 30, tzinfo=UTC)
        assert groups["STGE"].data == "00DA0100"


def test_linky_frame_producer_and_unsynchronised_clock() -> None:
    t = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)
    frame = linky_frame(S, t, 10, 20, power_va=0, injected_va=2300, synchronised=False)
    frames, _ = _feed(frame)
    groups = frames[0].groups
    assert groups["DATE"].clock_synchronised is False
    assert groups["SINSTI"].data == "02300"
    assert groups["IRMS1"].data == "010"
    assert groups["STGE"].data == "00DB0300"  # injecting, clock degraded
    values, _ = frame_values(frames[0], RECEIVED_AT)
    assert {v.key: v.time for v in values}["EAST"] == RECEIVED_AT


def test_linky_frame_rejects_negative_or_non_finite() -> None:
    t = datetime(2026, 7, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="import_wh"):
        linky_frame(S, t, -1.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="power_va"):
        linky_frame(H, t, 1.0, 0.0, float("nan"), 0.0)


# --- Corruption helpers ------------------------------------------------------------

_T = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize("mode", list(TicMode))
def test_corrupt_checksum_drops_only_the_target(mode: TicMode) -> None:
    frame = linky_frame(mode, _T, 1234567, 89, 1500, 0)
    intact = _feed(frame)[0][0]
    for label in intact.groups:
        damaged = corrupt_checksum(frame, label)
        assert len(damaged) == len(frame)
        frames, decoder = _feed(damaged)
        assert set(frames[0].groups) == set(intact.groups) - {label}, label
        assert len(frames[0].dropped) == 1
        assert f"group {label}: bad checksum" in frames[0].dropped[0]
        assert decoder.groups_dropped == 1
    with pytest.raises(ValueError, match="NOPE"):
        corrupt_checksum(frame, "NOPE")


def test_truncate_interrupts_and_the_next_frame_is_read() -> None:
    frame = linky_frame(S, _T, 1234567, 89, 1500, 0)
    for at in (1, 2, 100, len(frame) - 1):
        frames, decoder = _feed(truncate(frame, at) + frame)
        assert len(frames) == 1, at
        assert decoder.frames_interrupted == 1
        assert decoder.groups_dropped == 0
        assert decoder.bytes_discarded == 0


@pytest.mark.parametrize(
    "rng", [random.Random(7), np.random.default_rng(7)], ids=["random", "numpy"]
)
def test_line_noise_is_resynchronised(rng: random.Random | np.random.Generator) -> None:
    noise = line_noise(rng, 500)
    assert len(noise) == 500
    assert not set(noise) & {0x02, 0x03, 0x04}
    frame = linky_frame(H, _T, 1234567, 0, 1500, 0)
    frames, decoder = _feed(noise + frame + noise + frame, [7])
    assert len(frames) == 2
    assert decoder.bytes_discarded == 1000
    assert line_noise(random.Random(1), 0) == b""


# --- Properties --------------------------------------------------------------------


def _valid_segments(data: bytes) -> dict[TicMode, set[tuple[str, str]]]:
    """(label, data) of every LF…CR piece of ``data`` whose checksum is right, by mode;
    checked here independently of the decoder."""
    found: dict[TicMode, set[tuple[str, str]]] = {H: set(), S: set()}
    for m in re.finditer(rb"(?=\n([^\n\r]*)\r)", data):
        raw = m.group(1)
        if len(raw) < 3:
            continue
        text = raw.decode("latin-1")
        if raw[-2] == 0x09 and (sum(raw[:-1]) & 63) + 32 == raw[-1]:
            fields = text[:-2].split("\t")
            found[S].add((fields[0], fields[-1]))
        if raw[-2] == 0x20 and (sum(raw[:-2]) & 63) + 32 == raw[-1]:
            label, _, rest = text[:-2].partition(" ")
            found[H].add((label, rest))
    return found


_TOKENS = st.one_of(
    st.binary(max_size=12),
    st.sampled_from([b"\x02", b"\x03", b"\x04", b"\n", b"\r", b"\t", b" ", b"\x02\n"]),
    st.builds(
        encode_group,
        st.sampled_from(["EAST", "BASE", "PAPP", "DATE", "SMAXSN", "NEW+1"]),
        st.text(alphabet="0123456789 AZ.", max_size=10),
        st.sampled_from(list(TicMode)),
    ),
    st.builds(
        encode_group,
        st.sampled_from(["DATE", "SMAXSN", "UMOY1"]),
        st.text(alphabet="0123456789", max_size=5),
        st.just(S),
        st.sampled_from(["E260701143000", "h261025023000", " 260329023000", "E26130"]),
    ),
)
_STREAMS = st.lists(_TOKENS, max_size=40).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=400), _STREAMS), cuts=st.lists(st.integers(1, 50)))
def test_any_bytes_never_raise_nor_yield_a_bad_group(data: bytes, cuts: list[int]) -> None:
    frames, decoder = _feed(data)
    valid = _valid_segments(data)
    for frame in frames:
        assert frame.groups
        for group in frame.groups.values():
            assert (group.label, group.data) in valid[frame.mode]
            assert group.horodate is None or group.horodate.utcoffset() == timedelta(0)
        frame_values(frame, RECEIVED_AT)
    assert decoder.frames == len(frames)
    assert decoder.groups_ok == sum(len(f.groups) for f in frames)
    assert decoder.buffered <= MAX_FRAME_BYTES
    assert decoder.bytes_discarded <= len(data)
    chunked, chunked_decoder = _feed(data, cuts or [1])
    assert chunked == frames
    assert _counters(chunked_decoder) == _counters(decoder)


# --- Lost frames (whole frames that give nothing) -----------------------------------


def test_lost_frames_are_kept_with_their_reason_for_the_dead_letter_log() -> None:
    decoder = TicStreamDecoder(H)
    good = encode_group("BASE", "002565285", H)
    bad = encode_group("BASE", "002565285", H)[:-2] + b"!\r"  # wrong checksum
    data = (
        encode_frame([bad, bad])  # no valid group
        + truncate(encode_frame([good]), 6)  # cut by EOT
        + b"\x02\nBASE 0025"  # its ETX lost: the next STX restarts
        + encode_frame([good])
    )
    frames = decoder.feed(data)
    assert len(frames) == 1 and decoder.frames_lost == 1 and decoder.frames_interrupted == 1
    lost = decoder.take_lost()
    assert [item.reason for item in lost] == [
        "frame without a valid group (2 dropped)",
        "frame interrupted by EOT after 5 bytes",
        "frame without ETX (10 bytes), restarted by STX",
    ]
    assert [len(item.dropped) for item in lost] == [2, 0, 0]
    assert all("bad checksum" in reason for reason in lost[0].dropped)
    assert lost[1].data == b"\x02\nBASE"
    assert decoder.take_lost() == []  # taken once


def test_lost_frames_waiting_are_bounded() -> None:
    decoder = TicStreamDecoder(H)
    decoder.feed(b"\x02\x04" * (MAX_PENDING_LOST + 10))
    assert decoder.frames_interrupted == MAX_PENDING_LOST + 10
    assert len(decoder.take_lost()) == MAX_PENDING_LOST


# --- Unsynchronised meter clock ------------------------------------------------------


def test_unsynchronised_horodates_are_not_used_as_times() -> None:
    sync_date = TicGroup("DATE", "", datetime(2026, 7, 1, 12, 30, tzinfo=UTC), True)
    # A meter whose clock was never set: e200101000000 is 2019-12-31T22:00Z.
    unset, unset_sync = parse_horodate("e200101000000")
    assert unset.year == 2019 and unset_sync is False
    ccasn = TicGroup("CCASN", "00380", unset, False)
    smaxsn = TicGroup("SMAXSN", "01200", unset, False)
    umoy = TicGroup("UMOY1", "232", datetime(2026, 7, 1, 12, 20, tzinfo=UTC), None)
    # DATE synchronised: the lowercase groups take the frame's time, UMOY1 (no season)
    # keeps its own.
    frame = _frame(S, sync_date, ccasn, smaxsn, umoy)
    times = {v.key: v.time for v in frame_values(frame, RECEIVED_AT)[0]}
    assert times == {
        "CCASN": sync_date.horodate,
        "SMAXSN": sync_date.horodate,
        "UMOY1": umoy.horodate,
    }
    assert unsynchronised_horodates(frame) == ["CCASN", "SMAXSN"]
    # DATE unsynchronised too: everything at the receive time, UMOY1 included.
    off_date = TicGroup("DATE", "", unset, False)
    frame = _frame(S, off_date, ccasn, smaxsn, umoy)
    times = {v.key: v.time for v in frame_values(frame, RECEIVED_AT)[0]}
    assert times == dict.fromkeys(("CCASN", "SMAXSN", "UMOY1"), RECEIVED_AT)
    assert unsynchronised_horodates(frame) == ["DATE", "CCASN", "SMAXSN", "UMOY1"]


def test_linky_frame_with_an_unset_clock_stores_nothing_in_the_past() -> None:
    t = datetime(2020, 1, 1, 0, 0, tzinfo=UTC)  # the meter clock's idea of now
    frame = linky_frame(S, t, 1000, 0, 500, 0, synchronised=False)
    (decoded,) = TicStreamDecoder(S).feed(frame)
    values, problems = frame_values(decoded, RECEIVED_AT)
    assert problems == [] and values
    assert {v.time for v in values} == {RECEIVED_AT}


# --- Labels checked against the meter at config load --------------------------------


def _tic_meter(
    label: str, role: str = "grid_import", unit: str = "Wh", mode: str = "standard"
) -> str:
    return f"""
[[sites]]
id = "s1"
name = "S1"
timezone = "Europe/Paris"
floor_area_m2 = 100
location = {{ lat = 48.0, lon = 2.0 }}

[[sites.meters]]
id = "m"
role = "{role}"
unit = "{unit}"
source = {{ type = "tic", port = "/dev/ttyUSB0", mode = "{mode}", label = "{label}" }}
"""


@pytest.mark.parametrize(
    ("label", "role", "unit", "mode", "fragment"),
    [
        (
            "ADSC",
            "measurement",
            "VA",
            "standard",
            "'ADSC' (secondary meter address (identity)) has no value",
        ),
        (
            "PRM",
            "measurement",
            "VA",
            "standard",
            "'PRM' (delivery point reference (PRM)) has no value",
        ),
        (
            "ERQ1",
            "grid_import",
            "Wh",
            "standard",
            "'ERQ1' (total reactive energy, quadrant 1 (varh)) has no",
        ),
        ("ADCO", "measurement", "A", "auto", "'ADCO' (meter address (identity)) has no value"),
        ("SINSTS", "grid_import", "Wh", "standard", "'SINSTS' (apparent power drawn) is in VA"),
        ("SINSTS", "grid_import", "Wh", "standard", "the meter's unit 'Wh' is energy"),
        ("EAST", "measurement", "VA", "standard", "'EAST' (total active energy drawn) is in Wh"),
    ],
)
def test_config_refuses_a_label_that_cannot_feed_the_meter(
    label: str, role: str, unit: str, mode: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_sites(_tic_meter(label, role, unit, mode))
    message = str(err.value)
    assert message.startswith("site s1, meter m: source.label: TIC label "), message
    assert fragment in message, message


@pytest.mark.parametrize(
    ("label", "role", "unit", "mode"),
    [
        ("EAST", "grid_import", "Wh", "standard"),
        ("EAIT", "grid_export", "kWh", "standard"),
        ("BASE", "grid_import", "Wh", "auto"),
        ("SINSTS", "measurement", "VA", "standard"),
        ("IINST", "measurement", "A", "historic"),
        ("PREF", "measurement", "kVA", "standard"),
    ],
)
def test_config_accepts_a_label_that_fits_the_meter(
    label: str, role: str, unit: str, mode: str
) -> None:
    parse_sites(_tic_meter(label, role, unit, mode))


def test_every_numeric_label_fits_a_meter_of_its_own_unit() -> None:
    for (mode, label), row in TIC_LABELS.items():
        if row.unit is not None and row.unit in UNITS:
            assert label_problem(mode.value, label, row.unit) is None, label
        else:
            assert label_problem(mode.value, label, "Wh") is not None, label


# --- The emulator's tariff schedule ------------------------------------------------


@pytest.mark.parametrize("mode", [S, H], ids=["standard", "historic"])
def test_linky_emulator_splits_the_energy_over_tempo_and_distributor_indexes(
    mode: TicMode,
) -> None:
    site = parse_sites(SITE_S1).sites[0]
    start = localize(datetime(2026, 1, 10), site.tz)  # winter: red and white days too
    end = start + timedelta(days=14)
    building = simulate_building(site, start, end, timedelta(minutes=15), 5)
    emulator = LinkyEmulator(
        "/dev/null", mode, building, SimulatedClock(start, 1), end, tariff=Tariff.TEMPO
    )
    decoder = TicStreamDecoder(mode)
    supplier_labels = (
        [f"EASF{n:02d}" for n in range(1, 11)]
        if mode is S
        else [f"BBR{p}J{c}" for c in "BWR" for p in ("HC", "HP")]
    )
    rows = []
    for i in range(14 * 72 + 1):
        t = start + timedelta(minutes=20 * i)
        (frame,) = decoder.feed(emulator.frame_at(t))
        assert frame.dropped == []
        values = {str(v.key): v.value for v in frame_values(frame, t)[0]}
        total = math.floor(index_at(building, "import_wh", t))
        assert sum(values[label] for label in supplier_labels) == total
        if mode is S:
            assert values["EAST"] == total
            assert sum(values[f"EASD{n:02d}"] for n in range(1, 5)) == total
            # NTARF names the supplier index counting now, LTARF says which it is.
            assert frame.groups["NTARF"].data == f"{tariff_slot(Tariff.TEMPO, t).supplier + 1:02d}"
            assert len(frame.groups["LTARF"].data) == 16
        rows.append(values)
    moving = supplier_labels[:6] + ([f"EASD{n:02d}" for n in range(1, 5)] if mode is S else [])
    for label in moving:
        series = [r[label] for r in rows]
        assert all(b >= a for a, b in itertools.pairwise(series)), label
    # Over two winter weeks every Tempo index and both high-season distributor indexes
    # count; the low-season ones (April to October) and EASF07-10 do not.
    grew = {label for label in moving if rows[-1][label] > rows[0][label]}
    expected = set(supplier_labels[:6]) | ({"EASD01", "EASD02"} if mode is S else set())
    assert grew == expected
    if mode is S:
        assert all(rows[-1][f"EASF{n:02d}"] == 0 for n in range(7, 11))


def test_tariff_slots_follow_the_clock_and_the_tempo_day() -> None:
    paris = ZoneInfo("Europe/Paris")
    # 2026-01-13 is a red day of the emulator's calendar; its Tempo day runs 06:00-06:00.
    assert tempo_colour(datetime(2026, 1, 13, tzinfo=paris)) == 2
    red_peak = tariff_slot(Tariff.TEMPO, datetime(2026, 1, 13, 12, tzinfo=paris))
    assert (red_peak.supplier, red_peak.ptec, red_peak.ltarf) == (5, "HPJR", "    HP  ROUGE   ")
    red_night = tariff_slot(Tariff.TEMPO, datetime(2026, 1, 14, 5, 59, tzinfo=paris))
    assert (red_night.supplier, red_night.distributor) == (4, 1)  # HC red, HC high season
    next_day = tariff_slot(Tariff.TEMPO, datetime(2026, 1, 14, 6, tzinfo=paris))
    assert next_day.colour == tempo_colour(datetime(2026, 1, 14, tzinfo=paris))
    summer = tariff_slot(Tariff.HCHP, datetime(2026, 7, 1, 23, tzinfo=paris))
    assert (summer.supplier, summer.distributor, summer.ptec) == (0, 3, "HC..")


@pytest.mark.parametrize("mode", [S, H], ids=["standard", "historic"])
def test_emulated_meter_address_has_twelve_characters(mode: TicMode) -> None:
    # ADSC/ADCO is a 12-character meter address (Enedis-NOI-CPT_54E).
    (frame,) = TicStreamDecoder(mode).feed(linky_frame(mode, T0_TARIFF, 1, 0, 0, 0))
    assert len(frame.groups["ADSC" if mode is S else "ADCO"].data) == 12


T0_TARIFF = datetime(2026, 1, 13, 12, tzinfo=UTC)
