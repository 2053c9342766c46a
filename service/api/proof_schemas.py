"""Response and request schemas of the proof endpoints: energy, carbon, waste, ledger,
targets. kWh and kg; rates in [0, 1]; every figure with its coverage."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from domain.balance import MeterEnergy
from domain.energy import UsesBreakdown
from domain.factors import Factor
from domain.materials import Material
from domain.records import WasteEntry
from domain.site import Carrier
from domain.waste import WasteIndicators, WasteStream
from service.usecases.carbon import CarbonPeriod, CarbonReport
from service.usecases.energy import EnergyPeriod, EnergyReport
from service.usecases.kernel import weighted_coverage
from service.usecases.targets import Judgement, TargetsReport
from service.usecases.waste import WastePeriod, WasteReport

KWH = 1000.0


class FactorOut(BaseModel):
    carrier: Carrier
    value: float
    unit: str
    source: str

    @classmethod
    def table(cls, factors: dict[Carrier, Factor]) -> list[FactorOut]:
        return [
            cls(carrier=c, value=f.value, unit=f.unit, source=f.source) for c, f in factors.items()
        ]


class EvidenceOut(BaseModel):
    coverage: float = Field(description="lowest share of the period backed by readings, [0, 1]")
    estimated_kwh: float = Field(description="energy spread over data gaps (estimated)")


class CarrierOut(BaseModel):
    import_kwh: float
    export_kwh: float
    production_kwh: float
    consumption_kwh: float = Field(description="import + production − export")


class UsesOut(BaseModel):
    uses_kwh: dict[str, float] = Field(
        description="the carrier's consumption by sub-metered use, and the unmetered rest"
    )
    submeters_exceed_consumption: bool = Field(
        description="the sub-meters add up to more than the carrier's consumption (a meter "
        "error, a sub-meter counted twice, or gaps on the main meters); unmetered is then 0"
    )
    excess_kwh: float = Field(description="by how much they exceed it, 0 otherwise")

    @classmethod
    def of(cls, u: UsesBreakdown) -> UsesOut:
        return cls(
            uses_kwh={k: v / KWH for k, v in u.items()},
            submeters_exceed_consumption=u.submeters_exceed_consumption,
            excess_kwh=u.excess_wh / KWH,
        )


class EnergyPeriodOut(BaseModel):
    start: datetime
    end: datetime
    carriers: dict[Carrier, CarrierOut]
    final_net_kwh: float | None = Field(
        description="Σ production − Σ consumption, all carriers; null when a balance meter "
        "in m³ lacks kwh_per_m3 (named in unconverted_meters): its energy is unknown"
    )
    final_net_kwh_per_m2: float | None
    primary_net_kwhep: float | None = Field(
        description="Σ factor × (export − import): the positive-energy (BEPOS) balance; null "
        "when a carrier lacks a primary-energy factor"
    )
    primary_net_kwhep_per_m2: float | None
    uses: dict[Carrier, UsesOut] | None = Field(
        description="per carrier with sub-meters, its consumption by use (its own sub-meters "
        "only: gas sub-meters split the gas consumption)"
    )
    evidence: EvidenceOut
    unconverted_meters: list[str] = Field(
        description="balance meters in m³ without kwh_per_m3, left out of the carriers: "
        "the final and primary nets are null until they are configured"
    )

    @classmethod
    def of(cls, p: EnergyPeriod) -> EnergyPeriodOut:
        b = p.balance
        known = not p.unconverted_meters  # else the final net leaves a carrier out
        # consumption per carrier comes from the balance; flows from the report input
        return cls(
            start=p.start,
            end=p.end,
            carriers={
                c: CarrierOut(
                    import_kwh=e.import_wh / KWH,
                    export_kwh=e.export_wh / KWH,
                    production_kwh=e.production_wh / KWH,
                    consumption_kwh=e.consumption_wh / KWH,
                )
                for c, e in p.carriers.items()
            },
            final_net_kwh=b.final_net_wh / KWH if known else None,
            final_net_kwh_per_m2=b.final_net_wh_per_m2 / KWH if known else None,
            primary_net_kwhep=None if b.primary_net_whep is None else b.primary_net_whep / KWH,
            primary_net_kwhep_per_m2=None
            if b.primary_net_whep_per_m2 is None
            else b.primary_net_whep_per_m2 / KWH,
            uses=None if p.uses_wh is None else {c: UsesOut.of(u) for c, u in p.uses_wh.items()},
            evidence=EvidenceOut(
                coverage=p.evidence.coverage, estimated_kwh=p.evidence.estimated_wh / KWH
            ),
            unconverted_meters=list(p.unconverted_meters),
        )


class MeterQualityOut(BaseModel):
    id: str
    energy_kwh: float
    estimated_kwh: float = Field(description="spread over data gaps")
    coverage: float
    resets: int = Field(description="index restarted from about zero: the new value counted")
    rollovers: int = Field(description="index wrapped past its capacity")
    glitches: int = Field(description="index went down then back: ignored")
    spikes: int = Field(
        description="index jumped up implausibly (above max_power_w) or then back: ignored"
    )

    @classmethod
    def table(cls, meters: dict[str, MeterEnergy], bounds: list[datetime]) -> list[MeterQualityOut]:
        """Each meter's quality over the whole query, from the report's own results."""
        return [
            cls(
                id=meter_id,
                energy_kwh=sum(e.energy_wh) / KWH,
                estimated_kwh=sum(e.estimated_wh) / KWH,
                coverage=weighted_coverage(e, bounds),
                resets=e.resets,
                rollovers=e.rollovers,
                glitches=e.glitches,
                spikes=e.spikes,
            )
            for meter_id, e in meters.items()
        ]


class EnergyOut(BaseModel):
    site: str
    primary_energy_factors: list[FactorOut]
    missing_factors: list[Carrier] = Field(
        description="carriers without a primary-energy factor, or with a meter in m³ lacking "
        "kwh_per_m3: the primary figures are then null"
    )
    unconverted_meters: list[str] = Field(
        description="meters in m³ without kwh_per_m3: not counted, their carrier is missing"
    )
    total: EnergyPeriodOut
    periods: list[EnergyPeriodOut]
    meters: list[MeterQualityOut] = Field(description="each meter's data quality over the query")

    @classmethod
    def of(cls, r: EnergyReport) -> EnergyOut:
        return cls(
            site=r.site.id,
            primary_energy_factors=FactorOut.table(r.primary_factors),
            missing_factors=r.missing_factors,
            unconverted_meters=r.unconverted_meters,
            total=EnergyPeriodOut.of(r.total),
            periods=[EnergyPeriodOut.of(p) for p in r.periods],
            meters=MeterQualityOut.table(r.meters, r.bounds),
        )


class CarbonPeriodOut(BaseModel):
    start: datetime
    end: datetime
    operational_kg: float = Field(description="imports × emission factor, hour by hour [kgCO2e]")
    embodied_amortised_kg: float = Field(description="embodied × period / study period [kgCO2e]")
    avoided_kg: float = Field(description="exports × the same factor at the same hour [kgCO2e]")
    net_kg: float = Field(description="operational + embodied amortised − avoided [kgCO2e]")
    intensity_series_hours: int = Field(description="hours priced with the imported grid intensity")
    hours: int
    evidence: EvidenceOut

    @classmethod
    def of(cls, p: CarbonPeriod) -> CarbonPeriodOut:
        f = p.figures
        return cls(
            start=p.start,
            end=p.end,
            operational_kg=f.operational_kg,
            embodied_amortised_kg=f.embodied_amortised_kg,
            avoided_kg=f.avoided_kg,
            net_kg=f.net_kg,
            intensity_series_hours=p.intensity_hours,
            hours=p.hours,
            evidence=EvidenceOut(
                coverage=p.evidence.coverage, estimated_kwh=p.evidence.estimated_wh / KWH
            ),
        )


class EmbodiedOut(BaseModel):
    total_kg: float
    biogenic_stored_kg: float = Field(description="carbon stored in bio-sourced materials, apart")
    if_new_kg: float = Field(
        description="the same quantities bought new (a reused product without a new "
        "factor counts as installed)"
    )
    avoided_by_reuse_kg: float = Field(
        description="if_new − total: covers only the reused products with a new factor"
    )
    reused_without_new_factor: list[str] = Field(
        description="reused products without new_factor_kgco2e_per_unit: their avoided "
        "carbon is unknown, not in avoided_by_reuse_kg"
    )
    study_period_years: int


class CarbonOut(BaseModel):
    site: str
    carbon_factors: list[FactorOut]
    missing_factors: list[Carrier] = Field(
        description="carriers without a carbon factor, or with a meter in m³ lacking "
        "kwh_per_m3: the net figure cannot prove zero carbon"
    )
    unconverted_meters: list[str] = Field(
        description="meters in m³ without kwh_per_m3: not priced, their carrier is missing"
    )
    embodied: EmbodiedOut
    total: CarbonPeriodOut
    periods: list[CarbonPeriodOut]

    @classmethod
    def of(cls, r: CarbonReport) -> CarbonOut:
        e = r.embodied
        return cls(
            site=r.site.id,
            carbon_factors=FactorOut.table(r.factors),
            missing_factors=r.missing_factors,
            unconverted_meters=r.unconverted_meters,
            embodied=EmbodiedOut(
                total_kg=e.total_kg,
                biogenic_stored_kg=e.biogenic_stored_kg,
                if_new_kg=e.if_new_kg,
                avoided_by_reuse_kg=e.avoided_by_reuse_kg,
                reused_without_new_factor=list(e.reused_without_new_factor),
                study_period_years=r.site.study_period_years,
            ),
            total=CarbonPeriodOut.of(r.total),
            periods=[CarbonPeriodOut.of(p) for p in r.periods],
        )


class WasteIndicatorsOut(BaseModel):
    mass_kg: dict[WasteStream, float]
    generated_kg: float = Field(
        description="all streams but reuse (réemploi is prevention; preparation for reuse counts)"
    )
    reused_kg: float
    residual_kg: float = Field(description="landfill")
    material_recovery_rate: float | None = Field(
        description="(preparation for reuse + recycling + composting + backfill) / generated: "
        "L541-1, energy recovery excluded"
    )
    diversion_rate: float | None = Field(
        description="1 − landfill / generated (energy recovery counts as diverted)"
    )
    reuse_rate: float | None = Field(description="reuse / (reuse + generated)")
    generated_kg_per_m2: float
    residual_kg_per_m2: float
    generated_kg_per_occupant: float | None
    residual_kg_per_occupant: float | None

    @classmethod
    def of(cls, mass: dict[WasteStream, float], w: WasteIndicators) -> WasteIndicatorsOut:
        return cls(mass_kg=mass, **{k: getattr(w, k) for k in cls.model_fields if k != "mass_kg"})


class WastePeriodOut(BaseModel):
    start: datetime
    end: datetime
    operation: WasteIndicatorsOut
    renovation: WasteIndicatorsOut
    coverage: float

    @classmethod
    def of(cls, p: WastePeriod) -> WastePeriodOut:
        return cls(
            start=p.start,
            end=p.end,
            operation=WasteIndicatorsOut.of(p.mass_kg, p.indicators),
            renovation=WasteIndicatorsOut.of(p.renovation_kg, p.renovation),
            coverage=p.coverage,
        )


class RenovationLineOut(BaseModel):
    stream: WasteStream = Field(description="the recovery route")
    destination: str = Field(description="site or operator, as entered")
    material: str = Field(description="the waste's material, as entered")
    mass_kg: float
    entries: int


WASTE_COVERAGE = (
    "lowest over the sources: a counter scale's as an energy meter's (hours with a "
    "reading); for a weighing scale and for the manual entries, the share of the period "
    "weighed within the scale's weighing_interval_days or the site's "
    "waste_entry_interval_days (a moment is covered when a weighing or entry follows "
    "within that interval); 0 with no source"
)


class WasteOut(BaseModel):
    site: str
    start: datetime
    end: datetime
    operation: WasteIndicatorsOut
    renovation: WasteIndicatorsOut = Field(description="the works' ledger (PEMD récolement)")
    renovation_lines: list[RenovationLineOut] = Field(
        description="the works' waste per stream, destination and material (Cerfa 16288)"
    )
    coverage: float = Field(description=WASTE_COVERAGE)
    sources: dict[str, int]
    step: Literal["day", "month", "year"] | None = Field(
        description="the step asked for; null: totals only"
    )
    periods: list[WastePeriodOut] = Field(
        description="per local day, month or year of `step` (empty without one)"
    )
    unreadable_entries: list[int] = Field(
        description="ids of the period's ledger rows that no longer read as waste entries "
        "(their mass is unknown: the waste targets are not provable until they are deleted "
        "and entered again)"
    )

    @classmethod
    def of(cls, r: WasteReport) -> WasteOut:
        return cls(
            site=r.site.id,
            start=r.start,
            end=r.end,
            operation=WasteIndicatorsOut.of(r.mass_kg, r.indicators),
            renovation=WasteIndicatorsOut.of(r.renovation_kg, r.renovation),
            renovation_lines=[RenovationLineOut(**asdict(line)) for line in r.renovation_lines],
            coverage=r.coverage,
            sources=r.sources,
            unreadable_entries=r.unreadable_entries,
            step=None if r.step is None else r.step.value,
            periods=[WastePeriodOut.of(p) for p in r.periods],
        )


class CriterionOut(BaseModel):
    figure: str
    value: float | None
    threshold: float
    direction: Literal["min", "max"] = Field(description="min: value ≥ threshold; max: ≤")
    verdict: str
    coverage: float = Field(description="share of the data behind this figure, [0, 1]")


class JudgementOut(BaseModel):
    target: str
    verdict: str = Field(description="met, not_met or not_provable (coverage below the threshold)")
    coverage: float
    min_coverage: float
    criteria: list[CriterionOut]
    meters: list[str] = Field(
        description="the meters behind the figures: their quality is in data_quality"
    )
    notes: list[str] = Field(description="what the verdict covers (e.g. the renovation ledger)")

    @classmethod
    def of(cls, j: Judgement, min_coverage: float) -> JudgementOut:
        return cls(
            target=j.target,
            verdict=j.verdict.value,
            coverage=j.coverage,
            min_coverage=min_coverage,
            criteria=[CriterionOut(**asdict(c)) for c in j.criteria],
            meters=list(j.meters),
            notes=list(j.notes),
        )


class DataQualityOut(BaseModel):
    """What the verdicts stand on, meter by meter: the reports' own results."""

    meters: list[MeterQualityOut] = Field(
        description="each energy meter's resets, rollovers, glitches, spikes, estimated "
        "energy and coverage over the period (the balance and sub-meters; the carbon "
        "figures use the import and export meters among them)"
    )
    unconverted_meters: list[str] = Field(
        description="meters in m³ without kwh_per_m3: not counted, their carrier's energy "
        "and carbon unknown (positive energy and zero carbon not provable)"
    )
    estimated_kwh: float = Field(description="energy of the balance meters spread over gaps")
    unreadable_entries: list[int] = Field(
        description="ledger rows of the period that do not read as waste entries (zero "
        "waste not provable while they stand)"
    )


