"""One notification on one channel: the notification itself, sending it by webhook,
e-mail or MQTT, and keeping channel secrets out of error messages. The outbox that
queues and retries them is :mod:`service.alerts.outbox`."""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import re
import smtplib
import ssl
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
from paho.mqtt.client import Client, ConnectFlags
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import TypeAdapter

from domain.alert_config import (
    Channel,
    EmailChannel,
    MqttChannel,
    WebhookChannel,
)
from microville.mqtt import MqttSettings, make_client

log = logging.getLogger(__name__)

Event = Literal["firing", "resolved", "reminder"]
Figure = float | str | None


class DeliveryError(RuntimeError):
    """A channel could not deliver a notification (the message says why)."""


# --------------------------------------------------------------------------------------
# The notification


@dataclass(frozen=True)
class Notification:
    """One thing to tell people about an alert.

    ``alert_id`` is the alert's stable identity (``site:rule:variant``, e.g.
    ``microville112:balance:rolling_7d``): a firing, its reminders and its resolution
    share it. ``message`` is written for a facility manager; ``figures`` are the numbers
    behind it (finite floats, strings or ``None``). ``time`` is timezone-aware.
    """

    alert_id: str
    site: str
    rule: str
    event: Event
    title: str
    message: str
    figures: dict[str, Figure] = field(default_factory=dict)
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if self.event not in get_args(Event):
            raise ValueError(f"event must be one of {get_args(Event)}, got {self.event!r}")
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            raise ValueError("Notification.time must be timezone-aware")
        for key, value in self.figures.items():
            if isinstance(value, bool) or not isinstance(value, int | float | str | None):
                raise ValueError(f"figure {key!r}: {value!r} is not a number, text or None")
            if isinstance(value, float) and not math.isfinite(value):
                # JSON has no NaN/inf: such a notification could never be delivered.
                raise ValueError(f"figure {key!r} is not finite ({value})")

    def to_json(self) -> dict[str, Any]:
        """The wire form (a JSON object); :meth:`from_json` reads it back."""
        return {
            "alert_id": self.alert_id,
            "site": self.site,
            "rule": self.rule,
            "event": self.event,
            "title": self.title,
            "message": self.message,
            "figures": dict(self.figures),
            "time": self.time.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Notification:
        figures: dict[str, Figure] = {
            str(k): float(v) if isinstance(v, int) and not isinstance(v, bool) else v
            for k, v in dict(data.get("figures") or {}).items()
        }
        return cls(
            alert_id=str(data["alert_id"]),
            site=str(data["site"]),
            rule=str(data["rule"]),
            event=data["event"],
            title=str(data["title"]),
            message=str(data["message"]),
            figures=figures,
            time=datetime.fromisoformat(str(data["time"])),
        )


# --------------------------------------------------------------------------------------
# Channel configurations


#: Validates a list of channel configurations (e.g. from a TOML ``[[channels]]`` table).
CHANNELS: TypeAdapter[list[Channel]] = TypeAdapter(list[Channel])


# --------------------------------------------------------------------------------------
# Secrets out of error messages

MASK = "***"
#: A URL's credentials (``user:password@``) and its query string (``?token=…``).
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#@]+@")
_QUERY = re.compile(r"(/[^\s?#\"']*|://[^\s/?#\"']+)\?[^\s#\"'<>]+")
#: Shorter secret fragments are not searched for (they would mask ordinary words).
_MIN_SECRET_CHARS = 4


def mask_url(url: str) -> str:
    """``url`` without its credentials and query string (``https://***@host/p?***``)."""
    return redact(url)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each of ``secrets`` (of at least 4 characters) replaced by ``***``,
    and every URL's credentials and query string masked, wherever they appear: in an
    exception's message, or echoed back by a receiver (``Cannot POST /hook?token=…``)."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= _MIN_SECRET_CHARS:
            text = text.replace(secret, MASK)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m[1]}{MASK}@", text)
    return _QUERY.sub(lambda m: f"{m[1]}?{MASK}", text)


def channel_secrets(ch: Channel) -> list[str]:
    """What must never appear in a delivery error of ``ch``: a webhook URL's user,
    password, query string and its values, the Basic credentials made of them, its
    headers' values (and their words, the token of ``Bearer …``); an e-mail channel's
    password (read from its variable)."""
    secrets: list[str] = []
    if isinstance(ch, WebhookChannel):
        url = urlsplit(ch.url)
        secrets += [x for x in (url.username, url.password, url.query) if x]
        if url.username is not None:  # sent as Basic auth: its base64 may be echoed too
            pair = f"{unquote(url.username)}:{unquote(url.password or '')}"
            secrets.append(base64.b64encode(pair.encode()).decode())
        secrets += [v for _, v in parse_qsl(url.query, keep_blank_values=False)]
        for value in ch.headers.values():
            secrets += [value, *value.split()]
    elif isinstance(ch, EmailChannel) and ch.password_env:
        password = os.environ.get(ch.password_env)
        if password:
            secrets.append(password)
    return secrets


