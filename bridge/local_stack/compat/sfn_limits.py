"""Step Functions patches (sfn_limits): AWS's limits, enforced by the embedded stack so that a
fan-out that passes locally does not fail on AWS. The figures come from :mod:`bridge.limits`;
each function below builds one named patch whose docstring states the AWS behaviour, its source
and how moto 5.2.5 differs. Where a limit cannot be enforced exactly, the stack logs a warning
once (:func:`warn_once`) and docs/local-stack.md ("AWS limits enforced locally") says so.

Costs stay per event or per request, never per history: the history limit compares the id moto
already assigns to each event, and the size checks measure strings moto already has.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from bridge.limits import (
    HISTORY_EVENTS,
    HISTORY_LIMIT_CAUSE,
    HISTORY_LIMIT_ERROR,
    PAYLOAD_BYTES,
    VALIDATION_ERROR,
    effective_concurrency,
    payload_bytes,
)
from bridge.local_stack.compat.patch import Patch, Replacement, expect
from bridge.local_stack.compat.sfn_failure import states_failure

logger = logging.getLogger("bridge.local_stack.limits")

_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(key: str, message: str) -> None:
    """Log ``message`` as a warning the first time ``key`` is seen in this process."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    logger.warning("embedded stack: %s", message)


def _forget_warnings() -> None:
    with _warned_lock:
        _warned.clear()


def _validation_error(message: str) -> Exception:
    from moto.core.exceptions import AWSError

    class ValidationException(AWSError):
        """A field over its API length constraint, as AWS's request validation answers it."""

        TYPE = VALIDATION_ERROR
        STATUS = 400

    return ValidationException(message)


def _too_long(field: str) -> str:
    return (
        f"1 validation error detected: Value at '{field}' failed to satisfy constraint: "
        f"Member must have length less than or equal to {PAYLOAD_BYTES}"
    )


def inline_max_concurrency() -> list[Replacement]:
    """An INLINE Map runs at most 40 iterations concurrently, whatever ``MaxConcurrency`` says:
    0 (no limit) and any value above 40 mean 40; a value from 1 to 40 is kept (Step Functions
    developer guide: "Map state in Inline mode", up to 40 concurrent iterations; "Step Functions
    service quotas").
    moto 5.2.5 starts one worker thread per item when ``MaxConcurrency`` is 0 and as many as
    asked otherwise. The cap is applied to the INLINE eval inputs only, so DISTRIBUTED maps
    (up to 10,000 child executions) are left alone."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        inline_iteration_component as base,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (  # noqa: E501
        inline_item_processor,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iterator import (
        inline_iterator,
    )

    base_init = expect(base.InlineIterationComponentEvalInput, "__init__")

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if "max_concurrency" in kwargs:
            kwargs["max_concurrency"] = effective_concurrency(int(kwargs["max_concurrency"]))
        elif len(args) > 1:
            args = (args[0], effective_concurrency(int(args[1])), *args[2:])
        base_init(self, *args, **kwargs)

    return [
        Replacement(inline_iterator.InlineIteratorEvalInput, "__init__", __init__),
        Replacement(inline_item_processor.InlineItemProcessorEvalInput, "__init__", __init__),
    ]


class _HistoryGuard:
    """One execution's history budget: set on its (root) event manager, which INLINE Map
    iterations share, so their events count in the parent's 25,000 as on AWS."""

    __slots__ = ("details", "worker")

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.details: dict[str, str] | None = None

    def trip(self, details: dict[str, str]) -> None:
        """End the execution now: FAILED with ``details``, its waiting tasks interrupted."""
        self.details = details
        env = self.worker.env
        env.set_error(details)
        for endpoint in list(env.callback_pool_manager._pool.values()):
            endpoint.interrupt_all()
        self.worker._execution_communication.terminated()


_GUARD = "_callback_bridge_history_guard"


def history_limit_failure(worker: Any) -> dict[str, str] | None:
    """The error and cause of an execution that reached the history limit, else None."""
    env = getattr(worker, "env", None)
    guard: _HistoryGuard | None = getattr(getattr(env, "event_manager", None), _GUARD, None)
    return guard.details if guard is not None else None


