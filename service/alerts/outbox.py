"""Alert notifications: the persisted outbox that delivers them on their channels
(webhook, e-mail, MQTT: :mod:`service.alerts.channels`).

An alert that fires, resolves or reminds becomes a :class:`Notification`. The
:class:`Outbox` writes it once per channel into an SQLite file (so nothing is lost if
the service restarts) and a delivery worker per channel (:meth:`Outbox.start`) sends
it: a channel that is down or hangs is retried with exponential backoff, at its retry
time, and never holds the others back. Delivery is *at least once*: a crash between a
successful send and its bookkeeping sends it again.

Secrets stay out of the configuration: an e-mail channel names the environment variable
that holds its SMTP password (``password_env``), never the password.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal, Self

from domain.alert_config import (
    Channel,
    EmailChannel,
    MqttChannel,
    WebhookChannel,
)
from domain.clock import Clock, system_clock
from microville.backoff import backoff_delay
from microville.mqtt import MqttSettings
from service.alerts.channels import (
    CHANNELS,
    DeliveryError,
    Event,
    Notification,
    channel_secrets,
    email_body,
    mask_url,
    redact,
    send_email,
    send_mqtt,
    send_webhook,
)

__all__ = [
    "CHANNELS",
    "Channel",
    "Delivery",
    "DeliveryError",
    "EmailChannel",
    "Event",
    "MqttChannel",
    "Notification",
    "Outbox",
    "Sender",
    "WebhookChannel",
    "email_body",
    "mask_url",
    "redact",
    "send_email",
    "send_mqtt",
    "send_webhook",
]

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------
# The outbox

#: Sends one notification on a channel of the type it is registered for; raises on failure.
Sender = Callable[[Any, Notification], None]

Status = Literal["pending", "delivered", "failed"]

#: An idle worker looks at its queue this often even if nobody wakes it [s].
_IDLE_RECHECK_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,              -- channel name
    alert_id TEXT NOT NULL,
    notification TEXT NOT NULL,         -- Notification.to_json()
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    next_attempt_at_ms INTEGER,         -- NULL once delivered or given up
    delivered_at_ms INTEGER,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at_ms);
"""

_COLUMNS = (
    "id, channel, notification, status, attempts, created_at_ms, next_attempt_at_ms,"
    " delivered_at_ms, last_error"
)


def _ms(t: datetime) -> int:
    return round(t.timestamp() * 1000)


def _time(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True)
class Delivery:
    """One notification on one channel, as the outbox holds it."""

    id: int
    channel: str
    notification: Notification
    status: Status
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None

    @classmethod
    def _from_row(cls, row: tuple[Any, ...]) -> Delivery:
        created = _time(row[5])
        assert created is not None
        return cls(
            id=int(row[0]),
            channel=str(row[1]),
            notification=Notification.from_json(json.loads(row[2])),
            status=row[3],
            attempts=int(row[4]),
            created_at=created,
            next_attempt_at=_time(row[6]),
            delivered_at=_time(row[7]),
            last_error=row[8],
        )


#: How long a failing delivery is retried by default [h]: a channel down from Friday
#: evening is still retried on Monday evening.
DEFAULT_RETRY_FOR_H = 72.0


def attempts_for(retry_for_s: float, backoff_s: float, max_backoff_s: float) -> int:
    """The number of attempts whose last comes ``retry_for_s`` or more after the first,
    with the outbox's backoff (``backoff_s`` doubling, capped at ``max_backoff_s``)."""
    attempts, elapsed = 1, 0.0
    while elapsed < retry_for_s:
        delay = backoff_delay(attempts, backoff_s, max_backoff_s)
        if delay <= 0:
            raise ValueError("a retry period needs a positive backoff")
        elapsed += delay
        attempts += 1
    return attempts


