"""What a site wants to be warned about: the alert rules of its configuration."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

WindowName = Literal["today", "rolling_7d", "month_to_date", "rolling_12m", "year_to_date"]
DEFAULT_WINDOWS: tuple[WindowName, ...] = ("rolling_7d", "month_to_date", "year_to_date")

#: Margin above 0 a window's net balance must clear to resolve [kWh], by window: a
#: longer window's net moves by more between two evaluations, and 1 kWh means nothing
#: on a year.
DEFAULT_HYSTERESIS_KWH: dict[WindowName, float] = {
    "today": 1.0,
    "rolling_7d": 5.0,
    "month_to_date": 10.0,
    "rolling_12m": 50.0,
    "year_to_date": 50.0,
}
#: Margin above 0 the projected year-end net must clear to resolve [kWh].
DEFAULT_TRAJECTORY_HYSTERESIS_KWH = 200.0
#: How much of a window must have passed before its balance is judged [h]: a day's
#: balance is negative every morning before the sun is up, a month's or a year's on
#: its first night. Rolling windows always span their whole length.
DEFAULT_MIN_ELAPSED_H: dict[WindowName, float] = {
    "today": 12.0,
    "rolling_7d": 0.0,
    "month_to_date": 24.0,
    "rolling_12m": 0.0,
    "year_to_date": 24.0,
}

NonNegative = Annotated[float, Field(ge=0)]


class AlertRules(BaseModel):
    """Per-site alert rules (``[sites.alerts]``); sensible defaults.

    - the net balance of each window in ``windows`` (final or primary energy) fires below
      0 and resolves above ``+hysteresis_kwh`` (per window), so a balance hovering at 0
      does not flap; it is judged once ``min_elapsed_h`` of the window have passed, and a
      window covered below ``targets.min_coverage`` still fires, saying so;
    - ``trajectory``: the year-end balance projected from the same months of last year
      will be negative (resolves above ``+trajectory_hysteresis_kwh``);
    - a meter silent for longer than ``silent_after_s``;
    - the month's coverage below the targets' ``min_coverage`` (the proof is at risk);
    - a counter reset in the month.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    windows: list[WindowName] = Field(default_factory=lambda: list(DEFAULT_WINDOWS))
    energy: Literal["final", "primary"] = "final"
    hysteresis_kwh: NonNegative | dict[WindowName, NonNegative] = Field(
        default_factory=dict,
        description="margin above 0 a window's balance must clear to resolve [kWh]: one "
        "number for every window, or a table by window (the others keep their default, "
        "DEFAULT_HYSTERESIS_KWH)",
    )
    min_elapsed_h: dict[WindowName, NonNegative] = Field(
        default_factory=dict,
        description="judge a window's balance once this much of it has passed [h], by "
        "window (the others keep their default, DEFAULT_MIN_ELAPSED_H); until then its "
        "alert keeps its state",
    )
    trajectory: bool = True
    trajectory_hysteresis_kwh: NonNegative = Field(
        default=DEFAULT_TRAJECTORY_HYSTERESIS_KWH,
        description="margin above 0 the projected year-end net must clear to resolve [kWh]",
    )
    seasonal_net_kwh: list[float] | None = Field(
        default=None,
        min_length=12,
        max_length=12,
        description="typical net balance of each month, January to December [kWh]: the "
        "trajectory's fallback for a month missing from last year (a site in its first "
        "year), e.g. from the design study's monthly PV and consumption estimates",
    )
    silent_after_s: Annotated[float, Field(gt=0)] = 3600.0
    coverage: bool = True
    coverage_after_h: Annotated[float, Field(ge=0)] = Field(
        default=24.0, description="judge the month's coverage once this much of it has passed"
    )
    coverage_hysteresis: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.02, description="a coverage alert resolves above min_coverage + this"
    )
    resets: bool = True
    reminder_h: Annotated[float | None, Field(gt=0)] = Field(
        default=24.0, description="repeat a firing, unacknowledged alert every … hours"
    )

    def window_hysteresis_kwh(self, window: WindowName) -> float:
        """The resolve margin of ``window``'s balance alert [kWh]."""
        if isinstance(self.hysteresis_kwh, dict):
            return self.hysteresis_kwh.get(window, DEFAULT_HYSTERESIS_KWH[window])
        return self.hysteresis_kwh

    def window_min_elapsed_h(self, window: WindowName) -> float:
        """How much of ``window`` must have passed before its balance is judged [h]."""
        return self.min_elapsed_h.get(window, DEFAULT_MIN_ELAPSED_H[window])


# --- notification channels (``[[alert_channels]]`` of the site file) --------------------


class _ChannelBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="unique among the channels; shown in logs")


class WebhookChannel(_ChannelBase):
    """POST the notification's JSON to ``url``; any non-2xx answer is a failure."""

    type: Literal["webhook"] = "webhook"
    url: str = Field(pattern=r"^https?://")
    timeout_s: float = Field(default=10, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)


class EmailChannel(_ChannelBase):
    """Send a plain-text e-mail through an SMTP server.

    ``password_env`` is the *name* of the environment variable holding the SMTP
    password, read at send time; the password itself never enters the configuration.
    """

    type: Literal["email"] = "email"
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    ca_file: str | None = Field(
        default=None,
        description="PEM file of the CA(s) to verify the server's STARTTLS certificate "
        "with (a private CA, a self-signed server); default: the system's trust store. "
        "The certificate is always verified, host name included",
    )
    username: str | None = None
    password_env: str | None = None
    sender: str = Field(min_length=3)
    recipients: list[str] = Field(min_length=1)
    timeout_s: float = Field(default=10, gt=0)

    @model_validator(mode="after")
    def _password_with_username(self) -> Self:
        if self.username and not self.password_env:
            raise ValueError("username given without password_env (the variable to read)")
        return self


class MqttChannel(_ChannelBase):
    """Publish the notification's JSON (QoS 1, not retained) on
    ``{topic_prefix}/{site}/{rule}`` of the broker the outbox was given."""

    type: Literal["mqtt"] = "mqtt"
    topic_prefix: str = Field(default="microville/alerts", min_length=1)
    timeout_s: float = Field(default=10, gt=0)

    def topic(self, site: str, rule: str) -> str:
        return f"{self.topic_prefix.rstrip('/')}/{site}/{rule}"


Channel = Annotated[WebhookChannel | EmailChannel | MqttChannel, Field(discriminator="type")]
