"""The API docs (Swagger UI at /docs, ReDoc at /redoc) work on a LAN without Internet:
their pages name only assets the service itself serves, open to anyone like the pages,
and /metrics counts those asset requests under their route, not as "unmatched"."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers.support import GRID_AND_PV_METERS, SITE_S1
from prometheus_client.parser import text_string_to_metric_families

from microville.settings import Settings
from service.app import create_app
from stores import open_store

#: Attribute or Swagger UI option naming a URL the browser loads.
_URL = re.compile(r"""(?:\b(?:src|href|spec-url)=|\burl:\s*)["']([^"']+)["']""")
#: The smallest credible Swagger UI / ReDoc bundle or stylesheet (the real ones are
#: hundreds of kB; an error page or a stub is a few hundred bytes).
MIN_ASSET_BYTES = 50_000
CONTENT_TYPES = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",)}


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[TestClient]:
    """The real app; the client sends the tests' admin token (conftest)."""
    config = tmp_path / "sites.toml"
    config.write_text(SITE_S1 + GRID_AND_PV_METERS)
    store = open_store(f"sqlite:///{tmp_path}/readings.db")
    with TestClient(create_app(Settings(config=str(config)), store=store)) as client:
        yield client
    store.close()


def _anonymous(app_client: TestClient) -> TestClient:
    """A browser with no token, as one opening the docs page is."""
    client = TestClient(app_client.app)
    client.headers.pop("Authorization", None)
    return client


def _page_urls(client: TestClient, path: str) -> list[str]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    # Nothing from outside: no CDN, no web font, no favicon of fastapi.tiangolo.com.
    assert "cdn.jsdelivr.net" not in html
    assert not re.search(r"https?://", html), html
    assert "//" not in "".join(_URL.findall(html))  # no protocol-relative host either
    urls = _URL.findall(html)
    assert urls, html
    assert all(u.startswith("/") for u in urls), urls
    return urls


def _assets(urls: list[str]) -> list[str]:
    return [u for u in urls if u.endswith((".js", ".css"))]


def _check_asset(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    assert len(response.content) >= MIN_ASSET_BYTES, (url, len(response.content))
    suffix = url[url.rindex(".") :]
    assert response.headers["content-type"].startswith(CONTENT_TYPES[suffix]), (
        url,
        response.headers["content-type"],
    )


def test_swagger_ui_loads_only_local_assets_without_a_token(app_client: TestClient) -> None:
    browser = _anonymous(app_client)
    urls = _page_urls(browser, "/docs")
    assets = _assets(urls)
    assert any(u.endswith(".js") for u in assets) and any(u.endswith(".css") for u in assets)
    for url in assets:
        _check_asset(browser, url)
    assert "/openapi.json" in urls
    favicons = [u for u in urls if u.endswith(".png")]
    assert favicons
    for url in favicons:
        icon = browser.get(url)
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/png"
    redirect = browser.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200 and "oauth2" in redirect.text
    assert not re.search(r"https?://", redirect.text)


def test_redoc_loads_only_local_assets_without_a_token(app_client: TestClient) -> None:
    browser = _anonymous(app_client)
    urls = _page_urls(browser, "/redoc")
    assert "/openapi.json" in urls
    scripts = _assets(urls)
    assert scripts
    for url in scripts:
        _check_asset(browser, url)


def test_the_schema_stays_public_and_the_data_does_not(app_client: TestClient) -> None:
    browser = _anonymous(app_client)
    schema = browser.get("/openapi.json")
    assert schema.status_code == 200
    assert "/api/v1/sites/{site}/balance" in schema.json()["paths"]
    # The docs' routes are no operations of the API.
    assert not any(p.startswith(("/docs", "/redoc")) for p in schema.json()["paths"])
    assert browser.get("/api/v1/sites").status_code == 401
    assert browser.get("/docs-assets/../auth.py").status_code == 404


def _requests_by_route(client: TestClient) -> dict[tuple[str, str], float]:
    response = client.get("/metrics")  # the admin token
    assert response.status_code == 200, response.text
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            if s.name == "microville_http_requests_total" and s.labels["method"] == "GET":
                key = (s.labels["route"], s.labels["status"])
                counts[key] = counts.get(key, 0.0) + s.value
    return counts


def test_metrics_count_the_assets_under_their_route(app_client: TestClient) -> None:
    browser = _anonymous(app_client)
    assets = _assets(_page_urls(browser, "/docs")) + _assets(_page_urls(browser, "/redoc"))
    for url in assets:
        assert browser.get(url).status_code == 200
    counts = _requests_by_route(app_client)
    assert counts.get(("/docs", "200")) == 1
    assert counts.get(("/redoc", "200")) == 1
    asset_routes = {route for route, status in counts if status == "200"} - {"/docs", "/redoc"}
    assert asset_routes, counts
    assert "unmatched" not in asset_routes
    assert sum(counts[(r, "200")] for r in asset_routes) == len(assets)
    assert not any(route == "unmatched" for route, _ in counts), counts
