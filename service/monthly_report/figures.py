"""The figures of a monthly impact report, gathered from the same use cases as the API.

One call, :func:`monthly_report`, asks the store for the month by day, the last twelve
months by month, the year to date and the same month a year before; every figure keeps
the coverage and the estimated share it stands on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from domain.balance import Balance, MeterEnergy, balance
from domain.carbon import net_carbon
from domain.energy import EnergyBalance
from domain.factors import Factor
from domain.periods import Step
from domain.reporting import Month
from domain.site import Carrier, Role, Site
from domain.store import AlertHistory, Ledger, ReadingStore
from domain.waste import WasteStream
from service.usecases.carbon import CarbonPeriod, carbon_report
from service.usecases.energy import EnergyPeriod, energy_report
from service.usecases.kernel import Evidence, weighted_coverage
from service.usecases.targets import Judgement, judge_targets
from service.usecases.waste import WasteReport, waste_report

#: Coverage from which a period counts as having data: a lone reading at midnight on the
#: 1st closes the month before, which must not show as a month of data.
HAS_DATA = 0.02


@dataclass(frozen=True)
class EnergyFigures:
    """Energy of one period, all carriers (final and primary) and electricity's rates.

    Parameters
    ----------
    production_wh, consumption_wh, import_wh, export_wh : float
        Summed over the energy carriers [Wh].
    final_net_wh : float
        Production − consumption [Wh]; > 0 means energy-positive in final energy.
    primary_net_whep : float or None
        Σ factor × (export − import) [Whep]; ``None`` when a factor is missing.
    final_net_wh_per_m2, primary_net_whep_per_m2 : float, float or None
        Per floor area [Wh/m², Whep/m²].
    electricity : Balance
        Electricity alone, with self-consumption and self-sufficiency.
    evidence : Evidence
        Lowest coverage of the balance meters, estimated energy [Wh].
    """

    start: datetime
    end: datetime
    production_wh: float
    consumption_wh: float
    import_wh: float
    export_wh: float
    final_net_wh: float
    primary_net_whep: float | None
    final_net_wh_per_m2: float
    primary_net_whep_per_m2: float | None
    electricity: Balance
    evidence: Evidence

    @classmethod
    def of(cls, period: EnergyPeriod) -> EnergyFigures:
        b: EnergyBalance = period.balance
        elec = period.carriers.get(Carrier.ELECTRICITY)
        return cls(
            start=period.start,
            end=period.end,
            production_wh=b.total_production_wh,
            consumption_wh=b.total_consumption_wh,
            import_wh=sum(c.import_wh for c in period.carriers.values()),
            export_wh=sum(c.export_wh for c in period.carriers.values()),
            final_net_wh=b.final_net_wh,
            primary_net_whep=b.primary_net_whep,
            final_net_wh_per_m2=b.final_net_wh_per_m2,
            primary_net_whep_per_m2=b.primary_net_whep_per_m2,
            electricity=balance(
                elec.production_wh if elec else 0.0,
                elec.import_wh if elec else 0.0,
                elec.export_wh if elec else 0.0,
            ),
            evidence=period.evidence,
        )


@dataclass(frozen=True)
class MeterQuality:
    """Data quality of one meter over the month."""

    meter_id: str
    name: str
    role: Role
    coverage: float
    estimated_wh: float
    incomplete_days: int  # days whose coverage is below 1
    resets: int
    rollovers: int
    glitches: int


@dataclass(frozen=True)
class AlertEvent:
    alert_id: str
    event: str
    time: datetime
    #: The figures recorded with the event: the report words its message from them.
    figures: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class MonthlyReport:
    """Everything a monthly impact report shows, for ``site`` and ``month``."""

    site: Site
    month: Month
    generated_at: datetime
    month_energy: EnergyFigures
    days: list[EnergyFigures]
    months: list[EnergyFigures]  # the last twelve months, ``month`` last
    year_to_date: EnergyFigures
    rolling_12: EnergyFigures
    last_year: EnergyFigures | None  # the same month a year before, when it has data
    primary_factors: dict[Carrier, Factor]
    carbon_month: CarbonPeriod
    carbon_months: list[CarbonPeriod]
    carbon_year_to_date: CarbonPeriod
    carbon_rolling_12: CarbonPeriod
    carbon_factors: dict[Carrier, Factor]
    intensity_hours: int  # hours of the month priced with the imported grid intensity
    waste_month: WasteReport
    waste_year_to_date: WasteReport
    targets_month: list[Judgement]
    targets_rolling_12: list[Judgement]
    quality: list[MeterQuality]
    alerts: list[AlertEvent]

    @property
    def carbon_measured(self) -> CarbonPeriod | None:
        """The last twelve months' carbon over the months with data only (coverage ≥
        :data:`HAS_DATA`), ``None`` without any: each month sets its own share of
        embodied carbon against its own operation, where the twelve months' total sets
        twelve months of embodied carbon against the operation of the hours measured.
        Its coverage is the months' coverage weighted by their hours."""
        months = [c for c in self.carbon_months if c.evidence.coverage >= HAS_DATA]
        if not months:
            return None
        hours = sum(c.hours for c in months)
        return CarbonPeriod(
            start=months[0].start,
            end=months[-1].end,
            figures=net_carbon(
                sum(c.figures.operational_kg for c in months),
                sum(c.figures.embodied_amortised_kg for c in months),
                sum(c.figures.avoided_kg for c in months),
            ),
            evidence=Evidence(
                coverage=sum(c.evidence.coverage * c.hours for c in months) / hours,
                estimated_wh=sum(c.evidence.estimated_wh for c in months),
            ),
            intensity_hours=sum(c.intensity_hours for c in months),
            hours=hours,
        )

    @property
    def streams(self) -> list[WasteStream]:
        """Waste streams with a mass this month or this year, in the enumeration's order."""
        seen = self.waste_month.mass_kg.keys() | self.waste_year_to_date.mass_kg.keys()
        return [s for s in WasteStream if s in seen]


