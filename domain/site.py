"""Site configuration: the sites, their meters and where each meter's readings come from.

A configuration file (TOML) holds one or more sites::

    [[sites]]
    id = "microville112"
    timezone = "Europe/Paris"
    ...
    [[sites.meters]]
    id = "pv"
    role = "production"
    source = { type = "mqtt", topic = "microville112/pv", format = "senml", name = "energy" }

``parse_sites`` validates text, ``read_sites`` reads a file; both raise
:class:`ConfigError` whose message names every bad key and the reason.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from domain.alert_config import AlertRules, Channel
from domain.modbus_maps import RegisterMap, shipped_maps
from domain.quality import IndexRules
from domain.reporting import Language, ReportSettings
from domain.targets import Targets
from domain.tic_labels import TIC_LABELS, TicMode, label_problem
from domain.units import UnitError, unit_of
from domain.waste import WasteStream

#: Ids end up in topics, tags and queries: keep them to a safe alphabet.
IDENTIFIER = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class ConfigError(ValueError):
    """A configuration that cannot be used; the message lists each problem by key."""


class ConfigUnreadable(ConfigError):
    """The configuration file cannot be read at all (missing, a folder, no permission):
    the message names the file and the cause."""


class Carrier(StrEnum):
    ELECTRICITY = "electricity"
    GAS = "gas"
    HEAT = "heat"  # heat network
    WOOD = "wood"
    WATER = "water"
    WASTE = "waste"
    OTHER = "other"


class Use(StrEnum):
    """What a sub-meter's energy is used for."""

    HEATING = "heating"
    HOT_WATER = "hot_water"
    COOLING = "cooling"
    LIGHTING = "lighting"
    VENTILATION = "ventilation"
    OTHER = "other"


class Role(StrEnum):
    """What a meter's index counts, for the balance."""

    PRODUCTION = "production"  # on-site generation (PV)
    GRID_IMPORT = "grid_import"  # drawn from the grid
    GRID_EXPORT = "grid_export"  # injected into the grid
    SUBMETER = "submeter"  # part of the consumption (heating, lighting…)
    MEASUREMENT = "measurement"  # not in the balance: power, current, voltage…
    WASTE = "waste"  # a scale's cumulative mass counter for one waste stream


#: Roles whose meter must be a cumulative index.
INDEX_ROLES = (Role.PRODUCTION, Role.GRID_IMPORT, Role.GRID_EXPORT, Role.SUBMETER, Role.WASTE)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttSource(_Strict):
    """Where a meter's index arrives over MQTT and how to pick it out of the payload.

    ``format``:
      - ``senml``: SenML JSON pack (RFC 8428); the record whose resolved name
        (``bn`` + ``n``) equals ``name`` is taken, with its own unit.
      - ``json``: flat or nested JSON object; ``field`` is a dotted path to the
        value, in the meter's ``unit``; optional ``time_field`` holds the device
        time (epoch seconds or ISO 8601).
      - ``number``: the payload is a bare number, in the meter's ``unit``.
    """

    type: Literal["mqtt"] = "mqtt"
    topic: str = Field(min_length=1, max_length=256)
    format: Literal["senml", "json", "number"]
    name: str | None = None
    field: str | None = None
    time_field: str | None = None

    @field_validator("topic")
    @classmethod
    def _concrete_topic(cls, topic: str) -> str:
        if any(c in topic for c in "+#\x00"):
            raise ValueError("must be a concrete topic, without wildcards (+ or #)")
        return topic

    @model_validator(mode="after")
    def _selector_fits_format(self) -> Self:
        if self.format == "senml" and not self.name:
            raise ValueError("format 'senml' needs 'name' (the record's resolved name)")
        if self.format == "json" and not self.field:
            raise ValueError("format 'json' needs 'field' (dotted path to the value)")
        if self.format != "senml" and self.name:
            raise ValueError("'name' applies to format 'senml' only")
        if self.format != "json" and (self.field or self.time_field):
            raise ValueError("'field' and 'time_field' apply to format 'json' only")
        return self

    @property
    def summary(self) -> str:
        return f"mqtt {self.format} {self.topic}"


