"""Linky TIC labels (Enedis-NOI-CPT_54E): what each group carries, as a table.

One frozen row per label: the mode(s) it appears in, its unit (``None`` for text such
as meter identity or tariff names), whether its group carries a horodate, and whether
it is a cumulative index. Parsers and emulators read this table; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


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

#: Labels by (mode, label). Completed from the spec; see REFERENCE in the README.
TIC_LABELS: Final[dict[tuple[TicMode, str], TicLabel]] = _rows(
    TicLabel("ADCO", H, "meter address (identity)"),
    TicLabel("BASE", H, "index, base tariff", "Wh", index=True),
    TicLabel("PAPP", H, "apparent power", "VA"),
    TicLabel("IINST", H, "instantaneous current", "A"),
    TicLabel("ADSC", S, "meter address (identity)"),
    TicLabel("EAST", S, "total active energy drawn", "Wh", index=True),
    TicLabel("EAIT", S, "total active energy injected", "Wh", index=True),
    TicLabel("SINSTS", S, "apparent power drawn", "VA"),
    TicLabel("SINSTI", S, "apparent power injected", "VA"),
)


def tic_label(mode: TicMode, label: str) -> TicLabel | None:
    """The table row for ``label`` in ``mode``, or ``None`` if unknown."""
    return TIC_LABELS.get((mode, label))
