"""Run one job: a Python handler (``module:function``) or a shell command.

A runner never raises: whatever the job does, it returns an :class:`Outcome`, so one bad job
cannot take the worker down.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bridge.contract import (
    ERROR_COMMAND_FAILED,
    ERROR_OUTPUT_TOO_LARGE,
    ERROR_RETRYABLE,
    MAX_CAUSE_CHARS,
    MAX_ERROR_CHARS,
    MAX_OUTPUT_BYTES,
    Job,
    output_size,
)

#: Inputs larger than this are passed on stdin only (Linux caps one env string at 128 KiB).
MAX_ENV_INPUT_BYTES = 65_536
#: How much of a failed command's stderr becomes the failure cause.
STDERR_TAIL_CHARS = 4_096
#: A command exiting with EX_TEMPFAIL asks for a retry (the state machine's Retry policy).
EXIT_RETRYABLE = 75

ERROR_INVALID_OUTPUT = "Bridge.InvalidOutput"


class RetryableError(Exception):
    """Raise from a handler to fail with ``Bridge.Retryable``: the state machine retries it."""


@dataclass(frozen=True)
class Outcome:
    """What a job came to: an output, or an error name and cause."""

    succeeded: bool
    output: Any = None
    error: str | None = None
    cause: str | None = None

    @classmethod
    def failure(cls, error: str, cause: str) -> Outcome:
        return cls(False, error=error[:MAX_ERROR_CHARS], cause=cause[-MAX_CAUSE_CHARS:])

    @classmethod
    def success(cls, output: Any) -> Outcome:
        try:
            size = output_size(output)
        except (TypeError, ValueError) as exc:
            return cls.failure(ERROR_INVALID_OUTPUT, f"output is not JSON-serialisable: {exc}")
        if size > MAX_OUTPUT_BYTES:
            return cls.failure(
                ERROR_OUTPUT_TOO_LARGE,
                f"output is {size} bytes; Step Functions accepts {MAX_OUTPUT_BYTES}",
            )
        return cls(True, output=output)


class Runner(Protocol):
    def run(self, job: Job) -> Outcome: ...


class PythonRunner:
    """Calls ``function(input, job)``; its return value is the output, an exception a failure."""

    def __init__(self, function: Callable[[Any, Job], Any]) -> None:
        self.function = function

    @classmethod
    def from_spec(cls, spec: str) -> PythonRunner:
        module_name, sep, attribute = spec.partition(":")
        if not sep or not module_name or not attribute:
            raise ValueError(f"--handler must look like 'module:function', got {spec!r}")
        try:
            function = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"--handler {spec!r} cannot be loaded: {exc}") from None
        if not callable(function):
            raise ValueError(f"--handler {spec!r} is not callable")
        return cls(function)

    def run(self, job: Job) -> Outcome:
        try:
            output = self.function(job.input, job)
        except RetryableError as exc:
            return Outcome.failure(ERROR_RETRYABLE, str(exc))
        except Exception as exc:
            return Outcome.failure(type(exc).__name__, "".join(traceback.format_exception(exc)))
        return Outcome.success(output)


class CommandRunner:
    """Runs a shell command with the job input on stdin and in ``BRIDGE_JOB_*`` variables."""

    def __init__(self, command: str, timeout_s: float | None = None) -> None:
        if not command.strip():
            raise ValueError("--command must not be empty")
        self.command = command
        self.timeout_s = timeout_s

    def environment(self, job: Job, input_text: str) -> dict[str, str]:
        env = {
            **os.environ,
            "BRIDGE_JOB_ID": job.job_id,
            "BRIDGE_JOB_TYPE": job.type,
            "BRIDGE_JOB_ATTEMPT": str(job.attempt),
            "BRIDGE_EXECUTION_ARN": job.execution_arn,
        }
        if len(input_text.encode()) <= MAX_ENV_INPUT_BYTES:
            env["BRIDGE_JOB_INPUT"] = input_text
        return env

    def run(self, job: Job) -> Outcome:
        input_text = json.dumps(job.input)
        try:
            done = subprocess.run(
                self.command,
                shell=True,
                input=input_text,
                capture_output=True,
                text=True,
                env=self.environment(job, input_text),
                timeout=self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Outcome.failure(ERROR_COMMAND_FAILED, f"timed out after {self.timeout_s} s")
        except OSError as exc:
            return Outcome.failure(ERROR_COMMAND_FAILED, f"could not start: {exc}")
        if done.returncode != 0:
            return self._failure(done.returncode, done.stderr)
        return Outcome.success(self._output(done.stdout))

    @staticmethod
    def _output(stdout: str) -> Any:
        text = stdout.strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text  # plain text output is kept, as a JSON string

    @staticmethod
    def _failure(returncode: int, stderr: str) -> Outcome:
        how = f"killed by signal {-returncode}" if returncode < 0 else f"exit status {returncode}"
        error = ERROR_RETRYABLE if returncode == EXIT_RETRYABLE else ERROR_COMMAND_FAILED
        return Outcome.failure(error, f"{how}; stderr tail:\n{stderr[-STDERR_TAIL_CHARS:]}")
