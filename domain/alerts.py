"""Alert logic: windows, hysteresis, the firing/resolved state machine, projections.

Pure functions over explicit arguments; no I/O, no clock (``now`` is always passed in).
Nomenclature: ``*_kwh`` energies in kWh; durations as :class:`~datetime.timedelta`, or
seconds where a float is returned.

Instants are compared and subtracted in UTC: aware datetimes sharing a tzinfo subtract
by wall clock, which is an hour off across a DST change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal, assert_never
from zoneinfo import ZoneInfo

from domain.energy import NOT_ENERGY
from domain.factors import primary_factor
from domain.periods import localize
from domain.site import Role, Site

AlertEvent = Literal["firing", "resolved", "reminder"]
"""What :func:`step` asks to notify."""

Figure = float | str | None
"""A value shown with an alert (a balance [kWh], a meter name, …)."""


class Window(StrEnum):
    """A time window ending now, cut in the site's local time."""

    TODAY = "today"  # local midnight → now
    ROLLING_7D = "rolling_7d"  # 7 local days back, same wall time → now
    MONTH_TO_DATE = "month_to_date"  # local first of the month, midnight → now
    ROLLING_12M = "rolling_12m"  # 12 calendar months back, same wall time → now
    YEAR_TO_DATE = "year_to_date"  # local 1 January, midnight → now


def _require_aware(t: datetime, name: str) -> None:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {t!r}")


def _utc(t: datetime) -> datetime:
    return t.astimezone(UTC)


