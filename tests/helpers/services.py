"""Real services for the tests: a Mosquitto and an InfluxDB 1.x of their own, on free
loopback ports, with their own data directories; stopped at the end of the session."""

from __future__ import annotations

import getpass
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

# One set of local-service helpers for the tests and the bench.
from bench.services import binary as _binary
from bench.services import free_port, influxdb_config
from bench.services import stop as _stop
from bench.services import wait_port as _wait_port

ROOT = Path(__file__).resolve().parents[2]
PROJECT_MOSQUITTO_CONF = ROOT / "deploy" / "mosquitto" / "mosquitto.conf"


def mosquitto_test_config(
    port: int,
    data_dir: Path,
    password_file: Path | None = None,
    tls: tuple[Path, Path] | None = None,
) -> str:
    """The project's broker settings with a loopback test listener; anonymous unless a
    password file is given; TLS with ``(certfile, keyfile)`` if given."""
    replaced = (
        "listener",
        "allow_anonymous",
        "password_file",
        "acl_file",
        "persistence_location",
        "log_dest",
        # The shipped listeners' own settings (TLS, accounts per listener, client ids
        # bound to usernames): running_shipped_broker runs them as they are.
        "per_listener_settings",
        "use_username_as_clientid",
        "certfile",
        "keyfile",
        "tls_version",
    )
    keep = [
        line
        for line in PROJECT_MOSQUITTO_CONF.read_text().splitlines()
        if not line.strip() or line.split(maxsplit=1)[0] not in replaced
    ]
    keep += [
        f"listener {port} 127.0.0.1",
        f"persistence_location {data_dir}/",
        "log_dest stderr",
        # Run as root, Mosquitto drops to user "mosquitto", which cannot read the test's
        # private temporary directory; keep the current user instead.
        f"user {getpass.getuser()}",
    ]
    if password_file is None:
        keep.append("allow_anonymous true")
    else:
        keep += ["allow_anonymous false", f"password_file {password_file}"]
    if tls is not None:
        keep += [f"certfile {tls[0]}", f"keyfile {tls[1]}"]
    return "\n".join(keep) + "\n"


@contextmanager
def running_mosquitto(
    work: Path,
    port: int | None = None,
    users: dict[str, str] | None = None,
    tls: tuple[Path, Path] | None = None,
) -> Iterator[int]:
    """Start a Mosquitto with the project's config; yield its port.

    ``users`` turns authentication on (a password file made with mosquitto_passwd);
    ``tls`` is ``(certfile, keyfile)`` for an mqtts listener.
    """
    port = port or free_port()
    work.mkdir(parents=True, exist_ok=True)
    password_file = None
    if users:
        password_file = work / "passwords"
        password_file.write_text("")
        for user, password in users.items():
            passwd = [_binary("mosquitto_passwd"), "-b", str(password_file), user, password]
            subprocess.run(passwd, check=True)
    conf = work / "mosquitto.conf"
    conf.write_text(mosquitto_test_config(port, work, password_file, tls))
    log = work / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([_binary("mosquitto"), "-c", str(conf)], stdout=out, stderr=out)
    try:
        _wait_port(port, proc, log)
        yield port
    finally:
        _stop(proc)


ENTRYPOINT = ROOT / "deploy" / "mosquitto" / "entrypoint.sh"
SHIPPED_PORTS = {"internal": 1883, "devices": 8883}


@dataclass(frozen=True)
class ShippedBroker:
    """A broker started by the shipped entrypoint on the shipped configuration."""

    home: Path
    internal_port: int  # plaintext, the stack's account (the compose network in prod)
    devices_port: int  # TLS, the devices' accounts
    proc: subprocess.Popen[bytes]

    @property
    def ca_file(self) -> Path:
        return self.home / "certs" / "ca.crt"

    @property
    def log(self) -> str:
        return (self.home / "mosquitto.log").read_text(errors="replace")


