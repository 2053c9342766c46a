from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from helpers.receivers import Inbox, Receiver
from helpers.services import free_port, running_influxdb, running_mosquitto

from domain.store import ReadingStore
from service.access.tokens import Role, TokenStore
from stores import open_store

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CONFIG = ROOT / "microville" / "sites" / "microville112.toml"

#: The "now" of the tests when none is given: a winter weekday, when the sample
#: building's balance is negative (the date on which a wall-clock test went red).
DEFAULT_NOW = "2026-12-02T10:17:00+00:00"


E2E = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e/ is end-to-end: `pytest -m "not e2e"` is the fast lane."""
    for item in items:
        if E2E in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--now",
        default=os.environ.get("MICROVILLE_TEST_NOW", DEFAULT_NOW),
        help="the instant the tests take as now (ISO 8601 with an offset; default "
        f"{DEFAULT_NOW}, or $MICROVILLE_TEST_NOW): run the suite as if it were that date",
    )


@pytest.fixture(scope="session")
def now(pytestconfig: pytest.Config) -> datetime:
    """The tests' "now", aware, in UTC: scenarios are built from it, never from the wall
    clock, and code under test that needs the time is handed a clock reading it. The
    suite must pass whatever it is (``pytest --now 2026-03-29T01:30:00+00:00``)."""
    value = datetime.fromisoformat(str(pytestconfig.getoption("--now")))
    if value.tzinfo is None:
        raise pytest.UsageError(f"--now {value.isoformat()} needs a UTC offset")
    return value.astimezone(UTC)


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


#: The row cap of the ``limited_influxdb_url`` server.
LIMITED_ROWS = 1000


@pytest.fixture(scope="session")
def limited_influxdb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real InfluxDB 1.x whose answers are cut at ``LIMITED_ROWS`` rows
    (``max-row-limit``), as some servers are configured."""
    work = tmp_path_factory.mktemp("influxdb-limited")
    with running_influxdb(work, max_row_limit=LIMITED_ROWS) as url:
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


@pytest.fixture(autouse=True)
def _private_state_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Apps built with default settings keep their ledger, alert state and reports under
    the test's own directory, not in /var/lib/microville (a folder made here: the
    stores refuse a path into a folder that does not exist)."""
    (tmp_path / "state").mkdir(exist_ok=True)
    monkeypatch.setenv("MICROVILLE_LEDGER_PATH", str(tmp_path / "state" / "ledger.db"))
    monkeypatch.setenv("MICROVILLE_ALERTS_PATH", str(tmp_path / "state" / "alerts.db"))
    monkeypatch.setenv("MICROVILLE_ALERT_INTERVAL_S", "0")
    monkeypatch.setenv("MICROVILLE_REPORTS_DIR", str(tmp_path / "state" / "reports"))
    monkeypatch.setenv("MICROVILLE_REPORT_INTERVAL_S", "0")


@pytest.fixture(scope="session", autouse=True)
def api_admin_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API requires a token in the tests as in production: apps built from the
    settings read a token file holding one admin token, and every TestClient sends it
    unless the test replaces or deletes its Authorization header
    (tests/service/access/test_auth.py). Session-wide, so that module-scoped apps get it too."""
    path = tmp_path_factory.mktemp("api-tokens") / "tokens.db"
    tokens = TokenStore(path)
    _, token = tokens.create("tests", Role.ADMIN)
    tokens.close()
    original_init = TestClient.__init__

    def init_with_token(self: TestClient, *args: object, **kwargs: object) -> None:
        original_init(self, *args, **kwargs)  # type: ignore[arg-type]
        self.headers.setdefault("Authorization", f"Bearer {token}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MICROVILLE_API_TOKENS_PATH", str(path))
        patch.setattr(TestClient, "__init__", init_with_token)
        yield token


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def smtp_auth_server() -> Iterator[tuple[Inbox, int]]:
    """Requires AUTH (PLAIN/LOGIN) before MAIL; accepts alerts / s3cret."""
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        auth_require_tls=False,
        auth_required=True,
        authenticator=inbox.authenticate,
    )
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    """Register receivers here to have them stopped at the end of the test."""
    made: list[Receiver] = []
    yield made
    for r in made:
        r.stop()
