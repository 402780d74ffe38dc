"""The one template renders for both Map modes and carries what the product depends on."""

from __future__ import annotations

import json

import pytest

from bridge.state_machine import (
    JOBS_FAILED_ERROR,
    StateMachineParams,
    render,
    render_definition,
    template_text,
)


def definition(**overrides: object) -> dict:
    params = StateMachineParams(jobs_queue_url="https://sqs.example/123/jobs", **overrides)  # type: ignore[arg-type]
    return json.loads(render_definition(params))


def test_inline_map_fans_out_over_jobs_with_a_callback_task() -> None:
    fan_out = definition()["States"]["FanOut"]
    assert fan_out["Type"] == "Map"
    assert fan_out["ItemsPath"] == "$.jobs"
    assert fan_out["ItemProcessor"]["ProcessorConfig"] == {"Mode": "INLINE"}
    task = fan_out["ItemProcessor"]["States"]["RunJob"]
    assert task["Resource"] == "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
    assert task["Parameters"]["MessageBody"]["token.$"] == "$$.Task.Token"
    assert task["Parameters"]["QueueUrl"] == "https://sqs.example/123/jobs"
    assert task["Catch"][0]["ErrorEquals"] == ["States.ALL"]
    assert task["Retry"][0]["ErrorEquals"] == ["Bridge.Retryable"]


def test_parameters_reach_the_definition() -> None:
    fan_out = definition(
        heartbeat_seconds=3000, timeout_seconds=50_000, max_concurrency=7, retry_max_attempts=3
    )["States"]["FanOut"]
    task = fan_out["ItemProcessor"]["States"]["RunJob"]
    assert (task["HeartbeatSeconds"], task["TimeoutSeconds"]) == (3000, 50_000)
    assert task["Retry"][0]["MaxAttempts"] == 3
    assert fan_out["MaxConcurrency"] == 7


def test_heartbeat_seconds_is_off_by_default_so_a_backlog_cannot_time_jobs_out() -> None:
    task = definition()["States"]["FanOut"]["ItemProcessor"]["States"]["RunJob"]
    assert "HeartbeatSeconds" not in task
    assert task["TimeoutSeconds"] == 86_400


def test_a_heartbeat_shorter_than_the_queue_wait_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="task_heartbeat_s: HeartbeatSeconds 1200 is shorter"):
        StateMachineParams(jobs_queue_url="q", heartbeat_seconds=1200, max_queue_wait_seconds=1800)
    # The same heartbeat is fine when the scaling target keeps queue waits short.
    StateMachineParams(jobs_queue_url="q", heartbeat_seconds=1200, max_queue_wait_seconds=60)


def test_a_task_timeout_shorter_than_wait_plus_job_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="task_timeout_s"):
        StateMachineParams(
            jobs_queue_url="q",
            timeout_seconds=3600,
            max_queue_wait_seconds=1800,
            job_timeout_seconds=3600,
        )


