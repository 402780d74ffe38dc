"""Runners turn whatever a job does into an Outcome and never raise."""

from __future__ import annotations

import os
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.contract import MAX_CAUSE_CHARS, MAX_OUTPUT_BYTES, Job
from consumers.command import CommandRunner
from consumers.compose import build_runner
from consumers.context import JobContext
from consumers.isolated import IsolatedPythonRunner
from consumers.runner import Outcome, PythonRunner, RetryableError, load_handler
from tests.support.messages import make_job

PY = sys.executable


def cancel_after(context: JobContext, seconds: float, reason: str = "task-closed") -> None:
    timer = threading.Timer(seconds, context.cancel, args=(reason,))
    timer.daemon = True
    timer.start()


# --- Outcome -----------------------------------------------------------------------------------
def test_a_long_cause_keeps_its_head_and_tail() -> None:
    outcome = Outcome.failure("E" * 300, "first frame\n" + "x" * 40_000 + "\nFinalError: why")
    assert len(outcome.error or "") == 256
    cause = outcome.cause or ""
    assert len(cause) <= MAX_CAUSE_CHARS
    assert cause.startswith("first frame") and cause.endswith("FinalError: why")
    assert "characters removed by callback-bridge" in cause


def test_an_interrupted_outcome_is_not_reported() -> None:
    outcome = Outcome.interrupted("shutdown")
    assert not outcome.reportable and not outcome.succeeded
    assert Outcome.success(1).reportable and Outcome.failure("E", "c").reportable


# --- Python handlers in a thread ---------------------------------------------------------------
def test_python_handler_output() -> None:
    outcome = PythonRunner(lambda data, job: {"double": data["n"] * 2, "id": job.job_id}).run(
        make_job(input={"n": 21})
    )
    assert outcome.succeeded and outcome.output == {"double": 42, "id": "exec-1/RunJob/0/0"}


def test_python_handler_exception_is_a_failure_named_after_it() -> None:
    def boom(data: object, job: object) -> None:
        raise KeyError("missing thing")

    outcome = PythonRunner(boom).run(make_job())
    assert not outcome.succeeded
    assert outcome.error == "KeyError"
    assert "missing thing" in (outcome.cause or "")


def test_retryable_error_asks_for_a_retry() -> None:
    def flaky(data: object, job: object) -> None:
        raise RetryableError("try later")

    assert PythonRunner(flaky).run(make_job()).error == "Bridge.Retryable"


def test_sys_exit_in_a_handler_is_a_failure_not_an_exit() -> None:
    def quits(data: object, job: object) -> None:
        sys.exit(3)

    outcome = PythonRunner(quits).run(make_job())
    assert outcome.error == "SystemExit" and "sys.exit(3)" in (outcome.cause or "")


def test_keyboard_interrupt_in_a_handler_is_a_failure() -> None:
    def interrupted(data: object, job: object) -> None:
        raise KeyboardInterrupt

    assert PythonRunner(interrupted).run(make_job()).error == "KeyboardInterrupt"


def test_a_bug_in_the_runner_itself_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> Outcome:
        raise RuntimeError("runner bug")

    monkeypatch.setattr("consumers.runner.call_handler", broken)
    outcome = PythonRunner(lambda d, j: 1).run(make_job())
    assert outcome.error == "RuntimeError" and "runner bug" in (outcome.cause or "")


def test_output_that_is_too_large_or_not_json_fails_clearly() -> None:
    big = PythonRunner(lambda d, j: "x" * MAX_OUTPUT_BYTES).run(make_job())
    assert big.error == "Bridge.OutputTooLarge"
    odd = PythonRunner(lambda d, j: {1, 2}).run(make_job())
    assert odd.error == "Bridge.InvalidOutput"


def test_a_handler_that_checks_its_context_stops_early() -> None:
    def patient(data: object, job: Job, context: JobContext) -> str:
        context.wait(10)
        return "stopped early" if context.is_cancelled else "ran to the end"

    context = JobContext(make_job())
    cancel_after(context, 0.1)
    started = time.monotonic()
    outcome = PythonRunner(patient).run(make_job(), context)
    assert time.monotonic() - started < 1
    assert outcome.interrupted_by == "task-closed" and not outcome.reportable


def test_a_deadline_reaches_a_cooperative_handler_as_a_timeout() -> None:
    def patient(data: object, job: Job, context: JobContext) -> str:
        context.wait(10)
        return "whatever"

    context = JobContext.with_timeout(make_job(), 0.2)
    outcome = PythonRunner(patient).run(make_job(), context)
    assert outcome.error == "Bridge.JobTimeout"
    assert "after 0.2 s" in (outcome.cause or "")


