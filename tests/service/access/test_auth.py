"""API access control: roles per site, the token file, public mode, the write limit, and
the `microville token` command. Auth does not depend on the store: SQLite only."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from helpers.support import GRID_AND_PV_METERS, SITE_S1

from domain.site import read_sites
from microville.settings import Settings
from service.access.auth import Access, Authenticator, required_access
from service.access.ratelimit import RateLimiter
from service.access.tokens import Role, TokenStore, token_hash
from service.app import create_app
from stores import open_store

SITE_S2 = SITE_S1.replace('id = "s1"', 'id = "s2"').replace("Test site", "Other member")
CONFIG = SITE_S1 + GRID_AND_PV_METERS + SITE_S2
WASTE = [{"time": "2026-10-01T10:00:00+02:00", "stream": "landfill", "mass_kg": 12.5}]
# Example values of each path parameter, to call every route.
PATH_VALUES = {
    "site": "s1",
    "material_id": "1",
    "entry_id": "1",
    "alert_id": "s1:x",
    "month": "2026-10",
    "fmt": "pdf",
}


class Api:
    """An app over two sites (two member organisations) and its token file."""

    def __init__(self, tmp_path: Path, **settings: object) -> None:
        config = tmp_path / "sites.toml"
        config.write_text(CONFIG)
        self.tokens_path = tmp_path / "tokens.db"
        self.settings = Settings(
            config=str(config),
            api_tokens_path=str(self.tokens_path),
            **settings,  # type: ignore[arg-type]
        )
        self.store = open_store(f"sqlite:///{tmp_path}/readings.db")
        self.app = create_app(self.settings, store=self.store, sites=read_sites(config))
        self.tokens = TokenStore(self.tokens_path)

    def token(self, role: Role, sites: list[str] | None = None) -> str:
        _, token = self.tokens.create(f"{role} {' '.join(sites or ['all'])}", role, sites)
        return token

    def client(self, token: str | None = None) -> TestClient:
        client = TestClient(self.app)
        # conftest gives every client the tests' admin token: this one sends its own.
        client.headers.pop("Authorization", None)
        if token is not None:
            client.headers["Authorization"] = f"Bearer {token}"
        return client

    def close(self) -> None:
        self.tokens.close()
        self.store.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    a = Api(tmp_path)
    with TestClient(a.app):  # runs the lifespan once, closing what the app owns
        yield a
    a.close()


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every operation the OpenAPI schema documents."""
    return [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    ]


def _url(path: str) -> str:
    # A parameter of a route added later: any value, the token is checked first.
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m[1], "x"), path)


def test_every_route_but_health_needs_a_token(api: Api) -> None:
    routes = _routes(api.app)
    assert len(routes) >= 15
    anonymous = api.client()
    for method, path in routes:
        response = anonymous.request(method, _url(path))
        if path == "/health":
            assert response.status_code == 200
            continue
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "bearer token is required" in response.json()["detail"]


