"""Python handlers the end-to-end tests run in real worker processes (``--handler``)."""

from __future__ import annotations

import os
import signal
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


def crash_if_asked(job_input: Any, job: Job) -> Any:
    """Kills its whole process (SIGKILL, as the OOM killer does) when the input says
    ``{"crash": true}``, after ``sleep_s``; otherwise sleeps ``sleep_s`` and reports its pid."""
    time.sleep(float(job_input.get("sleep_s", 0)))
    if job_input.get("crash"):
        os.kill(os.getpid(), signal.SIGKILL)
    return {"n": job_input.get("n"), "pid": os.getpid()}


def break_the_keepalive(job_input: Any, job: Job) -> Any:
    """A handler runs in the worker's own process in thread mode and can break it: this one
    replaces the keep-alive's heartbeat with one that raises, so the keep-alive thread dies."""
    from consumers.keepalive import Keepalive

    def broken(self: Keepalive) -> None:
        raise RuntimeError("the keep-alive was broken by a handler")

    Keepalive.heartbeat_due = broken  # type: ignore[method-assign]
    time.sleep(float(job_input.get("sleep_s", 30)))
    return "finished"
