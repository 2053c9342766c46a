"""The Grafana dashboards of dashboards/json, every query proven.

Static checks (uids, schema version, the `site` variable, units, provisioned
datasources), then every InfluxQL panel query, Grafana's macros expanded, runs on a real
InfluxDB 1.x holding a few simulated days of the sample site, and every Infinity panel URL
returns 200 from the real API over the same data, with every field its columns select.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from domain.clock import fixed_clock
from domain.periods import localize
from domain.readings import Reading
from domain.site import read_sites
from firmware_sim.building import simulate_building
from microville.settings import Settings
from service.app import create_app
from stores.influx import InfluxStore
from stores.ledger import SqliteLedger

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards" / "json"
DATASOURCES = ROOT / "dashboards" / "provisioning" / "datasources"
SAMPLE_CONFIG = ROOT / "microville" / "sites" / "microville112.toml"
SITE = "microville112"
PARIS = ZoneInfo("Europe/Paris")  # the browser's timezone of the test
INFLUX_TYPE, INFINITY_TYPE = "influxdb", "yesoreyeram-infinity-datasource"
COLUMNS = {
    "pv": "pv_wh",
    "grid-import": "import_wh",
    "grid-export": "export_wh",
    "heat-pump": "heat_pump_wh",
}
STREAMS = (
    "reuse",
    "preparation_for_reuse",
    "recycling",
    "composting",
    "backfill",
    "energy_recovery",
    "landfill",
)
MOMENT = {"YYYY": "%Y", "MM": "%m", "DD": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
#: Grafana's read token in the tests (API_READ_TOKEN of .env in the stack).
GRAFANA_TOKEN = "grafana-read-token-for-the-dashboard-tests-0123456789"
_DATE_VAR = re.compile(r"\$\{(__from|__to):date:([^}]+)\}")


# --- helpers ---------------------------------------------------------------------------


def _dashboards() -> dict[str, dict[str, Any]]:
    return {
        p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))
    }


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        if panel.get("type") == "row":
            yield from _panels(panel.get("panels", []))
        else:
            yield panel


def _targets(datasource_type: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, panel, target) of every target of that datasource type."""
    return [
        (f"{name}: {panel['title']!r} {target['refId']}", panel, target)
        for name, dashboard in _dashboards().items()
        for panel in _panels(dashboard["panels"])
        for target in panel["targets"]
        if target["datasource"]["type"] == datasource_type
    ]


def _provisioned() -> dict[str, dict[str, Any]]:
    return {
        source["uid"]: source
        for path in sorted(DATASOURCES.glob("*.y*ml"))
        for source in yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]
    }


def _moment(fmt: str, t: datetime) -> str:
    """A moment.js date format (the tokens the dashboards use) of t."""
    return re.sub("|".join(MOMENT), lambda m: t.strftime(MOMENT[m[0]]), fmt)


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime


def _panel_range(panel: dict[str, Any], now: datetime, default: TimeRange) -> TimeRange:
    """The dashboard's range, or the panel's relative time override (now/d, now/M, now/y:
    from the start of the local day, month or year to now)."""
    override = panel.get("timeFrom")
    if not override:
        return default
    local = now.astimezone(PARIS)
    starts = {
        "now/d": datetime(local.year, local.month, local.day),
        "now/M": datetime(local.year, local.month, 1),
        "now/y": datetime(local.year, 1, 1),
    }
    assert override in starts, f"time override {override!r} not modelled here"
    return TimeRange(localize(starts[override], PARIS), now)


def _expand_influxql(query: str, span: TimeRange, timezone: str = PARIS.key) -> str:
    """Grafana's expansion for an InfluxQL datasource: $timeFilter, $__interval, $site
    (regex-escaped: the queries use it in /^$site$/), ${timezone} (the site's, which
    the dashboards' hidden variable asks the API for)."""
    start_ms, end_ms = (int(t.timestamp() * 1000) for t in (span.start, span.end))
    expanded = (
        query.replace("${timezone}", timezone)
        .replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
        .replace("$__interval", "1h")
        .replace("${site}", re.escape(SITE))
        .replace("$site", re.escape(SITE))
    )
    assert "$" not in expanded.replace("$/", ""), f"unexpanded variable in {expanded}"
    return expanded


