"""Words and number formats of the monthly report, in French and English."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from microville.domain.reporting import Language, Month

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
    "estimated_energy": ("Énergie estimée (sur des trous)", "Estimated energy (over gaps)"),
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
        """Two lines, for a chart's axis: ``oct.`` over ``2026``."""
        return f"{MONTHS[self.language][month.month - 1][:3]}.\n{month.year}"

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