class TicSource(_Strict):
    """A Linky (or older electronic meter) read through its TIC serial output.

    Several meters may read the same ``port`` (EAST and EAIT of one Linky); they must
    agree on ``mode`` and the line settings. ``mode = "auto"`` tells the mode from the
    frames; the line speed then defaults to 9600 baud (standard) with a fallback to 1200.
    ``bytesize``, ``parity`` and ``stopbits`` are the spec's 7E1 unless an odd adapter
    (one that strips the parity bit itself) needs others.
    """

    type: Literal["tic"]
    port: str = Field(min_length=1, description="serial device, e.g. /dev/ttyUSB0")
    mode: Literal["auto", "historic", "standard"] = "auto"
    label: str = Field(description="TIC label, e.g. EAST, EAIT, BASE, HCHP, SINSTS")
    baudrate: int | None = Field(default=None, description="default: 1200 historic, 9600 standard")
    bytesize: Literal[7, 8] = Field(default=7, description="data bits (TIC: 7)")
    parity: Literal["E", "N", "O"] = Field(default="E", description="parity (TIC: even)")
    stopbits: Literal[1, 2] = Field(default=1, description="stop bits (TIC: 1)")
    interval_s: Annotated[float, Field(ge=0)] = Field(
        default=10.0,
        description="store one value per label per interval (a frame comes every 1-2 s); 0: all",
    )
    meter_id: str | None = Field(
        default=None,
        min_length=1,
        description="expected ADSC/ADCO: frames of another meter are not stored",
    )

    @model_validator(mode="after")
    def _known_label(self) -> Self:
        modes = [TicMode(self.mode)] if self.mode != "auto" else list(TicMode)
        if not any((m, self.label) in TIC_LABELS for m in modes):
            raise ValueError(f"unknown TIC label {self.label!r} for mode {self.mode!r}")
        return self

    @property
    def summary(self) -> str:
        return f"tic {self.mode} {self.port} {self.label}"


class ModbusSource(_Strict):
    """A value polled from a Modbus device, RTU over a serial line or TCP.

    ``map`` names a register map (shipped, or declared under ``[[register_maps]]``),
    ``register`` one of its registers. Devices on one RS-485 line share ``port`` and its
    line settings and differ by ``unit_id``.
    """

    type: Literal["modbus"]
    transport: Literal["rtu", "tcp"] = "rtu"
    port: str | None = Field(default=None, description="rtu: serial device")
    baudrate: int = 9600
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    host: str | None = Field(default=None, description="tcp: host name or address")
    tcp_port: Annotated[int, Field(ge=1, le=65535)] = 502
    unit_id: Annotated[int, Field(ge=0, le=247)] = 1
    map: str
    # `register` would shadow a BaseModel attribute; the file still says `register`.
    register_name: str = Field(alias="register")
    interval_s: Annotated[float, Field(gt=0)] = 10.0
    timeout_s: Annotated[float, Field(gt=0)] = 1.0
    retries: Annotated[int, Field(ge=0, le=10)] = 2

    @model_validator(mode="after")
    def _transport_fits(self) -> Self:
        if self.transport == "rtu" and not self.port:
            raise ValueError("transport 'rtu' needs 'port' (serial device)")
        if self.transport == "tcp" and not self.host:
            raise ValueError("transport 'tcp' needs 'host'")
        return self

    @property
    def summary(self) -> str:
        where = f"{self.transport} {self.line} unit {self.unit_id}"
        return f"modbus {where} {self.map}.{self.register_name}"

    @property
    def line(self) -> str:
        """The bus this device is on: its serial port, or host:port."""
        return self.port if self.transport == "rtu" else f"{self.host}:{self.tcp_port}"  # type: ignore[return-value]


def _source_type(value: object) -> str:
    # MQTT is the default source type: `type` may be left out.
    if isinstance(value, dict):
        return str(value.get("type", "mqtt"))
    return str(getattr(value, "type", "mqtt"))