def _expand_url(url: str, span: TimeRange) -> str:
    """Grafana's expansion of an Infinity URL: ${site}, ${__from|__to:date:FORMAT}."""
    expanded = _DATE_VAR.sub(
        lambda m: _moment(m[2], (span.start if m[1] == "__from" else span.end).astimezone(PARIS)),
        url,
    ).replace("${site}", SITE)
    assert "$" not in expanded, f"unexpanded variable in {expanded}"
    return expanded


_MISSING = object()


def _select(node: Any, path: str) -> Any:
    """A dot path (Infinity's selector) into parsed JSON; "" is the node itself."""
    for key in filter(None, path.split(".")):
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


# --- static checks ----------------------------------------------------------------------


def test_every_dashboard_parses_with_a_unique_microville_uid() -> None:
    dashboards = _dashboards()
    assert {"overview.json", "energy-flows.json", "carbon.json", "waste.json"} <= set(dashboards)
    assert "data-quality.json" in dashboards
    uids = [d["uid"] for d in dashboards.values()]
    assert len(set(uids)) == len(uids)
    for name, dashboard in dashboards.items():
        assert dashboard["uid"] == f"microville-{name.removesuffix('.json')}", name
        assert dashboard["schemaVersion"] >= 39, name
        assert dashboard["timezone"] == "browser", name
        assert dashboard["title"], name


def test_every_dashboard_has_the_site_variable() -> None:
    for name, dashboard in _dashboards().items():
        (site,) = [v for v in dashboard["templating"]["list"] if v["name"] == "site"]
        assert site["type"] == "query", name
        assert site["query"] == 'SHOW TAG VALUES FROM "energy" WITH KEY = "site"', name
        assert site["datasource"]["uid"] == "microville-influxdb", name


#: Grafana 11's core panel types (public/app/plugins/panel); a dashboard may use no other
#: without declaring the plugin, which these do not.
CORE_PANELS = {
    "barchart", "bargauge", "candlestick", "canvas", "dashlist", "datagrid", "flamegraph",
    "gauge", "geomap", "heatmap", "histogram", "logs", "news", "nodeGraph", "piechart",
    "stat", "state-timeline", "status-history", "table", "text", "timeseries", "traces",
    "trend", "xychart", "row", "alertlist", "annolist",
}  # fmt: skip


def test_every_panel_is_a_core_type_laid_out_on_the_24_column_grid() -> None:
    for name, dashboard in _dashboards().items():
        cells: dict[tuple[int, int], str] = {}
        for panel in _panels(dashboard["panels"]):
            where = f"{name}: {panel.get('title')!r}"
            assert panel["type"] in CORE_PANELS, f"{where}: unknown panel type {panel['type']}"
            assert isinstance(panel["id"], int) and panel["title"], where
            grid = panel["gridPos"]
            assert all(isinstance(grid[k], int) and grid[k] >= 0 for k in "xywh"), where
            assert grid["w"] >= 1 and grid["h"] >= 1 and grid["x"] + grid["w"] <= 24, where
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    assert (x, y) not in cells, f"{where} overlaps {cells[(x, y)]!r}"
                    cells[(x, y)] = panel["title"]


def test_index_differences_never_go_negative() -> None:
    """A counter reset must not draw a negative bar: index rises are taken with
    non_negative_difference, and no panel computes a balance from spread() (max − min)
    or a signed difference: balances come from the API."""
    for where, _, target in _targets(INFLUX_TYPE):
        query = target["query"]
        assert "spread(" not in query, where
        assert not re.search(r"(?<!non_negative_)difference\(", query), where


def test_every_panel_has_a_unit_and_targets() -> None:
    for name, dashboard in _dashboards().items():
        panels = list(_panels(dashboard["panels"]))
        assert panels, name
        assert len({p["id"] for p in panels}) == len(panels), f"{name}: duplicate panel ids"
        for panel in panels:
            where = f"{name}: {panel['title']!r}"
            assert panel["fieldConfig"]["defaults"].get("unit"), f"{where} has no unit"
            assert panel["targets"], where