class Outbox:
    """Notifications waiting for delivery, one row per notification × channel, in SQLite.

    Lifecycle: create, ``start()`` the delivery workers, use from any thread,
    ``close()`` once (it stops the workers). One process per file.

    Delivery is independent per channel: :meth:`start` runs one worker thread per
    channel, woken by :meth:`wake` (called by :meth:`enqueue`) and by its earliest
    retry time, so a channel that hangs until its timeout never delays another, and a
    retry happens at its backoff time whether or not anything else happens. Within a
    channel, deliveries go in the order they were queued. :meth:`deliver_due` is the
    same work done once, synchronously, channel after channel (tests, one-shot tools);
    a channel is never attempted by two threads at once.

    A failed attempt is retried after ``backoff_s * 2**k`` seconds, ``k`` being the
    number of earlier failed attempts (so ``backoff_s``, then twice, four times …),
    capped at ``max_backoff_s``; after ``max_attempts`` attempts the row is marked
    ``failed`` with the last error. ``max_attempts`` ``None`` (the default): as many as
    keep retrying for :data:`DEFAULT_RETRY_FOR_H` (82 attempts over 72 h with the
    default backoffs), so a channel down for a weekend still gets its events.

    ``senders`` maps a channel type to the function that sends on it; pass some to
    replace the defaults.
    """

    def __init__(
        self,
        path: str | Path,
        channels: Sequence[Channel],
        mqtt: MqttSettings | None = None,
        backoff_s: float = 5.0,
        max_backoff_s: float = 3600.0,
        max_attempts: int | None = None,
        senders: Mapping[str, Sender] | None = None,
        clock: Clock = system_clock,
    ) -> None:
        if backoff_s < 0 or max_backoff_s < 0:
            raise ValueError("backoffs must not be negative")
        if max_attempts is None:
            retry_s = DEFAULT_RETRY_FOR_H * 3600
            max_attempts = attempts_for(retry_s, backoff_s, max_backoff_s) if backoff_s else 1
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        names = [c.name for c in channels]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"channel names must be unique: {', '.join(duplicates)}")
        if mqtt is None and any(isinstance(c, MqttChannel) for c in channels):
            raise ValueError("an MQTT channel is configured but no MqttSettings were given")
        self.channels: dict[str, Channel] = {c.name: c for c in channels}
        #: Stamps queue and delivery times and bases retries; the workers wait in real
        #: time, so a service keeps the system clock here.
        self.clock = clock
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_attempts = max_attempts
        self.senders: dict[str, Sender] = {"webhook": send_webhook, "email": send_email}
        if mqtt is not None:
            self.senders["mqtt"] = partial(_send_mqtt_with, mqtt)
        self.senders.update(senders or {})

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()  # the database connection
        # One delivery at a time per channel (worker or deliver_due), in queue order.
        self._channel_locks = {name: threading.Lock() for name in self.channels}
        self._wakeup = threading.Condition()
        self._generation = 0  # bumped by wake(): a worker never misses a wake-up
        self._stopping = False
        self._workers: list[threading.Thread] = []

    # -- writing -------------------------------------------------------------------

    def enqueue(
        self, notification: Notification, channels: Sequence[str] | None = None
    ) -> list[int]:
        """Queue ``notification`` on the named channels (all when ``None``), due now;
        all rows or none are written; wake the workers. Return the delivery ids."""
        with self._lock, self._db:
            ids = self.enqueue_into(self._db, notification, channels)
        self.wake()
        return ids

    def enqueue_into(
        self,
        db: sqlite3.Connection,
        notification: Notification,
        channels: Sequence[str] | None = None,
    ) -> list[int]:
        """Write ``notification``'s rows through ``db``, a connection to this outbox's
        file, inside the caller's open transaction (nothing is committed here): the
        caller commits them together with its own changes, or neither. Call
        :meth:`wake` once committed. Return the delivery ids."""
        names = list(self.channels) if channels is None else list(dict.fromkeys(channels))
        unknown = [n for n in names if n not in self.channels]
        if unknown:
            raise ValueError(f"unknown channels: {', '.join(unknown)}")
        now = _ms(self.clock())
        payload = json.dumps(notification.to_json(), ensure_ascii=False)
        return [
            int(
                db.execute(
                    "INSERT INTO deliveries (channel, alert_id, notification,"
                    " created_at_ms, next_attempt_at_ms) VALUES (?, ?, ?, ?, ?)",
                    (name, notification.alert_id, payload, now, now),
                ).lastrowid
                or 0
            )
            for name in names
        ]

    # -- delivery --------------------------------------------------------------------

    def start(self) -> None:
        """Start one delivery worker per channel (again after :meth:`stop`; a no-op
        while they run)."""
        with self._wakeup:
            if self._workers:
                return
            self._stopping = False
            self._workers = [
                threading.Thread(
                    target=self._work, args=(name,), name=f"outbox-{name}", daemon=True
                )
                for name in self.channels
            ]
        for worker in self._workers:
            worker.start()

    def wake(self) -> None:
        """Tell the workers that deliveries were queued."""
        with self._wakeup:
            self._generation += 1
            self._wakeup.notify_all()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the workers; a send in flight is waited for up to ``timeout_s`` in all
        (its row stays pending, to be sent again: at least once)."""
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify_all()
            workers, self._workers = self._workers, []
        deadline = time.monotonic() + timeout_s
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))

    def _work(self, name: str) -> None:
        while True:
            with self._wakeup:
                if self._stopping:
                    return
                generation = self._generation
            try:
                _, retry_at = self._deliver_channel(name, None)
            except sqlite3.ProgrammingError:  # the outbox was closed under a late send
                return
            except Exception:  # a worker outlives any one failure
                log.exception("channel %s: delivery worker error", name)
                retry_at = self.clock() + timedelta(seconds=max(self.backoff_s, 1.0))
            with self._wakeup:
                if self._stopping:
                    return
                if self._generation != generation:
                    continue  # something was queued meanwhile
                wait = _IDLE_RECHECK_S
                if retry_at is not None:
                    wait = min(wait, (retry_at - self.clock()).total_seconds())
                if wait > 0:
                    self._wakeup.wait(wait)

    def _deliver_channel(self, name: str, now: datetime | None) -> tuple[int, datetime | None]:
        """Deliver ``name``'s due deliveries in queue order until one is not due or
        fails. ``now``: the time to judge due rows by (``None``: the real clock, also
        the base of a retry's backoff). Return how many were delivered and when the
        head of the queue is due next (``None``: nothing pending)."""
        delivered = 0
        with self._channel_locks[name]:
            while True:
                with self._lock:
                    row = self._db.execute(
                        f"SELECT {_COLUMNS} FROM deliveries WHERE status='pending'"
                        " AND channel=? ORDER BY id LIMIT 1",
                        (name,),
                    ).fetchone()
                if row is None:
                    return delivered, None
                d = Delivery._from_row(row)
                judged = now or self.clock()
                # Compared in stored milliseconds (the rounding must not delay a due row).
                if d.next_attempt_at is not None and _ms(d.next_attempt_at) > _ms(judged):
                    return delivered, d.next_attempt_at
                retry_at = self._attempt(d, now)
                if retry_at is not None:
                    return delivered, retry_at
                delivered += 1

    def deliver_due(self, now: datetime | None = None) -> int:
        """Try the deliveries due at ``now`` (default: the current time), synchronously,
        channel after channel; return how many were delivered by this pass.

        Within a channel deliveries go in the order they were queued: a later one waits
        while an earlier one is still pending, so a receiver never gets "resolved"
        before "firing". The service does not call this: its workers (:meth:`start`)
        deliver each channel on its own.
        """
        if now is not None and now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        now = now or self.clock()
        return sum(self._deliver_channel(name, now)[0] for name in self.channels)

    def _attempt(self, d: Delivery, now: datetime | None) -> datetime | None:
        """One attempt; ``None`` once delivered, else when the channel may go on (the
        retry time, or at once after giving up on the row)."""
        error: str | None = None
        channel = self.channels.get(d.channel)
        try:
            if channel is None:
                raise DeliveryError(f"channel {d.channel!r} is no longer configured")
            sender = self.senders.get(channel.type)
            if sender is None:
                raise DeliveryError(f"no sender for channel type {channel.type!r}")
            sender(channel, d.notification)
        except Exception as e:  # any failure of one channel is that channel's alone
            # Stored, logged and shown: never with the channel's secrets (a token in the
            # URL's query string, echoed back by a receiver's 404 page).
            secrets = channel_secrets(channel) if channel is not None else []
            error = redact(f"{type(e).__name__}: {e}", secrets)[:1000]
        attempts = d.attempts + 1
        n = d.notification
        if error is None:
            with self._lock, self._db:
                self._db.execute(
                    "UPDATE deliveries SET status='delivered', attempts=?, delivered_at_ms=?,"
                    " next_attempt_at_ms=NULL WHERE id=?",
                    (attempts, _ms(self.clock()), d.id),
                )
            log.info(
                "channel %s: delivered %s %s (delivery %d, attempt %d)",
                d.channel,
                n.event,
                n.alert_id,
                d.id,
                attempts,
            )
            return None
        log.warning(
            "channel %s: attempt %d/%d for %s %s failed: %s",
            d.channel,
            attempts,
            self.max_attempts,
            n.event,
            n.alert_id,
            error,
        )
        if attempts >= self.max_attempts:
            with self._lock, self._db:
                self._db.execute(
                    "UPDATE deliveries SET status='failed', attempts=?, last_error=?,"
                    " next_attempt_at_ms=NULL WHERE id=?",
                    (attempts, error, d.id),
                )
            log.error(
                "channel %s: gave up on %s %s after %d attempts: %s",
                d.channel,
                n.event,
                n.alert_id,
                attempts,
                error,
            )
            return now or self.clock()
        delay = backoff_delay(d.attempts + 1, self.backoff_s, self.max_backoff_s)
        # From the failure (a send can take its whole timeout), unless a time is given.
        retry_at = (now or self.clock()) + timedelta(seconds=delay)
        with self._lock, self._db:
            self._db.execute(
                "UPDATE deliveries SET attempts=?, last_error=?, next_attempt_at_ms=? WHERE id=?",
                (attempts, error, _ms(retry_at), d.id),
            )
        return retry_at

    # -- inspection ------------------------------------------------------------------

    def pending(self) -> list[Delivery]:
        """Deliveries still to be made, the soonest due first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE status='pending'"
                " ORDER BY next_attempt_at_ms, id"
            ).fetchall()
        return [Delivery._from_row(r) for r in rows]

    def history(self, limit: int = 100) -> list[Delivery]:
        """The latest ``limit`` deliveries whatever their status, newest first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM deliveries ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [Delivery._from_row(r) for r in rows]

    def close(self) -> None:
        """Stop the workers, then close the database."""
        self.stop()
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _send_mqtt_with(settings: MqttSettings, ch: MqttChannel, n: Notification) -> None:
    send_mqtt(ch, n, settings)
