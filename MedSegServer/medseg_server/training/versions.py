"""Every trained model is a version; one version is published; rollback to any of them.

Layout under ``state/models/<model>/``::

    versions/v0001/{model.pt, config.json, model_card.json, version.json}
    published.json      {"version": 1, "ts": ...}   (0 = the starter weights shipped with MedSeg)

``version.json`` holds the facts of a version: time, source (training, upload), data used (image
ids and label files), validation Dice on the held-out split, the Dice of the model it was compared
with, and whether it was published and why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes

STARTER = 0
_VERSION_DIR = re.compile(r"^v(\d{4,})$")


class UnknownVersion(LookupError):
    """No such version (HTTP 404)."""


def should_publish(candidate_dice: float | None, current_dice: float | None, tolerance: float = 0.0) -> tuple[bool, str]:
    """The publishing rule: a new version replaces the current one only if it is not worse on validation."""
    if candidate_dice is None or candidate_dice != candidate_dice:  # None or NaN
        return False, "no validation Dice for the new model"
    if current_dice is None or current_dice != current_dice:
        return True, "no validated model to compare with"
    if candidate_dice + tolerance >= current_dice:
        return True, f"validation Dice {candidate_dice:.4f} >= current {current_dice:.4f} - {tolerance:g}"
    return False, f"validation Dice {candidate_dice:.4f} < current {current_dice:.4f} - {tolerance:g}"


class VersionStore:
    """The versions of one model on disk (thread-safe within a process, atomic on disk)."""

    def __init__(self, root: Path, starter: Path | None = None) -> None:
        self.root = Path(root)
        self.starter = starter
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- reading
    def _dir(self) -> Path:
        return self.root / "versions"

    def folder(self, version: int) -> Path:
        """The bundle folder of ``version`` (0 = starter); raises :class:`UnknownVersion`."""
        if version == STARTER and self.starter is not None and self.starter.exists():
            return self.starter
        path = self._dir() / f"v{int(version):04d}"
        if version <= 0 or not (path / "version.json").exists():
            raise UnknownVersion(f"version {version} does not exist")
        return path

    def numbers(self) -> list[int]:
        """Existing version numbers (not counting the starter), ascending."""
        if not self._dir().exists():
            return []
        found = [int(m.group(1)) for p in self._dir().iterdir() if (m := _VERSION_DIR.match(p.name))]
        return sorted(n for n in found if (self._dir() / f"v{n:04d}" / "version.json").exists())

    def meta(self, version: int) -> dict[str, Any]:
        """The ``version.json`` of ``version`` (a synthesised record for the starter)."""
        if version == STARTER:
            card = {}
            if self.starter is not None and (self.starter / "model_card.json").exists():
                card = json.loads((self.starter / "model_card.json").read_text())
            return {"version": 0, "source": "starter", "validation_dice": None, "card": card}
        return json.loads((self.folder(version) / "version.json").read_text())

    def published(self) -> int | None:
        """The published version number; the starter (0) when none was published, None without a starter."""
        try:
            return int(json.loads((self.root / "published.json").read_text())["version"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return STARTER if self.starter is not None and self.starter.exists() else None

    def published_folder(self) -> Path | None:
        """The bundle folder of the published version (None when there is nothing to load)."""
        version = self.published()
        if version is None:
            return None
        try:
            return self.folder(version)
        except UnknownVersion:
            return None

    def list(self) -> list[dict[str, Any]]:
        """Every version's record (starter first), each with ``published`` true for the current one."""
        current = self.published()
        versions = ([STARTER] if self.starter is not None and self.starter.exists() else []) + self.numbers()
        return [{**self.meta(v), "published": v == current} for v in versions]

    # ---------------------------------------------------------------- writing
    def add(self, bundle_folder: Path, meta: dict[str, Any]) -> int:
        """Copy a bundle folder in as the next version with ``meta``; returns its number."""
        with self._lock:
            self._dir().mkdir(parents=True, exist_ok=True)
            number = (self.numbers() or [0])[-1] + 1
            tmp = self._dir() / f".tmp-v{number:04d}-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(bundle_folder, tmp)
            record = {**meta, "version": number, "created": meta.get("created") or time.strftime("%Y-%m-%dT%H:%M:%S")}
            atomic_write_bytes(tmp / "version.json", json.dumps(record, indent=1, default=float).encode())
            os.replace(tmp, self._dir() / f"v{number:04d}")
            return number

    def update(self, version: int, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into a version's record."""
        with self._lock:
            record = {**self.meta(version), **fields}
            atomic_write_bytes(self.folder(version) / "version.json", json.dumps(record, indent=1, default=float).encode())
            return record

    def publish(self, version: int, reason: str = "") -> None:
        """Make ``version`` the served one (also how rollback works)."""
        self.folder(version)  # raises UnknownVersion
        doc = {"version": int(version), "ts": time.time(), "reason": reason}
        atomic_write_bytes(self.root / "published.json", json.dumps(doc).encode())
