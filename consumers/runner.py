"""Run one job: a Python handler (``module:function``) or a shell command, and say how it ended.

Every runner implements ``run(job, context) -> Outcome`` and never raises, whatever the job does
(``SystemExit``, ``KeyboardInterrupt``, a bug in the runner itself): the worker relies on getting
an :class:`Outcome` back to free the job's slot. The :class:`~consumers.context.JobContext` carries
cancellation and the deadline; how far a runner can enforce them depends on where the job runs:

* :class:`PythonRunner` calls the handler in the worker's thread. A thread cannot be killed, so
  cancellation is cooperative only.
* :class:`CommandRunner` and :class:`~consumers.isolated.IsolatedPythonRunner` run a process
  group (:mod:`consumers.process`) and stop it with SIGTERM, then SIGKILL.

What job code can reach is the :class:`~consumers.sandbox.Sandbox`'s business: processes get an
environment built from an allowlist (never the worker's credentials or queue URLs) and, with
``--run-as``, another user; handlers get the job without its task token unless
``--expose-token``.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from bridge.claim_check import BUCKET_SETTING as CLAIM_CHECK_SETTING
from bridge.claim_check import MAX_CLAIM_CHECK_BYTES
from bridge.contract import (
    ERROR_INVALID_OUTPUT,
    ERROR_JOB_TIMEOUT,
    ERROR_OUTPUT_TOO_LARGE,
    ERROR_RETRYABLE,
    MAX_CAUSE_CHARS,
    MAX_ERROR_CHARS,
    MAX_OUTPUT_BYTES,
    Job,
    clip,
    output_size,
    payload_problem,
)
from consumers import reaper
from consumers.context import CancelReason, JobContext
from consumers.deadlines import DEADLINES, DeadlineScheduler
from consumers.process import DEFAULT_GRACE_S
from consumers.sandbox import Sandbox

log = logging.getLogger(__name__)


Isolation = Literal["thread", "process"]


class RetryableError(Exception):
    """Raise from a handler to fail with ``Bridge.Retryable``: the state machine retries it."""


@dataclass(frozen=True)
class Outcome:
    """What a job came to: an output, an error name and cause, or an interruption.

    An interrupted outcome (``interrupted_by`` set: the task closed, or the worker is shutting
    down) means "send no result": the worker must not report it as a failure.

    A success refused only for its size is a ``Bridge.OutputTooLarge`` failure that keeps the
    output in ``oversized_output``: a worker with a claim-check bucket still delivers it through
    S3 (bridge.claim_check); without one the failure stands.
    """

    succeeded: bool
    output: Any = None
    error: str | None = None
    cause: str | None = None
    interrupted_by: CancelReason | None = None
    oversized_output: Any = None
    #: The job's process died without reporting (a signal, ``os._exit``, the OOM killer): the
    #: worker retries the job, isolated, up to its crash limit before this failure stands.
    crashed: bool = False

    @classmethod
    def failure(cls, error: str, cause: str) -> Outcome:
        """A failure that fits SendTaskFailure: the cause keeps its head and tail."""
        return cls(False, error=error[:MAX_ERROR_CHARS], cause=clip(cause, MAX_CAUSE_CHARS))

    @classmethod
    def success(cls, output: Any) -> Outcome:
        """The output, if it reaches the workflow exactly as given: a NaN or ±Infinity (JSON
        has neither: serialisers write ``null``), over-deep nesting or an unencodable string
        fails the task with ``Bridge.InvalidOutput`` naming the path, never a changed value."""
        problem = payload_problem(output)
        if problem:
            return cls.failure(ERROR_INVALID_OUTPUT, f"the output is not exact JSON: {problem}")
        try:
            size = output_size(output)
        except (TypeError, ValueError, RecursionError) as exc:
            return cls.failure(ERROR_INVALID_OUTPUT, f"output is not JSON-serialisable: {exc}")
        if size > MAX_CLAIM_CHECK_BYTES:
            return cls.failure(
                ERROR_OUTPUT_TOO_LARGE,
                f"output is {size} bytes; Step Functions accepts {MAX_OUTPUT_BYTES} and a claim "
                f"check at most {MAX_CLAIM_CHECK_BYTES}: write it to S3 and return its location",
            )
        if size > MAX_OUTPUT_BYTES:
            refused = cls.failure(
                ERROR_OUTPUT_TOO_LARGE,
                f"output is {size} bytes; Step Functions accepts {MAX_OUTPUT_BYTES}; "
                f"set {CLAIM_CHECK_SETTING} to pass it through S3 by claim check",
            )
            return replace(refused, oversized_output=output)
        return cls(True, output=output)

    @classmethod
    def interrupted(cls, reason: CancelReason) -> Outcome:
        """The job was stopped and no result must be sent. For ``"timeout"``, which does send
        a result, use :meth:`timed_out` (or :meth:`after_cancel`)."""
        return cls(
            False, cause=f"job interrupted ({reason}); no result is sent", interrupted_by=reason
        )

    @classmethod
    def timed_out(cls, elapsed_s: float, detail: str = "") -> Outcome:
        cause = f"the job ran past its deadline and was stopped after {elapsed_s:.1f} s"
        return cls.failure(ERROR_JOB_TIMEOUT, f"{cause}{'; ' + detail if detail else ''}")

    @classmethod
    def after_cancel(cls, context: JobContext, elapsed_s: float, detail: str = "") -> Outcome:
        """The outcome of a job whose context was cancelled, whatever the job itself returned."""
        if context.reason == "timeout":
            return cls.timed_out(elapsed_s, detail)
        return cls.interrupted(context.reason or "shutdown")

    @property
    def reportable(self) -> bool:
        """Whether a result message should be sent for this outcome."""
        return self.interrupted_by is None


class Runner(Protocol):
    def run(self, job: Job, context: JobContext) -> Outcome: ...


# --- Python handlers ---------------------------------------------------------------------------
def load_handler(spec: str) -> Callable[..., Any]:
    """Import ``module:function``; raises :class:`ValueError` with one clear line."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"--handler must look like 'module:function', got {spec!r}")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"--handler {spec!r} cannot be loaded: {exc}") from None
    except Exception as exc:  # the module itself failed while importing
        raise ValueError(
            f"--handler {spec!r} cannot be loaded: {type(exc).__name__}: {exc}"
        ) from None
    if not callable(function):
        raise ValueError(f"--handler {spec!r} is not callable")
    check_signature(spec, function)
    return function  # type: ignore[no-any-return]


