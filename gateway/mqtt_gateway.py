"""The MQTT source: subscribes to every configured topic and feeds the pipeline."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from microville.domain.site import SitesConfig
from microville.domain.store import ReadingStore
from microville.gateway.batcher import BatchWriter
from microville.gateway.deadletter import DeadLetter, DeadLetterLog
from microville.gateway.router import Router
from microville.mqtt import MqttSettings, make_client

log = logging.getLogger(__name__)


class MqttGateway:
    """Subscribes (QoS 1, persistent session) to the configured topics and stores
    what arrives.

    Lifecycle: ``start()`` connects in the background and returns at once (the
    broker may be down: paho reconnects with backoff between ``reconnect_min_s``
    and ``reconnect_max_s``); ``stop()`` disconnects and writes what is pending.
    The broker keeps QoS 1 messages for the session while the gateway is away, so
    ``client_id`` must stay the same across restarts.
    """

    def __init__(
        self,
        config: SitesConfig,
        store: ReadingStore,
        mqtt_settings: MqttSettings,
        client_id: str = "microville-gateway",
        dead_letters: DeadLetterLog | None = None,
        batch_size: int = 5000,
        batch_delay_s: float = 1.0,
    ) -> None:
        self.router = Router(config)
        self.dead_letters = dead_letters or DeadLetterLog()
        self.writer = BatchWriter(store, max_size=batch_size, max_delay_s=batch_delay_s)
        self.messages = 0
        #: Set while connected with the subscriptions acknowledged.
        self.ready = threading.Event()
        self._stopping = False
        self._settings = mqtt_settings
        self._client = make_client(mqtt_settings, client_id=client_id, persistent=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def start(self) -> None:
        self.writer.start()
        self._client.connect_async(
            self._settings.host, self._settings.port, keepalive=self._settings.keepalive_s
        )
        self._client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()
        self.writer.stop()

    def handle(self, topic: str, payload: bytes, received_at: datetime) -> None:
        """Route one message: readings to the writer, rejects to the dead letters."""
        self.messages += 1
        routed = self.router.route(topic, payload, received_at)
        if routed.readings:
            self.writer.add(routed.readings)
        for reason in routed.rejects:
            self.dead_letters.add(DeadLetter(received_at, topic, reason, payload))

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
        log.info(
            "connected to MQTT %s:%s (session present: %s)",
            self._settings.host,
            self._settings.port,
            flags.session_present,
        )
        # Subscribing again on a resumed session is harmless and covers new topics.
        client.subscribe([(topic, 1) for topic in self.router.topics])

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
            log.error(
                "broker refused %d of %d subscriptions: %s", len(refused), len(reasons), refused
            )
        # Ready only once the broker holds the subscriptions: a message published
        # before the SUBACK of a first session would not reach us.
        self.ready.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _props: Any,
    ) -> None:
        self.ready.clear()
        if not self._stopping:
            log.warning("MQTT disconnected (%s); reconnecting with backoff", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.handle(msg.topic, bytes(msg.payload), datetime.now(UTC))
        except Exception as exc:  # a bug must not kill the network thread
            log.exception("unexpected error on %s", msg.topic)
            self.dead_letters.add(
                DeadLetter(
                    datetime.now(UTC), msg.topic, f"internal error: {exc}", bytes(msg.payload)
                )
            )
