"""Adapters of the store port (:class:`domain.store.ReadingStore`).

``open_store(url)`` picks one by URL scheme:

- ``sqlite:///path/to/readings.db`` (or ``sqlite://`` + relative path): embedded, default;
- ``influxdb://[user:password@]host:port/database`` (``influxdbs://`` for HTTPS):
  any server speaking InfluxDB's v1-compatible HTTP API (1.x, 2.x, 3.x Core).
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from domain.store import ReadingStore
from microville.settings import redact_url


def open_store(url: str, token: str | None = None, writer: str | None = None) -> ReadingStore:
    """Open the store at ``url``; ``token`` authenticates to InfluxDB 2.x/3.x; ``writer``
    names this process in InfluxDB's rollup markers (default: host and process id)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        from stores.sqlite import SqliteStore

        path = parts.netloc + parts.path if parts.netloc else parts.path
        if not path:
            raise ValueError(f"sqlite store URL needs a file path: {redact_url(url)!r}")
        return SqliteStore(path)
    if parts.scheme in ("influxdb", "influxdbs"):
        from stores.influx import InfluxStore

        database = parts.path.strip("/")
        if not database or not parts.hostname:
            raise ValueError(f"influxdb store URL needs host and database: {redact_url(url)!r}")
        scheme = "https" if parts.scheme == "influxdbs" else "http"
        return InfluxStore(
            base_url=f"{scheme}://{parts.hostname}:{parts.port or 8086}",
            database=database,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            token=token,
            writer=writer,
        )
    raise ValueError(
        f"unknown store URL scheme {parts.scheme!r} in {redact_url(url)!r} (sqlite:// or influxdb://)"
    )
