"""Who may call what: bearer tokens with roles, the public read mode, the rate limits.

Every route of the app goes through :func:`authorize` (an app-wide dependency), so a new
route is closed until its access is known: GET needs read access to the ``{site}`` of its
path, other methods write access, and the exceptions are the tables below. A route
without ``{site}`` that reads lists only the sites the caller may read (the handler
filters with :data:`PrincipalDep`); one that writes needs an admin.
"""

from __future__ import annotations

import hmac
from enum import Enum
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import SecretStr

from microville.settings import Settings
from service.access.ratelimit import RateLimiter, retry_after_s
from service.access.tokens import Principal, Role, TokenStore, token_hash

#: Shortest token accepted from the environment (``openssl rand -hex 32`` gives 64).
MIN_ENV_TOKEN_CHARS = 32


class Access(Enum):
    PUBLIC = "anyone"
    READ = "read"  # read access to the path's site
    READ_ALL = "read every site"
    WRITE = "write"  # write access to the path's site
    ADMIN = "admin"


#: Routes open to anyone: liveness must be checkable by orchestrators without a secret;
#: the API docs pages and the Swagger UI / ReDoc files they load open in a browser, which
#: sends no token (service/api/docs.py; the schema, FastAPI's own /openapi.json, is public).
PUBLIC_ROUTES = frozenset(
    {
        ("GET", "/health"),
        ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/redoc"),
        ("GET", "/docs-assets/{name}"),
    }
)
#: Routes beyond the write role: evaluation runs every site's rules and sends
#: notifications; metrics carry every site's meters.
ADMIN_ROUTES = frozenset({("POST", "/api/v1/sites/{site}/alerts/evaluate")})
READ_ALL_ROUTES = frozenset({("GET", "/metrics")})

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def required_access(method: str, path: str, site_scoped: bool) -> Access:
    """The access a route needs: ``path`` is its template (``/api/v1/sites/{site}``),
    ``site_scoped`` whether it has a ``{site}`` parameter."""
    method = "GET" if method in _READ_METHODS else method
    key = (method, path)
    if key in PUBLIC_ROUTES:
        return Access.PUBLIC
    if key in ADMIN_ROUTES:
        return Access.ADMIN
    if key in READ_ALL_ROUTES:
        return Access.READ_ALL
    if method == "GET":
        return Access.READ
    return Access.WRITE if site_scoped else Access.ADMIN


#: The settings' defaults (api_read_burst, api_read_per_minute): an interactive user or
#: a dashboard's refresh stays far below; a script looping on a year's balance does not.
DEFAULT_READ_BURST = 60
DEFAULT_READ_PER_MINUTE = 600.0

ANONYMOUS_READER = Principal("anonymous (public read mode)", Role.READ, sites=None)


class Authenticator:
    """Turns a bearer token into a :class:`Principal`: the token file first, then the
    read token given by the environment, if any."""

    def __init__(
        self,
        tokens: TokenStore,
        write_limit: RateLimiter,
        public_read: bool = False,
        env_read_token: SecretStr | None = None,
        read_limit: RateLimiter | None = None,
    ) -> None:
        self.tokens = tokens
        self.write_limit = write_limit
        # Reads are cheaper than writes but a year's balance is not: limited too.
        self.read_limit = read_limit or RateLimiter(DEFAULT_READ_BURST, DEFAULT_READ_PER_MINUTE)
        self.public_read = public_read
        self._env_hash: str | None = None
        if env_read_token is not None:
            value = env_read_token.get_secret_value()
            if len(value) < MIN_ENV_TOKEN_CHARS or value.startswith("change-me"):
                raise ValueError(
                    f"MICROVILLE_API_READ_TOKEN must be at least {MIN_ENV_TOKEN_CHARS}"
                    " random characters, not a placeholder (e.g. `openssl rand -hex 32`)"
                )
            self._env_hash = token_hash(value)

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        return cls(
            TokenStore(settings.api_tokens_path),
            RateLimiter(settings.api_write_burst, settings.api_write_per_minute),
            public_read=settings.api_public_read,
            env_read_token=settings.api_read_token,
            read_limit=RateLimiter(settings.api_read_burst, settings.api_read_per_minute),
        )

    def principal(self, token: str) -> Principal | None:
        info = self.tokens.lookup(token)
        if info is not None:
            return info.principal()
        if self._env_hash is not None and hmac.compare_digest(token_hash(token), self._env_hash):
            return Principal("MICROVILLE_API_READ_TOKEN", Role.READ, sites=None, token_id="env")
        return None

    def close(self) -> None:
        self.tokens.close()


