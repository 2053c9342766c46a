"""MQTT connection settings and client factory, shared by the gateway and the simulator."""

from __future__ import annotations

import ssl
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import BaseModel, ConfigDict, Field


class MqttSettings(BaseModel):
    """How to reach the broker.

    ``url`` is ``mqtt://[user:password@]host[:port]`` or ``mqtts://…`` for TLS
    (port 1883 and 8883 by default). ``ca_file`` pins the broker's CA for TLS.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    keepalive_s: int = Field(default=30, ge=5)
    reconnect_min_s: int = Field(default=1, ge=1)
    reconnect_max_s: int = Field(default=60, ge=1)
    #: Several gateways with the same group share the topics' messages (each message to
    #: one of them): ``$share/<group>/<topic>`` subscriptions (MQTT 5; Mosquitto ≥ 1.6 also
    #: honours them from MQTT 3.1.1 clients like ours).
    share_group: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")

    def subscription(self, topic: str) -> str:
        """What to subscribe to for ``topic``: itself, or its shared form."""
        return f"$share/{self.share_group}/{topic}" if self.share_group else topic

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp"):
            raise ValueError(f"MQTT url must start with mqtt:// or mqtts://, got {self.url!r}")
        return parts.port or (8883 if self.tls else 1883)

    def credentials(self) -> tuple[str | None, str | None]:
        parts = urlsplit(self.url)
        user = self.username or (unquote(parts.username) if parts.username else None)
        password = self.password or (unquote(parts.password) if parts.password else None)
        return user, password


def make_client(settings: MqttSettings, client_id: str, persistent: bool) -> mqtt.Client:
    """A paho client (callback API v2) configured but not connected.

    ``persistent`` asks the broker to keep the session (subscriptions and queued
    QoS 1 messages) while the client is away: MQTT 3.1.1 with ``clean_session=False``,
    which requires a stable ``client_id``.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=not persistent,
        protocol=mqtt.MQTTv311,
    )
    user, password = settings.credentials()
    if user:
        client.username_pw_set(user, password)
    if settings.tls:
        context = ssl.create_default_context(cafile=settings.ca_file)
        client.tls_set_context(context)
    client.reconnect_delay_set(settings.reconnect_min_s, settings.reconnect_max_s)
    # Many QoS 1 messages can be in flight on a fast link; paho's default of 20
    # would throttle the simulator and the benchmarks.
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    return client
