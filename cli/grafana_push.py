"""Push the project's Grafana dashboards (``dashboards/json/*.json``) to a running
Grafana through its HTTP API, for a Grafana that does not mount the provisioning files.

The dashboards are not package data: they are read from a directory, by default
``dashboards/json`` relative to the current directory (a checkout); pass another one
when running from an installed package.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaException

#: Where the dashboards are by default: relative to the current directory.
DEFAULT_DASHBOARDS_DIR = Path("dashboards") / "json"
#: The folder the provisioning file provider uses (dashboards/provisioning/dashboards).
DEFAULT_FOLDER = "Microville"


class GrafanaPushError(RuntimeError):
    """Reading a dashboard or talking to Grafana failed; the message names what."""


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"HTTP {status}: {message}" if status and str(status) not in message else message


def load_dashboards(dashboards_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every ``*.json`` dashboard of ``dashboards_dir``, by file name, ``id`` removed."""
    if not dashboards_dir.is_dir():
        raise GrafanaPushError(f"no dashboards directory {dashboards_dir}")
    files = sorted(dashboards_dir.glob("*.json"))
    if not files:
        raise GrafanaPushError(f"no *.json dashboard in {dashboards_dir}")
    dashboards = []
    for file in files:
        try:
            dashboard = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise GrafanaPushError(f"dashboard {file.name}: cannot read it: {exc}") from exc
        if not isinstance(dashboard, dict) or not dashboard.get("uid"):
            raise GrafanaPushError(f"dashboard {file.name}: not a dashboard with a fixed uid")
        dashboard.pop("id", None)  # Grafana's own database key: never pushed
        dashboards.append((file, dashboard))
    return dashboards


def _folder_uid(grafana: GrafanaApi, title: str) -> str:
    """The uid of the folder titled ``title``, created if there is none."""
    try:
        found = grafana.search.search_dashboards(query=title, type_="dash-folder")
        for hit in found or []:
            if hit.get("title") == title and hit.get("uid"):
                return str(hit["uid"])
        created = grafana.folder.create_folder(title)
    except GrafanaException as exc:
        raise GrafanaPushError(f"folder {title!r}: {_describe(exc)}") from exc
    except OSError as exc:  # connection refused, DNS, TLS
        raise GrafanaPushError(f"cannot reach Grafana at {grafana.url}: {exc}") from exc
    return str(created["uid"])


def push_dashboards(
    url: str,
    token: str,
    folder: str = DEFAULT_FOLDER,
    dashboards_dir: Path = DEFAULT_DASHBOARDS_DIR,
    timeout_s: float = 10.0,
) -> list[str]:
    """Create or overwrite every dashboard of ``dashboards_dir`` in Grafana's ``folder``.

    Idempotent: the folder is looked up by title and only created when missing; each
    dashboard is posted with ``overwrite`` so that its uid keeps a single copy.

    Parameters
    ----------
    url : str
        Grafana's base URL, e.g. ``https://grafana.example`` (a sub-path is kept).
    token : str
        A service-account token (sent as ``Authorization: Bearer``) with the right to
        create folders and dashboards.
    folder : str
        Title of the folder the dashboards go to.
    dashboards_dir : Path
        Directory of the dashboard JSON files.

    Returns
    -------
    list of str
        The uids pushed, in file-name order.

    Raises
    ------
    GrafanaPushError
        A file cannot be read, or Grafana refused a request; the message names the
        folder or the dashboard (file and uid).
    """
    dashboards = load_dashboards(dashboards_dir)
    grafana = GrafanaApi.from_url(url.rstrip("/"), credential=token, timeout=timeout_s)
    folder_uid = _folder_uid(grafana, folder)
    pushed: list[str] = []
    for file, dashboard in dashboards:
        uid = str(dashboard["uid"])
        payload = {
            "dashboard": dashboard,
            "folderUid": folder_uid,
            "overwrite": True,
            "message": f"microville dashboards push ({file.name})",
        }
        try:
            grafana.dashboard.update_dashboard(payload)
        except (GrafanaException, OSError) as exc:
            raise GrafanaPushError(
                f"dashboard {uid!r} ({file.name}) refused: {_describe(exc)}"
            ) from exc
        pushed.append(uid)
    return pushed
