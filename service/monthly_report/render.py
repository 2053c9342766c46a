"""A monthly report to HTML and PDF, from one Jinja2 template (``templates/``).

The PDF is WeasyPrint's rendering of the very HTML that is stored beside it: A4, page
numbers in the margin, charts as vector SVG.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2

from domain.reporting import Language
from domain.targets import Verdict
from service.monthly_report.charts import (
    carbon_svg,
    daily_energy_svg,
    monthly_net_svg,
    waste_svg,
)
from service.monthly_report.figures import HAS_DATA, EnergyFigures, MonthlyReport
from service.monthly_report.words import Texts, alert_message
from service.usecases.carbon import CarbonPeriod

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


def _month_sentence(report: MonthlyReport, t: Texts) -> str:
    """The month's production, consumption and balance; its sign stated only when the
    month's coverage would prove a target (``min_coverage``)."""
    e, name, month = report.month_energy, report.site.name, t.month(report.month)
    fr = t.language is Language.FR
    coverage, minimum = e.evidence.coverage, report.site.targets.min_coverage
    if coverage < HAS_DATA:
        return (
            f"Aucune donnée pour {month} : aucun relevé de compteur n'a été reçu sur le "
            "mois, aucun bilan ne peut en être tiré."
            if fr
            else f"No data for {month}: no meter reading was received over the month, "
            "so no balance can be drawn from it."
        )
    prod, cons = t.number(_kwh(e.production_wh)), t.number(_kwh(e.consumption_wh))
    net = t.number(_kwh(e.final_net_wh), signed=True)
    primary = t.number(_kwh(e.primary_net_whep), signed=True)
    c, m = t.coverage(coverage), t.coverage(minimum)
    if coverage >= minimum:
        sign = e.final_net_wh >= 0
        return (
            f"En {month}, {name} a produit {prod} kWh et consommé {cons} kWh : le bilan du "
            f"mois est {'positif' if sign else 'négatif'} ({net} kWh en énergie finale, "
            f"{primary} kWhep en énergie primaire ; couverture des données {c})."
            if fr
            else f"In {month}, {name} produced {prod} kWh and consumed {cons} kWh: the "
            f"month's balance is {'positive' if sign else 'negative'} ({net} kWh in final "
            f"energy, {primary} kWhep in primary energy; data coverage {c})."
        )
    return (
        f"En {month}, {name} a produit {prod} kWh et consommé {cons} kWh sur les heures "
        f"mesurées : le bilan du mois est non démontrable, ses données couvrent {c} du mois, "
        f"sous les {m} qu'un verdict exige ({net} kWh en énergie finale, {primary} kWhep "
        "en énergie primaire, heures mesurées seulement)."
        if fr
        else f"In {month}, {name} produced {prod} kWh and consumed {cons} kWh over the "
        f"hours measured: the month's balance is not provable, its data cover {c} of the "
        f"month, below the {m} a verdict needs ({net} kWh in final energy, {primary} kWhep "
        "in primary energy, measured hours only)."
    )