def test_distributed_mode_runs_standard_child_executions() -> None:
    config = definition(map_mode="DISTRIBUTED")["States"]["FanOut"]["ItemProcessor"]
    assert config["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}


def test_map_index_comes_through_the_item_selector() -> None:
    selector = definition()["States"]["FanOut"]["ItemSelector"]
    assert selector["index.$"] == "$$.Map.Item.Index"


@pytest.mark.parametrize(
    "bad",
    [
        {"map_mode": "EXPRESS"},
        {"heartbeat_seconds": 0},
        {"heartbeat_seconds": 90_000, "timeout_seconds": 90_000},
        {"job_timeout_seconds": 50_000},
        {"failure_policy": "ignore"},
        {"tolerated_failure_count": 1},  # a tolerance needs failure_policy "fail"
        {"tolerated_failure_percentage": 10},
        {"failure_policy": "fail", "tolerated_failure_count": -1},
        {"failure_policy": "fail", "tolerated_failure_count": True},
        {"failure_policy": "fail", "tolerated_failure_percentage": 101},
        {"failure_policy": "fail", "tolerated_failure_percentage": 12.5},
    ],
)
def test_bad_parameters_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        StateMachineParams(jobs_queue_url="q", **bad)


def test_renderer_refuses_missing_and_unused_placeholders() -> None:
    values = StateMachineParams(jobs_queue_url="q").template_values()
    text = template_text()
    with pytest.raises(ValueError, match="missing"):
        render(text, {k: v for k, v in values.items() if k != "jobs_queue_url"})
    with pytest.raises(ValueError, match="unused"):
        render(text, {**values, "surprise": "1"})


def test_terraform_escape_renders_as_a_literal_placeholder() -> None:
    assert render('{"a": "$${kept}", "b": ${x}}', {"x": "1"}) == '{"a": "${kept}", "b": 1}'


def test_report_policy_ends_with_the_map_output_whatever_failed() -> None:
    """The default: the check after the Map tolerates every failure (a count of all jobs,
    100 %), and the execution's output is the Map's list of entries."""
    states = definition()["States"]
    fan_out = states["FanOut"]
    assert "End" not in fan_out and fan_out["Next"] == "CheckFailures"
    assert fan_out["ResultSelector"]["results.$"] == "$"
    assert fan_out["ResultSelector"]["tolerated"] == {
        "count.$": "States.ArrayLength($)",
        "percentage": 100,
    }
    assert states["Done"] == {"Type": "Succeed", "OutputPath": "$.results"}
    assert states["JobsFailed"]["Error"] == JOBS_FAILED_ERROR == "Bridge.JobsFailed"


@pytest.mark.parametrize(
    ("tolerances", "tolerated"),
    [
        ({}, {"count": 0, "percentage": 100}),
        ({"tolerated_failure_count": 3}, {"count": 3, "percentage": 100}),
        (
            {"tolerated_failure_percentage": 10},
            {"count.$": "States.ArrayLength($)", "percentage": 10},
        ),
        (
            {"tolerated_failure_count": 2, "tolerated_failure_percentage": 0},
            {"count": 2, "percentage": 0},
        ),
    ],
)
@pytest.mark.parametrize("mode", ["INLINE", "DISTRIBUTED"])
def test_fail_policy_renders_its_tolerances_for_both_map_modes(
    tolerances: dict, tolerated: dict, mode: str
) -> None:
    states = definition(failure_policy="fail", map_mode=mode, **tolerances)["States"]
    assert states["FanOut"]["ResultSelector"]["tolerated"] == tolerated
    # A failure inside the item processor is still data: the Map itself never fails.
    assert "Catch" not in states["FanOut"]
    assert "ToleratedFailureCount" not in states["FanOut"]


def test_the_percentage_check_is_exact_for_integer_percentages() -> None:
    """MeasureFailures takes the length of ArrayRange(1, 100 * failed, total), which is
    ceil(100 * failed / total), and fails when it exceeds the percentage p. That must mean
    exactly "failed > p % of total", within ArrayRange's 1,000-item limit on AWS."""
    measure = definition(failure_policy="fail", tolerated_failure_percentage=5)["States"][
        "MeasureFailures"
    ]["Parameters"]["percent.$"]
    assert measure == (
        "States.ArrayLength(States.ArrayRange(1, "
        "States.StringToJson(States.Format('{}00', $.failed)), $.total))"
    )
    for total in range(1, 121):
        for failed in range(1, total + 1):
            percent = len(range(1, int(f"{failed}00") + 1, total))  # ArrayRange's items
            assert percent <= 100
            for p in range(101):
                assert (percent > p) == (100 * failed > p * total), (failed, total, p)


# --------------------------------------------------------------------------
# The S3-fed Distributed Map (FanOutFromS3)
# --------------------------------------------------------------------------


def test_items_in_s3_route_to_the_s3_fed_map_and_jobs_to_the_array_map() -> None:
    states = definition()["States"]
    route = states["Route"]
    assert definition()["StartAt"] == "Route"
    assert route["Choices"] == [{"Variable": "$.items", "IsPresent": True, "Next": "FanOutFromS3"}]
    assert route["Default"] == "FanOut"


@pytest.mark.parametrize("mode", ["INLINE", "DISTRIBUTED"])
def test_the_s3_fed_map_is_distributed_reads_a_json_array_and_writes_results_to_s3(
    mode: str,
) -> None:
    s3_map = definition(map_mode=mode, max_concurrency=9)["States"]["FanOutFromS3"]
    assert s3_map["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "STANDARD",
    }
    assert s3_map["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket.$": "$.items.bucket", "Key.$": "$.items.key"},
    }
    assert s3_map["ResultWriter"] == {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {
            "Bucket.$": "$.items.bucket",
            "Prefix.$": "States.Format('results/{}', $$.Execution.Name)",
        },
    }
    assert s3_map["MaxConcurrency"] == 9
    assert s3_map["End"] is True
    assert "ItemsPath" not in s3_map


