"""Alert notifications over real transports on loopback: an aiosmtpd SMTP server, a
local HTTP receiver, the tests' Mosquitto; and the outbox's retries and persistence."""

from __future__ import annotations

import base64
import json
import logging
import smtplib
import ssl
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from aiosmtpd.controller import Controller
from helpers.receivers import HungReceiver, Inbox, Receiver
from helpers.services import free_port, self_signed_certificate
from helpers.support import wait_until
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from domain.alert_config import EmailChannel, MqttChannel, WebhookChannel
from domain.clock import fixed_clock
from microville.mqtt import MqttSettings
from service.alerts.channels import CHANNELS, DeliveryError, Notification, redact, send_email
from service.alerts.outbox import DEFAULT_RETRY_FOR_H, Outbox, attempts_for

T0 = datetime(2024, 6, 3, 8, 0, tzinfo=UTC)
SENDER = "monitor@microville.example"
RECIPIENTS = ["facility@microville.example", "ops@microville.example"]


def make_notification(event: str = "firing") -> Notification:
    return Notification(
        alert_id="microville112:balance:rolling_7d",
        site="microville112",
        rule="balance",
        event=event,  # type: ignore[arg-type]  # checked at run time, see test below
        title="Microville 112 used more energy than it produced this week",
        message="Over the last 7 days the building used 12.5 kWh more than its panels made.",
        figures={"net_kwh": -12.5, "produced_kwh": 80.25, "period": "rolling_7d", "cov": None},
        time=T0,
    )


def pump(outbox: Outbox, done: Any, timeout_s: float = 10.0) -> bool:
    """Call ``deliver_due`` repeatedly until ``done()`` holds."""

    def step() -> bool:
        outbox.deliver_due()
        return bool(done())

    return wait_until(step, timeout_s)


def status_of(outbox: Outbox, channel: str) -> str:
    return next(d.status for d in outbox.history() if d.channel == channel)


# -- an SMTP server --------------------------------------------------------------------


def email_channel(port: int, **kw: Any) -> EmailChannel:
    settings: dict[str, Any] = {"starttls": False, "timeout_s": 2, **kw}
    return EmailChannel(
        name="mail", host="127.0.0.1", port=port, sender=SENDER, recipients=RECIPIENTS, **settings
    )


# -- the notification and the configuration ---------------------------------------------


def test_notification_wire_form_round_trips() -> None:
    n = make_notification()
    wire = json.loads(json.dumps(n.to_json()))
    assert wire["alert_id"] == "microville112:balance:rolling_7d"
    assert wire["time"] == "2024-06-03T08:00:00+00:00"
    assert wire["figures"] == {
        "net_kwh": -12.5,
        "produced_kwh": 80.25,
        "period": "rolling_7d",
        "cov": None,
    }
    assert Notification.from_json(wire) == n


@pytest.mark.parametrize(
    "change",
    [
        {"time": datetime(2024, 6, 3, 8, 0)},
        {"event": "exploded"},
        {"figures": {"net_kwh": float("nan")}},
        {"figures": {"net_kwh": [1, 2]}},
    ],
    ids=["naive-time", "unknown-event", "nan-figure", "list-figure"],
)
def test_notification_rejects_what_cannot_be_sent(change: dict[str, Any]) -> None:
    fields = make_notification().to_json() | {"time": T0} | change
    with pytest.raises(ValueError):
        Notification(**fields)


