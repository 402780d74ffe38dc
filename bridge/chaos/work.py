"""The job the chaos campaign's consumers run (``--handler bridge.chaos.work:run``).

It sleeps cooperatively (waking on cancellation), then does what its input's ``mode`` asks:

* ``ok``: succeeds with an output naming its own job (``job_id``, ``n``), so the reconciliation
  can tell that every success carries its own job's output;
* ``fail``: raises :class:`ChaosFailure`; ``hang``: sleeps past its job timeout;
* ``crash``: kills the process that runs it, on every delivery (``crash``: ``sigkill``,
  ``exit`` = ``os._exit(13)``, ``segv``): in a consumer's own process the first time, taking
  its neighbours down with it; isolated after that, until the crash limit fails the task;
* ``nan``: returns NaN or +-Infinity inside its output (must fail ``Bridge.InvalidOutput``);
* ``daemon``: starts a daemon that leaves the job's process group and session (``setsid``, from
  a shell that exits at once, so the daemon is orphaned), then succeeds. The daemon's command
  line carries :data:`DAEMON_MARKER` and the job id; it must be gone once the job has ended.

It writes one journal line when it starts, finishes in full, is cancelled, crashes or starts a
daemon: the reconciliation uses the journal to find stale jobs that ran in full and jobs run
again after their result was delivered. The journal is a file per consumer process
(``CHAOS_JOURNAL``: not a ``BRIDGE_*`` name, which the worker never passes to jobs, but
``--pass-env`` can pass this), one JSON object per line, flushed at once so a SIGKILL loses
nothing already written. A job input with ``chaos_copy`` is a copy the campaign sent itself
(a duplicate delivery), so its runs are told apart.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from bridge.contract import Job

JOURNAL_ENV = "CHAOS_JOURNAL"
ERROR = "ChaosFailure"
#: In the command line of every daemon a ``daemon`` job starts (then the job id).
DAEMON_MARKER = "chaos-daemon"
#: A daemon nobody kills ends by itself after this long (longer than any campaign).
DAEMON_LIFETIME_S = 1800
CRASH_EXIT_STATUS = 13
#: Set by the worker in the environment of a job's own process (an isolated handler, a
#: command), absent in its thread (docs/reliability.md, "What job code can reach").
RUN_MARKER = "BRIDGE_JOB_RUN"

_lock = threading.Lock()


class ChaosFailure(Exception):
    """The failure a job asks for with ``{"mode": "fail"}``."""


def journal(event: str, job: Job, **extra: Any) -> None:
    path = os.environ.get(JOURNAL_ENV)
    if not path:
        return
    line = json.dumps(
        {"event": event, "job_id": job.job_id, "t": time.time(), "pid": os.getpid(), **extra}
    )
    with _lock, open(path, "a") as f:
        f.write(line + "\n")


def crash(style: str) -> None:
    """End this process the way a crashing handler would (no core file)."""
    if style == "exit":
        os._exit(CRASH_EXIT_STATUS)
    if style == "segv":
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(5)  # the signal is delivered at once; never reached
    os.kill(os.getpid(), signal.SIGKILL)


def start_daemon(job_id: str) -> int:
    """Start a daemon that escapes this job: ``setsid`` from a shell run in the background, the
    shell exiting at once (a double fork). Returns the daemon's pid (``$!``: ``setsid`` execs
    in place, not being a process group leader)."""
    code = "import sys, time; time.sleep(float(sys.argv[1]))"
    script = 'setsid "$0" -c "$1" "$2" "$3" "$4" </dev/null >/dev/null 2>&1 & echo $!'
    shell = subprocess.run(
        ["sh", "-c", script, sys.executable, code, str(DAEMON_LIFETIME_S), DAEMON_MARKER, job_id],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return int(shell.stdout.strip())


def output(job: Job, params: dict[str, Any]) -> dict[str, Any]:
    """What a successful job returns: its own job id and number (checked by reconcile)."""
    return {"job_id": job.job_id, "n": params.get("n"), "pid": os.getpid()}


def run(job_input: Any, job: Job, context: Any) -> dict[str, Any]:
    params = job_input if isinstance(job_input, dict) else {}
    mode, copy = params.get("mode"), bool(params.get("chaos_copy"))
    journal("start", job, copy=copy)
    seconds = float(params.get("sleep_ms", 100)) / 1000
    if mode == "hang":
        seconds = 3600.0  # past any job timeout: the worker must end it
    if mode == "crash":  # it takes whatever process runs it down, every time
        journal("crash", job, style=params.get("crash", "sigkill"))
        crash(str(params.get("crash", "sigkill")))
    if mode == "daemon":  # in a job process of its own (isolated), or in the worker's thread
        isolated = RUN_MARKER in os.environ
        journal("daemon", job, daemon=start_daemon(job.job_id), isolated=isolated)
    if context.wait(seconds):
        journal("cancelled", job, copy=copy)
        return {"job_id": job.job_id, "cancelled": True}
    if mode == "fail":
        journal("finished", job, copy=copy)
        raise ChaosFailure(f"job {params.get('n')} was asked to fail")
    journal("finished", job, copy=copy)
    result = output(job, params)
    if mode == "nan":  # not JSON: the worker must fail the task, not send null
        result["values"] = [1.0, float(params.get("nan", "nan"))]
    return result
