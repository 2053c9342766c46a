"""Seeded model of a tertiary building with rooftop PV and a heat pump; no I/O.

Power is sampled at every step; the energy of the interval ``[t, t + step)`` is the
power at ``t`` times the step, so each cumulative index at ``t`` is the exact energy
from the start up to ``t`` and differences of indexes are exact energies.

The climate (seasons, heating from October to April) is that of western Europe.
Nomenclature: ``*_w`` powers in W, ``*_wh`` energies in Wh, ``*_c`` temperatures in °C.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pvlib
from scipy.signal import lfilter

from domain.site import Site

#: Default PV peak power per m² of floor area [W/m²]: 120 kWp for 1200 m².
PV_PEAK_W_PER_M2 = 100.0
#: PV system losses (inverter, wiring, temperature, soiling) as a fraction kept [-].
PERFORMANCE_RATIO = 0.85
#: Roof plane: tilt from horizontal [°], facing the equator.
ROOF_TILT_DEG = 30.0

#: Always-on load (ventilation, servers, fridges, standby) [W/m²].
BASE_LOAD_W_PER_M2 = 2.5
#: Load added during weekday working hours (lighting, machines, IT) [W/m²].
OCCUPIED_LOAD_W_PER_M2 = 12.5
#: Weekday occupancy ramp in local time: (hour, share of the occupied load).
OCCUPANCY_HOURS = (0.0, 7.0, 9.0, 17.0, 19.0, 24.0)
OCCUPANCY_SHARE = (0.0, 0.0, 1.0, 1.0, 0.0, 0.0)

#: Heat loss coefficient (envelope and ventilation) per m² [W/(K·m²)].
HEAT_LOSS_W_PER_K_M2 = 1.5
#: Outdoor temperature below which heating starts, occupied / set back [°C].
BALANCE_OCCUPIED_C = 16.0
BALANCE_SETBACK_C = 12.0
#: Local months with the heating on (October to April).
HEATING_MONTHS = (10, 11, 12, 1, 2, 3, 4)


def site_seed(seed: int, index: int) -> int:
    """The seed of the ``index``-th site of a run seeded with ``seed``: every emulator of
    that site simulates the same building."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def simulate_building(
    site: Site,
    start: datetime,
    end: datetime,
    step: timedelta,
    seed: int,
    pv_peak_w: float | None = None,
    pv_outages: Sequence[tuple[datetime, datetime]] = (),
) -> pd.DataFrame:
    """Simulate power and cumulative energy indexes of a site.

    Parameters
    ----------
    site : Site
        Location, timezone and floor area drive the PV yield and the load.
    start, end : datetime
        Timezone-aware bounds, both included; ``end - start`` is a multiple of ``step``.
    step : timedelta
        Sampling step; the power at ``t`` holds over ``[t, t + step)``.
    seed : int
        Seed of the weather and load noise; same seed, same result.
    pv_peak_w : float, optional
        PV peak power [W]; default ``PV_PEAK_W_PER_M2`` × floor area.
    pv_outages : sequence of (datetime, datetime)
        Intervals without any PV production (inverter failure, snow), to play
        scenarios where the balance turns negative.

    Returns
    -------
    pandas.DataFrame
        Indexed by UTC time from ``start`` to ``end`` every ``step``, with powers
        ``pv_power_w``, ``load_power_w``, ``heat_pump_power_w`` (part of the load) [W]
        and cumulative indexes ``pv_wh``, ``import_wh``, ``export_wh``,
        ``heat_pump_wh``, ``load_wh`` [Wh], 0 at ``start``.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    duration = end.astimezone(UTC) - start.astimezone(UTC)  # elapsed, not wall-clock
    if step <= timedelta(0) or duration < timedelta(0) or duration % step:
        raise ValueError("end - start must be a non-negative multiple of a positive step")
    times = pd.date_range(start.astimezone(UTC), periods=duration // step + 1, freq=step)
    times.name = "time"
    local = times.tz_convert(site.tz)
    wall = local.tz_localize(None).to_numpy()
    day = (wall.astype("datetime64[D]") - wall[0].astype("datetime64[D]")).astype(np.int64)
    step_s = step.total_seconds()
    rng = np.random.default_rng(seed)

    if pv_peak_w is None:
        pv_peak_w = PV_PEAK_W_PER_M2 * site.floor_area_m2
    poa_w_m2 = _clear_sky_poa(site, times) * _clear_sky_index(rng, local, day, step_s)
    pv_power_w = np.clip(pv_peak_w * PERFORMANCE_RATIO * poa_w_m2 / 1000.0, 0.0, pv_peak_w)
    for outage_start, outage_end in pv_outages:
        # The inverter is down (or the panels under snow): no production.
        down = (times >= outage_start.astimezone(UTC)) & (times < outage_end.astimezone(UTC))
        pv_power_w = np.where(down, 0.0, pv_power_w)

    hour = np.asarray(local.hour + local.minute / 60.0)
    weekday = np.asarray(local.day_of_week < 5)
    occupancy = np.where(weekday, np.interp(hour, OCCUPANCY_HOURS, OCCUPANCY_SHARE), 0.0)
    noise = np.clip(1.0 + 0.1 * _ar1(rng, len(times), math.exp(-step_s / 1800.0)), 0.5, None)
    area_m2 = site.floor_area_m2
    other_w = area_m2 * (BASE_LOAD_W_PER_M2 + OCCUPIED_LOAD_W_PER_M2 * occupancy) * noise

    outdoor_c = _outdoor_temperature(rng, local, day, hour)
    balance_c = BALANCE_SETBACK_C + (BALANCE_OCCUPIED_C - BALANCE_SETBACK_C) * occupancy
    heat_w = HEAT_LOSS_W_PER_K_M2 * area_m2 * np.clip(balance_c - outdoor_c, 0.0, None)
    cop = np.clip(3.0 + 0.1 * outdoor_c, 2.0, 4.5)
    heating = np.isin(local.month, HEATING_MONTHS)
    heat_pump_power_w = np.where(heating, heat_w / cop, 0.0)
    load_power_w = other_w + heat_pump_power_w

    net_w = load_power_w - pv_power_w
    index_power_w = {
        "pv_wh": pv_power_w,
        "import_wh": np.clip(net_w, 0.0, None),
        "export_wh": np.clip(-net_w, 0.0, None),
        "heat_pump_wh": heat_pump_power_w,
        "load_wh": load_power_w,
    }
    frame = pd.DataFrame(
        {
            "pv_power_w": pv_power_w,
            "load_power_w": load_power_w,
            "heat_pump_power_w": heat_pump_power_w,
        },
        index=times,
    )
    for column, power_w in index_power_w.items():
        energy_wh = power_w[:-1] * (step_s / 3600.0)
        frame[column] = np.concatenate(([0.0], np.cumsum(energy_wh)))
    return frame


def ground_truth(frame: pd.DataFrame, start: datetime, end: datetime) -> dict[str, float]:
    """Exact energies between two instants of a simulated frame.

    Parameters
    ----------
    frame : pandas.DataFrame
        Output of :func:`simulate_building`.
    start, end : datetime
        Timezone-aware instants present in ``frame.index``.

    Returns
    -------
    dict of str to float
        ``production_wh``, ``import_wh``, ``export_wh``, ``consumption_wh`` (the whole
        load) and ``heat_pump_wh`` [Wh].
    """
    delta = frame.loc[pd.Timestamp(end)] - frame.loc[pd.Timestamp(start)]
    truth = {
        "production_wh": float(delta["pv_wh"]),
        "import_wh": float(delta["import_wh"]),
        "export_wh": float(delta["export_wh"]),
        "consumption_wh": float(delta["load_wh"]),
        "heat_pump_wh": float(delta["heat_pump_wh"]),
    }
    balance_wh = truth["import_wh"] + truth["production_wh"] - truth["export_wh"]
    assert math.isclose(truth["consumption_wh"], balance_wh, rel_tol=1e-9, abs_tol=1e-6)
    return truth


def _ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """Stationary AR(1) series of ``n`` values, zero mean and unit variance."""
    shocks = rng.standard_normal(n)
    shocks[1:] *= math.sqrt(1.0 - phi**2)
    return np.asarray(lfilter([1.0], [1.0, -phi], shocks))


def _seasonal(local: pd.DatetimeIndex) -> np.ndarray:
    """1 in mid-January, -1 in mid-July (northern hemisphere seasons) [-]."""
    return np.cos(2.0 * np.pi * (local.day_of_year.to_numpy() - 15) / 365.25)


def _clear_sky_poa(site: Site, times: pd.DatetimeIndex) -> np.ndarray:
    """Clear-sky irradiance on the roof plane (Ineichen, isotropic sky) [W/m²]."""
    loc = site.location
    location = pvlib.location.Location(loc.lat, loc.lon, altitude=loc.altitude_m)
    sun = location.get_solarposition(times)
    clear = location.get_clearsky(times, model="ineichen", solar_position=sun)
    poa = pvlib.irradiance.get_total_irradiance(
        surface_tilt=ROOF_TILT_DEG,
        surface_azimuth=180.0 if loc.lat >= 0 else 0.0,
        solar_zenith=sun["apparent_zenith"],
        solar_azimuth=sun["azimuth"],
        dni=clear["dni"],
        ghi=clear["ghi"],
        dhi=clear["dhi"],
    )
    return poa["poa_global"].fillna(0.0).to_numpy()


def _clear_sky_index(
    rng: np.random.Generator, local: pd.DatetimeIndex, day: np.ndarray, step_s: float
) -> np.ndarray:
    """Share of the clear-sky irradiance that gets through the clouds [-].

    Cloud cover in [0, 1] is a logistic of a seasonal mean (cloudier in winter), a
    day-level AR(1) (weather spells) and an intra-day AR(1) (passing clouds, 1 h
    memory); the Kasten–Czeplak relation turns it into a clear-sky index.
    """
    mean_cover = 0.75 + 0.15 * _seasonal(local)
    spells = _ar1(rng, int(day[-1]) + 1, 0.6)[day]
    passing = _ar1(rng, len(day), math.exp(-step_s / 3600.0))
    logit = np.log(mean_cover / (1.0 - mean_cover)) + 2.0 * spells + 0.8 * passing
    cloud_cover = 1.0 / (1.0 + np.exp(-logit))
    return 1.0 - 0.75 * cloud_cover**3.4


def _outdoor_temperature(
    rng: np.random.Generator, local: pd.DatetimeIndex, day: np.ndarray, hour: np.ndarray
) -> np.ndarray:
    """Outdoor temperature proxy: seasonal and daily cycles plus day anomalies [°C]."""
    seasonal_c = 12.5 - 7.5 * _seasonal(local)
    daily_c = -4.0 * np.cos(2.0 * np.pi * (hour - 3.0) / 24.0)
    anomaly_c = 2.5 * _ar1(rng, int(day[-1]) + 1, 0.7)[day]
    return seasonal_c + daily_c + anomaly_c


def index_at(frame: pd.DataFrame, column: str, t: datetime) -> float:
    """A cumulative index at any instant ``t`` within the frame [Wh].

    Power is constant over each step, so the index is piecewise linear in time and
    linear interpolation between steps is exact. ``t`` outside the frame is clamped.
    """
    seconds = frame.index.as_unit("ns").asi8 / 1e9
    return float(np.interp(t.timestamp(), seconds, frame[column].to_numpy()))


def power_at(frame: pd.DataFrame, column: str, t: datetime) -> float:
    """The power column in force at ``t`` (the last step at or before it) [W]."""
    position = frame.index.searchsorted(pd.Timestamp(t).tz_convert(UTC), side="right") - 1
    return float(frame[column].iloc[max(0, min(position, len(frame) - 1))])
