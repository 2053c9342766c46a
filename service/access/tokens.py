"""API tokens: roles, site scopes, and their SQLite file, where only hashes are kept.

A token is ``mvt_`` + 43 URL-safe characters (256 random bits), shown once when created.
The file keeps its SHA-256: a fast hash is enough for a secret of that entropy (nobody
can enumerate 2^256 candidates), whereas a slow password hash (scrypt, PBKDF2) is meant
for guessable passwords and would add tens of milliseconds to every request. Lookup is by
hash, so the token itself is never compared nor stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

TOKEN_PREFIX = "mvt_"
_ID = re.compile(r"^[0-9a-f]{8}$")
_NAME = re.compile(r"^[\w .@:-]{1,64}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id         TEXT PRIMARY KEY,            -- public handle, shown by `token list`
    name       TEXT NOT NULL,               -- who or what holds it
    role       TEXT NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    sites      TEXT,                        -- JSON list of site ids; NULL: every site
    sha256     TEXT NOT NULL UNIQUE,        -- hex digest of the token
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
"""


class Role(StrEnum):
    """``read``: GET on its sites; ``write``: also the manual entries (materials, waste
    entries, alert acknowledgement) on its sites; ``admin``: everything."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """Who a request acts as. ``sites`` None: every site."""

    name: str
    role: Role
    sites: frozenset[str] | None
    #: The rate limiter's key; None for the anonymous reader of public mode.
    token_id: str | None = None

    def can_read(self, site: str) -> bool:
        return self.role is Role.ADMIN or self.sites is None or site in self.sites

    def can_write(self, site: str) -> bool:
        return self.role is Role.ADMIN or (self.role is Role.WRITE and self.can_read(site))

    @property
    def reads_every_site(self) -> bool:
        return self.role is Role.ADMIN or self.sites is None


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    role: Role
    sites: frozenset[str] | None
    created_at: datetime
    revoked_at: datetime | None

    def principal(self) -> Principal:
        return Principal(self.name, self.role, self.sites, self.id)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _row(row: tuple[str, str, str, str | None, str, str | None]) -> TokenInfo:
    id_, name, role, sites, created, revoked = row
    return TokenInfo(
        id=id_,
        name=name,
        role=Role(role),
        sites=None if sites is None else frozenset(json.loads(sites)),
        created_at=datetime.fromisoformat(created),
        revoked_at=None if revoked is None else datetime.fromisoformat(revoked),
    )


class TokenStore:
    """The token file. The service reads it on every request, so ``microville token
    create/revoke`` take effect at once, without a restart."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        if new:
            # Hashes are no secret, but who holds which role is nobody else's business.
            os.chmod(self.path, 0o600)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def create(
        self, name: str, role: Role, sites: Iterable[str] | None = None
    ) -> tuple[TokenInfo, str]:
        """A new token for ``role`` on ``sites`` (None: every site): its record and the
        token itself, which is not kept and cannot be shown again."""
        if not _NAME.fullmatch(name):
            raise ValueError(
                f"token name {name!r}: 1 to 64 letters, digits, spaces or '_.@:-' only"
            )
        site_set = None if sites is None else frozenset(sites)
        if role is Role.ADMIN and site_set is not None:
            raise ValueError("an admin token covers every site: give no site")
        if site_set is not None and not site_set:
            raise ValueError(f"a {role} token needs at least one site (or every site)")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        info = TokenInfo(
            id=secrets.token_hex(4),
            name=name,
            role=role,
            sites=site_set,
            created_at=datetime.now(UTC).replace(microsecond=0),
            revoked_at=None,
        )
        sites_json = None if site_set is None else json.dumps(sorted(site_set))
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO tokens (id, name, role, sites, sha256, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    info.id,
                    name,
                    role.value,
                    sites_json,
                    token_hash(token),
                    info.created_at.isoformat(),
                ),
            )
        return info, token

    def lookup(self, token: str) -> TokenInfo | None:
        """The live (not revoked) token of that value, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, name, role, sites, created_at, revoked_at FROM tokens"
                " WHERE sha256 = ? AND revoked_at IS NULL",
                (token_hash(token),),
            ).fetchone()
        return None if row is None else _row(row)

    def tokens(self) -> list[TokenInfo]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, name, role, sites, created_at, revoked_at FROM tokens"
                " ORDER BY created_at, id"
            ).fetchall()
        return [_row(r) for r in rows]

    def revoke(self, token_id: str) -> bool:
        """Revoke by id; False if no live token has that id. The record stays (audit)."""
        if not _ID.fullmatch(token_id):
            raise ValueError(f"token id {token_id!r}: 8 hexadecimal digits (see `token list`)")
        with self._lock, self._db:
            cur = self._db.execute(
                "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (datetime.now(UTC).replace(microsecond=0).isoformat(), token_id),
            )
        return cur.rowcount > 0

    def close(self) -> None:
        with self._lock:
            self._db.close()
