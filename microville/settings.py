"""Runtime settings for every command, from environment variables (``MICROVILLE_*``)
or a ``.env`` file; command-line options override them."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def reveal(secret: SecretStr | None) -> str | None:
    """The clear value of a secret setting, for the one place that must send it."""
    return None if secret is None else secret.get_secret_value()


def redact_url(url: str) -> str:
    """``url`` with the password of its user-info masked, fit for a log or a message."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
    except ValueError:  # not a parsable URL: it may still hold a secret
        return "<unparsable URL>"


class Settings(BaseSettings):
    """Where the configuration, the store and the broker are.

    Every field can be set as ``MICROVILLE_<FIELD>`` (e.g. ``MICROVILLE_STORE_URL``).
    """

    model_config = SettingsConfigDict(env_prefix="MICROVILLE_", env_file=".env", extra="ignore")

    config: str = Field(
        default="sites.toml",
        description="Site configuration file (TOML)",
    )
    store_url: str = Field(
        default="sqlite:///var/lib/microville/readings.db",
        description="sqlite:///path or influxdb://[user:pass@]host:port/database",
    )
    ledger_path: str = Field(
        default="/var/lib/microville/ledger.db",
        description="SQLite file of the materials and waste ledger (whatever the store)",
    )
    alerts_path: str = Field(
        default="/var/lib/microville/alerts.db",
        description="SQLite file of the alerts' state and the notification outbox; empty: off",
    )
    alert_interval_s: float = Field(
        default=300, ge=0, description="evaluate the alert rules every … s; 0: on demand only"
    )
    reports_dir: str = Field(
        default="/var/lib/microville/reports",
        description="Where monthly reports (PDF, HTML) and their hashes are kept; empty: off",
    )
    report_interval_s: float = Field(
        default=600,
        ge=0,
        description="check every … s whether a monthly report is due; 0: on request only",
    )
    influx_token: SecretStr | None = Field(default=None, description="InfluxDB 2.x/3.x token")
    mqtt_url: str = Field(default="mqtt://127.0.0.1:1883", description="mqtt:// or mqtts:// URL")
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_ca_file: str | None = None
    mqtt_share_group: str | None = Field(
        default=None,
        description="gateways with the same group share the load ($share/<group>/<topic>);"
        " each needs its own MICROVILLE_GATEWAY_CLIENT_ID",
    )
    gateway_client_id: str = "microville-gateway"
    dead_letter_file: str | None = None
    # Gateway store-and-forward buffer and metrics (gateway/buffer.py, gateway/metrics.py).
    buffer_path: str = Field(
        default="/var/lib/microville/gateway-buffer.db",
        description="SQLite file keeping readings while the store is down; empty: none",
    )
    buffer_max_readings: int = Field(
        default=2_000_000, ge=1, description="readings the buffer holds at most (~100 B each)"
    )
    gateway_metrics_host: str = "127.0.0.1"
    gateway_metrics_port: int = Field(
        default=9108, ge=0, le=65535, description="Prometheus /metrics of the gateway; 0: off"
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # API access control (service/access/auth.py): tokens made by `microville token create`.
    api_tokens_path: str = Field(
        default="/var/lib/microville/api-tokens.db",
        description="SQLite file of the API tokens (hashes only)",
    )
    api_read_token: SecretStr | None = Field(
        default=None,
        description="a token read from the environment that may read every site (Grafana's)",
    )
    api_public_read: bool = Field(
        default=False, description="anyone may read every site without a token"
    )
    api_write_burst: int = Field(default=30, ge=1, description="writes a token may make at once")
    api_write_per_minute: float = Field(
        default=30, gt=0, description="then writes a minute per token"
    )
    api_read_burst: int = Field(default=60, ge=1, description="reads a token may make at once")
    api_read_per_minute: float = Field(
        default=600, gt=0, description="then reads a minute per token (anonymous: per address)"
    )
    api_max_body_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024, description="largest request body accepted (413)"
    )
    api_max_rows: int = Field(
        default=10_000, ge=1, description="records (CSV rows, list items) one request may add"
    )
    api_query_threads: int = Field(
        default=4, ge=1, description="threads answering the API's queries at once"
    )
    health_interval_s: float = Field(
        default=5.0, gt=0, description="/health probes the store and broker once per interval"
    )
