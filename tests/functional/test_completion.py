"""The completion handler against moto in-process: real tokens from real executions.

Throttling, 5xx, slow calls and ``InvalidOutput`` (which moto never answers) are injected into
the real client through botocore's ``before-call`` event: the hook answers chosen calls itself
and lets every other call through to moto.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from bridge import completion as completion_module
from bridge.aws import Clients
from bridge.completion import Completion, build_lambda_clients, make_handler
from bridge.config import BridgeConfig
from bridge.contract import CLIP_MARKER, Job, encode, mask_token, parse_job
from bridge.local_stack import compat
from bridge.local_stack.compat import stepfunctions as sfn_patches
from bridge.local_stack.event_source import LocalLambdaContext
from bridge.quarantine import REASON_ATTRIBUTE
from tests.support.aws import depth, receive_all, start
from tests.support.messages import make_result, sqs_event
from tests.support.polling import wait_for_execution

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:callback-bridge-results"
#: (HTTP status, error code, message) for a call the hook answers; None lets it through.
Answer = tuple[int, str, str] | None


def event(*bodies: str) -> dict[str, Any]:
    return sqs_event(list(bodies), QUEUE_ARN)


def invoke(completion: Completion, *bodies: str, timeout_s: float = 10) -> dict[str, Any]:
    return make_handler(completion)(event(*bodies), LocalLambdaContext(timeout_s=timeout_s))


def failed_ids(response: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def inject(client: Any, operation: str, answer: Callable[[dict[str, Any]], Answer]) -> None:
    """Let ``answer`` (given the call's parameters) answer ``operation`` calls of ``client``."""

    def hook(params: dict[str, Any], **_: Any) -> Any:
        reply = answer(json.loads(params["body"]))
        if reply is None:
            return None  # the real call goes ahead
        status, code, message = reply
        parsed = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        return AWSResponse("https://states.invalid", status, {}, None), parsed

    client.meta.events.register(f"before-call.stepfunctions.{operation}", hook)


def first_calls(n: int, reply: tuple[int, str, str]) -> Callable[[dict[str, Any]], Answer]:
    """Answer the first ``n`` calls with ``reply``, let the rest through."""
    calls = iter(range(n))
    return lambda _: reply if next(calls, None) is not None else None


THROTTLED = (400, "ThrottlingException", "Rate exceeded")
UNAVAILABLE = (503, "ServiceUnavailable", "Service unavailable")


def jobs_of(aws: Clients, stack: dict[str, str], count: int) -> list[Job]:
    messages = receive_all(aws.sqs, stack["jobs_queue_url"], count)
    return sorted((parse_job(m["Body"]) for m in messages), key=lambda j: j.execution_arn)


def one_job_each(aws: Clients, stack: dict[str, str], count: int) -> tuple[list[str], list[Job]]:
    """``count`` executions of one job each; returns their ARNs and jobs, in the same order."""
    arns = sorted(
        start(aws.sfn, stack["state_machine_arn"], [{"n": i}], name=f"run-{i}")
        for i in range(count)
    )
    return arns, jobs_of(aws, stack, count)


def succeeded(job: Job, **output: Any) -> str:
    return encode(make_result(token=job.token, job_id=job.job_id, output=output or {"ok": 1}))


def status(aws: Clients, arn: str) -> str:
    return str(aws.sfn.describe_execution(executionArn=arn)["status"])


def job_output(aws: Clients, arn: str) -> dict[str, Any]:
    described = wait_for_execution(aws.sfn, arn)
    assert described["status"] == "SUCCEEDED", described
    return dict(json.loads(described["output"])[0])


@pytest.fixture(autouse=True)
def callbacks_as_on_aws() -> Iterator[None]:
    """moto's callbacks as the embedded stack patches them: SendTaskFailure keeps its cause,
    a closed task's token answers TaskTimedOut."""
    compat.apply(sfn_patches.PATCHES)
    yield
    compat.revert()


@dataclass
class Emitted:
    metrics: dict[str, float]
    text: str


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> Any:
    """Turn the EMF metrics on; ``emitted()`` returns the metrics and everything printed."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    completion_module.metrics.clear_metrics()
    capfd.readouterr()

    def read() -> Emitted:
        text = capfd.readouterr().out
        totals: dict[str, float] = {}
        for line in text.splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if not isinstance(doc, dict) or "_aws" not in doc:
                continue
            for directive in doc["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    value = doc[metric["Name"]]
                    total = sum(value) if isinstance(value, list) else value
                    totals[metric["Name"]] = totals.get(metric["Name"], 0) + total
        return Emitted(totals, text)

    return read


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at teardown so a hook that holds a call back lets its thread finish."""
    event = threading.Event()
    yield event
    event.set()


def test_results_complete_the_execution(aws: Clients, stack: dict[str, str], emitted: Any) -> None:
    execution = start(aws.sfn, stack["state_machine_arn"], [{"n": 0}, {"n": 1}])
    jobs = sorted(jobs_of(aws, stack, 2), key=lambda job: job.map_index)
    ok = make_result(token=jobs[0].token, job_id=jobs[0].job_id, output={"answer": 42})
    failed = make_result(
        token=jobs[1].token,
        job_id=jobs[1].job_id,
        outcome="failed",
        output=None,
        error="RenderError",
        cause="disk full",
    )
    response = invoke(
        Completion(aws.sfn, aws.sqs, stack["results_dlq_url"]), encode(ok), encode(failed)
    )
    assert response == {"batchItemFailures": []}
    described = wait_for_execution(aws.sfn, execution)
    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    assert output[0] == {"status": "SUCCEEDED", "output": {"answer": 42}}
    assert output[1]["status"] == "FAILED" and output[1]["error"] == "RenderError"
    metrics = emitted().metrics
    assert metrics["JobsSucceeded"] == 1 and metrics["JobsFailed"] == 1
    assert "EndToEndLatency" in metrics


def test_malformed_results_go_to_the_dlq_with_a_reason(
    aws: Clients, stack: dict[str, str], emitted: Any
) -> None:
    no_token = json.loads(encode(make_result()))
    del no_token["token"]
    response = invoke(
        Completion(aws.sfn, aws.sqs, stack["results_dlq_url"]),
        "{not json",
        json.dumps(no_token),
        json.dumps({**no_token, "version": 9}),
    )
    assert response == {"batchItemFailures": []}  # acknowledged: retrying cannot help
    dead = receive_all(aws.sqs, stack["results_dlq_url"], 3)
    reasons = sorted(m["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"] for m in dead)
    assert len(dead) == 3
    assert any("body" in r for r in reasons)
    assert any("token" in r for r in reasons)
    assert any("version" in r for r in reasons)
    assert all("no readable token" in r for r in reasons)
    assert {m["Body"] for m in dead} >= {"{not json"}  # the body is kept as it was
    assert emitted().metrics["MalformedResults"] == 3


def test_a_malformed_result_with_a_readable_token_fails_its_task_and_is_kept(
    aws: Clients, stack: dict[str, str], emitted: Any
) -> None:
    execution = start(aws.sfn, stack["state_machine_arn"], [{"n": 0}])
    (job,) = jobs_of(aws, stack, 1)
    broken = json.loads(succeeded(job))
    broken["outcome"] = "maybe"
    response = invoke(Completion(aws.sfn, aws.sqs, stack["results_dlq_url"]), json.dumps(broken))
    assert response == {"batchItemFailures": []}
    output = job_output(aws, execution)
    assert output["error"] == "Bridge.InvalidResult"
    assert "outcome" in output["cause"] and job.job_id in output["cause"]
    (dead,) = receive_all(aws.sqs, stack["results_dlq_url"], 1)
    assert dead["Body"] == json.dumps(broken)
    reason = dead["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert "outcome" in reason and "task failed with Bridge.InvalidResult" in reason
    metrics = emitted().metrics
    assert metrics["MalformedResults"] == 1 and metrics["InvalidResults"] == 1


def test_without_a_dlq_url_a_malformed_result_is_left_for_the_redrive_policy(aws: Clients) -> None:
    response = invoke(Completion(aws.sfn, aws.sqs, None), "garbage")
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}


def test_stale_tokens_are_acknowledged_counted_and_logged_masked(
    aws: Clients, stack: dict[str, str], emitted: Any, caplog: pytest.LogCaptureFixture
) -> None:
    execution = start(aws.sfn, stack["state_machine_arn"], [{"n": 0}])
    (job,) = jobs_of(aws, stack, 1)
    handler = Completion(aws.sfn, aws.sqs, stack["results_dlq_url"])
    assert invoke(handler, succeeded(job)) == {"batchItemFailures": []}
    assert job_output(aws, execution)["status"] == "SUCCEEDED"
    emitted()  # forget the first delivery
    # The same result delivered again (closed task) and one whose token never existed.
    unknown = encode(make_result(token="no-such-token-" + "y" * 30))
    assert invoke(handler, succeeded(job), unknown) == {"batchItemFailures": []}
    assert depth(aws.sqs, stack["results_dlq_url"]) == 0
    seen = emitted()
    assert seen.metrics["StaleResults"] == 2
    assert "JobsSucceeded" not in seen.metrics
    logged = [vars(r) for r in caplog.records if r.getMessage().startswith("task already closed")]
    assert {entry["token"] for entry in logged} >= {mask_token(job.token)}
    assert job.token not in repr(logged) + seen.text  # a bearer credential is never logged


def test_invalid_output_from_step_functions_fails_the_task_with_the_reason(
    aws: Clients, stack: dict[str, str], emitted: Any
) -> None:
    execution = start(aws.sfn, stack["state_machine_arn"], [{"n": 0}])
    (job,) = jobs_of(aws, stack, 1)
    reason = "Invalid JSON: " + "x" * 40_000 + " at offset 7"
    inject(aws.sfn, "SendTaskSuccess", lambda _: (400, "InvalidOutput", reason))
    response = invoke(Completion(aws.sfn, aws.sqs, stack["results_dlq_url"]), succeeded(job))
    assert response == {"batchItemFailures": []}
    output = job_output(aws, execution)
    assert output["error"] == "Bridge.InvalidOutput"
    cause = output["cause"]
    assert len(cause) <= 32_768
    assert cause.startswith(f"Step Functions refused the output of job {job.job_id}: Invalid JSON")
    assert cause.endswith(" at offset 7")  # the tail survives the cut
    assert CLIP_MARKER.split("{")[0] in cause and "characters removed by callback-bridge" in cause
    assert emitted().metrics["InvalidOutputs"] == 1


def test_an_output_json_cannot_carry_fails_without_calling_step_functions(
    aws: Clients, stack: dict[str, str]
) -> None:
    execution = start(aws.sfn, stack["state_machine_arn"], [{"n": 0}])
    (job,) = jobs_of(aws, stack, 1)
    body = json.loads(succeeded(job))
    body["output"] = {"ratio": float("nan")}  # Python's json writes NaN; JSON has no NaN
    response = invoke(Completion(aws.sfn, aws.sqs, stack["results_dlq_url"]), json.dumps(body))
    assert response == {"batchItemFailures": []}
    output = job_output(aws, execution)
    assert output["error"] == "Bridge.InvalidOutput" and "NaN" in output["cause"]


def test_throttling_is_retried_within_the_invocation(
    aws: Clients, stack: dict[str, str], emitted: Any
) -> None:
    execution = start(aws.sfn, stack["state_machine_arn"], [{"n": 0}])
    (job,) = jobs_of(aws, stack, 1)
    inject(aws.sfn, "SendTaskSuccess", first_calls(2, THROTTLED))
    response = invoke(Completion(aws.sfn, aws.sqs, stack["results_dlq_url"]), succeeded(job))
    assert response == {"batchItemFailures": []}
    assert job_output(aws, execution) == {"status": "SUCCEEDED", "output": {"ok": 1}}
    metrics = emitted().metrics
    assert metrics["ThrottledCallbacks"] == 2 and metrics["CallbackRetries"] == 2


def test_a_5xx_that_persists_is_returned_to_sqs_within_the_remaining_time(
    aws: Clients, stack: dict[str, str], emitted: Any
) -> None:
    arns, (ok, unlucky) = one_job_each(aws, stack, 2)
    inject(
        aws.sfn,
        "SendTaskSuccess",
        lambda p: UNAVAILABLE if p["taskToken"] == unlucky.token else None,
    )
    began = time.monotonic()
    response = invoke(
        Completion(aws.sfn, aws.sqs, stack["results_dlq_url"]),
        succeeded(ok),
        succeeded(unlucky),
        timeout_s=2.0,  # 1 s of it is the safety margin
    )
    assert time.monotonic() - began < 2.0  # the invocation ends before its timeout
    assert failed_ids(response) == ["m-1"]
    assert job_output(aws, arns[0])["status"] == "SUCCEEDED"
    assert status(aws, arns[1]) == "RUNNING"  # its task still waits for the retried result
    metrics = emitted().metrics
    assert metrics["TransientErrors"] >= 2 and metrics["ResultsRetried"] == 1


def test_a_throttled_result_succeeds_when_sqs_delivers_it_again(
    aws: Clients, stack: dict[str, str]
) -> None:
    (arn,), (job,) = one_job_each(aws, stack, 1)
    throttling = threading.Event()
    throttling.set()
    inject(aws.sfn, "SendTaskSuccess", lambda _: THROTTLED if throttling.is_set() else None)
    handler = Completion(aws.sfn, aws.sqs, stack["results_dlq_url"])
    assert failed_ids(invoke(handler, succeeded(job), timeout_s=1.5)) == ["m-0"]
    throttling.clear()  # the service recovers before the next delivery
    assert invoke(handler, succeeded(job), timeout_s=1.5) == {"batchItemFailures": []}
    assert job_output(aws, arn)["status"] == "SUCCEEDED"


def test_one_slow_record_does_not_sink_the_rest(
    aws: Clients, stack: dict[str, str], release: threading.Event, emitted: Any
) -> None:
    arns, jobs = one_job_each(aws, stack, 4)
    slow = jobs[2]

    def hold_slow(params: dict[str, Any]) -> Answer:
        if params["taskToken"] != slow.token:
            return None
        release.wait(5)  # a hung connection; never lets the call through afterwards
        return THROTTLED

    inject(aws.sfn, "SendTaskSuccess", hold_slow)
    began = time.monotonic()
    response = invoke(
        Completion(aws.sfn, aws.sqs, stack["results_dlq_url"]),
        *(succeeded(job) for job in jobs),
        timeout_s=2.0,
    )
    assert time.monotonic() - began < 2.0
    assert failed_ids(response) == ["m-2"]
    assert [status(aws, arn) for arn in arns] == ["SUCCEEDED", "SUCCEEDED", "RUNNING", "SUCCEEDED"]
    assert emitted().metrics["DeadlineExceeded"] == 1


def test_records_not_started_before_the_deadline_are_returned_to_sqs(
    aws: Clients, stack: dict[str, str], release: threading.Event
) -> None:
    arns, (slow, waiting) = one_job_each(aws, stack, 2)
    inject(
        aws.sfn,
        "SendTaskSuccess",
        lambda p: (release.wait(5), THROTTLED)[1] if p["taskToken"] == slow.token else None,
    )
    response = invoke(
        Completion(aws.sfn, aws.sqs, stack["results_dlq_url"], workers=1),
        succeeded(slow),
        succeeded(waiting),
        timeout_s=1.5,
    )
    assert failed_ids(response) == ["m-0", "m-1"]  # neither deleted unprocessed
    release.set()
    assert [status(aws, arn) for arn in arns] == ["RUNNING", "RUNNING"]


def test_output_over_the_step_functions_limit_fails_the_task(
    aws: Clients, stack: dict[str, str]
) -> None:
    execution = start(aws.sfn, stack["state_machine_arn"], [{"n": 0}])
    (job,) = jobs_of(aws, stack, 1)
    huge = make_result(token=job.token, job_id=job.job_id, output="x" * 300_000)
    invoke(Completion(aws.sfn, aws.sqs, stack["results_dlq_url"]), encode(huge))
    assert job_output(aws, execution)["error"] == "Bridge.OutputTooLarge"


def test_the_lambdas_clients_leave_retrying_to_the_handler() -> None:
    config = BridgeConfig(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        access_key_id="testing",
        secret_access_key="testing",
        source="test",
    )
    clients = build_lambda_clients(config)
    for client in (clients.sfn, clients.sqs):
        assert client.meta.config.retries["total_max_attempts"] == 1
        assert client.meta.config.read_timeout <= 5