def test_a_wrong_revoked_or_malformed_token_is_refused(api: Api) -> None:
    token = api.token(Role.READ, ["s1"])
    assert api.client(token).get("/api/v1/sites/s1/materials").status_code == 200
    wrong = api.client(token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert wrong.get("/api/v1/sites/s1/materials").json()["detail"] == "invalid or revoked token"
    (info,) = api.tokens.tokens()
    assert api.tokens.revoke(info.id)
    # No restart: the service reads the token file on every request.
    response = api.client(token).get("/api/v1/sites/s1/materials")
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    basic = api.client()
    basic.headers["Authorization"] = "Basic dXNlcjpwYXNz"
    response = basic.get("/api/v1/sites/s1/materials")
    assert response.status_code == 401 and "Bearer <token>" in response.json()["detail"]


def test_a_read_token_reads_its_sites_only(api: Api) -> None:
    client = api.client(api.token(Role.READ, ["s1"]))
    assert client.get("/api/v1/sites/s1/materials").status_code == 200
    assert client.get("/api/v1/sites/s1/alerts").status_code == 200
    other = client.get("/api/v1/sites/s2/materials")
    assert other.status_code == 403
    assert "may not read site 's2'" in other.json()["detail"]
    # The listing shows the sites it may read, not the other members'.
    assert [s["id"] for s in client.get("/api/v1/sites").json()] == ["s1"]
    write = client.post("/api/v1/sites/s1/waste-entries", json=WASTE)
    assert write.status_code == 403 and "read only" in write.json()["detail"]
    assert client.get("/metrics").status_code == 403


def test_a_token_on_several_sites_reads_each(api: Api) -> None:
    client = api.client(api.token(Role.READ, ["s1", "s2"]))
    assert [s["id"] for s in client.get("/api/v1/sites").json()] == ["s1", "s2"]
    for site in ("s1", "s2"):
        assert client.get(f"/api/v1/sites/{site}/materials").status_code == 200


def test_a_write_token_enters_records_on_its_sites(api: Api) -> None:
    client = api.client(api.token(Role.WRITE, ["s1"]))
    created = client.post("/api/v1/sites/s1/waste-entries", json=WASTE)
    assert created.status_code == 201, created.text
    listed = client.get("/api/v1/sites/s1/waste-entries", params={"start": "2026-10-01"})
    assert [e["id"] for e in listed.json()] == [created.json()[0]["id"]]
    # Past the access check: no such alert.
    assert client.post("/api/v1/sites/s1/alerts/s1:x/acknowledge").status_code == 404
    refused = client.post("/api/v1/sites/s2/waste-entries", json=WASTE)
    assert refused.status_code == 403 and "not for this site" in refused.json()["detail"]
    assert client.get("/api/v1/sites/s2/waste-entries").status_code == 403
    evaluate = client.post("/api/v1/sites/s1/alerts/evaluate")
    assert evaluate.status_code == 403 and "admin only" in evaluate.json()["detail"]
    assert api.store.count("s2") == 0


def test_an_admin_token_does_everything(api: Api) -> None:
    client = api.client(api.token(Role.ADMIN))
    assert [s["id"] for s in client.get("/api/v1/sites").json()] == ["s1", "s2"]
    assert client.post("/api/v1/sites/s2/waste-entries", json=WASTE).status_code == 201
    assert client.post("/api/v1/sites/s1/alerts/evaluate").status_code == 200
    assert client.get("/metrics").status_code == 200
    read_all = api.client(api.token(Role.READ, None))
    assert read_all.get("/metrics").status_code == 200


def test_public_mode_reads_without_a_token_but_never_writes(tmp_path: Path) -> None:
    api = Api(tmp_path, api_public_read=True)
    with TestClient(api.app):
        anonymous = api.client()
        assert anonymous.get("/api/v1/sites/s2/materials").status_code == 200
        assert [s["id"] for s in anonymous.get("/api/v1/sites").json()] == ["s1", "s2"]
        write = anonymous.post("/api/v1/sites/s1/waste-entries", json=WASTE)
        assert write.status_code == 401 and "read only" in write.json()["detail"]
        # A token given is still checked: a wrong one is not silently anonymous.
        assert api.client("mvt_nope").get("/api/v1/sites").status_code == 401
    api.close()


def test_public_mode_is_off_by_default() -> None:
    assert Settings(config="/dev/null").api_public_read is False


def test_writes_are_rate_limited_per_token(tmp_path: Path) -> None:
    # Two writes at once, then one an hour: the third write of the test is refused.
    api = Api(tmp_path, api_write_burst=2, api_write_per_minute=1 / 60)
    with TestClient(api.app):
        first = api.client(api.token(Role.WRITE, ["s1"]))
        for _ in range(2):
            assert first.post("/api/v1/sites/s1/waste-entries", json=WASTE).status_code == 201
        refused = first.post("/api/v1/sites/s1/waste-entries", json=WASTE)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) > 60
        assert "too many writes" in refused.json()["detail"]
        # Reads have their own (higher) limit, and the limit is the token's, not everyone's.
        assert first.get("/api/v1/sites/s1/waste-entries").status_code == 200
        second = api.client(api.token(Role.WRITE, ["s1"]))
        assert second.post("/api/v1/sites/s1/waste-entries", json=WASTE).status_code == 201
        assert len(api.app.state.ledger.waste_entries("s1")) == 3
    api.close()


