"""Data-driven decoder tests: one folder per device model, one case per payload.

Layout (``tests/gateway/mqtt/fixtures/<model>/``):

- ``config.toml``: a one-site configuration with the meter(s) of that device;
- ``<case>.payload``: the raw bytes, exactly as the device publishes them;
- ``<case>.expected.json``: the topic and receive time to route with, the expected
  readings (values in the base unit, times in UTC) and one substring per expected
  reject reason.

Adding a device model or a case needs no code: drop the files in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from domain.site import read_sites
from gateway.sources.mqtt.router import Router

DEVICES = Path(__file__).parent / "fixtures"
REQUIRED_MODELS = {"senml-pv-inverter", "linky-senml", "shelly-json", "bare-number"}


@dataclass(frozen=True)
class Case:
    model: str
    name: str
    payload: bytes
    expected: dict[str, Any]


def _cases() -> list[Case]:
    cases = []
    for model_dir in sorted(p for p in DEVICES.iterdir() if p.is_dir()):
        for payload_file in sorted(model_dir.glob("*.payload")):
            name = payload_file.name.removesuffix(".payload")
            expected_file = model_dir / f"{name}.expected.json"
            cases.append(
                Case(
                    model=model_dir.name,
                    name=name,
                    payload=payload_file.read_bytes(),
                    expected=json.loads(expected_file.read_text(encoding="utf-8")),
                )
            )
    return cases


CASES = _cases()


def _router(model: str) -> Router:
    return Router(read_sites(DEVICES / model / "config.toml"))


def test_every_required_model_has_a_config_and_cases() -> None:
    models = {c.model for c in CASES}
    assert models >= REQUIRED_MODELS
    for model in models:
        assert (DEVICES / model / "config.toml").is_file()


def test_every_payload_has_its_expectation_and_back() -> None:
    for model_dir in (p for p in DEVICES.iterdir() if p.is_dir()):
        payloads = {p.name.removesuffix(".payload") for p in model_dir.glob("*.payload")}
        expectations = {
            p.name.removesuffix(".expected.json") for p in model_dir.glob("*.expected.json")
        }
        assert payloads == expectations, model_dir.name


def test_fixture_configs_are_one_site_in_paris() -> None:
    for model in REQUIRED_MODELS:
        config = read_sites(DEVICES / model / "config.toml")
        assert len(config.sites) == 1
        assert config.sites[0].timezone == "Europe/Paris"
        assert config.sites[0].meters


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.model}/{c.name}")
def test_device_case(case: Case) -> None:
    expected = case.expected
    router = _router(case.model)
    site_id = read_sites(DEVICES / case.model / "config.toml").sites[0].id
    received_at = datetime.fromisoformat(expected["received_at"])

    routed = router.route(expected["topic"], case.payload, received_at)

    got = sorted(routed.readings, key=lambda r: r.meter)
    want = sorted(expected["readings"], key=lambda r: r["meter"])
    assert [r.meter for r in got] == [w["meter"] for w in want], routed.rejects
    for reading, w in zip(got, want, strict=True):
        assert reading.site == site_id
        assert reading.quantity == w["quantity"]
        assert reading.value == pytest.approx(w["value"], rel=1e-12)
        assert reading.time == datetime.fromisoformat(w["time"])
        assert reading.time.utcoffset() == timedelta(0)

    assert len(routed.rejects) == len(expected["rejects"]), routed.rejects
    for fragment in expected["rejects"]:
        matching = [reason for reason in routed.rejects if fragment in reason]
        assert len(matching) == 1, (fragment, routed.rejects)


def test_unknown_topic_is_rejected_naming_the_topic() -> None:
    router = _router("senml-pv-inverter")
    routed = router.route("site/not-configured", b"[]", datetime(2026, 10, 1, 12, tzinfo=UTC))
    assert routed.readings == []
    assert len(routed.rejects) == 1
    assert "'site/not-configured'" in routed.rejects[0]


def test_router_lists_the_topics_of_its_config() -> None:
    assert _router("linky-senml").topics == ["site/linky"]
