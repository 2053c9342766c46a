"""Hostile payloads: the decoders and the router never crash and never let a bad value
through (hypothesis, in process); over the real broker, thousands of hostile messages
interleaved with good ones leave the gateway up, every good reading stored, every bad
message in the dead-letter log with its reason, and the gateway's memory bounded."""

from __future__ import annotations

import base64
import json
import math
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers.fault_bench import T0, GatewayProcess, Publisher, assert_all_stored
from helpers.services import running_mosquitto
from helpers.support import SITE_S1, wait_until
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.reading_checks import EARLIEST, LATEST, MAX_ABS_VALUE, MAX_AHEAD
from domain.site import parse_sites
from gateway.sources.mqtt.decoders import MAX_PAYLOAD_BYTES
from gateway.sources.mqtt.router import Router
from stores import open_store

CONFIG = (
    SITE_S1
    + """
[[sites.meters]]
id = "a"
role = "submeter"
use = "other"
source = { topic = "fault/a", format = "senml", name = "energy" }

[[sites.meters]]
id = "b"
role = "submeter"
use = "other"
source = { topic = "fault/b", format = "json", field = "aenergy.total", time_field = "ts" }

[[sites.meters]]
id = "c"
role = "submeter"
use = "other"
source = { topic = "fault/c", format = "number" }
"""
)
TOPICS = ("fault/a", "fault/b", "fault/c")
NOW = datetime(2026, 11, 1, tzinfo=UTC)


# --- in process: any bytes, any JSON ----------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                ["n", "v", "t", "bt", "bn", "u", "bu", "bv", "s", "ts", "aenergy", "total", "x"]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=30,
)
senml_records = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "n": st.sampled_from(["energy", "", "x"]) | st.integers(),
            "bn": st.sampled_from(["", "en"]) | st.none(),
            "v": st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.text(),
            "t": st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**20), 10**20),
            "bt": st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**20), 10**20),
            "u": st.sampled_from(["Wh", "kWh", "W", "J", "furlong", ""]) | st.integers(),
            "bv": st.floats(allow_nan=True, allow_infinity=True),
        },
    ),
    max_size=4,
)
shelly_objects = st.fixed_dictionaries(
    {},
    optional={
        "aenergy": st.fixed_dictionaries({}, optional={"total": json_values}) | json_values,
        "ts": json_values
        | st.integers(-(10**15), 10**15)
        | st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
    },
)


def _assert_routed_safely(router: Router, topic: str, payload: bytes) -> None:
    routed = router.route(topic, payload, NOW)  # must not raise
    assert routed.readings or routed.rejects, "a message gave neither a reading nor a reason"
    for reading in routed.readings:
        assert math.isfinite(reading.value) and 0 <= reading.value <= MAX_ABS_VALUE
        assert EARLIEST <= reading.time < LATEST and reading.time <= NOW + MAX_AHEAD
    for reason in routed.rejects:
        assert reason.strip()


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=300), topic=st.sampled_from([*TOPICS, "fault/unknown"]))
def test_any_bytes_are_routed_or_rejected_never_crash(payload: bytes, topic: str) -> None:
    _assert_routed_safely(Router(parse_sites(CONFIG)), topic, payload)


@settings(max_examples=300, deadline=None)
@given(
    value=json_values | senml_records | shelly_objects,
    topic=st.sampled_from(TOPICS),
)
def test_any_json_is_routed_or_rejected_never_crash(value: object, topic: str) -> None:
    payload = json.dumps(value, allow_nan=True).encode()  # NaN/Infinity literals too
    _assert_routed_safely(Router(parse_sites(CONFIG)), topic, payload)


# --- over the real broker -------------------------------------------------------------


def good(i: int) -> tuple[str, bytes]:
    """Good message ``i``: a reading at T0 + i minutes, index 10·i Wh, of meter a (SenML)
    or b (Shelly-style JSON)."""
    t = (T0 + timedelta(minutes=i)).timestamp()
    if i % 2 == 0:
        return "fault/a", json.dumps([{"n": "energy", "t": t, "v": 10 * i}]).encode()
    return "fault/b", json.dumps({"aenergy": {"total": 10 * i}, "ts": t}).encode()


