"""Static checks of the Terraform under infra/ (no terraform binary needed).

* every .tf file parses (python-hcl2), every variable and output has a
  description, every module has main/variables/outputs/versions.tf;
* the placeholders of the shared state machine template
  (infra/statemachine/bridge.asl.json) are exactly the keys the state_machine
  module passes to templatefile(), and no other module renders the template;
* the IAM policies of each module grant only the actions of the
  least-privilege contract (a widened policy fails here), with "*" resources
  only for actions that support no resource-level permissions;
* the worker systemd unit installed by the consumers module is the file in
  consumers/systemd/, not a copy; its stop timeout is the timing model's;
* dead-letter handling (docs/dead-letters.md) is deployed as bridge/dead_letter.py
  expects it, and the worker's instance lifecycle settings reach worker.env.

The timing rules themselves (validation and preconditions against bridge/timing.py) are
checked in test_timing_mirror.py.

python-hcl2 7.x returns bare strings, 8.x keeps the quotes of string literals
and block labels and adds "__is_block__" markers; tests/support/terraform.py normalises both.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bridge.state_machine import StateMachineParams
from bridge.timing import TimingModel
from tests.infra.hcl_expr import Scope, evaluate
from tests.support.terraform import (
    ASL,
    EXAMPLES_DIR,
    INFRA,
    MODULES,
    MODULES_DIR,
    REPO,
    SYSTEMD,
    as_list,
    blocks,
    labelled2,
    module_locals,
    module_outputs,
    module_variables,
    parse,
    unit_directives,
)
from tests.support.terraform import variable_default as _default

# Submodules other modules call (claim_check, fanout), not the example.
SUBMODULES = ("private_bucket",)
# Modules whose IAM roles are checked against their allow-lists.
ROLE_MODULES = ("state_machine", "completion", "dead_letter", "consumers")
TF_FILES = sorted(p for p in INFRA.rglob("*.tf") if ".terraform" not in p.parts)
MODULE_DIRS = sorted({p.parent for p in TF_FILES})


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


# --------------------------------------------------------------------------
# A small scanner for HCL function calls (strings, ${} and comments aware)
# --------------------------------------------------------------------------

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = set(_OPEN.values())


def _skip_string(text: str, i: int) -> int:
    """i points at an opening quote; return the index after the closing one."""
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        if text.startswith("${", i) or text.startswith("%{", i):
            i = _skip_balanced(text, i + 1)
            continue
        i += 1
    raise ValueError("unterminated string")


def _skip_comment(text: str, i: int) -> int | None:
    if text.startswith("#", i) or text.startswith("//", i):
        end = text.find("\n", i)
        return len(text) if end < 0 else end
    if text.startswith("/*", i):
        end = text.find("*/", i + 2)
        if end < 0:
            raise ValueError("unterminated comment")
        return end + 2
    return None


def _skip_balanced(text: str, i: int) -> int:
    """i points at an opening bracket; return the index after its match."""
    stack = [_OPEN[text[i]]]
    i += 1
    while i < len(text):
        ch = text[i]
        skipped = _skip_comment(text, i)
        if skipped is not None:
            i = skipped
        elif ch == '"':
            i = _skip_string(text, i)
        elif ch in _OPEN:
            stack.append(_OPEN[ch])
            i += 1
        elif ch in _CLOSE:
            if ch != stack.pop():
                raise ValueError(f"unbalanced {ch!r}")
            i += 1
            if not stack:
                return i
        else:
            i += 1
    raise ValueError("unbalanced brackets")


def _split_top_level(body: str, separators: str) -> list[str]:
    """Split text at separators that are outside brackets, strings and comments."""
    parts, start, i = [], 0, 0
    while i < len(body):
        ch = body[i]
        skipped = _skip_comment(body, i)
        if skipped is not None:
            i = skipped
        elif ch == '"':
            i = _skip_string(body, i)
        elif ch in _OPEN:
            i = _skip_balanced(body, i)
        elif ch in separators:
            parts.append(body[start:i])
            i += 1
            start = i
        else:
            i += 1
    parts.append(body[start:])
    return [p.strip() for p in parts if p.strip()]


def _strip_comments(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        skipped = _skip_comment(text, i)
        if skipped is not None:
            i = skipped
            continue
        if text[i] == '"':
            end = _skip_string(text, i)
            out.append(text[i:end])
            i = end
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def find_calls(text: str, function: str) -> list[list[str]]:
    """Arguments (raw HCL text) of every call to `function` in text."""
    calls = []
    for match in re.finditer(rf"\b{re.escape(function)}\s*\(", text):
        open_at = match.end() - 1
        close_after = _skip_balanced(text, open_at)
        calls.append(_split_top_level(text[open_at + 1 : close_after - 1], ","))
    return calls


def object_literal_keys(expr: str) -> set[str]:
    """Keys of an HCL object constructor `{ a = 1, "b" = 2 }` (top level only)."""
    expr = expr.strip()
    assert expr.startswith("{") and expr.endswith("}"), expr
    keys = set()
    for item in _split_top_level(expr[1:-1], ",\n"):
        item = _strip_comments(item).strip()
        if not item:
            continue
        match = re.match(r'^(?:"([^"]+)"|([A-Za-z_][A-Za-z0-9_-]*))\s*(?:=(?!=)|:)', item)
        assert match, f"cannot read an object key in {item!r}"
        keys.add(match.group(1) or match.group(2))
    return keys


# --------------------------------------------------------------------------
# Layout, parsing, descriptions
# --------------------------------------------------------------------------


def test_expected_modules_exist() -> None:
    for name in MODULES:
        assert (MODULES_DIR / name).is_dir(), f"missing module infra/modules/{name}"
    assert (EXAMPLES_DIR / "complete").is_dir()
    assert TF_FILES, "no .tf files found under infra/"


@pytest.mark.parametrize("path", TF_FILES, ids=_rel)
def test_tf_file_parses(path: Path) -> None:
    assert isinstance(parse(path), dict)


@pytest.mark.parametrize("module_dir", MODULE_DIRS, ids=_rel)
def test_module_layout(module_dir: Path) -> None:
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
        assert (module_dir / name).is_file(), f"{_rel(module_dir)} lacks {name}"


@pytest.mark.parametrize("path", TF_FILES, ids=_rel)
def test_variables_and_outputs_have_descriptions(path: Path) -> None:
    for kind in ("variable", "output"):
        for name, body in blocks(path, kind):
            description = body.get("description")
            assert isinstance(description, str) and description.strip(), (
                f"{_rel(path)}: {kind} {name!r} has no description"
            )


@pytest.mark.parametrize("module_dir", MODULE_DIRS, ids=_rel)
def test_variables_live_in_variables_tf_and_outputs_in_outputs_tf(module_dir: Path) -> None:
    for tf in module_dir.glob("*.tf"):
        if tf.name != "variables.tf":
            assert not blocks(tf, "variable"), f"{_rel(tf)} declares variables"
        if tf.name != "outputs.tf":
            assert not blocks(tf, "output"), f"{_rel(tf)} declares outputs"


@pytest.mark.parametrize("module_dir", MODULE_DIRS, ids=_rel)
def test_versions_pin_terraform_and_aws(module_dir: Path) -> None:
    terraform = parse(module_dir / "versions.tf")["terraform"][0]
    assert terraform["required_version"] == ">= 1.5"
    providers = terraform["required_providers"][0]
    assert providers["aws"]["source"] == "hashicorp/aws"
    # 5.100 at least (the provider mirror holds 5.100.0; event source mapping tags and the
    # instance refresh preferences need a recent 5.x), and 6.x too: the modules read no
    # attribute 6.x deprecates (test_no_attribute_that_aws_6_deprecates).
    assert providers["aws"]["version"] == ">= 5.100, < 7"
    uses_archive = any(labelled2(tf, "data", "archive_file") for tf in module_dir.glob("*.tf"))
    if uses_archive:
        assert providers["archive"]["source"] == "hashicorp/archive"


@pytest.mark.parametrize("module_dir", MODULE_DIRS, ids=_rel)
def test_readme_documents_every_input_and_output(module_dir: Path) -> None:
    readme = (module_dir / "README.md").read_text(encoding="utf-8")
    for name in [*module_variables(module_dir), *module_outputs(module_dir)]:
        assert f"`{name}`" in readme, f"{_rel(module_dir)}/README.md does not document {name}"


# Variables whose values are constrained must validate them.
VALIDATED = {
    "queues": [
        "name",
        "jobs_visibility_timeout_seconds",
        "results_visibility_timeout_seconds",
        "jobs_message_retention_seconds",
        "results_message_retention_seconds",
        "dlq_message_retention_seconds",
        "jobs_max_receive_count",
        "results_max_receive_count",
        "receive_wait_time_seconds",
        "archive_message_retention_seconds",
    ],
    "state_machine": [
        "map_mode",
        "heartbeat_seconds",
        "timeout_seconds",
        "max_queue_wait_seconds",
        "job_timeout_seconds",
        "worker_heartbeat_interval_seconds",
        "worker_cancel_grace_seconds",
        "jobs_visibility_timeout_seconds",
        "retry_interval_seconds",
        "retry_max_attempts",
        "max_concurrency",
        "default_job_type",
        "log_level",
        "log_retention_in_days",
        "jobs_queue_arn",
        "fanout_bucket_arn",
        "fanout_kms_key_arn",
    ],
    "completion": [
        "architecture",
        "powertools_layer_arn",
        "timeout",
        "memory_size",
        "batch_size",
        "maximum_batching_window_in_seconds",
        "maximum_concurrency",
        "log_level",
        "log_retention_in_days",
        "tracing_mode",
    ],
    "dead_letter": [
        "function_name",
        "package_path",
        "architecture",
        "layers",
        "memory_size",
        "timeout",
        "tracing_mode",
        "log_retention_in_days",
        "jobs_queue_arn",
        "results_queue_arn",
        "jobs_dlq_url",
        "jobs_dlq_arn",
        "results_dlq_url",
        "results_dlq_arn",
        "jobs_archive_url",
        "jobs_archive_arn",
        "results_archive_url",
        "results_archive_arn",
        "kms_key_arn",
        "batch_size",
        "maximum_concurrency",
    ],
    "consumers": [
        "job_user",
        "worker_wheels_kms_key_arn",
        "ami_id",
        "subnet_ids",
        "min_size",
        "worker_concurrency",
        "worker_handler",
        "termination_heartbeat_timeout_seconds",
        "enabled_metrics",
        "target_backlog_per_slot",
        "on_demand_base_capacity",
        "on_demand_percentage_above_base_capacity",
        "spot_allocation_strategy",
        "instance_refresh_min_healthy_percentage",
        "instance_refresh_scale_in_protected_instances",
        "job_timeout_seconds",
        "drain_timeout_seconds",
        "cancel_grace_seconds",
        "heartbeat_interval_seconds",
        "stale_check_age_seconds",
        "max_queue_wait_seconds",
        "claim_check_threshold_bytes",
        "claim_check_kms_key_arn",
    ],
    "claim_check": ["name", "expiration_days", "kms_key_arn"],
    "fanout": ["name", "expiration_days", "kms_key_arn"],
    "private_bucket": [
        "name",
        "expiring_prefixes",
        "expiration_days",
        "kms_key_arn",
        "policy_documents",
    ],
    "alarms": [
        "alarm_actions",
        "archive_names",
        "state_machine_arn",
        "oldest_job_age_threshold_seconds",
        "period_seconds",
    ],
}


@pytest.mark.parametrize("module", MODULES)
def test_constrained_variables_are_validated(module: str) -> None:
    variables = module_variables(MODULES_DIR / module)
    for name in VALIDATED[module]:
        assert name in variables, f"{module}: variable {name} missing"
        assert variables[name].get("validation"), (
            f"{module}: variable {name} has no validation block"
        )


# --------------------------------------------------------------------------
# The shared state machine template
# --------------------------------------------------------------------------


def asl_placeholders() -> set[str]:
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", ASL.read_text(encoding="utf-8")))


def asl_templatefile_calls() -> list[tuple[Path, list[str]]]:
    calls = []
    for tf in TF_FILES:
        for args in find_calls(tf.read_text(encoding="utf-8"), "templatefile"):
            if args and "bridge.asl.json" in args[0]:
                calls.append((tf, args))
    return calls


def templatefile_keys(tf: Path, vars_expr: str) -> set[str]:
    vars_expr = vars_expr.strip()
    if vars_expr.startswith("{"):
        return object_literal_keys(vars_expr)
    match = re.fullmatch(r"local\.([A-Za-z_][A-Za-z0-9_-]*)", vars_expr)
    assert match, f"{_rel(tf)}: unsupported templatefile vars expression {vars_expr!r}"
    value = module_locals(tf.parent).get(match.group(1))
    assert isinstance(value, dict), f"{_rel(tf)}: local.{match.group(1)} is not an object literal"
    return set(value)


def test_asl_template_has_placeholders() -> None:
    assert asl_placeholders() >= {"jobs_queue_url", "processor_config"}


def test_only_state_machine_module_renders_the_asl_template() -> None:
    calls = asl_templatefile_calls()
    found = [_rel(c[0]) for c in calls]
    assert len(calls) == 1, f"expected one templatefile() of bridge.asl.json, found {found}"
    tf, args = calls[0]
    assert tf.parent == MODULES_DIR / "state_machine"
    assert args[0] == '"${path.module}/../../statemachine/bridge.asl.json"'
    assert (tf.parent / "../../statemachine/bridge.asl.json").resolve() == ASL.resolve()
    # No other Terraform file may read the template in another way either.
    for other in TF_FILES:
        if other.parent != MODULES_DIR / "state_machine":
            assert "bridge.asl.json" not in other.read_text(encoding="utf-8"), _rel(other)


def test_templatefile_keys_match_asl_placeholders() -> None:
    ((tf, args),) = asl_templatefile_calls()
    assert len(args) == 2, f"templatefile() takes a path and a vars map, got {args}"
    keys = templatefile_keys(tf, args[1])
    placeholders = asl_placeholders()
    assert keys == placeholders, (
        f"missing in templatefile(): {sorted(placeholders - keys)}; "
        f"not in the template: {sorted(keys - placeholders)}"
    )


@pytest.mark.parametrize(
    "processor_config",
    [{"Mode": "INLINE"}, {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}],
    ids=["INLINE", "DISTRIBUTED"],
)
@pytest.mark.parametrize("heartbeat", [None, 3600], ids=["no-heartbeat", "heartbeat"])
def test_asl_renders_to_json_with_module_defaults(
    processor_config: dict[str, str], heartbeat: int | None
) -> None:
    """Render the template the way templatefile() does, with the module defaults.

    task_timeouts is the Python renderer's (StateMachineParams.task_timeouts()); that the
    module's local renders the same text is checked in test_timing_mirror.py."""
    variables = module_variables(MODULES_DIR / "state_machine")
    assert _default(variables, "heartbeat_seconds") is None
    params = StateMachineParams(
        jobs_queue_url="https://sqs.eu-west-1.amazonaws.com/123456789012/callback-bridge-jobs",
        heartbeat_seconds=heartbeat,
        timeout_seconds=_default(variables, "timeout_seconds"),
    )
    values = {
        "jobs_queue_url": params.jobs_queue_url,
        "processor_config": json.dumps(processor_config, separators=(",", ":")),
        "task_timeouts": params.task_timeouts(),
        "tolerated_failures": json.dumps(params.tolerated_failures()),
        "map_run_tolerance": params.map_run_tolerance(),
    }
    for name in asl_placeholders() - set(values):
        values[name] = str(_default(variables, name))
    rendered = re.sub(
        r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
        lambda m: values[m.group(1)],
        ASL.read_text(encoding="utf-8"),
    )
    definition = json.loads(rendered)
    fan_out = definition["States"]["FanOut"]
    assert fan_out["ItemProcessor"]["ProcessorConfig"] == processor_config
    task = fan_out["ItemProcessor"]["States"]["RunJob"]
    assert task["Resource"] == "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
    assert task["TimeoutSeconds"] == _default(variables, "timeout_seconds")
    assert task.get("HeartbeatSeconds") == heartbeat
    assert _default(variables, "failure_policy") == params.failure_policy == "report"


