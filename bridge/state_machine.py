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
#: "report": failed jobs are entries of the output and the execution succeeds; "fail": the
#: execution fails with ``Bridge.JobsFailed`` when failures exceed the tolerated ones.
FailurePolicy = Literal["report", "fail"]
FAILURE_POLICIES: tuple[FailurePolicy, ...] = ("report", "fail")
#: The error of an execution whose failed jobs exceeded the tolerance.
JOBS_FAILED_ERROR = "Bridge.JobsFailed"
#: The template's way of tolerating every failure by count: the number of jobs.
_ALL_JOBS = {"count.$": "States.ArrayLength($)"}


def _whole(value: object, low: int, high: int | None) -> bool:
    """An int (not a bool) within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return low <= value and (high is None or value <= high)


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
    #: "report" (default): job failures are data, the execution succeeds. "fail": the execution
    #: fails with Bridge.JobsFailed (counts in the cause) when more jobs failed than tolerated,
    #: so alarms on failed executions mean failed work. Same semantics for both Map modes.
    failure_policy: FailurePolicy = "report"
    #: With "fail": the execution fails when more than this many jobs failed. Unset: 0, unless a
    #: percentage is set (then only the percentage applies).
    tolerated_failure_count: int | None = None
    #: With "fail": the execution fails when more than this percentage (integer 0-100) of its
    #: jobs failed. Both set: exceeding either fails it, as a Distributed Map's thresholds do.
    tolerated_failure_percentage: int | None = None

    def __post_init__(self) -> None:
        if self.map_mode not in ("INLINE", "DISTRIBUTED"):
            raise ValueError(f"map_mode must be INLINE or DISTRIBUTED, not {self.map_mode!r}")
        self._validate_failure_policy()
        self.timing().validate()

    def _validate_failure_policy(self) -> None:
        if self.failure_policy not in FAILURE_POLICIES:
            raise ValueError(f"failure_policy must be report or fail, not {self.failure_policy!r}")
        count, percentage = self.tolerated_failure_count, self.tolerated_failure_percentage
        if self.failure_policy == "report" and (count is not None or percentage is not None):
            raise ValueError(
                "tolerated_failure_count and tolerated_failure_percentage apply only with "
                "failure_policy 'fail' (with 'report' every failure is tolerated)"
            )
        if count is not None and not _whole(count, 0, None):
            raise ValueError(f"tolerated_failure_count must be an integer >= 0, not {count!r}")
        if percentage is not None and not _whole(percentage, 0, 100):
            # Integers only: the template's percentage check is exact for integers (see
            # MeasureFailures in the template).
            raise ValueError(
                f"tolerated_failure_percentage must be an integer from 0 to 100, not {percentage!r}"
            )

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

    def tolerated_failures(self) -> dict[str, object]:
        """The ``tolerated`` object the template's checks compare the failed count with:
        ``count`` (jobs; the number of jobs when there is no count limit) and ``percentage``
        (100 when there is no percentage limit). "report" tolerates everything."""
        count, percentage = self.tolerated_failure_count, self.tolerated_failure_percentage
        tolerated: dict[str, object] = dict(_ALL_JOBS)
        if self.failure_policy == "fail" and (count is not None or percentage is None):
            tolerated = {"count": count or 0}
        tolerated["percentage"] = 100 if percentage is None else percentage
        return tolerated

    def map_run_tolerance(self) -> str:
        """The same policy as the S3-fed Distributed Map's own fields (one placeholder), which
        its Map Run enforces: there a failed job fails its child execution, and the Map's
        output is the ResultWriter's, so the template cannot count entries. "report" tolerates
        100%. A limit of 0 (count or percentage) means "no failure", rendered as the count 0
        alone: a zero threshold beside another reads as "unset" in places (the compat patch
        sfn-distributed-map-failures follows moto there), so none is ever rendered.
        """
        if self.failure_policy == "report":
            return '"ToleratedFailurePercentage": 100'
        count, percentage = self.tolerated_failure_count, self.tolerated_failure_percentage
        if count == 0 or percentage == 0:
            return '"ToleratedFailureCount": 0'
        fields = []
        if count is not None or percentage is None:
            fields.append(f'"ToleratedFailureCount": {count or 0}')
        if percentage is not None:
            fields.append(f'"ToleratedFailurePercentage": {percentage}')
        return ", ".join(fields)

    def template_values(self) -> dict[str, str]:
        skip = {
            "map_mode",
            "heartbeat_seconds",
            "timeout_seconds",
            "max_queue_wait_seconds",
            "job_timeout_seconds",
            "failure_policy",
            "tolerated_failure_count",
            "tolerated_failure_percentage",
        }
        values = {k: str(v) for k, v in asdict(self).items() if k not in skip}
        values["task_timeouts"] = self.task_timeouts()
        values["tolerated_failures"] = json.dumps(self.tolerated_failures())
        values["map_run_tolerance"] = self.map_run_tolerance()
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
