"""Turn a received SQS message into a :class:`~bridge.contract.Job`, or say why it cannot be one.

Two shapes are accepted:

* the bridge's contract v1 (what ``infra/statemachine/bridge.asl.json`` sends), the default;
* any JSON message carrying a task token, for state machines written before the bridge
  (the AWS documentation's ``{"MessageTitle": "...", "TaskToken.$": "$$.Task.Token"}``):
  ``--token-path $.TaskToken`` says where the token is, ``--input-path`` where the job input
  is (default: the whole message). The job id is then the SQS message id.

A message that cannot become a job is a :class:`Rejection`; when its token is still readable
the worker fails the task with ``Bridge.InvalidJob`` instead of leaving it to time out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bridge import strict_json
from bridge.contract import (
    MAX_JSON_DEPTH,
    MAX_TOKEN_CHARS,
    ContractError,
    Job,
    parse_job,
    read_token,
)

_PATH = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_\-]*)*$")


@dataclass(frozen=True)
class Rejection(Exception):
    """Why a message is not a job; ``token`` when one could still be read from it."""

    field: str
    problem: str
    token: str | None = None

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


def check_path(path: str, option: str) -> list[str]:
    """``$.a.b`` -> ``["a", "b"]``; anything richer is refused at start, naming the option."""
    if not _PATH.match(path):
        raise ValueError(
            f"{option} {path!r} is not supported: use '$' or a dotted path like '$.TaskToken'"
        )
    return [part for part in path[1:].split(".") if part]


def _select(data: Any, keys: list[str]) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            raise KeyError(key)
        data = data[key]
    return data


@dataclass(frozen=True)
class Intake:
    """How this worker reads job messages (set once, from the worker's flags)."""

    token_path: str | None = None
    input_path: str = "$"
    default_type: str = "default"
    _token_keys: list[str] | None = field(init=False, default=None, repr=False, compare=False)
    _input_keys: list[str] = field(init=False, default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Parsed once here (refusing a bad path at start), not once per message.
        token_keys = (
            None if self.token_path is None else check_path(self.token_path, "--token-path")
        )
        object.__setattr__(self, "_token_keys", token_keys)
        object.__setattr__(self, "_input_keys", check_path(self.input_path, "--input-path"))

    def parse(self, message: dict[str, Any]) -> Job:
        """The job in ``message``; raises :class:`Rejection`."""
        body = message.get("Body", "")
        if self.token_path is None:
            try:
                return parse_job(body)
            except ContractError as exc:
                raise Rejection(exc.field, exc.problem, read_token(body)) from None
        return self._adopt(message["MessageId"], body)

    def _adopt(self, message_id: str, body: str) -> Job:
        token_path, token_keys = self.token_path or "$", self._token_keys or []
        try:
            data = strict_json.loads(body, max_depth=MAX_JSON_DEPTH)
        except strict_json.JSONError as exc:
            token = read_token(body, ".".join(token_keys)) if token_keys else None
            raise Rejection("body", str(exc), token) from None
        try:
            token = _select(data, token_keys)
        except KeyError:
            raise Rejection(token_path, "no task token at this path") from None
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
            raise Rejection(token_path, f"not a task token (1..{MAX_TOKEN_CHARS} characters)")
        try:
            job_input = _select(data, self._input_keys)
        except KeyError:
            raise Rejection(self.input_path, "no job input at this path", token) from None
        if self.input_path == "$" and len(token_keys) == 1 and isinstance(job_input, dict):
            # The token is a bearer credential: the handler gets the message without it.
            job_input = {k: v for k, v in job_input.items() if k != token_keys[0]}
        return Job(
            version=1,
            token=token,
            job_id=message_id,
            execution_arn="",
            map_index=0,
            attempt=0,
            type=self.default_type,
            input=job_input,
        )
