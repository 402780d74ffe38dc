"""The job the demo runs: sleep a little, then succeed or fail as the input asks.

It stands in for real work (a render, a simulation, a batch export) so the demo exercises the
whole pipeline, including failures, without any external dependency.
"""

from __future__ import annotations

import os
import time
from typing import Any

from bridge.contract import Job


class DemoFailure(Exception):
    """The failure the demo asks for with ``{"fail": true}``."""


def work(job_input: Any, job: Job) -> dict[str, Any]:
    params = job_input if isinstance(job_input, dict) else {}
    time.sleep(float(params.get("sleep_ms", 100)) / 1000)
    if params.get("fail"):
        raise DemoFailure(f"job {params.get('n')} was asked to fail")
    return {"n": params.get("n"), "job_id": job.job_id, "type": job.type, "worker_pid": os.getpid()}
