"""The process supervisor: a job's whole process group ends with the job, whatever it does.

Real processes, short sleeps. A grandchild that would touch a file after a second proves the
group (not just the direct child) was stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from consumers.context import JobContext
from consumers.process import ProcessResult, run_process
from tests.support.messages import make_job

ROOT = Path(__file__).resolve().parents[2]
CAP = 1_048_576


def sh(
    command: str, context: JobContext | None = None, grace_s: float = 5.0, stdin: bytes = b""
) -> ProcessResult:
    return run_process(
        ["/bin/sh", "-c", command],
        context=context or JobContext(make_job()),
        stdin=stdin,
        grace_s=grace_s,
        max_stdout_bytes=CAP,
    )


def cancel_after(context: JobContext, seconds: float, reason: str = "task-closed") -> None:
    timer = threading.Timer(seconds, context.cancel, args=(reason,))
    timer.daemon = True
    timer.start()


def wait_until(seconds: float) -> None:
    time.sleep(max(0.0, seconds - time.monotonic()))


def test_output_and_exit_status_come_back() -> None:
    done = sh("cat; echo oops >&2; exit 4", stdin=b'{"a": 1}')
    assert done.returncode == 4
    assert done.stdout == b'{"a": 1}'
    assert done.stderr_tail == b"oops\n"
    assert done.stopped is None and not done.escalated and not done.leftovers


def test_cancellation_stops_the_command_and_its_grandchild_within_a_second(
    tmp_path: Path,
) -> None:
    flag = tmp_path / "touched"
    context = JobContext(make_job())
    started = time.monotonic()
    cancel_after(context, 0.2)
    done = sh(f"(sleep 1; touch {flag}) & sleep 30", context)
    elapsed = time.monotonic() - started
    assert done.stopped == "task-closed"
    assert elapsed < 0.2 + 0.5  # the supervisor notices within a tick or two
    assert done.returncode == -signal.SIGTERM
    wait_until(started + 1.6)
    assert not flag.exists(), "the grandchild outlived its job"


def test_deadline_stops_the_group_and_marks_a_timeout(tmp_path: Path) -> None:
    flag = tmp_path / "touched"
    context = JobContext.with_timeout(make_job(), 0.3)
    started = time.monotonic()
    done = sh(f"(sleep 1; touch {flag}) & sleep 30", context)
    assert done.stopped == "timeout" and context.reason == "timeout"
    assert 0.3 <= time.monotonic() - started < 1.0
    wait_until(started + 1.6)
    assert not flag.exists()


def test_a_command_ignoring_sigterm_is_killed_after_the_grace_period() -> None:
    context = JobContext(make_job())
    cancel_after(context, 0.1, "shutdown")
    started = time.monotonic()
    done = sh("trap '' TERM; sleep 30", context, grace_s=0.4)
    elapsed = time.monotonic() - started
    assert done.escalated and done.returncode == -signal.SIGKILL
    assert 0.5 <= elapsed < 1.5


def test_processes_left_behind_after_a_normal_exit_are_stopped(tmp_path: Path) -> None:
    flag = tmp_path / "touched"
    started = time.monotonic()
    done = sh(f"(sleep 1; touch {flag}) & echo done")
    assert done.returncode == 0 and done.stdout == b"done\n"
    assert done.leftovers and done.stopped is None
    assert time.monotonic() - started < 0.8
    wait_until(started + 1.6)
    assert not flag.exists()


def test_runaway_stdout_stops_the_job_instead_of_filling_memory() -> None:
    started = time.monotonic()
    done = sh("yes")
    assert done.stdout_overflow and done.stopped == "output-too-large"
    assert done.stdout == b""
    assert time.monotonic() - started < 2


def test_big_stdin_stdout_and_stderr_at_once_do_not_deadlock() -> None:
    payload = b"x" * 900_000
    done = sh("cat; head -c 1000000 /dev/zero >&2", stdin=payload)
    assert done.returncode == 0
    assert done.stdout == payload
    assert len(done.stderr_tail) == 65_536  # only the tail is kept


def test_a_program_that_does_not_read_its_stdin_still_finishes() -> None:
    done = sh("echo ignored-input", stdin=b"y" * 500_000)
    assert done.returncode == 0 and done.stdout == b"ignored-input\n"


def test_sigint_to_the_workers_process_group_never_reaches_the_command(tmp_path: Path) -> None:
    """Ctrl-C in a terminal signals the whole foreground group: the worker's. Play the worker in
    a child of our own (so the signal cannot reach pytest) and Ctrl-C its group."""
    ready = tmp_path / "ready"
    worker = (
        "import json, signal, sys\n"
        "from consumers.command import CommandRunner\n"
        "from tests.support.messages import make_job\n"
        "got = []\n"
        "signal.signal(signal.SIGINT, lambda s, f: got.append(s))\n"
        "outcome = CommandRunner(sys.argv[1]).run(make_job())\n"
        "report = {'output': outcome.output, 'cause': outcome.cause, 'sigint': bool(got)}\n"
        "print(json.dumps(report))\n"
    )
    command = f"trap 'exit 9' INT; touch {ready}; sleep 0.5; echo survived"
    proc = subprocess.Popen(
        [sys.executable, "-c", worker, command],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        until = time.monotonic() + 10
        while not ready.exists() and time.monotonic() < until:
            time.sleep(0.02)
        assert ready.exists(), "the command never started"
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    report = json.loads(out)
    assert report["sigint"], "the test did not deliver SIGINT to the worker"
    assert report["output"] == "survived", report["cause"]


def test_a_missing_program_raises_oserror() -> None:
    try:
        run_process(["/no/such/program"], context=JobContext(make_job()), max_stdout_bytes=CAP)
    except OSError:
        return
    raise AssertionError("expected OSError")