def test_reads_are_rate_limited_per_token(tmp_path: Path) -> None:
    # Three reads at once, then one an hour: the fourth read of a token is refused, with
    # a Retry-After; another token, and /health, are not held back.
    api = Api(tmp_path, api_read_burst=3, api_read_per_minute=1 / 60)
    with TestClient(api.app):
        first = api.client(api.token(Role.READ, ["s1"]))
        for _ in range(3):
            assert first.get("/api/v1/sites/s1").status_code == 200
        refused = first.get("/api/v1/sites/s1/balance")
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) > 60
        assert "too many reads" in refused.json()["detail"]
        second = api.client(api.token(Role.READ, ["s1"]))
        assert second.get("/api/v1/sites/s1").status_code == 200
        assert first.get("/health").status_code in (200, 503)  # never 429
    api.close()


def test_the_read_limit_has_a_documented_default() -> None:
    settings = Settings(config="/dev/null")
    assert (settings.api_read_burst, settings.api_read_per_minute) == (60, 600)


def test_the_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(burst=2, per_minute=6, clock_s=lambda: now[0])  # one per 10 s
    assert limiter.acquire("a") == 0 and limiter.acquire("a") == 0
    assert limiter.acquire("a") == pytest.approx(10.0)
    now[0] = 5.0
    assert limiter.acquire("a") == pytest.approx(5.0)
    now[0] = 10.0
    assert limiter.acquire("a") == 0
    assert limiter.acquire("b") == 0  # another key, its own bucket
    now[0] = 1000.0
    assert [limiter.acquire("a") for _ in range(3)][:2] == [0, 0]  # capped at the burst


