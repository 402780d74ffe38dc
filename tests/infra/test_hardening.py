"""Hardening and module conventions of the Terraform, checked statically (python-hcl2).

* every queue's policy denies requests without TLS, and a queue with senders configured denies
  sqs:SendMessage to every other principal; the complete example names the producing role of
  each queue;
* Step Functions execution data can be encrypted with a customer-managed key, and the role then
  gets exactly kms:GenerateDataKey / kms:Decrypt for this state machine;
* the alarms cover Lambda throttles, the results queue's age, and the handlers' own metrics,
  whose names and dimensions are the ones the code publishes;
* terraform-aws-modules conventions: IAM names from a prefix (use_name_prefix), tags on every
  taggable resource, a create flag where the module has one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.hcl_expr import Scope, evaluate
from tests.support.terraform import (
    EXAMPLES_DIR,
    MODULES,
    MODULES_DIR,
    REPO,
    as_list,
    labelled2,
    module_locals,
    module_outputs,
    module_variables,
    parse,
    provider_mirror,
)
from tests.support.terraform import variable_default as _default

# Resource types in use that the AWS provider (5.x) lets carry tags. A new resource type must be
# sorted into one of the two sets, so that a taggable one without tags cannot slip in.
TAGGABLE = {
    "aws_s3_bucket",
    "aws_cloudwatch_log_group",
    "aws_cloudwatch_metric_alarm",
    "aws_iam_instance_profile",
    "aws_iam_role",
    "aws_lambda_event_source_mapping",
    "aws_lambda_function",
    "aws_launch_template",
    "aws_security_group",
    "aws_sfn_state_machine",
    "aws_sqs_queue",
    "aws_vpc_security_group_egress_rule",
}
# aws_autoscaling_group is tagged through tag blocks (propagated to the instances).
NOT_TAGGABLE = {
    "aws_autoscaling_group",
    "aws_autoscaling_lifecycle_hook",
    "aws_autoscaling_policy",
    "aws_iam_role_policy",
    "aws_iam_role_policy_attachment",
    "aws_sqs_queue_policy",
    "aws_sqs_queue_redrive_allow_policy",
    "aws_sqs_queue_redrive_policy",
    "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_policy",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_versioning",
}
# IAM names are global to the account (all regions): these take a prefix.
GLOBAL_NAMES = {"aws_iam_role", "aws_iam_instance_profile"}
# Modules whose every resource follows a create flag.
CREATE_FLAG_MODULES = MODULES  # every module so far


def resources(module: str) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for tf in sorted((MODULES_DIR / module).glob("*.tf")):
        for entry in parse(tf).get("resource", []):
            for type_name, named in entry.items():
                for name, body in named.items():
                    found.append((type_name, name, body))
    return found


@pytest.mark.parametrize("module", MODULES)
def test_every_taggable_resource_is_tagged(module: str) -> None:
    for type_name, name, body in resources(module):
        assert type_name in TAGGABLE | NOT_TAGGABLE, f"sort {type_name} into TAGGABLE or not"
        if type_name in TAGGABLE:
            assert "tags" in body, f"{module}: {type_name}.{name} has no tags"
        if type_name == "aws_autoscaling_group":
            assert any("tag" in d for d in as_list(body.get("dynamic"))), "group tags"


@pytest.mark.parametrize("module", MODULES)
def test_global_names_come_from_a_prefix(module: str) -> None:
    """Two deployments in one account must not collide on IAM names."""
    for type_name, name, body in resources(module):
        if type_name in GLOBAL_NAMES:
            assert body.get("name", "").startswith("${var.use_name_prefix ? null :"), (
                f"{module}: {type_name}.{name}.name"
            )
            assert body.get("name_prefix", "").startswith("${var.use_name_prefix ?"), (
                f"{module}: {type_name}.{name}.name_prefix"
            )
            assert _default(module_variables(MODULES_DIR / module), "use_name_prefix") is True


def test_name_prefixes_fit_iam_limits() -> None:
    """IAM's name_prefix is at most 38 characters: the modules cut the prefix to 37 + "-"."""
    for module in ("completion", "dead_letter", "state_machine", "consumers"):
        for type_name, name, body in resources(module):
            if type_name in GLOBAL_NAMES:
                assert re.fullmatch(
                    r'\$\{var\.use_name_prefix \? "\$\{substr\("[^"]+", 0, 37\)\}-" : null\}',
                    body["name_prefix"],
                ), f"{module}: {type_name}.{name}.name_prefix = {body['name_prefix']}"


