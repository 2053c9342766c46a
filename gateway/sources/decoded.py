"""What a decoder finds in a payload or a frame, before routing makes it a reading."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class DecodedValue:
    """One numeric value found in a payload.

    Parameters
    ----------
    key : str or None
        SenML resolved name, JSON dotted path, or ``None`` for a bare number.
    value : float
        Finite number as published, in ``unit``.
    unit : str or None
        Unit carried by the payload (SenML ``u``/``bu``); ``None`` when the payload
        carries none and the meter's configured unit applies.
    time : datetime
        Device time when the payload carries one, receive time otherwise (UTC).
    """

    key: str | None
    value: float
    unit: str | None
    time: datetime
