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
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from microville.domain.units import UnitError, unit_of

#: Ids end up in topics, tags and queries: keep them to a safe alphabet.
IDENTIFIER = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class ConfigError(ValueError):
    """A configuration that cannot be used; the message lists each problem by key."""


class Carrier(StrEnum):
    ELECTRICITY = "electricity"
    GAS = "gas"
    HEAT = "heat"
    WATER = "water"
    OTHER = "other"


class Role(StrEnum):
    """What a meter's index counts, for the balance."""

    PRODUCTION = "production"  # on-site generation (PV)
    GRID_IMPORT = "grid_import"  # drawn from the grid
    GRID_EXPORT = "grid_export"  # injected into the grid
    SUBMETER = "submeter"  # part of the consumption (heating, lighting…)


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


class Meter(_Strict):
    """One cumulative index: an energy (or volume) counter with a role in the balance."""

    id: Annotated[str, Field(pattern=IDENTIFIER)]
    name: str = ""
    carrier: Carrier = Carrier.ELECTRICITY
    role: Role
    unit: str = "Wh"
    source: MqttSource

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, unit: str) -> str:
        try:
            dimension = unit_of(unit).dimension
        except UnitError as exc:
            raise ValueError(str(exc)) from None
        if dimension not in ("energy", "volume"):
            raise ValueError(f"a meter index is an energy or volume counter, not {dimension}")
        return unit

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
    meters: list[Meter] = Field(default_factory=list)

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

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def meters_with(self, role: Role, carrier: Carrier = Carrier.ELECTRICITY) -> list[Meter]:
        return [m for m in self.meters if m.role == role and m.carrier == carrier]


class SitesConfig(_Strict):
    sites: Annotated[list[Site], Field(min_length=1)]

    @field_validator("sites")
    @classmethod
    def _unique_site_ids(cls, sites: list[Site]) -> list[Site]:
        _reject_duplicates([s.id for s in sites], "site id")
        return sites

    @model_validator(mode="after")
    def _one_format_per_topic(self) -> Self:
        formats: dict[str, str] = {}
        for site in self.sites:
            for meter in site.meters:
                src = meter.source
                seen = formats.setdefault(src.topic, src.format)
                if seen != src.format:
                    raise ValueError(
                        f"topic {src.topic!r} is declared with formats {seen!r} and "
                        f"{src.format!r}; one topic carries one payload format"
                    )
        return self

    def site(self, site_id: str) -> Site | None:
        return next((s for s in self.sites if s.id == site_id), None)


def _reject_duplicates(ids: list[str], what: str) -> None:
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"duplicate {what}: {', '.join(dupes)}")


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ""
        for part in err["loc"]:
            key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{key or '(top level)'}: {msg}")
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
        raise ConfigError(_format_errors(exc)) from None


def read_sites(path: str | Path) -> SitesConfig:
    """Read and validate the TOML site configuration at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return parse_sites(text)
    except ConfigError as exc:
        raise ConfigError(f"{path}:\n{exc}") from None
