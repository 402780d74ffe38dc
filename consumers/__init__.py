"""The EC2 consumer: long-poll the jobs queue, run jobs, report results.

Public API: :class:`Worker`, :class:`WorkerSettings`, the runners and :class:`RetryableError`.
Names are imported on first use (PEP 562), so an isolated job's interpreter
(``python -m consumers.isolated``) imports only what it runs, not the worker and boto3.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from consumers.command import CommandRunner
    from consumers.runner import Outcome, PythonRunner, RetryableError, Runner
    from consumers.settings import WorkerSettings
    from consumers.worker import Worker

#: Public name -> the module that defines it.
_HOMES = {
    "CommandRunner": "consumers.command",
    "Outcome": "consumers.runner",
    "PythonRunner": "consumers.runner",
    "RetryableError": "consumers.runner",
    "Runner": "consumers.runner",
    "WorkerSettings": "consumers.settings",
    "Worker": "consumers.worker",
}

__all__ = [
    "CommandRunner",
    "Outcome",
    "PythonRunner",
    "RetryableError",
    "Runner",
    "Worker",
    "WorkerSettings",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'consumers' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