# --------------------------------------------------------------------------------------
# Senders: each raises on failure


def send_webhook(ch: WebhookChannel, n: Notification) -> None:
    """POST ``n`` as JSON; raise :class:`DeliveryError` on a non-2xx answer, an
    ``httpx`` error if the receiver cannot be reached."""
    response = httpx.post(ch.url, json=n.to_json(), headers=ch.headers, timeout=ch.timeout_s)
    if not response.is_success:
        body = response.text[:200].strip()
        raise DeliveryError(
            f"webhook {mask_url(ch.url)} answered {response.status_code} "
            f"{response.reason_phrase}" + (f": {body}" if body else "")
        )


def _figure_text(value: Figure) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return format(value, ".10g")
    return str(value)


def email_body(n: Notification) -> str:
    """The plain-text body: the message, the figures, then where it comes from."""
    lines = [n.message.rstrip(), ""]
    if n.figures:
        lines.append("Figures:")
        lines += [f"  {key}: {_figure_text(value)}" for key, value in n.figures.items()]
        lines.append("")
    lines += [
        f"Site: {n.site}",
        f"Rule: {n.rule}",
        f"Event: {n.event}",
        f"Time: {n.time.isoformat()}",
        f"Alert: {n.alert_id}",
    ]
    return "\n".join(lines) + "\n"


def send_email(ch: EmailChannel, n: Notification) -> None:
    """Send ``n`` by SMTP; raise on any failure (``smtplib``/``OSError``/
    :class:`DeliveryError`)."""
    msg = EmailMessage()
    msg["Subject"] = n.title
    msg["From"] = ch.sender
    msg["To"] = ", ".join(ch.recipients)
    msg["Date"] = format_datetime(datetime.now(UTC))
    domain = ch.sender.rpartition("@")[2] or "microville.invalid"
    msg["Message-ID"] = make_msgid(domain=domain)
    msg["X-Microville-Alert-Id"] = n.alert_id
    msg["X-Microville-Event"] = n.event
    msg.set_content(email_body(n))
    smtp_send(ch, msg, ch.recipients)


def smtp_send(ch: EmailChannel, msg: EmailMessage, recipients: Sequence[str]) -> None:
    """Send ``msg`` through ``ch``'s SMTP server (STARTTLS, login); raise on failure."""
    password: str | None = None
    if ch.username:
        assert ch.password_env is not None  # checked by EmailChannel
        password = os.environ.get(ch.password_env)
        if password is None:
            raise DeliveryError(f"environment variable {ch.password_env} is not set")
    with smtplib.SMTP(ch.host, ch.port, timeout=ch.timeout_s) as smtp:
        if ch.starttls:
            smtp.starttls(context=ssl.create_default_context(cafile=ch.ca_file))
        if ch.username and password is not None:
            smtp.login(ch.username, password)
        refused = smtp.send_message(msg, from_addr=ch.sender, to_addrs=list(recipients))
    if refused:
        # Some recipients got it: sending again would duplicate theirs, so only say so.
        log.warning("channel %s: recipients refused: %s", ch.name, ", ".join(refused))


def send_mqtt(ch: MqttChannel, n: Notification, mqtt_settings: MqttSettings) -> None:
    """Publish ``n`` (QoS 1, not retained); raise unless the broker acknowledged it."""
    client = make_client(
        mqtt_settings, client_id=f"microville-notify-{uuid.uuid4().hex[:12]}", persistent=False
    )
    client.connect_timeout = ch.timeout_s
    connected = threading.Event()
    outcome: list[ReasonCode] = []

    def on_connect(
        _client: Client, _userdata: Any, _flags: ConnectFlags, reason: ReasonCode, _props: Any
    ) -> None:
        outcome.append(reason)
        connected.set()

    client.on_connect = on_connect
    client.connect(mqtt_settings.host, mqtt_settings.port, keepalive=mqtt_settings.keepalive_s)
    client.loop_start()
    try:
        if not connected.wait(ch.timeout_s):
            raise DeliveryError(f"no answer from MQTT broker {mqtt_settings.host}")
        if outcome[0].is_failure:
            raise DeliveryError(f"MQTT broker refused the connection: {outcome[0]}")
        payload = json.dumps(n.to_json(), ensure_ascii=False)
        info = client.publish(ch.topic(n.site, n.rule), payload, qos=1, retain=False)
        info.wait_for_publish(ch.timeout_s)
        if not info.is_published():
            raise DeliveryError(f"MQTT broker did not acknowledge within {ch.timeout_s} s")
    finally:
        client.disconnect()
        client.loop_stop()