def test_only_provisioned_datasources_referenced_by_uid() -> None:
    provisioned = _provisioned()
    assert provisioned["microville-influxdb"]["type"] == INFLUX_TYPE
    api = provisioned["microville-api"]
    assert api["type"] == INFINITY_TYPE and api["url"] == "http://service:8000"
    assert "http://service:8000" in api["jsonData"]["allowedHosts"]
    for name, dashboard in _dashboards().items():
        refs = [v["datasource"] for v in dashboard["templating"]["list"] if "datasource" in v]
        for panel in _panels(dashboard["panels"]):
            refs += [panel["datasource"], *(t["datasource"] for t in panel["targets"])]
            types = {t["datasource"]["type"] for t in panel["targets"]}
            assert types == {panel["datasource"]["type"]}, f"{name}: {panel['title']!r}"
        for ref in refs:
            assert ref["uid"] in provisioned, f"{name}: datasource {ref} is not provisioned"
            assert ref["type"] == provisioned[ref["uid"]]["type"], f"{name}: {ref}"


def test_influxql_queries_filter_by_site_and_time() -> None:
    targets = _targets(INFLUX_TYPE)
    assert len(targets) >= 8  # raw series only: every indicator comes from the API
    for where, _, target in targets:
        query = target["query"]
        assert target["rawQuery"] is True, where
        assert "/^$site$/" in query and "$timeFilter" in query, f"{where}: {query}"
        if "time(1d" in query:  # local days, a reading at midnight closes the day before
            assert "time(1d, 1ns)" in query and "tz('${timezone}')" in query, where
        if "tz(" in query:  # the site's own timezone, never a fixed one
            assert "tz('${timezone}')" in query, where


def test_infinity_targets_are_json_urls_of_the_site() -> None:
    targets = _targets(INFINITY_TYPE)
    assert len(targets) >= 10
    for where, _, target in targets:
        assert target["type"] == "json" and target["source"] == "url", where
        assert target["url"].startswith("/api/v1/sites/${site}/"), where
        assert "root_selector" in target and target["columns"], where
        assert all(c["selector"] and c["text"] for c in target["columns"]), where


def test_compose_installs_the_pinned_infinity_plugin() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    plugins = compose["services"]["grafana"]["environment"]["GF_INSTALL_PLUGINS"].split(",")
    assert any(re.fullmatch(rf"{INFINITY_TYPE} \d+\.\d+\.\d+", p.strip()) for p in plugins)


# --- every query on the real services ---------------------------------------------------


@dataclass
class Proof:
    influxdb_url: str
    database: str
    client: TestClient
    span: TimeRange