def test_what_a_cancelled_handler_returns_is_dropped() -> None:
    def oblivious(data: object, job: object) -> str:
        time.sleep(0.3)
        return "done anyway"

    context = JobContext(make_job())
    cancel_after(context, 0.05, "shutdown")
    outcome = PythonRunner(oblivious).run(make_job(), context)
    assert outcome.interrupted_by == "shutdown" and outcome.output is None


@pytest.mark.parametrize(
    "spec", ["nocolon", "json:", ":loads", "no_such_module:f", "json:no_such_function"]
)
def test_bad_handler_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="handler"):
        PythonRunner.from_spec(spec)


# --- commands ----------------------------------------------------------------------------------
def test_command_gets_input_on_stdin_and_json_stdout_is_the_output() -> None:
    command = (
        f"{PY} -c \"import json,sys; d=json.load(sys.stdin); print(json.dumps({{'got': d}}))\""
    )
    outcome = CommandRunner(command).run(make_job(input={"a": [1, 2]}))
    assert outcome.succeeded and outcome.output == {"got": {"a": [1, 2]}}


def test_command_sees_job_environment() -> None:
    command = 'printf "%s|%s|%s" "$BRIDGE_JOB_ID" "$BRIDGE_JOB_TYPE" "$BRIDGE_JOB_INPUT"'
    outcome = CommandRunner(command).run(make_job(type="render", input={"k": 1}))
    assert outcome.output == 'exec-1/RunJob/0/0|render|{"k": 1}'


def test_non_json_stdout_is_wrapped_as_a_string() -> None:
    outcome = CommandRunner("echo hello world").run(make_job())
    assert outcome.succeeded and outcome.output == "hello world"


@pytest.mark.parametrize(
    ("stdout", "problem"),
    [
        ('{"x": NaN}', "NaN at $.x"),
        ('{"items": [0, 1, 2, {"score": Infinity}]}', "Infinity at $.items[3].score"),
        ('{"n": 1e999}', "1e999 at $.n"),
        ('{"version": 2, "version": 1}', "duplicate key 'version'"),
        ("[" * 100_000 + "]" * 100_000, "nested deeper than 63 levels"),
    ],
)
def test_json_stdout_that_would_change_on_the_way_is_invalid_output(
    tmp_path: Path, stdout: str, problem: str
) -> None:
    """Never null in place of NaN, never one of two values: the task fails, naming why."""
    (tmp_path / "out.json").write_text(stdout)
    outcome = CommandRunner(f"cat {tmp_path / 'out.json'}").run(make_job())
    assert (outcome.succeeded, outcome.error) == (False, "Bridge.InvalidOutput")
    assert problem in str(outcome.cause)


def test_a_python_handler_returning_nan_or_infinity_fails_naming_the_path() -> None:
    outcome = PythonRunner(lambda data, job: float("nan")).run(make_job())
    assert (outcome.error, outcome.cause) == (
        "Bridge.InvalidOutput",
        "the output is not exact JSON: NaN at $: JSON has no NaN or Infinity",
    )
    outcome = PythonRunner(lambda data, job: {"rows": [{"x": float("inf")}]}).run(make_job())
    assert outcome.error == "Bridge.InvalidOutput" and "Infinity at $.rows[0].x" in str(
        outcome.cause
    )


def test_a_python_handler_returning_absurd_nesting_fails_without_recursion() -> None:
    deep: list[object] = []
    inner = deep
    for _ in range(100_000):
        inner.append([])
        inner = inner[0]  # type: ignore[assignment]
    outcome = PythonRunner(lambda data, job: deep).run(make_job())
    assert outcome.error == "Bridge.InvalidOutput" and "nested deeper than 63" in str(outcome.cause)


def test_empty_stdout_is_null_output() -> None:
    outcome = CommandRunner("true").run(make_job())
    assert outcome.succeeded and outcome.output is None


def test_non_utf8_stdout_is_invalid_output_naming_the_byte() -> None:
    outcome = CommandRunner(r"printf 'ok\377'").run(make_job())
    assert outcome.error == "Bridge.InvalidOutput"
    assert "byte offset 2" in (outcome.cause or "")


def test_huge_stdout_is_capped_and_fails_as_too_large() -> None:
    started = time.monotonic()
    outcome = CommandRunner("yes").run(make_job())
    assert outcome.error == "Bridge.OutputTooLarge"
    assert time.monotonic() - started < 2


def test_non_zero_exit_is_a_failure_with_the_stderr_tail() -> None:
    command = "echo early >&2; for i in $(seq 1 2000); do echo line$i >&2; done; exit 3"
    outcome = CommandRunner(command).run(make_job())
    assert not outcome.succeeded
    assert outcome.error == "Bridge.CommandFailed"
    assert "exit status 3" in (outcome.cause or "")
    assert "line2000" in (outcome.cause or "")
    assert "early" not in (outcome.cause or "")  # only the tail