def history_event_limit() -> list[Replacement]:
    """An execution's history holds at most 25,000 events; the execution that reaches it fails
    with ``States.Runtime``, cause "The execution reached the maximum number of history events
    (25000).", and that ExecutionFailed event is event 25,000 (Step Functions developer guide,
    "Step Functions service quotas": maximum execution history size, 25,000 events; the error
    and cause as AWS reports them: loads/ardere#86,
    aws-solutions/distributed-load-testing-on-aws#335, and floci-io/floci#2734, whose history
    dump shows ExecutionFailed as event 25,000 with previousEventId 24,999). moto 5.2.5 has no
    limit. The patch compares each event's id (which moto already assigns) to the limit: event
    25,000 becomes the ExecutionFailed event, the execution ends FAILED at once (waiting tasks
    are interrupted), and later events are dropped. Not exact: a terminal event that would
    itself be event 25,000 fails the execution too; Distributed Map child executions are not
    limited (their own 25,000 each on AWS; warned once). The execution's end is published as
    that failure by ``sfn-atomic-execution-end`` (:func:`history_limit_failure`), whatever
    state the interrupted interpreter ends in."""
    from moto.stepfunctions.parser.api import HistoryEventType
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    original_env = expect(ExecutionWorker, "_get_evaluation_environment")
    original_publish = expect(EventManager, "_publish_history_event")
    failed = HistoryEventType.ExecutionFailed
    map_run_started = HistoryEventType.MapRunStarted

    def _get_evaluation_environment(self: Any) -> Any:
        env = original_env(self)
        setattr(env.event_manager, _GUARD, _HistoryGuard(self))
        return env

    def _publish_history_event(
        self: Any,
        event_id: int,
        source_event_id: int,
        event_type: Any,
        timestamp: Any,
        event_details: Any,
    ) -> None:
        guard: _HistoryGuard | None = getattr(self, _GUARD, None)
        if guard is None or event_id < HISTORY_EVENTS:
            if event_type == map_run_started and guard is not None:
                warn_once(
                    "history-distributed",
                    f"Distributed Map child executions are not held to {HISTORY_EVENTS:,} "
                    "history events each (AWS limits each child execution's own history)",
                )
            original_publish(self, event_id, source_event_id, event_type, timestamp, event_details)
            return
        if event_id > HISTORY_EVENTS or guard.details is not None:
            return  # the execution has ended: AWS records nothing after its failure
        details = {"error": HISTORY_LIMIT_ERROR, "cause": HISTORY_LIMIT_CAUSE}
        event_details = {"executionFailedEventDetails": details}
        original_publish(self, event_id, event_id - 1, failed, timestamp, event_details)
        guard.trip(details)

    return [
        Replacement(ExecutionWorker, "_get_evaluation_environment", _get_evaluation_environment),
        Replacement(EventManager, "_publish_history_event", _publish_history_event),
    ]


def execution_input_limit() -> list[Replacement]:
    """StartExecution refuses an ``input`` over 262,144 bytes (UTF-8) with a
    ``ValidationException`` ("StartExecution" API reference: input, "Length constraints apply
    to the payload size, and are expressed as bytes in UTF-8 encoding", maximum length 262144;
    "Step Functions service quotas": 256 KiB for a task, state or execution's input or output).
    The error name is AWS's for an API length constraint (the same API answers
    ``ValidationException ... Member must have length less than or equal to 80`` for ``name``,
    wolfeidau/buildkite-serverless-agent#37); not yet checked against AWS for ``input``.
    moto 5.2.5 starts the execution whatever the input's size."""
    from moto.stepfunctions.responses import StepFunctionResponse

    original = expect(StepFunctionResponse, "start_execution")

    def start_execution(self: Any) -> Any:
        document = self._get_param("input")
        if document is not None and payload_bytes(document) > PAYLOAD_BYTES:
            raise _validation_error(_too_long("input"))
        return original(self)

    return [Replacement(StepFunctionResponse, "start_execution", start_execution)]


def callback_output_limit() -> list[Replacement]:
    """SendTaskSuccess refuses an ``output`` over 262,144 bytes (UTF-8) with a
    ``ValidationException`` ("SendTaskSuccess" API reference: output, maximum length 262144,
    bytes in UTF-8); the task keeps waiting for a valid callback. moto 5.2.5 accepts it and then
    fails the task with ``States.DataLimitExceeded``, which a Catch on ``States.ALL`` turns into
    a job failure that AWS would never have produced (the worker would have been told)."""
    from moto.stepfunctions.responses import StepFunctionResponse

    original = expect(StepFunctionResponse, "send_task_success")

    def send_task_success(self: Any) -> Any:
        output = self._get_param("output")
        if output is not None and payload_bytes(output) > PAYLOAD_BYTES:
            raise _validation_error(_too_long("output"))
        return original(self)

    return [Replacement(StepFunctionResponse, "send_task_success", send_task_success)]