def window_bounds(window: Window, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Start and end of ``window`` ending at ``now``, in the site's local time.

    The start is a local wall time resolved with :func:`~domain.periods.localize`:
    a wall time that does not exist (the skipped spring hour) moves forward by the gap,
    an ambiguous one (the repeated autumn hour) takes its first occurrence. So "7 days"
    is 7 local calendar days at the same wall time, which lasts 167 or 169 hours across
    a DST change, not 168.

    Parameters
    ----------
    window : Window
        Which window.
    now : datetime
        End of the window: an aware instant, or a naive local wall time in ``tz``.
    tz : ZoneInfo
        The site's timezone.

    Returns
    -------
    tuple of datetime
        ``(start, end)``, aware, in ``tz``; ``end`` is ``now``. ``start ≤ end``, equal
        when ``now`` falls exactly on the boundary (midnight for ``today``, …).

    Notes
    -----
    ``rolling_12m`` from 29 February starts on 28 February of the previous year (the
    day is clamped to the month's length).
    """
    end = localize(now, tz)
    wall = end.replace(tzinfo=None, fold=0)
    midnight = datetime(wall.year, wall.month, wall.day)
    if window is Window.TODAY:
        start_wall = midnight
    elif window is Window.ROLLING_7D:
        start_wall = wall - timedelta(days=7)
    elif window is Window.MONTH_TO_DATE:
        start_wall = midnight.replace(day=1)
    elif window is Window.ROLLING_12M:
        # Same month of the previous year; only 29 February needs clamping.
        day = min(wall.day, 28) if wall.month == 2 else wall.day
        start_wall = wall.replace(year=wall.year - 1, day=day)
    elif window is Window.YEAR_TO_DATE:
        start_wall = datetime(wall.year, 1, 1)
    else:  # pragma: no cover - exhaustive over Window
        assert_never(window)
    return localize(start_wall, tz), end


# ---------------------------------------------------------------- hysteresis


def threshold_firing(
    value: float, was_firing: bool, fire_below: float, resolve_above: float
) -> bool:
    """Whether a low-value alert fires, with hysteresis.

    Fires when ``value < fire_below``; once firing, resolves only when
    ``value > resolve_above``; in between it keeps its previous state, so a value
    hovering around the threshold does not flap. A NaN value keeps the previous state.

    Parameters
    ----------
    value : float
        The figure judged, in any unit.
    was_firing : bool
        The alert's state at the previous evaluation.
    fire_below, resolve_above : float
        The thresholds, same unit; ``resolve_above ≥ fire_below``.

    Returns
    -------
    bool
        Whether the alert is firing now.
    """
    if not resolve_above >= fire_below:
        raise ValueError(f"resolve_above ({resolve_above}) must be ≥ fire_below ({fire_below})")
    if value < fire_below:
        return True
    if value > resolve_above:
        return False
    return was_firing


def balance_firing(net_kwh: float, was_firing: bool, hysteresis_kwh: float) -> bool:
    """Whether a negative-balance alert fires, with hysteresis.

    Fires when the net balance is negative; once firing, resolves only when it exceeds
    ``+hysteresis_kwh``; in between (``0 ≤ net ≤ hysteresis``) it keeps its state.

    Parameters
    ----------
    net_kwh : float
        Net balance of the window (production − consumption) [kWh].
    was_firing : bool
        The alert's state at the previous evaluation.
    hysteresis_kwh : float
        Margin above zero the balance must clear to resolve [kWh], ≥ 0.

    Returns
    -------
    bool
        Whether the alert is firing now.
    """
    if not hysteresis_kwh >= 0:
        raise ValueError(f"hysteresis_kwh must be ≥ 0, got {hysteresis_kwh}")
    return threshold_firing(net_kwh, was_firing, 0.0, hysteresis_kwh)


# ---------------------------------------------------------------- state machine


class AlertState(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class AlertStatus:
    """The last known state of one alert; one firing episode at a time.

    Parameters
    ----------
    alert_id : str
        Stable key of the alert (e.g. site, rule and window); an episode is
        ``(alert_id, first_seen)``.
    site, rule : str
        The site and the rule that raised it.
    state : AlertState
        Firing or resolved.
    first_seen : datetime
        When the current (or last) episode started firing.
    last_seen : datetime
        The last evaluation that saw it firing.
    resolved_at : datetime or None
        When the episode resolved; ``None`` while firing.
    last_notified : datetime or None
        When a notification (firing, reminder, resolved) was last asked for.
    acknowledged : bool
        Someone has seen it: no more reminders for this episode.
    figures : dict
        Values shown with the alert, as of the last evaluation that changed the status.
    """

    alert_id: str
    site: str
    rule: str
    state: AlertState
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    last_notified: datetime | None
    acknowledged: bool
    figures: dict[str, Figure]


def step(
    previous: AlertStatus | None,
    firing: bool,
    now: datetime,
    figures: Mapping[str, Figure],
    reminder: timedelta | None,
    alert_id: str,
    site: str,
    rule: str,
) -> tuple[AlertStatus | None, AlertEvent | None]:
    """Advance one alert by one evaluation.

    ================  ==========  ===============================================
    previous          firing      result
    ================  ==========  ===============================================
    none              no          ``(None, None)``
    none / resolved   yes         new episode (``first_seen = now``, not
                                  acknowledged), ``"firing"``
    firing            yes         ``last_seen`` and ``figures`` updated;
                                  ``"reminder"`` when ``reminder`` is set, the alert
                                  is not acknowledged and ``now − last_notified ≥
                                  reminder`` (or it was never notified), else
                                  ``None``
    firing            no          resolved, ``resolved_at = now``, ``figures``
                                  updated, ``"resolved"``
    resolved          no          ``(previous, None)``, unchanged
    ================  ==========  ===============================================

    ``last_notified`` is set to ``now`` whenever an event is returned, so an alert that
    stays firing is notified once, then only by reminders.

    Parameters
    ----------
    previous : AlertStatus or None
        The status after the previous evaluation; ``None`` if the alert never fired.
    firing : bool
        Whether the rule fires now (after hysteresis, see :func:`balance_firing`).
    now : datetime
        Time of this evaluation, aware, not before ``previous.last_seen`` nor
        ``previous.resolved_at``.
    figures : mapping
        Values to show with the alert.
    reminder : timedelta or None
        Repeat a firing, unacknowledged alert this often (> 0); ``None``: never.
    alert_id, site, rule : str
        Identity of the alert; must match ``previous``.

    Returns
    -------
    tuple
        The new status (``None`` only when the alert never fired) and the event to
        notify, if any.
    """
    _require_aware(now, "now")
    if reminder is not None and reminder <= timedelta(0):
        raise ValueError(f"reminder must be positive, got {reminder}")
    if previous is None:
        if not firing:
            return None, None
        return _new_episode(now, figures, alert_id, site, rule), "firing"
    if (previous.alert_id, previous.site, previous.rule) != (alert_id, site, rule):
        raise ValueError(
            f"previous status is for {(previous.alert_id, previous.site, previous.rule)}, "
            f"not {(alert_id, site, rule)}"
        )
    latest = previous.last_seen if previous.resolved_at is None else previous.resolved_at
    if _utc(now) < _utc(latest):
        raise ValueError(f"now ({now}) is before the previous evaluation ({latest})")

    if previous.state == AlertState.RESOLVED:  # == also accepts a stored "resolved"
        if not firing:
            return previous, None
        return _new_episode(now, figures, alert_id, site, rule), "firing"

    if not firing:
        resolved = replace(
            previous,
            state=AlertState.RESOLVED,
            resolved_at=now,
            last_notified=now,
            figures=dict(figures),
        )
        return resolved, "resolved"

    due = (
        reminder is not None
        and not previous.acknowledged
        and (previous.last_notified is None or _utc(now) - _utc(previous.last_notified) >= reminder)
    )
    updated = replace(
        previous,
        last_seen=now,
        figures=dict(figures),
        last_notified=now if due else previous.last_notified,
    )
    return updated, ("reminder" if due else None)


def _new_episode(
    now: datetime, figures: Mapping[str, Figure], alert_id: str, site: str, rule: str
) -> AlertStatus:
    return AlertStatus(
        alert_id=alert_id,
        site=site,
        rule=rule,
        state=AlertState.FIRING,
        first_seen=now,
        last_seen=now,
        resolved_at=None,
        last_notified=now,
        acknowledged=False,
        figures=dict(figures),
    )


# ---------------------------------------------------------------- trajectory


def _month_net(
    month: int,
    last_year: Mapping[int, float] | None,
    profile: Mapping[int, float] | None,
) -> float | None:
    """Net of ``month`` [kWh]: last year's if known, else the seasonal profile's."""
    for source in (last_year, profile):
        if source is not None:
            value = source.get(month)
            if value is not None and not math.isnan(value):
                return float(value)
    return None


def project_year_end(
    ytd_net_kwh: float,
    now: datetime,
    tz: ZoneInfo,
    last_year_monthly_net_kwh: Mapping[int, float] | None,
    seasonal_profile: Mapping[int, float] | None = None,
) -> float | None:
    """Project the net balance at the end of the local calendar year.

    A deliberately simple projection::

        year_end = ytd + f × net(current month) + Σ net(m) for the months after it

    where ``f`` is the share of the current local month still to come, pro rata of real
    time (a month's length counts its DST hour), and ``net(m)`` is the net of month
    ``m`` last year when known, else the seasonal profile's. Months before the current
    one are not needed: they are in ``ytd``.

    Parameters
    ----------
    ytd_net_kwh : float
        Net balance from local 1 January to ``now`` [kWh].
    now : datetime
        Aware instant, or naive local wall time in ``tz``.
    tz : ZoneInfo
        The site's timezone.
    last_year_monthly_net_kwh : mapping of int to float, or None
        Net balance of each month (1–12) of last year [kWh]; missing or NaN months
        are unknown.
    seasonal_profile : mapping of int to float, or None
        Typical net balance per month (1–12) [kWh], the fallback.

    Returns
    -------
    float or None
        Projected year-end net balance [kWh]; ``None`` when a month still needed is in
        neither source (cannot project).
    """
    local = localize(now, tz)
    month_start = localize(datetime(local.year, local.month, 1), tz)
    year, month = divmod(local.month, 12)
    month_end = localize(datetime(local.year + year, month + 1, 1), tz)
    rest = (_utc(month_end) - _utc(local)) / (_utc(month_end) - _utc(month_start))

    current = _month_net(local.month, last_year_monthly_net_kwh, seasonal_profile)
    if current is None:
        return None
    total = ytd_net_kwh + rest * current
    for m in range(local.month + 1, 13):
        net = _month_net(m, last_year_monthly_net_kwh, seasonal_profile)
        if net is None:
            return None
        total += net
    return total


# ---------------------------------------------------------------- primary energy


def primary_energy_gaps(site: Site) -> list[str]:
    """What keeps ``site``'s primary-energy balance from being computed, as the
    configuration keys to set: a primary factor for every carrier exchanged with the
    grid (``primary_energy_factors.<carrier>``, when there is no default), a
    ``kwh_per_m3`` for every balance meter counting in m³. Empty: computable.
    """
    gaps: list[str] = []
    exchanged = sorted(
        {
            m.carrier
            for m in site.meters
            if m.role in (Role.GRID_IMPORT, Role.GRID_EXPORT) and m.carrier not in NOT_ENERGY
        }
    )
    for carrier in exchanged:
        if primary_factor(site, carrier) is None:
            gaps.append(
                f"primary_energy_factors.{carrier.value} is not set (no default for "
                f"{carrier.value})"
            )
    for m in site.meters:
        if (
            m.role in (Role.PRODUCTION, Role.GRID_IMPORT, Role.GRID_EXPORT)
            and m.carrier not in NOT_ENERGY
            and m.dimension == "volume"
            and m.kwh_per_m3 is None
        ):
            gaps.append(f"meter {m.id!r} counts in {m.unit} without kwh_per_m3")
    return gaps


# ---------------------------------------------------------------- silent meters


def silent_meters(
    last_seen: Mapping[str, datetime | None],
    now: datetime,
    expected_interval: Mapping[str, timedelta],
    watched_since: Mapping[str, datetime] | None = None,
) -> dict[str, float | None]:
    """Meters silent for longer than expected.

    A meter that never reported is silent once it has been watched for longer than its
    interval (a fresh install, a meter just added, gets that long to send its first
    reading, not an alert at the first evaluation).

    Parameters
    ----------
    last_seen : mapping of str to datetime or None
        When each meter was last heard from, aware; ``None`` (or absent): never.
    now : datetime
        Time of the evaluation, aware.
    expected_interval : mapping of str to timedelta
        The meters watched, and the longest silence each is allowed (> 0). Meters
        not in it are not judged.
    watched_since : mapping of str to datetime, or None
        When each meter was first watched, aware: a never-seen meter's silence counts
        from there. A never-seen meter absent from it is watched from ``now``: not
        silent yet.

    Returns
    -------
    dict of str to float or None
        For each meter silent for strictly longer than its interval, the silence [s];
        ``None`` for a meter never seen. Meters within their interval are left out.
    """
    _require_aware(now, "now")
    silent: dict[str, float | None] = {}
    for meter, interval in expected_interval.items():
        if interval <= timedelta(0):
            raise ValueError(f"expected interval of {meter!r} must be positive, got {interval}")
        seen = last_seen.get(meter)
        if seen is None:
            watched = (watched_since or {}).get(meter)
            if watched is not None:
                _require_aware(watched, f"watched_since[{meter!r}]")
                if _utc(now) - _utc(watched) > interval:
                    silent[meter] = None
            continue
        _require_aware(seen, f"last_seen[{meter!r}]")
        silence = _utc(now) - _utc(seen)
        if silence > interval:
            silent[meter] = silence.total_seconds()
    return silent
