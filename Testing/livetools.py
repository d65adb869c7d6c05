"""A real MedSeg server on 127.0.0.1 for tests (uvicorn in a background thread)."""

from __future__ import annotations

import socket
import threading
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A real uvicorn server in a background thread."""

    def __init__(self, settings) -> None:
        import uvicorn

        from medseg_server.app import create_app
        from medseg_server.cli_serve import uvicorn_options

        self.app = create_app(settings)
        self.ctx = self.app.state.ctx
        self.port = settings.port
        self.url = f"http://127.0.0.1:{self.port}"
        options = uvicorn_options(settings) | {"host": "127.0.0.1"}
        config = uvicorn.Config(self.app, log_level="warning", **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def wait_task(url: str, path: str, timeout: float = 240) -> dict:
    """Poll a MONAI Label task status (``/train/``, ``/scoring/``) until it is neither RUNNING nor SUBMITTED."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = requests.get(f"{url}{path}", timeout=30).json()
        if task.get("status") not in ("RUNNING", "SUBMITTED"):
            return task
        time.sleep(0.3)
    raise AssertionError(f"task {path} still running after {timeout} s")