@pytest.mark.parametrize("module", CREATE_FLAG_MODULES)
def test_create_false_creates_nothing_and_outputs_survive(module: str) -> None:
    variables = module_variables(MODULES_DIR / module)
    assert _default(variables, "create") is True
    for type_name, name, body in resources(module):
        gate = body.get("count") or body.get("for_each")
        # Gated on the flag itself, or on resources of the module that are (the queues'
        # policies follow local.all_queues, the map of the queues created).
        derived = gate.startswith("${aws_") or gate == "${local.all_queues}" if gate else False
        assert gate and ("local.create" in gate or derived), (
            f"{module}: {type_name}.{name} ignores create"
        )
    # A submodule's resources follow the create flag it is given.
    for tf in sorted((MODULES_DIR / module).glob("*.tf")):
        for entry in parse(tf).get("module", []):
            for label, body in entry.items():
                assert "local.create" in str(body.get("create")), f"{module}: module.{label}"
    for name, body in module_outputs(MODULES_DIR / module).items():
        value = body["value"]
        if "aws_" not in value:
            continue  # a variable or local: no resource to miss
        assert "try(" in value or " in aws_" in value or "[*]" in value, (
            f"{module}: output {name} fails when create is false"
        )


# --------------------------------------------------------------------------
# Queue policies
# --------------------------------------------------------------------------

QUEUE_KEYS = {"jobs", "results", "jobs_dlq", "results_dlq", "jobs_archive", "results_archive"}


def queue_policy() -> dict[str, Any]:
    ((_, doc),) = labelled2(MODULES_DIR / "queues" / "main.tf", "data", "aws_iam_policy_document")
    return doc


def test_every_queue_has_a_policy() -> None:
    main = MODULES_DIR / "queues" / "main.tf"
    ((_, policy),) = labelled2(main, "resource", "aws_sqs_queue_policy")
    assert policy["for_each"] == "${local.all_queues}"
    all_queues = module_locals(MODULES_DIR / "queues")["all_queues"]
    for source in ("aws_sqs_queue.this", "aws_sqs_queue.dlq", "aws_sqs_queue.archive"):
        assert source in all_queues
    assert '"${k}_dlq"' in all_queues and '"${k}_archive"' in all_queues