def hostile(rng: random.Random, i: int) -> tuple[str, bytes]:
    """A bad message for one of the configured topics (never a reading)."""
    t = (T0 + timedelta(minutes=i)).timestamp()
    cases = [
        ("fault/a", bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 200)))),
        ("fault/b", bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 200)))),
        ("fault/c", b"\xff" + bytes(rng.getrandbits(8) for _ in range(rng.randrange(50)))),
        ("fault/a", json.dumps([{"n": "energy", "t": t, "v": 1e300}]).encode()),
        ("fault/a", b'[{"n": "energy", "v": ' + b"9" * rng.randrange(310, 5000) + b"}]"),
        ("fault/b", json.dumps({"aenergy": {"total": 1e20}, "ts": t}).encode()),
        ("fault/c", b"1" + b"0" * 400),
        ("fault/a", b"[" * rng.randrange(20, 20000) + b"]" * 3),
        ("fault/b", (b'{"aenergy": ' * 40) + b"1" + b"}" * 40),
        ("fault/a", b'[{"n": "energy", "v": NaN}]'),
        ("fault/a", b'[{"n": "energy", "t": Infinity, "v": 1}]'),
        ("fault/b", b'{"aenergy": {"total": -Infinity}, "ts": 1}'),
        ("fault/c", rng.choice([b"nan", b"inf", b"-inf", b"1e999", b"0x10", b"1_000"])),
        ("fault/a", json.dumps([{"n": "energy", "u": "W", "t": t, "v": 5}]).encode()),
        ("fault/a", json.dumps([{"n": "energy", "u": "furlong", "t": t, "v": 5}]).encode()),
        (
            "fault/a",
            json.dumps([{"n": "energy", "t": 4.2e9 + rng.random() * 1e12, "v": 1}]).encode(),
        ),
        ("fault/a", json.dumps([{"n": "energy", "t": 9e8, "v": 1}]).encode()),  # 1998
        ("fault/a", json.dumps([{"n": "energy", "t": -1e300, "v": 1}]).encode()),
        (
            "fault/b",
            json.dumps({"aenergy": {"total": 5}, "ts": "9999-12-31T23:59:59+00:00"}).encode(),
        ),
        (
            "fault/b",
            json.dumps({"aenergy": {"total": 5}, "ts": "0001-01-01T00:00:00-05:00"}).encode(),
        ),
        ("fault/b", json.dumps({"aenergy": {"total": 5}, "ts": "2026-10-01T00:00:00"}).encode()),
        ("fault/a", json.dumps([{"n": "energy", "t": t, "v": -rng.randrange(1, 10**6)}]).encode()),
        ("fault/c", b"-42"),
        ("fault/b", json.dumps({"aenergy": {"total": "123"}, "ts": t}).encode()),
        ("fault/b", json.dumps({"ts": t}).encode()),
        ("fault/a", json.dumps({"n": "energy", "v": 1}).encode()),
        ("fault/a", json.dumps([{"n": 5, "v": 1}]).encode()),
        ("fault/a", json.dumps([{"bn": ["x"], "v": 1}]).encode()),
        ("fault/b", b"[]"),
        ("fault/c", b""),
    ]
    topic, payload = cases[i % len(cases)]
    if i % 5 == 0:
        # Oversized for the gateway (> MAX_PAYLOAD_BYTES) but under the shipped broker's
        # max_packet_size, which disconnects a larger sender (test_shipped_broker).
        size = rng.randrange(MAX_PAYLOAD_BYTES + 1, MAX_PAYLOAD_BYTES + 512)
        topic = "fault/b"
        payload = json.dumps({"aenergy": {"total": 1}, "ts": t, "pad": "x" * size}).encode()
    return topic, payload