@pytest.fixture(scope="module")
def proof(
    influxdb_url: str, tmp_path_factory: pytest.TempPathFactory, now: datetime
) -> Iterator[Proof]:
    """The simulated month of the sample site up to the tests' now (15-minute indexes of
    the four meters, an hourly grid intensity) in a fresh database; the API over it, its
    clock at that now, with a waste entry per stream and its alerts evaluated."""
    sites = read_sites(SAMPLE_CONFIG)
    site = sites.sites[0]
    now = now.replace(second=0, microsecond=0)
    end = now - timedelta(minutes=now.minute % 15)
    # From the local first of the month, and at least three whole days: the month to date
    # is fully covered whatever the date, so no coverage alert fires beside the silent one.
    first = (end.astimezone(PARIS) - timedelta(days=3)).date().replace(day=1)
    start = localize(datetime.combine(first, datetime.min.time()), PARIS)
    frame = simulate_building(site, start, end, timedelta(minutes=15), seed=112)
    # The heat pump's sub-meter falls silent 2 hours before the end: a firing
    # silent-meter alert for the "Alerts firing" panel.
    silent_from = end - timedelta(hours=2)
    readings = [
        Reading(site.id, meter, "energy", float(value), t.to_pydatetime())
        for meter, column in COLUMNS.items()
        for t, value in frame[column].items()
        if meter != "heat-pump" or t.to_pydatetime() <= silent_from
    ]
    hours = int((end - start).total_seconds() // 3600)
    readings += [
        Reading(
            site.id,
            "grid-carbon-intensity",
            "carbon_intensity",
            0.03 + 0.001 * (h % 24),
            start + timedelta(hours=h),
        )
        for h in range(hours + 1)
    ]
    # The gateway's cumulative count of refused MQTT messages (dead letters).
    readings += [
        Reading(site.id, "mqtt", "dead_letters", float(n), end - timedelta(hours=3 - i))
        for i, n in enumerate((1, 3, 7))
    ]
    database = f"t{uuid.uuid4().hex[:12]}"
    store = InfluxStore(influxdb_url, database)
    store.write(readings)
    state = tmp_path_factory.mktemp("dashboards")
    settings = Settings(
        config=str(SAMPLE_CONFIG),
        ledger_path=str(state / "ledger.db"),
        alerts_path=str(state / "alerts.db"),
        alert_interval_s=0,
        # Module-scoped: the per-test state folders of conftest do not reach it.
        reports_dir=str(state / "reports"),
        api_read_token=GRAFANA_TOKEN,
    )
    ledger = SqliteLedger(state / "ledger.db")
    app = create_app(settings, store=store, sites=sites, ledger=ledger, clock=fixed_clock(now))
    with TestClient(app) as client:
        # At the range's end: inside "the month of the range end" on any date.
        entry_time = end.isoformat()
        entries = [{"time": entry_time, "stream": s, "mass_kg": 10.0} for s in STREAMS]
        response = client.post(f"/api/v1/sites/{SITE}/waste-entries", json=entries)
        assert response.status_code == 201, response.text
        response = client.post(f"/api/v1/sites/{SITE}/alerts/evaluate")
        assert response.status_code == 200, response.text
        firing = client.get(f"/api/v1/sites/{SITE}/alerts").json()["firing"]
        # The silent sub-meter fires whatever the date; the balance rules may fire too
        # (a winter month is negative), no other data-quality rule may.
        ids = {a["alert_id"] for a in firing}
        assert f"{SITE}:silent:heat-pump" in ids, firing
        others = ids - {f"{SITE}:silent:heat-pump"}
        assert all(i.startswith(f"{SITE}:balance:") for i in others), firing
        yield Proof(influxdb_url, database, client, TimeRange(start, end))
    ledger.close()
    store.close()


def test_every_influxql_panel_query_returns_series(proof: Proof) -> None:
    targets = _targets(INFLUX_TYPE)
    for where, panel, target in targets:
        query = _expand_influxql(target["query"], _panel_range(panel, proof.span.end, proof.span))
        response = httpx.get(
            f"{proof.influxdb_url}/query",
            params={"db": proof.database, "q": query, "epoch": "ms"},
            timeout=30,
        )
        assert response.status_code == 200, f"{where}: {response.text}"
        (result,) = response.json()["results"]
        assert "error" not in result, f"{where}: {result['error']}\n{query}"
        assert result.get("series"), f"{where}: no series\n{query}"
        assert any(s["values"] for s in result["series"]), f"{where}: no values\n{query}"


def test_every_infinity_panel_url_serves_the_selected_fields(proof: Proof) -> None:
    for where, panel, target in _targets(INFINITY_TYPE):
        url = _expand_url(target["url"], _panel_range(panel, proof.span.end, proof.span))
        # With the token the Infinity datasource sends (API_READ_TOKEN), not an admin's.
        response = proof.client.get(url, headers={"Authorization": f"Bearer {GRAFANA_TOKEN}"})
        assert response.status_code == 200, f"{where}: GET {url}: {response.text}"
        root = _select(response.json(), target["root_selector"])
        assert root is not _MISSING, f"{where}: no {target['root_selector']!r} in {url}"
        rows = root if isinstance(root, list) else [root]
        assert rows, f"{where}: {url} selects no row"
        for row in rows:
            for column in target["columns"]:
                assert _select(row, column["selector"]) is not _MISSING, (
                    f"{where}: {url}: no {column['selector']!r} in {row}"
                )


def _timezone_variables() -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, v)
        for name, d in _dashboards().items()
        for v in d["templating"]["list"]
        if v["name"] == "timezone"
    ]


def test_dashboards_cutting_local_days_have_the_site_timezone_variable() -> None:
    with_variable = {name for name, _ in _timezone_variables()}
    for name, dashboard in _dashboards().items():
        if "${timezone}" in json.dumps(dashboard["panels"]):
            assert name in with_variable, name
    for name, variable in _timezone_variables():
        assert variable["type"] == "query" and variable["datasource"]["uid"] == "microville-api"
        query = variable["query"]
        assert query["queryType"] == "infinity", name
        assert query["infinityQuery"]["url"] == "/api/v1/sites/${site}", name