def _year_sentence(report: MonthlyReport, t: Texts) -> str:
    """The last twelve months' primary balance, "energy-positive" only where its
    coverage would prove it, and their carbon over like periods."""
    fr = t.language is Language.FR
    r12, minimum = report.rolling_12, report.site.targets.min_coverage
    coverage = r12.evidence.coverage
    if coverage < HAS_DATA:
        return (
            "Aucune donnée sur les 12 derniers mois : ni bilan annuel en énergie ni bilan carbone."
            if fr
            else "No data over the last 12 months: no annual energy or carbon balance."
        )
    p12 = r12.primary_net_whep
    primary = t.number(_kwh(p12), signed=True)
    c, m = t.coverage(coverage), t.coverage(minimum)
    if p12 is None:
        energy = (
            "Sur les 12 derniers mois, le bilan en énergie primaire n'est pas calculable "
            "(un facteur d'énergie primaire manque)"
            if fr
            else "Over the last 12 months, the primary energy balance cannot be computed "
            "(a primary energy factor is missing)"
        )
    elif coverage >= minimum:
        energy = (
            f"Sur les 12 derniers mois, le bilan en énergie primaire est de {primary} kWhep"
            + (
                " : le bâtiment est à énergie positive"
                if p12 >= 0
                else " : le bâtiment n'est pas à énergie positive"
            )
            + f" (couverture des données {c})"
            if fr
            else f"Over the last 12 months, the primary energy balance is {primary} kWhep"
            + (
                ": the building is energy-positive"
                if p12 >= 0
                else ": the building is not energy-positive"
            )
            + f" (data coverage {c})"
        )
    else:
        energy = (
            f"Sur les 12 derniers mois, le bilan annuel est non démontrable : les données "
            f"couvrent {c} de la période, sous les {m} qu'un verdict exige (bilan en énergie "
            f"primaire des heures mesurées : {primary} kWhep)"
            if fr
            else f"Over the last 12 months, the annual balance is not provable: the data "
            f"cover {c} of the period, below the {m} a verdict needs (primary energy "
            f"balance of the hours measured: {primary} kWhep)"
        )
    measured = report.carbon_measured
    carbon_coverage = report.carbon_rolling_12.evidence.coverage
    if measured is None:
        carbon = ""
    elif carbon_coverage >= minimum:
        kg = t.number(report.carbon_rolling_12.figures.net_kg, signed=True)
        carbon = (
            f" ; le bilan carbone net est de {kg} kgCO2e"
            if fr
            else f"; the net carbon balance is {kg} kgCO2e"
        )
    else:
        n = sum(1 for p in report.carbon_months if p.evidence.coverage >= HAS_DATA)
        kg = t.number(measured.figures.net_kg, signed=True)
        carbon = (
            (
                f". Sur le seul mois ayant des données (sur 12), avec sa part de construction "
                f"amortie face à sa propre exploitation, le bilan carbone net est de {kg} kgCO2e"
                if n == 1
                else f". Sur les {n} mois ayant des données (sur 12), chacun comptant sa part "
                f"de construction amortie face à sa propre exploitation, le bilan carbone net "
                f"est de {kg} kgCO2e"
            )
            if fr
            else (
                f". Over the only month with data (of 12), its share of amortised embodied "
                f"carbon set against its own operation, the net carbon balance is {kg} kgCO2e"
                if n == 1
                else f". Over the {n} months with data (of 12), each setting its own share of "
                f"amortised embodied carbon against its own operation, the net carbon balance "
                f"is {kg} kgCO2e"
            )
        )
    return energy + carbon + "."


def summary(report: MonthlyReport, t: Texts) -> list[str]:
    """A few plain sentences on the month, the year and the targets; none states a
    balance's sign or a target met where the coverage would not prove it."""
    fr = t.language is Language.FR
    out = [_month_sentence(report, t), _year_sentence(report, t)]
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


def _energy_rows(t: Texts, columns_in: list[EnergyFigures | None]) -> list[tuple[str, list[str]]]:
    # A period without data shows "–", not "0 kWh" of production; its coverage says why.
    columns = [f if f is not None and f.evidence.coverage >= HAS_DATA else None for f in columns_in]

    def row(label: str, get: Figure, unit: str, decimals: int = 0) -> tuple[str, list[str]]:
        cells = [
            "–" if f is None else f"{t.number(get(f), decimals)} {unit}".strip() for f in columns
        ]
        return label, cells

    def rate(label: str, get: Figure) -> tuple[str, list[str]]:
        return label, ["–" if f is None else t.percent(get(f)) for f in columns]

    coverage = (
        t["coverage"].capitalize(),
        ["–" if f is None else t.coverage(f.evidence.coverage) for f in columns_in],
    )

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
        coverage,
        row(t["estimated_energy"], lambda f: _kwh(f.evidence.estimated_wh), "kWh", 1),
    ]


def _carbon_rows(t: Texts, columns: list[CarbonPeriod]) -> list[tuple[str, list[str]]]:
    def row(label: str, values: list[float | None]) -> tuple[str, list[str]]:
        return label, ["–" if v is None else f"{t.number(v)} kgCO2e" for v in values]

    # Without data the operation is unknown (not zero): the embodied share stays, the
    # operation, the avoided carbon and the net show "–".
    known = [c.evidence.coverage >= HAS_DATA for c in columns]

    def measured(values: list[float]) -> list[float | None]:
        return [v if k else None for v, k in zip(values, known, strict=True)]

    return [
        row(t["operational"], measured([c.figures.operational_kg for c in columns])),
        row(t["embodied"], [c.figures.embodied_amortised_kg for c in columns]),
        row(t["avoided"], measured([-c.figures.avoided_kg for c in columns])),
        row(t["net_carbon"], measured([c.figures.net_kg for c in columns])),
        (t["coverage"].capitalize(), [t.coverage(c.evidence.coverage) for c in columns]),
    ]


