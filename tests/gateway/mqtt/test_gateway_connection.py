"""Connection behaviour against real brokers: reconnect, credentials, TLS."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from helpers.services import free_port, running_mosquitto, self_signed_certificate
from helpers.support import SITE_S1, wait_until
from paho.mqtt.enums import CallbackAPIVersion

from domain.site import parse_sites
from domain.store import ReadingStore
from gateway.gateway import Gateway
from gateway.sources.registry import SourceOptions
from microville.mqtt import MqttSettings, make_client

CONFIG = (
    SITE_S1
    + """
[[sites.meters]]
id = "pv"
role = "production"
source = { topic = "t/pv", format = "senml", name = "pv:energy" }
"""
)
T = datetime(2026, 10, 1, tzinfo=UTC)


def _publish(settings: MqttSettings, minutes: range) -> None:
    client = make_client(settings, client_id=f"pub-{time.monotonic_ns()}", persistent=False)
    client.connect(settings.host, settings.port)
    client.loop_start()
    for m in minutes:
        payload = [
            {"bn": "pv:", "bt": (T + timedelta(minutes=m)).timestamp(), "n": "energy", "v": m}
        ]
        client.publish("t/pv", json.dumps(payload), qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def test_gateway_reconnects_after_the_broker_restarts(tmp_path: Path, store: ReadingStore) -> None:
    port = free_port()
    settings = MqttSettings(url=f"mqtt://127.0.0.1:{port}", reconnect_min_s=1, reconnect_max_s=2)
    with running_mosquitto(tmp_path / "b1", port=port):
        gw = Gateway(
            parse_sites(CONFIG), store, SourceOptions(settings, "gw-restart"), batch_delay_s=0.1
        )
        gw.start()
        assert gw.wait_ready(10)
        _publish(settings, range(0, 10))
        assert wait_until(lambda: store.count("s1") == 10)
    try:
        assert wait_until(lambda: not gw.ready)
        # Same port, same persistence directory: the broker comes back.
        with running_mosquitto(tmp_path / "b1", port=port):
            assert gw.wait_ready(15), "gateway did not reconnect"
            _publish(settings, range(10, 20))
            assert wait_until(lambda: store.count("s1") == 20)
    finally:
        gw.stop()


def test_credentials_are_required_and_used(tmp_path: Path, store: ReadingStore) -> None:
    with running_mosquitto(tmp_path, users={"gateway": "s3cret pass"}) as port:
        anonymous = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="anon")
        refused = anonymous.connect("127.0.0.1", port)  # TCP succeeds, CONNACK refuses
        anonymous.loop_start()
        time.sleep(0.5)
        assert refused == 0 and not anonymous.is_connected()
        anonymous.loop_stop()

        # Credentials in the URL, percent-encoded.
        settings = MqttSettings(url=f"mqtt://gateway:s3cret%20pass@127.0.0.1:{port}")
        gw = Gateway(
            parse_sites(CONFIG), store, SourceOptions(settings, "gw-auth"), batch_delay_s=0.1
        )
        gw.start()
        try:
            assert gw.wait_ready(10)
            _publish(settings, range(0, 3))
            assert wait_until(lambda: store.count("s1") == 3)
        finally:
            gw.stop()


def test_tls_with_a_pinned_ca(tmp_path: Path, store: ReadingStore) -> None:
    cert, key = self_signed_certificate(tmp_path)
    with running_mosquitto(tmp_path, tls=(cert, key)) as port:
        settings = MqttSettings(url=f"mqtts://127.0.0.1:{port}", ca_file=str(cert))
        gw = Gateway(
            parse_sites(CONFIG), store, SourceOptions(settings, "gw-tls"), batch_delay_s=0.1
        )
        gw.start()
        try:
            assert gw.wait_ready(10)
            _publish(settings, range(0, 3))
            assert wait_until(lambda: store.count("s1") == 3)
        finally:
            gw.stop()
        # Without the CA, the broker's certificate is not trusted: no connection.
        untrusted = Gateway(
            parse_sites(CONFIG),
            store,
            SourceOptions(MqttSettings(url=f"mqtts://127.0.0.1:{port}"), "gw-untrusted"),
        )
        untrusted.start()
        try:
            assert not untrusted.wait_ready(3)
        finally:
            untrusted.stop()


class FreezableProxy:
    """A TCP relay to the broker whose current connections can be frozen: the sockets
    stay open but nothing passes any more — a dead link that only a keepalive notices
    (a NAT or a 4G modem dropping its state). New connections pass normally."""

    def __init__(self, upstream_port: int) -> None:
        self.port = free_port()
        self.upstream_port = upstream_port
        self._frozen: set[int] = set()
        self._connections = 0
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def connections(self) -> int:
        return self._connections

    def freeze(self) -> None:
        self._frozen.update(range(self._connections))

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            n = self._connections
            self._connections += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(n, a, b), daemon=True).start()

    def _pump(self, n: int, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if n not in self._frozen:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            if n not in self._frozen:
                sink.close()

    def close(self) -> None:
        self._server.close()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # the link, not the store
def test_a_dead_link_is_noticed_by_keepalive_and_the_subscription_restored(
    tmp_path: Path, store: ReadingStore
) -> None:
    with running_mosquitto(tmp_path / "b") as port:
        broker = MqttSettings(url=f"mqtt://127.0.0.1:{port}")
        proxy = FreezableProxy(port)
        via_proxy = MqttSettings(
            url=f"mqtt://127.0.0.1:{proxy.port}", keepalive_s=5, reconnect_min_s=1,
            reconnect_max_s=2,
        )  # fmt: skip
        gw = Gateway(
            parse_sites(CONFIG), store, SourceOptions(via_proxy, "gw-keepalive"), batch_delay_s=0.1
        )
        gw.start()
        try:
            assert gw.wait_ready(10)
            _publish(broker, range(0, 5))
            assert wait_until(lambda: store.count("s1") == 5)
            proxy.freeze()  # the link dies silently: no FIN, no RST
            _publish(broker, range(5, 15))  # queued by the broker for the gateway's session
            # Keepalive 5 s: no PINGRESP → paho drops the link and reconnects (a new
            # connection through the proxy), resubscribes, and gets the queued messages.
            assert wait_until(lambda: proxy.connections >= 2, 30), "dead link never noticed"
            assert wait_until(lambda: store.count("s1") == 15, 15)
        finally:
            gw.stop()
            proxy.close()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_two_gateways_in_a_share_group_split_the_messages_and_lose_none(
    tmp_path: Path, store: ReadingStore
) -> None:
    """The scale-out path: gateways subscribed as one share group each get a part of the
    messages, and together they store every reading once."""
    with running_mosquitto(tmp_path / "b") as port:
        publisher = MqttSettings(url=f"mqtt://127.0.0.1:{port}")
        shared = MqttSettings(url=f"mqtt://127.0.0.1:{port}", share_group="gateways")
        gateways = [
            Gateway(parse_sites(CONFIG), store, SourceOptions(shared, f"gw-{i}"), batch_delay_s=0.1)
            for i in range(2)
        ]
        for gw in gateways:
            gw.start()
        try:
            assert all(gw.wait_ready(10) for gw in gateways)
            _publish(publisher, range(0, 200))
            assert wait_until(lambda: store.count("s1") == 200, 20)
            received = [gw.received for gw in gateways]
            assert sum(received) == 200 and min(received) > 0, received
        finally:
            for gw in gateways:
                gw.stop()


def test_share_group_is_an_identifier() -> None:
    from pydantic import ValidationError

    assert MqttSettings(share_group="g1").subscription("a/b") == "$share/g1/a/b"
    assert MqttSettings().subscription("a/b") == "a/b"
    for bad in ("a/b", "#", "", "x+y"):
        with pytest.raises(ValidationError, match="share_group"):
            MqttSettings(share_group=bad)


MQTT_LOG = "gateway.sources.mqtt.source"


def _outage_records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == MQTT_LOG and r.levelno == level]


def _retried(caplog: pytest.LogCaptureFixture, times: int) -> bool:
    return len([m for m in _outage_records(caplog, logging.DEBUG) if "still" in m]) >= times


def test_an_unreachable_broker_is_logged_once_per_outage_with_its_cause(
    tmp_path: Path, store: ReadingStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens on the port at start: one warning naming the broker and the
    cause, however many retries; one info once the broker is there."""
    caplog.set_level(logging.DEBUG, logger=MQTT_LOG)
    port = free_port()
    settings = MqttSettings(url=f"mqtt://127.0.0.1:{port}", reconnect_min_s=1, reconnect_max_s=1)
    gw = Gateway(parse_sites(CONFIG), store, SourceOptions(settings, "gw-outage"))
    gw.start()
    try:
        assert wait_until(lambda: _retried(caplog, 2), 30)
        assert _outage_records(caplog, logging.WARNING) == [
            f"MQTT broker 127.0.0.1:{port} unreachable: connection refused; retrying with backoff"
        ]
        with running_mosquitto(tmp_path, port=port):
            assert gw.wait_ready(15)
            assert wait_until(
                lambda: (
                    f"MQTT broker 127.0.0.1:{port} connected again"
                    in _outage_records(caplog, logging.INFO)
                )
            )
    finally:
        gw.stop()


