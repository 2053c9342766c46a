"""The shipped broker's access control: deploy/mosquitto/entrypoint.sh run as it is, on
the shipped configuration (tests/helpers/services.py running_shipped_broker)."""

from __future__ import annotations

import contextlib
import os
import ssl
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml
from helpers.services import ShippedBroker, running_shipped_broker, shipped_broker_env
from helpers.support import wait_until
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[2]


def _client(broker: ShippedBroker, user: str, password: str) -> mqtt.Client:
    """The stack's account on the internal listener, a device on the TLS one."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{user}-{time.monotonic_ns()}")
    client.username_pw_set(user, password)
    if user == "stack":
        client.connect("127.0.0.1", broker.internal_port)
    else:
        client.tls_set_context(ssl.create_default_context(cafile=str(broker.ca_file)))
        client.connect("127.0.0.1", broker.devices_port)
    client.loop_start()
    assert wait_until(client.is_connected, 10), f"{user} could not connect"
    return client


def test_compose_healthcheck_passes_on_the_shipped_broker(tmp_path: Path) -> None:
    """docker-compose.yml's broker healthcheck, run as the container's shell runs it
    (``$$`` reaches it as ``$``), against the broker the entrypoint configures: the
    gateway and the service wait for it, so it must pass on a healthy broker."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    kind, command = compose["services"]["mosquitto"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    command = command.replace("$$", "$")
    env = {**os.environ, **shipped_broker_env(), "PATH": f"{os.environ.get('PATH', '')}:/usr/bin"}
    with running_shipped_broker(tmp_path) as broker:
        command = command.replace("-p 1883", f"-p {broker.internal_port}")
        assert f"-p {broker.internal_port}" in command
        healthy = subprocess.run(["sh", "-c", command], env=env, capture_output=True)
        assert healthy.returncode == 0, healthy.stderr
        # And it can fail: a wrong password makes the broker unhealthy.
        env["MQTT_PASSWORD"] = "wrong"
        refused = subprocess.run(["sh", "-c", command], env=env, capture_output=True)
        assert refused.returncode != 0


def test_each_device_may_publish_only_on_its_own_topic(tmp_path: Path) -> None:
    with running_shipped_broker(tmp_path) as broker:
        received: list[tuple[str, bytes]] = []
        subscribed: list[object] = []
        gateway = _client(broker, "stack", "stack-secret")
        gateway.on_message = lambda _c, _u, m: received.append((m.topic, bytes(m.payload)))
        gateway.on_subscribe = lambda *args: subscribed.append(args)
        gateway.subscribe("microville112/#", qos=1)
        assert wait_until(lambda: bool(subscribed))

        pv = _client(broker, "pv", "pv-secret")
        pv.publish("microville112/pv", b"own topic", qos=1).wait_for_publish(5)
        # Another device's topic, or a subtopic of its own: dropped. Mosquitto may also
        # close the offender's link, so each forgery goes on a connection of its own.
        for forged in ("microville112/linky", "microville112/pv/status"):
            forger = _client(broker, "pv", "pv-secret")
            with contextlib.suppress(RuntimeError, ValueError):
                forger.publish(forged, b"forged", qos=1).wait_for_publish(2)
            forger.disconnect()
            forger.loop_stop()
        linky = _client(broker, "linky", "linky-secret")
        linky.publish("microville112/linky", b"linky's own", qos=1).wait_for_publish(5)

        assert wait_until(lambda: len(received) >= 2)
        time.sleep(0.3)  # a forged message, if it got through, would be here by now
        assert sorted(received) == sorted(
            [("microville112/pv", b"own topic"), ("microville112/linky", b"linky's own")]
        )
        # A wrong password is refused.
        intruder = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="intruder")
        intruder.username_pw_set("pv", "guess")
        intruder.tls_set_context(ssl.create_default_context(cafile=str(broker.ca_file)))
        intruder.connect("127.0.0.1", broker.devices_port)
        intruder.loop_start()
        time.sleep(0.5)
        assert not intruder.is_connected()
        for client in (gateway, pv, linky, intruder):
            client.loop_stop()
            client.disconnect()


def test_a_topic_with_a_wildcard_is_allowed_only_when_configured(tmp_path: Path) -> None:
    """A device whose MQTT_DEVICES topic ends in "/#" may publish under it."""
    env = shipped_broker_env(MQTT_DEVICES="pv:pv-secret:microville112/pv/#")
    with running_shipped_broker(tmp_path, env) as broker:
        received: list[str] = []
        subscribed: list[object] = []
        gateway = _client(broker, "stack", "stack-secret")
        gateway.on_message = lambda _c, _u, m: received.append(m.topic)
        gateway.on_subscribe = lambda *args: subscribed.append(args)
        gateway.subscribe("microville112/#", qos=1)
        assert wait_until(lambda: bool(subscribed))
        pv = _client(broker, "pv", "pv-secret")
        pv.publish("microville112/pv/status", b"1", qos=1).wait_for_publish(5)
        assert wait_until(lambda: received == ["microville112/pv/status"])
        for client in (gateway, pv):
            client.loop_stop()
            client.disconnect()
