"""The alert engine: evaluates every site's rules, keeps each alert's state in SQLite,
and hands each event (firing, resolved, reminder) to the outbox once per channel."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from domain.alerts import (
    AlertState,
    AlertStatus,
    Window,
    balance_firing,
    project_year_end,
    silent_meters,
    step,
    threshold_firing,
    window_bounds,
)
from domain.coverage import coverage_percent
from domain.energy import EnergyBalance
from domain.periods import Step, localize
from domain.readings import INDEX_DIMENSIONS
from domain.site import Role, Site, SitesConfig
from domain.store import ReadingStore, StoreError
from service.alerts.outbox import Notification, Outbox
from service.usecases.energy import energy_report

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    status TEXT NOT NULL  -- AlertStatus as JSON
);
CREATE TABLE IF NOT EXISTS alert_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    site TEXT NOT NULL,
    event TEXT NOT NULL,
    time TEXT NOT NULL,
    figures TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_events_site ON alert_events (site, id);
CREATE TABLE IF NOT EXISTS watched_meters (
    site TEXT NOT NULL,
    meter TEXT NOT NULL,
    since TEXT NOT NULL,  -- when the engine first watched it (a never-seen meter's silence)
    PRIMARY KEY (site, meter)
);
"""
#: Who did it (an acknowledgement's token name); added to files made before it.
_ACTOR_COLUMN = "ALTER TABLE alert_events ADD COLUMN actor TEXT"

#: Events of the alerts themselves (notified); an acknowledgement is recorded beside them.
NOTIFIED_EVENTS = ("firing", "resolved", "reminder")

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


#: Why a firing alert whose rule no longer says anything about it resolves.
RULE_REMOVED = "rule removed from the configuration"
ALERTS_DISABLED = "alerts disabled for the site"
SITE_REMOVED = "site removed from the configuration"

#: A site to judge: id, name, reminder interval, its conditions, why an absent alert resolves.
_Judged = tuple[str, str, timedelta | None, Callable[[], dict[str, Condition]], str]


def _pct(rate: float) -> str:
    """A coverage or threshold as ``94.9%``, rounded down: a coverage below its threshold
    never prints as the threshold."""
    percent = coverage_percent(rate, 1)
    return f"{percent:.0f}%" if percent == int(percent) else f"{percent:.1f}%"


def _net_wh(balance: EnergyBalance, energy: str) -> float | None:
    return balance.final_net_wh if energy == "final" else balance.primary_net_whep


def _status_json(status: AlertStatus) -> str:
    data = asdict(status)
    for key in ("first_seen", "last_seen", "resolved_at", "last_notified"):
        data[key] = data[key].isoformat() if data[key] else None
    return json.dumps(data)


def _status_of(text: str) -> AlertStatus:
    data = json.loads(text)
    for key in ("first_seen", "last_seen", "resolved_at", "last_notified"):
        data[key] = datetime.fromisoformat(data[key]) if data[key] else None
    data["state"] = AlertState(data["state"])
    return AlertStatus(**data)


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


def _latest(status: AlertStatus) -> datetime:
    """The alert's last evaluation that changed or saw it (see :func:`step`)."""
    return status.last_seen if status.resolved_at is None else status.resolved_at


def _after(t: datetime, now: datetime) -> bool:
    return t.astimezone(UTC) > now.astimezone(UTC)