Source = Annotated[
    Annotated[MqttSource, Tag("mqtt")]
    | Annotated[TicSource, Tag("tic")]
    | Annotated[ModbusSource, Tag("modbus")],
    Discriminator(
        _source_type,
        custom_error_type="source_type",
        custom_error_message="source type must be 'mqtt' (default), 'tic' or 'modbus'",
    ),
]


class Meter(_Strict):
    """One stored channel of a site: a cumulative index (energy, volume) with a role in
    the balance, or a measurement (power, current, voltage…) with role ``measurement``."""

    id: Annotated[str, Field(pattern=IDENTIFIER)]
    name: str = Field(
        default="",
        description="shown as written in dashboards and reports: write it in the site's "
        "language (the id is shown when empty)",
    )
    carrier: Carrier = Carrier.ELECTRICITY
    role: Role
    unit: str = "Wh"
    source: Source
    use: Use | None = Field(default=None, description="submeter: what the energy is used for")
    stream: WasteStream | None = Field(default=None, description="waste: the stream weighed")
    scale: Literal["counter", "weighing"] = Field(
        default="counter",
        description="waste: 'counter', the scale publishes its cumulative mass; 'weighing', "
        "each value is one weighing, summed over the period",
    )
    weighing_interval_days: Annotated[int, Field(gt=0, le=366)] = Field(
        default=7,
        description="scale 'weighing': the longest expected time between two weighings "
        "(its coverage is the share of the period weighed within it)",
    )
    quality: IndexRules = Field(default_factory=IndexRules)
    expected_interval_s: Annotated[float | None, Field(gt=0)] = Field(
        default=None,
        description="longest silence expected of this meter [s] before a silent-meter "
        "alert; default: the site's alerts.silent_after_s",
    )
    kwh_per_m3: Annotated[float | None, Field(gt=0)] = Field(
        default=None,
        description="energy per m³ of a volume-metered carrier [kWh/m³], e.g. gas: the PCS "
        "conversion coefficient GRDF publishes (about 10–11 kWh/m³); no default",
    )

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, unit: str) -> str:
        try:
            unit_of(unit)
        except UnitError as exc:
            raise ValueError(str(exc)) from None
        return unit

    @model_validator(mode="after")
    def _role_fits(self) -> Self:
        if self.role is Role.WASTE:
            if self.stream is None or self.dimension != "mass":
                raise ValueError("role 'waste' needs a 'stream' and a mass unit (kg, t)")
            if self.scale != "weighing" and "weighing_interval_days" in self.model_fields_set:
                raise ValueError("'weighing_interval_days' applies to scale 'weighing' only")
            return self
        if self.stream is not None:
            raise ValueError("'stream' applies to role 'waste' only")
        if self.model_fields_set & {"scale", "weighing_interval_days"}:
            raise ValueError("'scale' and 'weighing_interval_days' apply to role 'waste' only")
        if self.use is not None and self.role is not Role.SUBMETER:
            raise ValueError("'use' applies to role 'submeter' only")
        if self.kwh_per_m3 is not None and self.dimension != "volume":
            raise ValueError("'kwh_per_m3' applies to a meter in a volume unit (m3, L) only")
        if self.role in INDEX_ROLES and self.dimension not in ("energy", "volume"):
            raise ValueError(
                f"role {self.role.value!r} needs a cumulative index (energy or volume unit), "
                f"not {self.dimension} ({self.unit}); use role 'measurement'"
            )
        return self

    @model_validator(mode="after")
    def _tic_label_fits(self) -> Self:
        src = self.source
        problem = None
        if isinstance(src, TicSource):
            problem = label_problem(src.mode, src.label, self.unit)
        if problem:
            raise ValueError(f"source.label: {problem}")
        return self

    @property
    def dimension(self) -> str:
        return unit_of(self.unit).dimension


class Location(_Strict):
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    altitude_m: float = 0.0


