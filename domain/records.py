"""Entries kept in the ledger (not time series): weighed waste and renovation records."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain.waste import WasteStream


class Phase(StrEnum):
    OPERATION = "operation"  # the building in use
    RENOVATION = "renovation"  # the works (PEMD récolement, Cerfa 16288)


class WasteEntry(BaseModel):
    """A mass of waste (or of products sent to reuse) and where it went."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time: AwareDatetime = Field(description="when it was weighed or collected")
    stream: WasteStream
    # allow_inf_nan=False: JSON's Infinity would be stored as null, unreadable after.
    mass_kg: Annotated[float, Field(gt=0, allow_inf_nan=False, description="[kg]")]
    phase: Phase = Phase.OPERATION
    material: str = Field(default="", max_length=200, description="e.g. wood, plaster, biowaste")
    destination: str = Field(default="", max_length=200, description="site or operator")
    note: str = Field(default="", max_length=1000)

    def in_period(self, start: datetime, end: datetime) -> bool:
        return start <= self.time < end
