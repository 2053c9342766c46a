"""The API fuzzed from its own OpenAPI schema (schemathesis): whatever the parameters and
bodies, no 500, and every error is a 4xx carrying a message.

Each operation gets a few dozen generated cases, valid and invalid (``positive`` and
``negative`` modes), on a site holding a day of readings, materials, waste entries and
evaluated alerts, with an admin token and no practical write limit. The path's ``site``
is the real one, so the cases reach the parameters behind it; unknown and hostile site
ids are tried in tests/service/api/test_injection.py and tests/service/access/test_auth.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from helpers.support import GRID_AND_PV_METERS, SITE_S1
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from domain.clock import fixed_clock
from domain.readings import Reading
from microville.settings import Settings
from service.access.tokens import Role, TokenStore
from service.app import create_app
from stores import open_store

SITE = "s1"
EXAMPLES_PER_OPERATION = 40


@pytest.fixture(scope="module")
def fuzzed(
    tmp_path_factory: pytest.TempPathFactory, now: datetime
) -> Iterator[tuple[TestClient, str]]:
    state = tmp_path_factory.mktemp("fuzz")
    config = state / "sites.toml"
    config.write_text(SITE_S1 + GRID_AND_PV_METERS)
    tokens = TokenStore(state / "tokens.db")
    _, token = tokens.create("fuzzer", Role.ADMIN)
    tokens.close()
    store = open_store(f"sqlite:///{state}/readings.db")
    t0 = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    store.write(
        [
            Reading(SITE, meter, "energy", per_h * h, t0 + timedelta(hours=h))
            for h in range(25)
            for meter, per_h in (("pv", 900.0), ("in", 400.0), ("out", 300.0))
        ]
    )
    app = create_app(
        Settings(
            config=str(config),
            ledger_path=str(state / "ledger.db"),
            alerts_path=str(state / "alerts.db"),
            reports_dir=str(state / "reports"),
            alert_interval_s=0,
            report_interval_s=0,
            api_tokens_path=str(state / "tokens.db"),
            api_write_burst=1_000_000,
            api_read_burst=1_000_000,
        ),
        store=store,
        clock=fixed_clock(now),
    )
    # One client for the module: leaving it runs the app's shutdown (closes its files).
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, token
    store.close()


def _send(client: TestClient, case: schemathesis.Case, token: str) -> httpx.Response:
    """The case through Starlette's TestClient (httpx). Not ``case.call()``: its requests
    transport breaks where grafana-client's niquests has installed urllib3-future."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    method, url = kwargs.pop("method"), kwargs.pop("url")
    # Whatever the case made of the bearer scheme's header: authentication is
    # tests/service/access/test_auth.py's subject, these cases are about parameters and bodies.
    kwargs["headers"] = {
        **{k: v for k, v in kwargs.get("headers", {}).items() if k.lower() != "authorization"},
        "Authorization": f"Bearer {token}",
    }
    if isinstance(kwargs.get("data"), str | bytes):
        kwargs["content"] = kwargs.pop("data")
    kwargs.pop("cookies", None)  # the API reads none
    return client.request(method, url, **kwargs)


@pytest.fixture
def api_schema(fuzzed: tuple[TestClient, str]) -> Any:
    client, _ = fuzzed
    return schemathesis.openapi.from_dict(client.get("/openapi.json").json())


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same cases every run: a failure reproduces
)
def test_no_server_error_and_every_error_says_why(
    case: schemathesis.Case, fuzzed: tuple[TestClient, str]
) -> None:
    client, token = fuzzed
    if "site" in (case.path_parameters or {}):
        case.path_parameters["site"] = SITE
    response = _send(client, case, token)
    where = f"{case.method} {case.formatted_path} {case.query} -> {response.status_code}"
    assert response.status_code < 500, f"{where}: {response.text[:500]}"
    if response.status_code >= 400:
        detail = response.json().get("detail")
        assert detail, f"{where}: an error without a message: {response.text[:300]}"
    else:
        case.validate_response(
            response, checks=[response_schema_conformance, content_type_conformance]
        )


def test_the_fuzz_covers_every_operation(api_schema: Any) -> None:
    """Nothing is left out of the fuzzing: it runs on each operation of the schema."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    paths = {(op.method.upper(), op.path) for op in operations}
    assert ("POST", "/api/v1/sites/{site}/waste-entries") in paths
    assert ("GET", "/api/v1/sites/{site}/balance") in paths
    assert len(paths) >= 15


@pytest.mark.parametrize("kind", ["materials", "waste-entries"])
def test_a_record_id_past_sqlite_integers_is_a_422(
    fuzzed: tuple[TestClient, str], kind: str
) -> None:
    """Found by the fuzzing: 2**63 reached SQLite and overflowed (a 500)."""
    client, token = fuzzed
    headers = {"Authorization": f"Bearer {token}"}
    response = client.delete(f"/api/v1/sites/{SITE}/{kind}/{2**63}", headers=headers)
    assert response.status_code == 422
    assert "less than or equal to 9223372036854775807" in response.text
    assert (
        client.delete(f"/api/v1/sites/{SITE}/{kind}/{2**63 - 1}", headers=headers).status_code
        == 404
    )
