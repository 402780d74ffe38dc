"""Step Functions patches (sfn_s3_map): the S3-fed Distributed Map writes its results to S3.

The bridge's large fan-outs (``FanOutFromS3`` in the template, :mod:`bridge.ops.fanout`) read their
items from S3 and rely on the ``ResultWriter`` to put every child execution's result back in S3,
because the Map's own output would not fit in 256 KiB. moto 5.2.5 writes only an empty
``manifest.json`` (its code says "TODO: generate result files") and drops the results.
"""

from __future__ import annotations

import datetime
import json
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from bridge.local_stack.compat.patch import Patch, Replacement, expect

#: Result files hold at most this many entries each (AWS splits by size, up to 5 GB a file;
#: readers must follow the manifest, never guess file names).
ENTRIES_PER_FILE = 1000


@dataclass(frozen=True)
class _Child:
    """One child execution of a Map Run, as the ResultWriter reports it."""

    index: int
    input: Any
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None


_lock = threading.Lock()
#: Map Run ARN -> the children that ended so far; taken by the ResultWriter. A run that fails
#: (tolerance exceeded) never reaches its writer: only the latest runs are kept.
_children: dict[str, list[_Child]] = {}
_KEPT_RUNS = 64
#: The input the running child execution was given, per worker thread (after ItemSelector).
_current = threading.local()


def _forget() -> None:
    with _lock:
        _children.clear()


def _outcome(state: Any, output: Any) -> tuple[str, str | None, str | None]:
    """(status, error, cause) of a child whose program ended in ``state``."""
    from moto.stepfunctions.parser.asl.eval.program_state import (
        ProgramEnded,
        ProgramError,
        ProgramStopped,
        ProgramTimedOut,
    )

    if isinstance(state, ProgramError):
        details = state.error or {}
        return "FAILED", details.get("error"), details.get("cause")
    if isinstance(state, ProgramStopped):
        return "ABORTED", state.error, state.cause
    if isinstance(state, ProgramTimedOut):
        return "TIMED_OUT", "States.Timeout", None
    if isinstance(state, ProgramEnded) and output is not None:
        return "SUCCEEDED", None, None
    return "FAILED", "States.Runtime", "the child execution ended without an output"


def _record_children() -> list[Replacement]:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (  # noqa: E501
        distributed_item_processor_worker as module,
    )

    owner = module.DistributedItemProcessorWorker
    expect(owner, "_eval_input")
    original_job = expect(owner, "_eval_job")
    # Inherited from the inline worker, and looked up there on each call: another patch of the
    # inline worker's _eval_input (sfn-shared-map-input) then still applies to this one.
    parent: Any = owner.__mro__[1]

    def _eval_input(self: Any, env_frame: Any) -> None:
        parent._eval_input(self, env_frame)
        _current.input = env_frame.states.get_input()

    def _eval_job(self: Any, env: Any, job: Any) -> None:
        _current.input = job.job_input  # without an ItemSelector the item is the input
        try:
            original_job(self, env, job)
        finally:
            status, error, cause = _outcome(env.program_state(), job.job_output)
            child = _Child(job.job_index, _current.input, status, job.job_output, error, cause)
            run = self._map_run_record.map_run_arn
            with _lock:
                if run not in _children and len(_children) >= _KEPT_RUNS:
                    del _children[next(iter(_children))]  # the oldest run
                _children.setdefault(run, []).append(child)

    return [
        Replacement(owner, "_eval_input", _eval_input),
        Replacement(owner, "_eval_job", _eval_job),
    ]


def _entry(child: _Child, map_run_arn: str, state_machine_arn: str) -> dict[str, Any]:
    """One entry of a result file, with the fields AWS writes ("ResultWriter", Step Functions
    developer guide): Input and Output are JSON strings; failed children carry Error and Cause
    instead of an Output."""
    name = str(uuid.uuid4())
    # execution:<state machine>/<map run label>:<uuid>, as AWS names child executions.
    run = map_run_arn.split(":mapRun:", 1)[-1].split(":")[0]
    base = state_machine_arn.split(":stateMachine:", 1)[0]
    now = datetime.datetime.now(tz=datetime.UTC).isoformat()
    entry: dict[str, Any] = {
        "ExecutionArn": f"{base}:execution:{run}:{name}",
        "Input": json.dumps(child.input),
        "InputDetails": {"Included": True},
        "Name": name,
        "RedriveCount": 0,
        "RedriveStatus": "NOT_REDRIVABLE",
        "StartDate": now,
        "StateMachineArn": state_machine_arn,
        "Status": child.status,
        "StopDate": now,
    }
    if child.status == "SUCCEEDED":
        entry.update(Output=json.dumps(child.output), OutputDetails={"Included": True})
    else:
        entry.update(Error=child.error or "", Cause=child.cause or "")
    return entry