_bearer = HTTPBearer(
    auto_error=False,
    description="A token from `microville token create` (or MICROVILLE_API_READ_TOKEN).",
)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def authorize(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, once allowed to call this route on this site (401, 403 or 429 if not).
    A request with a body was checked before its body was read (service/api/limits.py):
    its principal is reused, and its token charged once. Async, on the event loop (a
    token lookup is an indexed read): a sync dependency would wait for a thread of the
    pool the queries take, /health's included."""
    known = getattr(request.state, "principal", None)
    if isinstance(known, Principal):
        return known
    principal = authorize_call(request, credentials)
    request.state.principal = principal
    return principal


def bearer_of(request: Request) -> HTTPAuthorizationCredentials | None:
    """The ``Authorization: Bearer`` credentials, read as :data:`_bearer` reads them."""
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer" or not token:
        return None
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=token)


def authorize_call(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """:func:`authorize` without the reuse: ``request`` must carry its matched route."""
    auth: Authenticator = request.app.state.auth
    # The matched route's own template: routers carry their prefix (APIRouter(prefix=…)).
    route = request.scope.get("route")
    path = route.path if isinstance(route, APIRoute) else request.url.path
    site = request.path_params.get("site")
    access = required_access(request.method, path, site_scoped=site is not None)
    if access is Access.PUBLIC:
        return ANONYMOUS_READER
    if credentials is not None:
        principal = auth.principal(credentials.credentials)
        if principal is None:
            raise _unauthorized("invalid or revoked token")
    elif auth.public_read:
        principal = ANONYMOUS_READER
    elif request.headers.get("authorization"):
        raise _unauthorized("Authorization must be 'Bearer <token>'")
    else:
        raise _unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    if (
        principal is ANONYMOUS_READER
        and access is not Access.READ
        and access is not Access.READ_ALL
    ):
        raise _unauthorized("public mode is read only: writing needs a bearer token")
    _check(principal, access, site)
    if access in (Access.WRITE, Access.ADMIN):
        _charge(auth.write_limit, "writes", principal, principal.token_id or principal.name)
    else:
        # Anonymous readers (public mode) share no bucket: one per client address.
        client = request.client.host if request.client else "?"
        key = principal.token_id or f"{principal.name} from {client}"
        _charge(auth.read_limit, "reads", principal, key)
    return principal


def _charge(limit: RateLimiter, what: str, principal: Principal, key: str) -> None:
    wait_s = limit.acquire(key)
    if wait_s > 0:
        retry = retry_after_s(wait_s)
        raise HTTPException(
            429,
            f"too many {what} for token {principal.name!r}: retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )


def _check(principal: Principal, access: Access, site: str | None) -> None:
    who = f"token {principal.name!r} ({principal.role})"
    if access is Access.ADMIN and principal.role is not Role.ADMIN:
        raise HTTPException(403, f"{who} may not do this: admin only")
    if access is Access.READ_ALL and not principal.reads_every_site:
        raise HTTPException(403, f"{who} may not read every site")
    if site is None:
        return
    if access is Access.READ and not principal.can_read(site):
        raise HTTPException(403, f"{who} may not read site {site!r}")
    if access is Access.WRITE and not principal.can_write(site):
        what = "read only" if principal.can_read(site) else "not for this site"
        raise HTTPException(403, f"{who} may not write to site {site!r}: {what}")


PrincipalDep = Annotated[Principal, Depends(authorize)]
