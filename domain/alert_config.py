"""What a site wants to be warned about: the alert rules of its configuration."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

WindowName = Literal["today", "rolling_7d", "month_to_date", "rolling_12m", "year_to_date"]
DEFAULT_WINDOWS: tuple[WindowName, ...] = ("rolling_7d", "month_to_date", "year_to_date")


class AlertRules(BaseModel):
    """Per-site alert rules (``[sites.alerts]``); sensible defaults.

    - the net balance of each window in ``windows`` (final or primary energy) fires below
      0 and resolves above ``+hysteresis_kwh``, so a balance hovering at 0 does not flap;
    - ``trajectory``: the year-end balance projected from the same months of last year
      will be negative;
    - a meter silent for longer than ``silent_after_s``;
    - the month's coverage below the targets' ``min_coverage`` (the proof is at risk);
    - a counter reset in the month.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    windows: list[WindowName] = Field(default_factory=lambda: list(DEFAULT_WINDOWS))
    energy: Literal["final", "primary"] = "final"
    hysteresis_kwh: Annotated[float, Field(ge=0)] = 1.0
    trajectory: bool = True
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