def test_the_token_file_keeps_hashes_only(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.db")
    info, token = store.create("coop member A", Role.WRITE, ["s1", "s2"])
    store.close()
    assert re.fullmatch(r"mvt_[A-Za-z0-9_-]{43}", token)
    assert (tmp_path / "tokens.db").stat().st_mode & 0o077 == 0
    with sqlite3.connect(tmp_path / "tokens.db") as db:
        rows = db.execute("SELECT * FROM tokens").fetchall()
    dumped = repr(rows)
    assert token not in dumped and token[4:] not in dumped
    assert token_hash(token) in dumped and info.id in dumped


@pytest.mark.parametrize(
    ("role", "sites", "message"),
    [
        (Role.ADMIN, ["s1"], "admin token covers every site"),
        (Role.READ, [], "needs at least one site"),
    ],
)
def test_token_scopes_are_checked(
    tmp_path: Path, role: Role, sites: list[str], message: str
) -> None:
    store = TokenStore(tmp_path / "tokens.db")
    with pytest.raises(ValueError, match=message):
        store.create("x", role, sites)
    with pytest.raises(ValueError, match="token name"):
        store.create("x\n", Role.READ, None)
    store.close()


def test_the_environment_read_token_reads_every_site_and_must_be_strong(tmp_path: Path) -> None:
    strong = "f" * 40
    api = Api(tmp_path, api_read_token=strong)
    with TestClient(api.app):
        client = api.client(strong)
        assert client.get("/api/v1/sites/s2/materials").status_code == 200
        assert client.post("/api/v1/sites/s1/waste-entries", json=WASTE).status_code == 403
    api.close()
    for weak in ("short", "change-me-api-read-token-and-more-characters"):
        with pytest.raises(ValueError, match="MICROVILLE_API_READ_TOKEN"):
            Api(tmp_path, api_read_token=weak)


def test_the_default_settings_require_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Production defaults: no public mode, a token file, and so 401 without a token."""
    monkeypatch.setenv("MICROVILLE_API_TOKENS_PATH", str(tmp_path / "empty.db"))
    config = tmp_path / "sites.toml"
    config.write_text(CONFIG)
    app = create_app(Settings(config=str(config), store_url=f"sqlite:///{tmp_path}/r.db"))
    with TestClient(app) as client:
        client.headers.pop("Authorization")
        assert client.get("/api/v1/sites").status_code == 401
        assert isinstance(app.state.auth, Authenticator)


def test_access_policy_defaults_close_new_routes() -> None:
    """A route nobody classified: GET reads its site, anything else writes it, and a
    write outside a site is an admin's."""
    assert required_access("GET", "/api/v1/sites/{site}/new", True) is Access.READ
    assert required_access("PUT", "/api/v1/sites/{site}/new", True) is Access.WRITE
    assert required_access("POST", "/api/v1/new", False) is Access.ADMIN
    assert required_access("GET", "/health", False) is Access.PUBLIC
    assert required_access("POST", "/health", False) is Access.ADMIN


# --- the command --------------------------------------------------------------------------


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "microville", "token", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_token_command_creates_lists_and_revokes(tmp_path: Path) -> None:
    config = tmp_path / "sites.toml"
    config.write_text(CONFIG)
    tokens = tmp_path / "tokens.db"
    common = ("--tokens", str(tokens), "-c", str(config))
    created = _run("create", "--role", "read", "--site", "s1", "--name", "coop A", *common)
    assert created.returncode == 0, created.stdout + created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"mvt_\S{43}", token)
    store = TokenStore(tokens)
    info = store.lookup(token)
    assert info is not None and info.sites == frozenset({"s1"}) and info.role is Role.READ
    listed = _run("list", *common)
    assert listed.returncode == 0 and info.id in listed.stdout
    assert "coop A" in listed.stdout and token not in listed.stdout
    assert _run("revoke", info.id, *common).returncode == 0
    assert store.lookup(token) is None
    assert "revoked" in _run("list", *common).stdout
    assert _run("revoke", info.id, *common).returncode == 1  # already
    store.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--role", "read", "--site", "nowhere"), "unknown site nowhere"),
        (("--role", "read"), "needs --site"),
        (("--role", "root", "--all-sites"), "read, write or admin"),
    ],
)
def test_token_command_refuses_bad_requests(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    config = tmp_path / "sites.toml"
    config.write_text(CONFIG)
    tokens = tmp_path / "tokens.db"
    result = _run("create", "--name", "x", *args, "--tokens", str(tokens), "-c", str(config))
    assert result.returncode == 2
    assert message in result.stdout
    if tokens.exists():
        store = TokenStore(tokens)
        assert store.tokens() == []
        store.close()


def test_grafana_sends_the_read_token_the_service_accepts() -> None:
    """The provisioned Infinity datasource authenticates with the variable that compose
    gives the service as its environment read token."""
    import yaml

    root = Path(__file__).resolve().parents[3]
    infinity = yaml.safe_load(
        (root / "dashboards/provisioning/datasources/infinity.yaml").read_text("utf-8")
    )
    (source,) = infinity["datasources"]
    assert source["jsonData"]["auth_method"] == "bearerToken"
    variable = source["secureJsonData"]["bearerToken"]
    assert re.fullmatch(r"\$\{?([A-Z_]+)\}?", variable)
    name = variable.strip("${}")
    services = yaml.safe_load((root / "docker-compose.yml").read_text("utf-8"))["services"]
    assert services["grafana"]["environment"][name].startswith(f"${{{name}:?")
    assert (
        services["service"]["environment"]["MICROVILLE_API_READ_TOKEN"]
        == (services["grafana"]["environment"][name])
    )
