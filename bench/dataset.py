"""The query dataset: one-minute cumulative energy indexes of a site's meters over a
period, generated with numpy and bulk-loaded into InfluxDB (line protocol) and SQLite
(executemany); kept between runs, keyed by what was generated."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import numpy as np

from bench.services import influx_count, influx_query
from domain.site import SitesConfig, parse_sites

SITE = "benchq"
TIMEZONE = "Europe/Paris"
#: Bump when the generator changes: cached data of another version is reloaded.
GENERATOR_VERSION = 2


@dataclass(frozen=True)
class Dataset:
    meters: int
    start: date  # local, inclusive
    end: date  # local, exclusive
    seed: int = 112

    @property
    def key(self) -> str:
        return f"v{GENERATOR_VERSION}-{self.meters}m-{self.start}-{self.end}-s{self.seed}"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(TIMEZONE)

    def start_utc_s(self) -> int:
        return int(
            datetime(self.start.year, self.start.month, self.start.day, tzinfo=self.tz).timestamp()
        )

    def end_utc_s(self) -> int:
        return int(
            datetime(self.end.year, self.end.month, self.end.day, tzinfo=self.tz).timestamp()
        )

    def points_per_meter(self) -> int:
        """One a minute, both ends included: the last closes the period."""
        return (self.end_utc_s() - self.start_utc_s()) // 60 + 1

    @property
    def points(self) -> int:
        return self.meters * self.points_per_meter()

    def roles(self) -> list[tuple[str, str]]:
        """(meter id, role): half PV inverters, the rest grid delivery points (import and
        export), so that every meter is in the electricity balance."""
        production = self.meters // 2
        imports = (self.meters - production + 1) // 2
        exports = self.meters - production - imports
        return (
            [(f"pv{i + 1:02d}", "production") for i in range(production)]
            + [(f"imp{i + 1:02d}", "grid_import") for i in range(imports)]
            + [(f"exp{i + 1:02d}", "grid_export") for i in range(exports)]
        )


def site_toml(ds: Dataset) -> str:
    lines = [
        "[[sites]]",
        f'id = "{SITE}"',
        'name = "Query benchmark"',
        f'timezone = "{TIMEZONE}"',
        "floor_area_m2 = 5000",
        "location = { lat = 47.47, lon = -0.55 }",
        "[sites.targets]",
        "min_coverage = 0.95",
        "primary_energy_balance_min_kwh = 0",
        "net_carbon_max_kg = 0",
    ]
    for meter_id, role in ds.roles():
        lines += [
            "",
            "[[sites.meters]]",
            f'id = "{meter_id}"',
            f'role = "{role}"',
            'unit = "Wh"',
            f'source = {{ type = "mqtt", topic = "benchq/{meter_id}", format = "senml",'
            f' name = "urn:dev:benchq-{meter_id}:energy" }}',
        ]
    return "\n".join(lines) + "\n"


def sites(ds: Dataset) -> SitesConfig:
    return parse_sites(site_toml(ds))


def series(ds: Dataset) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(meter id, epoch seconds, cumulative index in Wh rounded to 0.1) per meter."""
    rng = np.random.default_rng(ds.seed)
    t = ds.start_utc_s() + 60 * np.arange(ds.points_per_meter(), dtype=np.int64)
    hour = (t % 86_400) / 3600
    day_of_year = (t - t[0]) / 86_400
    season = 0.6 + 0.4 * np.cos(2 * math.pi * (day_of_year - 172) / 365)
    sun = np.clip(np.sin(math.pi * (hour - 5) / 14), 0, None) * season
    for k, (meter_id, role) in enumerate(ds.roles()):
        if role == "production":
            power_w = 20_000 * (0.5 + k % 5 / 10) * sun * rng.uniform(0.4, 1.0, t.size)
        elif role == "grid_import":
            power_w = rng.gamma(2.0, 1_500.0, t.size) * (1.2 - sun)
        else:
            power_w = rng.gamma(2.0, 4_000.0, t.size) * sun
        steps_wh = power_w / 60
        steps_wh[0] = 1_000_000.0 * (k + 1)  # the index the meter had at the start
        yield meter_id, t, np.round(np.cumsum(steps_wh), 1)


def _influx_bodies(ds: Dataset, batch: int) -> Iterator[bytes]:
    for meter_id, t, v in series(ds):
        prefix = f"energy,meter={meter_id},site={SITE} value="
        ts, vs = t.tolist(), v.tolist()
        for i in range(0, len(ts), batch):
            yield "\n".join(
                f"{prefix}{value!r} {sec}"
                for sec, value in zip(ts[i : i + batch], vs[i : i + batch], strict=True)
            ).encode()


