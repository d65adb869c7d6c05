"""What a background job is: code run in a child process, reporting progress through files."""

from __future__ import annotations

import json
import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes


@dataclass
class JobContext:
    """Handed to :meth:`BackgroundJob.run` in the child process."""

    workdir: Path
    request: dict[str, Any]

    def report(self, **progress: Any) -> None:
        """Publish progress (epoch, loss, metric, ...) for ``GET /train/``; atomic, so never half-read."""
        progress["updated_ts"] = time.time()
        atomic_write_bytes(self.workdir / "progress.json", json.dumps(progress, default=float).encode())

    def log(self, line: str) -> None:
        """Append a line to the job's log (its last lines are the task's ``details``)."""
        with open(self.workdir / "log.txt", "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
            fh.flush()
            os.fsync(fh.fileno())

    def should_stop(self) -> bool:
        """True once ``DELETE /train/`` asked the job to stop (it is killed soon after anyway)."""
        return (self.workdir / "stop").exists()


class BackgroundJob(ABC):
    """A picklable unit of background work. ``run`` executes in a child process."""

    name: str = "job"
    description: str = ""

    def config(self) -> dict[str, Any]:
        """Default request parameters (shown in ``/info/``)."""
        return {}

    @abstractmethod
    def run(self, ctx: JobContext) -> dict[str, Any]:
        """Do the work in the child process; the returned dict is the task's ``result``."""

    def finish(self, result: dict[str, Any]) -> None:
        """Called in the server process after a successful run (e.g. to load new weights)."""
