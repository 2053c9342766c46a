"""Response schemas of the API (what OpenAPI at /docs shows)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from domain.site import Site
from service.usecases.balance import BalanceReport, DayProfile, PeriodBalance

KWH = 1000.0


class MeterOut(BaseModel):
    id: str
    name: str
    carrier: str
    role: str
    unit: str
    source: str = Field(description="where readings come from, e.g. 'mqtt senml site/pv'")


class SiteOut(BaseModel):
    id: str
    name: str
    timezone: str
    lat: float
    lon: float
    floor_area_m2: float
    meters: list[MeterOut]

    @classmethod
    def of(cls, s: Site) -> SiteOut:
        return cls(
            id=s.id,
            name=s.name,
            timezone=s.timezone,
            lat=s.location.lat,
            lon=s.location.lon,
            floor_area_m2=s.floor_area_m2,
            meters=[
                MeterOut(
                    id=m.id,
                    name=m.name,
                    carrier=m.carrier,
                    role=m.role,
                    unit=m.unit,
                    source=m.source.summary,
                )
                for m in s.meters
            ],
        )


class PeriodOut(BaseModel):
    start: datetime = Field(description="Period start, site local time with UTC offset")
    end: datetime = Field(description="Period end (exclusive)")
    production_kwh: float
    import_kwh: float
    export_kwh: float
    consumption_kwh: float = Field(description="import + production − export")
    net_kwh: float = Field(description="production − consumption; > 0 means energy-positive")
    net_kwh_per_m2: float = Field(description="net balance per m² of floor area")
    self_consumption: float | None = Field(description="(production − export) / production, [0, 1]")
    self_sufficiency: float | None = Field(
        description="(production − export) / consumption, [0, 1]"
    )
    coverage: float = Field(
        description="Share of the period backed by readings, [0, 1]: the lowest of the "
        "balance meters, each counted as the share of its slots holding a reading"
    )
    estimated_kwh: float = Field(
        description="Part of the metered energies spread over data gaps (estimated)"
    )

    @classmethod
    def of(cls, p: PeriodBalance, floor_area_m2: float) -> PeriodOut:
        f = p.figures
        return cls(
            start=p.start,
            end=p.end,
            production_kwh=f.production_wh / KWH,
            import_kwh=f.import_wh / KWH,
            export_kwh=f.export_wh / KWH,
            consumption_kwh=f.consumption_wh / KWH,
            net_kwh=f.net_wh / KWH,
            net_kwh_per_m2=f.net_wh / KWH / floor_area_m2,
            self_consumption=f.self_consumption,
            self_sufficiency=f.self_sufficiency,
            coverage=p.evidence.coverage,
            estimated_kwh=p.evidence.estimated_wh / KWH,
        )


class MeterEnergyOut(BaseModel):
    id: str
    role: str
    energy_kwh: float
    estimated_kwh: float
    coverage: float
    resets: int = Field(description="Index restarted from about zero: the new value is counted")
    rollovers: int = Field(description="Index wrapped past its capacity")
    glitches: int = Field(description="Index went down then back: ignored, never negative energy")


class BalanceOut(BaseModel):
    site: str
    timezone: str
    step: str
    carrier: str = "electricity"
    unit: str = "kWh"
    total: PeriodOut
    periods: list[PeriodOut]
    meters: list[MeterEnergyOut]

    @classmethod
    def of(cls, report: BalanceReport) -> BalanceOut:
        area = report.site.floor_area_m2
        return cls(
            site=report.site.id,
            timezone=report.site.timezone,
            step=report.step.value,
            total=PeriodOut.of(report.total, area),
            periods=[PeriodOut.of(p, area) for p in report.periods],
            meters=[
                MeterEnergyOut(
                    id=m.meter_id,
                    role=m.role.value,
                    energy_kwh=m.energy_wh / KWH,
                    estimated_kwh=m.estimated_wh / KWH,
                    coverage=m.coverage,
                    resets=m.resets,
                    rollovers=m.rollovers,
                    glitches=m.glitches,
                )
                for m in report.meters
            ],
        )


class HealthOut(BaseModel):
    status: str = Field(description="ok when every dependency answers, degraded otherwise")
    store: str
    broker: str


class DayProfileOut(BaseModel):
    """A local day, hour by hour: the columns h00…h23 a heat map draws."""

    day: str = Field(description="local date, YYYY-MM-DD")
    start: datetime = Field(description="local midnight, with its UTC offset")
    coverage: float
    h00: float | None
    h01: float | None
    h02: float | None = Field(description="the repeated autumn hour adds both; null in spring")
    h03: float | None
    h04: float | None
    h05: float | None
    h06: float | None
    h07: float | None
    h08: float | None
    h09: float | None
    h10: float | None
    h11: float | None
    h12: float | None
    h13: float | None
    h14: float | None
    h15: float | None
    h16: float | None
    h17: float | None
    h18: float | None
    h19: float | None
    h20: float | None
    h21: float | None
    h22: float | None
    h23: float | None

    @classmethod
    def of(cls, p: DayProfile) -> DayProfileOut:
        hours = {f"h{h:02d}": None if v is None else v / KWH for h, v in enumerate(p.hours_wh)}
        return cls(day=p.start.date().isoformat(), start=p.start, coverage=p.coverage, **hours)


class ProfileOut(BaseModel):
    site: str
    timezone: str
    flow: str = Field(description="import, export, production, consumption or net")
    unit: str = "kWh"
    days: list[DayProfileOut]
