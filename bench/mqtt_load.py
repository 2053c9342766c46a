"""MQTT side of the ingestion bench: a consumer's persistent session made ahead, the
backlog published at QoS 1 while the consumer is away, and the ceiling subscriber that
does nothing but count."""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.drain import Drain


def _client(client_id: str, persistent: bool) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=not persistent,
        protocol=mqtt.MQTTv311,
    )
    # No in-flight window: paho looks for the next queued message on every PUBACK by
    # scanning all of them, quadratic on a backlog of 200,000 (hours instead of seconds).
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    return client


def _connect(client: mqtt.Client, port: int, timeout_s: float = 10) -> None:
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    if not connected.wait(timeout_s):
        raise RuntimeError(f"no CONNACK from the broker on port {port}")


def prepare_session(port: int, client_id: str, topics: list[str]) -> None:
    """Make ``client_id``'s persistent session hold QoS 1 subscriptions to ``topics``,
    so that the broker queues what is published before that consumer starts."""
    client = _client(client_id, persistent=True)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    _connect(client, port)
    client.subscribe([(t, 1) for t in topics])
    if not subscribed.wait(10):
        raise RuntimeError("no SUBACK from the broker")
    client.disconnect()
    client.loop_stop()


def forget_session(port: int, client_id: str) -> None:
    """Drop ``client_id``'s session so that it queues nothing from later runs."""
    client = _client(client_id, persistent=False)
    _connect(client, port)
    client.disconnect()
    client.loop_stop()


def publish(port: int, messages: list[tuple[str, bytes]], timeout_s: float = 600) -> float:
    """Publish at QoS 1 and wait for every PUBACK; the elapsed seconds."""
    client = _client("bench-publisher", persistent=False)
    acked = 0
    done = threading.Event()
    lock = threading.Lock()
    # At most `window` messages awaiting their PUBACK, as a device's client would keep:
    # a loop that hands paho 100,000 messages at once stalls it.
    window = threading.BoundedSemaphore(2000)

    def on_publish(*_: Any) -> None:
        nonlocal acked
        window.release()
        with lock:
            acked += 1
            if acked == len(messages):
                done.set()

    client.on_publish = on_publish
    _connect(client, port)
    start = time.monotonic()
    for topic, payload in messages:
        if not window.acquire(timeout=timeout_s):
            raise RuntimeError(f"no PUBACK for {timeout_s}s after {acked} messages")
        client.publish(topic, payload, qos=1)
    if messages and not done.wait(timeout_s):
        raise RuntimeError(f"only {acked} of {len(messages)} publishes acknowledged")
    elapsed = time.monotonic() - start
    client.disconnect()
    client.loop_stop()
    return elapsed


def ceiling_drain(port: int, client_id: str, expected_messages: int, stall_s: float) -> Drain:
    """Resume ``client_id``'s session with a paho subscriber that only counts messages."""
    client = _client(client_id, persistent=True)
    received = 0
    connected_at: float | None = None
    done_at: float | None = None
    done = threading.Event()

    def on_connect(*_: Any) -> None:
        nonlocal connected_at
        connected_at = time.monotonic()

    def on_message(*_: Any) -> None:
        nonlocal received, done_at
        received += 1
        if received == expected_messages:
            done_at = time.monotonic()
            done.set()

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    last = -1
    while not done.wait(stall_s):
        if received == last:
            break  # no progress for stall_s: what is missing is lost
        last = received
    client.disconnect()
    client.loop_stop()
    drain = Drain(expected=expected_messages, stored=received, messages=received)
    if done_at is not None and connected_at is not None:
        drain.elapsed_s = done_at - connected_at
    return drain
