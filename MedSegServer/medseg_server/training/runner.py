"""Runs one background job at a time per kind in a child process and keeps its history.

Task records have MONAI Label's shape: ``id``, ``status`` (SUBMITTED, RUNNING, DONE, ERROR,
STOPPED), ``request``, ``start_ts``, ``end_ts``, ``details`` (last log lines), plus ``progress``
and ``result``. A child that crashes or is killed only turns its record to ERROR.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes
from .jobs import BackgroundJob, JobContext

STOP_GRACE_S = 5.0


class AlreadyRunning(RuntimeError):
    """A job of this kind is running already (HTTP 429, as MONAI Label answers)."""


def _child_main(job: BackgroundJob, workdir: str, request: dict[str, Any]) -> None:
    ctx = JobContext(Path(workdir), request)
    try:
        result = job.run(ctx)
        atomic_write_bytes(Path(workdir) / "result.json", json.dumps(result, default=float).encode())
    except BaseException as exc:  # the child reports every failure through its files
        ctx.log("".join(traceback.format_exception(exc)).rstrip())
        atomic_write_bytes(Path(workdir) / "error.txt", f"{type(exc).__name__}: {exc}".encode())
        raise SystemExit(1) from None


def _ts(t: float | None) -> str | None:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else None


class TaskRunner:
    """One kind of background work ("train" or "scoring")."""

    def __init__(self, kind: str, state_dir: Path) -> None:
        self.kind = kind
        self.dir = Path(state_dir) / kind
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._proc: mp.process.BaseProcess | None = None
        self._current: dict[str, Any] | None = None
        self._history: list[dict[str, Any]] = self._load_history()
        self._mp = mp.get_context("spawn")

    # ---------------------------------------------------------------- history
    def _history_file(self) -> Path:
        return self.dir / "history.json"

    def _load_history(self) -> list[dict[str, Any]]:
        try:
            records = json.loads(self._history_file().read_text())
        except (FileNotFoundError, ValueError):
            return []
        for rec in records:  # a server restart interrupted whatever was running
            if rec.get("status") in ("SUBMITTED", "RUNNING"):
                rec["status"] = "ERROR"
                rec["error"] = "interrupted by a server restart"
        return records

    def _save_history(self) -> None:
        atomic_write_bytes(self._history_file(), json.dumps(self._history, indent=1, default=float).encode())

    # ------------------------------------------------------------------ start
    def start(self, job: BackgroundJob, request: dict[str, Any]) -> dict[str, Any]:
        """Start ``job`` in a child process; raises :class:`AlreadyRunning` if one is running."""
        with self._lock:
            if self.running():
                raise AlreadyRunning(f"a {self.kind} task is already running")
            task_id = uuid.uuid4().hex
            workdir = self.dir / task_id
            workdir.mkdir(parents=True)
            record: dict[str, Any] = {
                "id": task_id,
                "name": job.name,
                "status": "RUNNING",
                "request": request,
                "start_ts": _ts(time.time()),
                "workdir": str(workdir),
            }
            proc = self._mp.Process(
                target=_child_main, args=(job, str(workdir), request), name=f"medseg-{self.kind}", daemon=True
            )
            try:
                proc.start()
            except Exception as exc:  # e.g. a job that cannot be sent to the child
                record["status"] = "ERROR"
                record["error"] = f"could not start: {exc}"
                record["end_ts"] = record["start_ts"]
                self._history.append(record)
                self._save_history()
                raise
            self._proc, self._current = proc, record
            self._history.append(record)
            self._save_history()
        threading.Thread(target=self._watch, args=(proc, job, record), daemon=True).start()
        return self._view(record)

    def _watch(self, proc: mp.process.BaseProcess, job: BackgroundJob, record: dict[str, Any]) -> None:
        proc.join()
        workdir = Path(record["workdir"])
        with self._lock:
            if record["status"] == "RUNNING":
                result_file = workdir / "result.json"
                if proc.exitcode == 0 and result_file.exists():
                    record["result"] = json.loads(result_file.read_text())
                    try:
                        job.finish(record["result"])
                        record["status"] = "DONE"
                    except Exception as exc:  # publishing failed: keep the old model
                        record["status"] = "ERROR"
                        record["error"] = f"finishing failed: {exc}"
                else:
                    err = workdir / "error.txt"
                    record["status"] = "ERROR"
                    record["error"] = err.read_text() if err.exists() else f"process exited with code {proc.exitcode}"
            record["end_ts"] = _ts(time.time())
            if self._current is record:
                self._proc, self._current = None, None
            self._save_history()

    # ----------------------------------------------------------------- status
    def running(self) -> bool:
        """True while a child process is alive."""
        return self._proc is not None and self._proc.is_alive()

    def _view(self, record: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in record.items() if k != "workdir"}
        workdir = Path(record["workdir"])
        try:
            out["progress"] = json.loads((workdir / "progress.json").read_text())
        except (FileNotFoundError, ValueError):
            out["progress"] = {}
        log = workdir / "log.txt"
        if log.exists():
            out["details"] = log.read_text(errors="replace").splitlines()[-20:]
        return out

    def status(self, all_tasks: bool = False) -> dict[str, Any] | list[dict[str, Any]] | None:
        """Latest task record, or every record with ``all_tasks``; ``None`` when there is none."""
        with self._lock:
            if all_tasks:
                return [self._view(r) for r in self._history]
            return self._view(self._history[-1]) if self._history else None

    def current(self) -> dict[str, Any] | None:
        """The running task record, if any."""
        with self._lock:
            return self._view(self._current) if self._current and self.running() else None

    def stop(self) -> dict[str, Any] | None:
        """Stop the running task (politely, then by force); returns its record or ``None``."""
        with self._lock:
            proc, record = self._proc, self._current
            if proc is None or record is None or not proc.is_alive():
                return None
            (Path(record["workdir"]) / "stop").touch()
            record["status"] = "STOPPED"
        proc.join(STOP_GRACE_S)
        if proc.is_alive():
            proc.terminate()
            proc.join(STOP_GRACE_S)
        if proc.is_alive():
            proc.kill()
            proc.join()
        with self._lock:
            record["end_ts"] = _ts(time.time())
            self._save_history()
            return self._view(record)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the running task ends; True when nothing is running afterwards."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.running():
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        time.sleep(0.05)
        for _ in range(100):  # let the watcher thread finish its bookkeeping
            with self._lock:
                if self._current is None:
                    return True
            time.sleep(0.02)
        return not self.running()

    def shutdown(self) -> None:
        """Stop anything running (server shutdown)."""
        self.stop()
