"""The job the chaos campaign's consumers run (``--handler bridge.chaos.work:run``).

It sleeps cooperatively (waking on cancellation), then succeeds, fails, hangs past its job
timeout or kills its own consumer (a poison pill, which must end in the jobs DLQ after
``maxReceiveCount`` deliveries) as its input asks, and writes a journal line when it starts,
finishes in full or is cancelled: the reconciliation uses the journal to find stale jobs that
ran in full. The journal is a file per consumer process (``BRIDGE_CHAOS_JOURNAL``), one JSON
object per line, flushed at once so a SIGKILL loses nothing already written.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Any

from bridge.contract import Job

JOURNAL_ENV = "BRIDGE_CHAOS_JOURNAL"
ERROR = "ChaosFailure"

_lock = threading.Lock()


class ChaosFailure(Exception):
    """The failure a job asks for with ``{"mode": "fail"}``."""


def journal(event: str, job: Job) -> None:
    path = os.environ.get(JOURNAL_ENV)
    if not path:
        return
    line = json.dumps({"event": event, "job_id": job.job_id, "t": time.time(), "pid": os.getpid()})
    with _lock, open(path, "a") as f:
        f.write(line + "\n")


def run(job_input: Any, job: Job, context: Any) -> dict[str, Any]:
    params = job_input if isinstance(job_input, dict) else {}
    journal("start", job)
    seconds = float(params.get("sleep_ms", 100)) / 1000
    if params.get("mode") == "hang":
        seconds = 3600.0  # past any job timeout: the worker must end it
    if params.get("mode") == "crash":  # a poison pill: it takes its consumer down, every time
        journal("crash", job)
        os.kill(os.getpid(), signal.SIGKILL)
    if context.wait(seconds):
        journal("cancelled", job)
        return {"job_id": job.job_id, "cancelled": True}
    if params.get("mode") == "fail":
        journal("finished", job)
        raise ChaosFailure(f"job {params.get('n')} was asked to fail")
    journal("finished", job)
    return {"job_id": job.job_id, "n": params.get("n"), "pid": os.getpid()}
