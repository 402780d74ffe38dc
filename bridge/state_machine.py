"""Render the one state machine template (``infra/statemachine/bridge.asl.json``).

Terraform renders the same file with ``templatefile``; this renderer implements the subset the
template uses (``${name}`` placeholders) and refuses unknown or missing names, so the two
renderings cannot silently diverge.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from bridge.timing import (
    DEFAULT_JOB_TIMEOUT_S,
    DEFAULT_MAX_QUEUE_WAIT_S,
    DEFAULT_TASK_TIMEOUT_S,
    TimingModel,
)

TEMPLATE_NAME = "bridge.asl.json"
_PLACEHOLDER = re.compile(r"(?<!\$)\$\{(\w+)\}")

MapMode = Literal["INLINE", "DISTRIBUTED"]


@dataclass(frozen=True)
class StateMachineParams:
    """The template's parameters; Terraform's ``state_machine`` module exposes the same set.

    ``max_queue_wait_seconds`` and ``job_timeout_seconds`` are not rendered: they are what the
    task timeouts are validated against (:mod:`bridge.timing`)."""

    jobs_queue_url: str
    #: HeartbeatSeconds; None (the default) leaves it out: liveness comes from SQS.
    heartbeat_seconds: int | None = None
    timeout_seconds: int = DEFAULT_TASK_TIMEOUT_S
    retry_interval_seconds: int = 5
    retry_max_attempts: int = 2
    max_concurrency: int = 0
    default_job_type: str = "default"
    map_mode: MapMode = "INLINE"
    max_queue_wait_seconds: int = DEFAULT_MAX_QUEUE_WAIT_S
    job_timeout_seconds: int = DEFAULT_JOB_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.map_mode not in ("INLINE", "DISTRIBUTED"):
            raise ValueError(f"map_mode must be INLINE or DISTRIBUTED, not {self.map_mode!r}")
        self.timing().validate()

    def timing(self) -> TimingModel:
        """The part of the timing model the state machine is responsible for."""
        return TimingModel(
            task_heartbeat_s=self.heartbeat_seconds,
            task_timeout_s=self.timeout_seconds,
            max_queue_wait_s=self.max_queue_wait_seconds,
            job_timeout_s=self.job_timeout_seconds,
        )

    def task_timeouts(self) -> str:
        """The task's timeout fields, as one placeholder: HeartbeatSeconds only when set."""
        fields = [f'"TimeoutSeconds": {self.timeout_seconds}']
        if self.heartbeat_seconds is not None:
            fields.insert(0, f'"HeartbeatSeconds": {self.heartbeat_seconds}')
        return ", ".join(fields)

    def template_values(self) -> dict[str, str]:
        skip = {
            "map_mode",
            "heartbeat_seconds",
            "timeout_seconds",
            "max_queue_wait_seconds",
            "job_timeout_seconds",
        }
        values = {k: str(v) for k, v in asdict(self).items() if k not in skip}
        values["task_timeouts"] = self.task_timeouts()
        processor: dict[str, str] = {"Mode": self.map_mode}
        if self.map_mode == "DISTRIBUTED":
            processor["ExecutionType"] = "STANDARD"
        values["processor_config"] = json.dumps(processor)
        return values


def template_text() -> str:
    """The template from the installed wheel, or from the source tree when run from a checkout."""
    packaged = resources.files("bridge") / "statemachine" / TEMPLATE_NAME
    if packaged.is_file():
        return packaged.read_text()
    source = Path(__file__).resolve().parents[1] / "infra" / "statemachine" / TEMPLATE_NAME
    return source.read_text()


def render(text: str, values: dict[str, str]) -> str:
    """Substitute ``${name}`` placeholders; unknown or unused names are errors."""
    used = set(_PLACEHOLDER.findall(text))
    missing, unused = used - values.keys(), values.keys() - used
    if missing or unused:
        raise ValueError(f"template placeholders missing={sorted(missing)} unused={sorted(unused)}")
    rendered = _PLACEHOLDER.sub(lambda m: values[m.group(1)], text).replace("$${", "${")
    json.loads(rendered)  # a rendering that is not JSON is a bug in the template
    return rendered


def render_definition(params: StateMachineParams) -> str:
    """The Amazon States Language definition for ``params``."""
    return render(template_text(), params.template_values())
