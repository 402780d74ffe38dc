"""Step Functions patches: make moto's interpreter answer callbacks, stops and Map failures the
way AWS does. Each function below builds one named patch; its docstring is the AWS behaviour,
with the documentation page it comes from, and how moto 5.2.5 differs.
"""

from __future__ import annotations

import functools
import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

from bridge.local_stack.compat.patch import Patch, Replacement, expect
from bridge.local_stack.compat.sfn_failure import states_failure

CLOSED_TASK_MESSAGE = "Provided task does not exist anymore"
TOLERANCE_EXCEEDED_CAUSE = "The specified tolerated failure threshold was exceeded"


def _task_timed_out_error() -> type[Exception]:
    from moto.core.exceptions import AWSError

    class TaskTimedOut(AWSError):
        """Server-side error: moto's parser-level ``TaskTimedOut`` reaches clients with an
        empty error code through the server, so raise one in the style of
        ``moto/stepfunctions/exceptions.py`` instead."""

        TYPE = "TaskTimedOut"
        STATUS = 400

    return TaskTimedOut


def unnamed_execution() -> list[Replacement]:
    """StartExecution without ``name``: AWS names the execution with a fresh UUID ("If you
    don't provide a name for the execution, Step Functions automatically generates a
    universally unique identifier (UUID) as the execution name", StartExecution API
    reference). moto 5.2.5 names it ``None``, so a second unnamed start fails with
    ``ExecutionAlreadyExists`` (other input) or returns the first execution (same input)."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend as Backend

    original = expect(Backend, "start_execution")

    def start_execution(
        self: Any,
        state_machine_arn: str,
        name: str | None = None,
        execution_input: str | None = None,
        trace_header: Any = None,
    ) -> Any:
        return original(
            self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header
        )

    return [Replacement(Backend, "start_execution", start_execution)]


def _open_endpoint(backend: Any, token: str, timed_out: type[Exception]) -> Any:
    """The callback endpoint of an *open* task, or the error AWS answers."""
    from moto.stepfunctions.exceptions import InvalidToken

    for execution in backend._get_executions():
        worker = getattr(execution, "exec_worker", None)
        if worker is None:
            continue
        endpoint = worker.env.callback_pool_manager.get(token)
        if endpoint is None:
            continue
        closed = (
            not worker.env.is_running()
            or endpoint.get_outcome() is not None
            or endpoint.consumer_error is not None
            or endpoint._notify_event.is_set()
        )
        if closed:
            raise timed_out(CLOSED_TASK_MESSAGE)
        return endpoint
    raise InvalidToken()


def closed_token() -> list[Replacement]:
    """A callback with the token of a task that has closed (it succeeded, failed, timed out,
    or its execution was stopped or ended) answers ``TaskTimedOut`` ("TaskTimedOut: The task
    token has either expired or the task associated with the token has already been closed",
    SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat API references). moto 5.2.5 looks
    only at running executions and answers ``InvalidToken`` for a closed task's token, and
    accepts a second SendTaskSuccess for a task that already completed while its execution
    still runs."""
    from moto.stepfunctions.parser.asl.eval.callback.callback import (
        CallbackOutcomeFailure,
        CallbackOutcomeSuccess,
    )
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend as Backend

    timed_out = _task_timed_out_error()

    def send_task_success(self: Any, task_token: str, outcome: str) -> None:
        _open_endpoint(self, task_token, timed_out).notify(
            CallbackOutcomeSuccess(callback_id=task_token, output=outcome)
        )

    def send_task_failure(
        self: Any, task_token: str, error: str | None = None, cause: str | None = None
    ) -> dict[str, Any]:
        _open_endpoint(self, task_token, timed_out).notify(
            CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause)
        )
        return {}

    def send_task_heartbeat(self: Any, task_token: str) -> None:
        # A task without HeartbeatSeconds accepts heartbeats too (they are no-ops on AWS).
        _open_endpoint(self, task_token, timed_out).notify_heartbeat()

    return [
        Replacement(Backend, "send_task_success", send_task_success),
        Replacement(Backend, "send_task_failure", send_task_failure),
        Replacement(Backend, "send_task_heartbeat", send_task_heartbeat),
    ]


def fresh_token_per_retry() -> list[Replacement]:
    """Each attempt of a ``.waitForTaskToken`` task, retries included, gets a new task token
    (every attempt is a new TaskScheduled event with its own ``$$.Task.Token``, "Wait for a
    Callback with Task Token", Step Functions developer guide). moto 5.2.5 makes one token per
    state entry and reuses it for retries, so a retry's endpoint still holds the previous
    attempt's outcome."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as module,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
        ResourceCondition,
    )

    owner = module.StateTaskServiceCallback
    original = expect(owner, "_evaluate_with_timeout")

    def _evaluate_with_timeout(self: Any, env: Any) -> None:
        state = env.states.context_object.context_object_data.get("State", {})
        waits = (
            self._is_integration_pattern()
            and ResourceCondition.WaitForTaskToken in self._supported_integration_patterns
        )
        if waits and state.get("RetryCount", 0) > 0:
            env.callback_pool_manager.add(env.states.context_object.update_task_token())
        original(self, env)

    return [Replacement(owner, "_evaluate_with_timeout", _evaluate_with_timeout)]


