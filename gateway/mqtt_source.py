"""The MQTT source: subscribes to every configured topic and feeds the pipeline."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from microville.domain.site import MqttSource as MqttSourceConfig
from microville.domain.site import SitesConfig
from microville.gateway.router import Router
from microville.gateway.sources import Sink, Source, SourceOptions, register_source
from microville.mqtt import MqttSettings, make_client

log = logging.getLogger(__name__)


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
    See :class:`~microville.gateway.sources.Source` for the lifecycle.
    """

    name = "mqtt"

    def __init__(
        self,
        config: SitesConfig,
        settings: MqttSettings,
        client_id: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.router = Router(config)
        self._clock = clock
        self._now = now  # device times are checked against it; None: the receive time
        self.received = 0
        self._settings = settings
        self._ready = threading.Event()
        self._stopping = False
        self._sink: Sink | None = None
        self._client = make_client(settings, client_id=client_id, persistent=True)
        self._client.manual_ack_set(True)
        self._connection = 0  # incremented at every connect: acks belong to one
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    @property
    def ready(self) -> bool:
        """Connected, with the subscriptions acknowledged by the broker."""
        return self._ready.is_set()

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
        self._sink.accept(routed.readings, on_safe)

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: Any,
    ) -> None:
        if reason.is_failure:
            log.error("MQTT connection refused: %s", reason)
            return
        self._connection += 1
        log.info(
            "connected to MQTT %s:%s (session present: %s)",
            self._settings.host,
            self._settings.port,
            flags.session_present,
        )
        # Subscribing again on a resumed session is harmless and covers new topics.
        client.subscribe([(self._settings.subscription(t), 1) for t in self.router.topics])

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
            log.warning("MQTT disconnected (%s); reconnecting with backoff", reason)

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


@register_source("mqtt")
def mqtt_sources(config: SitesConfig, options: SourceOptions) -> list[Source]:
    """One MQTT source for all the MQTT meters of every site (one broker)."""
    if not config.meters(MqttSourceConfig):
        return []
    return [
        MqttSource(config, options.mqtt, options.mqtt_client_id, options.clock, options.present)
    ]