@pytest.mark.parametrize(
    ("policy", "count", "percentage"),
    [
        ("report", None, None),
        ("fail", None, None),
        ("fail", 3, None),
        ("fail", None, 10),
        ("fail", 0, 0),
        ("fail", 5, 100),
    ],
)
def test_tolerated_failures_placeholder_matches_the_python_renderer(
    policy: str, count: int | None, percentage: int | None
) -> None:
    """local.tolerated_failures is the text StateMachineParams renders (json.dumps)."""
    variables = module_variables(MODULES_DIR / "state_machine")
    values = {
        **{name: body.get("default") for name, body in variables.items()},
        "failure_policy": policy,
        "tolerated_failure_count": count,
        "tolerated_failure_percentage": percentage,
    }
    scope = Scope(values, module_locals(MODULES_DIR / "state_machine"))
    python = StateMachineParams(
        jobs_queue_url="https://sqs.example",
        failure_policy=policy,  # type: ignore[arg-type]
        tolerated_failure_count=count,
        tolerated_failure_percentage=percentage,
    )
    assert evaluate("${local.tolerated_failures}", scope) == json.dumps(python.tolerated_failures())
    assert evaluate("${local.map_run_tolerance}", scope) == python.map_run_tolerance()


def test_state_machine_defaults_protect_task_tokens() -> None:
    variables = module_variables(MODULES_DIR / "state_machine")
    assert _default(variables, "include_execution_data") is False
    assert _default(variables, "log_level") == "ERROR"
    assert _default(variables, "map_mode") == "INLINE"
    ((_, machine),) = labelled2(
        MODULES_DIR / "state_machine" / "main.tf", "resource", "aws_sfn_state_machine"
    )
    assert machine["type"] == "STANDARD"
    assert (
        machine["logging_configuration"][0]["include_execution_data"]
        == "${var.include_execution_data}"
    )


# --------------------------------------------------------------------------
# IAM least-privilege contract
# --------------------------------------------------------------------------

STATE_MACHINE_LOG_DELIVERY = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}

