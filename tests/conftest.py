from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from services import running_influxdb, running_mosquitto

from microville.domain.store import ReadingStore
from microville.stores import open_store

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CONFIG = ROOT / "app" / "sites" / "microville112.toml"


@pytest.fixture(scope="session")
def mosquitto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Mosquitto of the tests' own, configured like production."""
    with running_mosquitto(tmp_path_factory.mktemp("mosquitto")) as port:
        yield f"mqtt://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def influxdb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real InfluxDB 1.x of the tests' own."""
    with running_influxdb(tmp_path_factory.mktemp("influxdb")) as url:
        yield url


@pytest.fixture(params=["sqlite", "influxdb"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store-backed test runs on both adapters; a fresh database each time."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/readings.db"
    base = request.getfixturevalue("influxdb_url").removeprefix("http://")
    return f"influxdb://{base}/t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(store_url: str) -> Iterator[ReadingStore]:
    s = open_store(store_url)
    yield s
    s.close()
