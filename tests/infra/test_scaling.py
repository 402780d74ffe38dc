"""The consumers' scaling policy, evaluated rather than pattern-matched.

The target tracking policy scales on backlog per *slot*: (jobs waiting + jobs running) /
(InService workers x worker_concurrency). Counting running (in-flight) jobs is what keeps a
busy fleet from being scaled in once the queue is empty. These tests render the metric math
from the module's own locals (tests/infra/hcl_expr.py), evaluate it as CloudWatch would on
sample numbers, and drive target tracking's arithmetic with it. The group options (mixed
instances, spot, instance refresh) and the size checks are checked here too.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from tests.infra.hcl_expr import Scope, evaluate
from tests.support.terraform import (
    MODULES_DIR,
    as_list,
    labelled2,
    module_locals,
    module_variables,
)
from tests.support.terraform import variable_default as _default

MODULE = MODULES_DIR / "consumers"
MAIN = MODULE / "main.tf"

_OPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def metric_math(expression: str, values: Mapping[str, float]) -> float | None:
    """Evaluate a CloudWatch metric math expression of + - * / over metric ids and numbers.

    Like CloudWatch, a division by zero yields no data point (None), not an error."""

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Name):
            return float(values[node.id])
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        raise AssertionError(f"unsupported metric math in {expression!r}: {ast.dump(node)}")

    try:
        return walk(ast.parse(expression, mode="eval"))
    except ZeroDivisionError:
        return None


def policy() -> dict[str, Any]:
    ((_, body),) = labelled2(MAIN, "resource", "aws_autoscaling_policy")
    return body


def metrics_by_id() -> dict[str, dict[str, Any]]:
    spec = policy()["target_tracking_configuration"][0]["customized_metric_specification"][0]
    return {m["id"]: m for m in spec["metrics"]}


def rendered_expression(concurrency: int) -> str:
    """The expression text Terraform would send, for a given worker_concurrency."""
    expression = metrics_by_id()["backlog_per_slot"]["expression"]
    scope = Scope({"worker_concurrency": concurrency}, module_locals(MODULE))
    value = evaluate(expression, scope)
    assert isinstance(value, str)
    return value


def backlog_per_slot(
    visible: float, in_flight: float, in_service: float, concurrency: int
) -> float | None:
    return metric_math(
        rendered_expression(concurrency),
        {"visible": visible, "in_flight": in_flight, "in_service": in_service},
    )


def target_tracking_capacity(current: int, metric: float, target: float) -> int:
    """The capacity target tracking aims for: current x metric / target, rounded up."""
    return math.ceil(current * metric / target)


def test_metrics_are_the_queue_depth_in_flight_and_in_service_count() -> None:
    by_id = metrics_by_id()
    stats = {
        metric_id: (
            m["metric_stat"][0]["metric"][0]["namespace"],
            m["metric_stat"][0]["metric"][0]["metric_name"],
            m["metric_stat"][0]["metric"][0]["dimensions"][0]["value"],
            m["metric_stat"][0]["stat"],
        )
        for metric_id, m in by_id.items()
        if "metric_stat" in m
    }
    assert stats == {
        "visible": (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "${local.jobs_queue_name}",
            "Sum",
        ),
        "in_flight": (
            "AWS/SQS",
            "ApproximateNumberOfMessagesNotVisible",
            "${local.jobs_queue_name}",
            "Sum",
        ),
        "in_service": (
            "AWS/AutoScaling",
            "GroupInServiceInstances",
            "${aws_autoscaling_group.this[0].name}",
            "Average",
        ),
    }
    # Only the expression is returned; every metric it reads is defined (CloudWatch refuses
    # an expression naming an unknown id).
    returned = [i for i, m in by_id.items() if m.get("return_data") is True]
    assert returned == ["backlog_per_slot"]
    tree = ast.parse(rendered_expression(3), mode="eval")
    assert {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} == set(stats)
    assert policy()["target_tracking_configuration"][0]["target_value"] == (
        "${var.target_backlog_per_slot}"
    )


@pytest.mark.parametrize(
    ("visible", "in_flight", "in_service", "concurrency", "expected"),
    [
        (0, 0, 1, 1, 0.0),  # idle
        (0, 8, 4, 2, 1.0),  # every slot busy, nothing waiting
        (8, 8, 4, 2, 2.0),  # every slot busy, one job waiting per slot
        (30, 10, 5, 4, 2.0),
        (3, 0, 2, 3, 0.5),
        (12, 0, 0, 1, None),  # no InService worker: no data point (min_size >= 1)
    ],
)
def test_backlog_per_slot_on_sample_numbers(
    visible: int, in_flight: int, in_service: int, concurrency: int, expected: float | None
) -> None:
    assert backlog_per_slot(visible, in_flight, in_service, concurrency) == expected


def test_busy_workers_are_not_scaled_in_when_the_queue_empties() -> None:
    """Four workers with two slots each run eight long jobs and the queue is empty: the policy
    must keep four workers. Counting only visible messages (the old metric) would ask for none."""
    metric = backlog_per_slot(visible=0, in_flight=8, in_service=4, concurrency=2)
    assert metric is not None
    assert target_tracking_capacity(4, metric, target=1) == 4
    visible_only = metric_math("visible / in_service", {"visible": 0, "in_service": 4})
    assert visible_only is not None and target_tracking_capacity(4, visible_only, 1) == 0


def test_backlog_scales_out_by_slots_not_instances() -> None:
    """Twenty waiting jobs on two idle-free workers of four slots: target 1 per slot asks
    for (8 running + 20 waiting) / 4 slots = 7 workers."""
    metric = backlog_per_slot(visible=20, in_flight=8, in_service=2, concurrency=4)
    assert metric == 3.5
    assert target_tracking_capacity(2, metric, target=1) == 7


def _rule_holds(condition: str, values: dict[str, Any]) -> bool:
    declared = module_variables(MODULE)
    variables = {name: body["default"] for name, body in declared.items() if "default" in body}
    variables.update(values)
    result = evaluate(condition, Scope(variables, module_locals(MODULE)))
    assert isinstance(result, bool)
    return result


def _variable_conditions(name: str) -> list[str]:
    return [v["condition"] for v in as_list(module_variables(MODULE)[name]["validation"])]


def _group_preconditions() -> list[tuple[str, str]]:
    ((_, group),) = labelled2(MAIN, "resource", "aws_autoscaling_group")
    return [(p["condition"], p["error_message"]) for p in group["lifecycle"][0]["precondition"]]


@pytest.mark.parametrize(("target", "accepted"), [(0.5, False), (1, True), (4, True)])
def test_target_is_at_least_one_job_per_slot(target: float, accepted: bool) -> None:
    (condition,) = _variable_conditions("target_backlog_per_slot")
    assert _rule_holds(condition, {"target_backlog_per_slot": target}) is accepted


@pytest.mark.parametrize(
    ("sizes", "refused_by"),
    [
        ({"min_size": 1, "max_size": 4, "desired_capacity": 1}, None),
        ({"min_size": 5, "max_size": 4, "desired_capacity": 4}, "lower min_size"),
        ({"min_size": 1, "max_size": 4, "desired_capacity": 6}, "change desired_capacity"),
        (
            {"use_mixed_instances_policy": True, "on_demand_base_capacity": 9, "max_size": 4},
            "lower on_demand_base_capacity",
        ),
    ],
)
def test_group_sizes_are_checked_with_a_message_saying_what_to_change(
    sizes: dict[str, Any], refused_by: str | None
) -> None:
    refused = [
        message
        for condition, message in _group_preconditions()
        if not _rule_holds(condition, sizes)
    ]
    if refused_by is None:
        assert refused == []
    else:
        assert len(refused) >= 1 and refused_by in refused[0], refused


def test_mixed_instances_and_spot_are_options() -> None:
    ((_, group),) = labelled2(MAIN, "resource", "aws_autoscaling_group")
    dynamics = {label: body for d in as_list(group["dynamic"]) for label, body in d.items()}
    # Exactly one of the two launch specifications, chosen by use_mixed_instances_policy.
    assert "use_mixed_instances_policy ? [] :" in dynamics["launch_template"]["for_each"]
    mixed = dynamics["mixed_instances_policy"]
    assert "use_mixed_instances_policy ? [" in mixed["for_each"]
    distribution = mixed["content"][0]["instances_distribution"][0]
    assert distribution == {
        "on_demand_base_capacity": "${var.on_demand_base_capacity}",
        "on_demand_percentage_above_base_capacity": (
            "${var.on_demand_percentage_above_base_capacity}"
        ),
        "spot_allocation_strategy": "${var.spot_allocation_strategy}",
    }
    assert _default(module_variables(MODULE), "use_mixed_instances_policy") is False


def test_instance_refresh_follows_launch_template_changes() -> None:
    ((_, group),) = labelled2(MAIN, "resource", "aws_autoscaling_group")
    (refresh,) = group["instance_refresh"]
    assert refresh["strategy"] == "Rolling"
    preferences = refresh["preferences"][0]
    assert preferences["min_healthy_percentage"] == "${var.instance_refresh_min_healthy_percentage}"
    assert preferences["scale_in_protected_instances"] == (
        "${var.instance_refresh_scale_in_protected_instances}"
    )
    # Terraform starts a refresh when the launch template (or mixed instances policy) changes;
    # the template publishes each change as its default version.
    ((_, template),) = labelled2(MAIN, "resource", "aws_launch_template")
    assert template["update_default_version"] is True
