"""The EC2 consumer: long-poll the jobs queue, run jobs, report results.

Public API: :class:`Worker`, :class:`WorkerSettings`, the runners and :class:`RetryableError`.
"""

from consumers.runner import CommandRunner, Outcome, PythonRunner, RetryableError, Runner
from consumers.settings import WorkerSettings
from consumers.worker import Worker

__all__ = [
    "CommandRunner",
    "Outcome",
    "PythonRunner",
    "RetryableError",
    "Runner",
    "Worker",
    "WorkerSettings",
]
