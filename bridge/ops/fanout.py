"""Large fan-outs the AWS way: jobs in S3, a Distributed Map, results in S3.

An execution input ``{"jobs": [...]}`` and a Map's output are each capped at 256 KiB, so a fan-out
of thousands of jobs cannot travel through them. Instead the jobs go to S3 as one JSON array
object, the execution input is ``{"items": {"bucket": B, "key": K}}`` (the template routes it to
``FanOutFromS3``, a Distributed Map with an ``ItemReader``), and the Map's ``ResultWriter`` puts
each job's result under ``s3://B/results/<execution name>/``. This module uploads, starts, waits
and reads those results back; clients are passed in (bridge/aws.py builds them).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge import strict_json
from bridge.contract import MAX_ENVELOPE_DEPTH, MAX_JSON_DEPTH, MAX_PAYLOAD_DEPTH
from bridge.limits import LimitError, check_items

#: Where job files go in the fan-out bucket; the state machine's role may read only these.
ITEMS_PREFIX = "items"
#: Where the template's ResultWriter writes (``results/<execution name>/<map run id>/``).
RESULTS_PREFIX = "results"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


class FanOutError(ValueError):
    """Bad input or a run that cannot be read back; ``str()`` is one line naming the problem."""


@dataclass(frozen=True)
class JobResult:
    """One job of a fan-out: what the Map's result files say about it."""

    #: Position of the job in the file (``$$.Map.Item.Index``).
    index: int
    #: "SUCCEEDED" or "FAILED" (the job's task failed; ``error`` names why).
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"index": self.index, "status": self.status}
        if self.status == "SUCCEEDED":
            data["output"] = self.output
        else:
            data.update(error=self.error, cause=self.cause)
        return data


@dataclass
class FanOutResults:
    """The outcome of one S3-fed fan-out execution."""

    execution_arn: str
    #: The execution's status (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED).
    status: str
    jobs: list[JobResult] = field(default_factory=list)
    #: ``s3://bucket/key`` of the ResultWriter's manifest, once written.
    manifest: str | None = None
    #: The execution's error and cause when it did not succeed (``Bridge.JobsFailed`` when more
    #: jobs failed than the failure policy tolerates).
    error: str | None = None
    cause: str | None = None

    @property
    def succeeded(self) -> int:
        return sum(1 for job in self.jobs if job.status == "SUCCEEDED")

    @property
    def failed(self) -> int:
        return sum(1 for job in self.jobs if job.status != "SUCCEEDED")

    def summary(self, with_failures: bool = True) -> dict[str, Any]:
        """A JSON-ready summary: counts, where the results are, and each failed job."""
        data: dict[str, Any] = {
            "execution_arn": self.execution_arn,
            "status": self.status,
            "jobs": len(self.jobs),
            "succeeded": self.succeeded,
            "failed": self.failed,
            "manifest": self.manifest,
        }
        if self.error or self.cause:
            data.update(error=self.error, cause=self.cause)
        if with_failures:
            data["failed_jobs"] = [j.as_dict() for j in self.jobs if j.status != "SUCCEEDED"]
        return data


# --------------------------------------------------------------------------
# Job files
# --------------------------------------------------------------------------


def parse_jobs(text: str, source: str = "jobs file") -> list[dict[str, Any]]:
    """The jobs of a file: a JSON array of objects, or JSON Lines (one object per line).
    Each job must be a JSON object (its optional ``"type"`` selects the job type) and fit a
    Map item's 256 KiB; errors name the file, the job (the 1-based line of JSON Lines) and what
    is wrong. A job is read as strictly as the worker will read it (:mod:`bridge.strict_json`:
    nesting, duplicate keys, NaN), so a bad one is refused here, not dead-lettered later."""
    stripped = text.strip()
    if not stripped:
        raise FanOutError(f"{source} is empty: give a JSON array of job objects or JSON Lines")
    if stripped.startswith("["):
        try:
            jobs = strict_json.loads(stripped, max_depth=MAX_JSON_DEPTH)
        except strict_json.JSONError as exc:
            bad = exc.decode_error
            if bad is None:
                raise FanOutError(f"{source} is not valid JSON: {exc}") from None
            raise FanOutError(
                f"{source} is not valid JSON: {bad.msg} at line {bad.lineno} column {bad.colno}"
            ) from None
        names = [f"job {index}" for index in range(len(jobs) if isinstance(jobs, list) else 0)]
    else:
        jobs, names = [], []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            names.append(f"line {number}")  # 1-based, blank lines counted: as editors show it
            try:
                jobs.append(strict_json.loads(line, max_depth=MAX_PAYLOAD_DEPTH))
            except strict_json.JSONError as exc:
                if exc.decode_error is None:
                    raise FanOutError(f"{source} line {number} is not valid JSON: {exc}") from None
                raise FanOutError(
                    f"{source} line {number} is not valid JSON ({exc.decode_error.msg}); give a "
                    "JSON array or JSON Lines, one job object per line"
                ) from None
    if not jobs:
        raise FanOutError(f"{source} holds no jobs")
    for index, job in enumerate(jobs):
        if not isinstance(job, dict):
            kind = "an array" if isinstance(job, list) else type(job).__name__
            raise FanOutError(
                f"{source}: {names[index]} is {kind}, not a JSON object "
                '(each job is an object such as {"n": 1, "type": "render"})'
            )
    try:
        check_items(jobs)
    except LimitError as exc:
        raise FanOutError(f"{source}: {exc}") from None
    return jobs


