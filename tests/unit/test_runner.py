"""Runners turn whatever a job does into an Outcome and never raise."""

from __future__ import annotations

import sys

import pytest

from bridge.contract import MAX_OUTPUT_BYTES
from consumers.runner import CommandRunner, PythonRunner, RetryableError
from tests.conftest import make_job

PY = sys.executable


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


def test_output_that_is_too_large_or_not_json_fails_clearly() -> None:
    big = PythonRunner(lambda d, j: "x" * MAX_OUTPUT_BYTES).run(make_job())
    assert big.error == "Bridge.OutputTooLarge"
    odd = PythonRunner(lambda d, j: {1, 2}).run(make_job())
    assert odd.error == "Bridge.InvalidOutput"


@pytest.mark.parametrize(
    "spec", ["nocolon", "json:", ":loads", "no_such_module:f", "json:no_such_function"]
)
def test_bad_handler_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="handler"):
        PythonRunner.from_spec(spec)


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


def test_empty_stdout_is_null_output() -> None:
    outcome = CommandRunner("true").run(make_job())
    assert outcome.succeeded and outcome.output is None


def test_non_zero_exit_is_a_failure_with_the_stderr_tail() -> None:
    command = "echo early >&2; for i in $(seq 1 2000); do echo line$i >&2; done; exit 3"
    outcome = CommandRunner(command).run(make_job())
    assert not outcome.succeeded
    assert outcome.error == "Bridge.CommandFailed"
    assert "exit status 3" in (outcome.cause or "")
    assert "line2000" in (outcome.cause or "")
    assert "early" not in (outcome.cause or "")  # only the tail


def test_exit_75_asks_for_a_retry() -> None:
    assert CommandRunner("exit 75").run(make_job()).error == "Bridge.Retryable"


def test_command_timeout_is_a_failure() -> None:
    outcome = CommandRunner("sleep 5", timeout_s=0.2).run(make_job())
    assert outcome.error == "Bridge.CommandFailed" and "timed out" in (outcome.cause or "")


def test_empty_command_is_refused() -> None:
    with pytest.raises(ValueError):
        CommandRunner("  ")