def check_signature(spec: str, function: Callable[..., Any]) -> None:
    """Refuse, at worker start, a handler that cannot be called as ``(input, job)`` or
    ``(input, job, context)``, instead of failing every job with a ``TypeError``. A callable
    whose signature Python cannot read (some builtins) is accepted as it is."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return
    for arguments in ((None, None), (None, None, None)):
        try:
            signature.bind(*arguments)
            return
        except TypeError:
            continue
    raise ValueError(
        f"--handler {spec!r} must take (input, job) or (input, job, context); "
        f"its signature is {signature}"
    )


def accepts_context(function: Callable[..., Any]) -> bool:
    """Whether ``function`` takes a third positional argument (or ``*args``): then it is called
    as ``function(input, job, context)``, otherwise as ``function(input, job)``."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = 0
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return True
        if parameter.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            positional += 1
    return positional >= 3


def call_handler(
    function: Callable[..., Any], wants_context: bool, job: Job, context: JobContext
) -> Outcome:
    """Call a handler and turn anything it does (return, raise, ``sys.exit``) into an Outcome."""
    try:
        output = function(job.input, job, context) if wants_context else function(job.input, job)
    except RetryableError as exc:
        return Outcome.failure(ERROR_RETRYABLE, str(exc) or type(exc).__name__)
    except SystemExit as exc:
        return Outcome.failure(
            "SystemExit", f"the handler called sys.exit({exc.code!r})\n{_traceback(exc)}"
        )
    except BaseException as exc:  # KeyboardInterrupt too: the worker must get an Outcome
        return Outcome.failure(type(exc).__name__, _traceback(exc))
    return Outcome.success(output)


class PythonRunner:
    """Calls ``function(input, job)``, or ``function(input, job, context)`` when it takes a third
    argument; its return value is the output, an exception a failure.

    The handler runs in the calling thread, and Python cannot kill a thread: cancellation and the
    deadline only set ``context.cancelled``. A handler that checks it (``context.is_cancelled``,
    ``context.wait(s)`` instead of ``time.sleep``) stops early; one that ignores it keeps running,
    and keeps its thread, until it returns; what the worker does with that slot meanwhile is the
    worker's business. Whatever such a handler then returns is dropped: a cancelled job ends as
    ``Bridge.JobTimeout`` or as an interruption. For handlers that must be stoppable, use process
    isolation (:class:`~consumers.isolated.IsolatedPythonRunner`).
    """

    def __init__(
        self,
        function: Callable[..., Any],
        sandbox: Sandbox | None = None,
        deadlines: DeadlineScheduler | None = None,
    ) -> None:
        """``deadlines``: what cancels a job at its deadline while it runs (default: the
        process's one scheduler thread, :mod:`consumers.deadlines`)."""
        self.function = function
        self.deadlines = deadlines or DEADLINES
        self.wants_context = accepts_context(function)
        self.sandbox = sandbox or Sandbox()
        if self.sandbox.run_as is not None:
            raise ValueError("a handler in the worker's thread cannot run as another user")

    @classmethod
    def from_spec(cls, spec: str, sandbox: Sandbox | None = None) -> PythonRunner:
        return cls(load_handler(spec), sandbox)

    def run(self, job: Job, context: JobContext | None = None) -> Outcome:
        context = context or JobContext(job)
        started = time.monotonic()
        deadline = self.deadlines.schedule(context)  # a cooperative handler notices in time
        _IN_THREAD.enter()
        try:
            view = self.sandbox.job_view(job)  # the token withheld, unless --expose-token
            outcome = call_handler(self.function, self.wants_context, view, context.seen_as(view))
            if context.check_deadline():
                return Outcome.after_cancel(
                    context, time.monotonic() - started, "the handler returned after cancellation"
                )
            return outcome
        except BaseException as exc:
            return runner_failure(exc)
        finally:
            self.deadlines.cancel(deadline)
            _IN_THREAD.leave()


class _InThreadHandlers:
    """Counts in-thread handlers running; when the last one returns, stops what they left
    running (:func:`consumers.reaper.sweep_unmarked`: a daemon that double-forked away from a
    handler re-parents to the worker, the child subreaper). A handler's own subprocesses are
    the worker's children too, so the sweep waits until none runs, and holds new ones back
    while it lasts (at most the grace period and two seconds, and only when something is left)."""

    def __init__(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self.grace_s = grace_s

    def enter(self) -> None:
        with self._lock:
            self._running += 1

    def leave(self) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0:
                try:
                    reaper.sweep_unmarked(self.grace_s)
                except Exception:  # the job's outcome stands whatever the sweep meets
                    log.exception("stopping what in-thread handlers left running failed")


_IN_THREAD = _InThreadHandlers()


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def runner_failure(exc: BaseException) -> Outcome:
    """A runner's last line of defence: its own bug becomes a failure, never an exception."""
    return Outcome.failure(type(exc).__name__, f"callback-bridge runner error\n{_traceback(exc)}")
