"""The Grafana negative-balance alert rule, proven on a real InfluxDB.

Static checks of the provisioning file (the Grafana 11 alert rule schema, the
datasource, one dollar sign where Grafana keeps the text as written), then the rule's
InfluxQL, Grafana's macros expanded, runs on a real InfluxDB 1.x over sites whose 7-day
balance is known; the rule's Reduce (last), Math and Threshold (with its recovery
threshold) steps are computed from the answers the way Grafana's expression engine does,
and must fire for the negative sites only.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from domain.alert_config import DEFAULT_HYSTERESIS_KWH
from domain.readings import Reading
from stores.influx import InfluxStore

ROOT = Path(__file__).resolve().parents[2]
RULE_FILE = ROOT / "dashboards" / "provisioning" / "alerting" / "negative-balance.yaml"
DATASOURCES = ROOT / "dashboards" / "provisioning" / "datasources" / "influxdb.yaml"
STEP = timedelta(minutes=15)
WEEK = timedelta(days=7)
#: The service's rolling_7d recovery margin: the rule's must be the same [kWh].
RECOVERY_KWH = DEFAULT_HYSTERESIS_KWH["rolling_7d"]


def _rule() -> dict[str, Any]:
    doc = yaml.safe_load(RULE_FILE.read_text(encoding="utf-8"))
    assert doc["apiVersion"] == 1
    (group,) = doc["groups"]
    (rule,) = group["rules"]
    return rule


def _data(rule: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["refId"]: d for d in rule["data"]}


def _expand(query: str, start: datetime, end: datetime) -> str:
    """Grafana's InfluxQL macros ($timeFilter, $__interval); the rule must use no other."""
    start_ms, end_ms = (int(t.timestamp() * 1000) for t in (start, end))
    expanded = query.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
    expanded = expanded.replace("$__interval", "1h")
    assert "$" not in expanded, f"unexpanded variable in {expanded}"
    return expanded


# --- static checks ----------------------------------------------------------------------


