"""Image leases: one annotator at a time per image, with expiry, renewal and reviewer override.

An image handed out by active learning, or opened for editing, is leased to that user until
``expires_at``; each renewal (or label submission) extends it. While a lease is live nobody else is
given the image, and a label submission needs the lease, unless a reviewer overrides it (which is
recorded). Leases live in ``<state>/leases.sqlite``; an expired lease is the same as none.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import Conflict, NotFound
from .ids import validate_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    image_id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    acquired_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    renewals INTEGER NOT NULL DEFAULT 0,
    overridden_by TEXT
);
CREATE TABLE IF NOT EXISTS lease_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id TEXT NOT NULL,
    user TEXT NOT NULL,
    event TEXT NOT NULL,
    detail TEXT,
    at REAL NOT NULL
);
"""


class LeaseHeld(Conflict):
    """The image is leased to someone else (409)."""


class LeaseRequired(Conflict):
    """A submission without the image's lease (409)."""


@dataclass(frozen=True)
class Lease:
    """A live lease."""

    image_id: str
    user: str
    acquired_at: float
    expires_at: float
    renewals: int
    overridden_by: str | None

    def as_json(self) -> dict[str, Any]:
        """JSON-friendly, with the seconds left."""
        return {**asdict(self), "expires_in_s": round(max(0.0, self.expires_at - time.time()), 1)}


def safe_user(name: str | None) -> str:
    """A user name usable inside a label tag (``alice``, ``dr_o_brien``); ``anonymous`` when empty."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name or "")).strip("._-")[:64]
    return cleaned.replace("..", "_") or "anonymous"


def per_user_tag(tag: str, user: str) -> str:
    """The tag that keeps one user's annotations of an image beside the others' (``final.alice``)."""
    return validate_id(f"{tag}.{safe_user(user)}"[:128], "label tag")


class LeaseStore:
    """Leases of one server, shared by all its worker threads."""

    def __init__(self, path: Path, ttl_s: float = 900.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.ttl_s = float(ttl_s)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def _live(self, image_id: str, now: float) -> Lease | None:
        row = self._db.execute("SELECT * FROM leases WHERE image_id=?", (image_id,)).fetchone()
        if row is None or row["expires_at"] <= now:
            return None
        return Lease(**dict(row))

    def _event(self, image_id: str, user: str, event: str, detail: str | None, now: float) -> None:
        self._db.execute(
            "INSERT INTO lease_events (image_id, user, event, detail, at) VALUES (?, ?, ?, ?, ?)",
            (image_id, user, event, detail, now),
        )

    def _write(self, image_id: str, user: str, now: float, ttl: float, renewals: int, acquired: float,
               overridden_by: str | None) -> Lease:
        self._db.execute(
            "INSERT OR REPLACE INTO leases (image_id, user, acquired_at, expires_at, renewals, overridden_by) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (image_id, user, acquired, now + ttl, renewals, overridden_by),
        )
        return Lease(image_id, user, acquired, now + ttl, renewals, overridden_by)

    def holder(self, image_id: str) -> Lease | None:
        """The live lease of an image, or None."""
        with self._lock:
            return self._live(validate_id(image_id), time.time())

    def acquire(self, image_id: str, user: str, ttl_s: float | None = None) -> Lease:
        """Lease the image to ``user`` (renewing their own lease); LeaseHeld when someone else has it."""
        image_id, ttl = validate_id(image_id), float(ttl_s or self.ttl_s)
        with self._lock:
            now = time.time()
            current = self._live(image_id, now)
            if current is not None and current.user != user:
                raise LeaseHeld(
                    f"image {image_id!r} is leased to {current.user!r} for another "
                    f"{current.expires_at - now:.0f} s; a reviewer can override"
                )
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if current is None:
                    lease = self._write(image_id, user, now, ttl, 0, now, None)
                    self._event(image_id, user, "acquire", None, now)
                else:
                    lease = self._write(image_id, user, now, ttl, current.renewals + 1, current.acquired_at,
                                        current.overridden_by)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return lease

    def renew(self, image_id: str, user: str, ttl_s: float | None = None) -> Lease:
        """Extend ``user``'s live lease; NotFound when they hold none (it expired or was taken)."""
        current = self.holder(image_id)
        if current is None or current.user != user:
            raise NotFound(f"{user!r} holds no lease on image {image_id!r}; acquire it again")
        return self.acquire(image_id, user, ttl_s)

    def release(self, image_id: str, user: str, force: bool = False) -> bool:
        """End ``user``'s lease (any lease with ``force``); False when there was none to end."""
        image_id = validate_id(image_id)
        with self._lock:
            now = time.time()
            current = self._live(image_id, now)
            if current is None:
                return False
            if current.user != user and not force:
                raise LeaseHeld(f"image {image_id!r} is leased to {current.user!r}, not to {user!r}")
            self._db.execute("DELETE FROM leases WHERE image_id=?", (image_id,))
            self._event(image_id, user, "release", None if current.user == user else f"from {current.user}", now)
            return True

    def override(self, image_id: str, reviewer: str, to_user: str | None = None, ttl_s: float | None = None) -> Lease:
        """A reviewer takes the lease (or hands it to ``to_user``), whoever held it."""
        image_id, to_user = validate_id(image_id), to_user or reviewer
        with self._lock:
            now = time.time()
            current = self._live(image_id, now)
            lease = self._write(image_id, to_user, now, float(ttl_s or self.ttl_s), 0, now, reviewer)
            self._event(image_id, reviewer, "override", f"from {current.user if current else None} to {to_user}", now)
            return lease

    def check_submission(self, image_id: str, user: str) -> Lease:
        """The submitter's live lease (renewed); LeaseRequired / LeaseHeld otherwise."""
        current = self.holder(image_id)
        if current is None:
            raise LeaseRequired(
                f"submitting a label for {image_id!r} needs its lease: POST /lease/{image_id} first"
            )
        if current.user != user:
            raise LeaseHeld(
                f"image {image_id!r} is leased to {current.user!r}; a reviewer may submit with override=true"
            )
        return self.acquire(image_id, user)

    def leased_by_others(self, user: str) -> set[str]:
        """Images with a live lease held by someone other than ``user``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT image_id FROM leases WHERE expires_at > ? AND user != ?", (time.time(), user)
            ).fetchall()
        return {r["image_id"] for r in rows}

    def active(self) -> list[Lease]:
        """Every live lease."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM leases WHERE expires_at > ? ORDER BY image_id", (time.time(),)
            ).fetchall()
        return [Lease(**dict(r)) for r in rows]

    def events(self, image_id: str) -> list[dict[str, Any]]:
        """Who acquired, released or overrode the image's lease, and when."""
        rows = self._db.execute(
            "SELECT user, event, detail, at FROM lease_events WHERE image_id=? ORDER BY seq", (image_id,)
        ).fetchall()
        return [dict(r) for r in rows]