def _marker(path: Path) -> dict[str, object]:
    try:
        loaded: dict[str, object] = json.loads(path.read_text())
        return loaded
    except (OSError, ValueError):
        return {}


def load_influx(ds: Dataset, url: str, db: str, cache_dir: Path) -> tuple[float | None, bool]:
    """Load ``ds`` into ``db`` unless the cached data matches; (seconds taken or None, cached)."""
    marker = cache_dir / f"influx-{db}.json"
    if _marker(marker).get("key") == ds.key and influx_count_safe(url, db) == ds.points:
        return None, True
    influx_query(url, f'DROP DATABASE "{db}"', method="POST")
    influx_query(url, f'CREATE DATABASE "{db}"', method="POST")
    marker.unlink(missing_ok=True)
    start = datetime.now()
    with httpx.Client(base_url=url, timeout=300) as http, ThreadPoolExecutor(2) as pool:

        def post(body: bytes) -> None:
            resp = http.post("/write", params={"db": db, "precision": "s"}, content=body)
            if resp.status_code != 204:
                raise RuntimeError(f"InfluxDB write failed ({resp.status_code}): {resp.text}")

        pending = []
        for body in _influx_bodies(ds, 50_000):
            pending.append(pool.submit(post, body))
            if len(pending) >= 4:
                pending.pop(0).result()
        for f in pending:
            f.result()
    elapsed = (datetime.now() - start).total_seconds()
    stored = influx_count(url, db)
    if stored != ds.points:
        raise RuntimeError(f"InfluxDB holds {stored} points of {ds.points} loaded")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"key": ds.key, **asdict(ds), "points": ds.points}, default=str))
    return elapsed, False


def influx_count_safe(url: str, db: str) -> int:
    try:
        return influx_count(url, db)
    except Exception:
        return -1


#: The raw table of :class:`~stores.sqlite.SqliteStore` (its data contract).
#: The bench fills it directly, then opens the store, which derives whatever else it keeps
#: (its hourly rollup) the way it does for a file written by an older version.
_READINGS_DDL = """
CREATE TABLE IF NOT EXISTS readings (
    site     TEXT    NOT NULL,
    quantity TEXT    NOT NULL,
    meter    TEXT    NOT NULL,
    ts_ms    INTEGER NOT NULL,
    value    REAL    NOT NULL,
    PRIMARY KEY (site, quantity, meter, ts_ms)
) WITHOUT ROWID
"""


def load_sqlite(ds: Dataset, cache_dir: Path) -> tuple[Path, float | None, bool]:
    """The SQLite file holding ``ds``, readable by
    :class:`~stores.sqlite.SqliteStore`; (path, seconds taken or None, cached).
    The time includes the store's first open (anything it derives from the raw rows)."""
    from stores.sqlite import SqliteStore

    path = cache_dir / f"sqlite-{ds.key}.db"
    marker = path.with_suffix(".json")
    if _marker(marker).get("key") == ds.key and path.exists():
        return path, None, True
    for stale in cache_dir.glob(f"sqlite-*-{ds.meters}m-*"):
        stale.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    start = datetime.now()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-262144")
    db.execute(_READINGS_DDL)
    with db:
        for meter_id, t, v in series(ds):
            rows = zip(t.tolist(), v.tolist(), strict=True)
            db.executemany(
                "INSERT INTO readings VALUES (?, 'energy', ?, ?, ?)",
                ((SITE, meter_id, sec * 1000, value) for sec, value in rows),
            )
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    SqliteStore(path).close()
    elapsed = (datetime.now() - start).total_seconds()
    marker.write_text(json.dumps({"key": ds.key, **asdict(ds), "points": ds.points}, default=str))
    return path, elapsed, False


def period(ds: Dataset) -> tuple[datetime, datetime]:
    """The dataset's whole span, as local aware datetimes."""
    tz = ds.tz
    return (
        datetime(ds.start.year, ds.start.month, ds.start.day, tzinfo=tz),
        datetime(ds.end.year, ds.end.month, ds.end.day, tzinfo=tz),
    )


def one_month(ds: Dataset) -> tuple[datetime, datetime]:
    """A month inside the dataset (June when the span covers it), else the whole span."""
    a, b = period(ds)
    june = datetime(a.year, 6, 1, tzinfo=ds.tz)
    july = datetime(a.year, 7, 1, tzinfo=ds.tz)
    if a <= june and july <= b:
        return june, july
    return a, min(b, a + timedelta(days=31))