def _dead_letters(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _payload_of(letter: dict[str, object]) -> bytes:
    if "payload_base64" in letter:
        return base64.b64decode(str(letter["payload_base64"]))
    return str(letter["payload"]).encode("utf-8")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.e2e
def test_thousands_of_hostile_payloads_between_good_ones(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path}/readings.db"
    rng = random.Random(112)
    with running_mosquitto(tmp_path / "broker") as port:
        url = f"mqtt://127.0.0.1:{port}"
        gw = GatewayProcess(tmp_path / "gw", CONFIG, store_url, url)
        gw.start()
        pub = Publisher(url)
        store = open_store(store_url)
        try:
            gw.wait_source_up("mqtt")
            # Warm up (imports, first writes), then measure the memory the flood adds.
            for i in range(0, 40):
                pub.publish(i, *good(i))
            assert_all_stored(store, set(pub.sent), gw)
            assert gw.proc is not None
            rss_before = _rss_kib(gw.proc.pid)

            bad: Counter[tuple[str, bytes]] = Counter()
            unknown = 0
            oversized_bytes = 0
            n_bad = 0
            for i in range(40, 440):  # 400 good messages, 3,200 hostile ones between them
                pub.publish(i, *good(i))
                for _ in range(8):
                    n_bad += 1
                    if n_bad % 50 == 0:  # nobody subscribed: the broker drops it
                        pub.publish(-1, f"fault/unknown/{n_bad}", b"1")
                        unknown += 1
                        continue
                    topic, payload = hostile(rng, n_bad)
                    pub.publish(-1, topic, payload)
                    bad[(topic, payload[:4096])] += 1
                    oversized_bytes += len(payload) if len(payload) > 4096 else 0
            pub.sent.discard(-1)

            assert_all_stored(store, pub.sent, gw)  # every good reading, each once
            dead = tmp_path / "gw" / "dead-letters.jsonl"
            total_bad = sum(bad.values())
            assert wait_until(lambda: len(_dead_letters(dead)) >= total_bad, 60)
            letters = _dead_letters(dead)
            assert all(str(letter["reason"]).strip() for letter in letters)
            logged = Counter((str(x["origin"]), _payload_of(x)) for x in letters)
            missing = bad - logged
            assert not missing, f"{sum(missing.values())} bad messages not dead-lettered"
            assert sum(logged.values()) <= total_bad + 5  # a few packs give two reasons
            kinds = {str(x["kind"]) for x in letters}
            for expected in (
                "oversized payload",
                "not JSON",
                "JSON nested deeper than N levels",
                "payload is not UTF-8 text",
                "negative index",
                "time out of range",
                "value out of range",
                "non-finite number NaN in JSON",
                "not a bare number",
            ):
                assert expected in kinds, sorted(kinds)

            # Still up, nothing stored for the number meter (only bad ones came),
            # nothing from the unknown topics, and memory bounded.
            metrics = gw.metrics()
            assert gw.proc.poll() is None and metrics
            assert metrics['messages_received_total{source="mqtt"}'] == 40 + 400 + total_bad
            assert store.last_seen("s1", ["c"], "energy") == {"c": None}
            assert unknown > 0
            growth_mib = (_rss_kib(gw.proc.pid) - rss_before) / 1024
            assert oversized_bytes > 30 * 2**20  # the flood carried more than the bound
            assert growth_mib < 20, f"RSS grew {growth_mib:.0f} MiB"
        finally:
            pub.close()
            gw.stop()
            store.close()


@pytest.mark.parametrize("extra_levels, accepted", [(0, True), (1, False)])
def test_json_depth_limit_is_exact(extra_levels: int, accepted: bool) -> None:
    """A JSON value nested MAX_JSON_DEPTH deep parses; one level more is refused."""
    from gateway.sources.mqtt.decoders import MAX_JSON_DEPTH, DecodeError, decode_json

    depth = MAX_JSON_DEPTH + extra_levels
    # {"v": 5, "x": [[...]]} : the object is level 1, the lists the rest.
    payload = json.dumps({"v": 5, "x": json.loads("[" * (depth - 1) + "]" * (depth - 1))})
    received = datetime(2026, 10, 1, tzinfo=UTC)
    if accepted:
        assert decode_json(payload.encode(), received, None)
    else:
        with pytest.raises(DecodeError, match="nested deeper"):
            decode_json(payload.encode(), received, None)


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    from gateway.sources.mqtt.decoders import decode_json

    payload = json.dumps({"v": 5, "note": "[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{"}).encode()
    assert decode_json(payload, datetime(2026, 10, 1, tzinfo=UTC), None)