def test_the_rule_file_has_grafanas_alert_rule_structure() -> None:
    doc = yaml.safe_load(RULE_FILE.read_text(encoding="utf-8"))
    (group,) = doc["groups"]
    assert group["orgId"] == 1 and group["folder"] and group["interval"] == "15m"
    rule = _rule()
    for key in ("uid", "title", "condition", "data", "noDataState", "execErrState", "for"):
        assert rule[key], key
    assert rule["noDataState"] in {"NoData", "Alerting", "OK", "KeepLast"}
    assert rule["execErrState"] in {"Error", "Alerting", "OK", "KeepLast"}
    assert rule["annotations"]["summary"] and rule["labels"]
    data = _data(rule)
    assert list(data) == ["EXPORT", "IMPORT", "EXPORT_KWH", "IMPORT_KWH", "NET", "NEGATIVE"]
    assert rule["condition"] == "NEGATIVE"
    for ref, d in data.items():
        assert d["model"]["refId"] == ref
    uids = {d["uid"] for d in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    for ref in ("EXPORT", "IMPORT"):
        assert data[ref]["datasourceUid"] in uids
        assert data[ref]["relativeTimeRange"] == {"from": 7 * 86400, "to": 0}
        assert data[ref]["model"]["rawQuery"] is True
        assert "spread(" not in data[ref]["model"]["query"]  # wrong across a counter reset
    for ref, source in (("EXPORT_KWH", "EXPORT"), ("IMPORT_KWH", "IMPORT")):
        model = data[ref]["model"]
        assert data[ref]["datasourceUid"] == "__expr__"
        assert (model["type"], model["expression"], model["reducer"]) == ("reduce", source, "last")
    assert data["NET"]["model"]["type"] == "math"
    threshold = data["NEGATIVE"]["model"]
    assert (threshold["type"], threshold["expression"]) == ("threshold", "NET")
    (condition,) = threshold["conditions"]
    assert condition["evaluator"] == {"type": "lt", "params": [0]}
    # The recovery threshold is the service's rolling_7d default hysteresis, and the
    # description says so.
    assert condition["unloadEvaluator"] == {"type": "gt", "params": [RECOVERY_KWH]}
    assert f"+{RECOVERY_KWH:g} kWh" in rule["annotations"]["description"]


def test_no_doubled_dollar_and_no_braced_variable_where_grafana_keeps_the_text() -> None:
    """Grafana provisions each query model raw and expands only ${VAR} in annotations:
    a $$ would reach InfluxDB ("missing parameter: time") or the template as is."""
    rule = _rule()
    texts = [str(d["model"]) for d in rule["data"]] + list(rule["annotations"].values())
    for text in texts:
        assert "$$" not in text, text
        assert "${" not in text, text
    assert "$timeFilter" in _data(rule)["EXPORT"]["model"]["query"]
    assert _data(rule)["NET"]["model"]["expression"] == "$EXPORT_KWH - $IMPORT_KWH"
    # Fields Grafana does expand ($VAR and ${VAR}) must hold no dollar at all.
    for key in ("uid", "title", "condition", "for"):
        assert "$" not in rule[key]
    assert not any("$" in v for v in rule["labels"].values())


# --- the rule on a real InfluxDB --------------------------------------------------------


def _index(start: datetime, end: datetime, wh_per_step: float, reset_at: datetime | None = None,
           base: float = 1_000_000.0) -> list[tuple[datetime, float]]:  # fmt: skip
    """A cumulative index every 15 min from start to end; back to 0 at ``reset_at``."""
    out, value, t = [], base, start
    while t <= end:
        if reset_at is not None and t == reset_at:
            value = 0.0
        out.append((t, value))
        value += wh_per_step
        t += STEP
    return out


#: site → (export Wh per step, import Wh per step, import meter reset mid-week)
SITES: dict[str, tuple[float, float, bool]] = {
    "negative": (80.0, 100.0, False),  # −20 Wh per step: about −13 kWh a week
    "positive": (100.0, 80.0, False),  # +13 kWh
    "reset": (100.0, 80.0, True),  # +13 kWh, the import meter replaced mid-week
    "hovering": (80.0, 79.9, False),  # +0.07 kWh: between 0 and the recovery threshold
}


@pytest.fixture(scope="module")
def database(influxdb_url: str) -> tuple[str, datetime]:
    end = datetime(2026, 3, 20, 12, tzinfo=UTC)
    start = end - WEEK
    readings = []
    for site, (export, import_, reset) in SITES.items():
        reset_at = start + timedelta(days=3, hours=6) if reset else None
        for meter, step, at in (("grid-export", export, None), ("grid-import", import_, reset_at)):
            readings += [
                Reading(site, meter, "energy", v, t)
                for t, v in _index(start - timedelta(days=2), end, step, at)
            ]
    name = f"t{uuid.uuid4().hex[:12]}"
    store = InfluxStore(influxdb_url, name)
    store.write(readings)
    store.close()
    return name, end


def _series_by_site(influxdb_url: str, db: str, query: str) -> dict[str, list[float]]:
    response = httpx.get(
        f"{influxdb_url}/query", params={"db": db, "q": query, "epoch": "ms"}, timeout=30
    )
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert "error" not in result, f"{result['error']}\n{query}"
    return {
        s["tags"]["site"]: [v for _, v in s["values"] if v is not None]
        for s in result.get("series", [])
    }


def _firing(net: float, was_firing: bool, condition: Mapping[str, Any]) -> bool:
    """Grafana's threshold with a recovery threshold: an instance not firing at the last
    evaluation takes the evaluator; a firing one keeps firing while the unload
    evaluator does NOT hold (pkg/expr/hysteresis.go, threshold.go: Invert)."""
    ops = {"lt": lambda v, p: v < p, "gt": lambda v, p: v > p}
    if not was_firing:
        ev = condition["evaluator"]
        return bool(ops[ev["type"]](net, ev["params"][0]))
    unload = condition["unloadEvaluator"]
    return not ops[unload["type"]](net, unload["params"][0])


def _evaluate(influxdb_url: str, db: str, end: datetime) -> dict[str, float]:
    """The rule's queries over its relative range ending at ``end``, then Reduce (last)
    and the Math expression, per site: the NET number of each alert instance."""
    data = _data(_rule())
    reduced: dict[str, dict[str, float]] = {}
    for ref in ("EXPORT_KWH", "IMPORT_KWH"):
        source = data[data[ref]["model"]["expression"]]
        span = source["relativeTimeRange"]
        start, stop = end - timedelta(seconds=span["from"]), end - timedelta(seconds=span["to"])
        series = _series_by_site(influxdb_url, db, _expand(source["model"]["query"], start, stop))
        assert data[ref]["model"]["reducer"] == "last"
        reduced[ref] = {site: values[-1] for site, values in series.items() if values}
    expression = data["NET"]["model"]["expression"]
    assert re.fullmatch(r"\$EXPORT_KWH - \$IMPORT_KWH", expression)
    sites = reduced["EXPORT_KWH"].keys() & reduced["IMPORT_KWH"].keys()  # joined on labels
    return {s: reduced["EXPORT_KWH"][s] - reduced["IMPORT_KWH"][s] for s in sites}


def test_the_rule_fires_for_a_negative_week_only(
    influxdb_url: str, database: tuple[str, datetime]
) -> None:
    db, end = database
    net = _evaluate(influxdb_url, db, end)
    assert set(net) == set(SITES)
    steps = WEEK // STEP  # 672 steps of 15 min in the window
    assert net["negative"] == pytest.approx(steps * (80 - 100) / 1000)
    assert net["positive"] == pytest.approx(steps * (100 - 80) / 1000)
    # The replaced import meter: one step lost at the reset, not a million Wh counted
    # (spread() would give max − min ≈ the whole old index).
    assert net["reset"] == pytest.approx((steps * 100 - (steps - 1) * 80) / 1000)
    (condition,) = _data(_rule())["NEGATIVE"]["model"]["conditions"]
    firing = {site: _firing(value, False, condition) for site, value in net.items()}
    assert firing == {"negative": True, "positive": False, "reset": False, "hovering": False}


def test_a_firing_instance_recovers_only_above_the_recovery_threshold(
    influxdb_url: str, database: tuple[str, datetime]
) -> None:
    db, end = database
    net = _evaluate(influxdb_url, db, end)
    (condition,) = _data(_rule())["NEGATIVE"]["model"]["conditions"]
    assert 0 < net["hovering"] < RECOVERY_KWH
    assert _firing(net["hovering"], True, condition)  # stays firing: no flapping at 0
    assert not _firing(net["positive"], True, condition)  # +13 kWh: recovered
