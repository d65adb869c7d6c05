"""Interactive sessions held in memory with leases: renewed on use, gone (HTTP 410) once expired."""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import SimpleITK as sitk

from ..models.base import ModelError
from .session import InteractiveSession, PriorProvider


class SessionExpired(ModelError):
    """The session's lease ran out, it was closed or evicted: HTTP 410."""

    status = 410


class SessionUnknown(ModelError):
    """No session with this id ever existed here: HTTP 404."""

    status = 404


@dataclass
class Lease:
    """A session and its lease."""

    id: str
    session: InteractiveSession
    image_id: str | None
    ttl: float
    created: float = field(default_factory=time.time)
    last_access: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def expired(self, now: float) -> bool:
        """True once idle for longer than the lease."""
        return now > self.last_access + self.ttl

    def as_json(self) -> dict:
        """Public description."""
        s = self.session
        return {
            "session_id": self.id, "image": self.image_id, "size": list(s.size), "spacing": list(s.geometry[1]),
            "ttl": self.ttl, "expires_at": self.last_access + self.ttl, "open_seconds": round(s.open_seconds, 3),
            "targets": {n: {"value": t.value, "interactions": t.interactions, "from_model": t.from_model}
                        for n, t in s.targets.items()},
            "labels": s.target_values, "undo_depth": len(s._undo),
            "prior": s.prior.as_json() if s.prior is not None else None,
        }


class SessionManager:
    """Id -> lease, at most ``max_sessions`` (least recently used evicted first)."""

    def __init__(self, ttl: float = 900.0, max_sessions: int = 4, prior_provider: PriorProvider | None = None) -> None:
        self.ttl = ttl
        self.max_sessions = max_sessions
        self.prior_provider = prior_provider
        self._leases: OrderedDict[str, Lease] = OrderedDict()
        self._gone: dict[str, str] = {}  # id -> why
        self._cache: dict[str, str] = {}  # image key -> session id (stateless infer calls)
        self._lock = threading.Lock()

    def open(self, image: sitk.Image, image_id: str | None = None, ttl: float | None = None,
             labels: dict[str, int] | None = None) -> Lease:
        """Build a session on ``image`` (the slow part, outside the manager lock) and lease it."""
        session = InteractiveSession(image, labels, self.prior_provider)
        lease = Lease(str(uuid.uuid4()), session, image_id, float(ttl or self.ttl))
        with self._lock:
            self._purge_locked(time.time())
            while len(self._leases) >= self.max_sessions:
                old_id, old = self._leases.popitem(last=False)
                old.session.close()
                self._gone[old_id] = "evicted to make room for newer sessions"
            self._leases[lease.id] = lease
        return lease

    def get(self, session_id: str) -> Lease:
        """The live lease, renewed; 410 when it expired or was closed, 404 when unknown."""
        now = time.time()
        with self._lock:
            self._purge_locked(now)
            lease = self._leases.get(session_id)
            if lease is None:
                if session_id in self._gone:
                    raise SessionExpired(f"interactive session {session_id} is gone ({self._gone[session_id]})")
                raise SessionUnknown(f"interactive session {session_id} not found")
            lease.last_access = now
            self._leases.move_to_end(session_id)
            return lease

    def close(self, session_id: str) -> Lease:
        """End a session now."""
        lease = self.get(session_id)
        with self._lock:
            self._leases.pop(session_id, None)
            self._gone[session_id] = "closed"
        lease.session.close()
        return lease

    def cached(self, key: str, load: Callable[[], sitk.Image], image_id: str | None) -> Lease:
        """The session kept for an image between stateless ``/infer`` calls (opened on first use)."""
        with self._lock:
            sid = self._cache.get(key)
        if sid is not None:
            try:
                return self.get(sid)
            except (SessionExpired, SessionUnknown):
                pass
        lease = self.open(load(), image_id)
        with self._lock:
            self._cache[key] = lease.id
        return lease

    def ids(self) -> list[str]:
        """Live session ids."""
        with self._lock:
            self._purge_locked(time.time())
            return list(self._leases)

    def _purge_locked(self, now: float) -> None:
        for sid in [s for s, lease in self._leases.items() if lease.expired(now)]:
            self._leases.pop(sid).session.close()
            self._gone[sid] = "lease expired"
        if len(self._gone) > 10000:
            for sid in list(self._gone)[:5000]:
                del self._gone[sid]