class Site(_Strict):
    id: Annotated[str, Field(pattern=IDENTIFIER)]
    name: str
    timezone: str
    location: Location
    floor_area_m2: Annotated[float, Field(gt=0)]
    occupants: Annotated[int | None, Field(gt=0)] = None
    meters: list[Meter] = Field(default_factory=list)
    #: Overrides of the default conversion factors (domain/factors.py), per carrier.
    primary_energy_factors: dict[Carrier, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict
    )
    carbon_factors_kg_per_kwh: dict[Carrier, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict
    )
    study_period_years: Annotated[int, Field(gt=0, le=200)] = 50
    #: Longest expected time between two manual waste entries: their coverage is the
    #: share of the period weighed within it (weekly collections by default); 0: no
    #: entries expected (all waste weighed by scales).
    waste_entry_interval_days: Annotated[int, Field(ge=0, le=366)] = 7
    targets: Targets = Field(default_factory=Targets)
    alerts: AlertRules = Field(default_factory=AlertRules)
    #: Language of the site's monthly reports (the other one is available on request).
    language: Language = Language.FR
    reports: ReportSettings = Field(default_factory=ReportSettings)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, timezone: str) -> str:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tzdata folder
            raise ValueError(f"unknown IANA timezone {timezone!r}") from None
        return timezone

    @field_validator("meters")
    @classmethod
    def _unique_meter_ids(cls, meters: list[Meter]) -> list[Meter]:
        _reject_duplicates([m.id for m in meters], "meter id")
        return meters

    @model_validator(mode="after")
    def _primary_energy_computable(self) -> Self:
        """Alerts in primary energy need every factor: a window whose balance cannot be
        computed would never fire."""
        if self.alerts.enabled and self.alerts.energy == "primary":
            from domain.alerts import primary_energy_gaps  # it imports this module

            gaps = primary_energy_gaps(self)
            if gaps:
                raise ValueError(f"alerts.energy = 'primary' needs: {'; '.join(gaps)}")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def meters_with(self, role: Role, carrier: Carrier = Carrier.ELECTRICITY) -> list[Meter]:
        return [m for m in self.meters if m.role == role and m.carrier == carrier]