def _charts(report: MonthlyReport, t: Texts) -> dict[str, str | None]:
    """The four charts as SVG: daily energy, monthly net, carbon, waste (None: no stream)."""
    tz = report.site.tz
    months = [report.month.shift(k - len(report.months) + 1) for k in range(len(report.months))]
    labels = [t.month_short(m) for m in months]
    # A day or a month without data is a gap in the chart, not a zero.
    days = [d if d.evidence.coverage >= HAS_DATA else None for d in report.days]
    daily = daily_energy_svg(
        [str(d.start.astimezone(tz).day) for d in report.days],
        [NAN if d is None else d.production_wh / 1000 for d in days],
        [NAN if d is None else d.consumption_wh / 1000 for d in days],
        (t["production"], t["consumption"]),
        "kWh",
        t["no_data_chart"],
    )
    known = [m.evidence.coverage >= HAS_DATA for m in report.months]
    monthly = monthly_net_svg(
        labels,
        [m.final_net_wh / 1000 if k else NAN for m, k in zip(report.months, known, strict=True)],
        [
            _kwh(m.primary_net_whep) if k else None
            for m, k in zip(report.months, known, strict=True)
        ],
        (t["chart_final_net"], t["chart_primary_net"]),
        t["no_data_chart"],
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
        t["no_data_chart"],
    )
    streams, waste_month = report.streams, report.waste_month
    waste = (
        waste_svg(
            [t.stream(s) for s in streams],
            [waste_month.mass_kg.get(s, 0.0) for s in streams],
            t["this_month"],
            "kg",
        )
        if streams
        else None
    )
    return {"daily": daily, "monthly": monthly, "carbon": carbon, "waste": waste}


def _factors(report: MonthlyReport, t: Texts) -> list[tuple[str, str, str, str]]:
    """Each factor used with its value and source: primary energy, then carbon."""
    return [
        (
            t.carrier(c),
            t["primary_factor"],
            f"{t.number(f.value, 3)} kWhep/kWh",
            t.factor_source("primary", c, f),
        )
        for c, f in sorted(report.primary_factors.items())
    ] + [
        (
            t.carrier(c),
            t["carbon_factor"],
            f"{t.number(f.value, 3)} kgCO2e/kWh",
            t.factor_source("carbon", c, f),
        )
        for c, f in sorted(report.carbon_factors.items())
    ]


def _waste_rows(report: MonthlyReport, t: Texts) -> list[tuple[str, str, str]]:
    """The waste indicators, this month and year to date."""
    waste_month, ytd = report.waste_month, report.waste_year_to_date
    return [
        (
            t["generated_kg"],
            f"{t.number(waste_month.indicators.generated_kg, 1)} kg",
            f"{t.number(ytd.indicators.generated_kg, 1)} kg",
        ),
        (
            t["residual"],
            f"{t.number(waste_month.indicators.residual_kg, 1)} kg",
            f"{t.number(ytd.indicators.residual_kg, 1)} kg",
        ),
        (
            t["diversion_rate"],
            t.percent(waste_month.indicators.diversion_rate),
            t.percent(ytd.indicators.diversion_rate),
        ),
        (
            t["recovery_rate"],
            t.percent(waste_month.indicators.material_recovery_rate),
            t.percent(ytd.indicators.material_recovery_rate),
        ),
        (
            t["coverage"].capitalize(),
            t.coverage(waste_month.coverage),
            t.coverage(ytd.coverage),
        ),
    ]


def context(report: MonthlyReport, language: Language) -> dict[str, object]:
    """Everything the template shows, formatted in ``language``."""
    t = Texts(language)
    site, tz = report.site, report.site.tz
    waste_month = report.waste_month
    verdicts_12 = {j.target: j for j in report.targets_rolling_12}
    targets = [
        {
            "name": t[j.target],
            "month": j,
            "rolling": verdicts_12.get(j.target),
            "criteria": [t.criterion(c.figure, c.direction, c.threshold) for c in j.criteria],
        }
        for j in report.targets_month
    ]
    measured = report.carbon_measured
    carbon_columns = [report.carbon_month, report.carbon_year_to_date, report.carbon_rolling_12]
    n_measured = sum(1 for c in report.carbon_months if c.evidence.coverage >= HAS_DATA)
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
        "carbon_headers": [t["this_month"], t["ytd"], t["last_12"]]
        + ([t["measured_months"].format(n=n_measured)] if measured else []),
        "carbon_rows": _carbon_rows(t, carbon_columns + ([measured] if measured else [])),
        "factors": _factors(report, t),
        "streams": [
            (
                t.stream(s),
                t.number(waste_month.mass_kg.get(s, 0.0), 1),
                t.number(report.waste_year_to_date.mass_kg.get(s, 0.0), 1),
            )
            for s in report.streams
        ],
        "waste_rows": _waste_rows(report, t),
        "charts": _charts(report, t),
        "min_coverage": t.coverage(site.targets.min_coverage),
        "alerts": [
            (
                alert_message(t, a.alert_id, a.event, a.figures, tz),
                t.event(a.event),
                t.date(a.time, tz),
            )
            for a in report.alerts
        ],
        "month_has_data": report.month_energy.evidence.coverage >= HAS_DATA,
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