def test_queues_deny_requests_without_tls() -> None:
    (statement,) = as_list(queue_policy()["statement"])
    assert statement["sid"] == "DenyInsecureTransport"
    assert statement["effect"] == "Deny"
    assert statement["actions"] == ["sqs:*"]
    assert statement["principals"] == [{"type": "AWS", "identifiers": ["*"]}]
    assert statement["condition"] == [
        {"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}
    ]


def test_queues_deny_other_senders_where_senders_are_named() -> None:
    ((_, dynamic),) = [d.popitem() for d in as_list(queue_policy()["dynamic"])]
    assert "length(lookup(var.sender_arns, each.key, [])) > 0" in dynamic["for_each"]
    (content,) = dynamic["content"]
    assert content["effect"] == "Deny" and content["actions"] == ["sqs:SendMessage"]
    assert content["condition"] == [
        {
            "test": "ArnNotLike",
            "variable": "aws:PrincipalArn",
            "values": "${concat(statement.value, var.operator_arns)}",
        }
    ]
    # The keys are checked at plan time (tests/dead_letters.tftest.hcl runs it in Terraform).
    (keys, _) = module_variables(MODULES_DIR / "queues")["sender_arns"]["validation"]
    for key in QUEUE_KEYS:
        assert f'"{key}"' in keys["condition"]


def test_complete_example_names_the_producer_of_each_queue() -> None:
    modules = {
        label: body
        for tf in (EXAMPLES_DIR / "complete").glob("*.tf")
        for entry in parse(tf).get("module", [])
        for label, body in entry.items()
    }
    senders = modules["queues"]["sender_arns"]
    text = {k: re.sub(r"\s+", "", str(v)) for k, v in _sender_entries(senders).items()}
    assert set(text) == QUEUE_KEYS
    assert "module.state_machine.role_arn" in text["jobs"]
    assert "module.consumers.role_arn" in text["results"]
    assert "module.consumers.role_arn" in text["jobs_dlq"]
    assert "module.completion.role_arn" in text["results_dlq"]
    assert "module.dead_letter.role_arn" in text["jobs_archive"]
    assert "module.dead_letter.role_arn" in text["results_archive"]


def _sender_entries(value: Any) -> dict[str, Any]:
    """python-hcl2 gives an object literal as a dict, or as its text in some versions."""
    if isinstance(value, dict):
        return value
    body = str(value).strip().removeprefix("${").removesuffix("}").strip().strip("{}")
    return dict(re.findall(r"(\w+)\s*=\s*([^\n]+)", body))


# --------------------------------------------------------------------------
# Customer-managed keys
# --------------------------------------------------------------------------


def test_claim_check_bucket_is_private_and_tls_only() -> None:
    # claim_check and fanout make their buckets with the shared private_bucket submodule.
    for caller in ("claim_check", "fanout"):
        main = MODULES_DIR / caller / "main.tf"
        calls = [body for entry in parse(main)["module"] for body in entry.values()]
        assert [call["source"] for call in calls] == ["../private_bucket"], caller
    main = MODULES_DIR / "private_bucket" / "main.tf"
    ((_, block),) = labelled2(main, "resource", "aws_s3_bucket_public_access_block")
    for setting in (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ):
        assert block[setting] is True, setting
    ((_, ownership),) = labelled2(main, "resource", "aws_s3_bucket_ownership_controls")
    assert ownership["rule"][0]["object_ownership"] == "BucketOwnerEnforced"
    ((_, doc),) = labelled2(main, "data", "aws_iam_policy_document")
    (statement,) = doc["statement"]
    assert statement["effect"] == "Deny"
    assert statement["condition"][0]["variable"] == "aws:SecureTransport"
    assert statement["condition"][0]["values"] == ["false"]
    assert set(statement["resources"]) == {
        "${aws_s3_bucket.this[0].arn}",
        "${aws_s3_bucket.this[0].arn}/*",
    }
    ((_, policy),) = labelled2(main, "resource", "aws_s3_bucket_policy")
    assert policy["policy"] == "${data.aws_iam_policy_document.this[0].json}"


def test_state_machine_execution_data_can_use_a_customer_managed_key() -> None:
    main = MODULES_DIR / "state_machine" / "main.tf"
    ((_, machine),) = labelled2(main, "resource", "aws_sfn_state_machine")
    (config,) = machine["encryption_configuration"]
    local = module_locals(MODULES_DIR / "state_machine")
    for key, expected in (
        (None, "AWS_OWNED_KEY"),
        ("arn:aws:kms:eu-west-1:1:key/k", "CUSTOMER_MANAGED_KMS_KEY"),
    ):
        scope = Scope(
            {"execution_data_kms_key_arn": key, "kms_data_key_reuse_period_seconds": 300}, local
        )
        assert evaluate(config["type"], scope) == expected
        assert evaluate(config["kms_key_id"], scope) == key
    # The role may use the key for this state machine only.
    ((_, doc),) = [
        (n, d) for n, d in labelled2(main, "data", "aws_iam_policy_document") if n == "this"
    ]
    (kms,) = [
        d["statement"]
        for d in as_list(doc["dynamic"])
        if "execution_data_kms_key_arn" in d["statement"]["for_each"]
    ]
    (content,) = kms["content"]
    assert set(content["actions"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert content["resources"] == ["${statement.value}"]
    assert content["condition"] == [
        {
            "test": "StringEquals",
            "variable": "kms:EncryptionContext:aws:states:stateMachineArn",
            "values": ["${local.state_machine_arn}"],
        }
    ]


def test_every_key_option_reaches_the_complete_example() -> None:
    modules = {
        label: body
        for tf in (EXAMPLES_DIR / "complete").glob("*.tf")
        for entry in parse(tf).get("module", [])
        for label, body in entry.items()
    }
    assert modules["queues"]["kms_master_key_id"] == "${var.kms_key_arn}"
    assert modules["state_machine"]["execution_data_kms_key_arn"] == (
        "${var.execution_data_kms_key_arn}"
    )
    for module in ("state_machine", "completion", "dead_letter"):
        assert modules[module]["log_kms_key_arn"] == "${var.log_kms_key_arn}", module
    for module in ("completion", "dead_letter"):
        assert modules[module]["environment_kms_key_arn"] == (
            "${var.lambda_environment_kms_key_arn}"
        ), module


# --------------------------------------------------------------------------
# Alarms
# --------------------------------------------------------------------------


def alarms() -> dict[str, dict[str, Any]]:
    return dict(
        labelled2(MODULES_DIR / "alarms" / "main.tf", "resource", "aws_cloudwatch_metric_alarm")
    )


def test_lambda_throttles_and_results_age_alarms() -> None:
    found = alarms()
    assert found["lambda_throttles"]["metric_name"] == "Throttles"
    assert found["lambda_throttles"]["namespace"] == "AWS/Lambda"
    assert found["oldest_result_age"]["metric_name"] == "ApproximateAgeOfOldestMessage"
    assert found["oldest_result_age"]["dimensions"] == {"QueueName": "${var.results_queue_name}"}


def test_handler_metric_alarms_watch_what_the_code_publishes() -> None:
    """Each alarmed CallbackBridge metric is a name the handlers publish, with the service
    dimension they publish it under."""
    handler_metrics = module_locals(MODULES_DIR / "alarms")["handler_metrics"]
    text = str(handler_metrics)
    names = set(re.findall(r"metric\W+=?\W*([A-Z][A-Za-z]+)", text))
    assert names == {
        "StaleResults",
        "MalformedResults",
        "InvalidResults",
        "InvalidOutputs",
        "DeadLettersFailed",
    }
    code = "".join(
        (REPO / "bridge" / f).read_text(encoding="utf-8")
        for f in ("completion.py", "callback.py", "dead_letter.py")
    )
    for name in names:
        assert f'"{name}"' in code, f"no handler publishes {name}"
    from bridge import completion

    variables = module_variables(MODULES_DIR / "alarms")
    assert _default(variables, "completion_service_name") == completion.SERVICE
    assert _default(variables, "metrics_namespace") == "CallbackBridge"
    dead_letter_source = (REPO / "bridge" / "dead_letter.py").read_text(encoding="utf-8")
    assert f'service="{_default(variables, "dead_letter_service_name")}"' in dead_letter_source


def test_executions_alarm_explains_the_failure_policy() -> None:
    description = alarms()["executions"]["alarm_description"]
    assert "failure_policy" in description
    example = parse(EXAMPLES_DIR / "complete" / "main.tf")
    alarms_module = next(e["alarms"] for e in example["module"] if "alarms" in e)
    assert alarms_module["results_queue_name"] == "${module.queues.results_queue_name}"
    assert "module.dead_letter.function_name" in alarms_module["dead_letter_function_name"]


def test_readme_walks_through_a_deploy() -> None:
    readme = (REPO / "infra" / "README.md").read_text(encoding="utf-8")
    for step in (
        "make lambda",
        "terraform init",
        "terraform apply",
        "terraform output -json > outputs.json",
        "--tf-outputs outputs.json",
        "callback-bridge status",
        "callback-bridge dlq",
        "callback-bridge worker",
        "```mermaid",
    ):
        assert step in readme, f"infra/README.md lacks {step!r}"


@pytest.mark.slow
def test_alarms_terraform_test_suite(tmp_path: Path) -> None:
    """modules/alarms/tests (test_timing_mirror.py runs the other modules' suites)."""
    terraform, mirror = shutil.which("terraform"), provider_mirror()
    if not terraform or not mirror:
        pytest.skip("needs a terraform binary and a local provider mirror (TF_PLUGIN_DIR)")
    workdir = tmp_path / "alarms"
    shutil.copytree(MODULES_DIR / "alarms", workdir, ignore=shutil.ignore_patterns(".terraform*"))
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}
    env.pop("TF_CLI_CONFIG_FILE", None)
    for command in (
        [terraform, "init", "-backend=false", "-input=false", f"-plugin-dir={mirror}"],
        [terraform, "test", "-no-color"],
    ):
        run = subprocess.run(
            command, cwd=workdir, env=env, capture_output=True, text=True, timeout=100
        )
        assert run.returncode == 0, f"{' '.join(command[1:])}:\n{run.stdout}\n{run.stderr}"
