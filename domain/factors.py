"""Default conversion factors per energy carrier, each with its source.

Only the values the project's domain reference states are defaults; a carrier
without a stated value (heat networks, "other", the primary factor of wood) has no
entry, and a site must set it in its configuration (``primary_energy_factors``,
``carbon_factors_kg_per_kwh``) before an indicator needing it can be computed.
A site's value always takes precedence over the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from domain.site import Carrier, Site

PRIMARY_UNIT: Final = "kWhep/kWh"
CARBON_UNIT: Final = "kgCO2e/kWh"
SITE_SOURCE: Final = "site configuration"

_RE2020 = "RE2020 (arrêté du 4 août 2021)"


@dataclass(frozen=True)
class Factor:
    """A conversion factor and where it comes from.

    Parameters
    ----------
    value : float
        The factor, in ``unit``.
    unit : str
        ``kWhep/kWh`` (primary energy per final energy) or ``kgCO2e/kWh``.
    source : str
        The text to cite: the regulation or database, or "site configuration".
    """

    value: float
    unit: str
    source: str


#: Primary energy per final energy [kWhep/kWh].
PRIMARY_ENERGY_FACTORS: Final[dict[Carrier, Factor]] = {
    Carrier.ELECTRICITY: Factor(2.3, PRIMARY_UNIT, _RE2020),
    Carrier.GAS: Factor(1.0, PRIMARY_UNIT, _RE2020),
}

#: Greenhouse-gas emissions per final energy [kgCO2e/kWh].
CARBON_FACTORS: Final[dict[Carrier, Factor]] = {
    Carrier.ELECTRICITY: Factor(
        0.079,
        CARBON_UNIT,
        f"{_RE2020}, electricity for heating; for a GHG inventory ADEME recommends "
        "Base Empreinte's 'mix moyen – consommation' factor of the year: set "
        "carbon_factors_kg_per_kwh.electricity",
    ),
    Carrier.GAS: Factor(0.227, CARBON_UNIT, f"{_RE2020}, natural gas"),
    Carrier.WOOD: Factor(
        0.030,
        CARBON_UNIT,
        f"{_RE2020}, wood pellets and logs (wood chips: 0.024, set carbon_factors_kg_per_kwh.wood)",
    ),
}


def primary_factor(site: Site, carrier: Carrier) -> Factor | None:
    """The primary energy factor of ``carrier`` at ``site`` [kWhep/kWh].

    The site's ``primary_energy_factors`` entry if any, else the default of
    :data:`PRIMARY_ENERGY_FACTORS`, else ``None`` (no stated value: not computable).
    """
    override = site.primary_energy_factors.get(carrier)
    if override is not None:
        return Factor(override, PRIMARY_UNIT, SITE_SOURCE)
    return PRIMARY_ENERGY_FACTORS.get(carrier)


def carbon_factor(site: Site, carrier: Carrier) -> Factor | None:
    """The carbon factor of ``carrier`` at ``site`` [kgCO2e/kWh].

    The site's ``carbon_factors_kg_per_kwh`` entry if any, else the default of
    :data:`CARBON_FACTORS`, else ``None`` (no stated value: not computable).
    """
    override = site.carbon_factors_kg_per_kwh.get(carrier)
    if override is not None:
        return Factor(override, CARBON_UNIT, SITE_SOURCE)
    return CARBON_FACTORS.get(carrier)
