"""What each alert rule says now: the rule inputs (balance windows, year-end trajectory,
data quality: silent meters, coverage, resets) read through the use cases and the store
port, as one :class:`Condition` per alert id. No state: the engine keeps that."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.alert_config import WindowName
from domain.alerts import (
    AlertState,
    AlertStatus,
    Window,
    balance_firing,
    project_year_end,
    silent_meters,
    threshold_firing,
    window_bounds,
)
from domain.coverage import coverage_percent
from domain.energy import EnergyBalance
from domain.periods import Step, localize
from domain.readings import INDEX_DIMENSIONS
from domain.site import Role, Site
from domain.store import ReadingStore
from service.usecases.energy import energy_report

log = logging.getLogger(__name__)

Figures = dict[str, float | str | None]


#: Balance, trajectory and month windows end on a multiple of this [s] (see _conditions).
WINDOW_ALIGN_S = 900


@dataclass(frozen=True)
class Condition:
    """What one rule says now about one alert.

    ``firing`` ``None``: not judged now (too little of the window has passed), the alert
    keeps its state. ``reason``: why a firing alert resolves although its rule did not
    judge it back to normal (the condition can no longer be evaluated); its figures
    are then the alert's last ones with ``resolved_reason``. ``message`` is said when the
    alert fires; ``reminder`` and ``resolved``, when set, when it is reminded or resolves
    (a resolved coverage alert must not say the coverage is below its threshold).
    """

    rule: str
    firing: bool | None
    figures: Figures
    message: str
    reason: str | None = None
    reminder: str | None = None
    resolved: str | None = None

    def message_of(self, event: str) -> str:
        """The message of ``event`` (firing, reminder or resolved)."""
        if event == "resolved" and self.resolved is not None:
            return self.resolved
        if event == "reminder" and self.reminder is not None:
            return self.reminder
        return self.message


def _held(rule: str) -> Condition:
    return Condition(rule, None, {}, "")


def _pct(rate: float) -> str:
    """A coverage or threshold as ``94.9%``, rounded down: a coverage below its threshold
    never prints as the threshold."""
    percent = coverage_percent(rate, 1)
    return f"{percent:.0f}%" if percent == int(percent) else f"{percent:.1f}%"


def _net_wh(balance: EnergyBalance, energy: str) -> float | None:
    return balance.final_net_wh if energy == "final" else balance.primary_net_whep


def _balance_unknown(site: Site, unknown: dict[str, list[str]], computed: int) -> Condition:
    """The proof at risk: fires while a balance window cannot be computed (its alert is
    held), naming what to configure; resolves once every judged window is computed.
    Held while no window was judged (too little of each has passed)."""
    rule, energy = "balance_unknown", site.alerts.energy
    if not unknown:
        if not computed:
            return _held(rule)
        message = f"{site.name}: the {energy}-energy balance can be computed again"
        return Condition(rule, False, {"energy": energy, "windows": ""}, message)
    gaps = sorted({g for found in unknown.values() for g in found})
    windows = ", ".join(unknown)
    figures: Figures = {"energy": energy, "windows": windows, "to_configure": "; ".join(gaps)}
    message = (
        f"{site.name}: the {energy}-energy balance cannot be computed over "
        f"{windows.replace('_', ' ')}, its alerts are not judged and the proof is at risk: "
        + "; ".join(gaps)
    )
    return Condition(rule, True, figures, message)


class RuleInputs:
    """Judges a site's rules at an instant from ``store``; ``watched(site, meters, now)``
    says since when each meter has been watched (the engine persists it)."""

    def __init__(
        self,
        store: ReadingStore,
        watched: Callable[[str, list[str], datetime], dict[str, datetime]],
    ) -> None:
        self.store = store
        self._watched = watched

    def conditions(
        self, site: Site, now: datetime, previous: dict[str, AlertStatus]
    ) -> dict[str, Condition]:
        """alert id → what its rule says now. A firing alert left out resolves (its rule
        was removed); a held one (``firing`` None) keeps its state."""
        rules = site.alerts

        def was_firing(alert_id: str) -> bool:
            status = previous.get(alert_id)
            return status is not None and status.state is AlertState.FIRING

        out: dict[str, Condition] = {}
        # The windows end at the last quarter hour, not at this second: a window ending
        # at 13:29:59 cuts the store's slots down to one second (periods.common_slot),
        # 900 s slots keep a year's query small. The silent-meter rule uses ``now``.
        instant = now
        now = now - timedelta(seconds=int(now.timestamp()) % WINDOW_ALIGN_S)
        # Windows whose balance could not be computed, and what to configure for it.
        unknown: dict[str, list[str]] = {}
        computed = 0
        for window in rules.windows:
            condition, gaps = self._balance_window(site, window, now, was_firing)
            out[f"{site.id}:balance:{window}"] = condition
            if gaps is not None:
                unknown[window] = gaps
            computed += condition.firing is not None
        if rules.windows:
            out[f"{site.id}:balance:unknown"] = _balance_unknown(site, unknown, computed)
        if rules.trajectory:
            out.update(self._trajectory(site, now, was_firing))
        out.update(self._data_quality(site, now, instant, was_firing, previous))
        return out

    def _balance_window(
        self, site: Site, window: WindowName, now: datetime, was_firing: Callable[[str], bool]
    ) -> tuple[Condition, list[str] | None]:
        """The balance over ``window`` ending ``now``: judged, held while too little of it
        has passed, or held because it cannot be computed (then with what to configure)."""
        rules, tz, minimum = site.alerts, site.tz, site.targets.min_coverage
        alert_id, rule = f"{site.id}:balance:{window}", f"balance_{window}"
        start, end = window_bounds(Window(window), now, tz)
        elapsed = end.astimezone(UTC) - start.astimezone(UTC)
        # A month's balance on its first night is no signal: judged once enough of
        # the window has passed; until then the alert keeps its state.
        if end <= start or elapsed < timedelta(hours=rules.window_min_elapsed_h(window)):
            return _held(rule), None
        report = energy_report(site, self.store, start, end, Step.YEAR)
        # A meter in m³ without kwh_per_m3 leaves the balance unknown, final or
        # primary: a net computed without it would be a false verdict.
        unconverted = report.total.unconverted_meters
        net_wh = None if unconverted else _net_wh(report.total.balance, rules.energy)
        if net_wh is None:
            # Missing primary factors are refused when the configuration is read
            # (primary_energy_gaps); either way it is said, every evaluation.
            log.error("%s: the %s-energy balance over %s cannot be computed (missing "
                      "factors: %s; meters in m3 without kwh_per_m3: %s); its alert "
                      "keeps its state", site.id, rules.energy, window,
                      ", ".join(report.missing_factors) or "none",
                      ", ".join(unconverted) or "none")  # fmt: skip
            blind = {m.carrier for m in site.meters if m.id in unconverted}
            return _held(rule), [
                f"meter {m!r} counts in m3 without kwh_per_m3" for m in unconverted
            ] + [
                f"primary_energy_factors.{c} is not set"
                for c in report.missing_factors
                if rules.energy == "primary" and c not in blind
            ]
        net_kwh = net_wh / 1000
        coverage = report.total.evidence.coverage
        hysteresis = rules.window_hysteresis_kwh(window)
        figures: Figures = {
            "net_kwh": net_kwh,
            "energy": rules.energy,
            "coverage": coverage,
            "min_coverage": minimum,
            "provable": "yes" if coverage >= minimum else "no",
            "resolves_above_kwh": hysteresis,
            "elapsed_h": elapsed.total_seconds() / 3600,
            "start": start.isoformat(),
            "end": end.isoformat(),
        }
        # A window covered below min_coverage still fires (the data there is
        # negative), but says it proves nothing.
        covered = (
            f"data coverage {_pct(coverage)}"
            if coverage >= minimum
            else f"data coverage {_pct(coverage)}, below the {_pct(minimum)} a proof "
            "needs: an indication, not a verdict"
        )
        return Condition(
            rule,
            balance_firing(net_kwh, was_firing(alert_id), hysteresis),
            figures,
            f"{site.name}: the {rules.energy}-energy balance over {window.replace('_', ' ')} "
            f"is {net_kwh:+.1f} kWh ({covered})",
        ), None

    def _trajectory(
        self, site: Site, now: datetime, was_firing: Callable[[str], bool]
    ) -> dict[str, Condition]:
        rules, tz = site.alerts, site.tz
        local = now.astimezone(tz)
        year_start = localize(datetime(local.year, 1, 1), tz)
        alert_id = f"{site.id}:trajectory:year_end"
        if now <= year_start:
            return {alert_id: _held("trajectory")}
        ytd_report = energy_report(site, self.store, year_start, now, Step.YEAR).total
        ytd = ytd_report.balance
        last_year = energy_report(
            site, self.store, localize(datetime(local.year - 1, 1, 1), tz), year_start, Step.MONTH
        )
        # A month of last year counts when its data would prove a target (min_coverage):
        # a month barely covered (the site's first readings) would project as ~0 kWh.
        monthly = {
            p.start.astimezone(tz).month: net / 1000
            for p in last_year.periods
            if p.evidence.coverage >= site.targets.min_coverage
            and not p.unconverted_meters
            and (net := _net_wh(p.balance, rules.energy)) is not None
        }
        # A meter in m³ without kwh_per_m3 leaves the year unknown (balance_unknown says
        # which): a projection of the electricity alone would be a false verdict.
        ytd_wh = None if ytd_report.unconverted_meters else _net_wh(ytd, rules.energy)
        if ytd_wh is None:  # see _conditions
            log.error("%s: the year-to-date %s-energy balance cannot be computed; the "
                      "trajectory alert keeps its state", site.id, rules.energy)  # fmt: skip
            return {alert_id: _held("trajectory")}
        profile = (
            {m: v for m, v in enumerate(rules.seasonal_net_kwh, start=1)}
            if rules.seasonal_net_kwh is not None
            else None
        )
        projected = project_year_end(ytd_wh / 1000, now, tz, monthly or None, profile)
        if projected is None:
            # A projection that was possible no longer is (the seasonal profile was
            # removed, a month of last year lost): a firing alert resolves, saying why.
            reason = (
                "the year end can no longer be projected: a month still to come is neither "
                "in last year's data (covered at min_coverage) nor in seasonal_net_kwh"
            )
            message = f"{site.name}: trajectory alert resolved, {reason}"
            return {alert_id: Condition("trajectory", False, {}, message, reason)}
        hysteresis = rules.trajectory_hysteresis_kwh
        firing = balance_firing(projected, was_firing(alert_id), hysteresis)
        needed = range(local.month, 13)
        from_last_year = sum(1 for m in needed if m in monthly)
        from_profile = len(needed) - from_last_year
        figures: Figures = {
            "projected_year_end_net_kwh": projected,
            "year_to_date_net_kwh": ytd_wh / 1000,
            "months_from_last_year": from_last_year,  # of the months the projection uses
            "months_from_seasonal_profile": from_profile,
            "resolves_above_kwh": hysteresis,
        }
        source = (
            "the same months of last year"
            if not from_profile
            else "the seasonal profile"
            if from_last_year == 0
            else "last year and the seasonal profile"
        )
        message = (
            f"{site.name}: the year would end at {projected:+.0f} kWh (projection from {source})"
        )
        return {alert_id: Condition("trajectory", firing, figures, message)}

    def _data_quality(
        self,
        site: Site,
        now: datetime,
        instant: datetime,
        was_firing: Callable[[str], bool],
        previous: dict[str, AlertStatus],
    ) -> dict[str, Condition]:
        """Silent meters as of ``instant``; this month's coverage and resets up to
        ``now`` (the last quarter hour)."""
        return self._silent(site, instant) | self._month_quality(site, now, was_firing, previous)

    def _silent(self, site: Site, instant: datetime) -> dict[str, Condition]:
        rules, tz = site.alerts, site.tz
        out: dict[str, Condition] = {}
        # Every index meter of the balance, and any meter that says how often it reports
        # (a power or temperature measurement too).
        meters = [
            m
            for m in site.meters
            if (m.dimension in INDEX_DIMENSIONS and m.role is not Role.MEASUREMENT)
            or m.expected_interval_s is not None
        ]
        by_quantity: dict[str, list[str]] = {}
        for m in meters:
            by_quantity.setdefault(m.dimension, []).append(m.id)
        last_seen: dict[str, datetime | None] = {}
        for quantity, ids in by_quantity.items():
            last_seen.update(self.store.last_seen(site.id, ids, quantity))
        expected = {
            m.id: timedelta(seconds=m.expected_interval_s or rules.silent_after_s) for m in meters
        }
        watched = self._watched(site.id, [m.id for m in meters], instant)
        silent = silent_meters(last_seen, instant, expected, watched)
        for m in meters:
            seen = last_seen.get(m.id)
            message = (
                f"{site.name}: meter {m.id} has sent nothing since "
                f"{seen.astimezone(tz):%Y-%m-%d %H:%M}"
                if seen
                else f"{site.name}: meter {m.id} has never reported (watched since "
                f"{watched[m.id].astimezone(tz):%Y-%m-%d %H:%M})"
            )
            back = (
                f"{site.name}: meter {m.id} reports again (last reading "
                f"{seen.astimezone(tz):%Y-%m-%d %H:%M})"
                if seen
                else message
            )
            out[f"{site.id}:silent:{m.id}"] = Condition(
                "silent_meter",
                m.id in silent,
                {
                    "meter": m.id,
                    "silent_s": silent.get(m.id),
                    "last_seen": seen.isoformat() if seen else None,
                    "watched_since": watched[m.id].isoformat(),
                },
                message,
                resolved=back,
            )
        return out

    def _month_quality(
        self,
        site: Site,
        now: datetime,
        was_firing: Callable[[str], bool],
        previous: dict[str, AlertStatus],
    ) -> dict[str, Condition]:
        """This month's coverage (held in its first hours) and counter resets."""
        rules, tz = site.alerts, site.tz
        out: dict[str, Condition] = {}
        coverage_id = f"{site.id}:coverage:month_to_date"
        if rules.coverage or rules.resets:
            start, end = window_bounds(Window.MONTH_TO_DATE, now, tz)
            if end <= start:  # midnight on the 1st: nothing to judge, states kept
                if rules.coverage:
                    out[coverage_id] = _held("coverage")
                if rules.resets:
                    out.update(
                        (a, _held(s.rule)) for a, s in previous.items() if s.rule == "counter_reset"
                    )
            else:
                report = energy_report(site, self.store, start, end, Step.YEAR)
                elapsed = end.astimezone(UTC) - start.astimezone(UTC)
                # Not judged in the month's first hours (a few empty slots weigh a lot
                # there): the alert keeps its state until then.
                if rules.coverage and elapsed < timedelta(hours=rules.coverage_after_h):
                    out[coverage_id] = _held("coverage")
                elif rules.coverage:
                    coverage = report.total.evidence.coverage
                    minimum = site.targets.min_coverage
                    resolve_above = min(1.0, minimum + rules.coverage_hysteresis)
                    alert_id = coverage_id
                    firing = coverage < 1.0 and threshold_firing(
                        coverage, was_firing(alert_id), minimum, resolve_above
                    )
                    needs = f"the {_pct(minimum)} a target needs to be provable"
                    out[alert_id] = Condition(
                        "coverage",
                        firing,
                        {
                            "coverage": coverage,
                            "min_coverage": minimum,
                            "resolves_above": resolve_above,
                            "elapsed_h": elapsed.total_seconds() / 3600,
                        },
                        f"{site.name}: this month's data coverage is {_pct(coverage)}, "
                        f"below {needs}",
                        reminder=f"{site.name}: this month's data coverage is still "
                        f"{_pct(coverage)}, below {needs}",
                        resolved=f"{site.name}: this month's data coverage is back to "
                        f"{_pct(coverage)}, above {needs}",
                    )
                if rules.resets:
                    for meter_id, e in report.meters.items():
                        out[f"{site.id}:reset:{meter_id}"] = Condition(
                            "counter_reset",
                            e.resets + e.rollovers > 0,
                            {"meter": meter_id, "resets": e.resets, "rollovers": e.rollovers},
                            f"{site.name}: meter {meter_id}'s index went back to zero this month",
                            resolved=f"{site.name}: no reset of meter {meter_id}'s index "
                            "this month",
                        )
        return out