# Every action a module's policies may grant (conditional statements included).
ALLOWED_ACTIONS = {
    "queues": set(),
    "alarms": set(),
    # The bucket policy only denies (requests without TLS).
    "claim_check": set(),
    "fanout": set(),
    "private_bucket": set(),
    "state_machine": {
        "sts:AssumeRole",
        # The S3-fed Distributed Map: ItemReader and ResultWriter, with fanout_bucket_arn.
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListMultipartUploadParts",
        "s3:AbortMultipartUpload",
        "sqs:SendMessage",
        "kms:GenerateDataKey",
        "kms:Decrypt",
        "states:StartExecution",
        "states:DescribeExecution",
        "states:StopExecution",
        *STATE_MACHINE_LOG_DELIVERY,
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
    },
    "completion": {
        "sts:AssumeRole",
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
        "sqs:SendMessage",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    },
    "dead_letter": {
        "sts:AssumeRole",
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
        "sqs:SendMessage",
        "sqs:GetQueueUrl",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    },
    "consumers": {
        "sts:AssumeRole",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",
        "states:SendTaskHeartbeat",
        # A job that breaks the contract but carries a readable token: Bridge.InvalidJob.
        "states:SendTaskFailure",
        # consumers/instance.py: scale-in protection and the termination lifecycle action.
        "autoscaling:SetInstanceProtection",
        "autoscaling:RecordLifecycleActionHeartbeat",
        "autoscaling:CompleteLifecycleAction",
        "autoscaling:DescribeAutoScalingInstances",
        # The bootstrap (user data): fetch the worker wheels, replace a broken instance (and
        # count it: the alarms module's workers-replaced).
        "autoscaling:SetInstanceHealth",
        "cloudwatch:PutMetricData",
        "s3:GetObject",
        "s3:ListBucket",
        # bridge/claim_check.py: outputs too large for a result message, with claim_check_bucket.
        "s3:PutObject",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    },
}

# Actions that may be granted on Resource "*": they support no resource-level
# permissions (IAM service authorization reference).
WILDCARD_RESOURCE_ACTIONS = {
    "state_machine": STATE_MACHINE_LOG_DELIVERY
    | {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
    },
    "completion": {
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    },
    "dead_letter": {
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    },
    "consumers": {
        "cloudwatch:PutMetricData",  # no resource type; scoped by cloudwatch:namespace
        "states:SendTaskHeartbeat",
        "states:SendTaskFailure",
        "autoscaling:DescribeAutoScalingInstances",
    },
}

# Exact resources of the scoped SQS grants.
SQS_SCOPE = {
    "state_machine": {"sqs:SendMessage": {"${var.jobs_queue_arn}"}},
    "completion": {
        "sqs:ReceiveMessage": {"${var.results_queue_arn}"},
        "sqs:DeleteMessage": {"${var.results_queue_arn}"},
        "sqs:GetQueueAttributes": {"${var.results_queue_arn}"},
        "sqs:ChangeMessageVisibility": {"${var.results_queue_arn}"},
        "sqs:SendMessage": {"${var.results_dlq_arn}"},
    },
    "dead_letter": {
        "sqs:ReceiveMessage": {"${var.jobs_dlq_arn}", "${var.results_dlq_arn}"},
        "sqs:DeleteMessage": {"${var.jobs_dlq_arn}", "${var.results_dlq_arn}"},
        "sqs:ChangeMessageVisibility": {"${var.jobs_dlq_arn}", "${var.results_dlq_arn}"},
        # The DLQs (event source mappings) and the source queues (the reason's maxReceiveCount).
        "sqs:GetQueueAttributes": {
            "${var.jobs_dlq_arn}",
            "${var.results_dlq_arn}",
            "${var.jobs_queue_arn}",
            "${var.results_queue_arn}",
        },
        "sqs:GetQueueUrl": {"${var.jobs_queue_arn}", "${var.results_queue_arn}"},
        "sqs:SendMessage": {"${var.jobs_archive_arn}", "${var.results_archive_arn}"},
    },
    "consumers": {
        "sqs:ReceiveMessage": {"${var.jobs_queue_arn}"},
        "sqs:DeleteMessage": {"${var.jobs_queue_arn}"},
        "sqs:ChangeMessageVisibility": {"${var.jobs_queue_arn}"},
        # The jobs queue's visibility timeout; the results queue's MaximumMessageSize, which
        # sizes claim checks (bridge.claim_check.queue_limit); the jobs DLQ's start probe
        # (consumers.compose.check_jobs_dlq).
        "sqs:GetQueueAttributes": {
            "${var.jobs_queue_arn}",
            "${var.results_queue_arn}",
            "${var.jobs_dlq_arn}",
        },
        "sqs:SendMessage": {"${var.results_queue_arn}", "${var.jobs_dlq_arn}"},
    },
}

# Actions every module must keep granting (so the contract test cannot pass vacuously).
REQUIRED_ACTIONS = {
    "state_machine": {
        "sqs:SendMessage",
        "states:StartExecution",
        "states:DescribeExecution",
        "states:StopExecution",
    },
    "completion": ALLOWED_ACTIONS["completion"] - {"kms:Decrypt", "kms:GenerateDataKey"},
    "dead_letter": ALLOWED_ACTIONS["dead_letter"] - {"kms:Decrypt", "kms:GenerateDataKey"},
    "consumers": ALLOWED_ACTIONS["consumers"] - {"kms:Decrypt", "kms:GenerateDataKey"},
}


def policy_statements(module: str) -> list[dict[str, Any]]:
    """All statements (static and dynamic) of the module's aws_iam_policy_document data sources."""
    statements = []
    for tf in sorted((MODULES_DIR / module).glob("*.tf")):
        for name, doc in labelled2(tf, "data", "aws_iam_policy_document"):
            for statement in as_list(doc.get("statement")):
                statements.append({"doc": name, **statement})
            for dynamic in as_list(doc.get("dynamic")):
                for label, body in dynamic.items():
                    assert label == "statement", (
                        f"{module}/{name}: unexpected dynamic block {label}"
                    )
                    if "var.iam_role_policy_statements" in str(body.get("for_each")):
                        continue  # the caller's own statements (test_caller_statements...)
                    for content in as_list(body.get("content")):
                        statements.append({"doc": name, "dynamic": True, **content})
    return statements


@pytest.mark.parametrize("module", MODULES)
def test_policies_are_policy_documents_only(module: str) -> None:
    for tf in (MODULES_DIR / module).glob("*.tf"):
        text = _strip_comments(tf.read_text(encoding="utf-8"))
        assert not re.search(r'\bAction"?\s*[=:]', text), (
            f"{_rel(tf)}: write IAM policies with aws_iam_policy_document"
        )
        assert "managed_policy_arns" not in text, f"{_rel(tf)}: no managed policies on roles"
        assert "inline_policy" not in text, f"{_rel(tf)}: no inline_policy blocks"
        for name, attachment in labelled2(tf, "resource", "aws_iam_role_policy_attachment"):
            assert module == "consumers" and attachment["policy_arn"].endswith(
                ":iam::aws:policy/AmazonSSMManagedInstanceCore"
            ), f"{_rel(tf)}: unexpected managed policy attachment {name}"


@pytest.mark.parametrize("module", MODULES)
def test_iam_actions_are_in_the_allow_list(module: str) -> None:
    granted = set()
    for statement in policy_statements(module):
        assert "not_actions" not in statement, (
            f"{module}/{statement['doc']}: not_actions is not allowed"
        )
        assert "not_resources" not in statement, (
            f"{module}/{statement['doc']}: not_resources is not allowed"
        )
        if statement.get("effect") == "Deny":
            # Deny statements only take rights away (the queue policies' TLS and sender
            # guards); test_queue_policies.py checks them.
            continue
        assert statement.get("effect", "Allow") == "Allow"
        for action in as_list(statement.get("actions")):
            assert "*" not in action, f"{module}: wildcard action {action}"
            granted.add(action)
    unexpected = granted - ALLOWED_ACTIONS[module]
    assert not unexpected, (
        f"{module} grants actions outside its least-privilege allow-list: {sorted(unexpected)}"
    )
    missing = REQUIRED_ACTIONS.get(module, set()) - granted
    assert not missing, f"{module} no longer grants {sorted(missing)}"


@pytest.mark.parametrize("module", ROLE_MODULES)
def test_wildcard_resources_only_for_unscopable_actions(module: str) -> None:
    for statement in policy_statements(module):
        if "*" in as_list(statement.get("resources")):
            actions = set(as_list(statement.get("actions")))
            unscopable = WILDCARD_RESOURCE_ACTIONS[module]
            assert actions <= unscopable, (
                f'{module}: {sorted(actions - unscopable)} granted on Resource "*"'
            )


@pytest.mark.parametrize("module", ROLE_MODULES)
def test_sqs_grants_are_scoped_to_their_queues(module: str) -> None:
    resources_by_action: dict[str, set[str]] = {}
    for statement in policy_statements(module):
        for action in as_list(statement.get("actions")):
            if action.startswith("sqs:"):
                resources_by_action.setdefault(action, set()).update(
                    as_list(statement.get("resources"))
                )
    assert resources_by_action == SQS_SCOPE[module]


@pytest.mark.parametrize("module", ROLE_MODULES)
def test_kms_and_distributed_map_grants_are_conditional(module: str) -> None:
    for statement in policy_statements(module):
        actions = set(as_list(statement.get("actions")))
        if actions & {"kms:Decrypt", "kms:GenerateDataKey"}:
            assert statement.get("dynamic"), f"{module}: KMS permissions must depend on kms_key_arn"
            assert statement.get("resources") == ["${statement.value}"]
        if actions & {"states:StartExecution", "states:DescribeExecution", "states:StopExecution"}:
            assert statement.get("dynamic"), (
                f"{module}: Distributed Map permissions must depend on map_mode"
            )


