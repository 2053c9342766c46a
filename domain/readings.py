"""A reading: one value of one meter at one instant, in its base unit, in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

#: Quantities stored as cumulative indexes (energy Wh, volume m3, mass kg).
INDEX_DIMENSIONS = ("energy", "volume", "mass")
#: Meter id and quantity under which `microville import carbon-intensity` stores the
#: grid's carbon intensity of a site.
INTENSITY_METER, INTENSITY_QUANTITY = "grid-carbon-intensity", "carbon_intensity"


@dataclass(frozen=True, slots=True)
class Reading:
    """One stored value.

    Parameters
    ----------
    site, meter : str
        Identifiers from the site configuration.
    quantity : str
        What the value measures, also the measurement it is stored under:
        ``energy`` (cumulative index, Wh) or ``volume`` (cumulative index, m3).
    value : float
        The raw value in the base unit: a cumulative index is stored as it is,
        never differenced, so that a lost message loses no energy.
    time : datetime
        Timezone-aware instant (device time when the payload carries one,
        receive time otherwise).
    """

    site: str
    meter: str
    quantity: str
    value: float
    time: datetime

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError("Reading.time must be timezone-aware")
        if self.time.tzinfo is not UTC:
            object.__setattr__(self, "time", self.time.astimezone(UTC))

    @property
    def time_ms(self) -> int:
        """Epoch milliseconds, the precision both stores keep."""
        return round(self.time.timestamp() * 1000)
