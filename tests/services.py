"""Real services for the tests: a Mosquitto and an InfluxDB 1.x of their own, on free
loopback ports, with their own data directories; stopped at the end of the session."""

from __future__ import annotations

import getpass
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

# One set of local-service helpers for the tests and the bench.
from microville.bench.services import binary as _binary
from microville.bench.services import free_port, influxdb_config
from microville.bench.services import stop as _stop
from microville.bench.services import wait_port as _wait_port

ROOT = Path(__file__).resolve().parent.parent
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


@contextmanager
def running_influxdb(work: Path, max_row_limit: int = 0) -> Iterator[str]:
    """Start an InfluxDB 1.x with its own config, data dir and port; yield its URL.

    ``max_row_limit`` > 0 makes a server that cuts longer answers (``"partial": true``)."""
    http_port, rpc_port = free_port(), free_port()
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