class SitesConfig(_Strict):
    sites: Annotated[list[Site], Field(min_length=1)]
    register_maps: list[RegisterMap] = Field(default_factory=list)
    #: Where alerts are sent (every site's); each channel once per event.
    alert_channels: list[Channel] = Field(default_factory=list)

    @field_validator("alert_channels")
    @classmethod
    def _unique_channel_names(cls, channels: list[Channel]) -> list[Channel]:
        _reject_duplicates([c.name for c in channels], "alert channel name")
        return channels

    def register_map(self, name: str) -> RegisterMap | None:
        """A map declared in this file, else a shipped one."""
        own = next((m for m in self.register_maps if m.name == name), None)
        return own or shipped_maps().get(name)

    @field_validator("sites")
    @classmethod
    def _unique_site_ids(cls, sites: list[Site]) -> list[Site]:
        _reject_duplicates([s.id for s in sites], "site id")
        return sites

    @model_validator(mode="after")
    def _one_format_per_topic(self) -> Self:
        formats: dict[str, str] = {}
        for meter in self.meters(MqttSource):
            src = meter.source
            assert isinstance(src, MqttSource)
            seen = formats.setdefault(src.topic, src.format)
            if seen != src.format:
                raise ValueError(
                    f"topic {src.topic!r} is declared with formats {seen!r} and "
                    f"{src.format!r}; one topic carries one payload format"
                )
        return self

    @model_validator(mode="after")
    def _report_channels_are_email(self) -> Self:
        email = {c.name for c in self.alert_channels if c.type == "email"}
        for site in self.sites:
            name = site.reports.email_channel
            if name is not None and name not in email:
                raise ValueError(
                    f"site {site.id!r}: reports.email_channel {name!r} is not an e-mail "
                    f"channel of alert_channels (e-mail channels: {sorted(email) or 'none'})"
                )
        return self

    @model_validator(mode="after")
    def _one_setting_per_serial_line(self) -> Self:
        lines: dict[str, tuple[object, ...]] = {}
        for meter in self.meters(TicSource, ModbusSource):
            src = meter.source
            settings: tuple[object, ...]
            if isinstance(src, TicSource):
                key = src.port
                settings = (
                    "tic", src.mode, src.baudrate, src.bytesize, src.parity, src.stopbits,
                    src.interval_s, src.meter_id,
                )  # fmt: skip
            else:
                assert isinstance(src, ModbusSource)
                key = src.line
                settings = ("modbus", src.baudrate, src.bytesize, src.parity, src.stopbits)
            seen = lines.setdefault(key, settings)
            if seen != settings:
                raise ValueError(
                    f"line {key!r} is declared with different settings {seen} and {settings}; "
                    "meters on one line share them"
                )
        return self

    @model_validator(mode="after")
    def _modbus_registers_exist(self) -> Self:
        for site in self.sites:
            for meter in site.meters:
                src = meter.source
                if not isinstance(src, ModbusSource):
                    continue
                register_map = self.register_map(src.map)
                where = f"site {site.id!r} meter {meter.id!r}"
                if register_map is None:
                    known = sorted({*shipped_maps(), *(m.name for m in self.register_maps)})
                    raise ValueError(f"{where}: unknown register map {src.map!r} (known: {known})")
                spec = register_map.register(src.register_name)
                if spec is None:
                    known = [r.name for r in register_map.registers]
                    raise ValueError(
                        f"{where}: map {src.map!r} has no register {src.register_name!r} "
                        f"(known: {known})"
                    )
                if unit_of(spec.unit).dimension != meter.dimension:
                    raise ValueError(
                        f"{where}: register {src.register_name!r} is in {spec.unit}, "
                        f"meter unit is {meter.unit}"
                    )
        return self

    def meters(self, *source_types: type) -> list[Meter]:
        """Every meter of every site whose source is one of ``source_types``."""
        return [m for s in self.sites for m in s.meters if isinstance(m.source, source_types)]

    def site(self, site_id: str) -> Site | None:
        return next((s for s in self.sites if s.id == site_id), None)


def _reject_duplicates(ids: list[str], what: str) -> None:
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"duplicate {what}: {', '.join(dupes)}")


def _id_at(data: object, loc: Sequence[object], i: int) -> str | None:
    """The ``id`` of the table at ``loc[: i + 1]`` of the file's ``data``, if it has one."""
    node = data
    for part in loc[: i + 1]:
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(part, str) and isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    ident = node.get("id") if isinstance(node, dict) else None
    return ident if isinstance(ident, str) and ident else None


def _format_errors(exc: ValidationError, data: object = None) -> str:
    """One line per error: ``site S, meter M, key.path: reason``: a site and a meter
    named by their id where the file gives one (``sites[0]`` where it does not)."""
    lines = []
    for err in exc.errors():
        named: list[str] = []
        key = ""
        loc = list(err["loc"])
        for i, part in enumerate(loc):
            if i and loc[i - 1] == "source" and part in ("mqtt", "tic", "modbus"):
                continue  # the union's tag, not a key of the file
            # sites[0] -> "site S"; sites[0].meters[2] -> "site S, meter M"
            ident = _id_at(data, loc, i) if key in ("sites", "meters") else None
            if ident is not None:
                named.append(f"{key.removesuffix('s')} {ident}")
                key = ""
                continue
            key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        where = ", ".join([*named, *([key] if key else [])])
        lines.append(f"{where or '(top level)'}: {msg}")
    return "\n".join(lines)


def parse_sites(text: str) -> SitesConfig:
    """Parse and validate a TOML site configuration."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}") from None
    try:
        return SitesConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, data)) from None


def read_sites(path: str | Path) -> SitesConfig:
    """Read and validate the TOML site configuration at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigUnreadable(
            f"cannot read the site configuration {path}: {exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at line {line}"
            " (TOML files are UTF-8; re-save it as UTF-8)"
        ) from None
    try:
        return parse_sites(text)
    except ConfigError as exc:
        raise ConfigError(f"{path}:\n{exc}") from None
