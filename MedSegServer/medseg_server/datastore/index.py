"""SQLite index of images and label versions (WAL, one short transaction per write)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    checksum TEXT,
    added_at REAL NOT NULL,
    info TEXT NOT NULL DEFAULT '{}',
    deleted_at REAL
);
CREATE TABLE IF NOT EXISTS labels (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    version INTEGER NOT NULL,
    path TEXT NOT NULL,
    checksum TEXT NOT NULL,
    size INTEGER NOT NULL,
    user TEXT NOT NULL,
    created_at REAL NOT NULL,
    info TEXT NOT NULL DEFAULT '{}',
    deleted_at REAL,
    UNIQUE (image_id, tag, version)
);
CREATE INDEX IF NOT EXISTS labels_by_image ON labels (image_id, tag);
"""


class Index:
    """Thin wrapper over one SQLite file; thread-safe, one connection per thread."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._conn().executescript(SCHEMA)  # executescript commits by itself

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An immediate (write-locking) transaction, committed on success, rolled back on error."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        """Run a read-only query."""
        return self._conn().execute(sql, params).fetchall()

    def integrity_ok(self) -> bool:
        """SQLite's own integrity check."""
        return self._conn().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