def test_the_timezone_variable_is_the_sites_own(proof: Proof) -> None:
    """The variable's query, as Infinity runs it with Grafana's read token, gives one
    value: the site's timezone, which the API's periods use."""
    ((_, variable), *_) = _timezone_variables()
    target = variable["query"]["infinityQuery"]
    response = proof.client.get(
        _expand_url(target["url"], proof.span),
        headers={"Authorization": f"Bearer {GRAFANA_TOKEN}"},
    )
    assert response.status_code == 200, response.text
    root = _select(response.json(), target["root_selector"])
    (column,) = target["columns"]
    assert _select(root, column["selector"]) == read_sites(SAMPLE_CONFIG).sites[0].timezone


def test_the_site_variable_lists_the_sites(proof: Proof) -> None:
    (query,) = {
        v["query"]
        for d in _dashboards().values()
        for v in d["templating"]["list"]
        if v["name"] == "site"
    }
    response = httpx.get(
        f"{proof.influxdb_url}/query", params={"db": proof.database, "q": query}, timeout=30
    )
    (result,) = response.json()["results"]
    assert [value for _, value in result["series"][0]["values"]] == [SITE]


def test_a_counter_reset_draws_no_negative_bar(influxdb_url: str) -> None:
    """The day-bar query on a meter replaced mid-day (index back to 0): no negative bar."""
    (_, _, target) = next(
        t for t in _targets(INFLUX_TYPE) if t[1]["title"] == "Energy per day per meter"
    )
    start = localize(datetime(2026, 10, 5), PARIS)
    index = [5000.0 + 100 * h for h in range(36)] + [100.0 * h for h in range(36)]
    database = f"t{uuid.uuid4().hex[:12]}"
    store = InfluxStore(influxdb_url, database)
    store.write(
        [
            Reading(SITE, "grid-import", "energy", v, start + timedelta(hours=h))
            for h, v in enumerate(index)
        ]
    )
    store.close()
    span = TimeRange(start, start + timedelta(days=3))
    response = httpx.get(
        f"{influxdb_url}/query",
        params={"db": database, "q": _expand_influxql(target["query"], span), "epoch": "ms"},
    )
    (result,) = response.json()["results"]
    bars = [v for s in result["series"] for _, v in s["values"]]
    # 5 and 7 October have their bars (24 h and 23 h of rise); the day of the reset has
    # none: a signed difference() would draw it at -6.2 kWh.
    assert bars == [pytest.approx(2.4), pytest.approx(2.3)], bars


def test_day_bars_are_the_apis_local_days(proof: Proof) -> None:
    """The InfluxQL day buckets (1ns offset, Paris time) give the API's daily energy."""
    (_, _, target) = next(
        t for t in _targets(INFLUX_TYPE) if t[1]["title"] == "Energy per day per meter"
    )
    span = TimeRange(proof.span.start, proof.span.start + timedelta(days=3))
    response = httpx.get(
        f"{proof.influxdb_url}/query",
        params={"db": proof.database, "q": _expand_influxql(target["query"], span), "epoch": "ms"},
    )
    (result,) = response.json()["results"]
    bars = {
        s["tags"]["meter"]: {
            datetime.fromtimestamp(t / 1000, PARIS).date().isoformat(): v for t, v in s["values"]
        }
        for s in result["series"]
    }
    api = proof.client.get(
        f"/api/v1/sites/{SITE}/balance",
        params={
            "start": span.start.date().isoformat(),
            "end": span.end.date().isoformat(),
            "step": "day",
        },
    ).json()
    days = {p["start"][:10]: p for p in api["periods"]}
    # The range starts at a local midnight: the reading there closes the day before and
    # starts the first day, so every day of the API has its bar.
    assert sorted(bars["grid-import"]) == sorted(days) == sorted(bars["grid-export"])
    assert sorted(bars["pv"]) == sorted(days)
    for day, kwh in bars["grid-import"].items():
        assert kwh == pytest.approx(days[day]["import_kwh"], abs=1e-6), day
    for day, kwh in bars["grid-export"].items():
        assert kwh == pytest.approx(days[day]["export_kwh"], abs=1e-6), day