def test_consumers_autoscaling_grants_are_scoped_to_their_own_group() -> None:
    """The worker's lifecycle calls reach only its own group; only DescribeAutoScalingInstances,
    which has no resource types in the IAM service authorization reference, is on "*"."""
    locals_ = module_locals(MODULES_DIR / "consumers")
    assert locals_["autoscaling_group_name"] == "${var.name}-worker"
    assert locals_["lifecycle_hook_name"] == "${var.name}-drain"
    assert locals_["autoscaling_group_arn"] == (
        "arn:${data.aws_partition.current.partition}:autoscaling:${local.region}:"
        "${data.aws_caller_identity.current.account_id}:autoScalingGroup:*:"
        "autoScalingGroupName/${local.autoscaling_group_name}"
    )
    resources: dict[str, set[str]] = {}
    for statement in policy_statements("consumers"):
        for action in as_list(statement.get("actions")):
            if action.startswith("autoscaling:"):
                resources.setdefault(action, set()).update(as_list(statement.get("resources")))
    own = {"${local.autoscaling_group_arn}"}
    assert resources == {
        "autoscaling:SetInstanceProtection": own,
        "autoscaling:RecordLifecycleActionHeartbeat": own,
        "autoscaling:CompleteLifecycleAction": own,
        "autoscaling:SetInstanceHealth": own,
        "autoscaling:DescribeAutoScalingInstances": {"*"},
    }
    # The group and its hook carry the names the worker environment gives the worker.
    main = MODULES_DIR / "consumers" / "main.tf"
    ((_, group),) = labelled2(main, "resource", "aws_autoscaling_group")
    ((_, hook),) = labelled2(main, "resource", "aws_autoscaling_lifecycle_hook")
    assert group["name"] == "${local.autoscaling_group_name}"
    assert hook["name"] == "${local.lifecycle_hook_name}"
    # Instances protect themselves as soon as they run jobs: the policy must exist first.
    assert "${aws_iam_role_policy.this}" in as_list(group.get("depends_on"))


# The code that runs under each role, and the client names its AWS calls go through
# (``self.sqs.send_message``, ``autoscaling.set_instance_protection``...). Python is read as an
# AST; shell scripts (the workers' bootstrap) by their ``aws <service> <command>`` lines. The
# state machine role's calls come from the rendered ASL (asl_actions below). Each role is
# checked both ways: a call its policy lacks fails, and so does a grant no code makes.
ROLE_CODE = {
    "consumers": [
        "consumers/*.py",
        "bridge/quarantine.py",
        # What the worker runs of the claim check: ClaimCheck.apply -> store (s3.put_object) and
        # queue_limit (the results queue's MaximumMessageSize). fetch (s3.get_object) is for
        # the readers of claim-checked outputs, not the workers.
        "bridge/claim_check.py::ClaimCheck,store,queue_limit",
        "bridge/cli/worker.py",
        "infra/modules/consumers/templates/*.sh",
        "infra/modules/consumers/templates/*.tftpl",
    ],
    "completion": ["bridge/completion.py", "bridge/callback.py", "bridge/quarantine.py"],
    "dead_letter": ["bridge/dead_letter.py", "bridge/callback.py"],
}
CLIENT_SERVICES = {"sqs": "sqs", "sfn": "states", "autoscaling": "autoscaling", "s3": "s3"}
# API calls IAM authorizes under another action's name (IAM service authorization reference).
API_TO_IAM_ACTION = {"s3:HeadBucket": "s3:ListBucket", "s3:HeadObject": "s3:GetObject"}
# AWS CLI services and the IAM prefix of their actions.
CLI_SERVICES = {
    "autoscaling": "autoscaling",
    "sqs": "sqs",
    "stepfunctions": "states",
    "s3": "s3",
    "cloudwatch": "cloudwatch",
}
# The AWS CLI's high-level s3 commands are several API calls each.
CLI_S3_ACTIONS = {
    "sync": {"s3:ListBucket", "s3:GetObject"},  # ListObjectsV2 needs s3:ListBucket
    "cp": {"s3:GetObject"},
    "ls": {"s3:ListBucket"},
}
# Granted although the role's code never calls them: AWS calls them on the role's behalf.
LAMBDA_RUNTIME = {
    "sts:AssumeRole",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    # The event source mapping reads the queue and deletes what the handler acknowledges.
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
}
NOT_CALLED_BY_CODE = {
    # The bootstrap's `aws` CLI calls (templates/install_worker.sh: SetInstanceHealth, the s3
    # sync of the wheels) are read from the script by _shell_actions, so they are checked too.
    "consumers": {"sts:AssumeRole", "kms:Decrypt", "kms:GenerateDataKey"},
    "completion": LAMBDA_RUNTIME,
    # The dead-letter handler reads the source queues' attributes itself (the reason's
    # maxReceiveCount), so sqs:GetQueueAttributes is in its code too.
    "dead_letter": LAMBDA_RUNTIME,
}


def _python_actions(path: Path, names: set[str] | None = None) -> set[str]:
    """The boto3 calls in ``path``, or only in its top-level functions / classes ``names``."""
    import ast

    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if names is not None:
        defined = {
            node.name: node
            for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        }
        assert names <= set(defined), f"{_rel(path)} defines no {sorted(names - set(defined))}"
        tree = ast.Module(body=[defined[name] for name in sorted(names)], type_ignores=[])
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        target = node.func.value
        client = (
            target.attr
            if isinstance(target, ast.Attribute)
            else target.id
            if isinstance(target, ast.Name)
            else None
        )
        if client in CLIENT_SERVICES:
            method = node.func.attr.removesuffix("_batch")
            action = "".join(part.capitalize() for part in method.split("_"))
            called = f"{CLIENT_SERVICES[client]}:{action}"
            found.add(API_TO_IAM_ACTION.get(called, called))
    return found


def _shell_actions(path: Path) -> set[str]:
    """``aws <service> <command>`` in the non-comment lines of a shell script or template."""
    found: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#"):
            continue
        for service, command in re.findall(r"\baws\s+([a-z0-9-]+)\s+([a-z0-9-]+)", line):
            assert service in CLI_SERVICES, f"{_rel(path)}: unmapped AWS CLI service {service}"
            if service == "s3":
                assert command in CLI_S3_ACTIONS, f"{_rel(path)}: unmapped aws s3 {command}"
                found |= CLI_S3_ACTIONS[command]
            else:
                action = "".join(part.capitalize() for part in command.split("-"))
                found.add(f"{CLI_SERVICES[service]}:{action}")
    return found


def code_actions(module: str) -> set[str]:
    """IAM actions of the AWS calls in the code a role runs (boto3 method / CLI -> Action)."""
    found = set()
    for entry in ROLE_CODE[module]:
        # "path::a,b" scans only the top-level functions / classes a and b of path.
        pattern, _, only = entry.partition("::")
        names = set(only.split(",")) if only else None
        paths = sorted(REPO.glob(pattern))
        assert paths, f"{module}: {pattern} matches no file"
        for path in paths:
            found |= _python_actions(path, names) if path.suffix == ".py" else _shell_actions(path)
    return found


@pytest.mark.parametrize("module", sorted(ROLE_CODE))
def test_role_grants_exactly_what_its_code_calls(module: str) -> None:
    called = code_actions(module)
    assert called, f"no AWS calls found for {module}: the scan is broken"
    granted = {a for s in policy_statements(module) for a in as_list(s.get("actions"))}
    assert not called - granted, f"{module}: code calls {sorted(called - granted)}, not granted"
    unused = granted - called - NOT_CALLED_BY_CODE[module]
    assert not unused, f"{module}: grants {sorted(unused)} that its code never calls"


def test_code_scan_sees_a_new_call(tmp_path: Path) -> None:
    """The derivation is what fails: a call added to the code is an action the role lacks."""
    source = tmp_path / "extra.py"
    source.write_text(
        "def f(sfn, sqs):\n    sfn.send_task_heartbeat(taskToken='t')\n    "
        "sqs.delete_message_batch(QueueUrl='q', Entries=[])\n"
    )
    assert _python_actions(source) == {"states:SendTaskHeartbeat", "sqs:DeleteMessage"}
    script = tmp_path / "extra.sh"
    script.write_text(
        "# aws sqs purge-queue is only a comment\naws autoscaling set-instance-health"
        " --health-status Unhealthy\naws s3 sync s3://b/p /tmp/w\n"
    )
    assert _shell_actions(script) == {
        "autoscaling:SetInstanceHealth",
        "s3:ListBucket",
        "s3:GetObject",
    }
    granted = {a for s in policy_statements("completion") for a in as_list(s.get("actions"))}
    assert "states:SendTaskHeartbeat" not in granted


