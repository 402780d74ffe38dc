"""RedriveExecution: run an unsuccessful execution again in place, without redoing the Map
iterations that already ended.

**AWS.** RedriveExecution (API reference) "restarts unsuccessful executions of Standard
workflows ... failed, aborted, or timed out ... it continues the failed execution from the
unsuccessful step and uses the same input. Step Functions preserves the results and execution
history of the successful steps, and doesn't rerun these steps ... Redriven executions use the
same state machine definition and execution ARN"; for an Inline Map it "reschedules and redrives
only the iterations ... that failed or aborted". A RUNNING or SUCCEEDED execution is refused
with ``ExecutionNotRedrivable``; DescribeExecution then shows ``redriveCount`` (0 until the
first redrive) and ``redriveDate``, ListExecutions the same per item, and the history goes on
after an ``ExecutionRedriven`` event.

**moto 5.2.5** has no such action (HTTP 500).

**What the patch models.** A redrive runs the execution's definition again from its start, with
the same input, ARN, name and start date, in a fresh interpreter; every Inline Map iteration that
ended successfully in an earlier attempt (``MapIterationSucceeded``: for the bridge's machine
that includes a job whose failure its Catch turned into data) returns the output it had then
without running, and the others (failed, aborted, never started) run. The execution is
``RUNNING`` again at once, ``redriveCount`` is incremented and ``redriveDate`` set; its history
is the earlier attempts' events, then ``ExecutionRedriven`` in place of the new attempt's
``ExecutionStarted``, then the new attempt's events.

For a machine whose states outside its Maps are pure (Choice, Pass, Fail, Succeed: the
bridge's), running from the start with the iterations reused ends as AWS's resume "from the
unsuccessful step" does: an execution the failure policy failed (``Bridge.JobsFailed``; its
jobs are finished iterations) fails again without sending a job, while one stopped or timed out
in the middle of its Map sends only the jobs that had not finished.

**Not modelled.** Task states outside a Map run again (AWS keeps their results); a Distributed
Map's Map Run is not redriven (refused with ``ExecutionNotRedrivable`` naming this patch);
a Map nested in a Map iteration shares indices across its parent's iterations (not reused);
the history-event limit counts each attempt alone (AWS: the whole history); the 14-day and
1,000-redrive limits; ``clientToken`` idempotency.

Each attempt keeps its succeeded iterations' outputs beside its event history (on its
``EventManager``), which moto keeps as long as the execution, and which already holds each of
those outputs in its events; a redrive carries them, with those of earlier attempts, to the
new attempt.
"""

from __future__ import annotations

import datetime
import threading
from typing import Any

from bridge.local_stack.compat.patch import Patch, Replacement, expect
from bridge.local_stack.compat.sfn_copies import json_copy

REDRIVE = "sfn-redrive-execution"
CODE = "ExecutionNotRedrivable"
REDRIVABLE = ("FAILED", "TIMED_OUT", "ABORTED")
#: Where an attempt keeps its succeeded iterations' outputs: an attribute of its EventManager
#: (shared by every frame of the attempt), {(Map state name, iteration index): output}.
_KEPT = "_bridge_iteration_outputs"
#: execution ARN -> the outputs of its earlier attempts' succeeded iterations (redriven ones
#: only): what the current attempt reuses.
_carried: dict[str, dict[tuple[str, int], Any]] = {}
_lock = threading.Lock()
#: Attribute of moto's Execution holding (redrive count, redrive date, earlier attempts' events).
_ATTEMPTS = "_bridge_redrive"
_MISSING = object()


def _execution_id(env: Any) -> str | None:
    execution = env.states.context_object.context_object_data.get("Execution") or {}
    value = execution.get("Id")
    return str(value) if value else None


def _kept(event_manager: Any) -> dict[tuple[str, int], Any]:
    with _lock:
        kept: dict[tuple[str, int], Any] | None = getattr(event_manager, _KEPT, None)
        if kept is None:
            kept = {}
            setattr(event_manager, _KEPT, kept)
        return kept


def _reusable(arn: str, key: tuple[str, int]) -> Any:
    with _lock:
        found = _carried.get(arn, {}).get(key, _MISSING)
    return found if found is _MISSING else json_copy(found)


