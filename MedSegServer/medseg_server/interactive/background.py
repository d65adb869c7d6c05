"""Work a session starts when it opens and runs once in a daemon thread (model prior, warm-up)."""

from __future__ import annotations

import threading
import time


class BackgroundWork:
    """Runs :meth:`work` once in a daemon thread; ``ready``/``wait``, then ``seconds`` and ``error``.

    Subclasses set their own attributes first, then call ``super().__init__(name)`` (which starts
    the thread). An exception in ``work`` is kept in ``error``: background work never breaks a session.
    """

    def __init__(self, name: str) -> None:
        self.seconds: float | None = None  # how long the work took, once done
        self.error: str | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def work(self) -> None:
        """The work itself (in the thread)."""
        raise NotImplementedError

    def _run(self) -> None:
        t0 = time.perf_counter()
        try:
            self.work()
        except Exception as exc:  # noqa: BLE001 - reported through ``error``
            self.error = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            self.seconds = time.perf_counter() - t0
            self._done.set()

    def ready(self) -> bool:
        """True once the work finished (or failed, or was stopped)."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the work is done (or ``timeout`` seconds); True when it is."""
        return self._done.wait(timeout)