# The state machine role: Step Functions calls, on the execution's behalf, what its ASL names.
# Optimised integrations (arn:aws:states:::<service>:<api>[.waitForTaskToken|.sync]) need
# <service>:<Api>; a Distributed Map starts child executions of its own state machine and
# describes and stops them (AWS: "IAM policies for using Distributed Map states").
DISTRIBUTED_MAP_ACTIONS = {
    "states:StartExecution",
    "states:DescribeExecution",
    "states:StopExecution",
}
# Granted to the state machine role for what the service does with it, not for ASL states:
# assuming it, delivering logs (no resource-level permissions: "*"), and optional X-Ray and KMS.
STATE_MACHINE_SERVICE_ACTIONS = {"sts:AssumeRole", *STATE_MACHINE_LOG_DELIVERY}
# A Map's ItemReader and ResultWriter call S3 with the role ("IAM policies for ItemReader" and
# "IAM policies for ResultWriter", Step Functions developer guide); the writer may upload in parts.
ITEM_READER_ACTIONS = {"arn:aws:states:::s3:getObject": {"s3:GetObject"}}
RESULT_WRITER_ACTIONS = {
    "arn:aws:states:::s3:putObject": {
        "s3:PutObject",
        "s3:GetObject",
        "s3:ListMultipartUploadParts",
        "s3:AbortMultipartUpload",
    }
}
#: The state only executions started from an item file reach (with fanout_bucket_arn).
S3_FED_MAP = "FanOutFromS3"


def asl_actions(map_mode: str, fanout: bool = False) -> set[str]:
    from bridge.state_machine import render_definition

    definition = json.loads(
        render_definition(
            StateMachineParams(
                jobs_queue_url="https://sqs.eu-west-1.amazonaws.com/123456789012/cb-jobs",
                map_mode=map_mode,  # type: ignore[arg-type]
            )
        )
    )
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            resource = node.get("Resource")
            if node.get("Type") == "Task" and isinstance(resource, str):
                match = re.fullmatch(r"arn:aws:states:::([a-z0-9]+):([A-Za-z]+)(\.\w+)?", resource)
                assert match, f"unmapped Task resource {resource}"
                service, api = match.group(1), match.group(2)
                found.add(f"{service}:{api[0].upper()}{api[1:]}")
            processor = node.get("ItemProcessor", {}).get("ProcessorConfig", {})
            if node.get("Type") == "Map" and processor.get("Mode") == "DISTRIBUTED":
                found.update(DISTRIBUTED_MAP_ACTIONS)
            if node.get("Type") == "Map":
                reader = node.get("ItemReader", {}).get("Resource")
                writer = node.get("ResultWriter", {}).get("Resource")
                found.update(ITEM_READER_ACTIONS[reader] if reader else set())
                found.update(RESULT_WRITER_ACTIONS[writer] if writer else set())
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    states = definition["States"]
    assert S3_FED_MAP in states, "the template lost its S3-fed Map"
    walk({k: v for k, v in states.items() if fanout or k != S3_FED_MAP})
    return found


def state_machine_grants(map_mode: str, fanout: bool = False) -> set[str]:
    """Actions the state machine role gets for map_mode, with or without the fan-out bucket
    (no KMS key, no tracing)."""
    tf = MODULES_DIR / "state_machine" / "main.tf"
    scope = Scope(
        {
            "map_mode": map_mode,
            "fanout_bucket_arn": "arn:aws:s3:::cb-fanout" if fanout else None,
            "fanout_kms_key_arn": None,
            "kms_key_arn": None,
            "execution_data_kms_key_arn": None,
            "tracing_enabled": False,
        },
        module_locals(MODULES_DIR / "state_machine"),
    )
    granted: set[str] = set()
    for name, doc in labelled2(tf, "data", "aws_iam_policy_document"):
        if name == "assume":
            continue
        for statement in as_list(doc.get("statement")):
            granted.update(as_list(statement.get("actions")))
        for dynamic in as_list(doc.get("dynamic")):
            body = dynamic["statement"]
            if evaluate(body["for_each"], scope):
                for content in as_list(body.get("content")):
                    granted.update(as_list(content.get("actions")))
    return granted


@pytest.mark.parametrize("fanout", [False, True], ids=["jobs-only", "fanout-bucket"])
@pytest.mark.parametrize("map_mode", ["INLINE", "DISTRIBUTED"])
def test_state_machine_role_grants_exactly_what_its_asl_calls(map_mode: str, fanout: bool) -> None:
    """Without the fan-out bucket the role serves {"jobs": [...]} executions only; with it,
    also the S3-fed Distributed Map (child executions, ItemReader, ResultWriter)."""
    called = asl_actions(map_mode, fanout)
    assert "sqs:SendMessage" in called, "the ASL scan is broken"
    assert (called >= DISTRIBUTED_MAP_ACTIONS) == (map_mode == "DISTRIBUTED" or fanout)
    assert ("s3:PutObject" in called) == fanout
    granted = state_machine_grants(map_mode, fanout)
    assert not called - granted, f"the ASL calls {sorted(called - granted)}, not granted"
    unused = granted - called - STATE_MACHINE_SERVICE_ACTIONS
    assert not unused, f"the state machine role grants {sorted(unused)} its ASL never calls"


# --------------------------------------------------------------------------
# Completion Lambda wiring
# --------------------------------------------------------------------------


def test_completion_event_source_mapping_reports_batch_item_failures() -> None:
    main = MODULES_DIR / "completion" / "main.tf"
    ((_, mapping),) = labelled2(main, "resource", "aws_lambda_event_source_mapping")
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert mapping["scaling_config"][0]["maximum_concurrency"] == "${var.maximum_concurrency}"
    ((_, function),) = labelled2(main, "resource", "aws_lambda_function")
    assert function["handler"] == "${var.handler}"
    variables = module_variables(MODULES_DIR / "completion")
    assert _default(variables, "handler") == "bridge.completion.handler"
    environment = module_locals(MODULES_DIR / "completion")["environment"]
    for key in (
        "BRIDGE_RESULTS_DLQ_URL",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
    ):
        assert key in environment, f"completion Lambda environment lacks {key}"
    runtime = module_locals(MODULES_DIR / "completion")["runtime"]
    assert runtime == "python3.12"


# --------------------------------------------------------------------------
# Dead-letter handling (docs/dead-letters.md, bridge/dead_letter.py)
# --------------------------------------------------------------------------


def test_queues_deploy_the_archives_and_the_dlq_redrive() -> None:
    from bridge import dead_letter

    module = MODULES_DIR / "queues"
    main = module / "main.tf"
    variables = module_variables(module)
    assert _default(variables, "dead_letter_handling") is True
    assert _default(variables, "archive_message_retention_seconds") == (
        dead_letter.ARCHIVE_RETENTION_S
    )
    assert module_locals(module)["handler_attempts"] == dead_letter.HANDLER_ATTEMPTS

    queues = dict(labelled2(main, "resource", "aws_sqs_queue"))
    dlq, archive = queues["dlq"], queues["archive"]
    assert archive["for_each"] == "${local.create && var.dead_letter_handling ? local.queues : {}}"
    # bridge.dead_letter.archive_name: <prefix>-jobs-dlq -> <prefix>-jobs-dead-letters.
    prefix = "${each.value.name}"
    assert dlq["name"] == prefix + dead_letter.DLQ_SUFFIX
    assert archive["name"] == prefix + dead_letter.ARCHIVE_SUFFIX
    assert archive["message_retention_seconds"] == "${var.archive_message_retention_seconds}"
    for key in (
        "max_message_size",
        "sqs_managed_sse_enabled",
        "kms_master_key_id",
        "kms_data_key_reuse_period_seconds",
    ):
        assert archive[key] == dlq[key], f"the archives' {key} differs from the DLQs'"
    # The DLQ -> archive redrive is a resource of its own, so that switching handling off
    # clears it (the queue's redrive_policy attribute is optional and computed).
    assert "redrive_policy" not in dlq
    ((_, redrive),) = labelled2(main, "resource", "aws_sqs_queue_redrive_policy")
    assert redrive["for_each"] == "${aws_sqs_queue.archive}"
    assert redrive["queue_url"] == "${aws_sqs_queue.dlq[each.key].id}"
    assert redrive["redrive_policy"] == (
        "${jsonencode({deadLetterTargetArn = each.value.arn, maxReceiveCount = "
        "local.queues[each.key].max_receive_count + local.handler_attempts})}"
    )
    allow = dict(labelled2(main, "resource", "aws_sqs_queue_redrive_allow_policy"))["archive"]
    assert "sourceQueueArns = [aws_sqs_queue.dlq[each.key].arn]" in allow["redrive_allow_policy"]
    outputs = module_outputs(module)
    for side in ("jobs", "results"):
        for kind in ("url", "arn", "name"):
            value = outputs[f"{side}_archive_{kind}"]["value"]
            assert value == f'${{try(aws_sqs_queue.archive["{side}"].{kind}, null)}}'
        assert f"{side}_dlq_visibility_timeout_seconds" in outputs