def reuse_iterations() -> list[Replacement]:
    """AWS (API reference, RedriveExecution): for an Inline Map a redrive "reschedules and
    redrives only the iterations ... that failed or aborted". moto 5.2.5 keeps no iteration's
    result beyond its execution's attempt. The patch records each Inline Map iteration's output
    when it succeeds, and on a redriven execution answers an iteration that succeeded before
    with that output instead of running it. Replaces ``IterationWorker._eval_job`` (the Inline
    Map's and the legacy Iterator's; the Distributed Map's worker has its own)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        iteration_worker as module,
    )
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded

    owner = module.IterationWorker
    original = expect(owner, "_eval_job")
    expect(owner, "stopped")

    def _eval_job(self: Any, env: Any, job: Any) -> None:
        arn = _execution_id(env)
        key = (str(self._work_name), int(job.job_index))
        if arn is not None:
            reused = _reusable(arn, key)
            if reused is not _MISSING:
                job.job_output = reused  # AWS does not run it again, nor log it again
                return
        original(self, env, job)
        succeeded = not isinstance(job.job_output, Exception) and not self.stopped()
        if succeeded and isinstance(env.program_state(), ProgramEnded):
            _kept(env.event_manager)[key] = json_copy(job.job_output)

    return [Replacement(owner, "_eval_job", _eval_job)]


def redrive_execution() -> list[Replacement]:
    """AWS (API reference, RedriveExecution): restarts a FAILED, TIMED_OUT or ABORTED Standard
    execution in place, rerunning only what did not succeed; ``ExecutionNotRedrivable`` for
    any other. moto 5.2.5 has no such action. Adds ``StepFunctionResponse.redrive_execution``
    (see the module docstring for what is modelled), and replaces ``Execution
    .to_history_output`` (earlier attempts' events first) and ``StepFunctionResponse
    .describe_execution`` / ``list_executions`` (``redriveCount``, ``redriveDate``,
    ``redriveStatus``)."""
    from moto.core.exceptions import AWSError
    from moto.core.responses import ActionResult
    from moto.stepfunctions.parser.backend.execution import Execution
    from moto.stepfunctions.responses import StepFunctionResponse

    to_history = expect(Execution, "to_history_output")
    describe = expect(StepFunctionResponse, "describe_execution")
    list_executions = expect(StepFunctionResponse, "list_executions")
    expect(Execution, "start")

    class ExecutionNotRedrivable(AWSError):
        TYPE = CODE
        STATUS = 400

    def respond(self: Any) -> Any:
        arn = self._get_param("executionArn")
        execution = self.stepfunction_backend.describe_execution(arn)  # or ExecutionDoesNotExist
        with _lock:
            status = str(execution.status)
            if status not in REDRIVABLE:
                raise ExecutionNotRedrivable(f"Execution is {status} and cannot be redriven")
            worker = execution.exec_worker
            env = None if worker is None else worker.env
            if env is not None and env.map_run_record_pool_manager.get_all():
                raise ExecutionNotRedrivable(
                    "the embedded stack does not redrive a Distributed Map's Map Run "
                    f"(compat patch {REDRIVE})"
                )
            count, _, _ = getattr(execution, _ATTEMPTS, (0, None, []))
            events = history_events(execution)
            now = datetime.datetime.now(tz=datetime.UTC)
            setattr(execution, _ATTEMPTS, (count + 1, now, events))
            if env is not None:
                _carried[arn] = {**_carried.get(arn, {}), **getattr(env.event_manager, _KEPT, {})}
            for name in ("stop_date", "output", "error", "cause"):
                setattr(execution, name, None)
            execution.exec_worker = None
            execution.start()  # RUNNING at once, as AWS answers
        return ActionResult({"redriveDate": now})

    def history_events(execution: Any) -> list[dict[str, Any]]:
        """Every event so far: earlier attempts', then this attempt's (renumbered)."""
        _, _, earlier = getattr(execution, _ATTEMPTS, (0, None, []))
        if execution.exec_worker is None or execution.exec_worker.env is None:
            return list(earlier)  # a new attempt before its interpreter started
        current = list(to_history(execution)["events"])
        if not earlier:
            return current
        count = getattr(execution, _ATTEMPTS)[0]
        offset = len(earlier)
        events = list(earlier)
        for event in current:
            event = dict(event)
            event["id"] = int(event["id"]) + offset
            previous = int(event.get("previousEventId") or 0)
            event["previousEventId"] = previous + offset if previous else offset
            if event.get("type") == "ExecutionStarted":
                event.pop("executionStartedEventDetails", None)
                event["type"] = "ExecutionRedriven"
                event["executionRedrivenEventDetails"] = {"redriveCount": count}
            events.append(event)
        return events

    def to_history_output(self: Any) -> Any:
        answer = to_history(self)
        if getattr(self, _ATTEMPTS, None) is not None:
            answer["events"] = history_events(self)
        return answer

    def redrive_fields(execution: Any, with_status: bool) -> dict[str, Any]:
        count, date, _ = getattr(execution, _ATTEMPTS, (0, None, []))
        fields: dict[str, Any] = {"redriveCount": count}
        if date is not None:
            fields["redriveDate"] = date
        if with_status:
            status = str(execution.status)
            redrivable = status in REDRIVABLE
            fields["redriveStatus"] = "REDRIVABLE" if redrivable else "NOT_REDRIVABLE"
            if not redrivable:
                fields["redriveStatusReason"] = f"Execution is {status} and cannot be redriven"
        return fields

    def describe_execution(self: Any) -> Any:
        answer = describe(self)
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        answer.result.update(redrive_fields(execution, with_status=True))
        return answer

    def list_with_redrives(self: Any) -> Any:
        answer = list_executions(self)
        items = answer.result.get("executions") or []
        for item in items:
            execution = self.stepfunction_backend.describe_execution(item["executionArn"])
            item.update(redrive_fields(execution, with_status=False))
        return answer

    return [
        Replacement(StepFunctionResponse, "redrive_execution", respond, adds=True),
        Replacement(Execution, "to_history_output", to_history_output),
        Replacement(StepFunctionResponse, "describe_execution", describe_execution),
        Replacement(StepFunctionResponse, "list_executions", list_with_redrives),
    ]


def forget() -> None:
    """Drop the outputs carried to redriven executions (the stack stopped)."""
    with _lock:
        _carried.clear()


PATCHES: list[Patch] = [
    Patch(
        "sfn-redrive-reuse-iterations",
        "a redriven execution does not run again the Map iterations that succeeded",
        reuse_iterations,
    ),
    Patch(
        REDRIVE,
        "RedriveExecution reruns a FAILED, TIMED_OUT or ABORTED execution in place "
        "(ExecutionNotRedrivable otherwise)",
        redrive_execution,
        cleanup=forget,
    ),
]
