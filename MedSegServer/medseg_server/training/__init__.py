"""Background jobs (training, scoring) in child processes that can never take the API down."""

from .jobs import BackgroundJob, JobContext
from .runner import AlreadyRunning, TaskRunner

__all__ = ["AlreadyRunning", "BackgroundJob", "JobContext", "TaskRunner"]