def test_dead_letter_lambda_wiring() -> None:
    from bridge.config import ENVIRONMENT, load_config
    from bridge.dead_letter import archive_routes

    module = MODULES_DIR / "dead_letter"
    main = module / "main.tf"
    variables = module_variables(module)
    assert _default(variables, "handler") == "bridge.dead_letter.handler"
    assert _default(variables, "create") is True
    assert _default(variables, "batch_size") == 10
    ((_, function),) = labelled2(main, "resource", "aws_lambda_function")
    assert function["handler"] == "${var.handler}"
    assert module_locals(module)["runtime"] == "python3.12"

    # The environment is exactly the four variables bridge.dead_letter reads, each filled
    # from the module variable named like the configuration field it sets.
    environment = module_locals(module)["environment"]
    pairs = dict(re.findall(r"\b(BRIDGE_[A-Z_]+) = var\.(\w+)", environment))
    assert pairs == {
        "BRIDGE_JOBS_DLQ_URL": "jobs_dlq_url",
        "BRIDGE_JOBS_ARCHIVE_URL": "jobs_archive_url",
        "BRIDGE_RESULTS_DLQ_URL": "results_dlq_url",
        "BRIDGE_RESULTS_ARCHIVE_URL": "results_archive_url",
    }
    for env, field in pairs.items():
        assert ENVIRONMENT[field] == env
    sample = {
        env: f"https://sqs.eu-west-1.amazonaws.com/123456789012/{field}"
        for env, field in pairs.items()
    }
    routes = archive_routes(load_config(environ=sample))
    assert routes == {
        sample["BRIDGE_JOBS_DLQ_URL"]: sample["BRIDGE_JOBS_ARCHIVE_URL"],
        sample["BRIDGE_RESULTS_DLQ_URL"]: sample["BRIDGE_RESULTS_ARCHIVE_URL"],
    }

    # One event source mapping per DLQ, partial batch responses, bounded concurrency.
    ((_, mapping),) = labelled2(main, "resource", "aws_lambda_event_source_mapping")
    assert mapping["for_each"] == "${local.create ? local.dead_letter_queues : {}}"
    assert set(module_locals(module)["dead_letter_queues"]) == {"jobs", "results"}
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert mapping["batch_size"] == "${var.batch_size}"
    assert mapping["scaling_config"][0]["maximum_concurrency"] == "${var.maximum_concurrency}"
    conditions = {p["condition"] for p in mapping["lifecycle"][0]["precondition"]}
    assert conditions == {
        # Lambda refuses an SQS event source whose visibility timeout is below the function's.
        "${try(each.value.visibility_timeout_seconds >= var.timeout, true)}",
        "${try(var.reserved_concurrent_executions >= 2 * var.maximum_concurrency, true)}",
    }


def test_dead_letter_module_survives_create_false() -> None:
    """Every resource is counted on create; every output goes through try() or the flag."""
    module = MODULES_DIR / "dead_letter"
    main = module / "main.tf"
    for kind in ("resource", "data"):
        for entry in parse(main).get(kind, []):
            for type_name, named in entry.items():
                for name, body in named.items():
                    gate = body.get("count") or body.get("for_each")
                    assert gate and "local.create" in gate, f"{type_name}.{name} ignores create"
    for name, body in module_outputs(module).items():
        value = body["value"]
        assert "try(" in value or "local.create" in value or " in aws_" in value, name


# --------------------------------------------------------------------------
# Consumers: systemd unit, environment, lifecycle hook
# --------------------------------------------------------------------------

WORKER_ENV = {
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "BRIDGE_JOBS_QUEUE_URL",
    "BRIDGE_RESULTS_QUEUE_URL",
    "BRIDGE_JOBS_DLQ_URL",
    "BRIDGE_WORKER_CONCURRENCY",
    "BRIDGE_WORKER_HANDLER",
    "BRIDGE_WORKER_COMMAND",
}
# The worker's clocks (bridge/timing.py), written by the consumers module.
TIMING_ENV = {
    "BRIDGE_MAX_QUEUE_WAIT",
    "BRIDGE_JOB_TIMEOUT",
    "BRIDGE_DRAIN_TIMEOUT",
    "BRIDGE_CANCEL_GRACE",
    "BRIDGE_HEARTBEAT_INTERVAL",
    "BRIDGE_STALE_CHECK_AGE",
    "BRIDGE_LIFECYCLE_HOOK_TIMEOUT",
}
# The instance lifecycle the worker handles itself (consumers/instance.py): each value as an
# HCL expression. Names come from var.name-derived locals: the user data cannot read them from
# the group, which depends on the launch template that carries the user data.
INSTANCE_ENV = {
    "BRIDGE_SCALE_IN_PROTECTION": '"true"',
    "BRIDGE_INSTANCE_HANDLING": '"on"',
    "BRIDGE_ASG_NAME": "local.autoscaling_group_name",
    "BRIDGE_LIFECYCLE_HOOK_NAME": "local.lifecycle_hook_name",
    "BRIDGE_LIFECYCLE_HOOK_TIMEOUT": "tostring(var.termination_heartbeat_timeout_seconds)",
}


def test_worker_unit() -> None:
    unit = unit_directives(SYSTEMD / "callback-bridge-worker.service")
    expected = {
        "EnvironmentFile": "/etc/callback-bridge/worker.env",
        "ExecStart": "/usr/local/bin/callback-bridge worker",
        "KillSignal": "SIGTERM",
        # SIGTERM to the worker only: it drains, then stops its jobs' process groups itself.
        "KillMode": "mixed",
        # drain + cancel grace + 60 with the defaults (TimingModel().stop_timeout_s).
        "TimeoutStopSec": str(TimingModel().stop_timeout_s),
        "Restart": "on-failure",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
    }
    for key, value in expected.items():
        assert unit.get(key) == value, (
            f"callback-bridge-worker.service: {key}={unit.get(key)!r}, expected {value!r}"
        )
    assert unit.get("User") and unit["User"] != "root"


def test_worker_env_example_lists_every_variable() -> None:
    text = (SYSTEMD / "worker.env.example").read_text(encoding="utf-8")
    for name in WORKER_ENV:
        assert re.search(rf"^#?{name}=", text, re.MULTILINE), f"worker.env.example lacks {name}"


def test_consumers_user_data_installs_the_repository_units() -> None:
    module = MODULES_DIR / "consumers"
    main = (module / "main.tf").read_text(encoding="utf-8")
    assert 'systemd_dir = "${path.module}/../../../consumers/systemd"' in main
    assert (module / "../../../consumers/systemd").resolve() == SYSTEMD.resolve()
    name = "callback-bridge-worker.service"
    assert f'file("${{local.systemd_dir}}/{name}")' in main, (
        f"user_data does not read {name} with file()"
    )
    assert (SYSTEMD / name).is_file()
    # The worker handles termination and spot itself: the shell drain watcher is gone, from
    # the repository and from the instances.
    assert sorted(p.name for p in SYSTEMD.iterdir()) == [name, "worker.env.example"]
    ((_, template_vars),) = [c for c in find_calls(main, "templatefile") if "user_data" in c[0]]
    assert object_literal_keys(template_vars) == {
        "stop_timeout_seconds",
        "os_packages",
        "python_executable",
        "wheels_s3_uri",
        "handler_packages",
        "import_check",
        "install_script_b64",
        "worker_env_b64",
        "worker_unit_b64",
        "job_user",
        "asg_name",
        "lifecycle_hook_name",
    }
    # The unit content must not be duplicated in the module.
    for path in module.rglob("*"):
        if path.is_file():
            assert "ExecStart=/usr/local/bin/callback-bridge" not in path.read_text(
                encoding="utf-8"
            ), f"{_rel(path)} duplicates the unit file"
    template = (module / "templates" / "user_data.sh.tftpl").read_text(encoding="utf-8")
    assert "systemctl enable --now callback-bridge-worker.service" in template
    assert "/etc/callback-bridge/worker.env" in template


def test_consumers_worker_environment() -> None:
    worker_env = module_locals(MODULES_DIR / "consumers")["worker_env"]
    # merge({...fixed...}, {for ... optional handler/command}) : check the raw text for the keys.
    text = json.dumps(worker_env)
    for name in WORKER_ENV | TIMING_ENV:
        assert name in text, f"consumers worker environment lacks {name}"
    # Every BRIDGE_* variable the module writes is one the worker command reads (a typo would
    # be ignored silently on the instances).
    import inspect

    from bridge.cli.worker import worker

    read: set[str] = set()
    for parameter in inspect.signature(worker, eval_str=True).parameters.values():
        for meta in getattr(parameter.annotation, "__metadata__", ()):
            envvar = getattr(meta, "envvar", None)
            read.update([envvar] if isinstance(envvar, str) else envvar or [])
    written = set(re.findall(r"\b(BRIDGE_[A-Z_]+) =", worker_env))
    assert written and written <= read, f"the worker reads no {sorted(written - read)}"
    for name, value in INSTANCE_ENV.items():
        assert re.search(rf"\b{name} = {re.escape(value)}[,}}]", worker_env), (
            f"consumers worker environment: {name} must be {value}"
        )


