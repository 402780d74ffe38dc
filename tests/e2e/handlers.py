"""Python handlers the end-to-end tests run in real worker processes (``--handler``)."""

from __future__ import annotations

import sys
import time
from typing import Any

from bridge.contract import Job


def exit_now(job_input: Any, job: Job) -> Any:
    """A handler that calls sys.exit(): the job must fail, the worker must carry on."""
    sys.exit(3)


def ignore_cancellation(job_input: Any, job: Job) -> Any:
    """Sleeps through any cancellation (threads cannot be killed)."""
    time.sleep(float(job_input.get("sleep_s", 30)))
    return "finished late"


def echo(job_input: Any, job: Job) -> Any:
    return {"echo": job_input}
