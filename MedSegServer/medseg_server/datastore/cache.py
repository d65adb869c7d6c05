"""A bounded on-disk cache of DICOM series fetched from a PACS.

One folder per series (``<series uid>/<sop uid>.dcm`` plus a ``.fingerprint`` file naming the
PACS content it was made from). A series is written into a temporary folder and renamed into
place, so a reader never sees half a series. Least recently used series are evicted once the
cache is over its byte budget; a series whose fingerprint no longer matches the PACS is refetched.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import pydicom

FINGERPRINT = ".fingerprint"
TMP = ".tmp-"


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())


class SeriesCache:
    """Series folders below ``root``, at most ``max_bytes`` in total (the newest one always kept)."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        for stale in self.root.glob(f"{TMP}*"):  # left by a crash while fetching
            shutil.rmtree(stale, ignore_errors=True)

    def folder(self, series_uid: str) -> Path:
        """Where the series lives (whether or not it is cached)."""
        return self.root / series_uid

    def lock(self, series_uid: str) -> threading.Lock:
        """One lock per series, so two requests never fetch the same series at once."""
        with self._guard:
            return self._locks.setdefault(series_uid, threading.Lock())

    def fingerprint(self, series_uid: str) -> str | None:
        """Fingerprint of the cached copy, ``None`` when not cached."""
        marker = self.folder(series_uid) / FINGERPRINT
        try:
            return marker.read_text()
        except FileNotFoundError:
            return None

    def get(self, series_uid: str, fingerprint: str | None) -> Path | None:
        """The cached folder when present and (if ``fingerprint`` is given) current; marks it used."""
        have = self.fingerprint(series_uid)
        if have is None or (fingerprint is not None and have != fingerprint):
            return None
        marker = self.folder(series_uid) / FINGERPRINT
        os.utime(marker)
        return marker.parent

    def put(self, series_uid: str, fingerprint: str, datasets: Iterable[pydicom.Dataset]) -> Path:
        """Write a series atomically (replacing an outdated copy), then evict to the budget."""
        tmp = self.root / f"{TMP}{series_uid}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            for ds in datasets:
                ds.save_as(tmp / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
            (tmp / FINGERPRINT).write_text(fingerprint)
            final = self.folder(series_uid)
            if final.exists():
                old = self.root / f"{TMP}old-{uuid.uuid4().hex[:8]}"
                final.rename(old)
                shutil.rmtree(old, ignore_errors=True)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.evict(keep=series_uid)
        return final

    def invalidate(self, series_uid: str) -> None:
        """Drop the cached copy of a series."""
        shutil.rmtree(self.folder(series_uid), ignore_errors=True)

    def entries(self) -> list[tuple[float, int, str]]:
        """``(last used, bytes, series uid)`` of every cached series, least recently used first."""
        out = []
        for folder in self.root.iterdir():
            marker = folder / FINGERPRINT
            if folder.name.startswith(TMP) or not marker.exists():
                continue
            out.append((marker.stat().st_mtime, _size(folder), folder.name))
        return sorted(out)

    def total_bytes(self) -> int:
        """Bytes held by the cache."""
        return sum(size for _, size, _ in self.entries())

    def evict(self, keep: str | None = None, on_evict: Callable[[str], None] | None = None) -> list[str]:
        """Remove least recently used series until the cache fits its budget; returns their UIDs."""
        entries = self.entries()
        total = sum(size for _, size, _ in entries)
        evicted = []
        for _, size, uid in entries:
            if total <= self.max_bytes:
                break
            if uid == keep:
                continue
            with self.lock(uid):
                self.invalidate(uid)
            total -= size
            evicted.append(uid)
            if on_evict is not None:
                on_evict(uid)
        return evicted