def test_consumers_scaling_and_lifecycle_hook() -> None:
    main = MODULES_DIR / "consumers" / "main.tf"
    ((_, policy),) = labelled2(main, "resource", "aws_autoscaling_policy")
    assert policy["policy_type"] == "TargetTrackingScaling"
    metrics = policy["target_tracking_configuration"][0]["customized_metric_specification"][0][
        "metrics"
    ]
    # The metric math itself is evaluated on sample numbers in test_scaling.py.
    by_id = {m["id"]: m for m in metrics}
    assert by_id["backlog_per_slot"]["return_data"] is True
    assert sorted(by_id) == ["backlog_per_slot", "in_flight", "in_service", "visible"]

    ((_, hook),) = labelled2(main, "resource", "aws_autoscaling_lifecycle_hook")
    assert hook["lifecycle_transition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    variables = module_variables(MODULES_DIR / "consumers")
    stop_timeout = int(
        unit_directives(SYSTEMD / "callback-bridge-worker.service")["TimeoutStopSec"]
    )
    # The worker heartbeats the hook every third of its timeout while draining: the Python
    # default, and the lifecycle action (100 x the hook) covers the stop timeout.
    hook_default = _default(variables, "termination_heartbeat_timeout_seconds")
    assert hook_default == TimingModel().lifecycle_hook_timeout_s == 600
    assert min(172800, 100 * hook_default) >= stop_timeout
    assert hook["heartbeat_timeout"] == "${var.termination_heartbeat_timeout_seconds}"
    assert hook["default_result"] == "CONTINUE"
    assert "GroupInServiceInstances" in _default(variables, "enabled_metrics")

    ((_, template),) = labelled2(main, "resource", "aws_launch_template")
    metadata = template["metadata_options"][0]
    assert metadata["http_tokens"] == "required"
    assert template["block_device_mappings"][0]["ebs"][0]["encrypted"] is True
    assert _default(variables, "associate_public_ip_address") is False
    assert _default(variables, "enable_ssm") is True
    # No public package name: the workers install from worker_wheels_s3_uri (test_artifacts.py).
    assert "package_spec" not in variables


# --------------------------------------------------------------------------
# Claim checks (bridge/claim_check.py)
# --------------------------------------------------------------------------


def _dynamic_statements(module: str) -> dict[str, dict[str, Any]]:
    """The dynamic statements of a module's role policy by sid, with their for_each."""
    found = {}
    for _, doc in labelled2(MODULES_DIR / module / "main.tf", "data", "aws_iam_policy_document"):
        for dynamic in as_list(doc.get("dynamic")):
            for body in dynamic.values():
                for content in as_list(body.get("content")):
                    found[content["sid"]] = {"for_each": body["for_each"], **content}
    return found


def test_workers_put_claim_checks_only_under_the_prefix() -> None:
    """s3:PutObject (derived from bridge/claim_check.py's store by the code scan) is granted on
    <bucket>/claim-checks/* only, and only with a bucket; SSE-KMS adds kms:GenerateDataKey."""
    from bridge.claim_check import DEFAULT_KEY_PREFIX

    assert "s3:PutObject" in code_actions("consumers")
    statements = _dynamic_statements("consumers")
    write = statements["WriteClaimChecks"]
    assert write["actions"] == ["s3:PutObject"]
    assert write["for_each"] == (
        "${var.claim_check_bucket == null ? [] : "
        '["arn:${data.aws_partition.current.partition}:s3:::${var.claim_check_bucket}/'
        f'{DEFAULT_KEY_PREFIX}/*"]}}'
    )
    key = statements["ClaimCheckEncryption"]
    assert key["actions"] == ["kms:GenerateDataKey"]
    assert "var.claim_check_bucket == null" in key["for_each"]
    assert "var.claim_check_kms_key_arn" in key["for_each"]
    put = [s for s in policy_statements("consumers") if "s3:PutObject" in s["actions"]]
    assert [s["sid"] for s in put] == ["WriteClaimChecks"]
    worker_env = module_locals(MODULES_DIR / "consumers")["worker_env"]
    assert "BRIDGE_CLAIM_CHECK_BUCKET = var.claim_check_bucket" in worker_env
    assert "BRIDGE_CLAIM_CHECK_THRESHOLD = " in worker_env


def test_workers_probe_only_the_claim_check_bucket() -> None:
    """The worker's start probe (consumers.compose.check_bucket: HeadBucket, authorized as
    s3:ListBucket) is granted on the claim-check bucket itself, only with a bucket, and without
    an s3:prefix condition (HeadBucket sends none, so one would deny the probe)."""
    assert _python_actions(REPO / "consumers" / "compose.py", {"check_bucket"}) == {"s3:ListBucket"}
    probe = _dynamic_statements("consumers")["ProbeClaimCheckBucket"]
    assert probe["actions"] == ["s3:ListBucket"]
    assert "condition" not in probe
    assert probe["for_each"] == (
        "${var.claim_check_bucket == null ? [] : "
        '["arn:${data.aws_partition.current.partition}:s3:::${var.claim_check_bucket}"]}'
    )


def test_workers_probe_the_jobs_dlq() -> None:
    """consumers.compose.check_jobs_dlq reads the jobs DLQ's attributes at start."""
    assert _python_actions(REPO / "consumers" / "compose.py", {"queue_attributes"}) == {
        "sqs:GetQueueAttributes"
    }
    (probe,) = [s for s in policy_statements("consumers") if s.get("sid") == "ProbeJobsDlq"]
    assert probe["actions"] == ["sqs:GetQueueAttributes"]
    assert probe["resources"] == ["${var.jobs_dlq_arn}"]


def test_code_scan_reads_only_the_named_functions() -> None:
    """The workers run ClaimCheck/store/queue_limit; fetch (GetObject) is the readers' code."""
    path = REPO / "bridge" / "claim_check.py"
    assert _python_actions(path, {"store"}) == {"s3:PutObject"}
    assert _python_actions(path, {"fetch"}) == {"s3:GetObject"}
    assert _python_actions(path, {"queue_limit"}) == {"sqs:GetQueueAttributes"}
    with pytest.raises(AssertionError, match="defines no"):
        _python_actions(path, {"no_such_function"})


def test_claim_check_bucket_matches_the_worker() -> None:
    from bridge.claim_check import DEFAULT_KEY_PREFIX

    module = MODULES_DIR / "claim_check"
    assert module_locals(module)["key_prefix"] == DEFAULT_KEY_PREFIX
    # The bucket is the shared private_bucket submodule, told to expire the worker's prefix.
    ((_, bucket),) = [
        (label, body)
        for entry in parse(module / "main.tf")["module"]
        for label, body in entry.items()
    ]
    assert bucket["source"] == "../private_bucket"
    assert bucket["expiring_prefixes"] == ["${local.key_prefix}"]
    assert bucket["expiration_days"] == "${var.expiration_days}"
    assert bucket["kms_key_arn"] == "${var.kms_key_arn}"
    assert bucket["versioning"] == "${var.versioning}"
    shared = MODULES_DIR / "private_bucket"
    ((_, rules),) = labelled2(
        shared / "main.tf", "resource", "aws_s3_bucket_lifecycle_configuration"
    )
    (abort,) = rules["rule"]
    assert abort["abort_incomplete_multipart_upload"][0]["days_after_initiation"] == 1
    ((_, expiry),) = [(label, body) for d in rules["dynamic"] for label, body in d.items()]
    assert expiry["for_each"] == "${var.expiring_prefixes}"
    (rule,) = expiry["content"]
    assert rule["filter"][0]["prefix"] == "${rule.value}/"
    assert rule["expiration"][0]["days"] == "${var.expiration_days}"
    variables = module_variables(module)
    assert _default(variables, "expiration_days") == 30
    assert _default(variables, "versioning") is False
    assert _default(variables, "kms_key_arn") is None
    # The worker puts with ServerSideEncryption=AES256 unless told otherwise: the default.
    ((_, sse),) = labelled2(
        shared / "main.tf", "resource", "aws_s3_bucket_server_side_encryption_configuration"
    )
    default = sse["rule"][0]["apply_server_side_encryption_by_default"][0]
    assert default["sse_algorithm"] == '${var.kms_key_arn == null ? "AES256" : "aws:kms"}'


def test_complete_example_wires_the_claim_check(tmp_path: Path) -> None:
    from bridge.config import load_tf_outputs

    modules = {
        label: body
        for tf in (EXAMPLES_DIR / "complete").glob("*.tf")
        for entry in parse(tf).get("module", [])
        for label, body in entry.items()
    }
    assert modules["claim_check"]["create"] == "${var.claim_check}"
    consumers = modules["consumers"]
    assert consumers["claim_check_bucket"] == "${module.claim_check.bucket_id}"
    assert consumers["claim_check_kms_key_arn"] == "${module.claim_check.kms_key_arn}"
    assert _default(module_variables(EXAMPLES_DIR / "complete"), "claim_check") is True
    outputs = module_outputs(EXAMPLES_DIR / "complete")
    assert outputs["claim_check_bucket"]["value"] == "${module.claim_check.bucket_id}"
    assert "BRIDGE_CLAIM_CHECK_BUCKET" in json.dumps(outputs["bridge_environment"]["value"])
    # The output fills the setting of the same name through --tf-outputs.
    sample = tmp_path / "outputs.json"
    sample.write_text(
        json.dumps(
            {
                "jobs_queue_url": {"value": "https://sqs.eu-west-1.amazonaws.com/1/cb-jobs"},
                "claim_check_bucket": {"value": "cb-claim-checks-2024"},
            }
        )
    )
    assert load_tf_outputs(sample).claim_check_bucket == "cb-claim-checks-2024"


# --------------------------------------------------------------------------
# Example
# --------------------------------------------------------------------------


def test_complete_example_outputs() -> None:
    outputs = module_outputs(EXAMPLES_DIR / "complete")
    for name in (
        "jobs_queue_url",
        "results_queue_url",
        "jobs_dlq_url",
        "results_dlq_url",
        "state_machine_arn",
        "region",
        "jobs_archive_url",
        "results_archive_url",
    ):
        assert name in outputs, f"examples/complete lacks output {name}"
    sources = {
        body["source"]
        for tf in (EXAMPLES_DIR / "complete").glob("*.tf")
        for entry in parse(tf).get("module", [])
        for body in entry.values()
    }
    assert sources == {f"../../modules/{m}" for m in MODULES if m not in SUBMODULES}


def test_complete_example_outputs_are_bridge_settings() -> None:
    """`terraform output -json` feeds --tf-outputs: the URL/ARN outputs are named like the
    configuration fields they fill (bridge.config.load_tf_outputs)."""
    from bridge.config import TF_OUTPUT_ALIASES, BridgeConfig

    outputs = module_outputs(EXAMPLES_DIR / "complete")
    for name in outputs:
        if name.endswith(("_url", "_arn")):
            field = TF_OUTPUT_ALIASES.get(name, name)
            assert field in BridgeConfig.model_fields, f"output {name} fills no bridge setting"
    assert outputs["jobs_archive_url"]["value"] == "${module.queues.jobs_archive_url}"
    assert outputs["results_archive_url"]["value"] == "${module.queues.results_archive_url}"


def test_complete_example_wires_dead_letter_handling() -> None:
    modules = {
        label: body
        for tf in (EXAMPLES_DIR / "complete").glob("*.tf")
        for entry in parse(tf).get("module", [])
        for label, body in entry.items()
    }
    assert modules["queues"]["dead_letter_handling"] == "${var.dead_letter_handling}"
    dead_letter = modules["dead_letter"]
    assert dead_letter["create"] == "${var.dead_letter_handling}"
    # The same package as the completion Lambda.
    assert dead_letter["package_path"] == modules["completion"]["package_path"]
    for name in (
        "jobs_dlq_url",
        "jobs_dlq_arn",
        "results_dlq_url",
        "results_dlq_arn",
        "jobs_archive_url",
        "jobs_archive_arn",
        "results_archive_url",
        "results_archive_arn",
        "jobs_queue_arn",
        "results_queue_arn",
        "jobs_dlq_visibility_timeout_seconds",
        "results_dlq_visibility_timeout_seconds",
    ):
        assert dead_letter[name] == f"${{module.queues.{name}}}", name
    assert modules["consumers"]["termination_heartbeat_timeout_seconds"] == (
        "${var.termination_heartbeat_timeout_seconds}"
    )
    assert _default(module_variables(EXAMPLES_DIR / "complete"), "dead_letter_handling") is True


def test_no_attribute_that_aws_6_deprecates() -> None:
    """hashicorp/aws 6.0 deprecates data.aws_region's ``name`` and ``id`` for ``region``, which
    5.100 lacks: a module that reads any of them works on one major only (or warns), so none
    does. The region comes from a queue ARN instead."""
    offenders = [
        f"{_rel(tf)}: {line.strip()}"
        for tf in TF_FILES
        if "examples" not in tf.parts
        for line in tf.read_text(encoding="utf-8").splitlines()
        if not line.strip().startswith("#")
        and re.search(r'data\.aws_region\.|data "aws_region"', line)
    ]
    assert offenders == []


def test_consumers_decrypt_the_wheels_only_with_their_key() -> None:
    (wheels,) = [s for s in policy_statements("consumers") if s.get("sid") == "DecryptWorkerWheels"]
    assert wheels["actions"] == ["kms:Decrypt"]
    assert wheels.get("dynamic") is True
    assert wheels["resources"] == ["${statement.value}"]
    main = (MODULES_DIR / "consumers" / "main.tf").read_text(encoding="utf-8")
    assert (
        "for_each = var.worker_wheels_kms_key_arn == null ? [] : [var.worker_wheels_kms_key_arn]"
        in main
    )


def _arch_precondition(module: str) -> str:
    main = (MODULES_DIR / module / "main.tf").read_text(encoding="utf-8")
    (condition,) = re.findall(r"condition\s*=\s*(!can\(regex\(\"\(x86_64.*)", main)
    return condition


def _zip_accepted(condition: str, path: str, architecture: str) -> bool:
    """The precondition, evaluated in Python (RE2 and re agree on these patterns)."""
    named = re.search(r'^!can\(regex\("([^"]+)"', condition)
    choice = re.search(r'\? "([^"]+)" : "([^"]+)"', condition)
    assert named and choice, condition
    name = path.rsplit("/", 1)[-1]
    matching = choice.group(1) if architecture == "arm64" else choice.group(2)
    return not re.search(named.group(1), name) or bool(re.search(matching, name))


@pytest.mark.parametrize("module", ["completion", "dead_letter"])
def test_lambda_zip_built_for_another_architecture_is_refused(module: str) -> None:
    condition = _arch_precondition(module)
    assert _zip_accepted(condition, "dist/callback-bridge-lambda.zip", "arm64")  # unnamed
    assert _zip_accepted(condition, "dist/callback-bridge-lambda-py3.12-x86_64.zip", "x86_64")
    assert _zip_accepted(condition, "dist/callback-bridge-lambda-py3.12-arm64.zip", "arm64")
    assert not _zip_accepted(condition, "dist/callback-bridge-lambda-py3.12-x86_64.zip", "arm64")
    assert not _zip_accepted(condition, "dist/callback-bridge-lambda-py3.12-arm64.zip", "x86_64")


QUEUE_URL_VALIDATION = r'can\(regex\("(\^\(https://\|http://[^"]+)", var\.(\w+)\)\)'


def test_queue_url_validations_accept_https_and_loopback_http_only() -> None:
    """Nine queue-URL variables: an SQS https:// URL, or a local emulator's http:// URL on
    127.0.0.1 or localhost (the rehearsal, infra/README.md), and nothing else."""
    found: list[tuple[str, str]] = []
    for module in MODULES:
        for tf in (MODULES_DIR / module).glob("variables.tf"):
            found += re.findall(QUEUE_URL_VALIDATION, tf.read_text(encoding="utf-8"))
    assert len(found) == 9
    for pattern, variable in found:
        regex = re.compile(pattern.replace("\\\\", "\\"))
        for good in (
            "https://sqs.eu-west-1.amazonaws.com/123456789012/cb-jobs",
            "http://127.0.0.1:45123/123456789012/cb-jobs",
            "http://localhost:4566/000000000000/cb-jobs",
        ):
            assert regex.search(good), (variable, good)
        for bad in (
            "http://sqs.eu-west-1.amazonaws.com/123456789012/cb-jobs",
            "http://127.0.0.1.example.com/123456789012/cb-jobs",
            "http://localhost.example.com:4566/q",
            "ftp://127.0.0.1/q",
        ):
            assert not regex.search(bad), (variable, bad)


def test_caller_statements_and_a_brought_role_in_the_terraform_aws_modules_way() -> None:
    """create_iam_role / iam_role_arn / iam_role_policy_statements: the module's policy goes on
    the created or the brought role, the caller's statements are appended to it verbatim."""
    module = MODULES_DIR / "consumers"
    variables = module_variables(module)
    assert _default(variables, "create_iam_role") is True
    assert _default(variables, "iam_role_arn") is None
    assert _default(variables, "iam_role_policy_statements") == {}
    main = (module / "main.tf").read_text(encoding="utf-8")
    assert 'resource "aws_iam_role" "this" {\n  count = local.create && var.create_iam_role' in main
    assert "aws_iam_role.this[0]" not in main, "a brought role has no aws_iam_role.this[0]"
    for resource in (
        "aws_iam_role_policy",
        "aws_iam_role_policy_attachment",
        "aws_iam_instance_profile",
    ):
        for _, body in labelled2(module / "main.tf", "resource", resource):
            assert body["role"] == "${local.iam_role_name}", resource
    (caller,) = [
        body
        for _, doc in labelled2(module / "main.tf", "data", "aws_iam_policy_document")
        for dynamic in as_list(doc.get("dynamic"))
        for body in dynamic.values()
        if "var.iam_role_policy_statements" in str(body.get("for_each"))
    ]
    (content,) = as_list(caller["content"])
    assert content["sid"] == "${statement.key}"
    assert content["actions"] == "${statement.value.actions}"
    assert content["resources"] == "${statement.value.resources}"
    outputs = (module / "outputs.tf").read_text(encoding="utf-8")
    assert "local.iam_role_arn" in outputs and "local.iam_role_name" in outputs


def test_the_workers_replaced_alarm_reads_what_the_bootstrap_counts() -> None:
    script = (MODULES_DIR / "consumers" / "templates" / "install_worker.sh").read_text()
    call = re.search(
        r"aws cloudwatch put-metric-data --namespace (\S+) --metric-name (\S+) \\\n\s+"
        r'--dimensions "service=([^,]+),AutoScalingGroupName=\$BRIDGE_ASG_NAME"',
        script,
    )
    assert call, "the bootstrap no longer counts replaced workers"
    namespace, metric, service = call.groups()
    alarms = dict(
        labelled2(MODULES_DIR / "alarms" / "main.tf", "resource", "aws_cloudwatch_metric_alarm")
    )
    alarm = alarms["workers_replaced"]
    assert alarm["metric_name"] == metric
    assert alarm["namespace"] == "${var.metrics_namespace}"
    assert _default(module_variables(MODULES_DIR / "alarms"), "metrics_namespace") == namespace
    assert alarm["dimensions"] == {
        "service": service,
        "AutoScalingGroupName": "${var.autoscaling_group_name}",
    }
    assert alarm["comparison_operator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["threshold"] == "${var.workers_replaced_threshold}"
    example = (EXAMPLES_DIR / "complete" / "main.tf").read_text()
    assert "autoscaling_group_name = module.consumers.autoscaling_group_name" in example
