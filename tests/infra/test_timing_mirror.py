"""Terraform mirrors the timing model (bridge/timing.py): same defaults, same rules, same numbers.

The modules validate their timing inputs in variable ``validation`` blocks and, where a rule
relates several variables, in resource ``precondition`` blocks (the modules require Terraform
>= 1.5; cross-variable validation needs >= 1.9). These tests read the .tf files with
python-hcl2, evaluate the rule texts with ``hcl_expr`` for many sample values, and check that
Terraform accepts exactly the combinations ``TimingModel.violations()`` accepts, that each
Python rule alone makes Terraform refuse, and that the derived values (minimum
HeartbeatSeconds / TimeoutSeconds, the systemd stop timeout, the lifecycle action's global
timeout, the task_timeouts placeholder) are computed the same way. Where a terraform binary and
a provider mirror are at hand, the modules' own ``terraform test`` suites run too.
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bridge.state_machine import StateMachineParams
from bridge.timing import TimingModel
from tests.infra.hcl_expr import Scope, evaluate, references
from tests.support.terraform import (
    EXAMPLES_DIR,
    MODULES_DIR,
    REPO,
    SYSTEMD,
    as_list,
    module_locals,
    module_variables,
    parse,
    provider_mirror,
    unit_directives,
)

# Module variable -> TimingModel field, per module.
TIMING_VARIABLES: dict[str, dict[str, str]] = {
    "state_machine": {
        "heartbeat_seconds": "task_heartbeat_s",
        "timeout_seconds": "task_timeout_s",
        "max_queue_wait_seconds": "max_queue_wait_s",
        "job_timeout_seconds": "job_timeout_s",
        "worker_heartbeat_interval_seconds": "heartbeat_interval_s",
        "worker_cancel_grace_seconds": "cancel_grace_s",
        "jobs_visibility_timeout_seconds": "visibility_timeout_s",
    },
    "consumers": {
        "max_queue_wait_seconds": "max_queue_wait_s",
        "job_timeout_seconds": "job_timeout_s",
        "drain_timeout_seconds": "drain_timeout_s",
        "cancel_grace_seconds": "cancel_grace_s",
        "heartbeat_interval_seconds": "heartbeat_interval_s",
        "stale_check_age_seconds": "stale_check_age_s",
        "termination_heartbeat_timeout_seconds": "lifecycle_hook_timeout_s",
    },
    "queues": {
        "jobs_visibility_timeout_seconds": "visibility_timeout_s",
        "jobs_max_receive_count": "max_receive_count",
    },
}

# The worker environment the consumers module writes: the names the worker CLI reads.
TIMING_ENV = {
    "BRIDGE_MAX_QUEUE_WAIT": "max_queue_wait_seconds",
    "BRIDGE_JOB_TIMEOUT": "job_timeout_seconds",
    "BRIDGE_DRAIN_TIMEOUT": "drain_timeout_seconds",
    "BRIDGE_CANCEL_GRACE": "cancel_grace_seconds",
    "BRIDGE_HEARTBEAT_INTERVAL": "heartbeat_interval_seconds",
    "BRIDGE_STALE_CHECK_AGE": "stale_check_age_seconds",
    "BRIDGE_LIFECYCLE_HOOK_TIMEOUT": "termination_heartbeat_timeout_seconds",
}

MODEL_FIELDS = [f.name for f in dataclasses.fields(TimingModel) if f.name != "visibility_cap_s"]


def model_for(module: str, values: dict[str, Any]) -> TimingModel:
    """The part of the timing model a module knows; every other field unknown (rule skipped)."""
    known = {field: values[var] for var, field in TIMING_VARIABLES[module].items()}
    return TimingModel(**{**dict.fromkeys(MODEL_FIELDS), **known})


def defaults(module_dir: Path) -> dict[str, Any]:
    return {name: body.get("default") for name, body in module_variables(module_dir).items()}


# --------------------------------------------------------------------------
# The module's rules, as texts
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    where: str
    condition: str
    error_message: str


def module_rules(module_dir: Path) -> list[Rule]:
    """Every variable validation and resource/data precondition of a module."""
    rules = [
        Rule(f"variable {name}", v["condition"], v["error_message"])
        for name, body in module_variables(module_dir).items()
        for v in as_list(body.get("validation"))
    ]
    for tf in sorted(module_dir.glob("*.tf")):
        for kind in ("resource", "data"):
            for entry in parse(tf).get(kind, []):
                for type_name, named in entry.items():
                    for name, body in named.items():
                        for lifecycle in as_list(body.get("lifecycle")):
                            for pre in as_list(lifecycle.get("precondition")):
                                rules.append(
                                    Rule(
                                        f"{type_name}.{name} precondition",
                                        pre["condition"],
                                        pre["error_message"],
                                    )
                                )
    return rules


def expanded_references(text: str, locals_: dict[str, Any]) -> set[str]:
    """var.* names a text depends on, through the locals it uses."""
    found, seen = set(), set()
    pending = list(references(text))
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        kind, name = ref.split(".", 1)
        if kind == "var":
            found.add(name)
        elif isinstance(locals_.get(name), str):
            pending.extend(references(locals_[name]))
    return found


def timing_rules(module: str) -> list[Rule]:
    module_dir = MODULES_DIR / module
    locals_ = module_locals(module_dir)
    timing_vars = set(TIMING_VARIABLES[module])
    return [
        rule
        for rule in module_rules(module_dir)
        if expanded_references(rule.condition, locals_) & timing_vars
    ]


def terraform_refusals(module: str, values: dict[str, Any]) -> list[str]:
    """The timing rules of a module that fail for these variable values."""
    scope = Scope(values, module_locals(MODULES_DIR / module))
    return [
        rule.where for rule in timing_rules(module) if evaluate(rule.condition, scope) is not True
    ]


# --------------------------------------------------------------------------
# Sample values around every boundary
# --------------------------------------------------------------------------


def state_machine_samples(rng: random.Random) -> Iterator[dict[str, Any]]:
    for _ in range(400):
        values: dict[str, Any] = {
            "max_queue_wait_seconds": rng.choice([0, 1, 600, 1800, 7200]),
            "jobs_visibility_timeout_seconds": rng.choice([0, 1, 30, 300, 43200, 43201]),
            "worker_heartbeat_interval_seconds": rng.choice([0, 0.5, 1, 60, 120.5]),
            "worker_cancel_grace_seconds": rng.choice([0, 0.5, 10, 30]),
            "job_timeout_seconds": rng.choice([0, 1, 60, 120, 42600, 43130, 43131]),
        }
        model = model_for(
            "state_machine", {**values, "heartbeat_seconds": None, "timeout_seconds": None}
        )
        low_hb, low_to = model.min_task_heartbeat_s, model.min_task_timeout_s
        values["timeout_seconds"] = rng.choice(
            [0, 1, low_to - 1, low_to, low_to + 1, 86400, 31536000, 31536001]
        )
        values["heartbeat_seconds"] = rng.choice(
            [None, None, 0, 1, low_hb - 1, low_hb, low_hb + 1, values["timeout_seconds"]]
        )
        yield values


def consumers_samples(rng: random.Random) -> Iterator[dict[str, Any]]:
    for _ in range(400):
        hook = rng.choice([29, 30, 600, 1728, 1729, 3600, 7200, 7201])
        grace = rng.choice([0, 0.5, 10, 10.5, 60])
        room = min(172800, 100 * hook) - 60 - int(grace)
        yield {
            "termination_heartbeat_timeout_seconds": hook,
            "cancel_grace_seconds": grace,
            "drain_timeout_seconds": rng.choice([0, 1, 1800, room - 1, room, room + 1]),
            "job_timeout_seconds": rng.choice([0, 1, 30, 42600, 43130, 43131]),
            "heartbeat_interval_seconds": rng.choice([0, 0.5, 1, 30, 31, 60]),
            "stale_check_age_seconds": rng.choice([-1, 0, 0.5, 30]),
            "max_queue_wait_seconds": rng.choice([0, 1, 1800]),
        }


def queues_samples(rng: random.Random) -> Iterator[dict[str, Any]]:
    # jobs_max_receive_count also has SQS's own ceiling (1000), outside the timing model.
    for _ in range(100):
        yield {
            "jobs_visibility_timeout_seconds": rng.choice([0, 1, 300, 43200, 43201]),
            "jobs_max_receive_count": rng.choice([0, 1, 5, 1000]),
        }


SAMPLES = {
    "state_machine": state_machine_samples,
    "consumers": consumers_samples,
    "queues": queues_samples,
}

# The Python rules (by the setting they name) each module must enforce on its own.
RULES_PER_MODULE = {
    "state_machine": {
        "task_heartbeat_s",
        "task_timeout_s",
        "job_timeout_s",
        "heartbeat_interval_s",
        "visibility_timeout_s",
        "max_queue_wait_s",
        "cancel_grace_s",
    },
    "consumers": {
        "job_timeout_s",
        "drain_timeout_s",
        "cancel_grace_s",
        "heartbeat_interval_s",
        "stale_check_age_s",
        "max_queue_wait_s",
        "lifecycle_hook_timeout_s",
    },
    "queues": {"visibility_timeout_s", "max_receive_count"},
}


@pytest.mark.parametrize("module", SAMPLES)
def test_terraform_accepts_exactly_what_the_timing_model_accepts(module: str) -> None:
    base = defaults(MODULES_DIR / module)
    alone: set[str] = set()
    for sample in SAMPLES[module](random.Random(6)):
        values = {**base, **sample}
        problems = model_for(module, values).violations()
        refused = terraform_refusals(module, values)
        assert bool(refused) == bool(problems), (
            f"{module} {sample}: Terraform refuses {refused}, "
            f"bridge.timing finds {[str(p) for p in problems]}"
        )
        settings = {p.setting for p in problems}
        if len(settings) == 1:
            alone |= settings
    missing = RULES_PER_MODULE[module] - alone
    assert not missing, f"{module}: no sample broke only {sorted(missing)}"


@pytest.mark.parametrize("module", SAMPLES)
def test_module_defaults_satisfy_the_timing_model(module: str) -> None:
    assert model_for(module, defaults(MODULES_DIR / module)).violations() == []
    assert terraform_refusals(module, defaults(MODULES_DIR / module)) == []


def test_defaults_agree_across_modules_and_with_python() -> None:
    """One default per quantity; where Python has a default for it, the same number."""
    python = TimingModel()
    by_field: dict[str, set[Any]] = {}
    for module, variables in TIMING_VARIABLES.items():
        module_defaults = defaults(MODULES_DIR / module)
        for var, field in variables.items():
            by_field.setdefault(field, set()).add(module_defaults[var])
    # The worker records lifecycle heartbeats (every third of the hook's timeout), so the hook's
    # default is Python's too (600): the rule is 100 x the hook, not the hook alone.
    for field, found in by_field.items():
        assert found == {getattr(python, field)}, f"{field}: Terraform {found}, Python"


# --------------------------------------------------------------------------
# Derived values and messages
# --------------------------------------------------------------------------


def test_minimum_task_timeouts_are_computed_like_python() -> None:
    base = defaults(MODULES_DIR / "state_machine")
    locals_ = module_locals(MODULES_DIR / "state_machine")
    for sample in state_machine_samples(random.Random(7)):
        values = {**base, **sample}
        scope = Scope(values, locals_)
        model = model_for("state_machine", values)
        assert evaluate("${local.min_heartbeat_seconds}", scope) == model.min_task_heartbeat_s
        assert evaluate("${local.min_timeout_seconds}", scope) == model.min_task_timeout_s


@pytest.mark.parametrize("heartbeat", [None, 2820, 50000])
def test_task_timeouts_placeholder_matches_the_python_renderer(heartbeat: int | None) -> None:
    values = {**defaults(MODULES_DIR / "state_machine"), "heartbeat_seconds": heartbeat}
    scope = Scope(values, module_locals(MODULES_DIR / "state_machine"))
    python = StateMachineParams(jobs_queue_url="https://sqs.example", heartbeat_seconds=heartbeat)
    assert evaluate("${local.task_timeouts}", scope) == python.task_timeouts()


def test_error_messages_give_the_same_numbers_as_python() -> None:
    values = {**defaults(MODULES_DIR / "state_machine"), "heartbeat_seconds": 600}
    values["timeout_seconds"] = 3600
    scope = Scope(values, module_locals(MODULES_DIR / "state_machine"))
    messages = " ".join(
        evaluate(rule.error_message, scope) for rule in timing_rules("state_machine")
    )
    for problem in model_for("state_machine", values).violations():
        for number in re.findall(r"use at least (\d+)", str(problem), re.IGNORECASE):
            assert f"Use at least {number}" in messages or f"use at least {number}" in messages


@pytest.mark.parametrize("module", ["state_machine", "consumers", "queues"])
def test_error_messages_render_with_the_defaults(module: str) -> None:
    """Terraform renders a rule's message even when it passes: a null in it (heartbeat_seconds
    defaults to null) would turn every plan into an error."""
    scope = Scope(defaults(MODULES_DIR / module), module_locals(MODULES_DIR / module))
    for rule in timing_rules(module):
        assert isinstance(evaluate(rule.error_message, scope), str), rule.where


def test_systemd_stop_timeout_follows_the_model() -> None:
    unit = unit_directives(SYSTEMD / "callback-bridge-worker.service")
    assert int(unit["TimeoutStopSec"]) == TimingModel().stop_timeout_s == 1870
    assert unit["KillMode"] == "mixed"
    base = defaults(MODULES_DIR / "consumers")
    locals_ = module_locals(MODULES_DIR / "consumers")
    assert evaluate("${local.stop_timeout_seconds}", Scope(base, locals_)) == 1870
    for sample in consumers_samples(random.Random(8)):
        values = {**base, **sample}
        scope = Scope(values, locals_)
        model = model_for("consumers", values)
        assert evaluate("${local.stop_timeout_seconds}", scope) == model.stop_timeout_s
        lifecycle = evaluate("${local.lifecycle_global_timeout_seconds}", scope)
        assert lifecycle == model.lifecycle_global_timeout_s


def test_user_data_writes_the_stop_timeout_drop_in() -> None:
    template = (MODULES_DIR / "consumers" / "templates" / "user_data.sh.tftpl").read_text()
    drop_in = "/etc/systemd/system/callback-bridge-worker.service.d/timing.conf"
    assert drop_in in template
    assert "[Service]\nTimeoutStopSec=${stop_timeout_seconds}\n" in template
    # Before the reload that precedes enabling the worker (the job user step reloads earlier).
    assert template.index(drop_in) < template.rindex("systemctl daemon-reload")
    main = (MODULES_DIR / "consumers" / "main.tf").read_text()
    assert re.search(r"stop_timeout_seconds\s*=\s*local\.stop_timeout_seconds", main)


def test_worker_environment_carries_the_timing_settings() -> None:
    text = module_locals(MODULES_DIR / "consumers")["worker_env"]
    found = dict(re.findall(r"\b(BRIDGE_[A-Z_]+) = tostring\(var\.(\w+)\)", text))
    timing = {env: var for env, var in found.items() if var in TIMING_VARIABLES["consumers"]}
    assert timing == TIMING_ENV


# --------------------------------------------------------------------------
# The example wires one value per quantity
# --------------------------------------------------------------------------


def example_module_inputs() -> dict[str, dict[str, Any]]:
    return {
        label: body
        for tf in sorted((EXAMPLES_DIR / "complete").glob("*.tf"))
        for entry in parse(tf).get("module", [])
        for label, body in entry.items()
    }


def test_complete_example_passes_one_value_per_quantity() -> None:
    example_defaults = defaults(EXAMPLES_DIR / "complete")
    assert example_defaults["heartbeat_seconds"] is None
    inputs = example_module_inputs()
    values: dict[str, dict[str, Any]] = {}
    for module, variables in TIMING_VARIABLES.items():
        module_defaults = defaults(MODULES_DIR / module)
        for var, field in variables.items():
            given = inputs[module].get(var)
            value = (
                module_defaults[var] if given is None else evaluate(given, Scope(example_defaults))
            )
            values.setdefault(field, {})[f"{module}.{var}"] = value
    for field, by_input in values.items():
        assert len(set(by_input.values())) == 1, f"{field} differs: {by_input}"
    shared = {field: next(iter(v.values())) for field, v in values.items()}
    assert TimingModel(**shared).violations() == []
    # Every quantity two modules share comes from one example variable.
    for field, by_input in values.items():
        if len(by_input) > 1:
            sources = {str(inputs[key.split(".")[0]].get(key.split(".")[1])) for key in by_input}
            assert len(sources) == 1 and "None" not in sources, f"{field}: {sources}"


# --------------------------------------------------------------------------
# The modules' own terraform test suites (real Terraform, mock provider, offline)
# --------------------------------------------------------------------------


# The modules with terraform test suites (modules/<name>/tests/*.tftest.hcl).
TFTEST_MODULES = (
    "state_machine",
    "consumers",
    "queues",
    "dead_letter",
    "claim_check",
    "fanout",
    "private_bucket",
)
# An empty zip archive: the dead_letter suite only hashes its package.
EMPTY_ZIP = b"PK\x05\x06" + b"\x00" * 18


@pytest.mark.slow
@pytest.mark.parametrize("module", TFTEST_MODULES)
def test_terraform_test_suite(module: str, tmp_path: Path) -> None:
    terraform, mirror = shutil.which("terraform"), provider_mirror()
    if not terraform or not mirror:
        pytest.skip("needs a terraform binary and a local provider mirror (TF_PLUGIN_DIR)")
    # The consumers module reads ../../../consumers/systemd: copy both trees.
    shutil.copytree(
        REPO / "infra", tmp_path / "infra", ignore=shutil.ignore_patterns(".terraform*")
    )
    shutil.copytree(SYSTEMD, tmp_path / "consumers" / "systemd")
    workdir = tmp_path / "infra" / "modules" / module
    (workdir / "tests" / "package.zip").write_bytes(EMPTY_ZIP)
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


def test_terraform_test_files_exist() -> None:
    for module in TFTEST_MODULES:
        assert list((MODULES_DIR / module / "tests").glob("*.tftest.hcl")), module
    for module in ("state_machine", "consumers"):
        assert (MODULES_DIR / module / "tests" / "timing.tftest.hcl").is_file()
