"""Draw docs/overview-preview.png: the Grafana overview dashboard as its panels would show
the demo data, drawn with matplotlib (no Grafana runs on the build machines).

The layout, titles, units and the service panels' URLs, root selectors and columns are
read from dashboards/json/overview.json itself. June 2026 of the sample site is simulated
(``simulate_building``, seed ``site_seed(112, 0)``, the building ``microville demo``
publishes, without the demo's inverter-failure scenario)
into a SQLite store, with the sample materials and the demo's weekly waste collections in
the ledger; every service panel's URL, with Grafana's variables expanded for a time range
ending on 30 June 2026, is then asked of the real API (``create_app``) with Grafana's read
token. The InfluxQL panels (energy per day, last reading) are drawn from the same indexes.
Run from the repository root:

    python docs/render_overview.py [output.png]
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd
from fastapi.testclient import TestClient
from matplotlib.axes import Axes

from cli.demo import SAMPLE_MATERIALS, _add_sample_waste
from domain.materials import parse_materials_csv
from domain.periods import localize
from domain.readings import Reading
from domain.site import read_sites
from firmware_sim.building import simulate_building, site_seed
from microville.settings import Settings
from service.app import create_app
from stores.ledger import SqliteLedger
from stores.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
SITE_CONFIG = ROOT / "microville" / "sites" / "microville112.toml"
DASHBOARD = ROOT / "dashboards" / "json" / "overview.json"
OUTPUT = Path(__file__).resolve().parent / "overview-preview.png"
CAPTION = (
    "Preview: the overview's panels drawn with matplotlib from the demo data and the real "
    "API — not a Grafana screenshot (no Grafana runs here)"
)
#: Simulator column of each sample meter's cumulative index [Wh].
COLUMNS = {"pv": "pv_wh", "grid-import": "import_wh", "grid-export": "export_wh"}
COLUMNS["heat-pump"] = "heat_pump_wh"
TOKEN = "preview-read-token-0123456789abcdef0123456789abcdef"
MOMENT = {"YYYY": "%Y", "MM": "%m", "DD": "%d"}
GREEN, RED, BLUE, ORANGE, YELLOW = "#56a64b", "#e02f44", "#3274d9", "#ff9830", "#fade2a"
BACKGROUND, PANEL, TEXT, MUTED = "#111217", "#181b1f", "#ccccdc", "#8e8e9e"
METER_COLORS = [GREEN, BLUE, ORANGE, "#b877d9"]


def _select(node: Any, path: str) -> Any:
    for key in filter(None, path.split(".")):
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _api_rows(client: TestClient, target: dict[str, Any], site: str, end: datetime) -> list[Any]:
    """The rows an Infinity target selects, its URL expanded as Grafana would."""
    url = re.sub(
        r"\$\{__to:date:([^}]+)\}",
        lambda m: re.sub("|".join(MOMENT), lambda t: end.strftime(MOMENT[t[0]]), m[1]),
        target["url"],
    ).replace("${site}", site)
    response = client.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    response.raise_for_status()
    root = _select(response.json(), target["root_selector"])
    return root if isinstance(root, list) else [root]


def _format(value: Any, unit: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value.replace("_", " ")
    if unit == "percentunit":
        return f"{100 * value:.0f} %"
    return f"{value:+,.0f} {unit.replace('kwatth', 'kWh').replace('masskg', 'kg')}".strip()


def _unit(panel: dict[str, Any], column: str) -> str:
    for override in panel["fieldConfig"].get("overrides", []):
        if override["matcher"].get("options") == column:
            for prop in override["properties"]:
                if prop["id"] == "unit":
                    return str(prop["value"])
    return str(panel["fieldConfig"]["defaults"].get("unit", ""))


def _frame(ax: Axes, title: str) -> None:
    ax.set_facecolor(PANEL)
    ax.set_title(title, loc="left", color=TEXT, fontsize=9.5, pad=6)
    for spine in ax.spines.values():
        spine.set_color("#2c3235")
    ax.tick_params(colors=MUTED, labelsize=7.5)


def _text_panel(ax: Axes, lines: list[tuple[str, str, str, str]]) -> None:
    """(label, value, color, note) lines, like a stat with several fields or a small
    table; the note (other columns) goes under the value."""
    ax.set_xticks([])
    ax.set_yticks([])
    n = len(lines)
    for i, (label, value, color, note) in enumerate(lines):
        y = 1 - (i + 0.55) / n
        ax.text(0.04, y, label, transform=ax.transAxes, color=MUTED, fontsize=8.5, va="center")
        ax.text(
            0.96,
            y + (0.06 if note else 0),
            value,
            transform=ax.transAxes,
            color=color,
            fontsize=13 if n <= 4 else 9,
            weight="bold",
            ha="right",
            va="center",
        )
        if note:
            ax.text(
                0.96,
                y - 0.1,
                note,
                transform=ax.transAxes,
                color=MUTED,
                fontsize=7.5,
                ha="right",
                va="center",
            )


def _verdict_color(value: str) -> str:
    return {"met": GREEN, "not_met": RED, "not_provable": YELLOW}.get(value, TEXT)


def _service_panel(ax: Axes, panel: dict[str, Any], rows: list[Any]) -> None:
    (target,) = panel["targets"]
    columns = target["columns"]
    lines: list[tuple[str, str, str, str]] = []
    if panel["type"] == "table":  # a line per row: first column, second, then the others
        for row in rows:
            values = [_select(row, c["selector"]) for c in columns]
            note = ", ".join(
                f"{c['text']} {_format(v, _unit(panel, c['text']))}"
                for v, c in zip(values[2:], columns[2:], strict=True)
            )
            label, value = str(values[0]).replace("_", " "), _format(values[1], "")
            lines.append((label, value, _verdict_color(str(values[1])), note))
    else:
        (row,) = rows
        for c in columns:
            value = _select(row, c["selector"])
            unit = _unit(panel, c["text"])
            color = TEXT  # kg of CO2e, rates and coverage: no colour judges them here
            if unit == "kwatth" and isinstance(value, float):
                color = GREEN if value >= 0 else RED
            lines.append((c["text"], _format(value, unit), color, ""))
    _text_panel(ax, lines)


def render(output: Path = OUTPUT) -> Path:
    sites = read_sites(SITE_CONFIG)
    site = sites.sites[0]
    start = localize(datetime(2026, 6, 1), site.tz)
    end = localize(datetime(2026, 7, 1), site.tz)
    frame = simulate_building(site, start, end, timedelta(minutes=15), site_seed(112, 0))
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    range_end = (end - timedelta(seconds=1)).astimezone(site.tz)

    with tempfile.TemporaryDirectory() as work:
        store = SqliteStore(Path(work) / "readings.db")
        store.write(
            [
                Reading(site.id, meter, "energy", float(value), t.to_pydatetime())
                for meter, column in COLUMNS.items()
                for t, value in frame[column].items()
            ]
        )
        ledger = SqliteLedger(Path(work) / "ledger.db")
        ledger.add_materials(site.id, parse_materials_csv(SAMPLE_MATERIALS.read_text("utf-8")))
        _add_sample_waste(ledger, sites, start, end)
        settings = Settings(
            config=str(SITE_CONFIG),
            ledger_path=str(Path(work) / "ledger.db"),
            alerts_path=str(Path(work) / "alerts.db"),
            api_tokens_path=str(Path(work) / "tokens.db"),
            alert_interval_s=0,
            api_read_token=TOKEN,
        )
        app = create_app(settings, store=store, sites=sites, ledger=ledger)
        with TestClient(app) as client:
            answers = {
                p["id"]: _api_rows(client, p["targets"][0], site.id, range_end)
                for p in dashboard["panels"]
                if p["datasource"]["uid"] == "microville-api"
            }
        ledger.close()
        store.close()

    plt.rcParams.update({"font.family": "DejaVu Sans", "text.color": TEXT})
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dashboard["panels"])
    row_in, title_in, top_in, bottom_in = 0.36, 0.42, 0.7, 0.5
    height_in = rows * row_in + top_in + bottom_in
    fig = plt.figure(figsize=(14, height_in), dpi=90, facecolor=BACKGROUND)
    fig.suptitle(
        f"{dashboard['title']} — {site.name} ({site.id}), range 1–30 June 2026",
        x=0.05,
        y=1 - 0.25 / height_in,
        ha="left",
        color=TEXT,
        fontsize=13,
        weight="bold",
    )

    def place(grid_pos: dict[str, int]) -> Axes:
        """An axes where Grafana puts the panel (24 columns, rows of ``row_in``), with
        room for its title and, for a chart, its axis labels."""
        x0, width = 0.05 + 0.94 * grid_pos["x"] / 24, 0.94 * grid_pos["w"] / 24 - 0.008
        top = height_in - top_in - grid_pos["y"] * row_in - title_in
        bottom = height_in - top_in - (grid_pos["y"] + grid_pos["h"]) * row_in + 0.08
        return fig.add_axes((x0, bottom / height_in, width, (top - bottom) / height_in))

    midnights = [localize(datetime(2026, 6, 1) + timedelta(days=d), site.tz) for d in range(31)]
    daily = frame[list(COLUMNS.values())].loc[[pd.Timestamp(m) for m in midnights]].diff()
    daily = daily.clip(lower=0).iloc[1:] / 1000  # non_negative_difference, kWh
    last = frame.iloc[-1]
    for panel in dashboard["panels"]:
        g = dict(panel["gridPos"])
        if panel["type"] == "barchart":  # room for the dates under the bars
            g["h"] -= 1
        ax = place(g)
        _frame(ax, panel["title"])
        if panel["id"] in answers:
            _service_panel(ax, panel, answers[panel["id"]])
        elif panel["type"] == "barchart":
            days = [m.replace(tzinfo=None) for m in midnights[:-1]]
            width = 0.8 / len(COLUMNS)
            for i, (meter, column) in enumerate(COLUMNS.items()):
                ax.bar(
                    [d + timedelta(days=width * i) for d in days],
                    daily[column],
                    width=width,
                    color=METER_COLORS[i],
                    label=meter,
                )
            ax.set_ylabel("kWh per day", color=MUTED, fontsize=8)
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
            ax.grid(axis="y", color="#2c3235")
            ax.set_axisbelow(True)
            ax.legend(fontsize=7, facecolor=PANEL, edgecolor=PANEL, labelcolor=TEXT, ncols=4)
        else:  # last index per meter (stat and table)
            _text_panel(
                ax,
                [(m, f"{float(last[c]) / 1000:,.1f} kWh", TEXT, "") for m, c in COLUMNS.items()],
            )
    fig.text(0.5, 0.15 / height_in, CAPTION, ha="center", fontsize=10, color=YELLOW, style="italic")
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, facecolor=BACKGROUND, dpi=90)
    plt.close(fig)
    return output


if __name__ == "__main__":
    written = render(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT)
    print(f"wrote {written} ({written.stat().st_size / 1024:.0f} KiB)")
