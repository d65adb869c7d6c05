"""Uploaded-image sessions (``PUT /session/``) with an expiry, as MONAI Label offers them."""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes


class SessionGone(LookupError):
    """Unknown or expired session (HTTP 404 for MONAI Label clients)."""


@dataclass
class SessionInfo:
    """Where a session's image lives and when it expires."""

    name: str
    path: str
    image: str
    meta: dict[str, Any]
    create_ts: float
    last_access_ts: float
    expiry: float

    def expired(self, now: float) -> bool:
        """True once the session has been idle longer than its expiry."""
        return now > self.last_access_ts + self.expiry

    @property
    def image_path(self) -> Path:
        """The session's image file."""
        return Path(self.image)


class SessionStore:
    """Sessions in ``state/sessions/<id>/`` with a JSON record each."""

    def __init__(self, folder: Path, default_expiry: float) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.default_expiry = default_expiry
        self._lock = threading.Lock()

    def _record(self, session_id: str) -> Path:
        try:
            uuid.UUID(session_id)
        except (ValueError, TypeError, AttributeError):
            raise SessionGone(f"Session ({session_id}) Not Found") from None
        return self.folder / session_id / "session.json"

    def create(self, image_name: str, image_bytes_writer, meta: dict | None = None, expiry: float = 0) -> SessionInfo:
        """Create a session; ``image_bytes_writer(path)`` writes the image file."""
        session_id = str(uuid.uuid4())
        folder = self.folder / session_id
        folder.mkdir(parents=True)
        image_path = folder / image_name
        image_bytes_writer(image_path)
        now = time.time()
        info = SessionInfo(session_id, str(folder), str(image_path), meta or {}, now, now, expiry or self.default_expiry)
        self._save(info)
        return info

    def _save(self, info: SessionInfo) -> None:
        atomic_write_bytes(Path(info.path) / "session.json", json.dumps(asdict(info)).encode())

    def get(self, session_id: str, touch: bool = True) -> SessionInfo:
        """The live session, its access time renewed; raises :class:`SessionGone`."""
        with self._lock:
            record = self._record(session_id)
            try:
                info = SessionInfo(**json.loads(record.read_text()))
            except (FileNotFoundError, ValueError, TypeError):
                raise SessionGone(f"Session ({session_id}) Not Found") from None
            now = time.time()
            if info.expired(now) or not Path(info.image).exists():
                shutil.rmtree(record.parent, ignore_errors=True)
                raise SessionGone(f"Session ({session_id}) Not Found")
            if touch:
                info.last_access_ts = now
                self._save(info)
            return info

    def remove(self, session_id: str) -> SessionInfo:
        """Delete a session; raises :class:`SessionGone` when unknown."""
        info = self.get(session_id, touch=False)
        shutil.rmtree(info.path, ignore_errors=True)
        return info

    def purge_expired(self) -> int:
        """Delete expired sessions; returns how many."""
        removed = 0
        for record in self.folder.glob("*/session.json"):
            try:
                self.get(record.parent.name, touch=False)
            except SessionGone:
                removed += 1
        return removed
