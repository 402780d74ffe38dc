"""Run a Python handler in a process of its own, so a timeout or cancellation can really stop it.

The parent side is :class:`IsolatedPythonRunner`: one fresh interpreter per job, supervised by
:mod:`consumers.process` like a command (own session, SIGTERM then SIGKILL to its group). The
child side is ``python -m consumers.isolated module:function``:

* stdin: one JSON envelope, ``{"job": <job fields>, "deadline": <epoch seconds or null>,
  "stop_file": <path>}`` (a wall-clock deadline: monotonic clocks are not comparable between
  processes in general); the job's ``token`` is ``withheld:<mask>`` unless the worker runs with
  ``--expose-token``: the real token never reaches the child;
* environment and user: the sandbox's (:mod:`consumers.sandbox`): the allowlist, plus a
  ``PYTHONPATH`` of the worker's import path so the child imports the handler the worker
  checked; with ``--run-as`` the child runs as that user, which must be able to read the
  handler's code and this package (and can write none of the worker's files: the stop file is
  the worker's, readable by the child);
* the handler's own prints cannot corrupt the result: before importing the handler the child
  moves its real stdout to a private descriptor and points file descriptor 1 (and
  ``sys.stdout``) at stderr, so everything the handler or its subprocesses print lands in
  stderr; the result is written to the private descriptor as one JSON object
  ``{"succeeded", "output", "error", "cause"}``;
* SIGTERM sets the child's ``context.cancelled``, with the reason the parent wrote to
  ``stop_file`` just before signalling (``"shutdown"`` when there is none: the parent decides
  the job's outcome either way). A handler
  that takes a context gets to finish on its own within the grace period; one that does not is
  interrupted at once with ``SystemExit`` (its ``finally`` blocks run).

A fresh interpreter costs a few hundred milliseconds per job (it imports the handler, pydantic
and this package); thread mode (:class:`~consumers.runner.PythonRunner`) has no such cost but
cannot stop a handler that ignores cancellation.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from bridge import strict_json
from bridge.contract import ERROR_HANDLER_CRASHED, ERROR_INVALID_OUTPUT, MAX_JSON_DEPTH, Job
from consumers.command import (
    MAX_STDOUT_BYTES,
    STDERR_TAIL_CHARS,
    decode_stdout,
    describe_exit,
    job_environment,
    stderr_tail,
    stopped_outcome,
)
from consumers.context import CANCEL_REASONS, CancelReason, JobContext
from consumers.process import DEFAULT_GRACE_S, ProcessResult, StopCause, run_process
from consumers.runner import Outcome, accepts_context, call_handler, load_handler, runner_failure
from consumers.sandbox import Sandbox


class IsolatedPythonRunner:
    """Runs ``module:function`` through ``python -m consumers.isolated`` for each job.

    The handler is imported here too, at construction, so a bad spec fails when the worker
    starts (``ValueError``, one line) rather than on every job.
    """

    def __init__(
        self,
        spec: str,
        grace_s: float = DEFAULT_GRACE_S,
        python: str = sys.executable,
        sandbox: Sandbox | None = None,
    ) -> None:
        if grace_s < 0:
            raise ValueError(f"grace period must not be negative, got {grace_s}")
        load_handler(spec)
        self.spec, self.grace_s, self.python = spec, grace_s, python
        self.sandbox = sandbox or Sandbox()

    def environment(self, job: Job) -> dict[str, str]:
        """The job's environment, with the parent's import path so the child imports the same
        handler the parent checked (a console script does not put the working directory on
        ``sys.path`` the way ``python -m`` does)."""
        env = job_environment(job, sandbox=self.sandbox)
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in sys.path if p) or "."
        return env

    def run(self, job: Job, context: JobContext | None = None) -> Outcome:
        context = context or JobContext(job)
        try:
            return self._run(job, context)
        except BaseException as exc:
            return runner_failure(exc)

    def _run(self, job: Job, context: JobContext) -> Outcome:
        remaining = context.remaining()
        fd, stop_file = tempfile.mkstemp(prefix="callback-bridge-stop-")
        if self.sandbox.run_as is not None:
            os.fchmod(fd, 0o644)  # the child, another user, reads why it was stopped
        os.close(fd)
        envelope = {
            "job": self.sandbox.job_view(job).model_dump(mode="json"),
            "deadline": None if remaining is None else time.time() + remaining,
            "stop_file": stop_file,
        }

        def tell_why(cause: StopCause) -> None:
            Path(stop_file).write_text(cause if cause in CANCEL_REASONS else "shutdown")

        try:
            done = run_process(
                [self.python, "-m", "consumers.isolated", self.spec],
                context=context,
                stdin=json.dumps(envelope).encode(),
                env=self.environment(job),
                grace_s=self.grace_s,
                max_stdout_bytes=MAX_STDOUT_BYTES,
                stderr_tail_bytes=4 * STDERR_TAIL_CHARS,
                on_stop=tell_why,
                run_as=self.sandbox.run_as,
            )
        except OSError as exc:
            return Outcome.failure(ERROR_HANDLER_CRASHED, f"could not start {self.python!r}: {exc}")
        finally:
            Path(stop_file).unlink(missing_ok=True)
        stopped = stopped_outcome(done, context, self.grace_s)
        if stopped is not None:
            return stopped
        text = decode_stdout(done.stdout)
        if isinstance(text, Outcome):
            return text
        try:
            # Read strictly although the child is ours: the handler ran in it.
            reported = strict_json.loads(text, max_depth=MAX_JSON_DEPTH)
            succeeded = reported["succeeded"]
        except strict_json.JSONError as exc:
            if exc.kind == "syntax":
                return self._crashed(done)
            return Outcome.failure(ERROR_INVALID_OUTPUT, f"the handler's report: {exc}")
        except (TypeError, KeyError):
            return self._crashed(done)
        if succeeded:
            return Outcome.success(reported.get("output"))
        return Outcome.failure(
            str(reported.get("error") or ERROR_HANDLER_CRASHED), str(reported.get("cause") or "")
        )

    @staticmethod
    def _crashed(done: ProcessResult) -> Outcome:
        failure = Outcome.failure(
            ERROR_HANDLER_CRASHED,
            f"the handler process ended ({describe_exit(done.returncode)}) without "
            f"reporting an outcome{stderr_tail(done)}",
        )
        return replace(failure, crashed=True)


# --- child side ----------------------------------------------------------------------------
def _claim_stdout() -> int:
    """Keep the real stdout for the result only; everything else written to fd 1 goes to
    stderr."""
    sys.stdout.flush()
    result_fd = os.dup(1)  # not inheritable (PEP 446): the handler's subprocesses cannot write it
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return result_fd


def _on_sigterm(context: JobContext, cooperative: bool, stop_file: str | None) -> None:
    def handle(_signum: int, _frame: FrameType | None) -> None:
        reason: CancelReason = "shutdown"
        try:
            written = Path(stop_file).read_text().strip() if stop_file else ""
        except OSError:
            written = ""
        for known in CANCEL_REASONS:
            if written == known:
                reason = known
        context.cancel(reason)
        if not cooperative:
            raise SystemExit(128 + signal.SIGTERM)

    signal.signal(signal.SIGTERM, handle)


def _report(result_fd: int, outcome: Outcome) -> None:
    fields: dict[str, Any] = {
        "succeeded": outcome.succeeded,
        "output": outcome.output,
        "error": outcome.error,
        "cause": outcome.cause,
    }
    data = memoryview(json.dumps(fields, ensure_ascii=False).encode())
    while data:
        data = data[os.write(result_fd, data) :]
    os.close(result_fd)


def main(argv: list[str] | None = None) -> int:
    """Child entry point: read the envelope, run the handler once, report, exit 0."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m consumers.isolated module:function", file=sys.stderr)
        return 2
    result_fd = _claim_stdout()
    try:
        envelope = json.loads(sys.stdin.buffer.read())
        job = Job.model_validate(envelope["job"])
        deadline = envelope.get("deadline")
        context = JobContext.with_timeout(job, None if deadline is None else deadline - time.time())
        function = load_handler(args[0])
        cooperative = accepts_context(function)
        _on_sigterm(context, cooperative, envelope.get("stop_file"))
        outcome = call_handler(function, cooperative, job, context)
    except BaseException as exc:
        outcome = Outcome.failure(ERROR_HANDLER_CRASHED, "".join(traceback.format_exception(exc)))
    _report(result_fd, outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
