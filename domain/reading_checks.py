"""The one check every value goes through before it becomes a stored reading.

Every source (MQTT, Linky TIC, Modbus) hands what its device gave — a number, the unit
it came in, a time — to :func:`checked_reading`, so that a defect is refused the same
way, with the same words, whichever way it came in. What is refused:

- a value in a unit of another dimension than the meter's (W for a Wh index);
- a negative cumulative index (a counter never goes below zero; a measurement may:
  grid power is negative while the site exports);
- a magnitude beyond :data:`MAX_ABS_VALUE` in the base unit;
- a time outside the window: before :data:`EARLIEST` or from :data:`LATEST` on (a clock
  that is not set — the gateway's own when it stamps the receive time), or more than
  :data:`MAX_AHEAD` ahead of ``now`` (a device clock ahead of the gateway's).

A time in the past is kept however old (after :data:`EARLIEST`): a broker's backlog or
a device's own after an outage arrives late, with its own times.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.readings import Reading
from domain.site import INDEX_ROLES, Meter
from domain.units import BASE_UNITS, UnitError, to_base

#: Times accepted: a clock far outside is not set (a board without a real-time clock
#: starts in 1970) or the payload is hostile, and would land outside the periods anyone
#: asks about (or outside InfluxDB's range).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
#: How far a device's time may be ahead of the gateway's clock: clocks kept by NTP
#: agree within seconds; a time an hour ahead is a wrong offset or a wrong clock.
MAX_AHEAD = timedelta(minutes=10)
#: Largest magnitude of a stored value in its base unit (Wh, m3, W…): 1 PWh is beyond
#: any building's meter; a larger number is a broken device or a hostile payload.
MAX_ABS_VALUE = 1e15


class ReadingRefused(ValueError):
    """A value that must not be stored; the message names the meter and the problem:
    ``meter <site>/<meter>: <problem>: <particulars>``."""


def checked_reading(
    site: str, meter: Meter, value: float, unit: str | None, time: datetime, now: datetime
) -> Reading:
    """The reading of ``value`` for ``meter``, in the meter's base unit, once checked.

    Parameters
    ----------
    site : str
        Site identifier.
    meter : Meter
        The configured meter (its unit gives the dimension, its role the sign rule).
    value : float
        The number as the device gave it, in ``unit``.
    unit : str or None
        The unit the device gave (SenML ``u``, a TIC label's, a register map's); ``None``:
        the meter's configured unit.
    time : datetime
        When the value was measured, timezone-aware (device time, or receive time).
    now : datetime
        The gateway's clock, timezone-aware.

    Returns
    -------
    Reading
        ``value`` converted to the base unit of the meter's dimension (``energy : Wh``,
        ``volume : m3``, ``power : W``…), at ``time``.

    Raises
    ------
    ReadingRefused
        For a unit of another dimension or not a finite number, a negative index, a
        magnitude beyond :data:`MAX_ABS_VALUE`, or a time outside the window; the
        message gives the value as received, with its unit.
    """
    where = f"meter {site}/{meter.id}"
    symbol = unit or meter.unit
    try:
        base = to_base(value, symbol, meter.dimension)
    except UnitError as exc:
        raise ReadingRefused(f"{where}: {exc}") from None
    as_received = f"{value:.15g} {symbol}"
    if base < 0 and meter.role in INDEX_ROLES:
        raise ReadingRefused(
            f"{where}: negative index: {as_received} (a cumulative counter is never below 0)"
        )
    if abs(base) > MAX_ABS_VALUE:
        raise ReadingRefused(
            f"{where}: value out of range: {as_received} (beyond {MAX_ABS_VALUE:g}"
            f" {BASE_UNITS[meter.dimension]})"
        )
    problem = time_problem(time, now)
    if problem:
        raise ReadingRefused(f"{where}: time out of range: {problem}")
    return Reading(site, meter.id, meter.dimension, base, time)


def time_problem(time: datetime, now: datetime) -> str | None:
    """Why ``time`` is outside the window of :func:`checked_reading`, or ``None``."""
    if time < EARLIEST:
        return f"{time.isoformat()} is before {EARLIEST:%Y-%m-%d} (a clock not set?)"
    if time >= LATEST:
        return f"{time.isoformat()} is from {LATEST:%Y-%m-%d} on"
    if time - now > MAX_AHEAD:
        ahead = time - now
        return (
            f"{time.isoformat()} is {_duration(ahead)} ahead of the gateway's clock"
            f" ({now.astimezone(UTC).isoformat()}; at most {_duration(MAX_AHEAD)} accepted)"
        )
    return None


def _duration(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min"