def test_undecodable_stderr_is_replaced_not_fatal() -> None:
    outcome = CommandRunner(r"printf 'bad \377 byte' >&2; exit 1").run(make_job())
    assert outcome.error == "Bridge.CommandFailed" and "bad \ufffd byte" in (outcome.cause or "")


def test_exit_75_asks_for_a_retry() -> None:
    assert CommandRunner("exit 75").run(make_job()).error == "Bridge.Retryable"


def test_command_past_its_deadline_is_a_job_timeout() -> None:
    started = time.monotonic()
    outcome = CommandRunner("sleep 5").run(make_job(), JobContext.with_timeout(make_job(), 0.2))
    assert outcome.error == "Bridge.JobTimeout" and "stopped after" in (outcome.cause or "")
    assert time.monotonic() - started < 1


def test_cancelled_command_sends_no_result(tmp_path: Path) -> None:
    flag = tmp_path / "touched"
    context = JobContext(make_job())
    cancel_after(context, 0.2)
    outcome = CommandRunner(f"(sleep 1; touch {flag}) & sleep 30").run(make_job(), context)
    assert outcome.interrupted_by == "task-closed" and not outcome.reportable
    time.sleep(1.2)
    assert not flag.exists()


def test_a_shell_that_cannot_start_is_a_command_failure() -> None:
    outcome = CommandRunner("true", shell="/no/such/shell").run(make_job())
    assert outcome.error == "Bridge.CommandFailed" and "could not start" in (outcome.cause or "")


def test_empty_command_is_refused() -> None:
    with pytest.raises(ValueError):
        CommandRunner("  ")


