"""Background jobs used by tests (module level, so a spawned child process can import them)."""

from __future__ import annotations

import os
import signal
import time

from medseg_server.training.jobs import BackgroundJob, JobContext


class Sleeper(BackgroundJob):
    """Reports one epoch, then sleeps: a job that is reliably 'running'."""

    name = "sleeper"

    def run(self, ctx: JobContext) -> dict:
        ctx.report(epoch=1, total_epochs=100)
        time.sleep(60)
        return {}


class SelfKiller(BackgroundJob):
    """Dies by SIGKILL in the middle of its work, as an out-of-memory kill would."""

    name = "selfkiller"

    def run(self, ctx: JobContext) -> dict:
        ctx.report(epoch=1, total_epochs=2)
        os.kill(os.getpid(), signal.SIGKILL)
        return {}