def payload_limit_inclusive() -> list[Replacement]:
    """State output, task output and a Lambda's result may be up to 262,144 bytes inclusive;
    one byte more fails with ``States.DataLimitExceeded`` ("Step Functions service quotas":
    256 KiB; API references: "Maximum length of 262144" for every payload field).
    moto 5.2.5 (``quotas.is_within_size_quota``) fails a payload of exactly 262,144 bytes, and
    measures JSON with spaces after separators and non-ASCII characters escaped, so it fails
    smaller payloads too; the patch measures compact JSON in UTF-8.
    moto's own checks stay in place otherwise: a task result over the limit is a TaskFailed
    with ``States.DataLimitExceeded`` that a Catch on ``States.ALL`` does catch, and a state
    output over it fails the execution, uncaught, exactly as AWS recorded them (LocalStack's
    AWS-validated snapshots, tests/aws/services/stepfunctions/v2/error_handling/
    test_states_errors.snapshot.json; the "Error names" page says ``States.ALL`` does not catch
    ``States.DataLimitExceeded``, which holds for the terminal, state-level failure)."""
    from moto.stepfunctions.parser.asl.component.state import state
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service,
    )

    def is_within_size_quota(value: Any) -> bool:
        return payload_bytes(value) <= PAYLOAD_BYTES

    modules = (state, state_task_lambda, state_task_service)
    for module in modules:
        expect(module, "is_within_size_quota")
    return [Replacement(m, "is_within_size_quota", is_within_size_quota) for m in modules]


#: Our wording: AWS documents the condition and the error name, not the cause's text.
PARAMETERS_CAUSE = (
    "The state/task '{name}' has an input, after Parameters processing, with a size exceeding "
    "the maximum number of bytes service limit."
)


def task_parameters_limit() -> list[Replacement]:
    """A task whose input after ``Parameters`` processing is over 262,144 bytes fails with
    ``States.DataLimitExceeded`` (Step Functions developer guide, "Handling errors in Step
    Functions workflows", error names:
    "The input of a state is larger than the payload size quota after Parameters processing").
    moto 5.2.5 does not check it: the bridge's SQS task would send the oversized job message and
    report SQS's error instead. The patch measures the parameters once, before the task is
    scheduled, and fails the task (a Retry or Catch sees it, like moto's own check of a task's
    result). Not exact: the cause's wording is ours (AWS documents only the error name)."""
    from moto.stepfunctions.parser.api import HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service as module,
    )

    owner = module.StateTaskService
    original = expect(owner, "_before_eval_execution")
    error_type = StatesErrorNameType.StatesStatesDataLimitExceeded

    def _before_eval_execution(
        self: Any,
        env: Any,
        resource_runtime_part: Any,
        raw_parameters: Any,
        state_credentials: Any,
    ) -> None:
        if payload_bytes(raw_parameters) > PAYLOAD_BYTES:
            raise states_failure(
                env,
                error_type,
                HistoryEventType.TaskFailed,
                "taskFailedEventDetails",
                cause=PARAMETERS_CAUSE.format(name=self.name),
                resourceType=self._get_sfn_resource_type(),
                resource=self._get_sfn_resource(),
            )
        original(self, env, resource_runtime_part, raw_parameters, state_credentials)

    return [Replacement(owner, "_before_eval_execution", _before_eval_execution)]


PATCHES: list[Patch] = [
    Patch(
        "sfn-inline-max-concurrency",
        "an INLINE Map runs at most 40 iterations at once",
        inline_max_concurrency,
    ),
    Patch(
        "sfn-history-event-limit",
        "an execution fails with States.Runtime at 25,000 history events",
        history_event_limit,
        cleanup=_forget_warnings,
    ),
    Patch(
        "sfn-execution-input-limit",
        "StartExecution refuses input over 256 KiB",
        execution_input_limit,
    ),
    Patch(
        "sfn-callback-output-limit",
        "SendTaskSuccess refuses output over 256 KiB",
        callback_output_limit,
    ),
    Patch(
        "sfn-task-parameters-limit",
        "a task's input after Parameters over 256 KiB fails with States.DataLimitExceeded",
        task_parameters_limit,
    ),
    Patch(
        "sfn-payload-limit-inclusive",
        "payloads of exactly 256 KiB are accepted",
        payload_limit_inclusive,
    ),
]
