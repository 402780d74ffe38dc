"""What an AWS error means to the bridge: one home for error codes, shared by the two Lambdas
and the worker.

Three questions are asked of every failed call, and each has one answer here:

* is the task over? (:data:`TASK_CLOSED_ERRORS`: a callback or heartbeat with that token can
  never succeed, so the message is acknowledged, not retried);
* should we slow down and try again? (:data:`THROTTLING_ERRORS`, HTTP 429);
* could the same call succeed in a moment? (:data:`TRANSIENT_ERRORS`, 5xx, network errors).

The throttling list is botocore's ``standard`` retry mode's plus the codes KMS and SQS use for
"slow down" (``KmsThrottlingException``, ``KmsThrottled``, ``OverLimit``), so a call our own
deadline-aware retries make (:mod:`bridge.retrying`) is retried exactly when botocore's would be.
"""

from __future__ import annotations

from typing import Any, Literal

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

#: Step Functions answers meaning "this task is over" (timed out, stopped, already completed):
#: retrying a callback or heartbeat with that token can never succeed.
TASK_CLOSED_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})

#: Error codes that mean "slow down": botocore's standard retry mode list, plus KMS's and SQS's.
THROTTLING_ERRORS = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "KmsThrottlingException",
        "KmsThrottled",
        "OverLimit",
    }
)

#: Error codes a retry can fix although they are not throttling (whatever their HTTP status).
TRANSIENT_ERRORS = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
    }
)

#: Every error code a later attempt of the same request can fix.
RETRYABLE_ERRORS = THROTTLING_ERRORS | TRANSIENT_ERRORS

RetryKind = Literal["throttled", "transient"]


def error_code(exc: BaseException, default: str = "") -> str:
    """The AWS error code of ``exc`` (``ThrottlingException``...), ``default`` if it has none."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or default)
    return default


def http_status(exc: BaseException) -> int:
    """The HTTP status AWS answered ``exc`` with, 0 when there was no answer."""
    if isinstance(exc, ClientError):
        return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return 0


def describe(exc: BaseException) -> str:
    """``Code: message`` for an AWS error, ``Type: text`` for anything else (for logs)."""
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message", "")
        return f"{error_code(exc)}: {message}" if message else error_code(exc)
    return f"{type(exc).__name__}: {exc}"


def is_task_closed(exc: BaseException) -> bool:
    """True when Step Functions says the task is over (see :data:`TASK_CLOSED_ERRORS`)."""
    return error_code(exc) in TASK_CLOSED_ERRORS


def retry_kind(exc: BaseException) -> RetryKind | None:
    """``"throttled"``, ``"transient"`` (5xx, network) or ``None`` (retrying cannot help)."""
    if isinstance(exc, ClientError):
        code, status = error_code(exc), http_status(exc)
        if code in THROTTLING_ERRORS or status == 429:
            return "throttled"
        if status >= 500 or code in TRANSIENT_ERRORS:
            return "transient"
        return None
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return "transient"
    return None


#: Error codes meaning "there is no such resource". S3 answers a HEAD request without a body,
#: so botocore's code is then the bare HTTP status.
NOT_FOUND_ERRORS = frozenset(
    {
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "NoSuchBucket",
        "404",
        "NotFound",
        "ExecutionDoesNotExist",
        "StateMachineDoesNotExist",
        "ResourceNotFound",
    }
)
#: Error codes meaning "the resource may exist, but these credentials may not use it".
ACCESS_DENIED_ERRORS = frozenset({"AccessDenied", "AccessDeniedException", "403", "Forbidden"})

#: Request parameters that name what a call is about, most specific first. Never the task
#: token: a message naming the resource must not leak one.
TARGET_PARAMS = ("QueueUrl", "Bucket", "executionArn", "mapRunArn", "stateMachineArn", "SourceArn")
_TARGET_KEY = "BridgeTarget"
_TARGET_PARAM_KEY = "BridgeTargetParam"


def _remember_target(params: Any, context: Any, **_: Any) -> None:
    if not isinstance(params, dict) or not isinstance(context, dict):
        return
    for name in TARGET_PARAMS:
        value = params.get(name)
        if isinstance(value, str) and value:
            context[_TARGET_KEY] = (name, value)
            return


def _attach_target(parsed: Any, context: Any, **_: Any) -> None:
    error = parsed.get("Error") if isinstance(parsed, dict) else None
    found = context.get(_TARGET_KEY) if isinstance(context, dict) else None
    if isinstance(error, dict) and found:
        error.setdefault(_TARGET_PARAM_KEY, found[0])
        error.setdefault(_TARGET_KEY, found[1])


def name_targets(events: Any) -> None:
    """Make every AWS error of clients built from ``events`` (a botocore session, before it
    builds them) carry the queue URL, bucket or ARN its request named: AWS's own message for a
    missing queue ("The specified queue does not exist.") does not say which one, and an
    operator with three queue URLs configured must not have to guess (:func:`target`)."""
    events.register("before-parameter-build", _remember_target)
    events.register("after-call", _attach_target)


def target(exc: BaseException) -> tuple[str, str] | None:
    """``(parameter, value)`` of what the failed call was about (``("QueueUrl", "https://...")``),
    when the client was built by :mod:`bridge.aws` (see :func:`name_targets`)."""
    if not isinstance(exc, ClientError):
        return None
    error = exc.response.get("Error", {})
    value, param = error.get(_TARGET_KEY), error.get(_TARGET_PARAM_KEY)
    return (str(param), str(value)) if value and param else None


def problem(exc: BaseException) -> str:
    """What is wrong with the resource a call was about, in words first and AWS's code after:
    ``does not exist (NoSuchBucket)``, ``access denied (AccessDenied: ...)``, else
    ``cannot be used (Code: message)``; for a failure without an AWS answer,
    ``does not answer (...)``."""
    if not isinstance(exc, ClientError):
        return f"does not answer ({exc})"
    code = error_code(exc)
    if code in NOT_FOUND_ERRORS:
        return f"does not exist ({code})"
    if code in ACCESS_DENIED_ERRORS:
        return f"access denied ({describe(exc)})"
    return f"cannot be used ({describe(exc)})"
