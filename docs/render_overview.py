"""Draw docs/overview-preview.png: what the Grafana overview dashboard shows, drawn with
matplotlib from the simulator's data for the sample site (no Grafana runs here).

A month (June 2026) of ``simulate_building`` for microville112, seed ``site_seed(112, 0)``
(what ``microville simulate`` and ``microville demo`` publish), reduced to local days with
the domain's ``balance``. Run from the repository root:

    python docs/render_overview.py [output.png]
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes

from microville.domain.balance import Balance, balance
from microville.domain.periods import localize
from microville.domain.site import read_sites
from microville.firmware_sim.building import simulate_building, site_seed

ROOT = Path(__file__).resolve().parent.parent
SITE_CONFIG = ROOT / "app" / "sites" / "microville112.toml"
DASHBOARD = ROOT / "dashboards" / "json" / "overview.json"
OUTPUT = Path(__file__).resolve().parent / "overview-preview.png"
CAPTION = (
    "Preview drawn with matplotlib from the demo data — not a Grafana screenshot "
    "(no Grafana runs here)"
)
#: Simulator column holding each meter role's cumulative index [Wh].
INDEX_OF_ROLE = {
    "production": "pv_wh",
    "grid_import": "import_wh",
    "grid_export": "export_wh",
    "submeter": "heat_pump_wh",
}
GREEN, RED, BLUE, ORANGE = "#56a64b", "#e02f44", "#3274d9", "#ff9830"
BACKGROUND, PANEL, TEXT, MUTED = "#111217", "#181b1f", "#ccccdc", "#8e8e9e"


def _balance(frame: pd.DataFrame, start: datetime, end: datetime) -> Balance:
    delta = frame.loc[pd.Timestamp(end)] - frame.loc[pd.Timestamp(start)]
    return balance(float(delta["pv_wh"]), float(delta["import_wh"]), float(delta["export_wh"]))


def _panel(ax: Axes, title: str) -> None:
    ax.set_facecolor(PANEL)
    ax.set_title(title, loc="left", color=TEXT, fontsize=11, pad=8)
    for spine in ax.spines.values():
        spine.set_color("#2c3235")
    ax.tick_params(colors=MUTED, labelsize=8)


def _stat(ax: Axes, title: str, kwh: float, note: str) -> None:
    _panel(ax, title)
    ax.set_xticks([])
    ax.set_yticks([])
    color = GREEN if kwh >= 0 else RED
    ax.text(
        0.5,
        0.56,
        f"{kwh:+,.0f} kWh",
        ha="center",
        va="center",
        fontsize=24,
        color=color,
        weight="bold",
        transform=ax.transAxes,
    )
    ax.text(
        0.5, 0.2, note, ha="center", va="center", fontsize=9, color=MUTED, transform=ax.transAxes
    )


def render(output: Path = OUTPUT) -> Path:
    """Simulate June 2026 for the sample site and draw the overview panels."""
    site = read_sites(SITE_CONFIG).sites[0]
    start = localize(datetime(2026, 6, 1), site.tz)
    end = localize(datetime(2026, 7, 1), site.tz)
    frame = simulate_building(site, start, end, timedelta(minutes=15), site_seed(112, 0))
    midnights = [localize(datetime(2026, 6, 1) + timedelta(days=d), site.tz) for d in range(31)]
    days = [_balance(frame, a, b) for a, b in pairwise(midnights)]
    today, month = days[-1], _balance(frame, start, end)
    year = month  # the demo data begins on 1 June: the year so far is this month
    title = json.loads(DASHBOARD.read_text(encoding="utf-8")).get("title", "Overview")

    plt.rcParams.update({"font.family": "DejaVu Sans", "text.color": TEXT})
    fig = plt.figure(figsize=(13, 8.6), dpi=90, facecolor=BACKGROUND)
    grid = fig.add_gridspec(
        3,
        3,
        height_ratios=[1, 2.1, 1.6],
        hspace=0.45,
        wspace=0.18,
        left=0.06,
        right=0.98,
        top=0.9,
        bottom=0.1,
    )
    fig.suptitle(
        f"{title} — {site.name} ({site.id}), June 2026",
        x=0.06,
        ha="left",
        color=TEXT,
        fontsize=15,
        weight="bold",
    )

    _stat(
        fig.add_subplot(grid[0, 0]),
        "Net balance today",
        today.net_wh / 1000,
        "30 Jun 2026 (last simulated day)",
    )
    _stat(fig.add_subplot(grid[0, 1]), "Net balance this month", month.net_wh / 1000, "June 2026")
    _stat(
        fig.add_subplot(grid[0, 2]),
        "Net balance this year",
        year.net_wh / 1000,
        "2026 so far (demo data from 1 Jun)",
    )

    dates = [m.replace(tzinfo=None) + timedelta(hours=12) for m in midnights[:-1]]  # mid-day
    ax = fig.add_subplot(grid[1, :2])
    _panel(ax, "Production vs consumption per day")
    offset = timedelta(hours=5)
    ax.bar(
        [d - offset for d in dates],
        [b.production_wh / 1000 for b in days],
        width=0.4,
        color=GREEN,
        label="Production (PV)",
    )
    ax.bar(
        [d + offset for d in dates],
        [b.consumption_wh / 1000 for b in days],
        width=0.4,
        color=ORANGE,
        label="Consumption",
    )
    ax.set_ylabel("kWh per day", color=MUTED, fontsize=9)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    ax.xaxis.set_major_locator(mdates.DayLocator(interval=3))
    ax.set_xlim(dates[0] - timedelta(hours=14), dates[-1] + timedelta(hours=14))
    ax.grid(axis="y", color="#2c3235")
    ax.set_axisbelow(True)
    ax.legend(
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
        facecolor=PANEL,
        edgecolor=PANEL,
        labelcolor=TEXT,
        ncols=2,
    )

    ax = fig.add_subplot(grid[1, 2])
    _panel(ax, "Self-sufficiency")
    shares = [100 * (b.self_sufficiency or 0.0) for b in days]
    ax.plot(dates, shares, color=BLUE, marker="o", markersize=3)
    ax.fill_between(dates, shares, color=BLUE, alpha=0.2)
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of consumption met by PV, per day", color=MUTED, fontsize=9)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    ax.xaxis.set_major_locator(mdates.DayLocator(interval=7))
    ax.grid(color="#2c3235")
    ax.text(
        0.5,
        0.1,
        f"June: {100 * (month.self_sufficiency or 0.0):.0f} %",
        transform=ax.transAxes,
        ha="center",
        fontsize=16,
        weight="bold",
        color=TEXT,
    )

    ax = fig.add_subplot(grid[2, :])
    _panel(ax, "Last reading per meter (cumulative index)")
    last = frame.iloc[-1]
    meters = [m for m in site.meters if m.role in INDEX_OF_ROLE]
    values = [float(last[INDEX_OF_ROLE[m.role]]) / 1000 for m in meters]
    colors = [GREEN if m.role == "production" else BLUE for m in meters]
    bars = ax.barh([m.id for m in meters], values, color=colors, height=0.6)
    ax.invert_yaxis()
    ax.set_xlabel("kWh", color=MUTED, fontsize=9)
    ax.set_xlim(0, max(values) * 1.45)
    ax.grid(axis="x", color="#2c3235")
    ax.set_axisbelow(True)
    stamp = frame.index[-1].tz_convert(site.tz)
    for bar, value, meter in zip(bars, values, meters, strict=True):
        ax.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            f"  {value:,.1f} kWh  ({meter.name})",
            va="center",
            fontsize=9,
            color=TEXT,
        )
    ax.text(
        1.0,
        -0.32,
        f"read at {stamp:%d %b %Y %H:%M %Z}",
        transform=ax.transAxes,
        ha="right",
        fontsize=8,
        color=MUTED,
    )

    fig.text(0.5, 0.015, CAPTION, ha="center", fontsize=11, color="#fade2a", style="italic")
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, facecolor=BACKGROUND, dpi=90)
    plt.close(fig)
    return output


if __name__ == "__main__":
    written = render(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT)
    print(f"wrote {written} ({written.stat().st_size / 1024:.0f} KiB)")