def _children_of(map_run_arn: str, outputs: list[Any]) -> list[_Child]:
    with _lock:
        children = _children.pop(map_run_arn, None)
    if children is None:  # no record (another patch replaced the worker): outputs only
        children = [
            _Child(i, None, "SUCCEEDED" if out is not None else "FAILED", out)
            for i, out in enumerate(outputs)
        ]
    return sorted(children, key=lambda child: child.index)


def _result_writer() -> list[Replacement]:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (  # noqa: E501
        resource_eval_s3 as module,
    )

    owner = module.ResourceEvalS3
    expect(owner, "_handle_put_object")
    get_client = expect(owner, "_get_s3_client")

    def _handle_put_object(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
        parameters = env.stack.pop()
        outputs = env.stack.pop()
        s3 = get_client(
            resource_runtime_part=resource_runtime_part, state_credentials=state_credentials
        )
        record = env.map_run_record_pool_manager.get_all()[-1]
        map_run_arn = record.map_run_arn
        bucket, prefix = parameters["Bucket"], parameters.get("Prefix", "")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        folder = f"{prefix}{map_run_arn.split(':')[-1]}/"
        # Aborted and timed-out children are filed with the failed ones (their Status says which).
        grouped: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": []}
        for child in _children_of(map_run_arn, outputs if isinstance(outputs, list) else []):
            entry = _entry(child, map_run_arn, record.map_state_machine_arn)
            grouped["SUCCEEDED" if child.status == "SUCCEEDED" else "FAILED"].append(entry)
        files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        for category, entries in grouped.items():
            for n in range(0, len(entries), ENTRIES_PER_FILE):
                key = f"{folder}{category}_{n // ENTRIES_PER_FILE}.json"
                body = json.dumps(entries[n : n + ENTRIES_PER_FILE]).encode()
                s3.put_object(Bucket=bucket, Key=key, Body=body)
                files[category].append({"Key": key, "Size": len(body)})
        manifest = {"DestinationBucket": bucket, "MapRunArn": map_run_arn, "ResultFiles": files}
        key = f"{folder}manifest.json"
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest, indent=2).encode())
        env.stack.append(
            {"MapRunArn": map_run_arn, "ResultWriterDetails": {"Bucket": bucket, "Key": key}}
        )

    return [Replacement(owner, "_handle_put_object", staticmethod(_handle_put_object))]


def result_writer_files() -> list[Replacement]:
    """A Distributed Map with a ``ResultWriter`` writes ``<Prefix>/<map run id>/manifest.json``
    listing result files (``SUCCEEDED_n.json``, ``FAILED_n.json``) that hold one entry per
    child execution: its input, and its output or its error and cause ("ResultWriter (Map)",
    Step Functions developer guide). moto 5.2.5 writes the manifest with no result files."""
    return _record_children() + _result_writer()


def result_writer_parameters() -> list[Replacement]:
    """A ``ResultWriter``'s ``Parameters`` paths (``"Bucket.$": "$.bucket"``) select from the
    Map state's input, like every other field of the state ("ResultWriter (Map)" and "Paths",
    Step Functions developer guide). moto 5.2.5 evaluates them against the Map's results list
    and fails the execution with ``States.Runtime`` (path not found)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer import (
        result_writer_decl as module,
    )

    owner = module.ResultWriter
    expect(owner, "_eval_body")

    def _eval_body(self: Any, env: Any) -> None:
        # The stack holds the results (the writer's handler pops them after the parameters).
        env.stack.append(env.states.get_input())
        self.parargs.eval(env=env)
        parameters = env.stack.pop()
        env.stack.pop()  # the state input
        env.stack.append(parameters)
        self.resource_eval.eval_resource(env=env)

    return [Replacement(owner, "_eval_body", _eval_body)]


PATCHES: list[Patch] = [
    Patch(
        "sfn-result-writer-parameters",
        "ResultWriter parameter paths select from the Map state's input",
        result_writer_parameters,
    ),
    Patch(
        "sfn-result-writer-files",
        "a Distributed Map's ResultWriter writes every child's result to S3",
        result_writer_files,
        cleanup=_forget,
    ),
]
