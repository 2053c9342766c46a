"""InfluxDB answers that are not whole: cut by the server's row limit ("partial"),
chunked, an error inside a 200, results missing, slots missing. Each is a StoreError
naming the problem (the API answers 503), never a figure built on a hole: on crafted
JSON, and against a real InfluxDB 1.x started with ``max-row-limit``."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from helpers.support import GRID_AND_PV_METERS, SITE_S1

from domain.readings import Reading
from domain.store import StoreError
from microville.settings import Settings
from service.app import create_app
from stores.influx import (
    InfluxStore,
    parse_hourly_means,
    parse_index_slots,
    parse_query_answer,
    parse_slot_sums,
)

NS = 1_000_000_000
HOUR_S = 3600
#: 2026-10-01T00:00Z, a whole hour, in epoch seconds.
T0_S = round(datetime(2026, 10, 1, tzinfo=UTC).timestamp())
HOUR = timedelta(hours=1)


def _series(meter: str, columns: list[str], values: list[list[Any]]) -> dict[str, Any]:
    return {"name": "energy", "tags": {"meter": meter}, "columns": columns, "values": values}


def _answer(*results: dict[str, Any]) -> str:
    return json.dumps({"results": [{"statement_id": i, **r} for i, r in enumerate(results)]})


# --- parse_query_answer on crafted answers ----------------------------------------------


def test_whole_answer_gives_one_result_per_statement() -> None:
    text = _answer({"series": [_series("pv", ["time", "last"], [[0, 5.0]])]}, {})
    results = parse_query_answer(text, 2)
    assert results[0]["series"][0]["values"] == [[0, 5.0]] and results[1] == {"statement_id": 1}


@pytest.mark.parametrize(
    "result, where",
    [
        ({"series": [_series("pv", ["time", "last"], [[0, 5.0]])], "partial": True}, ""),
        (
            {"series": [{**_series("pv", ["time", "last"], [[0, 5.0]]), "partial": True}]},
            " in series {'meter': 'pv'}",
        ),
    ],
    ids=["on the result", "on a series"],
)
def test_partial_answer_is_a_store_error_and_a_warning(
    result: dict[str, Any], where: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "stores.influx")
    with pytest.raises(StoreError, match=f"statement 0 is partial{where}.*max-row-limit"):
        parse_query_answer(_answer(result), 1)
    assert "truncated" in caplog.text


def test_chunked_answer_is_a_store_error(caplog: pytest.LogCaptureFixture) -> None:
    # As InfluxDB sends it with chunked=true: one JSON document per line, each chunk but
    # the last of a series marked partial.
    line1 = _answer({"series": [_series("pv", ["time", "v"], [[0, 1.0]])], "partial": True})
    line2 = _answer({"series": [_series("pv", ["time", "v"], [[1, 2.0]])]})
    caplog.set_level(logging.WARNING, "stores.influx")
    with pytest.raises(StoreError, match=r"in chunks \(2 JSON documents\)"):
        parse_query_answer(f"{line1}\n{line2}\n", 1)
    assert "chunks" in caplog.text


def test_error_inside_a_200_is_a_store_error() -> None:
    text = _answer({}, {"error": "max-select-series limit exceeded: (2 / 1)"})
    with pytest.raises(StoreError, match=r"query error \(statement 1\): max-select-series"):
        parse_query_answer(text, 2)
    with pytest.raises(StoreError, match="query error: database not found: x"):
        parse_query_answer(json.dumps({"error": "database not found: x"}), 1)


def test_missing_results_are_a_store_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "stores.influx")
    with pytest.raises(StoreError, match="2 results for 4 statements"):
        parse_query_answer(_answer({}, {}), 4)
    assert "truncated" in caplog.text


@pytest.mark.parametrize(
    "text, message",
    [
        ("<html>proxy error</html>", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"results": 3}', "no list of results"),
        ('{"results": [{"statement_id": 1}]}', "statement 1 in place of 0"),
    ],
)
def test_malformed_answer_is_a_store_error(text: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        parse_query_answer(text, 1)


# --- the completeness checks on crafted results ---------------------------------------


def _index_results(slot_counts: list[int], window_count: int) -> list[dict[str, Any]]:
    """index_slots' five results for meter pv: no reading before, first value 0, none
    after the end, one hourly slot per count (index = hour number, no drop inside), and
    the count over the window."""
    slots = [
        [(T0_S + h * HOUR_S) * NS + 1, float(h + 1), n, float(h + 1)]
        for h, n in enumerate(slot_counts)
    ]
    return [
        {},
        {"series": [_series("pv", ["time", "first"], [[T0_S * NS, 0.0]])]},
        {},
        {"series": [_series("pv", ["time", "last", "count", "max"], slots)]},
        {"series": [_series("pv", ["time", "count"], [[T0_S * NS, window_count]])]},
    ]


def test_index_slots_that_hold_every_reading_are_read() -> None:
    series = parse_index_slots(_index_results([4, 4], 8), ["pv", "absent"], HOUR_S)
    assert series["pv"].baseline == 0.0 and series["pv"].starts_inside
    assert [(s.end, s.last_value, s.count) for s in series["pv"].slots] == [
        (datetime.fromtimestamp(T0_S + HOUR_S, UTC), 1.0, 4),
        (datetime.fromtimestamp(T0_S + 2 * HOUR_S, UTC), 2.0, 4),
    ]
    assert series["absent"].baseline is None and series["absent"].slots == []


def test_index_slots_missing_from_the_answer_are_a_store_error() -> None:
    # A week of hours lost from a meter's slots (the 0.981 coverage run): 168 slots of 4.
    results = _index_results([4] * (8760 - 168), 4 * 8760)
    with pytest.raises(
        StoreError,
        match=r"incomplete \(index slots\): meter 'pv' has 35040 readings in the window"
        " but 34368 in its slots",
    ):
        parse_index_slots(results, ["pv"], HOUR_S)


def _store_answering(answers: list[list[dict[str, Any]]]) -> tuple[InfluxStore, list[str]]:
    """An adapter whose server answers ``answers`` in turn (HTTP stubbed: how often the
    adapter asks is what is tested); the queries it sent."""
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.params["q"])
        results = answers[min(len(sent), len(answers)) - 1]
        return httpx.Response(200, text=_answer(*results))

    store = InfluxStore("http://influx.invalid", "db", create_database=False)
    transport = httpx.MockTransport(handler)
    store._http = httpx.Client(base_url="http://influx.invalid", transport=transport)
    return store, sent


def test_an_answer_that_does_not_add_up_is_asked_again_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "stores.influx")
    start = datetime.fromtimestamp(T0_S, UTC)
    short, whole = _index_results([4, 3], 8), _index_results([4, 4], 8)
    # A reading written between two statements: the second answer adds up.
    store, sent = _store_answering([short, whole])
    series = store.index_slots("s1", ["pv"], "energy", start, start + 2 * HOUR, HOUR)
    assert [s.count for s in series["pv"].slots] == [4, 4] and len(sent) == 2
    assert caplog.text == ""
    # Slots lost twice in a row: an error, logged.
    store, sent = _store_answering([short])
    with pytest.raises(StoreError, match="meter 'pv' has 8 readings in the window but 7"):
        store.index_slots("s1", ["pv"], "energy", start, start + 2 * HOUR, HOUR)
    assert len(sent) == 2 and "incomplete" in caplog.text and "asked twice" in caplog.text


def test_index_slots_without_the_first_reading_are_a_store_error() -> None:
    results = _index_results([4], 4)
    results[1] = {}
    with pytest.raises(StoreError, match=r"no first reading for \['pv'\]"):
        parse_index_slots(results, ["pv"], HOUR_S)


def test_slot_sums_missing_from_the_answer_are_a_store_error() -> None:
    sums = [[(T0_S + h * HOUR_S) * NS, 12.5, 1] for h in range(3)]
    ok = [
        {"series": [_series("scale", ["time", "sum", "count"], sums)]},
        {"series": [_series("scale", ["time", "count"], [[T0_S * NS, 3]])]},
    ]
    assert [s.total for s in parse_slot_sums(ok, ["scale"])["scale"]] == [12.5] * 3
    short = [ok[0], {"series": [_series("scale", ["time", "count"], [[T0_S * NS, 4]])]}]
    with pytest.raises(StoreError, match="meter 'scale' has 4 readings in the window but 3"):
        parse_slot_sums(short, ["scale"])


def test_hourly_means_missing_from_the_answer_are_a_store_error() -> None:
    hours = [[(T0_S + h * HOUR_S) * NS, 50.0, 4] for h in range(2)]
    ok = [
        {"series": [_series("fr", ["time", "mean", "count"], hours)]},
        {"series": [_series("fr", ["time", "count"], [[T0_S * NS, 8]])]},
    ]
    assert [v for _, v in parse_hourly_means(ok, "fr")] == [50.0, 50.0]
    short = [ok[0], {"series": [_series("fr", ["time", "count"], [[T0_S * NS, 12]])]}]
    with pytest.raises(StoreError, match="meter 'fr' has 12 readings in the window but 8"):
        parse_hourly_means(short, "fr")


# --- a real InfluxDB 1.x that cuts answers at LIMITED_ROWS rows -------------------------

MONTH_START = datetime(2026, 10, 1, tzinfo=UTC)
MONTH_HOURS = 31 * 24


def _month(store: InfluxStore) -> None:
    """Hourly indexes through October 2026 (UTC): pv +100 Wh, import +50 Wh, export +30 Wh
    an hour; two meters' hourly slots are 2 × 744 rows, over the server's limit (1000)."""
    store.write(
        [
            Reading("s1", meter, "energy", step * h, MONTH_START + h * HOUR)
            for h in range(MONTH_HOURS + 1)
            for meter, step in (("pv", 100.0), ("in", 50.0), ("out", 30.0))
        ]
    )


@pytest.fixture
def limited_store(limited_influxdb_url: str) -> Iterator[InfluxStore]:
    store = InfluxStore(limited_influxdb_url, f"t{uuid.uuid4().hex[:12]}")
    _month(store)
    yield store
    store.close()


def test_answer_cut_by_the_row_limit_is_a_store_error(
    limited_store: InfluxStore, caplog: pytest.LogCaptureFixture
) -> None:
    month_end = MONTH_START + MONTH_HOURS * HOUR
    caplog.set_level(logging.WARNING, "stores.influx")
    with pytest.raises(StoreError, match=r"partial.*max-row-limit"):
        limited_store.index_slots("s1", ["pv", "in", "out"], "energy", MONTH_START, month_end, HOUR)
    with pytest.raises(StoreError, match="partial"):
        limited_store.slot_sums("s1", ["pv", "in"], "energy", MONTH_START, month_end, HOUR)
    assert caplog.text.count("InfluxDB answer truncated") == 2
    # Below the limit the same server answers, and the slots hold every reading.
    day = limited_store.index_slots(
        "s1", ["pv", "in", "out"], "energy", MONTH_START, MONTH_START + 24 * HOUR, HOUR
    )
    assert [s.last_value for s in day["pv"].slots] == [100.0 * h for h in range(1, 25)]


def test_api_answers_503_not_a_figure_when_the_answer_is_cut(
    limited_store: InfluxStore, tmp_path: Path
) -> None:
    config = tmp_path / "sites.toml"
    config.write_text(SITE_S1 + GRID_AND_PV_METERS)
    app = create_app(Settings(config=str(config)), store=limited_store)
    with TestClient(app) as client:
        params = {"start": "2026-10-01", "end": "2026-11-01", "step": "month"}
        month = client.get("/api/v1/sites/s1/balance", params=params)
        assert month.status_code == 503, month.text
        assert "store unavailable: InfluxDB answer truncated" in month.json()["detail"]
        assert "max-row-limit" in month.json()["detail"]
        # A day is within the limit: 24 h of +100 Wh (local days, Europe/Paris = UTC+2).
        params = {"start": "2026-10-10", "end": "2026-10-11", "step": "day"}
        day = client.get("/api/v1/sites/s1/balance", params=params)
    assert day.status_code == 200, day.text
    assert day.json()["total"]["production_kwh"] == pytest.approx(2.4)
