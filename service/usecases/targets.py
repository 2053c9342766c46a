"""Targets use case behind the proof: each target judged met, not met or not provable
from the energy, carbon and waste reports, with its figures, factors and coverage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from domain.periods import Step
from domain.site import Meter, Role, Site
from domain.store import Ledger, ReadingStore
from domain.targets import Verdict, judge
from service.usecases.carbon import CarbonReport, carbon_report
from service.usecases.energy import BALANCE_ROLES, EnergyReport, energy_report
from service.usecases.waste import (
    WasteReport,
    waste_report,
)


@dataclass(frozen=True)
class Criterion:
    """One figure judged against one threshold."""

    figure: str
    value: float | None
    threshold: float
    direction: Literal["min", "max"]
    verdict: Verdict
    #: Share of the data behind this figure, in [0, 1].
    coverage: float


@dataclass(frozen=True)
class Judgement:
    target: str
    verdict: Verdict
    criteria: list[Criterion]
    coverage: float
    #: The meters behind the figures (their quality in the report's meters).
    meters: tuple[str, ...] = ()
    #: What the verdict does not cover, or how a figure was obtained.
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TargetsReport:
    site: Site
    start: datetime
    end: datetime
    judgements: list[Judgement]
    energy: EnergyReport
    carbon: CarbonReport
    waste: WasteReport


#: (figure, value, threshold or None when the target is not set, direction)
_Figure = tuple[str, float | None, float | None, Literal["min", "max"]]


def _judge(
    target: str,
    figures: list[_Figure],
    coverage: float,
    min_coverage: float,
    meters: Sequence[Meter] = (),
    notes: Sequence[str] = (),
    coverages: dict[str, float] | None = None,
) -> Judgement | None:
    """The target's verdict from its configured criteria (those with a threshold), each
    judged on its own coverage (``coverages`` by figure, else ``coverage``); the
    judgement's coverage is the lowest of its criteria's."""
    own = coverages or {}
    criteria = [
        Criterion(name, value, threshold, direction,
                  judge(value, threshold, direction, own.get(name, coverage), min_coverage),
                  own.get(name, coverage))
        for name, value, threshold, direction in figures
        if threshold is not None
    ]  # fmt: skip
    if not criteria:
        return None
    verdict = _combine([c.verdict for c in criteria])
    lowest = min(c.coverage for c in criteria)
    return Judgement(target, verdict, criteria, lowest, tuple(m.id for m in meters), tuple(notes))


def _combine(verdicts: list[Verdict]) -> Verdict:
    if any(v is Verdict.NOT_PROVABLE for v in verdicts):
        return Verdict.NOT_PROVABLE
    return Verdict.MET if all(v is Verdict.MET for v in verdicts) else Verdict.NOT_MET


def targets_report(
    site: Site, store: ReadingStore, ledger: Ledger, start: datetime, end: datetime
) -> TargetsReport:
    energy = energy_report(site, store, start, end, Step.YEAR)
    carbon = carbon_report(site, store, ledger, start, end, Step.YEAR)
    waste = waste_report(site, store, ledger, start, end)
    judgements = judge_targets(site, energy, carbon, waste)
    return TargetsReport(
        site, energy.total.start, energy.total.end, judgements, energy, carbon, waste
    )


def _entries(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


def judge_targets(
    site: Site, energy: EnergyReport, carbon: CarbonReport, waste: WasteReport
) -> list[Judgement]:
    """The verdict of each configured target over the reports' whole period."""
    t = site.targets
    primary_whep = energy.total.balance.primary_net_whep
    primary_kwh = primary_whep / 1000 if primary_whep is not None else None
    net_carbon_kg = carbon.total.figures.net_kg if not carbon.missing_factors else None
    w = waste.indicators
    # An unreadable ledger row of the period: its mass is unknown, no figure is proven.
    readable = not waste.unreadable_entries
    positive: _Figure = (
        "primary_energy_balance_kwh",
        primary_kwh,
        t.primary_energy_balance_min_kwh,
        "min",
    )
    # L541-1's 70 % concerns construction and demolition waste: the works' ledger, judged
    # beside the operation when the period has renovation entries.
    works = waste.sources.get("renovation_entries", 0)
    renovation: list[_Figure] = []
    if not works:
        renovation_note = "no renovation ledger in the period: operation waste only"
    elif t.renovation_material_recovery_rate_min is None:
        renovation_note = (
            "renovation ledger not judged: renovation_material_recovery_rate_min unset"
        )
    elif readable and waste.renovation.generated_kg == 0:
        # Réemploi only: no construction waste, nothing for the 70 % to apply to.
        renovation_note = f"renovation ledger: {_entries(works)}, reuse only (no waste generated)"
    else:
        rate = waste.renovation.material_recovery_rate if readable else None
        renovation.append(
            ("renovation_material_recovery_rate", rate,
             t.renovation_material_recovery_rate_min, "min")
        )  # fmt: skip
        renovation_note = f"renovation ledger: {_entries(works)} (the récolement as entered)"
    balance_meters = [m for m in site.meters if m.role in BALANCE_ROLES]
    flows = [m for m in balance_meters if m.role in (Role.GRID_IMPORT, Role.GRID_EXPORT)]
    scales = [m for m in site.meters if m.role is Role.WASTE]
    candidates = [
        _judge("positive_energy", [positive], energy.total.evidence.coverage, t.min_coverage,
               balance_meters),
        _judge("zero_carbon", [("net_carbon_kg", net_carbon_kg, t.net_carbon_max_kg, "max")],
               carbon.total.evidence.coverage, t.min_coverage, flows),
        _judge("zero_waste",
               [("residual_kg", w.residual_kg if readable else None,
                 t.residual_waste_max_kg, "max"),
                # L541-1's target: material recovery (energy recovery does not count).
                ("material_recovery_rate", w.material_recovery_rate if readable else None,
                 t.material_recovery_rate_min, "min"),
                ("diversion_rate", w.diversion_rate if readable else None,
                 t.diversion_rate_min, "min"),
                *renovation],
               waste.coverage, t.min_coverage, scales, [renovation_note],
               {name: 1.0 for name, *_ in renovation}),
    ]  # fmt: skip
    return [j for j in candidates if j is not None]
