"""Errors mapped once for every route: an unanswerable query is a 422, a store down a 503,
and a validation error lists its first problems with JSON-safe echoes."""

from __future__ import annotations

import math

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from domain.materials import MAX_REPORTED_PROBLEMS
from domain.store import StoreError
from service.usecases.kernel import QueryError

#: Validation errors a 422 lists; the rest are counted (``more_errors``).
MAX_REPORTED_ERRORS = MAX_REPORTED_PROBLEMS


def _json_safe(value: object) -> object:
    """``value`` for a JSON response: non-finite floats as the strings JSON lacks."""
    value = jsonable_encoder(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


async def invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own handler, but the echoed inputs made JSON-safe: a body holding JSON's
    Infinity or NaN (Python's parser reads them) is a 422, not a 500. The first problems
    only, then a count: a body of a million bad items must not come back a million errors
    long."""
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    shown = errors[:MAX_REPORTED_ERRORS]
    content: dict[str, object] = {"detail": _json_safe(shown)}
    if len(errors) > len(shown):
        content["more_errors"] = len(errors) - len(shown)
    return JSONResponse(status_code=422, content=content)


async def unanswerable(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": str(exc)})


async def store_down(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=503, content={"detail": f"store unavailable: {exc}"})


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(QueryError, unanswerable)
    app.add_exception_handler(StoreError, store_down)
