"""One worker thread for network and heavy work; results handed back to the GUI thread.

The Qt layer calls :meth:`JobRunner.drain` from a ``QTimer`` on the main thread: every callback
(progress, done, error) runs there, so MRML and widgets are only touched on the main thread.
Jobs run one at a time in submission order. Cancelling is cooperative: a job checks
``job.cancelled`` (or calls ``job.check()``), and a job cancelled before it starts never runs.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised inside a job by :meth:`Job.check` once the user cancelled it."""


@dataclass
class Job:
    """A unit of work; ``work(job)`` runs on the worker thread."""

    name: str
    work: Callable[[Job], Any]
    on_done: Callable[[Any], None] | None = None
    on_error: Callable[[BaseException], None] | None = None
    on_progress: Callable[[float, str], None] | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _finished: threading.Event = field(default_factory=threading.Event, repr=False)
    state: str = "queued"  # queued, running, done, error, cancelled

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Ask the job to stop (it stops at its next check; its result is dropped)."""
        self._cancel.set()

    def check(self) -> None:
        """Raise :class:`Cancelled` when the job was cancelled."""
        if self._cancel.is_set():
            raise Cancelled(self.name)

    def progress(self, fraction: float, text: str = "") -> None:
        """Report progress (0..1) from the worker; delivered on the main thread by ``drain``."""
        self._runner._post(self, "progress", (max(0.0, min(1.0, float(fraction))), text))  # type: ignore[attr-defined]

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job finished (worker side); True when it did."""
        return self._finished.wait(timeout)


class JobRunner:
    """A single worker thread and an outbox drained on the main thread."""

    def __init__(self, name: str = "MedSegWorker") -> None:
        self._inbox: queue.Queue[Job | None] = queue.Queue()
        self._outbox: queue.Queue[tuple[Job, str, Any]] = queue.Queue()
        self._current: Job | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ main thread
    def submit(
        self,
        name: str,
        work: Callable[[Job], Any],
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_progress: Callable[[float, str], None] | None = None,
    ) -> Job:
        """Queue ``work``; its callbacks run later, inside :meth:`drain`."""
        job = Job(name, work, on_done, on_error, on_progress)
        job._runner = self  # type: ignore[attr-defined]
        self._inbox.put(job)
        return job

    def drain(self, max_items: int = 100) -> int:
        """Deliver pending callbacks (call from the main thread, e.g. every 100 ms); returns how many."""
        delivered = 0
        while delivered < max_items:
            try:
                job, kind, payload = self._outbox.get_nowait()
            except queue.Empty:
                break
            delivered += 1
            callback = {"progress": job.on_progress, "done": job.on_done, "error": job.on_error}[kind]
            if callback is None:
                if kind == "error":
                    log.error("MedSeg job %s failed: %s", job.name, payload)
                continue
            try:
                callback(*payload) if kind == "progress" else callback(payload)
            except Exception:  # a failing callback must not stop the others
                log.exception("MedSeg: callback of job %s failed", job.name)
        return delivered

    @property
    def busy(self) -> bool:
        """A job is running or queued."""
        with self._lock:
            return self._current is not None or not self._inbox.empty()

    @property
    def current(self) -> Job | None:
        with self._lock:
            return self._current

    def cancel_all(self) -> None:
        """Cancel the running job and everything queued."""
        with self._lock:
            if self._current is not None:
                self._current.cancel()
            for job in list(self._inbox.queue):
                if job is not None:
                    job.cancel()

    def wait_idle(self, timeout: float = 60.0, drain: bool = True) -> bool:
        """Block until nothing runs or waits (tests, scripts); delivers callbacks when ``drain``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if drain:
                self.drain()
            if not self.busy and self._outbox.empty():
                return True
            time.sleep(0.01)
        return False

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel everything and stop the worker."""
        self.cancel_all()
        self._inbox.put(None)
        self._thread.join(timeout)

    # ----------------------------------------------------------------- worker
    def _post(self, job: Job, kind: str, payload: Any) -> None:
        if kind == "progress" and job.cancelled:
            return
        self._outbox.put((job, kind, payload))

    def _loop(self) -> None:
        while True:
            job = self._inbox.get()
            if job is None:
                return
            with self._lock:
                self._current = job
            try:
                if job.cancelled:
                    job.state = "cancelled"
                    continue
                job.state = "running"
                try:
                    result = job.work(job)
                except Cancelled:
                    job.state = "cancelled"
                except BaseException as exc:  # noqa: BLE001 - handed to the GUI
                    job.state = "cancelled" if job.cancelled else "error"
                    if not job.cancelled:
                        self._post(job, "error", exc)
                else:
                    if job.cancelled:
                        job.state = "cancelled"
                    else:
                        job.state = "done"
                        self._post(job, "done", result)
            finally:
                job._finished.set()
                with self._lock:
                    self._current = None
