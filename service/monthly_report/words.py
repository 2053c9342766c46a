"""Words and number formats of the monthly report, in French and English."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date

from domain.coverage import coverage_percent
from domain.factors import CARBON_FACTORS, PRIMARY_ENERGY_FACTORS, Factor
from domain.reporting import Language, Month
from domain.site import Carrier
from domain.waste import WasteStream

MONTHS = {
    Language.FR: [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ],
    Language.EN: [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
}

#: Waste streams as a board reads them: stream → (French, English).
STREAMS: dict[WasteStream, tuple[str, str]] = {
    WasteStream.REUSE: ("Réemploi", "Reuse"),
    WasteStream.PREPARATION_FOR_REUSE: (
        "Préparation en vue de la réutilisation",
        "Preparation for reuse",
    ),
    WasteStream.RECYCLING: ("Recyclage", "Recycling"),
    WasteStream.COMPOSTING: ("Compostage", "Composting"),
    WasteStream.BACKFILL: ("Remblayage", "Backfilling"),
    WasteStream.ENERGY_RECOVERY: ("Valorisation énergétique", "Energy recovery"),
    WasteStream.LANDFILL: ("Enfouissement ou incinération", "Landfill or incineration"),
}

#: Energy carriers: carrier → (French, English).
CARRIERS: dict[Carrier, tuple[str, str]] = {
    Carrier.ELECTRICITY: ("Électricité", "Electricity"),
    Carrier.GAS: ("Gaz naturel", "Natural gas"),
    Carrier.HEAT: ("Réseau de chaleur", "Heat network"),
    Carrier.WOOD: ("Bois", "Wood"),
    Carrier.WATER: ("Eau", "Water"),
    Carrier.WASTE: ("Déchets", "Waste"),
    Carrier.OTHER: ("Autre", "Other"),
}

_RE2020 = ("RE2020, arrêté du 4 août 2021", "RE2020, French decree of 4 August 2021")

#: Where each default factor comes from, written for a board (the domain's ``source``
#: also tells the operator what to configure): (kind, carrier) → (French, English).
FACTOR_SOURCES: dict[tuple[str, Carrier], tuple[str, str]] = {
    ("primary", Carrier.ELECTRICITY): _RE2020,
    ("primary", Carrier.GAS): _RE2020,
    ("carbon", Carrier.ELECTRICITY): (
        f"{_RE2020[0]} : électricité, usage chauffage",
        f"{_RE2020[1]}: electricity for heating",
    ),
    ("carbon", Carrier.GAS): (f"{_RE2020[0]} : gaz naturel", f"{_RE2020[1]}: natural gas"),
    ("carbon", Carrier.WOOD): (
        f"{_RE2020[0]} : granulés et bûches de bois",
        f"{_RE2020[1]}: wood pellets and logs",
    ),
}
_SITE_FACTOR = (
    "Valeur propre au site, fixée dans sa configuration",
    "Value set for this site in its configuration",
)

#: A target's criteria in words: figure → (French, English, unit; "%" for a rate).
CRITERIA: dict[str, tuple[str, str, str]] = {
    "primary_energy_balance_kwh": (
        "Bilan net en énergie primaire",
        "Net primary energy balance",
        "kWhep",
    ),
    "net_carbon_kg": ("Bilan carbone net", "Net carbon balance", "kgCO2e"),
    "residual_kg": ("Déchets résiduels", "Residual waste", "kg"),
    "material_recovery_rate": ("Taux de valorisation matière", "Material recovery rate", "%"),
    "diversion_rate": (
        "Taux de détournement de l'enfouissement",
        "Diversion from landfill",
        "%",
    ),
    "renovation_material_recovery_rate": (
        "Valorisation matière des déchets du chantier",
        "Material recovery of the works' waste",
        "%",
    ),
}

#: key → (French, English)
_TEXTS: dict[str, tuple[str, str]] = {
    "title": ("Rapport d'impact mensuel", "Monthly impact report"),
    "generated": ("Généré le", "Generated on"),
    "summary": ("En bref", "Summary"),
    "targets": ("Objectifs", "Targets"),
    "target": ("Objectif", "Target"),
    "this_month": ("Ce mois", "This month"),
    "last_12": ("12 derniers mois", "Last 12 months"),
    "ytd": ("Depuis janvier", "Year to date"),
    "same_month_last_year": ("Même mois, an passé", "Same month last year"),
    "positive_energy": ("Énergie positive", "Positive energy"),
    "zero_carbon": ("Zéro carbone", "Zero carbon"),
    "zero_waste": ("Zéro déchet", "Zero waste"),
    "met": ("atteint", "met"),
    "not_met": ("non atteint", "not met"),
    "not_provable": ("non démontrable", "not provable"),
    "no_target": (
        "Aucun objectif n'est configuré pour ce site.",
        "No target is set for this site.",
    ),
    "coverage": ("couverture", "coverage"),
    "criteria": ("Critères", "Criteria"),
    "energy": ("Énergie", "Energy"),
    "figure": ("Indicateur", "Figure"),
    "production": ("Production", "Production"),
    "consumption": ("Consommation (tous usages)", "Consumption (all uses)"),
    "import": ("Soutirage du réseau", "Drawn from the grid"),
    "export": ("Injection sur le réseau", "Fed into the grid"),
    "final_net": ("Bilan net, énergie finale", "Net balance, final energy"),
    "primary_net": ("Bilan net, énergie primaire", "Net balance, primary energy"),
    "final_net_m2": ("Bilan net final par m²", "Final net balance per m²"),
    "primary_net_m2": ("Bilan net primaire par m²", "Primary net balance per m²"),
    "self_consumption": ("Taux d'autoconsommation", "Self-consumption rate"),
    "self_sufficiency": ("Taux d'autoproduction", "Self-sufficiency rate"),
    "estimated": ("dont estimé", "of which estimated"),
    "estimated_energy": ("Énergie estimée (trous de données)", "Estimated energy (data gaps)"),
    "no_data_months": (
        "Les mois sans données n'ont pas de barre.",
        "Months without data have no bar.",
    ),
    "chart_daily": (
        "Production et consommation par jour",
        "Production and consumption per day",
    ),
    "chart_monthly_net": (
        "Bilan net par mois, 12 derniers mois",
        "Net balance per month, last 12 months",
    ),
    "chart_final_net": ("Énergie finale [kWh]", "Final energy [kWh]"),
    "chart_primary_net": ("Énergie primaire [kWhep]", "Primary energy [kWhep]"),
    "final": ("finale", "final"),
    "primary": ("primaire", "primary"),
    "carbon": ("Carbone", "Carbon"),
    "operational": ("Exploitation (énergie importée)", "Operational (imported energy)"),
    "avoided": ("Évité (énergie injectée)", "Avoided (exported energy)"),
    "embodied": ("Construction, part amortie", "Embodied, amortised share"),
    "net_carbon": ("Bilan carbone net", "Net carbon balance"),
    "chart_carbon": (
        "Carbone par mois, 12 derniers mois",
        "Carbon per month, last 12 months",
    ),
    "intensity_hours": (
        "heures du mois valorisées avec l'intensité carbone horaire du réseau importée",
        "hours of the month priced with the imported hourly grid carbon intensity",
    ),
    "factors": ("Facteurs et sources", "Factors and sources"),
    "carrier": ("Vecteur", "Carrier"),
    "value": ("Valeur", "Value"),
    "source": ("Source", "Source"),
    "primary_factor": ("Énergie primaire", "Primary energy"),
    "carbon_factor": ("Carbone", "Carbon"),
    "waste": ("Déchets", "Waste"),
    "stream": ("Filière", "Stream"),
    "generated_kg": ("Déchets produits", "Waste generated"),
    "residual": ("Résiduel (enfoui ou incinéré)", "Residual (landfilled or incinerated)"),
    "diversion_rate": ("Taux de détournement de l'enfouissement", "Diversion from landfill"),
    "recovery_rate": ("Taux de valorisation matière", "Material recovery rate"),
    "reused": ("Réemploi", "Reused"),
    "chart_waste": ("Déchets par filière", "Waste per stream"),
    "no_waste": ("Aucun déchet enregistré sur la période.", "No waste recorded in the period."),
    "quality": ("Qualité des données", "Data quality"),
    "meter": ("Compteur", "Meter"),
    "incomplete_days": ("Jours incomplets", "Incomplete days"),
    "resets": ("Remises à zéro", "Resets"),
    "rollovers": ("Débordements", "Rollovers"),
    "glitches": ("Valeurs écartées", "Glitches ignored"),
    "quality_note": (
        "L'énergie vient des index cumulés : un message perdu ne perd pas d'énergie. "
        "L'énergie répartie sur un trou de données est dite estimée. Un objectif est "
        "« non démontrable » quand la couverture est sous le seuil configuré ({min}).",
        "Energy comes from cumulative indexes: a lost message loses no energy. Energy "
        "spread over a data gap is marked estimated. A target is 'not provable' when "
        "coverage is below the configured threshold ({min}).",
    ),
    "alerts": ("Alertes du mois", "Alerts of the month"),
    "no_alerts": ("Aucune alerte ce mois-ci.", "No alert this month."),
    "alert": ("Alerte", "Alert"),
    "event": ("Événement", "Event"),
    "time": ("Date", "Time"),
    "firing": ("déclenchée", "fired"),
    "resolved": ("résolue", "resolved"),
    "reminder": ("rappel", "reminder"),
    "no_data": ("pas de données", "no data"),
    "no_data_chart": ("Aucune donnée sur la période", "No data for the period"),
    "measured_months": ("Mois mesurés ({n} sur 12)", "Months with data ({n} of 12)"),
    "carbon_like_for_like": (
        "La construction amortie compte pour toute la période de chaque colonne, "
        "l'exploitation et l'évité seulement pour les heures mesurées (ligne Couverture). "
        "La colonne « Mois mesurés » ne garde que les mois ayant des données : chacun y "
        "met sa part de construction face à sa propre exploitation.",
        "Embodied carbon is amortised over each column's whole period, operation and "
        "avoided carbon only over the hours measured (Coverage row). The 'Months with "
        "data' column keeps only the months that have data, each setting its own share "
        "of embodied carbon against its own operation.",
    ),
    "site_factor": _SITE_FACTOR,
    "method": ("Méthode", "Method"),
    "method_text": (
        "Mois calendaire en heure locale ({tz}), changements d'heure compris. Bilan "
        "net = production − consommation ; en énergie primaire, Σ facteur × (injection − "
        "soutirage) (méthode RE2020). Carbone net = exploitation + construction amortie "
        "sur {years} ans − évité ; l'évité est présenté à part, jamais déduit en silence.",
        "Calendar month in local time ({tz}), DST changes included. Net balance = "
        "production − consumption; in primary energy, Σ factor × (export − import) "
        "(RE2020 method). Net carbon = operational + embodied amortised over {years} "
        "years − avoided; avoided carbon is shown apart, never silently netted.",
    ),
    "page": ("Page", "Page"),
}


class Texts:
    """Words and number formats of one language."""

    def __init__(self, language: Language) -> None:
        self.language = language
        self._i = 0 if language is Language.FR else 1

    def __getitem__(self, key: str) -> str:
        return _TEXTS[key][self._i]

    def event(self, event: str) -> str:
        """An alert event's name (firing, resolved, reminder), or the raw one if unknown."""
        return self[event] if event in ("firing", "resolved", "reminder") else event

    def month(self, month: Month) -> str:
        return f"{MONTHS[self.language][month.month - 1]} {month.year}"

    def month_short(self, month: Month) -> str:
        """Two lines, for a chart's axis: the locale's abbreviation (CLDR, through Babel:
        ``juin`` / ``juil.``, ``Jun`` / ``Jul``) over the year."""
        abbr = format_date(date(month.year, month.month, 1), "MMM", locale=self.language.value)
        return f"{abbr}\n{month.year}"

    def stream(self, stream: WasteStream) -> str:
        return STREAMS[stream][self._i]

    def carrier(self, carrier: Carrier) -> str:
        return CARRIERS[carrier][self._i]

    def factor_source(self, kind: str, carrier: Carrier, factor: Factor) -> str:
        """Where ``factor`` comes from, for a board: the regulation of a default, or
        "set for this site"; a default not in :data:`FACTOR_SOURCES` keeps its own text."""
        defaults = PRIMARY_ENERGY_FACTORS if kind == "primary" else CARBON_FACTORS
        if defaults.get(carrier) != factor:
            return _SITE_FACTOR[self._i]
        words = FACTOR_SOURCES.get((kind, carrier))
        return words[self._i] if words else factor.source

    def criterion(self, figure: str, direction: str, threshold: float) -> str:
        """``Net primary energy balance ≥ 0 kWhep``, ``Material recovery rate ≥ 70 %``."""
        fr, en, unit = CRITERIA.get(figure, (figure, figure, ""))
        sign = "≥" if direction == "min" else "≤"
        value = (
            self.percent(threshold)
            if unit == "%"
            else f"{self.number(threshold, 0 if threshold == round(threshold) else 2)} {unit}"
        )
        return f"{fr if self.language is Language.FR else en} {sign} {value.strip()}"

    def coverage(self, rate: float | None, decimals: int | None = None) -> str:
        """A coverage as a percentage rounded down: compared with ``min_coverage``, 94.9 %
        never reads "95 %", 99.96 % never "100 %". ``decimals`` None: whole percents,
        or one decimal where rounding down and to nearest would differ (94,9 %)."""
        if rate is None:
            return "–"
        if decimals is None:
            decimals = 0 if coverage_percent(rate) == round(rate * 100) else 1
        sep = "\u202f" if self.language is Language.FR else ""
        return f"{self.number(coverage_percent(rate, decimals), decimals)}{sep}%"

    def number(self, value: float | None, decimals: int = 0, signed: bool = False) -> str:
        """``1 234,5`` in French (narrow no-break spaces), ``1,234.5`` in English; ``–``
        for a missing value."""
        if value is None or not math.isfinite(value):
            return "–"
        if round(value, decimals) == 0:
            value = 0.0  # no "-0"
        text = f"{value:{'+' if signed else ''},.{decimals}f}"
        if self.language is Language.FR:
            text = text.replace(",", "\u202f").replace(".", ",")
        return text.replace("-", "−")

    def percent(self, rate: float | None, decimals: int = 0) -> str:
        if rate is None:
            return "–"
        sep = "\u202f" if self.language is Language.FR else ""
        return f"{self.number(rate * 100, decimals)}{sep}%"

    def date(self, t: datetime, tz: ZoneInfo) -> str:
        local = t.astimezone(tz)
        if self.language is Language.FR:
            return local.strftime("%d/%m/%Y %H:%M")
        return local.strftime("%Y-%m-%d %H:%M")


