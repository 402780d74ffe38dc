"""Canaries for the Step Functions speed patches: they count work, not seconds (machines here
are shared and noisy; the timings live in benchmarks/ and docs/local-stack.md)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from jsonpath_ng.parser import JsonPathParser

from tests.support.conformance import Target, callback_task, map_over_items
from tests.support.polling import eventually, wait_for_execution

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

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


def recorded_during_fan_out(
    target: Target,
    name: str,
    monkeypatch: pytest.MonkeyPatch,
    owner: Any,
    attribute: str,
    record: Callable[..., Any],
) -> list[Any]:
    """What ``record`` makes of each call to ``owner.attribute`` (None: not kept) while a Map
    of JOBS callback tasks fans out."""
    kept: list[Any] = []
    original = getattr(owner, attribute)

    def recording(*args: Any, **kwargs: Any) -> Any:
        entry = record(*args, **kwargs)
        if entry is not None:
            kept.append(entry)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, attribute, recording)
    fan_out(target, name)
    return kept


@pytest.mark.gap("sfn-shared-sqs-client")
def test_a_map_does_not_build_a_client_per_sqs_task(
    embedded_only: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = recorded_during_fan_out(
        embedded_only,
        "clients",
        monkeypatch,
        boto3,
        "client",
        lambda *args, **kwargs: str(kwargs.get("service_name", args[0] if args else "")),
    )
    assert built.count("sqs") <= 2, f"{built.count('sqs')} SQS clients for {JOBS} tasks"


@pytest.mark.gap("sfn-jsonpath-parse-cache")
def test_a_map_parses_each_jsonpath_once(
    embedded_only: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = recorded_during_fan_out(
        embedded_only,
        "paths",
        monkeypatch,
        JsonPathParser,
        "parse",
        lambda _parser, string, *args, **kwargs: string,
    )
    assert len(parsed) <= 2 * len(set(parsed)), (
        f"{len(parsed)} parses of {len(set(parsed))} distinct paths for {JOBS} jobs"
    )


@pytest.mark.gap("sfn-json-copy")
def test_a_map_copies_its_json_values_without_the_general_deepcopy(
    embedded_only: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    copied = recorded_during_fan_out(
        embedded_only,
        "copies",
        monkeypatch,
        copy,
        "deepcopy",
        lambda value, *args, **kwargs: (
            type(value).__name__ if type(value) in (dict, list) else None
        ),
    )
    assert len(copied) < JOBS, f"{len(copied)} general deep copies of JSON for {JOBS} jobs"


@pytest.mark.gap("sfn-jsonpath-field-paths")
def test_a_map_looks_plain_field_paths_up_directly(
    embedded_only: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jsonpath_ng.jsonpath import Child

    found = recorded_during_fan_out(
        embedded_only, "fields", monkeypatch, Child, "find", lambda *args, **kwargs: 1
    )
    assert len(found) < JOBS, f"{len(found)} jsonpath_ng evaluations for {JOBS} jobs"


@pytest.mark.gap("sfn-program-cache")
def test_an_execution_reuses_its_state_machines_parsed_program(
    embedded_only: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counts parses: an execution does not parse its state machine's definition again (it
    was parsed when the machine was created); each execution still runs it with its own
    input."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    target = embedded_only
    arn = target.state_machine(
        "parsed-once",
        {
            "StartAt": "Echo",
            "States": {"Echo": {"Type": "Pass", "Parameters": {"n.$": "$.n"}, "End": True}},
        },
    )
    parses: list[str] = []
    original = AmazonStateLanguageParser.parse

    def counting(definition: str) -> Any:
        parses.append(definition)
        return original(definition)

    # Undone inside the test: the parser is a compat patch's target, restored when the
    # target's stack stops, which pytest may do before a test-scoped monkeypatch's undo.
    with monkeypatch.context() as patched:
        patched.setattr(AmazonStateLanguageParser, "parse", staticmethod(counting))
        outputs = []
        for n in (1, 2):
            started = target.sfn.start_execution(stateMachineArn=arn, input=json.dumps({"n": n}))
            described = wait_for_execution(target.sfn, started["executionArn"])
            outputs.append(json.loads(described["output"]))
    assert outputs == [{"n": 1}, {"n": 2}]
    assert parses == []


def test_a_definition_that_does_not_parse_is_refused_as_invalid(target: Target) -> None:
    """Parsed once and remembered (sfn-program-cache), a definition is still validated when the
    state machine is created: one that does not parse is refused, twice alike."""
    broken = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": "yes"}}}
    for _ in range(2):
        with pytest.raises(ClientError) as refused:
            target.state_machine("broken", broken)
        error = refused.value.response["Error"]
        # moto 5.2.5 sends the parser's message without AWS's error code
        assert error["Code"] == "InvalidDefinition" or (
            not target.is_aws and '"yes"' in error["Message"]
        )
