"""Final and primary energy balance over all carriers, and consumption by use.

Pure functions over explicit arguments; no I/O.
Nomenclature: ``*_wh`` final energies in Wh, ``*_whep`` primary energies in Wh of
primary energy, ``*_per_m2`` divided by the floor area [m²].

Method (a renovation's positive-energy claim is voluntary, so the method is stated):
the primary-energy net is the "Bilan BEPOS" of the E+C- label with the sign turned so
that positive means energy-positive — exported energy weighted by its primary energy
factor minus imported energy weighted by its factor, summed over the carriers. On-site
renewable production consumed on site is not non-renewable primary energy, so it
weighs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from domain.site import Carrier, Use

#: Carriers metered in volume or mass, not energy: never in an energy balance.
NOT_ENERGY = frozenset({Carrier.WATER, Carrier.WASTE})

UNMETERED = "unmetered"


def _check_energy(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite energy ≥ 0 Wh, got {value!r}")


@dataclass(frozen=True)
class CarrierEnergy:
    """Metered energies of one carrier over a period.

    Parameters
    ----------
    import_wh : float
        Delivered to the site [Wh].
    export_wh : float
        Sent out of the site [Wh].
    production_wh : float
        Produced on site [Wh].

    Raises
    ------
    ValueError
        On a negative or non-finite energy.
    """

    import_wh: float
    export_wh: float
    production_wh: float

    def __post_init__(self) -> None:
        _check_energy("import_wh", self.import_wh)
        _check_energy("export_wh", self.export_wh)
        _check_energy("production_wh", self.production_wh)

    @property
    def consumption_wh(self) -> float:
        """All uses [Wh] = import + production − export."""
        return self.import_wh + self.production_wh - self.export_wh


@dataclass(frozen=True)
class EnergyBalance:
    """Energy balance of a site over one period, all carriers.

    Parameters
    ----------
    consumption_wh : dict of Carrier to float
        Per carrier, all uses [Wh] = import + production − export.
    total_consumption_wh : float
        Σ consumption over the carriers [Wh].
    total_production_wh : float
        Σ production over the carriers [Wh].
    final_net_wh : float
        Σ production − Σ consumption [Wh] (= Σ export − Σ import); positive means
        more final energy out than in.
    primary_net_whep : float or None
        Σ_c f_c × (export_c − import_c) [Whep]: the Bilan BEPOS, positive means
        energy-positive. ``None`` when a carrier with import or export has no
        primary energy factor (listed in ``missing_factors``).
    final_net_wh_per_m2 : float
        ``final_net_wh`` per floor area [Wh/m²].
    primary_net_whep_per_m2 : float or None
        ``primary_net_whep`` per floor area [Whep/m²].
    missing_factors : tuple of Carrier
        Carriers exchanging energy with the grid but lacking a primary factor.
    """

    consumption_wh: dict[Carrier, float]
    total_consumption_wh: float
    total_production_wh: float
    final_net_wh: float
    primary_net_whep: float | None
    final_net_wh_per_m2: float
    primary_net_whep_per_m2: float | None
    missing_factors: tuple[Carrier, ...] = ()


def energy_balance(
    per_carrier: Mapping[Carrier, CarrierEnergy],
    primary_factors: Mapping[Carrier, float],
    floor_area_m2: float,
) -> EnergyBalance:
    """Final and primary energy balance over all carriers.

    Parameters
    ----------
    per_carrier : mapping of Carrier to CarrierEnergy
        Metered energies per carrier [Wh]; water and waste are not energy carriers.
    primary_factors : mapping of Carrier to float
        Primary energy factor per carrier [kWhep/kWh] (see ``factors.primary_factor``);
        a carrier that neither imports nor exports needs none.
    floor_area_m2 : float
        Floor area the per-m² figures divide by [m²], > 0.

    Raises
    ------
    ValueError
        On a non-energy carrier, a negative or non-finite factor, or a floor area ≤ 0.
    """
    if not (math.isfinite(floor_area_m2) and floor_area_m2 > 0):
        raise ValueError(f"floor_area_m2 must be > 0, got {floor_area_m2!r}")
    consumption: dict[Carrier, float] = {}
    primary = 0.0
    missing: list[Carrier] = []
    for carrier, energy in per_carrier.items():
        if carrier in NOT_ENERGY:
            raise ValueError(f"{carrier.value} is not an energy carrier")
        consumption[carrier] = energy.consumption_wh
        if energy.import_wh == 0 and energy.export_wh == 0:
            continue  # nothing exchanged: no factor needed
        factor = primary_factors.get(carrier)
        if factor is None:
            missing.append(carrier)
            continue
        if not (math.isfinite(factor) and factor >= 0):
            raise ValueError(f"primary factor of {carrier.value} must be ≥ 0, got {factor!r}")
        primary += factor * (energy.export_wh - energy.import_wh)
    total_consumption = math.fsum(consumption.values())
    total_production = math.fsum(e.production_wh for e in per_carrier.values())
    final_net = total_production - total_consumption
    primary_net = None if missing else primary
    return EnergyBalance(
        consumption_wh=consumption,
        total_consumption_wh=total_consumption,
        total_production_wh=total_production,
        final_net_wh=final_net,
        primary_net_whep=primary_net,
        final_net_wh_per_m2=final_net / floor_area_m2,
        primary_net_whep_per_m2=None if primary_net is None else primary_net / floor_area_m2,
        missing_factors=tuple(missing),
    )


class UsesBreakdown(dict[str, float]):
    """Consumption per use [Wh], keyed by ``Use`` value, plus ``"unmetered"``.

    Attributes
    ----------
    submeters_exceed_consumption : bool
        The sub-meters add up to more than the consumption (a meter error, a sub-meter
        counted twice, or coverage gaps on the main meters); ``unmetered`` is then 0.
    excess_wh : float
        By how much they exceed it [Wh], 0 otherwise.
    """

    submeters_exceed_consumption: bool = False
    excess_wh: float = 0.0


def uses_breakdown(consumption_wh: float, submeter_wh: Mapping[Use, float]) -> UsesBreakdown:
    """Split a consumption between the sub-metered uses and the unmetered remainder.

    Parameters
    ----------
    consumption_wh : float
        Consumption of the period [Wh].
    submeter_wh : mapping of Use to float
        Energy per use measured by sub-meters [Wh], each ≥ 0.

    Returns
    -------
    UsesBreakdown
        ``{use.value: wh, ..., "unmetered": consumption − Σ sub-meters}`` [Wh]; the
        remainder is never negative: when the sub-meters exceed the consumption it is
        0 and ``submeters_exceed_consumption`` is set.

    Raises
    ------
    ValueError
        On a negative or non-finite sub-meter energy, or a non-finite consumption.
    """
    if not math.isfinite(consumption_wh):
        raise ValueError(f"consumption_wh must be finite, got {consumption_wh!r}")
    result = UsesBreakdown()
    for use, wh in submeter_wh.items():
        _check_energy(f"sub-meter {use.value}", wh)
        result[use.value] = wh
    remainder = consumption_wh - math.fsum(submeter_wh.values())
    if remainder < 0:
        result[UNMETERED] = 0.0
        result.submeters_exceed_consumption = True
        result.excess_wh = -remainder
    else:
        result[UNMETERED] = remainder
    return result
