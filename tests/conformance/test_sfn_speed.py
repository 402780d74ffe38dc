"""Canaries for the Step Functions speed patches: they count work, not seconds (machines here
are shared and noisy; the timings live in benchmarks/ and docs/local-stack.md)."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from jsonpath_ng.parser import JsonPathParser

from tests.conformance.conftest import Target, callback_task, eventually, map_over_items

pytestmark = pytest.mark.conformance

JOBS = 20


def fan_out(target: Target, name: str) -> None:
    """A Map of JOBS callback tasks shaped like the bridge's; waits until all are queued."""
    queue = target.queue(f"{name}-q")
    body = {"index.$": "$.index", "input.$": "$.item", "id.$": "States.Format('{}', $.index)"}
    arn = target.state_machine(
        name,
        map_over_items(
            "T",
            {"T": callback_task(queue, body, End=True)},
            ItemSelector={"index.$": "$$.Map.Item.Index", "item.$": "$$.Map.Item.Value"},
        ),
    )
    target.sfn.start_execution(stateMachineArn=arn, input=json.dumps({"items": list(range(JOBS))}))

    def queued() -> bool:
        attributes = target.sqs.get_queue_attributes(
            QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) >= JOBS

    assert eventually(queued, timeout_s=60)


@pytest.mark.gap("sfn-shared-sqs-client")
def test_a_map_does_not_build_a_client_per_sqs_task(
    embedded_only: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    original = boto3.client

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(str(kwargs.get("service_name", args[0] if args else "")))
        return original(*args, **kwargs)

    monkeypatch.setattr(boto3, "client", counting)
    fan_out(embedded_only, "clients")
    assert built.count("sqs") <= 2, f"{built.count('sqs')} SQS clients for {JOBS} tasks"


@pytest.mark.gap("sfn-jsonpath-parse-cache")
def test_a_map_parses_each_jsonpath_once(
    embedded_only: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []
    original = JsonPathParser.parse

    def counting(self: Any, string: str, *args: Any, **kwargs: Any) -> Any:
        parsed.append(string)
        return original(self, string, *args, **kwargs)

    monkeypatch.setattr(JsonPathParser, "parse", counting)
    fan_out(embedded_only, "paths")
    assert len(parsed) <= 2 * len(set(parsed)), (
        f"{len(parsed)} parses of {len(set(parsed))} distinct paths for {JOBS} jobs"
    )


@pytest.mark.gap("sfn-json-copy")
def test_a_map_copies_its_json_values_without_the_general_deepcopy(
    embedded_only: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    copied: list[str] = []
    original = copy.deepcopy

    def counting(value: Any, *args: Any, **kwargs: Any) -> Any:
        if type(value) in (dict, list):
            copied.append(type(value).__name__)
        return original(value, *args, **kwargs)

    monkeypatch.setattr(copy, "deepcopy", counting)
    fan_out(embedded_only, "copies")
    assert len(copied) < JOBS, f"{len(copied)} general deep copies of JSON for {JOBS} jobs"
