"""The jobs of a Distributed Map that has no readable outcome yet: its child executions.

A Distributed Map runs each job in a child execution of its Map Run. While the parent runs, or
once it failed without an output (``Bridge.JobsFailed`` under the ``fail`` policy), the
children are the only record: ``ListExecutions(mapRunArn=...)`` names them and one
``DescribeExecution`` each gives the job (its input is the template's ``ItemSelector``:
``item``, ``index``, ...), how it ended (a failed job is a child that FAILED, from S3, or whose
output says ``"status": "FAILED"``, from ``{"jobs": [...]}``), error and cause.

That is one call per child, so reading stops at ``limit`` children (the caller says so). The
embedded stack's moto does not list a Map Run's children: there this yields nothing, and
:class:`ChildrenUnavailable` says why.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from bridge import strict_json
from bridge.contract import MAX_ENVELOPE_DEPTH
from bridge.errors import describe

DEFAULT_LIMIT = 200


class ChildrenUnavailable(Exception):
    """The endpoint cannot list a Map Run's child executions; the text says why."""


@dataclass(frozen=True)
class Child:
    """One child execution as a job: ``status`` is the job's (RUNNING, SUCCEEDED, FAILED,
    TIMED_OUT, ABORTED)."""

    execution_arn: str
    index: int | None
    item: Any
    status: str
    error: str | None = None
    cause: str | None = None
    output: Any = None


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return strict_json.loads(text, max_depth=MAX_ENVELOPE_DEPTH)
    except strict_json.JSONError:
        return None


def child_job(described: dict[str, Any]) -> Child:
    """A child's ``DescribeExecution`` answer as the job it ran."""
    selected = _json(described.get("input"))
    selected = selected if isinstance(selected, dict) else {}
    index = selected.get("index")
    status = str(described.get("status"))
    error, cause = described.get("error"), described.get("cause")
    output = _json(described.get("output"))
    if status == "SUCCEEDED" and isinstance(output, dict) and output.get("status") == "FAILED":
        status, error, cause = "FAILED", output.get("error"), output.get("cause")
    result = output.get("output") if status == "SUCCEEDED" and isinstance(output, dict) else None
    return Child(
        str(described.get("executionArn")),
        index if isinstance(index, int) else None,
        selected.get("item"),
        status,
        error,
        cause,
        result,
    )


def children(sfn: Any, map_run_arn: str, limit: int = DEFAULT_LIMIT) -> Iterator[Child]:
    """The first ``limit`` children of ``map_run_arn``, each described once."""
    kwargs: dict[str, Any] = {"mapRunArn": map_run_arn, "maxResults": min(limit, 1000)}
    seen = 0
    while seen < limit:
        try:
            page = sfn.list_executions(**kwargs)
        except ClientError as exc:
            why = f"ListExecutions(mapRunArn) refused: {describe(exc)}"
            raise ChildrenUnavailable(why) from None
        except (TypeError, NotImplementedError, AttributeError) as exc:  # in-process moto
            why = f"ListExecutions(mapRunArn) unsupported here: {exc}"
            raise ChildrenUnavailable(why) from None
        listed = page.get("executions", [])
        for item in listed:
            arn = str(item.get("executionArn"))
            if ":execution:" not in arn or item.get("mapRunArn", map_run_arn) != map_run_arn:
                raise ChildrenUnavailable("the endpoint ignores mapRunArn in ListExecutions")
            if seen >= limit:
                return
            seen += 1
            yield child_job(sfn.describe_execution(executionArn=arn))
        if not page.get("nextToken") or not listed:
            return
        kwargs["nextToken"] = page["nextToken"]
