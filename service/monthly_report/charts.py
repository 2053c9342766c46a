"""The monthly report's charts, drawn by matplotlib as inline SVG (text kept as text, so
the PDF stays searchable and sharp at any zoom)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no screen: render to files only

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

SOLAR, LOAD, NET_POS, NET_NEG, GREY = "#e0a100", "#3b6ea8", "#2e8b57", "#c0392b", "#7f8c8d"
_STYLE: dict[str, Any] = {
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.color": "#dddddd",
    "axes.axisbelow": True,
}
SIZE_IN = (7.0, 2.6)
NAN = float("nan")


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]  # inline: no XML prolog or doctype


def _legend_above(ax: Axes, ncols: int) -> None:
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, ncols=ncols, fontsize=7.5)


def _has_values(*series: Sequence[float | None]) -> bool:
    return any(v is not None and math.isfinite(v) for values in series for v in values)


def _no_data(ax: Axes, text: str) -> None:
    """An empty chart that says so, without an axis scaled on nothing (±0.04)."""
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.grid(False)
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center",
            color=GREY, fontsize=11)  # fmt: skip


def daily_energy_svg(
    labels: Sequence[str],
    production_kwh: Sequence[float],
    consumption_kwh: Sequence[float],
    legend: tuple[str, str],
    ylabel: str,
    no_data: str,
) -> str:
    """Bars of production beside consumption per day [kWh]; a day without data (NaN)
    has no bar; no day with data at all: ``no_data`` written across the chart."""
    with plt.style.context(_STYLE):
        fig, ax = plt.subplots(figsize=SIZE_IN)
        x = range(len(labels))
        if _has_values(production_kwh, consumption_kwh):
            ax.bar([i - 0.2 for i in x], production_kwh, 0.4, color=SOLAR, label=legend[0])
            ax.bar([i + 0.2 for i in x], consumption_kwh, 0.4, color=LOAD, label=legend[1])
            ax.set_ylabel(ylabel)
            _legend_above(ax, 2)
        else:
            _no_data(ax, no_data)
        ax.set_xticks(list(x), labels, fontsize=7)
        ax.set_xlim(-0.6, len(labels) - 0.4)
        return _svg(fig)


def monthly_net_svg(
    labels: Sequence[str],
    final_kwh: Sequence[float],
    primary_kwhep: Sequence[float | None],
    titles: tuple[str, str],
    no_data: str,
) -> str:
    """Net balance per month on two charts, one axis each: final energy [kWh] above,
    primary energy [kWhep] below (different units never share an axis). A month
    without data (NaN or None) has no bar."""
    with plt.style.context(_STYLE):
        fig, axes = plt.subplots(2, 1, figsize=(SIZE_IN[0], 4.0), sharex=True)
        x = list(range(len(labels)))
        primary = [NAN if v is None else v for v in primary_kwhep]
        for ax, values, title, unit in zip(
            axes, (list(final_kwh), primary), titles, ("kWh", "kWhep"), strict=True
        ):
            ax.set_title(title, loc="left", fontsize=8.5)
            if _has_values(values):
                colors = [NET_NEG if v < 0 else NET_POS for v in values]  # NaN: no bar
                ax.bar(x, values, 0.6, color=colors)
                ax.axhline(0, color="#333333", lw=0.8)
                ax.set_ylabel(unit)
            else:
                _no_data(ax, no_data)
        axes[-1].set_xticks(x, labels, fontsize=7)
        axes[-1].set_xlim(-0.6, len(labels) - 0.4)
        fig.tight_layout()
        return _svg(fig)


def carbon_svg(
    labels: Sequence[str],
    operational_kg: Sequence[float],
    embodied_kg: Sequence[float],
    avoided_kg: Sequence[float],
    net_kg: Sequence[float],
    legend: tuple[str, str, str, str],
    ylabel: str,
    no_data: str,
) -> str:
    """Emissions stacked above zero, avoided below, net as a line [kgCO2e]."""
    with plt.style.context(_STYLE):
        fig, ax = plt.subplots(figsize=SIZE_IN)
        x = list(range(len(labels)))
        if _has_values(operational_kg, embodied_kg, avoided_kg, net_kg):
            ax.bar(x, operational_kg, 0.6, color=LOAD, label=legend[0])
            ax.bar(x, embodied_kg, 0.6, bottom=operational_kg, color=GREY, label=legend[1])
            ax.bar(x, [-v for v in avoided_kg], 0.6, color=NET_POS, label=legend[2])
            ax.plot(x, net_kg, "o-", color="#333333", ms=3, lw=1, label=legend[3])
            ax.axhline(0, color="#333333", lw=0.8)
            ax.set_ylabel(ylabel)
            _legend_above(ax, 2)
        else:
            _no_data(ax, no_data)
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_xlim(-0.6, len(labels) - 0.4)
        return _svg(fig)


def waste_svg(streams: Sequence[str], month_kg: Sequence[float], legend: str, ylabel: str) -> str:
    """Horizontal bars: mass per waste stream [kg]."""
    with plt.style.context({**_STYLE, "axes.grid.axis": "x"}):
        fig, ax = plt.subplots(figsize=(7.0, 0.4 + 0.32 * max(len(streams), 1)))
        ax.barh(list(streams), month_kg, color=NET_POS, label=legend)
        ax.invert_yaxis()
        ax.set_xlabel(ylabel)
        return _svg(fig)