class TargetsOut(BaseModel):
    site: str
    start: datetime
    end: datetime
    verdicts: list[JudgementOut]
    data_quality: DataQualityOut
    energy: EnergyPeriodOut
    primary_energy_factors: list[FactorOut]
    carbon: CarbonPeriodOut
    carbon_factors: list[FactorOut]
    embodied: EmbodiedOut
    waste: WasteOut

    @classmethod
    def of(cls, r: TargetsReport) -> TargetsOut:
        carbon = CarbonOut.of(r.carbon)
        return cls(
            site=r.site.id,
            start=r.start,
            end=r.end,
            verdicts=[JudgementOut.of(j, r.site.targets.min_coverage) for j in r.judgements],
            data_quality=DataQualityOut(
                meters=MeterQualityOut.table(r.energy.meters, r.energy.bounds),
                unconverted_meters=sorted(
                    {*r.energy.unconverted_meters, *r.carbon.unconverted_meters}
                ),
                estimated_kwh=r.energy.total.evidence.estimated_wh / KWH,
                unreadable_entries=r.waste.unreadable_entries,
            ),
            energy=EnergyPeriodOut.of(r.energy.total),
            primary_energy_factors=FactorOut.table(r.energy.primary_factors),
            carbon=carbon.total,
            carbon_factors=carbon.carbon_factors,
            embodied=carbon.embodied,
            waste=WasteOut.of(r.waste),
        )


class MaterialOut(BaseModel):
    id: int
    material: Material


class WasteEntryIn(WasteEntry):
    """A weighing or collection; ``time`` must carry its UTC offset."""

    time: AwareDatetime


class WasteEntryOut(BaseModel):
    id: int
    entry: WasteEntry
