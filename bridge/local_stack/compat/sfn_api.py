"""Step Functions API calls the Terraform AWS provider makes that moto 5.2.5 does not answer.

``terraform plan`` of an ``aws_sfn_state_machine`` calls ``ValidateStateMachineDefinition``;
``terraform apply`` then calls ``ListStateMachineVersions`` to read the new machine back. moto
5.2.5 answers both with a 500 (no such action), which the provider retries with back-off for
minutes before failing. The patches add both actions, as the Step Functions API reference
describes them.
"""

from __future__ import annotations

import json
from typing import Any

from bridge.local_stack.compat.patch import Patch, Replacement, expect

VALIDATE = "sfn-validate-state-machine-definition"
LIST_VERSIONS = "sfn-list-state-machine-versions"


def diagnostics(definition: str | None) -> list[dict[str, str]]:
    """The ERROR diagnostics of ``ValidateStateMachineDefinition`` for ``definition``: a
    definition that is not JSON (``INVALID_JSON_DESCRIPTION``), or whose top level lacks
    ``StartAt`` or ``States`` (``SCHEMA_VALIDATION_FAILED``). A subset of AWS's checks: what
    moto's interpreter would trip on first."""
    try:
        parsed = json.loads(definition or "")
    except ValueError as exc:
        return [_error("INVALID_JSON_DESCRIPTION", f"Invalid JSON: {exc}", "/")]
    if not isinstance(parsed, dict):
        return [_error("SCHEMA_VALIDATION_FAILED", "The definition must be a JSON object", "/")]
    return [
        _error("SCHEMA_VALIDATION_FAILED", f"These fields are required: [{field}]", "/")
        for field in ("StartAt", "States")
        if field not in parsed
    ]


def _error(code: str, message: str, location: str) -> dict[str, str]:
    return {"severity": "ERROR", "code": code, "message": message, "location": location}


def validate_state_machine_definition() -> list[Replacement]:
    """AWS (API reference, ValidateStateMachineDefinition): answers ``result`` ``OK`` or
    ``FAIL``, the ``diagnostics`` (severity, code, message, location) and ``truncated``; it
    does not create anything. moto 5.2.5 has no such action (HTTP 500, retried by the Terraform
    provider for minutes). Adds ``StepFunctionResponse.validate_state_machine_definition``
    answering from :func:`diagnostics`."""
    from moto.stepfunctions.responses import StepFunctionResponse

    def respond(self: Any) -> Any:
        from moto.core.responses import ActionResult

        found = diagnostics(self._get_param("definition"))
        return ActionResult(
            {"result": "FAIL" if found else "OK", "diagnostics": found, "truncated": False}
        )

    return [
        Replacement(StepFunctionResponse, "validate_state_machine_definition", respond, adds=True)
    ]


def list_state_machine_versions() -> list[Replacement]:
    """AWS (API reference, ListStateMachineVersions): the versions published from a state
    machine, newest first, each ``stateMachineVersionArn`` and ``creationDate``; none for a
    machine never published. moto 5.2.5 keeps the versions (``StateMachine.versions``) but has
    no such action (HTTP 500). Adds ``StepFunctionResponse.list_state_machine_versions``
    (``maxResults``/``nextToken`` are not paged: one page holds every version)."""
    from moto.stepfunctions.responses import StepFunctionResponse

    expect(StepFunctionResponse, "stepfunction_backend")

    def respond(self: Any) -> Any:
        from moto.core.responses import ActionResult

        machine = self.stepfunction_backend.describe_state_machine(
            self._get_param("stateMachineArn")
        )
        versions = sorted(
            getattr(machine, "versions", {}).items(), key=lambda item: item[0], reverse=True
        )
        return ActionResult(
            {
                "stateMachineVersions": [
                    {"stateMachineVersionArn": v.arn, "creationDate": v.creation_date}
                    for _, v in versions
                ]
            }
        )

    return [Replacement(StepFunctionResponse, "list_state_machine_versions", respond, adds=True)]


PATCHES: list[Patch] = [
    Patch(
        VALIDATE,
        "ValidateStateMachineDefinition answers OK or FAIL with diagnostics",
        validate_state_machine_definition,
    ),
    Patch(
        LIST_VERSIONS,
        "ListStateMachineVersions lists a machine's published versions",
        list_state_machine_versions,
    ),
]