def stop_waiting_execution() -> list[Replacement]:
    """StopExecution of an execution whose task waits for its token: AWS marks the execution
    ``ABORTED`` at once, and from then on SendTaskHeartbeat / Success / Failure with its tokens
    answer ``TaskTimedOut`` (StopExecution API reference; "a worker learns of cancellation only
    by heartbeating"). moto 5.2.5 leaves the task waiting, so the execution stays ``RUNNING``
    until the task's timeout and then ends ``FAILED`` (``States.Timeout``), because the
    interpreter's ``set_error`` overwrites the program's stopped state. The patch interrupts the
    execution's pending callback endpoints on stop and keeps a stopped program stopped; the
    ``closed_token`` patch makes later callbacks answer ``TaskTimedOut``."""
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
    from moto.stepfunctions.parser.backend.execution import Execution

    original_stop = expect(Execution, "stop")
    original_set_error = expect(Environment, "set_error")

    def stop(self: Any, stop_date: Any, error: str | None, cause: str | None) -> None:
        original_stop(self, stop_date, error, cause)
        worker = self.exec_worker
        if worker is not None:
            for endpoint in list(worker.env.callback_pool_manager._pool.values()):
                endpoint.interrupt_all()

    def set_error(self: Any, error: Any) -> None:
        if isinstance(self._program_state, ProgramStopped):
            return  # a stopped program stays ABORTED, whatever its waiting tasks report
        original_set_error(self, error)

    return [Replacement(Execution, "stop", stop), Replacement(Environment, "set_error", set_error)]


def send_task_failure_cause() -> list[Replacement]:
    """SendTaskFailure keeps ``cause`` (up to 32,768 characters): it appears in the
    ``TaskFailed`` event, the execution's ``cause`` and a Catch's ``Cause`` (SendTaskFailure API
    reference). moto 5.2.5's server request handler never reads the parameter, so the cause is
    empty everywhere; its backend already accepts it."""
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self: Any) -> Any:
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"),
            error=self._get_param("error"),
            cause=self._get_param("cause"),
        )
        return EmptyResult()

    return [Replacement(StepFunctionResponse, "send_task_failure", send_task_failure)]


def _tolerance_exceeded(failed: int, total: int, count: int, percentage: float) -> bool:
    """AWS: zero tolerance by default; with a threshold set, exceeding either fails the run.
    (moto hands over 0 for an unset threshold, so 0 reads as "unset" when the other is set.)"""
    limits: list[tuple[float, float]] = [(failed, count)] if count > 0 else []
    if percentage > 0:
        limits.append((100.0 * failed / max(total, 1), percentage))
    return any(value > limit for value, limit in limits) if limits else failed > 0


def distributed_map_failures() -> list[Replacement]:
    """A Distributed Map run fails with ``States.ExceedToleratedFailureThreshold`` when its
    failed (or timed-out) child executions exceed ``ToleratedFailureCount`` /
    ``ToleratedFailurePercentage``, which are zero by default ("Setting failure thresholds for
    Distributed Map states", Step Functions developer guide). moto 5.2.5 ignores both: the
    parent ends ``SUCCEEDED`` with ``null`` in place of each failed item."""
    from moto.stepfunctions.parser.api import HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        distributed_iteration_component as module,
    )

    owner = module.DistributedIterationComponent
    original = expect(owner, "_map_run")
    error_type = StatesErrorNameType.StatesExceedToleratedFailureThreshold

    def _map_run(self: Any, env: Any, eval_input: Any) -> None:
        original(self, env, eval_input)
        items = eval_input.map_run_record.item_counter
        failed = items.failed.get() + items.timed_out.get()
        if not _tolerance_exceeded(
            failed,
            items.total.get(),
            eval_input.tolerated_failure_count,
            eval_input.tolerated_failure_percentage,
        ):
            return
        env.stack.pop()  # the partial outputs: a failed run has none
        raise states_failure(
            env,
            error_type,
            HistoryEventType.ExecutionFailed,
            "executionFailedEventDetails",
            cause=TOLERANCE_EXCEEDED_CAUSE,
        )

    return [Replacement(owner, "_map_run", _map_run)]


