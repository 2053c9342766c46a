"""Targets a site must prove, and the verdict on each."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Where the default material recovery target comes from.
MATERIAL_RECOVERY_SOURCE = (
    "Code de l'environnement, art. L541-1 (loi n° 2015-992, LTECV): 70 % of the "
    "construction and demolition waste recovered as material by 2020 (preparation for "
    "reuse, recycling, backfilling; energy recovery does not count)"
)


class Targets(BaseModel):
    """Per-site targets; a target left ``None`` is not judged.

    A verdict is *not provable* when the data coverage behind the figure is below
    ``min_coverage``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_coverage: Annotated[float, Field(ge=0, le=1)] = 0.95
    primary_energy_balance_min_kwh: float | None = Field(
        default=0.0, description="positive energy: primary-energy balance ≥ this"
    )
    net_carbon_max_kg: float | None = Field(
        default=0.0, description="zero carbon: net carbon (operational + embodied − avoided) ≤ this"
    )
    residual_waste_max_kg: float | None = Field(
        default=None, description="zero waste: residual (landfilled) mass ≤ this"
    )
    material_recovery_rate_min: Annotated[float | None, Field(ge=0, le=1)] = Field(
        default=0.7,
        description="zero waste: material recovery rate ≥ this (energy recovery excluded). "
        f"Default 0.7: {MATERIAL_RECOVERY_SOURCE}",
    )
    renovation_material_recovery_rate_min: Annotated[float | None, Field(ge=0, le=1)] = Field(
        default=0.7,
        description="zero waste: material recovery rate of the works' waste (the renovation "
        "ledger, PEMD récolement) ≥ this, judged when the period has renovation entries. "
        f"Default 0.7: {MATERIAL_RECOVERY_SOURCE}",
    )
    diversion_rate_min: Annotated[float | None, Field(ge=0, le=1)] = Field(
        default=None,
        description="zero waste: landfill diversion rate (1 − landfill / generated, energy "
        "recovery counted as diverted) ≥ this; not L541-1's target, unset by default",
    )


class Verdict(StrEnum):
    """The verdict on one target."""

    MET = "met"
    NOT_MET = "not_met"
    NOT_PROVABLE = "not_provable"  # data coverage too low, or no figure


def judge(
    value: float | None,
    threshold: float,
    direction: Literal["min", "max"],
    coverage: float,
    min_coverage: float,
) -> Verdict:
    """Judge a figure against its target.

    Parameters
    ----------
    value : float or None
        The figure, in the target's unit; ``None`` (or NaN) when it could not be
        computed.
    threshold : float
        The target, same unit.
    direction : {"min", "max"}
        ``"min"``: met when value ≥ threshold; ``"max"``: met when value ≤ threshold.
    coverage, min_coverage : float
        Share of the data behind the figure, in [0, 1], and the least share that
        proves anything.

    Returns
    -------
    Verdict
        ``not_provable`` when the value is missing or coverage < min_coverage,
        otherwise ``met`` or ``not_met``.
    """
    if direction not in ("min", "max"):
        raise ValueError(f"direction must be 'min' or 'max', got {direction!r}")
    if value is None or math.isnan(value) or not coverage >= min_coverage:
        return Verdict.NOT_PROVABLE
    met = value >= threshold if direction == "min" else value <= threshold
    return Verdict.MET if met else Verdict.NOT_MET
