"""Step Functions calls the Terraform AWS provider makes (``compat/sfn_api.py``):
ValidateStateMachineDefinition while planning a state machine, ListStateMachineVersions after
creating it. Stock moto answers both with a 500; the clients here do not retry, so the canaries
fail at once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bridge.local_stack.compat.sfn_api import LIST_VERSIONS, VALIDATE
from tests.support.aws import loopback_client
from tests.support.conformance import Target

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}


def sfn(target: Target) -> Any:
    return (
        target.sfn
        if target.is_aws
        else loopback_client("stepfunctions", target.sfn.meta.endpoint_url)
    )


@pytest.mark.gap(VALIDATE)
def test_a_valid_definition_validates_ok(target: Target) -> None:
    answer = sfn(target).validate_state_machine_definition(
        definition=json.dumps(PASS), type="STANDARD"
    )
    assert answer["result"] == "OK"
    assert answer["diagnostics"] == []


@pytest.mark.gap(VALIDATE)
def test_a_definition_that_is_not_json_fails_validation(target: Target) -> None:
    answer = sfn(target).validate_state_machine_definition(definition="{not json", type="STANDARD")
    assert answer["result"] == "FAIL"
    assert [d["severity"] for d in answer["diagnostics"]] == ["ERROR"]
    assert answer["diagnostics"][0]["code"] == "INVALID_JSON_DESCRIPTION"


@pytest.mark.gap(VALIDATE)
def test_a_definition_without_states_fails_validation(target: Target) -> None:
    answer = sfn(target).validate_state_machine_definition(
        definition=json.dumps({"StartAt": "P"}), type="STANDARD"
    )
    assert answer["result"] == "FAIL"
    assert {d["code"] for d in answer["diagnostics"]} == {"SCHEMA_VALIDATION_FAILED"}


def _machine(target: Target, suffix: str, publish: bool) -> str:
    arn: str = target.sfn.create_state_machine(
        name=target.prefix + suffix,
        definition=json.dumps(PASS),
        roleArn=target.role_arn,
        type="STANDARD",
        publish=publish,
    )["stateMachineArn"]
    target._state_machines.append(arn)
    return arn


@pytest.mark.gap(LIST_VERSIONS)
def test_a_machine_never_published_lists_no_versions(target: Target) -> None:
    arn = _machine(target, "unpublished", publish=False)
    assert (
        sfn(target).list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"] == []
    )


@pytest.mark.gap(LIST_VERSIONS)
def test_a_published_machine_lists_its_versions_newest_first(target: Target) -> None:
    arn = _machine(target, "published", publish=True)
    target.sfn.update_state_machine(
        stateMachineArn=arn, definition=json.dumps({**PASS, "Comment": "v2"}), publish=True
    )
    versions = sfn(target).list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]
    assert [v["stateMachineVersionArn"] for v in versions] == [f"{arn}:2", f"{arn}:1"]
    assert all("creationDate" in v for v in versions)
