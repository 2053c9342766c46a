"""A monthly report to HTML and PDF, from one Jinja2 template (``templates/``).

The PDF is WeasyPrint's rendering of the very HTML that is stored beside it: A4, page
numbers in the margin, charts as vector SVG.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2

from microville.domain.reporting import Language
from microville.domain.targets import Verdict
from microville.service.indicators import CarbonPeriod
from microville.service.report_charts import (
    carbon_svg,
    daily_energy_svg,
    monthly_net_svg,
    waste_svg,
)
from microville.service.report_data import HAS_DATA, EnergyFigures, MonthlyReport
from microville.service.report_text import Texts

NAN = float("nan")
TEMPLATES = Path(__file__).parent / "templates"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class RenderedReport:
    html: bytes
    pdf: bytes


def _kwh(wh: float | None) -> float | None:
    return None if wh is None else wh / 1000


def summary(report: MonthlyReport, t: Texts) -> list[str]:
    """A few plain sentences on the month, the year and the targets."""
    e, c12 = report.month_energy, report.carbon_rolling_12
    name, month = report.site.name, t.month(report.month)
    kwh = "kWh"
    fr = t.language is Language.FR
    net = e.final_net_wh
    if fr:
        first = (
            f"En {month}, {name} a produit {t.number(_kwh(e.production_wh))} {kwh} et consommé "
            f"{t.number(_kwh(e.consumption_wh))} {kwh} : le bilan du mois est "
            f"{'positif' if net >= 0 else 'négatif'} ({t.number(_kwh(net), signed=True)} {kwh} "
            f"en énergie finale, {t.number(_kwh(e.primary_net_whep), signed=True)} kWhep en "
            f"énergie primaire)."
        )
    else:
        first = (
            f"In {month}, {name} produced {t.number(_kwh(e.production_wh))} {kwh} and consumed "
            f"{t.number(_kwh(e.consumption_wh))} {kwh}: the month's balance is "
            f"{'positive' if net >= 0 else 'negative'} ({t.number(_kwh(net), signed=True)} {kwh} "
            f"in final energy, {t.number(_kwh(e.primary_net_whep), signed=True)} kWhep in "
            f"primary energy)."
        )
    r12 = report.rolling_12
    p12 = r12.primary_net_whep
    if fr:
        second = (
            f"Sur les 12 derniers mois, le bilan en énergie primaire est de "
            f"{t.number(_kwh(p12), signed=True)} kWhep"
            f"{' : le bâtiment est à énergie positive' if p12 is not None and p12 >= 0 else ''}"
            f" ; le bilan carbone net est de {t.number(c12.figures.net_kg, signed=True)} kgCO2e."
        )
    else:
        second = (
            f"Over the last 12 months, the primary energy balance is "
            f"{t.number(_kwh(p12), signed=True)} kWhep"
            f"{': the building is energy-positive' if p12 is not None and p12 >= 0 else ''}"
            f"; the net carbon balance is {t.number(c12.figures.net_kg, signed=True)} kgCO2e."
        )
    out = [first, second]
    rate = report.waste_month.indicators.diversion_rate
    if rate is not None:
        out.append(
            f"{t.percent(rate)} des déchets du mois ont évité l'enfouissement."
            if fr
            else f"{t.percent(rate)} of the month's waste was diverted from landfill."
        )
    if report.targets_rolling_12:
        colon = " : " if fr else ": "  # French typography: a space before the colon
        verdicts = ", ".join(
            f"{t[j.target]}{colon}{t[j.verdict.value]}" for j in report.targets_rolling_12
        )
        out.append(
            f"Objectifs sur 12 mois — {verdicts}."
            if fr
            else f"Targets over 12 months — {verdicts}."
        )
    if report.alerts:
        n = len(report.alerts)
        out.append(
            f"{n} événement(s) d'alerte ce mois-ci (détail en fin de rapport)."
            if fr
            else f"{n} alert event(s) this month (listed at the end)."
        )
    return out


#: How to read one figure of an energy column.
Figure = Callable[[EnergyFigures], float | None]


def _energy_rows(t: Texts, columns: list[EnergyFigures | None]) -> list[tuple[str, list[str]]]:
    def row(label: str, get: Figure, unit: str, decimals: int = 0) -> tuple[str, list[str]]:
        cells = [
            "–" if f is None else f"{t.number(get(f), decimals)} {unit}".strip() for f in columns
        ]
        return label, cells

    def rate(label: str, get: Figure) -> tuple[str, list[str]]:
        return label, ["–" if f is None else t.percent(get(f)) for f in columns]

    return [
        row(t["production"], lambda f: _kwh(f.production_wh), "kWh"),
        row(t["consumption"], lambda f: _kwh(f.consumption_wh), "kWh"),
        row(t["import"], lambda f: _kwh(f.import_wh), "kWh"),
        row(t["export"], lambda f: _kwh(f.export_wh), "kWh"),
        row(t["final_net"], lambda f: _kwh(f.final_net_wh), "kWh"),
        row(t["primary_net"], lambda f: _kwh(f.primary_net_whep), "kWhep"),
        row(t["final_net_m2"], lambda f: _kwh(f.final_net_wh_per_m2), "kWh/m²", 2),
        row(t["primary_net_m2"], lambda f: _kwh(f.primary_net_whep_per_m2), "kWhep/m²", 2),
        rate(t["self_consumption"], lambda f: f.electricity.self_consumption),
        rate(t["self_sufficiency"], lambda f: f.electricity.self_sufficiency),
        rate(t["coverage"].capitalize(), lambda f: f.evidence.coverage),
        row(t["estimated_energy"], lambda f: _kwh(f.evidence.estimated_wh), "kWh", 1),
    ]


def _carbon_rows(t: Texts, columns: list[CarbonPeriod]) -> list[tuple[str, list[str]]]:
    def row(label: str, values: list[float]) -> tuple[str, list[str]]:
        return label, [f"{t.number(v)} kgCO2e" for v in values]

    return [
        row(t["operational"], [c.figures.operational_kg for c in columns]),
        row(t["embodied"], [c.figures.embodied_amortised_kg for c in columns]),
        row(t["avoided"], [-c.figures.avoided_kg for c in columns]),
        row(t["net_carbon"], [c.figures.net_kg for c in columns]),
        (t["coverage"].capitalize(), [t.percent(c.evidence.coverage) for c in columns]),
    ]


def context(report: MonthlyReport, language: Language) -> dict[str, object]:
    """Everything the template shows, formatted in ``language``."""
    t = Texts(language)
    site, tz = report.site, report.site.tz
    months = [report.month.shift(k - len(report.months) + 1) for k in range(len(report.months))]
    labels = [t.month_short(m) for m in months]
    daily = daily_energy_svg(
        [str(d.start.astimezone(tz).day) for d in report.days],
        [d.production_wh / 1000 for d in report.days],
        [d.consumption_wh / 1000 for d in report.days],
        (t["production"], t["consumption"]),
        "kWh",
    )
    # A month without data is a gap in the chart, not a zero.
    known = [m.evidence.coverage >= HAS_DATA for m in report.months]
    monthly = monthly_net_svg(
        labels,
        [m.final_net_wh / 1000 if k else NAN for m, k in zip(report.months, known, strict=True)],
        [
            _kwh(m.primary_net_whep) if k else None
            for m, k in zip(report.months, known, strict=True)
        ],
        (f"{t['final']} [kWh]", f"{t['primary']} [kWhep]"),
        "kWh",
    )
    cm = report.carbon_months

    def carbon_kg(get: Callable[[CarbonPeriod], float]) -> list[float]:
        return [get(c) if c.evidence.coverage >= HAS_DATA else NAN for c in cm]

    carbon = carbon_svg(
        [t.month_short(m) for m in months[-len(cm) :]],
        carbon_kg(lambda c: c.figures.operational_kg),
        carbon_kg(lambda c: c.figures.embodied_amortised_kg),
        carbon_kg(lambda c: c.figures.avoided_kg),
        carbon_kg(lambda c: c.figures.net_kg),
        (t["operational"], t["embodied"], t["avoided"], t["net_carbon"]),
        "kgCO2e",
    )
    streams = report.streams
    waste_month = report.waste_month
    waste = (
        waste_svg(
            [s.value for s in streams],
            [waste_month.mass_kg.get(s, 0.0) for s in streams],
            t["this_month"],
            "kg",
        )
        if streams
        else None
    )
    verdicts_12 = {j.target: j for j in report.targets_rolling_12}
    targets = [
        {
            "name": t[j.target],
            "month": j,
            "rolling": verdicts_12.get(j.target),
            "criteria": j.criteria,
        }
        for j in report.targets_month
    ]
    factors = [
        (c.value, t["primary_factor"], f"{t.number(f.value, 3)} kWhep/kWh", f.source)
        for c, f in sorted(report.primary_factors.items())
    ] + [
        (c.value, t["carbon_factor"], f"{t.number(f.value, 3)} kgCO2e/kWh", f.source)
        for c, f in sorted(report.carbon_factors.items())
    ]
    return {
        "t": t,
        "lang": language.value,
        "site": site,
        "report": report,
        "month_name": t.month(report.month),
        "generated": t.date(report.generated_at, tz),
        "summary": summary(report, t),
        "targets": targets,
        "Verdict": Verdict,
        "energy_headers": [
            t["this_month"],
            t["same_month_last_year"],
            t["ytd"],
            t["last_12"],
        ],
        "energy_rows": _energy_rows(
            t, [report.month_energy, report.last_year, report.year_to_date, report.rolling_12]
        ),
        "carbon_headers": [t["this_month"], t["ytd"], t["last_12"]],
        "carbon_rows": _carbon_rows(
            t, [report.carbon_month, report.carbon_year_to_date, report.carbon_rolling_12]
        ),
        "factors": factors,
        "streams": [
            (
                s.value,
                t.number(waste_month.mass_kg.get(s, 0.0), 1),
                t.number(report.waste_year_to_date.mass_kg.get(s, 0.0), 1),
            )
            for s in streams
        ],
        "waste_rows": [
            (
                t["generated_kg"],
                f"{t.number(waste_month.indicators.generated_kg, 1)} kg",
                f"{t.number(report.waste_year_to_date.indicators.generated_kg, 1)} kg",
            ),
            (
                t["residual"],
                f"{t.number(waste_month.indicators.residual_kg, 1)} kg",
                f"{t.number(report.waste_year_to_date.indicators.residual_kg, 1)} kg",
            ),
            (
                t["diversion_rate"],
                t.percent(waste_month.indicators.diversion_rate),
                t.percent(report.waste_year_to_date.indicators.diversion_rate),
            ),
            (
                t["recovery_rate"],
                t.percent(waste_month.indicators.material_recovery_rate),
                t.percent(report.waste_year_to_date.indicators.material_recovery_rate),
            ),
            (
                t["coverage"].capitalize(),
                t.percent(waste_month.coverage),
                t.percent(report.waste_year_to_date.coverage),
            ),
        ],
        "charts": {"daily": daily, "monthly": monthly, "carbon": carbon, "waste": waste},
        "min_coverage": t.percent(site.targets.min_coverage),
        "alerts": [(a.alert_id, t.event(a.event), t.date(a.time, tz)) for a in report.alerts],
    }


def render_html(report: MonthlyReport, language: Language) -> str:
    return _ENV.get_template("monthly_report.html.j2").render(context(report, language))


def render(report: MonthlyReport, language: Language) -> RenderedReport:
    """The report as HTML and as the PDF printed from that same HTML."""
    import weasyprint  # heavy: only where a PDF is made

    html = render_html(report, language)
    pdf = weasyprint.HTML(string=html, base_url=str(TEMPLATES)).write_pdf()
    assert pdf is not None
    return RenderedReport(html=html.encode(), pdf=pdf)
