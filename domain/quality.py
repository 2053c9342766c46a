"""Data-quality rules for cumulative indexes: what a backward jump or a jump up means.

The rules judge the values the store returns — the last index of each slot — in time
order, against the *reference*, the last good value. A cumulative index only goes up.
When a value is lower than the reference, it is:

- a **rollover** when the counter has a known capacity (``rollover_at``), the reference
  was close to it and the value close to zero (both within ``rollover_margin`` of the
  capacity): the energy is what was left to the capacity plus the new value;
- a **reset** (meter replaced, reprogrammed, rebooted to zero) when the value is below
  ``reset_ratio`` × the reference and the index does *not* come back: the new value is
  the new baseline and the energy since the reset is the new value itself;
- a **glitch** otherwise — a small drop, or a drop the index comes back from (a value at
  or above the reference within ``glitch_window_s`` of the drop: a meter that briefly
  read 0 and then its old index again was not reset): ignored, and the index must climb
  back above the reference before energy counts again.

When a value is higher than the reference, it is energy, unless it is a **spike** (a bad
reading too high), ignored like a glitch:

- the rise implies more than ``max_power_w`` over the longest time the two readings can
  be apart (the slot ends' distance plus one slot), when ``max_power_w`` is set; or
- the rise is undone: the next different value, within ``glitch_window_s``, drops below
  ``reset_ratio`` × the spike (it would read as a reset) yet lands at or above the
  reference (the index is back on its track).

Never is a backward jump counted as negative energy, nor a spike as energy.
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
        default=0.1,
        description="a drop below this share of the previous value is a reset (unless the "
        "index comes back within glitch_window_s)",
    )
    max_power_w: Annotated[float | None, Field(gt=0)] = Field(
        default=None,
        description="the most power the meter can see [W] (e.g. the subscribed power, the "
        "inverter's rating, with a margin); a rise implying more is a spike, ignored",
    )
    glitch_window_s: Annotated[float, Field(ge=0)] = Field(
        default=3600.0,
        description="a drop the index comes back from, or a rise undone by a drop back, "
        "within this many seconds is a glitch or a spike, not a reset [s]; 0: off",
    )
