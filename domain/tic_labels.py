"""Linky TIC labels (Enedis-NOI-CPT_54E): what each group carries, as a table.

One frozen row per label: the mode(s) it appears in, its unit (``None`` for text such
as meter identity or tariff names), whether its group carries a horodate, and whether
it is a cumulative index. Parsers and emulators read this table; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from domain.units import UNITS, UnitError, unit_of


class TicMode(StrEnum):
    HISTORIC = "historic"  # 1200 baud 7E1, SP separator, all meters
    STANDARD = "standard"  # 9600 baud 7E1, HT separator, Linky only


@dataclass(frozen=True)
class TicLabel:
    """One TIC label.

    Parameters
    ----------
    label : str
        As on the wire, e.g. ``EAST``.
    mode : TicMode
        The mode whose frames carry it.
    description : str
        What it is, in English.
    unit : str or None
        Unit of the numeric value (``Wh``, ``VA``, ``A``, ``V``…); ``None`` for text.
    index : bool
        A cumulative counter (stored raw, energy derived from differences).
    horodated : bool
        Standard mode: the group carries a horodate before its data.
    """

    label: str
    mode: TicMode
    description: str
    unit: str | None = None
    index: bool = False
    horodated: bool = False


def _rows(*rows: TicLabel) -> dict[tuple[TicMode, str], TicLabel]:
    return {(r.mode, r.label): r for r in rows}


H, S = TicMode.HISTORIC, TicMode.STANDARD


def _series(
    template: str,
    numbers: range,
    mode: TicMode,
    description: str,
    unit: str | None = None,
    *,
    index: bool = False,
    horodated: bool = False,
) -> tuple[TicLabel, ...]:
    """One row per number, e.g. ``EASF{:02d}`` over 1..10 gives EASF01..EASF10."""
    return tuple(
        TicLabel(
            template.format(n),
            mode,
            description.format(n),
            unit,
            index=index,
            horodated=horodated,
        )
        for n in numbers
    )


_PHASES = range(1, 4)

#: Labels by (mode, label), after Enedis-NOI-CPT_54E (historic §5.3, standard §6.2).
#: Units are those of :mod:`domain.units`; labels whose unit it does not know
#: (varh, minutes, counts, codes) are listed with ``unit=None`` and read as text.
TIC_LABELS: Final[dict[tuple[TicMode, str], TicLabel]] = _rows(
    # --- Historic mode (all electronic meters; Linky in its factory mode) ---
    TicLabel("ADCO", H, "meter address (identity)"),
    TicLabel("OPTARIF", H, "tariff option: BASE, HC.., EJP., BBRx"),
    TicLabel("ISOUSC", H, "subscribed current", "A"),
    TicLabel("BASE", H, "index, base tariff", "Wh", index=True),
    TicLabel("HCHC", H, "index, off-peak hours", "Wh", index=True),
    TicLabel("HCHP", H, "index, peak hours", "Wh", index=True),
    TicLabel("EJPHN", H, "index, EJP normal hours", "Wh", index=True),
    TicLabel("EJPHPM", H, "index, EJP mobile peak hours", "Wh", index=True),
    TicLabel("BBRHCJB", H, "index, Tempo blue days off-peak", "Wh", index=True),
    TicLabel("BBRHPJB", H, "index, Tempo blue days peak", "Wh", index=True),
    TicLabel("BBRHCJW", H, "index, Tempo white days off-peak", "Wh", index=True),
    TicLabel("BBRHPJW", H, "index, Tempo white days peak", "Wh", index=True),
    TicLabel("BBRHCJR", H, "index, Tempo red days off-peak", "Wh", index=True),
    TicLabel("BBRHPJR", H, "index, Tempo red days peak", "Wh", index=True),
    TicLabel("PEJP", H, "EJP advance notice (minutes)"),
    TicLabel("PTEC", H, "current tariff period"),
    TicLabel("DEMAIN", H, "Tempo colour of tomorrow"),
    TicLabel("IINST", H, "instantaneous current", "A"),
    *_series("IINST{}", _PHASES, H, "instantaneous current, phase {}", "A"),
    TicLabel("ADPS", H, "subscribed power exceeded, current", "A"),
    *_series("ADIR{}", _PHASES, H, "subscribed power exceeded, current of phase {}", "A"),
    TicLabel("IMAX", H, "maximum current", "A"),
    *_series("IMAX{}", _PHASES, H, "maximum current, phase {}", "A"),
    TicLabel("PMAX", H, "maximum three-phase power reached", "W"),
    TicLabel("PAPP", H, "apparent power", "VA"),
    TicLabel("HHPHC", H, "peak/off-peak hours schedule group"),
    TicLabel("MOTDETAT", H, "meter status word"),
    TicLabel("PPOT", H, "presence of potentials (three-phase)"),
    # --- Standard mode (Linky only) ---
    TicLabel("ADSC", S, "secondary meter address (identity)"),
    TicLabel("VTIC", S, "TIC version"),
    TicLabel("DATE", S, "current date and time (horodate, empty data)", horodated=True),
    TicLabel("NGTF", S, "supplier tariff name"),
    TicLabel("LTARF", S, "current supplier tariff label"),
    TicLabel("EAST", S, "total active energy drawn", "Wh", index=True),
    *_series(
        "EASF{:02d}", range(1, 11), S, "active energy drawn, supplier index {}", "Wh", index=True
    ),
    *_series(
        "EASD{:02d}", range(1, 5), S, "active energy drawn, distributor index {}", "Wh", index=True
    ),
    TicLabel("EAIT", S, "total active energy injected", "Wh", index=True),
    *_series("ERQ{}", range(1, 5), S, "total reactive energy, quadrant {} (varh)", index=True),
    *_series("IRMS{}", _PHASES, S, "RMS current, phase {}", "A"),
    *_series("URMS{}", _PHASES, S, "RMS voltage, phase {}", "V"),
    TicLabel("PREF", S, "reference (subscribed) apparent power", "kVA"),
    TicLabel("PCOUP", S, "apparent power cut-off threshold", "kVA"),
    TicLabel("SINSTS", S, "apparent power drawn", "VA"),
    *_series("SINSTS{}", _PHASES, S, "apparent power drawn, phase {}", "VA"),
    TicLabel("SMAXSN", S, "maximum apparent power drawn today", "VA", horodated=True),
    *_series(
        "SMAXSN{}", _PHASES, S, "maximum apparent power drawn today, phase {}", "VA", horodated=True
    ),
    TicLabel("SMAXSN-1", S, "maximum apparent power drawn yesterday", "VA", horodated=True),
    *_series(
        "SMAXSN{}-1",
        _PHASES,
        S,
        "maximum apparent power drawn yesterday, phase {}",
        "VA",
        horodated=True,
    ),
    TicLabel("SINSTI", S, "apparent power injected", "VA"),
    TicLabel("SMAXIN", S, "maximum apparent power injected today", "VA", horodated=True),
    TicLabel("SMAXIN-1", S, "maximum apparent power injected yesterday", "VA", horodated=True),
    TicLabel("CCASN", S, "active power drawn, current load-curve point", "W", horodated=True),
    TicLabel("CCASN-1", S, "active power drawn, previous load-curve point", "W", horodated=True),
    TicLabel("CCAIN", S, "active power injected, current load-curve point", "W", horodated=True),
    TicLabel("CCAIN-1", S, "active power injected, previous load-curve point", "W", horodated=True),
    *_series("UMOY{}", _PHASES, S, "mean voltage, phase {}", "V", horodated=True),
    TicLabel("STGE", S, "status register (hexadecimal)"),
    *_series("DPM{}", _PHASES, S, "start of mobile peak {}", horodated=True),
    *_series("FPM{}", _PHASES, S, "end of mobile peak {}", horodated=True),
    TicLabel("MSG1", S, "short message"),
    TicLabel("MSG2", S, "ultra-short message"),
    TicLabel("PRM", S, "delivery point reference (PRM)"),
    TicLabel("RELAIS", S, "relay states"),
    TicLabel("NTARF", S, "number of the current tariff index"),
    TicLabel("NJOURF", S, "number of the current day in the supplier calendar"),
    TicLabel("NJOURF+1", S, "number of the next day in the supplier calendar"),
    TicLabel("PJOURF+1", S, "profile of the next day in the supplier calendar"),
    TicLabel("PPOINTE", S, "profile of the next peak day"),
)


def tic_label(mode: TicMode, label: str) -> TicLabel | None:
    """The table row for ``label`` in ``mode``, or ``None`` if unknown."""
    return TIC_LABELS.get((mode, label))


def label_problem(mode: str, label: str, unit: str) -> str | None:
    """Why a meter in ``unit`` cannot store TIC ``label`` read in ``mode`` (``historic``,
    ``standard`` or ``auto``: either), or ``None`` when it can.

    A label is storable when it is known in the mode, has a numeric unit (not text such
    as ADSC, PRM, or the varh of ERQ1-4) and that unit measures what the meter's unit
    does (EAST in Wh for an energy meter, SINSTS in VA for a power measurement).
    """
    modes = list(TicMode) if mode == "auto" else [TicMode(mode)]
    rows = [row for m in modes if (row := tic_label(m, label)) is not None]
    if not rows:
        return f"unknown TIC label {label!r} for mode {mode!r}"
    numeric = [row for row in rows if row.unit is not None and row.unit in UNITS]
    if not numeric:
        row = rows[0]
        return (
            f"TIC label {label!r} ({row.description}) has no value to store: "
            "it is read as text; pick a numeric label (EAST, EAIT, BASE, SINSTS…)"
        )
    try:
        wanted = unit_of(unit).dimension
    except UnitError:
        return None  # the meter's unit is refused on its own
    if any(unit_of(row.unit).dimension == wanted for row in numeric if row.unit is not None):
        return None
    row = numeric[0]
    assert row.unit is not None
    return (
        f"TIC label {label!r} ({row.description}) is in {row.unit} "
        f"({unit_of(row.unit).dimension}), the meter's unit {unit!r} is {wanted}"
    )
