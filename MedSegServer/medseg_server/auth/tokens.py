"""Users and their bearer tokens, kept in SQLite in the state folder with only a hash of each token.

Tokens are 256-bit random strings (``msk_...``), so a plain SHA-256 is enough to make a stolen
database useless for logging in (no dictionary to try), and a lookup stays a single index probe.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..datastore.ids import validate_id
from .roles import Role

TOKEN_PREFIX = "msk_"
SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user name and their role."""

    name: str
    role: Role


def token_hash(token: str) -> str:
    """Hex SHA-256 of a token (what is stored)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class UserStore:
    """The users of one server (``<state>/auth.sqlite``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as db:
            db.executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn

    def add(self, name: str, role: Role | str, replace: bool = False) -> str:
        """Create a user (or give an existing one a new token when ``replace``); returns the token.

        The token is shown once: only its hash is kept.
        """
        name = validate_id(name, "user name")
        role = role if isinstance(role, Role) else Role.parse(role)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        try:
            with self._conn() as db:
                db.execute(
                    f"{verb} INTO users (name, role, token_sha256, created_at) VALUES (?, ?, ?, ?)",
                    (name, role.name, token_hash(token), time.time()),
                )
        except sqlite3.IntegrityError:
            raise ValueError(f"user {name!r} exists already (use --replace to issue a new token)") from None
        return token

    def remove(self, name: str) -> bool:
        """Delete a user (their token stops working at once); False when there was none."""
        with self._conn() as db:
            return db.execute("DELETE FROM users WHERE name=?", (name,)).rowcount > 0

    def list(self) -> list[dict[str, object]]:
        """Users with their role and creation time (never the token)."""
        rows = self._conn().execute("SELECT name, role, created_at FROM users ORDER BY name").fetchall()
        return [{"name": n, "role": r, "created_at": c} for n, r, c in rows]

    def authenticate(self, token: str) -> Principal | None:
        """The user holding ``token``, or None."""
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 256:
            return None
        digest = token_hash(token)
        row = self._conn().execute("SELECT name, role, token_sha256 FROM users WHERE token_sha256=?", (digest,)).fetchone()
        if row is None or not hmac.compare_digest(row[2], digest):
            return None
        return Principal(row[0], Role.parse(row[1]))
