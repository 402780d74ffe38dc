"""Run jobs again: a new execution of the bridge's state machine with their inputs
(``callback-bridge rerun``).

Jobs are grouped by the execution they came from, in order, and each group becomes one new
execution named ``<source name>-rerun-<8 hex>`` (so ``jobs list`` shows where it came from).
Its input is ``{"jobs": [...]}`` with each job's original Map item (its ``type`` included)
when AWS's limits allow, else the jobs go through S3 as ``run --jobs-file`` sends them
(:func:`bridge.ops.fanout.start_from_items`: an item file read by a Distributed Map): when the
input would exceed 256 KiB or an INLINE run's history would near 25,000 events.

``rerun --redrive`` (:func:`redrive`) instead asks Step Functions' own ``RedriveExecution``
to continue a FAILED, TIMED_OUT or ABORTED execution in place, from its unsuccessful step:
the jobs of a run stopped or timed out in the middle of its Map that had not finished run
again, in the same execution (same ARN, same job indices), the finished ones are kept. A
job whose failure the Map's Catch turned into data is a finished iteration, so an execution
the failure policy failed (``Bridge.JobsFailed``) would only fail again: that one is refused,
pointing to ``rerun EXECUTION``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from bridge.errors import error_code
from bridge.limits import LimitError, max_inline_jobs, plan_fan_out
from bridge.ops.fanout import start_from_items
from bridge.ops.jobs import Job, JobsError

#: Execution names: 1-80 characters; these are safe everywhere (S3 keys included).
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_SUFFIX = "-rerun-"


@dataclass
class Started:
    """One new execution and the jobs it runs again."""

    execution_arn: str
    source_execution_arn: str
    job_ids: list[str] = field(default_factory=list)
    #: "input" (``{"jobs": [...]}``) or "s3" (an item file in the fan-out bucket)
    via: str = "input"

    def to_json(self) -> dict[str, Any]:
        return {
            "execution_arn": self.execution_arn,
            "source_execution_arn": self.source_execution_arn,
            "job_ids": self.job_ids,
            "via": self.via,
        }


def rerun_name(source_name: str, token: str | None = None) -> str:
    """``<source name>-rerun-<8 hex>``, at most 80 characters, safe as an S3 key part."""
    tail = _SUFFIX + (token or uuid.uuid4().hex[:8])
    base = _UNSAFE.sub("-", source_name)[: 80 - len(tail)]
    return base + tail


def group(jobs: Iterable[Job]) -> dict[str, list[Job]]:
    """Jobs by source execution, each once, in the order given."""
    groups: dict[str, dict[int, Job]] = {}
    for job in jobs:
        groups.setdefault(job.execution_arn, {}).setdefault(job.index, job)
    return {arn: list(by_index.values()) for arn, by_index in groups.items()}


def needs_s3(inputs: list[Any]) -> bool:
    """Whether AWS's limits require the jobs to travel through S3 (raises for a job over
    256 KiB, which no route accepts)."""
    plan = plan_fan_out(inputs)
    return plan.needs_item_file or len(inputs) > max_inline_jobs()


def start_rerun(
    sfn: Any,
    s3: Any,
    state_machine_arn: str,
    jobs: list[Job],
    bucket: str | None = None,
    name: str | None = None,
) -> Started:
    """Start one execution running ``jobs`` (all of one source execution) again."""
    if not jobs:
        raise JobsError("no jobs to run again")
    missing = [job.job_id for job in jobs if job.input is None]
    if missing:
        raise JobsError(f"the input of {', '.join(missing)} is not recorded: cannot run it again")
    inputs = [job.input for job in jobs]
    source = jobs[0]
    name = name or rerun_name(source.execution_name)
    started = Started("", source.execution_arn, [job.job_id for job in jobs])
    try:
        through_s3 = needs_s3(inputs)
    except LimitError as exc:
        raise JobsError(str(exc)) from None
    if through_s3:
        if not bucket or s3 is None:
            raise JobsError(
                f"{len(inputs)} jobs must go through S3 (AWS's limits) and no fan-out bucket "
                "is configured: pass --bucket or set BRIDGE_FANOUT_BUCKET"
            )
        started.execution_arn = start_from_items(
            sfn, s3, state_machine_arn, bucket, inputs, name=name
        )
        started.via = "s3"
        return started
    answer = sfn.start_execution(
        stateMachineArn=state_machine_arn,
        name=name,
        input=json.dumps({"jobs": inputs}, separators=(",", ":")),
    )
    started.execution_arn = str(answer["executionArn"])
    return started


#: Statuses RedriveExecution accepts (RedriveExecution API reference).
REDRIVABLE = ("FAILED", "TIMED_OUT", "ABORTED")
#: The error the state machine ends with when more jobs failed than its policy tolerates.
POLICY_FAILURE = "Bridge.JobsFailed"


@dataclass(frozen=True)
class Redriven:
    """An execution redriven in place (``RedriveExecution``)."""

    execution_arn: str
    #: The status it had: FAILED, TIMED_OUT or ABORTED.
    previous_status: str
    redrive_count: int | None
    redrive_date: str

    def to_json(self) -> dict[str, Any]:
        return {
            "execution_arn": self.execution_arn,
            "previous_status": self.previous_status,
            "redrive_count": self.redrive_count,
            "redrive_date": self.redrive_date,
        }


def redrive(sfn: Any, execution_arn: str) -> Redriven:
    """``RedriveExecution`` of ``execution_arn``, after checking it can rerun something: a
    one-line :class:`JobsError` naming the execution and the reason otherwise (still running,
    succeeded, failed on the failure policy, or Step Functions' ``ExecutionNotRedrivable``)."""
    described = sfn.describe_execution(executionArn=execution_arn)
    status = str(described["status"])
    if status not in REDRIVABLE:
        raise JobsError(
            f"execution {execution_arn} is {status}: only a FAILED, TIMED_OUT or ABORTED "
            "execution can be redriven"
        )
    if described.get("error") == POLICY_FAILURE:
        raise JobsError(
            f"execution {execution_arn} failed on its failure policy ({POLICY_FAILURE}): its "
            "failed jobs are finished Map iterations, which RedriveExecution does not run "
            f"again (it would only fail again); run them in a new execution with "
            f"'callback-bridge rerun {execution_arn}'"
        )
    try:
        answer = sfn.redrive_execution(executionArn=execution_arn)
    except ClientError as exc:
        if not error_code(exc).endswith("ExecutionNotRedrivable"):
            raise
        reason = exc.response.get("Error", {}).get("Message") or "not redrivable"
        raise JobsError(f"execution {execution_arn} cannot be redriven: {reason}") from None
    after = sfn.describe_execution(executionArn=execution_arn)
    date = answer.get("redriveDate") or after.get("redriveDate")
    count = after.get("redriveCount")
    return Redriven(
        execution_arn,
        status,
        None if count is None else int(count),
        date.isoformat() if hasattr(date, "isoformat") else str(date or ""),
    )
