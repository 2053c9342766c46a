"""The MQTT source: subscribes to every configured topic and feeds the pipeline.

One persistent session per topic (:class:`MqttSessions`): the broker queues each
topic's messages apart while the gateway is away, so a device flooding its topic fills
its own queue only (mosquitto.conf max_queued_bytes is per session) and cannot make the
broker drop another device's readings."""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from domain.site import MqttSource as MqttSourceConfig
from domain.site import SitesConfig
from gateway.sources.mqtt.router import Router
from gateway.sources.registry import Sink, Source, SourceOptions, register_source
from microville.mqtt import MqttSettings, make_client

log = logging.getLogger(__name__)


#: A message waiting this long for the writer's queue holds paho's network thread: no
#: keepalive goes out, so the broker will drop the connection; the source is not up.
HELD_BACK_AFTER_S = 2.0


class MqttSource:
    """Subscribes (QoS 1, persistent session) to the configured topics.

    paho reconnects by itself with backoff between ``reconnect_min_s`` and
    ``reconnect_max_s`` and notices a dead connection by its keepalive; every (re)connect
    subscribes again. The broker keeps QoS 1 messages for the session while the gateway
    is away, so ``client_id`` must stay the same across restarts.

    A message is acknowledged (PUBACK, manual acks) only once its readings are in the
    store or the on-disk buffer, or it is in the dead-letter log: a gateway killed
    before that gets the message again from the broker. Acknowledgements meant for an
    earlier connection are dropped (the broker sends those messages again; writes are
    idempotent).
    See :class:`~gateway.sources.Source` for the lifecycle.
    """

    name = "mqtt"

    def __init__(
        self,
        config: SitesConfig,
        settings: MqttSettings,
        client_id: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        now: Callable[[], datetime] | None = None,
        topics: Sequence[str] | None = None,
        outages: OutageLog | None = None,
    ) -> None:
        self.router = Router(config)
        #: What this session subscribes to (default: every configured topic).
        self.topics = list(topics) if topics is not None else self.router.topics
        self._outages = outages or OutageLog(settings)
        self._clock = clock
        self._now = now  # device times are checked against it; None: the receive time
        self.received = 0
        self._settings = settings
        self._ready = threading.Event()
        self._held_since: float | None = None  # monotonic time a message began to wait
        self._stopping = False
        self._sink: Sink | None = None
        self._client = make_client(settings, client_id=client_id, persistent=True)
        self._client.manual_ack_set(True)
        self._connection = 0  # incremented at every connect: acks belong to one
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    @property
    def ready(self) -> bool:
        """Connected, with the subscriptions acknowledged by the broker, and not held
        back by the writer (backpressure) for more than :data:`HELD_BACK_AFTER_S`."""
        return self._ready.is_set() and not self.held_back

    @property
    def held_back(self) -> bool:
        since = self._held_since
        return since is not None and time.monotonic() - since > HELD_BACK_AFTER_S

    def start(self, sink: Sink) -> None:
        self._sink = sink
        self._client.connect_async(
            self._settings.host, self._settings.port, keepalive=self._settings.keepalive_s
        )
        self._client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()

    def handle(
        self,
        topic: str,
        payload: bytes,
        received_at: datetime,
        on_safe: Callable[[], None] | None = None,
    ) -> None:
        """Route one message: each reject with its reason, readings to the sink;
        ``on_safe`` once all of it is kept."""
        assert self._sink is not None, "start() first"
        self.received += 1
        now = self._now() if self._now is not None else received_at
        routed = self.router.route(topic, payload, received_at, now)
        for reason in routed.rejects:
            self._sink.reject(topic, reason, payload)
        # accept() blocks while the writer's queue is full (the store is down and the
        # buffer full or absent): the broker then stops hearing from this connection.
        self._held_since = time.monotonic()
        try:
            self._sink.accept(routed.readings, on_safe)
        finally:
            self._held_since = None

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: Any,
    ) -> None:
        if reason.is_failure:
            self._outages.down(self, f"connection refused by the broker: {reason}", error=True)
            return
        self._connection += 1
        self._outages.up(self)
        log.debug(
            "connected to MQTT %s:%s for %s (session present: %s)",
            self._settings.host,
            self._settings.port,
            ", ".join(self.topics),
            flags.session_present,
        )
        # Subscribing again on a resumed session is harmless and covers new topics.
        client.subscribe([(self._settings.subscription(t), 1) for t in self.topics])

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        # paho calls this inside its ``except OSError`` around the connection attempt
        # (socket, DNS, TLS handshake), and passes no exception: it is the one handled.
        self._outages.down(self, connection_failure(sys.exc_info()[1]))

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _props: Any,
    ) -> None:
        refused = [r for r in reasons if r.is_failure]
        if refused:
            log.error("broker refused %d subscriptions: %s", len(refused), refused)
        # Ready only once the broker holds the subscriptions: a message published
        # before the SUBACK of a first session would not reach us.
        self._ready.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _props: Any,
    ) -> None:
        self._ready.clear()
        if not self._stopping:
            self._outages.down(self, f"connection lost ({reason})")

    def _on_message(self, client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        payload = bytes(msg.payload)
        ack = self._acknowledger(client, msg.mid, msg.qos)
        try:
            self.handle(msg.topic, payload, self._clock(), ack)
        except Exception as exc:  # a bug must not kill the network thread
            log.exception("unexpected error on %s", msg.topic)
            assert self._sink is not None
            self._sink.reject(msg.topic, f"internal error: {exc}", payload)
            self._sink.accept([], ack)

    def _acknowledger(self, client: mqtt.Client, mid: int, qos: int) -> Callable[[], None]:
        connection = self._connection

        def ack() -> None:
            # After a reconnect the broker sends the unacknowledged message again (and
            # the mid may now name another message): leave it to that delivery.
            if qos > 0 and connection == self._connection and client.is_connected():
                client.ack(mid, qos)

        return ack


def connection_failure(exc: BaseException | None) -> str:
    """Why a connection attempt failed, in words an operator can act on."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message}): check MICROVILLE_MQTT_CA_FILE"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc})"
    if isinstance(exc, socket.gaierror):
        return f"host not found ({exc.strerror})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer (timeout)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) if exc is not None else "unknown error"


class OutageLog:
    """One warning when the broker becomes unreachable (with its cause), one info when
    every session is connected again; the retries in between stay at debug level.

    Shared by the sessions of one broker, whose threads call it: an outage of the broker
    is one outage, not one per session."""

    def __init__(self, settings: MqttSettings, sessions: int = 1) -> None:
        self._where = f"MQTT broker {settings.host}:{settings.port}"
        self._lock = threading.Lock()
        #: How many sessions share this broker; the first time all are up is logged.
        self._sessions = sessions
        self._seen: set[int] = set()
        self._announced = False
        self._down: set[int] = set()
        self._outage = False
        self._cause = ""

    def down(self, session: object, cause: str, error: bool = False) -> None:
        with self._lock:
            self._down.add(id(session))
            if self._outage and cause == self._cause:
                log.debug("%s still unavailable: %s", self._where, cause)
                return
            # A new outage, or a new cause (e.g. refused, then the CA does not match).
            self._outage, self._cause = True, cause
        level = logging.ERROR if error else logging.WARNING
        log.log(level, "%s unreachable: %s; retrying with backoff", self._where, cause)

    def up(self, session: object) -> None:
        with self._lock:
            self._down.discard(id(session))
            back = self._outage and not self._down
            if back:
                self._outage, self._cause = False, ""
            self._seen.add(id(session))
            first = not self._announced and len(self._seen) == self._sessions
            self._announced = self._announced or first
        if back:
            log.info("%s connected again", self._where)
        elif first:
            log.info("connected to %s (%d sessions)", self._where, self._sessions)
        else:
            log.debug("%s connected", self._where)


def session_client_id(client_id: str, topic: str) -> str:
    """The client id of the gateway's persistent session for ``topic``."""
    return f"{client_id}/{topic}"


class MqttSessions:
    """The gateway's MQTT source: one :class:`MqttSource` (one persistent session,
    client id ``<client_id>/<topic>``) per configured topic, seen as one source."""

    name = "mqtt"

    def __init__(
        self,
        config: SitesConfig,
        settings: MqttSettings,
        client_id: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        now: Callable[[], datetime] | None = None,
    ) -> None:
        topics = Router(config).topics
        outages = OutageLog(settings, sessions=len(topics))
        self.sessions = [
            MqttSource(
                config, settings, session_client_id(client_id, topic), clock, now, [topic], outages
            )
            for topic in topics
        ]

    @property
    def received(self) -> int:
        return sum(s.received for s in self.sessions)

    @property
    def ready(self) -> bool:
        return all(s.ready for s in self.sessions)

    def start(self, sink: Sink) -> None:
        for session in self.sessions:
            session.start(sink)

    def stop(self) -> None:
        for session in self.sessions:
            session.stop()

    def handle(
        self,
        topic: str,
        payload: bytes,
        received_at: datetime,
        on_safe: Callable[[], None] | None = None,
    ) -> None:
        """Route one message as its topic's session would (every session routes any
        configured topic)."""
        self.sessions[0].handle(topic, payload, received_at, on_safe)


@register_source("mqtt")
def mqtt_sources(config: SitesConfig, options: SourceOptions) -> list[Source]:
    """The MQTT source for all the MQTT meters of every site (one broker), one
    persistent session per topic."""
    if not config.meters(MqttSourceConfig):
        return []
    return [
        MqttSessions(config, options.mqtt, options.mqtt_client_id, options.clock, options.present)
    ]
