"""The one home for AWS error codes (bridge/errors.py), shared by both Lambdas and the worker."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.retries.standard import ThrottledRetryableChecker, TransientRetryableChecker

from bridge import aws, errors
from consumers import keepalive, results


def client_error(code: str, status: int = 400, message: str = "") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "SendTaskSuccess")


def test_the_throttling_codes_include_every_code_botocore_standard_mode_retries() -> None:
    """Our own retries (the Lambdas') retry whatever botocore's would."""
    botocore_codes = set(ThrottledRetryableChecker._THROTTLED_ERROR_CODES)
    assert botocore_codes <= errors.THROTTLING_ERRORS
    transient = set(TransientRetryableChecker._TRANSIENT_ERROR_CODES)
    assert transient <= errors.RETRYABLE_ERRORS


def test_the_worker_and_the_lambdas_share_one_set_and_one_home_for_closed_tasks() -> None:
    assert results.TRANSIENT_REQUEST_ERRORS is errors.RETRYABLE_ERRORS
    assert keepalive.TASK_CLOSED_ERRORS is errors.TASK_CLOSED_ERRORS


def test_error_code_reads_client_errors_and_defaults_otherwise() -> None:
    assert errors.error_code(client_error("TaskTimedOut")) == "TaskTimedOut"
    assert errors.error_code(ValueError("x")) == ""
    assert errors.error_code(ValueError("x"), "ClientError") == "ClientError"
    assert errors.error_code(ClientError({}, "Op"), "ClientError") == "ClientError"


def test_describe_names_the_code_and_message() -> None:
    assert errors.describe(client_error("InvalidOutput", message="bad")) == "InvalidOutput: bad"
    assert errors.describe(client_error("InvalidOutput")) == "InvalidOutput"
    assert errors.describe(KeyError("k")) == "KeyError: 'k'"


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (client_error("ThrottlingException"), "throttled"),
        (client_error("KmsThrottled"), "throttled"),
        (client_error("OverLimit"), "throttled"),
        (client_error("Whatever", 429), "throttled"),
        (client_error("ServiceUnavailable", 503), "transient"),
        (client_error("InternalFailure", 400), "transient"),
        (client_error("RequestTimeout", 400), "transient"),
        (EndpointConnectionError(endpoint_url="https://states"), "transient"),
        (ReadTimeoutError(endpoint_url="https://states"), "transient"),
        (client_error("TaskTimedOut"), None),
        (client_error("InvalidOutput"), None),
        (client_error("ValidationException"), None),
        (ValueError("a bug"), None),
    ],
)
def test_retry_kind(exc: BaseException, kind: str | None) -> None:
    assert errors.retry_kind(exc) == kind


def test_a_closed_task_is_recognised_by_its_code() -> None:
    for code in ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist"):
        assert errors.is_task_closed(client_error(code))
    assert not errors.is_task_closed(client_error("ThrottlingException"))
    assert not errors.is_task_closed(RuntimeError("TaskTimedOut"))


def test_the_lambdas_clients_make_one_attempt_with_short_timeouts_and_no_autoscaling() -> None:
    from bridge.config import BridgeConfig

    config = BridgeConfig(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        access_key_id="testing",
        secret_access_key="testing",
        source="test",
    )
    clients = aws.build_lambda_clients(config, pool_size=3)
    assert clients.autoscaling is None and clients.ec2 is None and clients.s3 is None
    for client in (clients.sfn, clients.sqs):
        assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
        assert client.meta.config.connect_timeout <= 2
        assert client.meta.config.read_timeout <= 5
        assert client.meta.config.max_pool_connections == 3
    long_running = aws.build_clients(config, autoscaling=False)
    assert long_running.sqs.meta.config.retries["total_max_attempts"] == 7  # 6 retries
    assert long_running.sqs.meta.config.read_timeout > 20  # outlasts a 20 s long poll


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (client_error("AWS.SimpleQueueService.NonExistentQueue"), "does not exist ("),
        (client_error("404", 404, "Not Found"), "does not exist (404)"),
        (client_error("AccessDenied", 403, "no"), "access denied (AccessDenied: no)"),
        (client_error("InvalidParameterValue", 400, "bad"), "cannot be used ("),
        (EndpointConnectionError(endpoint_url="http://x"), "does not answer ("),
    ],
)
def test_a_problem_is_said_in_words_first(exc: BaseException, said: str) -> None:
    assert errors.problem(exc).startswith(said)


def test_the_target_of_an_error_comes_from_its_request_never_its_token() -> None:
    """name_targets' two hooks: the request's QueueUrl reaches the error; a task token never
    does (SendTaskFailure names no target)."""
    handlers: dict[str, Any] = {}
    errors.name_targets(type("Events", (), {"register": lambda _, e, h: handlers.update({e: h})})())
    for params in ({"QueueUrl": "https://q/1", "ReceiptHandle": "r"}, {"taskToken": "secret"}):
        context: dict[str, Any] = {}
        handlers["before-parameter-build"](params=params, model=None, context=context)
        parsed: Any = {"Error": {"Code": "X", "Message": "m"}}
        handlers["after-call"](http_response=None, parsed=parsed, model=None, context=context)
        found = errors.target(ClientError(parsed, "Op"))
        assert found == (("QueueUrl", "https://q/1") if "QueueUrl" in params else None)
        assert "secret" not in str(parsed)