def shipped_broker_env(**env: str) -> dict[str, str]:
    """The environment docker-compose.yml gives the broker, with test secrets."""
    base = {
        "MQTT_USERNAME": "stack",
        "MQTT_PASSWORD": "stack-secret",
        "MQTT_DEVICES": "pv:pv-secret:microville112/pv linky:linky-secret:microville112/linky",
    }
    return {**base, **env}


def run_shipped_entrypoint(
    home: Path, env: dict[str, str], ports: tuple[int, int] | None = None
) -> subprocess.Popen[bytes]:
    """Run deploy/mosquitto/entrypoint.sh as the container does, on
    deploy/mosquitto/mosquitto.conf with only its /mosquitto/ paths moved under
    ``home``, its listeners on loopback ``ports`` (internal, devices) and the current
    user instead of "mosquitto"; it ends by exec-ing Mosquitto (stdout to the log)."""
    internal, devices = ports or (free_port(), free_port())
    (home / "config").mkdir(parents=True, exist_ok=True)
    text = PROJECT_MOSQUITTO_CONF.read_text().replace("/mosquitto/", f"{home}/")
    text = text.replace(
        f"listener {SHIPPED_PORTS['internal']}\n", f"listener {internal} 127.0.0.1\n"
    )
    text = text.replace(f"listener {SHIPPED_PORTS['devices']}\n", f"listener {devices} 127.0.0.1\n")
    assert text.count("127.0.0.1\n") == 2, "the shipped listeners moved: update this helper"
    (home / "config" / "mosquitto.conf").write_text(text + f"user {getpass.getuser()}\n")
    shell_env = {
        "PATH": f"{os.environ.get('PATH', '')}:/usr/bin:/usr/sbin:/bin",
        "MICROVILLE_MOSQUITTO_HOME": str(home),
        "MICROVILLE_MOSQUITTO_USER": getpass.getuser(),
        **env,
    }
    log = home / "mosquitto.log"
    with log.open("ab") as out:
        return subprocess.Popen(
            ["sh", str(ENTRYPOINT)], env=shell_env, stdout=out, stderr=subprocess.STDOUT
        )


@contextmanager
def running_shipped_broker(
    home: Path, env: dict[str, str] | None = None, ports: tuple[int, int] | None = None
) -> Iterator[ShippedBroker]:
    """The shipped broker (entrypoint, configuration, ACL, accounts, TLS) on loopback;
    ``env`` as docker-compose.yml passes it (default :func:`shipped_broker_env`)."""
    internal, devices = ports or (free_port(), free_port())
    proc = run_shipped_entrypoint(home, env or shipped_broker_env(), (internal, devices))
    try:
        log = home / "mosquitto.log"
        _wait_port(internal, proc, log)
        _wait_port(devices, proc, log)
        yield ShippedBroker(home, internal, devices, proc)
    finally:
        _stop(proc)


@contextmanager
def running_influxdb(
    work: Path, max_row_limit: int = 0, http_port: int | None = None
) -> Iterator[str]:
    """Start an InfluxDB 1.x with its own config, data dir and port; yield its URL.

    ``max_row_limit`` > 0 makes a server that cuts longer answers (``"partial": true``);
    ``http_port`` one that a client already points at (a store coming back)."""
    http_port, rpc_port = http_port or free_port(), free_port()
    work.mkdir(parents=True, exist_ok=True)
    conf = work / "influxdb.conf"
    conf.write_text(influxdb_config(work, http_port, rpc_port, max_row_limit=max_row_limit))
    log = work / "influxd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [_binary("influxd"), "run", "-config", str(conf)], stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{http_port}"
    try:
        _wait_port(http_port, proc, log)
        deadline = time.monotonic() + 20
        while httpx.get(f"{url}/ping").status_code != 204:
            if time.monotonic() > deadline:
                raise RuntimeError("InfluxDB does not answer /ping")
            time.sleep(0.1)
        yield url
    finally:
        _stop(proc)


def self_signed_certificate(work: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with openssl; the cert is its own CA."""
    cert, key = work / "broker.crt", work / "broker.key"
    subprocess.run(
        [
            _binary("openssl"),
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