def test_a_tls_ca_mismatch_is_logged_once_with_its_cause(
    tmp_path: Path, store: ReadingStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=MQTT_LOG)
    cert, key = self_signed_certificate(tmp_path)
    (tmp_path / "other").mkdir()
    other_ca, _ = self_signed_certificate(tmp_path / "other")
    with running_mosquitto(tmp_path, tls=(cert, key)) as port:
        settings = MqttSettings(
            url=f"mqtts://127.0.0.1:{port}",
            ca_file=str(other_ca),
            reconnect_min_s=1,
            reconnect_max_s=1,
        )
        gw = Gateway(parse_sites(CONFIG), store, SourceOptions(settings, "gw-wrong-ca"))
        gw.start()
        try:
            assert wait_until(lambda: _retried(caplog, 2), 30)
            (warning,) = _outage_records(caplog, logging.WARNING)
            assert warning.startswith(
                f"MQTT broker 127.0.0.1:{port} unreachable: TLS certificate not trusted"
            )
            assert "MICROVILLE_MQTT_CA_FILE" in warning
            assert not gw.ready
        finally:
            gw.stop()


def _source_up(gw: Gateway) -> float:
    value = gw.metrics.registry.get_sample_value("microville_gateway_source_up", {"source": "mqtt"})
    assert value is not None, "no source_up metric"
    return value