def test_both_maps_run_the_same_job_task_and_only_a_failed_job_differs() -> None:
    """ASL has no way to share states between two Maps, so the template holds two copies of
    the item processor: everything but JobFailed must be identical (the job message, timeouts,
    retries, the catch), and the ItemSelector too, so a job cannot tell which Map sent it."""
    for overrides in ({}, {"heartbeat_seconds": 3000, "timeout_seconds": 50_000}):
        states = definition(**overrides)["States"]
        array, s3 = states["FanOut"], states["FanOutFromS3"]
        assert array["ItemSelector"] == s3["ItemSelector"]
        a, b = array["ItemProcessor"], s3["ItemProcessor"]
        assert a["StartAt"] == b["StartAt"] == "RunJob"
        assert a["States"]["RunJob"] == b["States"]["RunJob"]
        assert a["States"].keys() == b["States"].keys() == {"RunJob", "JobFailed"}
    # The difference: a failed job is data in FanOut, a failed child execution here (with the
    # job's own error and cause), so the Map Run can count it.
    failed = definition()["States"]["FanOutFromS3"]["ItemProcessor"]["States"]["JobFailed"]
    assert failed["Type"] == "Fail"
    assert (failed["ErrorPath"], failed["CausePath"]) == ("$.error.Error", "$.error.Cause")


@pytest.mark.parametrize(
    ("policy", "fields"),
    [
        ({}, {"ToleratedFailurePercentage": 100}),
        ({"failure_policy": "fail"}, {"ToleratedFailureCount": 0}),
        ({"failure_policy": "fail", "tolerated_failure_count": 3}, {"ToleratedFailureCount": 3}),
        (
            {"failure_policy": "fail", "tolerated_failure_percentage": 10},
            {"ToleratedFailurePercentage": 10},
        ),
        (
            {
                "failure_policy": "fail",
                "tolerated_failure_count": 2,
                "tolerated_failure_percentage": 25,
            },
            {"ToleratedFailureCount": 2, "ToleratedFailurePercentage": 25},
        ),
        (
            {
                "failure_policy": "fail",
                "tolerated_failure_count": 2,
                "tolerated_failure_percentage": 0,
            },
            {"ToleratedFailureCount": 0},
        ),
    ],
)
def test_the_failure_policy_becomes_the_map_runs_own_tolerance(policy: dict, fields: dict) -> None:
    states = definition(**policy)["States"]
    s3_map = states["FanOutFromS3"]
    rendered = {k: v for k, v in s3_map.items() if k.startswith("Tolerated")}
    assert rendered == fields
    # Exceeding it fails the execution with the same error as the array Map's check.
    catch = s3_map["Catch"]
    assert catch == [
        {
            "ErrorEquals": ["States.ExceedToleratedFailureThreshold"],
            "ResultPath": "$.error",
            "Next": "DescribeToleranceExceeded",
        }
    ]
    assert states["DescribeToleranceExceeded"]["Next"] == "JobsFailed"
