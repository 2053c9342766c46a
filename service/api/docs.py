"""The API docs without Internet: Swagger UI at ``/docs`` and ReDoc at ``/redoc``, their
JavaScript and CSS served by the service itself from the ``fastapi-offline`` package
(swagger-ui-dist 5 and ReDoc 2 bundles), not from a CDN a building's LAN cannot reach.

The pages are public, as FastAPI's own were, and so are their assets (service/access/auth.py:
``PUBLIC_ROUTES``): a browser opening the docs sends no token, and the files are a public
package's, with nothing of the sites in them. The assets are one route, not a static
mount, so that they go through the app's ``authorize`` as every route does and /metrics
counts them under their template (a mount leaves them "unmatched"). The schema stays
FastAPI's own ``/openapi.json``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from service.api.limits import AuthorizedRoute

__all__ = [
    "ASSETS_URL",
    "DOCS_URL",
    "OAUTH2_REDIRECT_URL",
    "REDOC_URL",
    "router",
]

DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
REDOC_URL = "/redoc"
#: Where the bundles are served: ``/docs-assets/{name}``, one route label in /metrics.
ASSETS_URL = "/docs-assets"

#: swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png.
ASSETS_DIR = Path(str(files("fastapi_offline") / "static"))
#: Answers for the files of ASSETS_DIR: content types, ETag and 304, no path out of it.
_assets = StaticFiles(directory=ASSETS_DIR)

router = APIRouter(route_class=AuthorizedRoute, include_in_schema=False)


def _root(request: Request) -> str:
    """The prefix a proxy serves the app under (``root_path``), as FastAPI's pages use."""
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get(DOCS_URL, response_class=HTMLResponse)
async def swagger_ui(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}{app.openapi_url}",
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
        init_oauth=app.swagger_ui_init_oauth,
        swagger_ui_parameters=app.swagger_ui_parameters,
    )


@router.get(OAUTH2_REDIRECT_URL, response_class=HTMLResponse)
async def swagger_ui_oauth2_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get(REDOC_URL, response_class=HTMLResponse)
async def redoc(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root = _root(request)
    return get_redoc_html(
        openapi_url=f"{root}{app.openapi_url}",
        title=f"{app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        with_google_fonts=False,  # fonts.googleapis.com is off the LAN too
    )


@router.get(ASSETS_URL + "/{name}")
async def docs_asset(name: str, request: Request) -> Response:
    """A file of the docs' bundles (404 for any other name: ``{name}`` holds no slash)."""
    return await _assets.get_response(name, request.scope)