class AlertEngine:
    """Lifecycle: create, ``evaluate()`` on demand, ``start(interval_s)`` to run the
    outbox's delivery workers and evaluate every ``interval_s`` in a thread (0: only on
    demand), ``stop()`` once. State lives in ``path`` (SQLite), the outbox's file: an
    alert's new state and its events in the outbox are committed in one transaction, so
    an event is never lost nor its alert left marked notified without it. An alert still
    firing after a restart is not notified again (only reminded, if configured).
    Evaluations are serialised: a periodic one and one asked through the API never
    judge the same previous state twice.
    """

    def __init__(
        self,
        sites: SitesConfig,
        store: ReadingStore,
        path: str | Path,
        outbox: Outbox,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sites = sites
        self.store = store
        self.outbox = outbox
        self.clock = clock
        if Path(path).resolve() != outbox.path.resolve():
            raise ValueError(
                f"the alert state ({path}) must live in the outbox's file ({outbox.path}):"
                " a state change and its notifications are committed together"
            )
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(alert_events)")}
        if "actor" not in columns:
            self._db.execute(_ACTOR_COLUMN)
        self._lock = threading.Lock()  # the database connection
        self._evaluating = threading.Lock()  # one evaluation at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Alerts whose state is ahead of the clock, already said in the log.
        self._ahead_logged: set[str] = set()

    # --- state --------------------------------------------------------------------------

    def alerts(self, site: str) -> list[AlertStatus]:
        with self._lock:
            rows = self._db.execute(
                "SELECT status FROM alerts WHERE site=? ORDER BY alert_id", (site,)
            ).fetchall()
        return [_status_of(r) for (r,) in rows]

    def history(self, site: str, limit: int = 200) -> list[dict[str, object]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT alert_id, event, time, figures, actor FROM alert_events WHERE site=?"
                " ORDER BY id DESC LIMIT ?",
                (site, limit),
            ).fetchall()
        return [
            {
                "alert_id": a,
                "event": e,
                "time": datetime.fromisoformat(t),
                "figures": json.loads(f),
                "by": by,
            }
            for a, e, t, f, by in rows
        ]

    def events_between(self, site: str, start: datetime, end: datetime) -> list[dict[str, object]]:
        """Notified events (firing, resolved, reminder) of ``site`` in ``[start, end)``,
        oldest first (for the monthly report)."""
        return [
            e
            for e in reversed(self.history(site, limit=100_000))
            if e["event"] in NOTIFIED_EVENTS
            and isinstance(t := e["time"], datetime)
            and start.astimezone(UTC) <= t.astimezone(UTC) < end.astimezone(UTC)
        ]

    def acknowledge(self, site: str, alert_id: str, by: str | None = None) -> AlertStatus | None:
        """Mark ``alert_id`` acknowledged (no more reminders for this episode) and record
        an ``acknowledged`` event in the history, by ``by`` (a token's name), at the
        engine's clock; ``None`` if there is no such alert. Acknowledging again records
        nothing more."""
        now = self.clock().replace(microsecond=0)
        with self._lock, self._db:
            row = self._db.execute(
                "SELECT status FROM alerts WHERE site=? AND alert_id=?", (site, alert_id)
            ).fetchone()
            if row is None:
                return None
            previous = _status_of(row[0])
            if previous.acknowledged:
                return previous
            status = replace(previous, acknowledged=True)
            self._db.execute(
                "UPDATE alerts SET status=? WHERE alert_id=?", (_status_json(status), alert_id)
            )
            self._db.execute(
                "INSERT INTO alert_events (alert_id, site, event, time, figures, actor)"
                " VALUES (?, ?, 'acknowledged', ?, ?, ?)",
                (alert_id, site, now.isoformat(), json.dumps({"state": status.state.value}), by),
            )
        return status

    # --- evaluation -----------------------------------------------------------------------

    def evaluate(self) -> list[Notification]:
        """Evaluate every site's rules now; commit each site's new states with its events
        queued in the outbox, and wake the outbox's workers. Return the events queued.

        A site whose store fails, or whose commit fails, keeps its previous state: its
        events come again at the next evaluation."""
        with self._evaluating:
            now = self.clock().replace(microsecond=0)  # periods are cut at whole seconds
            notifications: list[Notification] = []
            # Sites whose alerts are kept but which are no longer configured: their firing
            # alerts resolve, said so once.
            with self._lock:
                stored = {r for (r,) in self._db.execute("SELECT DISTINCT site FROM alerts")}
            judged: list[_Judged] = [
                (s, s, None, dict, SITE_REMOVED)
                for s in sorted(stored - {site.id for site in self.sites.sites})
            ]
            for site in self.sites.sites:
                hours = site.alerts.reminder_h
                reminder = timedelta(hours=hours) if hours else None
                if not site.alerts.enabled:
                    judged.append((site.id, site.name, reminder, dict, ALERTS_DISABLED))
                else:
                    judge = partial(self._conditions, site, now)
                    judged.append((site.id, site.name, reminder, judge, RULE_REMOVED))
            for site_id, name, reminder, conditions_of, absent in judged:
                try:
                    conditions = conditions_of()
                except StoreError as exc:
                    log.error("alerts of %s not evaluated: %s", site_id, exc)
                    continue
                except Exception:  # one site's bad state must not stop the others
                    log.exception("alerts of %s not evaluated", site_id)
                    continue
                try:
                    notifications += self._apply(site_id, name, reminder, now, conditions, absent)
                except sqlite3.Error as exc:
                    log.error("alerts of %s not recorded (next evaluation retries): %s",
                              site_id, exc)  # fmt: skip
                except Exception:  # rolled back: the site keeps its previous state
                    log.exception("alerts of %s not recorded (next evaluation retries)", site_id)
            if notifications:
                self.outbox.wake()
            return notifications

    def _conditions(self, site: Site, now: datetime) -> dict[str, Condition]:
        """alert id → what its rule says now. A firing alert left out resolves (its rule
        was removed); a held one (``firing`` None) keeps its state."""
        rules = site.alerts
        previous = {s.alert_id: s for s in self.alerts(site.id)}

        def was_firing(alert_id: str) -> bool:
            status = previous.get(alert_id)
            return status is not None and status.state is AlertState.FIRING

        out: dict[str, Condition] = {}
        tz = site.tz
        minimum = site.targets.min_coverage
        # The windows end at the last quarter hour, not at this second: a window ending
        # at 13:29:59 cuts the store's slots down to one second (periods.common_slot),
        # 900 s slots keep a year's query small. The silent-meter rule uses ``now``.
        instant = now
        now = now - timedelta(seconds=int(now.timestamp()) % WINDOW_ALIGN_S)
        # Windows whose balance could not be computed, and what to configure for it.
        unknown: dict[str, list[str]] = {}
        computed = 0
        for window in rules.windows:
            alert_id, rule = f"{site.id}:balance:{window}", f"balance_{window}"
            start, end = window_bounds(Window(window), now, tz)
            elapsed = end.astimezone(UTC) - start.astimezone(UTC)
            # A month's balance on its first night is no signal: judged once enough of
            # the window has passed; until then the alert keeps its state.
            if end <= start or elapsed < timedelta(hours=rules.window_min_elapsed_h(window)):
                out[alert_id] = _held(rule)
                continue
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
                out[alert_id] = _held(rule)
                blind = {m.carrier for m in site.meters if m.id in unconverted}
                unknown[window] = [
                    f"meter {m!r} counts in m3 without kwh_per_m3" for m in unconverted
                ] + [
                    f"primary_energy_factors.{c} is not set"
                    for c in report.missing_factors
                    if rules.energy == "primary" and c not in blind
                ]
                continue
            computed += 1
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
            out[alert_id] = Condition(
                rule,
                balance_firing(net_kwh, was_firing(alert_id), hysteresis),
                figures,
                f"{site.name}: the {rules.energy}-energy balance over {window.replace('_', ' ')} "
                f"is {net_kwh:+.1f} kWh ({covered})",
            )
        if rules.windows:
            out[f"{site.id}:balance:unknown"] = _balance_unknown(site, unknown, computed)
        if rules.trajectory:
            out.update(self._trajectory(site, now, was_firing))
        out.update(self._data_quality(site, now, instant, was_firing, previous))
        return out

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

    def _watched(self, site_id: str, meters: list[str], now: datetime) -> dict[str, datetime]:
        """When the engine first watched each of ``meters`` (``now`` for a new one),
        persisted: a meter that never reported is silent once watched longer than its
        interval, after a restart too. A meter no longer watched is forgotten (added
        again, it gets its interval again)."""
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO watched_meters (site, meter, since) VALUES (?, ?, ?)",
                [(site_id, m, now.isoformat()) for m in meters],
            )
            rows = self._db.execute(
                "SELECT meter, since FROM watched_meters WHERE site=?", (site_id,)
            ).fetchall()
            gone = [(site_id, m) for m, _ in rows if m not in meters]
            self._db.executemany("DELETE FROM watched_meters WHERE site=? AND meter=?", gone)
        return {m: datetime.fromisoformat(t) for m, t in rows if m in meters}

    def _apply(
        self,
        site_id: str,
        site_name: str,
        reminder: timedelta | None,
        now: datetime,
        conditions: dict[str, Condition],
        absent_reason: str,
    ) -> list[Notification]:
        """Step each alert of ``conditions``; a firing alert of the site they leave out
        resolves with ``absent_reason``."""
        notifications = []
        with self._lock, self._db:
            # Read inside the transaction: an acknowledgement in between is not overwritten.
            rows = self._db.execute("SELECT status FROM alerts WHERE site=?", (site_id,))
            previous = {s.alert_id: s for s in map(_status_of, (t for (t,) in rows))}
            conditions = dict(conditions)
            for alert_id, s in previous.items():
                if alert_id not in conditions and s.state is AlertState.FIRING:
                    message = (
                        f"{site_name}: {s.rule.replace('_', ' ')} alert resolved, {absent_reason}"
                    )
                    conditions[alert_id] = Condition(s.rule, False, {}, message, absent_reason)
            for alert_id, c in conditions.items():
                firing = c.firing
                if firing is None:
                    continue  # not judged now: the alert keeps its state
                before = previous.get(alert_id)
                if before is not None and _after(_latest(before), now):
                    # Its state is ahead of the clock (a clock set back, NTP): kept as it
                    # is until the clock catches up, said once; the other alerts go on.
                    if alert_id not in self._ahead_logged:
                        self._ahead_logged.add(alert_id)
                        log.warning("alert %s: its last evaluation (%s) is after now (%s), "
                                    "the clock went back; its state is kept until the clock "
                                    "passes it", alert_id, _latest(before).isoformat(),
                                    now.isoformat())  # fmt: skip
                    continue
                self._ahead_logged.discard(alert_id)
                figures = c.figures
                if c.reason is not None:
                    last = before.figures if before is not None else {}
                    figures = {**last, "resolved_reason": c.reason}
                    c = replace(c, figures=figures)
                status, event = step(
                    before,
                    firing,
                    now,
                    figures,
                    reminder,
                    alert_id,
                    site_id,
                    c.rule,
                )
                if status is None:
                    continue
                self._db.execute(
                    "INSERT OR REPLACE INTO alerts (alert_id, site, status) VALUES (?, ?, ?)",
                    (alert_id, site_id, _status_json(status)),
                )
                if event is None:
                    continue
                self._db.execute(
                    "INSERT INTO alert_events (alert_id, site, event, time, figures)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (alert_id, site_id, event, now.isoformat(), json.dumps(c.figures)),
                )
                notification = Notification(
                    alert_id=alert_id,
                    site=site_id,
                    rule=c.rule,
                    event=event,
                    title=f"[{event}] {c.rule.replace('_', ' ')} — {site_name}",
                    message=c.message_of(event),
                    figures=c.figures,
                    time=now,
                )
                # Same connection, same transaction as the state: both or neither.
                self.outbox.enqueue_into(self._db, notification)
                notifications.append(notification)
        return notifications

    # --- periodic -------------------------------------------------------------------------

    def start(self, interval_s: float) -> None:
        """Start the outbox's delivery workers and, if ``interval_s`` > 0, the periodic
        evaluation."""
        self.outbox.start()
        if interval_s <= 0:
            return

        def run() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.evaluate()
                except Exception:  # one bad evaluation must not stop the next ones
                    log.exception("alert evaluation failed")

        self._thread = threading.Thread(target=run, name="alert-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the periodic evaluation and the outbox's workers; close the state."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.outbox.stop()
        with self._evaluating, self._lock:
            self._db.close()
