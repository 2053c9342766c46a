"""Request bodies over real HTTP (uvicorn in a thread, httpx): the caller is checked
before its body is read, bodies stop at the limit, error bodies and records a request
adds are bounded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from helpers.services import free_port
from helpers.support import GRID_AND_PV_METERS, SITE_S1, wait_until

from domain.site import read_sites
from microville.settings import Settings
from service.access.tokens import Role, TokenStore
from service.app import create_app
from stores import open_store

MAX_BODY = 512 * 1024
MAX_ROWS = 100
MATERIALS = "/api/v1/sites/s1/materials"
HEADER = (
    "name,category,quantity,unit,factor_kgco2e_per_unit,new_factor_kgco2e_per_unit,"
    "reused,biogenic_kgco2e_per_unit,source\n"
)
GOOD_ROW = "straw bales,envelope,12,t,30,,no,1200,FDES\n"
BAD_ROW = "door,joinery,-1,unit,0,,yes,0,x\n"


class Served:
    """The app under uvicorn on a free port, its token file and its ledger."""

    def __init__(self, tmp_path: Path) -> None:
        config = tmp_path / "sites.toml"
        config.write_text(SITE_S1 + GRID_AND_PV_METERS)
        settings = Settings(
            config=str(config),
            api_tokens_path=str(tmp_path / "tokens.db"),
            ledger_path=str(tmp_path / "ledger.db"),
            api_max_body_bytes=MAX_BODY,
            api_max_rows=MAX_ROWS,
        )
        self.store = open_store(f"sqlite:///{tmp_path}/readings.db")
        self.app = create_app(settings, store=self.store, sites=read_sites(config))
        self.tokens = TokenStore(tmp_path / "tokens.db")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="uvicorn")
        self.thread.start()
        assert wait_until(lambda: self.server.started)

    def writer(self) -> dict[str, str]:
        _, token = self.tokens.create("writer", Role.WRITE, ["s1"])
        return {"Authorization": f"Bearer {token}"}

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join()
        self.tokens.close()
        self.store.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    s = Served(tmp_path)
    yield s
    s.stop()


class Endless:
    """A body of ``total`` bytes sent 64 KiB at a time, counting what was taken."""

    def __init__(self, total: int, chunk: bytes = b"[" + b"0," * 32767 + b"0") -> None:
        self.total = total
        self.chunk = chunk
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        while self.sent < self.total:
            self.sent += len(self.chunk)
            yield self.chunk


def _post(url: str, body: Endless, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url, content=body, headers=headers, timeout=60)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_an_anonymous_huge_body_is_refused_unread(served: Served, declared: bool) -> None:
    body = Endless(1024**3)  # 1 GiB: read, it would take the server's memory and minutes
    headers = {"content-type": "application/json"}
    if declared:
        headers["content-length"] = str(body.total)
    resp = _post(served.url + MATERIALS, body, headers)
    assert resp.status_code == 401
    assert "bearer token is required" in resp.json()["detail"]
    assert body.sent < 64 * 1024**2  # what the sockets buffered, not the gigabyte


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_an_oversized_body_with_a_valid_token_is_a_413_naming_the_limit(
    served: Served, declared: bool
) -> None:
    body = Endless(1024**3)
    headers = {**served.writer(), "content-type": "application/json"}
    if declared:
        headers["content-length"] = str(body.total)
    resp = _post(served.url + MATERIALS, body, headers)
    assert resp.status_code == 413
    assert f"limit of {MAX_BODY} bytes" in resp.json()["detail"]
    assert "MICROVILLE_API_MAX_BODY_BYTES" in resp.json()["detail"]
    assert body.sent < 64 * 1024**2
    assert httpx.get(served.url + MATERIALS, headers=served.writer()).json() == []


def test_a_csv_of_10000_bad_rows_lists_the_first_problems_and_counts_the_rest(
    served: Served,
) -> None:
    csv = HEADER + BAD_ROW * 10_000
    assert len(csv) < MAX_BODY
    resp = httpx.post(
        served.url + MATERIALS + "/csv",
        content=csv,
        headers={**served.writer(), "content-type": "text/csv"},
    )
    assert resp.status_code == 422
    detail = resp.json()["detail"]
    assert "line 2: quantity" in detail and "line 21: quantity" in detail
    assert "line 22:" not in detail
    assert "… and 9980 more problem(s) (10000 in all)" in detail
    assert len(resp.content) < 4096


def test_a_json_body_of_10000_bad_items_lists_the_first_errors_and_counts_the_rest(
    served: Served,
) -> None:
    resp = httpx.post(
        served.url + "/api/v1/sites/s1/waste-entries",
        json=[{"stream": "landfill"}] * 5_000,
        headers=served.writer(),
    )
    assert resp.status_code == 422
    body = resp.json()
    assert len(body["detail"]) == 20
    assert body["more_errors"] == 10_000 - 20  # two missing fields an item
    assert len(resp.content) < 16 * 1024


def test_a_request_adds_at_most_the_row_limit(served: Served) -> None:
    url, writer = served.url + MATERIALS, served.writer()
    csv = {**writer, "content-type": "text/csv"}
    too_many = httpx.post(url + "/csv", content=HEADER + GOOD_ROW * (MAX_ROWS + 1), headers=csv)
    assert too_many.status_code == 413
    assert (
        f"{MAX_ROWS + 1} records in one request exceed the limit of {MAX_ROWS}"
        in (too_many.json()["detail"])
    )
    assert httpx.get(url, headers=writer).json() == []
    ok = httpx.post(url + "/csv", content=HEADER + GOOD_ROW * MAX_ROWS, headers=csv)
    assert ok.status_code == 201 and len(ok.json()) == MAX_ROWS
