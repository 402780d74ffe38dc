"""An execution's end is published at once: its status together with its output, error and cause.

**AWS.** DescribeExecution "returns the output of an execution ... only if the execution has
succeeded" (``output``: "the JSON output data of the execution", DescribeExecution API
reference), and a FAILED execution carries its ``error`` and ``cause``. A caller that sees
``SUCCEEDED`` reads the output in the same answer: there is no moment at which an execution has
ended without them.

**moto 5.2.5.** When its interpreter ends, ``_reflect_execution_status`` sets the status first
and the output (or the error and cause) in a second statement. A DescribeExecution answered by
another thread between the two says ``SUCCEEDED`` without an output (or ``FAILED`` without an
error). The demo polls the execution while it ends, and such an answer makes it read a
successful run as every job failed.

**The patch** sets the stop date, output, error and cause first and the status last, so every
answer is either still ``RUNNING`` or complete. An execution that reached the history limit
(``sfn-history-event-limit``) ends FAILED with that limit's error and cause, whatever state its
interrupted interpreter ends in.
"""

from __future__ import annotations

import datetime
from typing import Any

from bridge.local_stack.compat.patch import Patch, Replacement, expect
from bridge.local_stack.compat.sfn_limits import history_limit_failure


def atomic_execution_end() -> list[Replacement]:
    """DescribeExecution answers an ended execution's status with its ``output`` (SUCCEEDED) or
    ``error`` and ``cause`` (FAILED) (DescribeExecution API reference). moto 5.2.5 sets the
    status before them, so a describe in between sees the status alone. The patch publishes
    the status last (see the module docstring)."""
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded, ProgramError
    from moto.stepfunctions.parser.backend.execution import (
        BaseExecutionWorkerCommunication as Communication,
    )

    original = expect(Communication, "_reflect_execution_status")

    def _reflect_execution_status(self: Any) -> None:
        execution = self.execution
        state = execution.exec_worker.env.program_state()
        history_failure = history_limit_failure(execution.exec_worker)
        if history_failure is None and not isinstance(state, ProgramEnded | ProgramError):
            original(self)  # stopped or timed out: the status is all there is to publish
            return
        execution.stop_date = datetime.datetime.now(tz=datetime.UTC)
        if history_failure is not None:  # sfn-history-event-limit: AWS ends it this way
            execution.output = None
            execution.error, execution.cause = history_failure["error"], history_failure["cause"]
            execution.exec_status = ExecutionStatus.FAILED
        elif isinstance(state, ProgramEnded):
            execution.output = execution.exec_worker.env.states.get_input()
            execution.exec_status = ExecutionStatus.SUCCEEDED
        else:
            execution.error = state.error.get("error")
            execution.cause = state.error.get("cause")
            execution.exec_status = ExecutionStatus.FAILED

    return [Replacement(Communication, "_reflect_execution_status", _reflect_execution_status)]


PATCHES: list[Patch] = [
    Patch(
        "sfn-atomic-execution-end",
        "an ended execution's status is published with its output, error and cause",
        atomic_execution_end,
    ),
]
