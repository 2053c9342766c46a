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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal

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


class NeedsHourlySlots(Exception):
    """A run (:attr:`domain.store.IndexSlot.hours`) cannot be judged exactly without its
    hours: the query asks for them one by one."""


#: What one value is, against the reference: a rise (energy), or one of the jumps above.
Judgement = Literal["rise", "spike", "rollover", "reset", "glitch"]


@dataclass(frozen=True)
class IndexJudge:
    """The classifier: judges value *i* of a meter's series against the reference by
    ``rules``, looking ahead within ``glitch_window_s`` for a drop undone or a rise taken
    back.

    Parameters
    ----------
    ends : sequence of datetime
        Slot end of each value, UTC, increasing.
    values : sequence of float
        The index values [Wh (or the meter's base unit)].
    rules : IndexRules
        How to read backward jumps and spikes.
    slot : timedelta
        Slot width the values were aggregated with.
    """

    ends: Sequence[datetime]
    values: Sequence[float]
    rules: IndexRules
    slot: timedelta
    #: Hours each value stands for: 1, or a run's (:attr:`domain.store.IndexSlot.hours`),
    #: whose head is the value before it. Empty: every value is one slot.
    hours: Sequence[int] = ()

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.rules.glitch_window_s)

    def run_start(self, j: int) -> datetime | None:
        """End of the first hour of run ``j``, or ``None`` when ``j`` is not a run."""
        if not self.hours or self.hours[j] == 1:
            return None
        return self.ends[j] - (self.hours[j] - 1) * timedelta(hours=1)

    def comes_back(self, i: int, level: float) -> bool:
        """Whether a value after ``i``, within the window, is back at ``level``."""
        for j in range(i + 1, len(self.ends)):
            first = self.run_start(j)
            if first is not None:
                # A run's hours climb from its head to its last value: known at once
                # unless the window ends inside it with the level not reached at its head.
                if first - self.ends[i] > self.window:
                    return False
                if self.values[j] < level:
                    continue
                if self.ends[j] - self.ends[i] <= self.window:
                    return True
                raise NeedsHourlySlots(f"the window from {self.ends[i]} ends inside a run")
            if self.ends[j] - self.ends[i] > self.window:
                return False
            if self.values[j] >= level:
                return True
        return False

    def undone(self, i: int, before: float) -> bool:
        """Whether the rise to value ``i`` is taken back by the next different value,
        within the window: a drop that would read as a reset, landing at or above
        ``before``, and not itself a glitch the index comes back from."""
        high = self.values[i]
        for j in range(i + 1, len(self.ends)):
            first = self.run_start(j)
            if first is not None:
                # Reached only past its head, equal to ``high``: the run's hours that
                # differ are above it, so they undo nothing.
                if first - self.ends[i] > self.window or self.values[j] != high:
                    return False
                continue
            if self.ends[j] - self.ends[i] > self.window:
                return False
            if self.values[j] != high:
                low = self.values[j]
                return before <= low < self.rules.reset_ratio * high and not self.comes_back(
                    j, high
                )
        return False

    def judge(self, i: int, reference: float, reference_end: datetime) -> tuple[Judgement, float]:
        """What value ``i`` is against ``reference`` (its slot ending at
        ``reference_end``), and the energy it brings [Wh] (0 for a spike or a glitch)."""
        rules, value, end = self.rules, self.values[i], self.ends[i]
        if value >= reference:
            delta = value - reference
            # The two readings are at most this far apart: each anywhere in its slot.
            hours = (end - reference_end + self.slot) / timedelta(hours=1)
            too_fast = rules.max_power_w is not None and delta > rules.max_power_w * hours
            if delta > 0 and (too_fast or self.undone(i, reference)):
                return "spike", 0.0
            return "rise", delta
        if (
            rules.rollover_at is not None
            and reference >= rules.rollover_at * (1 - rules.rollover_margin)
            and value < rules.rollover_at * rules.rollover_margin
        ):
            return "rollover", max(0.0, rules.rollover_at - reference + value)
        if value < rules.reset_ratio * reference and not self.comes_back(i, reference):
            return "reset", max(0.0, value)
        return "glitch", 0.0
