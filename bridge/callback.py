"""The callback a result asks for: which Step Functions call, with what, and how it is counted.

One place decides it for the completion handler and the dead-letter handler (which delivers a
result that reached the results DLQ if it still can): a failed result fails the task with its own
error and cause (clipped to Step Functions' limits, head and tail kept); a succeeded one sends
its output unless the output is not JSON Step Functions accepts (``NaN``/``Infinity``) or is too
large, which fail the task with ``Bridge.InvalidOutput`` / ``Bridge.OutputTooLarge`` instead.
How the call is made (retries, deadlines) is the caller's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.contract import (
    ERROR_INVALID_OUTPUT,
    ERROR_OUTPUT_TOO_LARGE,
    MAX_CAUSE_CHARS,
    MAX_ERROR_CHARS,
    MAX_OUTPUT_BYTES,
    Result,
    clip,
    output_json,
    payload_problem,
)


@dataclass(frozen=True)
class Callback:
    #: "send_task_success" or "send_task_failure" (the boto3 method name).
    operation: str
    arguments: dict[str, str]
    #: The completion metric that counts this ending.
    metric: str

    def send(self, sfn: Any) -> Any:
        # Spelled out (no getattr) so the IAM derivation in tests/infra sees both calls.
        if self.operation == "send_task_success":
            return sfn.send_task_success(**self.arguments)
        return sfn.send_task_failure(**self.arguments)


def failure(token: str, error: str, cause: str, metric: str = "JobsFailed") -> Callback:
    return Callback(
        "send_task_failure",
        {
            "taskToken": token,
            "error": clip(error, MAX_ERROR_CHARS),
            "cause": clip(cause, MAX_CAUSE_CHARS),
        },
        metric,
    )


def callback_for(result: Result) -> Callback:
    """What to tell Step Functions for ``result``."""
    token = result.token
    if result.outcome == "failed":
        return failure(token, result.error or "", result.cause or "")
    try:
        output = output_json(result.output)
        size = len(output.encode("utf-8"))
    except ValueError as exc:  # NaN / Infinity / a lone surrogate: JSON has no such thing
        why = payload_problem(result.output) or str(exc)
        cause = f"the output of job {result.job_id} is not exact JSON: {why}"
        return failure(token, ERROR_INVALID_OUTPUT, cause, "InvalidOutputs")
    if size > MAX_OUTPUT_BYTES:
        cause = f"output is {size} bytes, limit {MAX_OUTPUT_BYTES}"
        return failure(token, ERROR_OUTPUT_TOO_LARGE, cause, "OutputsTooLarge")
    return Callback("send_task_success", {"taskToken": token, "output": output}, "JobsSucceeded")


def invalid_output(result: Result, message: str) -> Callback:
    """Step Functions refused the output (``InvalidOutput``): fail the task saying why."""
    cause = f"Step Functions refused the output of job {result.job_id}: {message}"
    return failure(result.token, ERROR_INVALID_OUTPUT, cause, "InvalidOutputs")
