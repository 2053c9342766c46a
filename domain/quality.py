"""Data-quality rules for cumulative indexes: what a backward jump means.

A cumulative index only goes up. When a reading is lower than the one before, it is:

- a **rollover** when the counter has a known capacity (``rollover_at``), the previous
  value was close to it and the new value close to zero (both within
  ``rollover_margin`` of the capacity): the energy is what was left to the capacity plus
  the new value;
- a **reset** (meter replaced, reprogrammed, rebooted to zero) when the new value is
  below ``reset_ratio`` × the previous one: the new value is the new baseline and the
  energy since the reset is the new value itself;
- otherwise a **glitch** (a bad reading): it is ignored, and the index must climb back
  above the last good value before energy counts again.

Never is a backward jump counted as negative energy.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class IndexRules(BaseModel):
    """Per-meter rules, in the meter's base unit (Wh for energy)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rollover_at: Annotated[float | None, Field(gt=0)] = Field(
        default=None, description="counter capacity, e.g. 1e9 Wh for a 9-digit TIC index"
    )
    rollover_margin: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.1,
        description="a drop counts as a rollover when the previous value was within this "
        "share of the capacity and the new value within this share of zero",
    )
    reset_ratio: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.1, description="a drop below this share of the previous value is a reset"
    )