def test_channels_are_validated_and_discriminated_by_type() -> None:
    webhook, email, bus = CHANNELS.validate_python(
        [
            {"type": "webhook", "name": "hook", "url": "https://example.org/hook"},
            {
                "type": "email",
                "name": "mail",
                "host": "smtp.example.org",
                "username": "alerts",
                "password_env": "SMTP_PASSWORD",
                "sender": SENDER,
                "recipients": RECIPIENTS,
            },
            {"type": "mqtt", "name": "bus"},
        ]
    )
    assert isinstance(webhook, WebhookChannel) and webhook.timeout_s == 10
    assert isinstance(email, EmailChannel) and (email.port, email.starttls) == (587, True)
    assert isinstance(bus, MqttChannel) and bus.topic("microville112", "balance") == (
        "microville/alerts/microville112/balance"
    )
    mail: dict[str, Any] = {"type": "email", "name": "m", "host": "h", "sender": SENDER}
    bad_configs: list[dict[str, Any]] = [
        {"type": "sms", "name": "x"},
        {"type": "webhook", "name": "x", "url": "https://e.org", "password": "oops"},
        {"type": "webhook", "name": "x", "url": "ftp://e.org"},
        mail | {"recipients": []},
        mail | {"recipients": RECIPIENTS, "username": "alerts"},  # no password_env
    ]
    for bad in bad_configs:
        with pytest.raises(ValidationError):
            CHANNELS.validate_python([bad])


def test_outbox_refuses_inconsistent_setups(tmp_path: Path) -> None:
    hook = WebhookChannel(name="hook", url="http://127.0.0.1:9/")
    with pytest.raises(ValueError, match="unique"):
        Outbox(tmp_path / "a.db", [hook, hook])
    with pytest.raises(ValueError, match="MqttSettings"):
        Outbox(tmp_path / "a.db", [MqttChannel(name="bus")])
    with Outbox(tmp_path / "a.db", [hook]) as outbox:
        with pytest.raises(ValueError, match="unknown channels: nope"):
            outbox.enqueue(make_notification(), ["hook", "nope"])
        assert outbox.history() == []  # all or nothing


# -- e-mail --------------------------------------------------------------------------


