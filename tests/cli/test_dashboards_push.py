"""`microville dashboards push` against a loopback imitation of Grafana's HTTP API: just
the folder search, folder creation and dashboard import it uses, recording every
request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from helpers.services import ROOT, free_port

from cli.grafana_push import GrafanaPushError, push_dashboards

DASHBOARDS = ROOT / "dashboards" / "json"
TOKEN = "glsa_test-token_0123456789"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeGrafana:
    """Grafana's /api/search, /api/folders and /api/dashboards/db, in memory; answers
    403 to dashboards whose uid is in ``refuse``."""

    port: int
    refuse: set[str] = field(default_factory=set)
    requests: list[Request] = field(default_factory=list)
    folders: list[dict[str, Any]] = field(default_factory=list)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def calls(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if (r.method, r.path) == (method, path)]

    def handle(self, request: Request) -> tuple[int, Any]:
        if (request.method, request.path) == ("GET", "/api/search"):
            query = request.query.get("query", [""])[0].lower()
            kind = request.query.get("type", [""])[0]
            hits = [
                {"id": f["id"], "uid": f["uid"], "title": f["title"], "type": "dash-folder"}
                for f in self.folders
                if kind in ("", "dash-folder") and query in f["title"].lower()
            ]
            return 200, hits
        if (request.method, request.path) == ("POST", "/api/folders"):
            folder = {
                "id": len(self.folders) + 1,
                "uid": f"folder{len(self.folders) + 1}",
                "title": request.body["title"],
            }
            self.folders.append(folder)
            return 200, folder
        if (request.method, request.path) == ("POST", "/api/dashboards/db"):
            dashboard = request.body["dashboard"]
            uid = dashboard["uid"]
            if uid in self.refuse:
                return 403, {"message": "Access denied to save dashboard"}
            if uid in self.dashboards and not request.body.get("overwrite"):
                return 412, {"status": "version-mismatch", "message": "exists"}
            self.dashboards[uid] = request.body
            return 200, {"id": 7, "uid": uid, "status": "success", "version": 1}
        return 404, {"message": "Not found"}

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                request = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    dict(self.headers),
                    json.loads(raw) if raw else None,
                )
                with fake._lock:
                    fake.requests.append(request)
                    status, answer = fake.handle(request)
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        serve = partial(self._server.serve_forever, poll_interval=0.05)
        threading.Thread(target=serve, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    fake = FakeGrafana(free_port())
    fake.start()
    yield fake
    fake.stop()


def provisioned() -> dict[str, dict[str, Any]]:
    """The dashboard files by uid, as pushed: without Grafana's ``id``."""
    files = {}
    for file in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(file.read_text(encoding="utf-8"))
        dashboard.pop("id", None)
        files[dashboard["uid"]] = dashboard
    return files


def test_push_creates_the_folder_once_and_overwrites_every_dashboard(
    grafana: FakeGrafana,
) -> None:
    expected = provisioned()
    assert expected, "no dashboard to push"

    first = push_dashboards(grafana.url, TOKEN, "Microville", DASHBOARDS)
    assert sorted(first) == sorted(expected)
    assert len(grafana.calls("POST", "/api/folders")) == 1
    assert [f["title"] for f in grafana.folders] == ["Microville"]
    assert len(grafana.calls("POST", "/api/dashboards/db")) == len(expected)

    second = push_dashboards(grafana.url, TOKEN, "Microville", DASHBOARDS)
    assert second == first
    assert len(grafana.calls("POST", "/api/folders")) == 1  # found, not created again
    posts = grafana.calls("POST", "/api/dashboards/db")
    assert len(posts) == 2 * len(expected)

    folder_uid = grafana.folders[0]["uid"]
    for post in posts:
        assert post.body["overwrite"] is True
        assert post.body["folderUid"] == folder_uid
        assert post.body["dashboard"] == expected[post.body["dashboard"]["uid"]]
        assert "id" not in post.body["dashboard"]
    assert [p.body["dashboard"]["uid"] for p in posts[len(expected) :]] == first
    searches = grafana.calls("GET", "/api/search")
    assert len(searches) == 2
    assert all(s.query["type"] == ["dash-folder"] for s in searches)
    for request in grafana.requests:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_an_existing_folder_with_a_similar_title_is_not_taken(grafana: FakeGrafana) -> None:
    grafana.folders.append({"id": 1, "uid": "other", "title": "Microville archive"})
    push_dashboards(grafana.url, TOKEN, "Microville", DASHBOARDS)
    assert [f["title"] for f in grafana.folders] == ["Microville archive", "Microville"]
    posts = grafana.calls("POST", "/api/dashboards/db")
    assert {p.body["folderUid"] for p in posts} == {grafana.folders[1]["uid"]}


def test_a_refused_dashboard_is_named_in_the_error(grafana: FakeGrafana) -> None:
    uid = next(iter(provisioned()))
    grafana.refuse.add(uid)
    with pytest.raises(GrafanaPushError) as caught:
        push_dashboards(grafana.url, TOKEN, "Microville", DASHBOARDS)
    message = str(caught.value)
    assert repr(uid) in message
    assert "403" in message
    assert "Access denied" in message


def test_a_directory_without_dashboards_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GrafanaPushError, match=r"no \*\.json dashboard"):
        push_dashboards("http://127.0.0.1:9", TOKEN, "Microville", tmp_path)


def _cli(*args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MICROVILLE_GRAFANA_TOKEN"}
    if token is not None:
        env["MICROVILLE_GRAFANA_TOKEN"] = token
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "dashboards", "push", *args],
        cwd=ROOT,  # the default --dir is dashboards/json of the current directory
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_pushes_with_the_token_from_the_environment(grafana: FakeGrafana) -> None:
    for _ in range(2):
        done = _cli("--url", grafana.url)
        assert done.returncode == 0, done.stderr + done.stdout
        assert sorted(done.stdout.split()) == sorted(provisioned())
    assert len(grafana.calls("POST", "/api/folders")) == 1
    assert len(grafana.calls("POST", "/api/dashboards/db")) == 2 * len(provisioned())
    for request in grafana.requests:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_cli_failure_exits_2_with_a_clear_message(grafana: FakeGrafana) -> None:
    uid = next(iter(provisioned()))
    grafana.refuse.add(uid)
    done = _cli("--url", grafana.url, "--folder", "Energy", "--token", "other", token=None)
    assert done.returncode == 2
    assert "push failed" in done.stdout
    assert f"dashboard {uid!r}" in done.stdout
    assert [f["title"] for f in grafana.folders] == ["Energy"]
    assert grafana.requests[-1].headers["Authorization"] == "Bearer other"