def test_a_gateway_held_back_by_its_writer_is_not_up_and_is_up_again_after(
    tmp_path: Path,
) -> None:
    """F12: with the store down and no buffer, the writer's queue fills and holds paho's
    network thread (no keepalive goes out): ``source_up`` says 0, not a stale 1; once
    the store is back every reading is stored and the source is up again."""
    from helpers.services import running_influxdb

    from gateway.sources.mqtt.source import HELD_BACK_AFTER_S
    from stores.influx import InfluxStore

    influx_port = free_port()
    with running_mosquitto(tmp_path / "broker") as port, ExitStack() as later:
        settings = MqttSettings(url=f"mqtt://127.0.0.1:{port}")
        store = InfluxStore(f"http://127.0.0.1:{influx_port}", "held", create_database=False)
        live: list[InfluxStore] = []

        def store_back() -> InfluxStore:
            # Stopped after the gateway (an ExitStack entered before it); the database
            # made as the gateway's store would have made it.
            if not live:
                influx = running_influxdb(tmp_path / "influx", http_port=influx_port)
                live.append(InfluxStore(later.enter_context(influx), "held"))
            return live[0]

        gw = Gateway(
            parse_sites(CONFIG),
            store,
            SourceOptions(settings, "gw-held"),
            batch_size=5,
            batch_delay_s=0.05,
            max_backoff_s=0.5,
        )
        gw.start()
        publisher = threading.Thread(target=_publish, args=(settings, range(40)))
        try:
            assert gw.wait_ready(10)
            assert _source_up(gw) == 1.0
            publisher.start()  # 40 readings, the writer holds at most 4 batches of 5
            assert wait_until(lambda: _source_up(gw) == 0.0, 5 + HELD_BACK_AFTER_S)
            assert not gw.ready
            # The store comes back on the same port: the writer drains, up again.
            assert wait_until(lambda: store_back().count("s1") == 40, 60)
            publisher.join(30)
            assert wait_until(lambda: _source_up(gw) == 1.0, 10)
        finally:
            # A held writer drains (and so lets the source stop) only into a live store:
            # a failed check above must fail the test, not hang it.
            store_back()
            gw.stop()
            if publisher.is_alive():
                publisher.join(30)