def test_email_arrives_with_subject_and_figures(
    tmp_path: Path, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    n = make_notification()
    with Outbox(tmp_path / "outbox.db", [email_channel(port)]) as outbox:
        outbox.enqueue(n)
        assert outbox.deliver_due() == 1
        assert outbox.pending() == []
        [done] = outbox.history()
        assert (done.status, done.attempts, done.last_error) == ("delivered", 1, None)

    [message] = inbox.messages
    assert message["Subject"] == n.title
    assert message["From"] == SENDER
    assert inbox.envelopes[0].rcpt_tos == RECIPIENTS
    assert message["X-Microville-Alert-Id"] == n.alert_id
    body = message.get_content()
    assert n.message in body
    for line in ("net_kwh: -12.5", "produced_kwh: 80.25", "period: rolling_7d", "cov: n/a"):
        assert line in body


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_email_logs_in_with_the_password_from_the_environment(
    smtp_auth_server: tuple[Inbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, port = smtp_auth_server
    channel = email_channel(port, username="alerts", password_env="MV_TEST_SMTP_PASSWORD")
    n = make_notification("resolved")

    monkeypatch.delenv("MV_TEST_SMTP_PASSWORD", raising=False)
    with pytest.raises(DeliveryError, match="MV_TEST_SMTP_PASSWORD is not set"):
        send_email(channel, n)
    monkeypatch.setenv("MV_TEST_SMTP_PASSWORD", "wrong")
    with pytest.raises(smtplib.SMTPAuthenticationError):
        send_email(channel, n)
    with pytest.raises(smtplib.SMTPSenderRefused):  # the server does require AUTH
        send_email(email_channel(port), n)
    assert inbox.messages == []

    monkeypatch.setenv("MV_TEST_SMTP_PASSWORD", "s3cret")
    send_email(channel, n)
    # smtplib tries each mechanism the server offers before giving up on "wrong".
    assert set(inbox.logins) == {("alerts", "wrong"), ("alerts", "s3cret")}
    assert inbox.logins[-1] == ("alerts", "s3cret")
    [message] = inbox.messages
    assert message["Subject"] == n.title
    assert "s3cret" not in channel.model_dump_json()


@pytest.fixture
def smtp_starttls_server(tmp_path: Path) -> Iterator[tuple[Inbox, int, Path]]:
    """Requires STARTTLS before anything, and AUTH (over TLS only) before MAIL; its
    certificate (for 127.0.0.1) is self-signed: yield it as the CA to trust."""
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_require_tls=True,
        auth_required=True,
        authenticator=inbox.authenticate,
    )
    controller.start()
    yield inbox, port, cert
    controller.stop()


def test_email_over_starttls_verifies_the_server_with_the_given_ca(
    smtp_starttls_server: tuple[Inbox, int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, port, cert = smtp_starttls_server
    monkeypatch.setenv("MV_TEST_SMTP_PASSWORD", "s3cret")
    secure = email_channel(port, starttls=True, username="alerts",
                           password_env="MV_TEST_SMTP_PASSWORD", ca_file=str(cert))  # fmt: skip
    n = make_notification()

    # The system's trust store does not know the server: the certificate is refused.
    with pytest.raises(ssl.SSLCertVerificationError):
        send_email(secure.model_copy(update={"ca_file": None}), n)
    # Without STARTTLS the server offers no AUTH and takes no mail.
    with pytest.raises(smtplib.SMTPException):
        send_email(secure.model_copy(update={"starttls": False}), n)
    assert inbox.messages == [] and inbox.logins == []

    send_email(secure, n)  # TLS verified with the CA file, then AUTH, then the mail
    assert inbox.logins == [("alerts", "s3cret")]
    [message] = inbox.messages
    assert message["Subject"] == n.title


# -- webhook -------------------------------------------------------------------------


def test_webhook_is_retried_with_backoff_and_delivered_once(
    tmp_path: Path, receivers: list[Receiver]
) -> None:
    receiver = Receiver(free_port(), fail_first=2)
    receivers.append(receiver)
    receiver.start()
    channel = WebhookChannel(
        name="hook", url=receiver.url, timeout_s=2, headers={"Authorization": "Bearer t0k"}
    )
    n = make_notification()
    with Outbox(tmp_path / "outbox.db", [channel], backoff_s=0.05) as outbox:
        outbox.enqueue(n)
        assert pump(outbox, lambda: receiver.accepted)
        for _ in range(5):  # nothing left to send
            assert outbox.deliver_due() == 0
        [done] = outbox.history()

    assert (done.status, done.attempts) == ("delivered", 3)
    assert done.last_error is not None and "503" in done.last_error
    assert len(receiver.requests) == 3
    [body] = receiver.accepted
    assert body["alert_id"] == n.alert_id
    assert body["event"] == "firing"
    assert body["figures"] == n.to_json()["figures"]
    assert receiver.headers[0]["Authorization"] == "Bearer t0k"


def test_webhook_receiver_down_at_first_is_delivered_later(
    tmp_path: Path, receivers: list[Receiver]
) -> None:
    receiver = Receiver(free_port())  # nothing listens yet
    receivers.append(receiver)
    channel = WebhookChannel(name="hook", url=receiver.url, timeout_s=2)
    with Outbox(tmp_path / "outbox.db", [channel], backoff_s=0.05, max_backoff_s=0.2) as outbox:
        outbox.enqueue(make_notification())
        assert outbox.deliver_due() == 0
        [waiting] = outbox.pending()
        assert waiting.attempts == 1
        assert waiting.last_error is not None and "ConnectError" in waiting.last_error

        receiver.start()
        assert pump(outbox, lambda: receiver.accepted)
        assert outbox.pending() == []
        assert status_of(outbox, "hook") == "delivered"
    assert len(receiver.accepted) == 1


def test_backoff_doubles_and_is_capped(tmp_path: Path, now: datetime) -> None:
    channel = WebhookChannel(name="hook", url=f"http://127.0.0.1:{free_port()}/", timeout_s=1)
    with Outbox(
        tmp_path / "outbox.db",
        [channel],
        backoff_s=10,
        max_backoff_s=25,
        clock=fixed_clock(now),
    ) as outbox:
        outbox.enqueue(make_notification())
        t = now + timedelta(seconds=1)

        def due_in() -> tuple[int, float]:
            [d] = outbox.pending()
            assert d.next_attempt_at is not None
            return d.attempts, round((d.next_attempt_at - t).total_seconds(), 2)

        outbox.deliver_due(t)
        assert due_in() == (1, 10)
        outbox.deliver_due(t + timedelta(seconds=9))  # not due yet: not attempted
        assert due_in() == (1, 10)
        outbox.deliver_due(t + timedelta(seconds=10))
        assert due_in() == (2, 10 + 20)
        outbox.deliver_due(t + timedelta(seconds=30))
        assert due_in() == (3, 30 + 25)  # 40 s capped at 25


def test_a_channel_down_for_a_weekend_is_retried_for_72_hours(
    tmp_path: Path, receivers: list[Receiver]
) -> None:
    """A webhook refusing every attempt (a real 503 each time), the outbox driven by the
    time given to deliver_due at each retry: with the default backoffs it is retried for
    72 h after its first attempt (Friday evening to Monday evening), then given up."""
    refusing = Receiver(free_port(), fail_first=10**6)
    receivers.append(refusing)
    refusing.start()
    channel = WebhookChannel(name="hook", url=refusing.url, timeout_s=2)
    with Outbox(tmp_path / "outbox.db", [channel]) as outbox:
        assert outbox.max_attempts == attempts_for(DEFAULT_RETRY_FOR_H * 3600, 5, 3600) == 82
        outbox.enqueue(make_notification())
        ((queued,),) = [outbox.pending()]
        assert queued.next_attempt_at is not None
        first = last = queued.next_attempt_at
        while pending := outbox.pending():
            (d,) = pending
            assert d.next_attempt_at is not None
            last = d.next_attempt_at
            outbox.deliver_due(last)
        (d,) = outbox.history()
    assert (d.status, d.attempts) == ("failed", 82)
    assert len(refusing.requests) == 82  # each one a real refused POST
    assert last - first >= timedelta(hours=DEFAULT_RETRY_FOR_H)  # the last attempt
    assert last - first < timedelta(hours=DEFAULT_RETRY_FOR_H + 1)


# -- MQTT ----------------------------------------------------------------------------


def test_mqtt_publishes_the_json_on_site_and_rule(tmp_path: Path, mosquitto_url: str) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}/alerts"
    settings = MqttSettings(url=mosquitto_url)
    received: list[mqtt.MQTTMessage] = []
    subscribed = threading.Event()
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"listener-{uuid.uuid4()}")
    listener.on_subscribe = lambda *_: subscribed.set()
    listener.on_message = lambda _c, _u, msg: received.append(msg)
    listener.connect(settings.host, settings.port)
    listener.loop_start()
    try:
        listener.subscribe(f"{prefix}/#", qos=1)
        assert subscribed.wait(5)
        n = make_notification("reminder")
        channel = MqttChannel(name="bus", topic_prefix=prefix, timeout_s=5)
        with Outbox(tmp_path / "outbox.db", [channel], mqtt=settings) as outbox:
            outbox.enqueue(n)
            assert outbox.deliver_due() == 1
        assert wait_until(lambda: bool(received), 5)
    finally:
        listener.disconnect()
        listener.loop_stop()

    [msg] = received
    assert msg.topic == f"{prefix}/microville112/balance"
    assert (msg.qos, msg.retain) == (1, False)
    assert json.loads(msg.payload) == n.to_json()


def test_mqtt_broker_down_is_a_failed_attempt(tmp_path: Path) -> None:
    settings = MqttSettings(url=f"mqtt://127.0.0.1:{free_port()}")
    channel = MqttChannel(name="bus", timeout_s=1)
    with Outbox(tmp_path / "outbox.db", [channel], mqtt=settings) as outbox:
        outbox.enqueue(make_notification())
        assert outbox.deliver_due() == 0
        [waiting] = outbox.pending()
        assert waiting.attempts == 1 and waiting.last_error is not None
        assert "Connection refused" in waiting.last_error or "Refused" in waiting.last_error


# -- isolation and persistence ------------------------------------------------------------


def test_a_failing_channel_does_not_hold_back_the_others(
    tmp_path: Path, smtp_server: tuple[Inbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    inbox, port = smtp_server
    dead = WebhookChannel(name="dead-hook", url=f"http://127.0.0.1:{free_port()}/", timeout_s=1)
    caplog.set_level(logging.INFO, logger="service.alerts.outbox")
    outbox = Outbox(
        tmp_path / "outbox.db", [dead, email_channel(port)], backoff_s=0.02, max_attempts=3
    )
    with outbox:
        outbox.enqueue(make_notification())
        assert outbox.deliver_due() == 1
        assert len(inbox.messages) == 1
        [waiting] = outbox.pending()
        assert (waiting.channel, waiting.attempts) == ("dead-hook", 1)

        assert pump(outbox, lambda: status_of(outbox, "dead-hook") == "failed")
        by_channel = {d.channel: d for d in outbox.history()}
        assert outbox.pending() == []

    failed, mail = by_channel["dead-hook"], by_channel["mail"]
    assert (failed.status, failed.attempts, failed.next_attempt_at) == ("failed", 3, None)
    assert failed.last_error is not None and "ConnectError" in failed.last_error
    assert (mail.status, mail.attempts) == ("delivered", 1)
    assert len(inbox.messages) == 1  # the e-mail was not sent again

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert all("dead-hook" in w and "ConnectError" in w for w in warnings)
    assert any(r.levelno == logging.INFO and "mail" in r.getMessage() for r in caplog.records)
    assert any(r.levelno == logging.ERROR and "gave up" in r.getMessage() for r in caplog.records)


def test_pending_deliveries_survive_a_restart(tmp_path: Path, receivers: list[Receiver]) -> None:
    receiver = Receiver(free_port())
    receivers.append(receiver)
    channel = WebhookChannel(name="hook", url=receiver.url, timeout_s=2)
    path = tmp_path / "outbox.db"
    n = make_notification()

    first = Outbox(path, [channel], backoff_s=0.05)
    first.enqueue(n)
    assert first.deliver_due() == 0  # receiver down: one failed attempt
    first.close()

    receiver.start()
    with Outbox(path, [channel], backoff_s=0.05) as second:
        [waiting] = second.pending()
        assert (waiting.channel, waiting.notification, waiting.attempts) == ("hook", n, 1)
        assert pump(second, lambda: receiver.accepted)
        [done] = second.history()
        assert (done.status, done.attempts) == ("delivered", 2)
    assert receiver.accepted == [n.to_json()]


# -- delivery workers: one per channel ------------------------------------------------------


def test_a_hung_webhook_does_not_delay_the_email(
    tmp_path: Path, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    hung = HungReceiver()
    stuck = WebhookChannel(name="stuck", url=hung.url, timeout_s=60)  # listed first
    outbox = Outbox(tmp_path / "outbox.db", [stuck, email_channel(port)], backoff_s=0.05)
    try:
        outbox.start()
        outbox.enqueue(make_notification("firing"))
        outbox.enqueue(make_notification("resolved"))
        assert wait_until(lambda: len(inbox.messages) == 2 and bool(hung.held), 20)
        # Both e-mails are in while the webhook's first attempt still waits for its answer.
        hook = [d for d in outbox.history() if d.channel == "stuck"]
        assert [(d.status, d.attempts) for d in hook] == [("pending", 0), ("pending", 0)]
        assert [m["X-Microville-Event"] for m in inbox.messages] == ["firing", "resolved"]
        assert {d.status for d in outbox.history() if d.channel == "mail"} == {"delivered"}
    finally:
        hung.close()
        outbox.close()


def test_a_retry_happens_at_its_backoff_time_without_another_call(
    tmp_path: Path, receivers: list[Receiver]
) -> None:
    receiver = Receiver(free_port(), fail_first=2)
    receivers.append(receiver)
    receiver.start()
    channel = WebhookChannel(name="hook", url=receiver.url, timeout_s=2)
    with Outbox(tmp_path / "outbox.db", [channel], backoff_s=0.05) as outbox:
        outbox.start()
        outbox.enqueue(make_notification("firing"))
        outbox.enqueue(make_notification("resolved"))
        # Nothing calls deliver_due: the channel's worker retries on its own.
        # The receiver has the second before the outbox records it as delivered.
        assert wait_until(lambda: not outbox.pending() and len(receiver.accepted) == 2, 15)
        done = sorted(outbox.history(), key=lambda d: d.id)
        assert [(d.status, d.attempts) for d in done] == [("delivered", 3), ("delivered", 1)]
    assert [b["event"] for b in receiver.accepted] == ["firing", "resolved"]  # in order
    assert len(receiver.requests) == 4


def test_workers_stop_and_start_again(tmp_path: Path, receivers: list[Receiver]) -> None:
    receiver = Receiver(free_port())
    receivers.append(receiver)
    receiver.start()
    channel = WebhookChannel(name="hook", url=receiver.url, timeout_s=2)
    with Outbox(tmp_path / "outbox.db", [channel]) as outbox:
        outbox.start()
        outbox.stop()
        outbox.enqueue(make_notification())
        assert [d.status for d in outbox.pending()] == ["pending"]  # stopped: not sent
        outbox.start()
        assert wait_until(lambda: not outbox.pending(), 10)
    assert len(receiver.accepted) == 1


# -- secrets stay out of delivery errors ------------------------------------------------


class EchoingReceiver:
    """A webhook endpoint that does not know the path, answering 404 with the request
    line echoed back (as Express does: ``Cannot POST /hook?token=…``)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                answer = f"Cannot POST {self.path} ({self.headers['Authorization']})".encode()
                self.send_response(404)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_delivery_errors_mask_url_credentials_query_strings_and_headers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = EchoingReceiver()
    url = f"http://hook-user:pa55-w0rd@127.0.0.1:{receiver.port}/wrong/path?token=s3cr3t-t0ken"
    basic = base64.b64encode(b"hook-user:pa55-w0rd").decode()  # httpx sends Basic auth
    secrets = ["pa55-w0rd", "s3cr3t-t0ken", "b3arer-t0ken", basic]
    channel = WebhookChannel(name="hook", url=url, timeout_s=2,
                             headers={"Authorization": "Bearer b3arer-t0ken"})  # fmt: skip
    try:
        with (
            caplog.at_level(logging.INFO, logger="service.alerts.outbox"),
            Outbox(tmp_path / "outbox.db", [channel], max_attempts=1) as outbox,
        ):
            outbox.enqueue(make_notification())
            assert outbox.deliver_due() == 0
            [failed] = outbox.history()
    finally:
        receiver.close()
    error = failed.last_error
    assert failed.status == "failed" and error is not None
    assert "404" in error and "Cannot POST /wrong/path?***" in error  # still says what failed
    assert f"http://***@127.0.0.1:{receiver.port}/wrong/path?***" in error
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "404" in logged
    for secret in secrets:
        assert secret not in error and secret not in logged


def test_redact_masks_urls_wherever_they_appear() -> None:
    text = "ConnectError: https://u:p4ss@example.org:8443/h?k=v&t=x refused; see /a/b?sig=zz"
    assert redact(text) == (
        "ConnectError: https://***@example.org:8443/h?*** refused; see /a/b?***"
    )
    assert redact("a short value 12 stays", ["12"]) == "a short value 12 stays"
    assert redact("why? nobody knows") == "why? nobody knows"