def _quality(
    site: Site, energies: dict[str, MeterEnergy], bounds: list[datetime]
) -> list[MeterQuality]:
    names = {m.id: m for m in site.meters}
    return [
        MeterQuality(
            meter_id=meter_id,
            name=names[meter_id].name or meter_id,
            role=names[meter_id].role,
            coverage=weighted_coverage(e, bounds),
            estimated_wh=sum(e.estimated_wh),
            incomplete_days=sum(1 for c in e.coverage if c < 1.0),
            resets=e.resets,
            rollovers=e.rollovers,
            glitches=e.glitches,
        )
        for meter_id, e in energies.items()
    ]


def _alerts(
    engine: AlertHistory | None, site: Site, start: datetime, end: datetime
) -> list[AlertEvent]:
    if engine is None:
        return []
    return [
        AlertEvent(str(e["alert_id"]), str(e["event"]), t, dict(f) if isinstance(f, dict) else {})
        for e in engine.events_between(site.id, start, end)
        if isinstance(t := e["time"], datetime)
        for f in [e.get("figures")]
    ]


def monthly_report(
    site: Site,
    store: ReadingStore,
    ledger: Ledger,
    month: Month,
    alerts: AlertHistory | None = None,
    *,
    now: datetime,
) -> MonthlyReport:
    """Gather the figures of ``month``'s report (local calendar month of the site) as
    known at ``now`` (the report's time)."""
    tz = site.tz
    start, end = month.start(tz), month.end(tz)
    first_of_12 = month.shift(-11).start(tz)
    january = Month(month.year, 1).start(tz)

    # Four queries: the month by day, the twelve months by month (the year to date is a
    # run of those months, computed from the same query), the same month a year before,
    # and the hourly carbon of the twelve months.
    ytd = [(january, end)]
    by_day = energy_report(site, store, start, end, Step.DAY)
    by_month = energy_report(site, store, first_of_12, end, Step.MONTH, spans=ytd)
    before = month.shift(-12)
    last_year = energy_report(site, store, before.start(tz), before.end(tz), Step.YEAR)
    carbon_12 = carbon_report(site, store, ledger, first_of_12, end, Step.MONTH, spans=ytd)
    carbon_month = carbon_12.periods[-1]

    waste_month = waste_report(site, store, ledger, start, end)
    waste_12 = waste_report(site, store, ledger, first_of_12, end)
    waste_ytd = waste_report(site, store, ledger, january, end)

    # Verdicts from the reports already gathered: the month's, and the last twelve months'.
    month_carbon = replace(carbon_12, periods=[carbon_month], total=carbon_month, spans=[])
    targets_month = judge_targets(site, by_day, month_carbon, waste_month)
    targets_12 = judge_targets(site, by_month, carbon_12, waste_12)

    return MonthlyReport(
        site=site,
        month=month,
        generated_at=now.replace(microsecond=0),
        month_energy=EnergyFigures.of(by_day.total),
        days=[EnergyFigures.of(p) for p in by_day.periods],
        months=[EnergyFigures.of(p) for p in by_month.periods],
        year_to_date=EnergyFigures.of(by_month.spans[0]),
        rolling_12=EnergyFigures.of(by_month.total),
        last_year=(
            EnergyFigures.of(last_year.total)
            if last_year.total.evidence.coverage >= HAS_DATA
            else None
        ),
        primary_factors=by_day.primary_factors,
        carbon_month=carbon_month,
        carbon_months=carbon_12.periods,
        carbon_year_to_date=carbon_12.spans[0],
        carbon_rolling_12=carbon_12.total,
        carbon_factors=carbon_12.factors,
        intensity_hours=carbon_month.intensity_hours,
        waste_month=waste_month,
        waste_year_to_date=waste_ytd,
        targets_month=targets_month,
        targets_rolling_12=targets_12,
        quality=_quality(site, by_day.meters, by_day.bounds),
        alerts=_alerts(alerts, site, start, end),
    )