@pytest.mark.parametrize(
    "command",
    [
        "true",
        "echo hi | tr a-z A-Z",
        "FOO=1 BAR=2 sleep 0",
        "(sleep 1; touch f) &",
        "if true; then echo; fi",
        "$TOOL --flag",
        f"{PY} -c pass",
        "cd /tmp && ls",
    ],
)
def test_check_accepts_runnable_commands(command: str) -> None:
    CommandRunner(command).check()


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("no-such-program-xyz --flag", "not found on PATH"),
        ("A=1 no-such-program-xyz", "not found on PATH"),
        ("/no/such/tool arg", "not an executable file"),
        ("./README.md", "not an executable file"),
        ("echo 'unbalanced", "cannot be parsed"),
    ],
)
def test_check_refuses_a_missing_program(command: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        CommandRunner(command).check()
    assert "\n" not in str(raised.value)


# --- factory -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("handler", "command", "isolation", "message"),
    [
        ("a:b", "true", "thread", "exactly one"),
        (None, None, "thread", "exactly one"),
        ("json:loads", None, "fork", "isolation"),
        (None, "no-such-program-xyz", "thread", "not found"),
        ("no_such_module:f", None, "process", "cannot be loaded"),
    ],
)
def test_build_runner_refuses_bad_configuration(
    handler: str | None, command: str | None, isolation: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_runner(handler, command, isolation, grace_s=1)


def test_build_runner_picks_the_runner() -> None:
    assert isinstance(build_runner("consumers.demo_handler:work", None, "thread", 1), PythonRunner)
    assert isinstance(
        build_runner("consumers.demo_handler:work", None, "process", 1), IsolatedPythonRunner
    )
    command = build_runner(None, "true", "thread", 2.5)
    assert isinstance(command, CommandRunner) and command.grace_s == 2.5


# --- Python handlers in their own process ------------------------------------------------------
HANDLERS = """
import os, subprocess, sys, time
from consumers import RetryableError

def echo(data, job):
    return {"got": data, "job_id": job.job_id}

def noisy(data, job):
    print("chatter through print")
    os.write(1, b"chatter straight to fd 1\\n")
    subprocess.run(["echo", "chatter from a child process"], check=True)
    return {"clean": True}

def boom(data, job):
    raise ValueError("bad input")

def flaky(data, job):
    raise RetryableError("try later")

def sleepy(data, job):
    with open(data["pid_file"], "w") as f:
        f.write(str(os.getpid()))
    time.sleep(30)

def infinite(data, job):
    return {"items": [{"score": 1.5}, {"score": float("inf")}]}

def vanishes(data, job):
    os._exit(4)

def polite(data, job, context):
    open(data["pid_file"], "w").close()
    context.wait(30)
    with open(data["marker"], "w") as f:
        f.write(str(context.reason))
    return "cleaned up"
"""


@pytest.fixture(scope="module")
def handlers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A handler module outside the package; the parent finds it through sys.path, the child
    through the PYTHONPATH the runner hands down."""
    directory = tmp_path_factory.mktemp("handlers")
    (directory / "isolated_handlers.py").write_text(textwrap.dedent(HANDLERS))
    sys.path.insert(0, str(directory))
    yield "isolated_handlers"
    sys.path.remove(str(directory))
    sys.modules.pop("isolated_handlers", None)


def test_isolated_handler_output(handlers: str) -> None:
    outcome = IsolatedPythonRunner(f"{handlers}:echo").run(make_job(input={"n": 2}))
    assert outcome.succeeded and outcome.output == {"got": {"n": 2}, "job_id": "exec-1/RunJob/0/0"}


def test_isolated_handler_prints_do_not_corrupt_the_output(handlers: str) -> None:
    outcome = IsolatedPythonRunner(f"{handlers}:noisy").run(make_job())
    assert outcome.succeeded and outcome.output == {"clean": True}


def test_isolated_handler_exception_is_a_failure(handlers: str) -> None:
    outcome = IsolatedPythonRunner(f"{handlers}:boom").run(make_job())
    assert outcome.error == "ValueError" and "bad input" in (outcome.cause or "")
    retry = IsolatedPythonRunner(f"{handlers}:flaky").run(make_job())
    assert retry.error == "Bridge.Retryable"


def test_isolated_handler_returning_infinity_fails_naming_the_path(handlers: str) -> None:
    outcome = IsolatedPythonRunner(f"{handlers}:infinite").run(make_job())
    assert outcome.error == "Bridge.InvalidOutput"
    assert "Infinity at $.items[1].score" in str(outcome.cause)


def test_isolated_handler_that_dies_without_reporting(handlers: str) -> None:
    outcome = IsolatedPythonRunner(f"{handlers}:vanishes").run(make_job())
    assert outcome.error == "Bridge.HandlerCrashed" and "exit status 4" in (outcome.cause or "")


def deadline_once_started(job: Job, started_file: Path, after_s: float = 0.2) -> JobContext:
    """A context whose deadline falls ``after_s`` after the handler wrote ``started_file``, so
    a slow interpreter start on a busy machine cannot make the test flaky."""
    context = JobContext.with_timeout(job, 10.0)

    def watch() -> None:
        while not started_file.exists() and not context.is_cancelled:
            time.sleep(0.01)
        context.deadline = time.monotonic() + after_s

    threading.Thread(target=watch, daemon=True).start()
    return context


def test_isolated_handler_past_its_deadline_is_killed(handlers: str, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    job = make_job(input={"pid_file": str(pid_file)})
    context = deadline_once_started(job, pid_file)
    outcome = IsolatedPythonRunner(f"{handlers}:sleepy", grace_s=1).run(job, context)
    assert outcome.error == "Bridge.JobTimeout"
    assert context.deadline is not None and time.monotonic() - context.deadline < 0.5
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_isolated_cooperative_handler_gets_to_clean_up(handlers: str, tmp_path: Path) -> None:
    marker, started = tmp_path / "marker", tmp_path / "started"
    job = make_job(input={"marker": str(marker), "pid_file": str(started)})
    context = deadline_once_started(job, started)
    outcome = IsolatedPythonRunner(f"{handlers}:polite", grace_s=5).run(job, context)
    assert outcome.error == "Bridge.JobTimeout" and "SIGKILL" not in (outcome.cause or "")
    assert context.deadline is not None and time.monotonic() - context.deadline < 1
    assert marker.read_text() == "timeout"


def test_isolated_runner_refuses_a_handler_it_cannot_import() -> None:
    with pytest.raises(ValueError, match="cannot be loaded"):
        IsolatedPythonRunner("no_such_module:f")


def test_a_failed_command_says_so_when_it_wrote_no_stderr() -> None:
    outcome = CommandRunner("exit 3").run(make_job())
    assert outcome.cause == "exit status 3; no stderr"
    outcome = CommandRunner("echo oops >&2; exit 3").run(make_job())
    assert outcome.cause == "exit status 3; stderr tail:\noops\n"


def one_argument(data: Any) -> Any:
    return data


def keyword_only(data: Any, *, job: Any) -> Any:
    return data


@pytest.mark.parametrize("name", ["one_argument", "keyword_only"])
def test_a_handler_with_the_wrong_signature_is_refused_at_start(name: str) -> None:
    with pytest.raises(ValueError, match=r"must take \(input, job\) or \(input, job, context\); "):
        load_handler(f"tests.unit.test_runner:{name}")


@pytest.mark.parametrize("spec", ["consumers.demo_handler:work", "builtins:print"])
def test_handlers_of_two_or_three_arguments_are_accepted(spec: str) -> None:
    assert callable(load_handler(spec))
