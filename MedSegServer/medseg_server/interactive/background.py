"""Work a session starts when it opens and runs once in a daemon thread (model prior, warm-up)."""

from __future__ import annotations

import atexit
import threading
import time
import weakref

EXIT_JOIN_SECONDS = 30.0  # how long interpreter exit waits for running work to stop

_live: weakref.WeakSet[BackgroundWork] = weakref.WeakSet()


class BackgroundWork:
    """Runs :meth:`work` once in a daemon thread; ``ready``/``wait``, then ``seconds`` and ``error``.

    Subclasses set their own attributes first, then call ``super().__init__(name)`` (which starts
    the thread). An exception in ``work`` is kept in ``error``: background work never breaks a session.
    """

    def __init__(self, name: str) -> None:
        self.seconds: float | None = None  # how long the work took, once done
        self.error: str | None = None
        self._done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        _live.add(self)
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

    def stop(self) -> None:
        """Ask the work to stop early (it checks ``self._stop`` where it can)."""
        self._stop.set()

    def ready(self) -> bool:
        """True once the work finished (or failed, or was stopped)."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the work is done (or ``timeout`` seconds); True when it is."""
        return self._done.wait(timeout)


@atexit.register
def _stop_all_at_exit() -> None:
    """Stop and join running work before the interpreter finalises.

    A daemon thread still inside native code (ITK, torch) when Python tears down aborts the process
    ("FATAL: exception not rethrown"); atexit runs before that, so the threads end cleanly here.
    """
    running = [w for w in list(_live) if not w.ready()]
    for w in running:
        w.stop()
    deadline = time.monotonic() + EXIT_JOIN_SECONDS
    for w in running:
        w.wait(max(0.0, deadline - time.monotonic()))