def _floats_for_percentages(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: float(value)
            if key == "ToleratedFailurePercentage"
            and isinstance(value, int)
            and not isinstance(value, bool)
            else _floats_for_percentages(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_floats_for_percentages(item) for item in node]
    return node


def integer_tolerated_percentage() -> list[Replacement]:
    """``ToleratedFailurePercentage`` is a number from 0 to 100, integers included ("Map state
    in Distributed mode", Step Functions developer guide). moto 5.2.5's grammar accepts only a
    decimal literal and rejects ``"ToleratedFailurePercentage": 50`` with an ASLParserException;
    the patch hands the parser such integers as decimals."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser as Parser

    original = expect(Parser, "parse")

    def parse(definition: str) -> Any:
        try:
            document = json.loads(definition)
        except (TypeError, ValueError):
            return original(definition)  # the parser reports the syntax error itself
        return original(json.dumps(_floats_for_percentages(document)))

    return [Replacement(Parser, "parse", staticmethod(parse))]


_sqs_clients: dict[tuple[str, str, str], Any] = {}
_sqs_clients_lock = threading.Lock()


def _forget_sqs_clients() -> None:
    with _sqs_clients_lock:
        _sqs_clients.clear()


def interpreter_sqs_client() -> list[Replacement]:
    """Speed, not behaviour: a Map fans out its SQS tasks at once ("Map state", Step Functions
    developer guide; inline Maps run up to 40 iterations concurrently), and on AWS a task's
    SendMessage costs the same however many run. moto 5.2.5's interpreter builds a new boto3
    client for every SQS task; with hundreds of iterations starting together, each thread also
    races to create boto3's default session, so a large Map's enqueueing slows down. The patch
    gives the SQS integration one shared (thread-safe) client per region and server port, which
    the embedded server answers in its own process (bridge.local_stack.in_process), as Step
    Functions' integrations run inside AWS."""
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_sqs as module,
    )

    original = expect(module, "boto_client_for")

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service, moto_server_port())
        with _sqs_clients_lock:
            if key not in _sqs_clients:
                client = original(region, service, state_credentials)
                served = _in_process_server
                if served is not None and str(served[0]) == str(key[2]):
                    served[1](client)
                _sqs_clients[key] = client
            return _sqs_clients[key]

    return [Replacement(module, "boto_client_for", boto_client_for)]


#: The embedded server this process runs, as (port, attach): ``attach(client)`` makes a client
#: pointed at it answered in process. Set by the server itself (it sits above the patches, so
#: the patch never imports it); None while no server runs.
_in_process_server: tuple[int, Callable[[Any], Any]] | None = None


def serve_in_process(port: int | None = None, attach: Callable[[Any], Any] | None = None) -> None:
    """Called by :class:`bridge.local_stack.server.EmbeddedServer` when it starts (its port and
    its in-process attach) and when it stops (no arguments)."""
    global _in_process_server
    _in_process_server = None if port is None or attach is None else (port, attach)


def warm_interpreter_sqs_client(region: str) -> None:
    """Build the interpreter's shared SQS client for ``region`` now (with the patch applied and
    the server running): the first one loads botocore's endpoint and service data, which
    otherwise happens inside the first execution's first task."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_sqs as module,
    )

    module.boto_client_for(region, "sqs")


def jsonpath_parse_cache() -> list[Replacement]:
    """Speed, not behaviour: on AWS the cost of a JSONPath in ``Parameters`` does not depend on
    how many Map iterations evaluate it ("Paths", Step Functions developer guide). moto 5.2.5
    builds a new JSONPath parser for every evaluation (about 15 per job of the bridge's
    template), which dominates a large Map's start-up, and ``ResultPath`` builds one more (a
    parser's tables: a millisecond per job) on every evaluation. Parsed expressions are
    immutable, so the patch memoises the parse per path string, in both places."""
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path as module

    return [
        Replacement(owner, "parse", functools.lru_cache(maxsize=4096)(expect(owner, "parse")))
        for owner in (module, result_path)
    ]


PATCHES: list[Patch] = [
    Patch("sfn-unnamed-execution", "unnamed executions get a fresh UUID name", unnamed_execution),
    Patch("sfn-closed-token", "callbacks for a closed task answer TaskTimedOut", closed_token),
    Patch(
        "sfn-fresh-token-per-retry",
        "each retry attempt gets a new task token",
        fresh_token_per_retry,
    ),
    Patch(
        "sfn-stop-waiting-execution",
        "StopExecution aborts a waiting execution at once",
        stop_waiting_execution,
    ),
    Patch(
        "sfn-send-task-failure-cause", "SendTaskFailure keeps its cause", send_task_failure_cause
    ),
    Patch(
        "sfn-distributed-map-failures",
        "failed children fail a Distributed Map run",
        distributed_map_failures,
    ),
    Patch(
        "sfn-integer-tolerated-percentage",
        "ToleratedFailurePercentage accepts integers",
        integer_tolerated_percentage,
    ),
    Patch(
        "sfn-shared-sqs-client",
        "a Map's SQS tasks do not each build a client",
        interpreter_sqs_client,
        cleanup=_forget_sqs_clients,
    ),
    Patch("sfn-jsonpath-parse-cache", "JSONPath parsing is memoised", jsonpath_parse_cache),
]
