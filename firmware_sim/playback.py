"""One run of simulated buildings on one clock: each site's serial devices (emulators on
pseudo-terminals) and its MQTT devices (the publisher), played together. What
`microville simulate` and `microville demo` both run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from domain.site import Site, SitesConfig
from firmware_sim.building import simulate_building, site_seed
from firmware_sim.clock import SimulatedClock
from firmware_sim.publisher import run_simulation
from firmware_sim.serial_devices import SerialDevices
from microville.mqtt import MqttSettings


class Playback:
    """Lifecycle: build (each site simulated from its own window), ``plug()`` (the
    serial ports appear: start their reader then), ``play()`` once, ``stop()`` always.

    Parameters
    ----------
    sites : SitesConfig
        The configuration the serial devices are wired from.
    chosen : list of Site
        The sites to play; site ``i`` is seeded from ``seed`` and ``i``.
    windows : mapping of site id to (datetime, datetime)
        Each site's simulated period, from its own local midnight.
    step : timedelta
        Time between readings.
    clock_speed : float
        Simulated seconds per real second of the serial devices' clock.
    pv_outages : sequence of (datetime, datetime)
        Periods when the PV inverter produces nothing.
    corruption : float
        Share of the emulated Linky frames damaged on the line [0, 1].
    """

    def __init__(
        self,
        sites: SitesConfig,
        chosen: list[Site],
        windows: dict[str, tuple[datetime, datetime]],
        step: timedelta,
        seed: int,
        clock_speed: float,
        pv_outages: Sequence[tuple[datetime, datetime]] = (),
        corruption: float = 0.0,
    ) -> None:
        self.chosen, self.windows, self.step, self.seed = chosen, windows, step, seed
        self.pv_outages = list(pv_outages)
        self.start = min(w[0] for w in windows.values())
        self.end = max(w[1] for w in windows.values())
        self.clock = SimulatedClock(self.start, clock_speed)
        devices = [
            SerialDevices(
                sites,
                s,
                simulate_building(
                    s, *windows[s.id], step, site_seed(seed, i), pv_outages=self.pv_outages
                ),
                self.clock,
                windows[s.id][1],
                corruption=corruption,
            )
            for i, s in enumerate(chosen)
        ]
        #: The sites' serial devices, for the sites that have some.
        self.serial = [d for d in devices if d.pairs]

    @property
    def ports(self) -> list[str]:
        return [port for devices in self.serial for port in devices.ports]

    def plug(self) -> None:
        for devices in self.serial:
            devices.plug()

    def serial_done(self) -> bool:
        """Every serial device has played its whole period."""
        return all(d.done() for d in self.serial) and self.clock.now() >= self.end

    def play(
        self,
        mqtt: MqttSettings,
        publish_speed: float,
        progress: bool,
        wait_for_serial: Callable[[], None],
    ) -> dict[str, dict[str, float]]:
        """Start the clock and the serial devices, publish the MQTT devices at
        ``publish_speed`` (0: flat out), then ``wait_for_serial()`` when there are serial
        devices. Return each site's ground truth."""
        self.clock.restart()
        for devices in self.serial:
            devices.start()
        truth = run_simulation(
            self.chosen,
            mqtt,
            self.start,
            self.end,
            self.step,
            seed=self.seed,
            speed=publish_speed,
            progress=progress,
            pv_outages=self.pv_outages,
            windows=self.windows,
        )
        if self.serial:
            wait_for_serial()
        return truth

    def stop(self) -> None:
        for devices in self.serial:
            devices.stop()
