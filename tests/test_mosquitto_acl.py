"""The shipped broker's access control: the ACL block of deploy/mosquitto/entrypoint.sh,
run as it is, on a real Mosquitto with the project's configuration."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from services import _binary, _stop, _wait_port, free_port, mosquitto_test_config
from support import wait_until

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "deploy" / "mosquitto" / "entrypoint.sh"


def _acl_block() -> str:
    text = ENTRYPOINT.read_text(encoding="utf-8")
    block = text.split("# --- acl begin", 1)[1].split("# --- acl end", 1)[0]
    return block.split("\n", 1)[1]  # from the line after the marker


def _client(port: int, user: str, password: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{user}-{time.monotonic_ns()}")
    client.username_pw_set(user, password)
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert wait_until(client.is_connected, 10), f"{user} could not connect"
    return client


def _shell_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{os.environ.get('PATH', '')}:/usr/bin:/usr/sbin",
        "MQTT_USERNAME": "stack",
        "MQTT_PASSWORD": "s",
        "MQTT_DEVICES": "pv:pv-secret:microville112/pv linky:linky-secret:microville112/linky",
        "pwfile": str(tmp_path / "passwords"),
        "aclfile": str(tmp_path / "acl"),
    }


@contextlib.contextmanager
def _shipped_broker(tmp_path: Path) -> Iterator[int]:
    """A real Mosquitto with the project's configuration and the password file and ACL
    written by the entrypoint's own block; yields its port."""
    pwfile, aclfile = tmp_path / "passwords", tmp_path / "acl"
    subprocess.run([_binary("mosquitto_passwd"), "-c", "-b", str(pwfile), "stack", "s"], check=True)
    subprocess.run(["sh", "-eu", "-c", _acl_block()], env=_shell_env(tmp_path), check=True)
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(mosquitto_test_config(port, tmp_path, pwfile) + f"acl_file {aclfile}\n")
    log = tmp_path / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([_binary("mosquitto"), "-c", str(conf)], stdout=out, stderr=out)
    try:
        _wait_port(port, proc, log)
        yield port
    finally:
        _stop(proc)


def test_compose_healthcheck_passes_on_the_shipped_broker(tmp_path: Path) -> None:
    """docker-compose.yml's broker healthcheck, run as the container's shell runs it
    (``$$`` reaches it as ``$``), against the broker the entrypoint configures: the
    gateway and the service wait for it, so it must pass on a healthy broker."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    kind, command = compose["services"]["mosquitto"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    command = command.replace("$$", "$")
    with _shipped_broker(tmp_path) as port:
        command = command.replace("-p 1883", f"-p {port}")
        assert f"-p {port}" in command
        env = {**_shell_env(tmp_path), "PATH": f"{os.environ.get('PATH', '')}:/usr/bin"}
        healthy = subprocess.run(["sh", "-c", command], env=env, capture_output=True)
        assert healthy.returncode == 0, healthy.stderr
        # And it can fail: a wrong password makes the broker unhealthy.
        env["MQTT_PASSWORD"] = "wrong"
        refused = subprocess.run(["sh", "-c", command], env=env, capture_output=True)
        assert refused.returncode != 0


def test_each_device_may_publish_only_on_its_own_topic(tmp_path: Path) -> None:
    with _shipped_broker(tmp_path) as port:
        received: list[tuple[str, bytes]] = []
        gateway = _client(port, "stack", "s")
        gateway.on_message = lambda _c, _u, m: received.append((m.topic, bytes(m.payload)))
        gateway.subscribe("microville112/#", qos=1)
        time.sleep(0.3)  # SUBACK

        pv = _client(port, "pv", "pv-secret")
        for topic, payload in [
            ("microville112/pv", b"own topic"),
            ("microville112/pv/status", b"own subtopic"),
        ]:
            pv.publish(topic, payload, qos=1).wait_for_publish(5)
        # Another device's topic: dropped. Mosquitto may also close the offender's link
        # (seen: "Bad socket read/write"), so it publishes on a connection of its own.
        forger = _client(port, "pv", "pv-secret")
        with contextlib.suppress(RuntimeError, ValueError):
            forger.publish("microville112/linky", b"forged", qos=1).wait_for_publish(2)
        linky = _client(port, "linky", "linky-secret")
        linky.publish("microville112/linky", b"linky's own", qos=1).wait_for_publish(5)

        assert wait_until(lambda: len(received) >= 3)
        time.sleep(0.3)  # a forged message, if it got through, would be here by now
        assert sorted(received) == sorted(
            [
                ("microville112/pv", b"own topic"),
                ("microville112/pv/status", b"own subtopic"),
                ("microville112/linky", b"linky's own"),
            ]
        )
        # A wrong password is refused.
        intruder = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="intruder")
        intruder.username_pw_set("pv", "guess")
        intruder.connect("127.0.0.1", port)
        intruder.loop_start()
        time.sleep(0.5)
        assert not intruder.is_connected()
        for client in (gateway, pv, forger, linky, intruder):
            client.loop_stop()
            client.disconnect()
