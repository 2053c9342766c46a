"""Request bodies: the caller checked before a byte of the body is read, and the body
bounded while it is read.

FastAPI reads and parses a route's body before it solves the route's dependencies, so
the app-wide :func:`~service.access.auth.authorize` alone would check an anonymous
caller only after parsing whatever it sent. :class:`AuthorizedRoute` (every router's
route class) authorizes first (401/403/429, the body unread); :class:`BodyGuardMiddleware`
then stops the body at the limit (413) however it is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.access.auth import authorize_call, bearer_of

__all__ = ["AuthorizedRoute", "BodyGuardMiddleware", "BodyTooLarge", "too_many_rows"]

#: Sent with a refusal made before the body is read: the server then closes the
#: connection rather than receive (and discard) the rest of a body of any size.
CLOSE = {"Connection": "close"}

#: Methods that carry no body: the route's own dependencies check them.
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})


class BodyTooLarge(HTTPException):
    """413: an HTTPException, so that FastAPI's body reader passes it through."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        size = f"{declared} bytes" if declared is not None else f"more than {limit} bytes"
        super().__init__(
            413,
            f"request body of {size} exceeds the limit of {limit} bytes"
            " (MICROVILLE_API_MAX_BODY_BYTES)",
            headers=CLOSE,
        )


def too_many_rows(count: int, limit: int) -> HTTPException:
    """413 for a request adding more records than one request may."""
    return HTTPException(
        413,
        f"{count} records in one request exceed the limit of {limit}"
        " (MICROVILLE_API_MAX_ROWS): send them in several requests",
    )


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class AuthorizedRoute(APIRoute):
    """A route that authorizes a call with a body before FastAPI reads the body (it reads
    it before solving the route's dependencies, the app-wide ``authorize`` included)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def authorized_first(request: Request) -> Response:
            if request.method not in _BODILESS:
                try:
                    request.state.principal = authorize_call(request, bearer_of(request))
                except HTTPException as exc:
                    # Answered as any HTTPException, the body unread; and the connection
                    # closed, or the server would drain the rest of the body to reuse it.
                    exc.headers = {**(exc.headers or {}), **CLOSE}
                    raise
            return await handler(request)

        return authorized_first


class BodyGuardMiddleware:
    """Pure ASGI: the body handed to the app stops at ``max_body_bytes`` (413 naming the
    limit): a declared ``Content-Length`` over it at the first read, before any byte is
    received, and a body without one (chunked) as soon as its count passes the limit.
    The check is made on reading, so a caller refused first (401) is refused unread."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in _BODILESS:
            await self.app(scope, receive, send)
            return
        await self.app(scope, self._bounded(receive, _declared_length(scope)), send)

    def _bounded(self, receive: Receive, declared: int | None) -> Receive:
        received = 0
        limit = self.max_body_bytes

        async def bounded() -> Message:
            nonlocal received
            if declared is not None and declared > limit:
                raise BodyTooLarge(limit, declared)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        return bounded
