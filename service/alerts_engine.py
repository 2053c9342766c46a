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
from pathlib import Path

from microville.domain.alerts import (
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
from microville.domain.energy import EnergyBalance
from microville.domain.periods import Step, localize
from microville.domain.site import Role, Site, SitesConfig
from microville.domain.store import ReadingStore, StoreError
from microville.service.indicators import INDEX_DIMENSIONS, energy_report
from microville.service.notify import Notification, Outbox

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
"""

Figures = dict[str, float | str | None]


@dataclass(frozen=True)
class Condition:
    """What one rule says now about one alert."""

    rule: str
    firing: bool
    figures: Figures
    message: str


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
        self._lock = threading.Lock()  # the database connection
        self._evaluating = threading.Lock()  # one evaluation at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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
                "SELECT alert_id, event, time, figures FROM alert_events WHERE site=?"
                " ORDER BY id DESC LIMIT ?",
                (site, limit),
            ).fetchall()
        return [
            {"alert_id": a, "event": e, "time": datetime.fromisoformat(t), "figures": json.loads(f)}
            for a, e, t, f in rows
        ]

    def events_between(self, site: str, start: datetime, end: datetime) -> list[dict[str, object]]:
        """Events of ``site`` in ``[start, end)``, oldest first (for the monthly report)."""
        return [
            e
            for e in reversed(self.history(site, limit=100_000))
            if isinstance(t := e["time"], datetime)
            and start.astimezone(UTC) <= t.astimezone(UTC) < end.astimezone(UTC)
        ]

    def acknowledge(self, site: str, alert_id: str) -> AlertStatus | None:
        with self._lock, self._db:
            row = self._db.execute(
                "SELECT status FROM alerts WHERE site=? AND alert_id=?", (site, alert_id)
            ).fetchone()
            if row is None:
                return None
            status = replace(_status_of(row[0]), acknowledged=True)
            self._db.execute(
                "UPDATE alerts SET status=? WHERE alert_id=?", (_status_json(status), alert_id)
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
            for site in self.sites.sites:
                if not site.alerts.enabled:
                    continue
                try:
                    conditions = self._conditions(site, now)
                except StoreError as exc:
                    log.error("alerts of %s not evaluated: %s", site.id, exc)
                    continue
                try:
                    notifications += self._apply(site, now, conditions)
                except sqlite3.Error as exc:
                    log.error("alerts of %s not recorded (next evaluation retries): %s",
                              site.id, exc)  # fmt: skip
            if notifications:
                self.outbox.wake()
            return notifications

    def _conditions(self, site: Site, now: datetime) -> dict[str, Condition]:
        """alert id → (rule, firing (None: keep the previous state), figures, message)."""
        rules = site.alerts
        previous = {s.alert_id: s for s in self.alerts(site.id)}

        def was_firing(alert_id: str) -> bool:
            status = previous.get(alert_id)
            return status is not None and status.state is AlertState.FIRING

        out: dict[str, Condition] = {}
        tz = site.tz
        for window in rules.windows:
            start, end = window_bounds(Window(window), now, tz)
            if end <= start:
                continue
            report = energy_report(site, self.store, start, end, Step.YEAR)
            net_wh = _net_wh(report.total.balance, rules.energy)
            if net_wh is None:
                continue
            alert_id = f"{site.id}:balance:{window}"
            net_kwh = net_wh / 1000
            figures: Figures = {
                "net_kwh": net_kwh,
                "energy": rules.energy,
                "coverage": report.total.evidence.coverage,
                "start": start.isoformat(),
                "end": end.isoformat(),
            }
            out[alert_id] = Condition(
                f"balance_{window}",
                balance_firing(net_kwh, was_firing(alert_id), rules.hysteresis_kwh),
                figures,
                f"{site.name}: the {rules.energy}-energy balance over {window.replace('_', ' ')} "
                f"is {net_kwh:+.1f} kWh",
            )
        if rules.trajectory:
            out.update(self._trajectory(site, now, was_firing))
        out.update(self._data_quality(site, now, was_firing))
        return out

    def _trajectory(
        self, site: Site, now: datetime, was_firing: Callable[[str], bool]
    ) -> dict[str, Condition]:
        rules, tz = site.alerts, site.tz
        local = now.astimezone(tz)
        year_start = localize(datetime(local.year, 1, 1), tz)
        if now <= year_start:
            return {}
        ytd = energy_report(site, self.store, year_start, now, Step.YEAR).total.balance
        last_year = energy_report(
            site, self.store, localize(datetime(local.year - 1, 1, 1), tz), year_start, Step.MONTH
        )
        # A month of last year counts when its data would prove a target (min_coverage):
        # a month barely covered (the site's first readings) would project as ~0 kWh.
        monthly = {
            p.start.astimezone(tz).month: net / 1000
            for p in last_year.periods
            if p.evidence.coverage >= site.targets.min_coverage
            and (net := _net_wh(p.balance, rules.energy)) is not None
        }
        ytd_wh = _net_wh(ytd, rules.energy)
        if ytd_wh is None:
            return {}
        profile = (
            {m: v for m, v in enumerate(rules.seasonal_net_kwh, start=1)}
            if rules.seasonal_net_kwh is not None
            else None
        )
        projected = project_year_end(ytd_wh / 1000, now, tz, monthly or None, profile)
        if projected is None:
            return {}
        alert_id = f"{site.id}:trajectory:year_end"
        firing = balance_firing(projected, was_firing(alert_id), rules.hysteresis_kwh)
        needed = range(local.month, 13)
        from_profile = sum(1 for m in needed if m not in monthly)
        figures: Figures = {
            "projected_year_end_net_kwh": projected,
            "year_to_date_net_kwh": ytd_wh / 1000,
            "months_from_last_year": len(monthly),
            "months_from_seasonal_profile": from_profile,
        }
        source = (
            "the same months of last year"
            if not from_profile
            else "the seasonal profile"
            if len(monthly) == 0
            else "last year and the seasonal profile"
        )
        message = (
            f"{site.name}: the year would end at {projected:+.0f} kWh (projection from {source})"
        )
        return {alert_id: Condition("trajectory", firing, figures, message)}

    def _data_quality(
        self, site: Site, now: datetime, was_firing: Callable[[str], bool]
    ) -> dict[str, Condition]:
        rules, tz = site.alerts, site.tz
        out: dict[str, Condition] = {}
        meters = [
            m
            for m in site.meters
            if m.dimension in INDEX_DIMENSIONS and m.role is not Role.MEASUREMENT
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
        silent = silent_meters(last_seen, now, expected)
        for m in meters:
            seen = last_seen.get(m.id)
            since = f"since {seen.astimezone(tz):%Y-%m-%d %H:%M}" if seen else "ever"
            out[f"{site.id}:silent:{m.id}"] = Condition(
                "silent_meter",
                m.id in silent,
                {
                    "meter": m.id,
                    "silent_s": silent.get(m.id),
                    "last_seen": seen.isoformat() if seen else None,
                },
                f"{site.name}: meter {m.id} has sent nothing {since}",
            )
        if rules.coverage or rules.resets:
            start, end = window_bounds(Window.MONTH_TO_DATE, now, tz)
            if end > start:
                report = energy_report(site, self.store, start, end, Step.YEAR)
                elapsed = end.astimezone(UTC) - start.astimezone(UTC)
                # Not judged in the month's first hours (a few empty slots weigh a lot
                # there): the alert keeps its state until then.
                if rules.coverage and elapsed >= timedelta(hours=rules.coverage_after_h):
                    coverage = report.total.evidence.coverage
                    minimum = site.targets.min_coverage
                    resolve_above = min(1.0, minimum + rules.coverage_hysteresis)
                    alert_id = f"{site.id}:coverage:month_to_date"
                    firing = coverage < 1.0 and threshold_firing(
                        coverage, was_firing(alert_id), minimum, resolve_above
                    )
                    out[alert_id] = Condition(
                        "coverage",
                        firing,
                        {
                            "coverage": coverage,
                            "min_coverage": minimum,
                            "resolves_above": resolve_above,
                            "elapsed_h": elapsed.total_seconds() / 3600,
                        },
                        f"{site.name}: this month's data coverage is {coverage:.0%}, below the "
                        f"{minimum:.0%} a target needs to be provable",
                    )
                if rules.resets:
                    for meter_id, e in report.meters.items():
                        out[f"{site.id}:reset:{meter_id}"] = Condition(
                            "counter_reset",
                            e.resets + e.rollovers > 0,
                            {"meter": meter_id, "resets": e.resets, "rollovers": e.rollovers},
                            f"{site.name}: meter {meter_id}'s index went back to zero this month",
                        )
        return out

    def _apply(
        self,
        site: Site,
        now: datetime,
        conditions: dict[str, Condition],
    ) -> list[Notification]:
        reminder = timedelta(hours=site.alerts.reminder_h) if site.alerts.reminder_h else None
        notifications = []
        with self._lock, self._db:
            # Read inside the transaction: an acknowledgement in between is not overwritten.
            rows = self._db.execute("SELECT status FROM alerts WHERE site=?", (site.id,))
            previous = {s.alert_id: s for s in map(_status_of, (t for (t,) in rows))}
            for alert_id, c in conditions.items():
                status, event = step(
                    previous.get(alert_id),
                    c.firing,
                    now,
                    c.figures,
                    reminder,
                    alert_id,
                    site.id,
                    c.rule,
                )
                if status is None:
                    continue
                self._db.execute(
                    "INSERT OR REPLACE INTO alerts (alert_id, site, status) VALUES (?, ?, ?)",
                    (alert_id, site.id, _status_json(status)),
                )
                if event is None:
                    continue
                self._db.execute(
                    "INSERT INTO alert_events (alert_id, site, event, time, figures)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (alert_id, site.id, event, now.isoformat(), json.dumps(c.figures)),
                )
                notification = Notification(
                    alert_id=alert_id,
                    site=site.id,
                    rule=c.rule,
                    event=event,
                    title=f"[{event}] {c.rule.replace('_', ' ')} — {site.name}",
                    message=c.message,
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