def load_jobs_file(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FanOutError(f"cannot read jobs file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise FanOutError(f"jobs file {path} is not UTF-8 text") from None
    return parse_jobs(text, f"jobs file {path}")


# --------------------------------------------------------------------------
# Start, wait, read back
# --------------------------------------------------------------------------


def new_name() -> str:
    return f"fanout-{uuid.uuid4().hex[:16]}"


def start_from_items(
    sfn: Any,
    s3: Any,
    state_machine_arn: str,
    bucket: str,
    jobs: list[dict[str, Any]],
    prefix: str = ITEMS_PREFIX,
    name: str | None = None,
) -> str:
    """Upload ``jobs`` as ``s3://bucket/<prefix>/<name>.json`` and start an execution that reads
    them from there; returns its ARN. ``name`` is the execution's (unique per state machine for
    90 days); its results land under ``s3://bucket/results/<name>/``."""
    name = name or new_name()
    if not _NAME.match(name):
        raise FanOutError(f"execution name {name!r}: use 1-80 characters of A-Z a-z 0-9 - _")
    key = f"{prefix.strip('/')}/{name}.json"
    body = json.dumps(jobs, separators=(",", ":")).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    document = json.dumps({"items": {"bucket": bucket, "key": key}})
    started = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=document)
    return str(started["executionArn"])


def wait_for_execution(
    sfn: Any,
    execution_arn: str,
    timeout_s: float | None = None,
    on_poll: Callable[[], None] | None = None,
    every_s: float = 0.5,
    likely_done: Callable[[], bool] | None = None,
    idle_every_s: float = 2.0,
) -> dict[str, Any]:
    """describe_execution once it is no longer RUNNING (or the last answer at ``timeout_s``);
    ``on_poll`` runs every ``every_s`` (a progress bar).

    DescribeExecution answers with the whole execution input (a 3,000-job run's is ~170 KB), so
    asking five times a second cost the embedded stack a tenth of its CPU. With
    ``likely_done``, the execution is described every ``idle_every_s`` until it says the work
    is probably over, then every ``every_s``."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    next_describe = 0.0
    while True:
        now = time.monotonic()
        if now >= next_describe or (likely_done is not None and likely_done()):
            described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING" or (deadline is not None and now > deadline):
                if on_poll:
                    on_poll()
                return described
            next_describe = now + (every_s if likely_done is None else idle_every_s)
        if on_poll:
            on_poll()
        time.sleep(every_s)


@dataclass(frozen=True)
class Progress:
    """Where a run's jobs are, from its Map Run's ``itemCounts`` (DescribeMapRun): what
    ``callback-bridge status`` counts for a Distributed Map, with the failed ones apart.
    ``total`` is None before the Map Run exists (the Map has not started yet)."""

    total: int | None = None
    succeeded: int = 0
    #: failed, timed out or aborted
    failed: int = 0
    running: int = 0
    pending: int = 0

    @property
    def done(self) -> int:
        return self.succeeded + self.failed

    def line(self) -> str:
        """One plain line: ``done 16, failed 1, running 24 of 50``."""
        if self.total is None:
            return "waiting for the Map Run to start"
        return (
            f"done {self.succeeded}, failed {self.failed}, running {self.running} of {self.total}"
        )


class ProgressReader:
    """The current :class:`Progress` of one S3-fed run, through one Step Functions client: the
    Map Run's ARN is found once (ListMapRuns), then DescribeMapRun per read."""

    def __init__(self, sfn: Any, execution_arn: str) -> None:
        self.sfn = sfn
        self.execution_arn = execution_arn
        self._map_run_arn: str | None = None

    def read(self) -> Progress:
        if self._map_run_arn is None:
            runs = self.sfn.list_map_runs(executionArn=self.execution_arn).get("mapRuns", [])
            if not runs:
                return Progress()
            self._map_run_arn = str(runs[0]["mapRunArn"])
        counts = self.sfn.describe_map_run(mapRunArn=self._map_run_arn).get("itemCounts", {})

        def count(*keys: str) -> int:
            return sum(int(counts.get(key) or 0) for key in keys)

        return Progress(
            total=count("total"),
            succeeded=count("succeeded"),
            failed=count("failed", "timedOut", "aborted"),
            running=count("running"),
            pending=count("pending"),
        )


def _s3_json(s3: Any, bucket: str, key: str) -> Any:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        return _read(body)
    except strict_json.JSONError as exc:
        raise FanOutError(f"s3://{bucket}/{key} is not valid JSON: {exc}") from None


def read_items(s3: Any, bucket: str, key: str) -> list[Any]:
    """The jobs of an item file (what :func:`start_from_items` uploaded), in order."""
    items = _s3_json(s3, bucket, key)
    if not isinstance(items, list):
        raise FanOutError(f"s3://{bucket}/{key} is not a JSON array of jobs")
    return items


def _read(text: str | bytes) -> Any:
    """A document Step Functions wrote around jobs' inputs and outputs (result files, an
    execution's input and output): strictly, with room for the envelope."""
    return strict_json.loads(text, max_depth=MAX_ENVELOPE_DEPTH)


def _job(entry: dict[str, Any], position: int) -> JobResult:
    """A result-file entry -> a job. ``Input`` is the child's input (the template's
    ItemSelector: item, index, ...); ``Output`` the child's output ({status, output})."""
    child_input = _read(entry["Input"]) if entry.get("Input") else {}
    index = child_input.get("index", position) if isinstance(child_input, dict) else position
    if entry.get("Status") == "SUCCEEDED":
        output = _read(entry["Output"]) if entry.get("Output") else None
        if isinstance(output, dict) and output.get("status") == "SUCCEEDED":
            return JobResult(index, "SUCCEEDED", output.get("output"))
        return JobResult(index, "SUCCEEDED", output)
    return JobResult(index, "FAILED", error=entry.get("Error"), cause=entry.get("Cause"))


def _manifest_location(sfn: Any, s3: Any, described: dict[str, Any]) -> tuple[str, str] | None:
    """(bucket, key) of the manifest: from the output when the execution succeeded, else
    looked for under ``results/<name>/`` of the bucket its input names."""
    if described.get("output"):
        details = _read(described["output"]).get("ResultWriterDetails") or {}
        if details.get("Bucket") and details.get("Key"):
            return details["Bucket"], details["Key"]
    items = _read(described.get("input") or "{}").get("items") or {}
    if not items.get("bucket"):
        return None
    prefix = f"{RESULTS_PREFIX}/{described['name']}/"
    listed = s3.list_objects_v2(Bucket=items["bucket"], Prefix=prefix).get("Contents", [])
    keys = [o["Key"] for o in listed if o["Key"].endswith("/manifest.json")]
    return (items["bucket"], keys[0]) if keys else None


def read_results(sfn: Any, s3: Any, execution_arn: str) -> FanOutResults:
    """The execution's status and, once its ResultWriter has written them, every job's result
    (manifest -> SUCCEEDED_n.json / FAILED_n.json), sorted by job index."""
    described = sfn.describe_execution(executionArn=execution_arn)
    results = FanOutResults(
        execution_arn,
        described["status"],
        error=described.get("error"),
        cause=described.get("cause"),
    )
    if described["status"] == "RUNNING":
        return results
    try:
        location = _manifest_location(sfn, s3, described)
    except (strict_json.JSONError, AttributeError):
        raise FanOutError(
            f"execution {execution_arn} was not started from an item file "
            '(its input has no {"items": {"bucket", "key"}})'
        ) from None
    if location is None:
        return results
    bucket, key = location
    results.manifest = f"s3://{bucket}/{key}"
    manifest = _s3_json(s3, bucket, key)
    destination = manifest.get("DestinationBucket", bucket)
    files = manifest.get("ResultFiles", {})
    position = 0
    for category in ("SUCCEEDED", "FAILED", "PENDING"):
        for result_file in files.get(category, []):
            for entry in _s3_json(s3, destination, result_file["Key"]):
                try:
                    results.jobs.append(_job(entry, position))
                except strict_json.JSONError as exc:
                    raise FanOutError(
                        f"s3://{destination}/{result_file['Key']}: an entry is not JSON: {exc}"
                    ) from None
                position += 1
    results.jobs.sort(key=lambda job: job.index)
    return results
