"""Run a job as a process: a shell command (:class:`CommandRunner`), and what every process
runner shares with :class:`~consumers.isolated.IsolatedPythonRunner`: the job's environment, how
an exit is described, stdout read strictly, a stopped process's outcome.

The command runs in its own session and process group (:mod:`consumers.process`): cancellation
and the deadline stop the whole group (SIGTERM, then SIGKILL), and :mod:`consumers.reaper` what
left it. What a process gets is the :class:`~consumers.sandbox.Sandbox`'s business.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import stat

from bridge import strict_json
from bridge.contract import (
    ERROR_COMMAND_FAILED,
    ERROR_INVALID_OUTPUT,
    ERROR_OUTPUT_TOO_LARGE,
    ERROR_RETRYABLE,
    MAX_OUTPUT_BYTES,
    MAX_PAYLOAD_DEPTH,
    Job,
)
from consumers.context import JobContext
from consumers.process import DEFAULT_GRACE_S, ProcessResult, run_process
from consumers.runner import Outcome, runner_failure
from consumers.sandbox import RunAs, Sandbox

#: Inputs larger than this are passed on stdin only (Linux caps one env string at 128 KiB).
MAX_ENV_INPUT_BYTES = 65_536
#: How much of a failed command's stderr becomes the failure cause.
STDERR_TAIL_CHARS = 4_096
#: A command exiting with EX_TEMPFAIL asks for a retry (the state machine's Retry policy).
EXIT_RETRYABLE = 75
#: Stdout kept from a process. Pretty-printed or escaped JSON can be larger than the compact
#: output Step Functions counts, so allow some slack; beyond this it cannot fit and the job stops.
MAX_STDOUT_BYTES = 4 * MAX_OUTPUT_BYTES


def job_environment(
    job: Job, input_text: str | None = None, sandbox: Sandbox | None = None
) -> dict[str, str]:
    """A job process's environment: the sandbox's allowlist (PATH, HOME, LANG, LC_*, TZ,
    PYTHONPATH, ``--pass-env``) plus ``BRIDGE_JOB_*`` and ``BRIDGE_EXECUTION_ARN`` (and the
    input, when it is small enough for one environment string); never the worker's AWS
    credentials, queue URLs or other settings, never the task token."""
    extra = {}
    if input_text is not None and len(input_text.encode()) <= MAX_ENV_INPUT_BYTES:
        extra["BRIDGE_JOB_INPUT"] = input_text
    return (sandbox or Sandbox()).environment(job, extra)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown signal"
        return f"killed by signal {-returncode} ({name})"
    return f"exit status {returncode}"


def stderr_tail(done: ProcessResult) -> str:
    """``; stderr tail:`` and the last of what the process wrote there, or ``; no stderr``."""
    tail = done.stderr_tail.decode("utf-8", errors="replace")[-STDERR_TAIL_CHARS:]
    return f"; stderr tail:\n{tail}" if tail.strip() else "; no stderr"


def stopped_outcome(done: ProcessResult, context: JobContext, grace_s: float) -> Outcome | None:
    """The outcome of a process the supervisor had to stop (or whose job was cancelled), or
    ``None`` when it ended by itself and its exit status and output decide."""
    if context.is_cancelled:
        how = "its process group got SIGTERM"
        if done.escalated:
            how += f", then SIGKILL after {grace_s:g} s"
        return Outcome.after_cancel(context, done.duration_s, how)
    if done.stdout_overflow:
        return Outcome.failure(
            ERROR_OUTPUT_TOO_LARGE,
            f"stdout passed {MAX_STDOUT_BYTES} bytes (Step Functions accepts {MAX_OUTPUT_BYTES}); "
            "the job was stopped",
        )
    return None


def decode_stdout(stdout: bytes) -> str | Outcome:
    """Stdout as strict UTF-8, or the ``Bridge.InvalidOutput`` failure naming the bad byte."""
    try:
        return stdout.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Outcome.failure(
            ERROR_INVALID_OUTPUT,
            f"stdout is not valid UTF-8: {exc.reason} at byte offset {exc.start} "
            f"(byte 0x{stdout[exc.start]:02x})",
        )


class CommandRunner:
    """Runs a shell command (``/bin/sh -c``) with the job input as JSON on stdin and in
    ``BRIDGE_JOB_*`` variables; JSON stdout is the output, other text becomes a JSON string.

    The command runs in its own session and process group (:mod:`consumers.process`): terminal
    Ctrl-C never reaches it; cancellation and the deadline stop the whole group (SIGTERM, then
    SIGKILL after ``grace_s``), grandchildren included; members still alive after the command
    exits are stopped the same way, and so are processes that left the group (``setsid``
    daemons: :mod:`consumers.reaper`). Its environment is the sandbox's allowlist
    (:func:`job_environment`); with ``--run-as`` it runs as that user.
    """

    def __init__(
        self,
        command: str,
        grace_s: float = DEFAULT_GRACE_S,
        shell: str = "/bin/sh",
        sandbox: Sandbox | None = None,
    ):
        if not command.strip():
            raise ValueError("--command must not be empty")
        if grace_s < 0:
            raise ValueError(f"grace period must not be negative, got {grace_s}")
        self.command, self.grace_s, self.shell = command, grace_s, shell
        self.sandbox = sandbox or Sandbox()

    def check(self) -> None:
        """Refuse, at worker start, a command whose program does not exist (raises
        :class:`ValueError` with one line), instead of failing every job with exit 127."""
        check_program(self.command, self.sandbox.run_as)

    def environment(self, job: Job, input_text: str) -> dict[str, str]:
        return job_environment(job, input_text, self.sandbox)

    def run(self, job: Job, context: JobContext | None = None) -> Outcome:
        context = context or JobContext(job)
        try:
            return self._run(job, context)
        except BaseException as exc:
            return runner_failure(exc)

    def _run(self, job: Job, context: JobContext) -> Outcome:
        input_text = json.dumps(job.input)
        try:
            done = run_process(
                [self.shell, "-c", self.command],
                context=context,
                stdin=input_text.encode(),
                env=self.environment(job, input_text),
                grace_s=self.grace_s,
                max_stdout_bytes=MAX_STDOUT_BYTES,
                stderr_tail_bytes=4 * STDERR_TAIL_CHARS,
                run_as=self.sandbox.run_as,
            )
        except OSError as exc:
            return Outcome.failure(ERROR_COMMAND_FAILED, f"could not start {self.shell!r}: {exc}")
        stopped = stopped_outcome(done, context, self.grace_s)
        if stopped is not None:
            return stopped
        if done.returncode != 0:
            error = ERROR_RETRYABLE if done.returncode == EXIT_RETRYABLE else ERROR_COMMAND_FAILED
            return Outcome.failure(error, f"{describe_exit(done.returncode)}{stderr_tail(done)}")
        text = decode_stdout(done.stdout)
        if isinstance(text, Outcome):
            return text
        return command_output(text)


def command_output(stdout: str) -> Outcome:
    """A command's stdout as its output: JSON when it is JSON, read strictly (a ``NaN``, a
    duplicate key or over-deep nesting fails with ``Bridge.InvalidOutput``: the workflow would
    otherwise get ``null`` or one of two values); any other text is kept, as a JSON string."""
    text = stdout.strip()
    if not text:
        return Outcome.success(None)
    try:
        return Outcome.success(strict_json.loads(text, max_depth=MAX_PAYLOAD_DEPTH))
    except strict_json.JSONError as exc:
        if exc.kind == "syntax":
            return Outcome.success(text)  # plain text output is kept, as a JSON string
        return Outcome.failure(ERROR_INVALID_OUTPUT, f"stdout is not exact JSON: {exc}")


#: Words the shell runs itself: nothing to find on PATH.
_SHELL_WORDS_TEXT = """
    ! { } ( [[ case if for while until function time . : [ alias bg break cd command continue
    echo eval exec exit export false fg getopts hash jobs kill printf pwd read readonly return
    set shift test times trap true type ulimit umask unalias unset wait
"""
SHELL_WORDS = frozenset(_SHELL_WORDS_TEXT.split())


def check_program(command: str, run_as: RunAs | None = None) -> None:
    """Check that the first program of a shell command exists: on PATH, or an executable path
    (executable by ``run_as``, when given). Leading ``NAME=value`` assignments are skipped;
    shell keywords, builtins, compound commands and words the shell must expand (``$TOOL``) are
    accepted as they are."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError as exc:
        raise ValueError(f"--command cannot be parsed: {exc}") from None
    program = next((w for w in words if not _is_assignment(w)), None)
    if program is None or program in SHELL_WORDS or program[0] in "$`(;&|<>":
        return
    if "/" in program:
        if not os.path.isfile(program) or not os.access(program, os.X_OK):
            raise ValueError(f"--command: {program!r} is not an executable file")
        found = program
    else:
        on_path = shutil.which(program)
        if on_path is None:
            raise ValueError(f"--command: program {program!r} not found on PATH")
        found = on_path
    if run_as is not None and not _executable_by(found, run_as):
        raise ValueError(f"--command: {found!r} is not executable by --run-as {run_as.name}")


def _executable_by(path: str, user: RunAs) -> bool:
    """Whether the file's mode lets ``user`` execute it (its directories are not checked)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    if st.st_uid == user.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == user.gid or st.st_gid in user.groups:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _is_assignment(word: str) -> bool:
    name, sep, _ = word.partition("=")
    return bool(sep) and name.isidentifier()
