"""The alert engine: evaluates every site's rules, keeps each alert's state in SQLite,
and hands each event (firing, resolved, reminder) to the outbox once per channel."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from domain.alerts import (
    AlertState,
    AlertStatus,
    step,
)
from domain.site import Site, SitesConfig
from domain.store import ReadingStore, StoreError
from service.alerts.conditions import Condition, RuleInputs
from service.alerts.outbox import Notification, Outbox

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

#: Why a firing alert whose rule no longer says anything about it resolves.
RULE_REMOVED = "rule removed from the configuration"
ALERTS_DISABLED = "alerts disabled for the site"
SITE_REMOVED = "site removed from the configuration"

#: A site to judge: id, name, reminder interval, its conditions, why an absent alert resolves.
_Judged = tuple[str, str, timedelta | None, Callable[[], dict[str, Condition]], str]


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
                    judge = partial(self._conditions_of, site, now)
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

    def _conditions_of(self, site: Site, now: datetime) -> dict[str, Condition]:
        previous = {s.alert_id: s for s in self.alerts(site.id)}
        return RuleInputs(self.store, self._watched).conditions(site, now, previous)

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