#: Balance windows of the alerts: window → (French, English).
WINDOWS: dict[str, tuple[str, str]] = {
    "today": ("aujourd'hui", "today"),
    "rolling_7d": ("sur 7 jours glissants", "over the last 7 days"),
    "month_to_date": ("depuis le début du mois", "month to date"),
    "rolling_12m": ("sur 12 mois glissants", "over the last 12 months"),
    "year_to_date": ("depuis le 1er janvier", "year to date"),
}


def alert_message(
    t: Texts, alert_id: str, event: str, figures: Mapping[str, object], tz: ZoneInfo
) -> str:
    """What an alert event said, in the report's language, from its kind (in its id:
    ``site:kind:what``), its event (firing, reminder, resolved) and its figures."""
    fr = t.language is Language.FR
    _, kind, what = ["", "", "", *alert_id.split(":")][-3:]
    resolved, reminder = event == "resolved", event == "reminder"

    def num(key: str, decimals: int = 0) -> str | None:
        v = figures.get(key)
        return t.number(v, decimals, signed=True) if isinstance(v, int | float) else None

    def pct(key: str) -> str | None:
        v = figures.get(key)
        return t.coverage(v) if isinstance(v, int | float) else None

    reason = figures.get("resolved_reason")
    if resolved and isinstance(reason, str):
        return f"Résolue : {reason}" if fr else f"Resolved: {reason}"
    if kind == "coverage" and (c := pct("coverage")) and (m := pct("min_coverage")):
        if resolved:
            return (
                f"Couverture des données du mois revenue à {c}, au-dessus des {m} requis"
                if fr
                else f"This month's data coverage is back to {c}, above the {m} required"
            )
        still = ("toujours " if fr else "still ") if reminder else ""
        return (
            f"Couverture des données du mois {still}à {c}, sous les {m} qu'un objectif "
            "exige pour être démontrable"
            if fr
            else f"This month's data coverage is {still}{c}, below the {m} a target needs "
            "to be provable"
        )
    if kind == "balance" and what != "unknown" and (net := num("net_kwh", 1)):
        final = figures.get("energy") != "primary"
        unit = "kWh" if final else "kWhep"
        energy = (
            ("énergie finale" if final else "énergie primaire")
            if fr
            else ("final-energy" if final else "primary-energy")
        )
        window = WINDOWS.get(what, (what, what))[0 if fr else 1]
        if resolved:
            return (
                f"Bilan en {energy} {window} revenu à {net} {unit}"
                if fr
                else f"The {energy} balance {window} is back to {net} {unit}"
            )
        return (
            f"Bilan en {energy} {window} négatif : {net} {unit}"
            if fr
            else f"The {energy} balance {window} is negative: {net} {unit}"
        )
    if kind == "balance":
        return (
            ("Bilan de nouveau calculable" if fr else "The balance can be computed again")
            if resolved
            else (
                "Bilan non calculable : configuration à compléter"
                if fr
                else "The balance cannot be computed: configuration to complete"
            )
        )
    if kind == "silent":
        seen = figures.get("last_seen")
        since = t.date(datetime.fromisoformat(seen), tz) if isinstance(seen, str) else None
        if resolved:
            return f"Le compteur {what} émet de nouveau" if fr else f"Meter {what} reports again"
        if since is None:
            return (
                f"Le compteur {what} n'a jamais émis" if fr else f"Meter {what} has never reported"
            )
        return (
            f"Le compteur {what} n'émet plus depuis le {since}"
            if fr
            else f"Meter {what} has sent nothing since {since}"
        )
    if kind == "reset":
        return (
            (f"Plus de remise à zéro du compteur {what}" if fr else f"No reset of meter {what}")
            if resolved
            else (
                f"L'index du compteur {what} est revenu à zéro"
                if fr
                else f"Meter {what}'s index went back to zero"
            )
        )
    if kind == "trajectory" and (p := num("projected_year_end_net_kwh")):
        return (
            f"Projection du bilan de fin d'année : {p} kWh"
            if fr
            else f"Projected year-end balance: {p} kWh"
        )
    return alert_id
