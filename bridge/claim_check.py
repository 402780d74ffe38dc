"""Claim checks: an output too large for a result message travels through S3 instead.

A result message carries its task token, worker and timing fields besides the output, and the
queues accept at most ``MaximumMessageSize`` bytes (262,144 as Terraform sets them); Step
Functions accepts at most 262,144 bytes of task output. An output that would break either limit
is stored as one JSON object in S3 and the task's output becomes a small pointer::

    {"s3": {"bucket": "...", "key": "claim-checks/<execution>/<job id>/<sha256>.json",
            "size": 1048576, "sha256": "<hex digest of the stored bytes>"}}

never a truncated document. Downstream states (or anyone holding the execution's output) read
it back with :func:`fetch`, which verifies size and digest. Without a bucket configured such an
output fails its task with ``Bridge.OutputTooLarge``, naming the setting that would carry it.

IAM: the worker needs ``s3:PutObject`` on ``<bucket>/claim-checks/*`` (plus
``kms:GenerateDataKey`` with SSE-KMS) and ``s3:ListBucket`` on the bucket for its start check
(``HeadBucket``); whoever reads the outputs needs ``s3:GetObject``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bridge import strict_json
from bridge.contract import (
    ERROR_CLAIM_CHECK_FAILED,
    ERROR_OUTPUT_TOO_LARGE,
    MAX_CAUSE_CHARS,
    MAX_MESSAGE_BYTES,
    MAX_OUTPUT_BYTES,
    MAX_PAYLOAD_DEPTH,
    Result,
    clip,
    encode,
)
from bridge.errors import error_code

#: The pointer's only top-level key: a downstream Choice state can test ``$.output.s3``.
POINTER_FIELD = "s3"
DEFAULT_KEY_PREFIX = "claim-checks"
#: Kept free below the queue's limit by the default threshold. The size measured is the exact
#: body sent, so this only absorbs what SQS might count besides the body in the future.
DEFAULT_MARGIN_BYTES = 4096
#: The largest output a worker holds in memory and stores with one PutObject (S3 allows 5 GB;
#: a worker that holds more is a job that should write to S3 itself).
MAX_CLAIM_CHECK_BYTES = 256 * 1024 * 1024
#: The smallest ``MaximumMessageSize`` SQS (and the Terraform variable's validation) allows.
MIN_MESSAGE_BYTES = 1024
#: Setting and variable that turn claim checks on, for error messages.
BUCKET_SETTING = "--claim-check-bucket (BRIDGE_CLAIM_CHECK_BUCKET)"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: S3's "safe" key characters; anything else in an execution name or job id becomes ``_``.
_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9!_.*'()/-]")


class ClaimCheckError(ValueError):
    """A pointer that is malformed, or an object that is missing or not what it claims."""


@dataclass(frozen=True)
class Pointer:
    """Where a claim-checked output is, and how to know it is intact."""

    bucket: str
    key: str
    size: int
    sha256: str

    def as_output(self) -> dict[str, Any]:
        """The task output that replaces the document."""
        return {
            POINTER_FIELD: {
                "bucket": self.bucket,
                "key": self.key,
                "size": self.size,
                "sha256": self.sha256,
            }
        }

    @classmethod
    def parse(cls, value: Any) -> Pointer:
        """Read a pointer from a task output (``{"s3": {...}}``) or from its inner object."""
        if isinstance(value, Pointer):
            return value
        inner = value.get(POINTER_FIELD) if isinstance(value, dict) else None
        fields = inner if isinstance(inner, dict) else value
        if not isinstance(fields, dict):
            raise ClaimCheckError(
                f"not a claim-check pointer: expected an object, got {value!r:.80}"
            )
        bucket, key = fields.get("bucket"), fields.get("key")
        size, sha256 = fields.get("size"), fields.get("sha256")
        if not isinstance(bucket, str) or not bucket:
            raise ClaimCheckError("claim-check pointer: 'bucket' must be a non-empty string")
        if not isinstance(key, str) or not key:
            raise ClaimCheckError("claim-check pointer: 'key' must be a non-empty string")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ClaimCheckError("claim-check pointer: 'size' must be a non-negative integer")
        if not isinstance(sha256, str) or not _SHA256.match(sha256):
            raise ClaimCheckError("claim-check pointer: 'sha256' must be 64 lowercase hex digits")
        return cls(bucket, key, size, sha256)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def is_pointer(output: Any) -> bool:
    """Whether a task output is a claim-check pointer (and nothing else)."""
    if not isinstance(output, dict) or set(output) != {POINTER_FIELD}:
        return False
    try:
        Pointer.parse(output)
    except ClaimCheckError:
        return False
    return True


def object_key(
    execution_arn: str | None, job_id: str, sha256: str, prefix: str = DEFAULT_KEY_PREFIX
) -> str:
    """``<prefix>/<execution name>/<job id>/<sha256>.json``: grouped per execution (one
    lifecycle rule or one ``aws s3 rm --recursive`` per run), content-addressed within a job so a
    re-run that produces the same output writes the same object."""
    execution = (execution_arn or "").rsplit(":", 1)[-1] or "no-execution"
    parts = [prefix.strip("/"), execution, job_id.strip("/") or "no-job-id", f"{sha256}.json"]
    return "/".join(_UNSAFE_KEY_CHARS.sub("_", part) for part in parts if part)


def document_bytes(output: Any) -> bytes:
    """The output as stored and as Step Functions would count it: compact UTF-8 JSON."""
    return json.dumps(output, separators=(",", ":"), allow_nan=False).encode("utf-8")


def message_bytes(result: Result) -> int:
    """Size of ``result``'s message body as SQS counts it (UTF-8 bytes)."""
    return len(encode(result).encode("utf-8"))


def store(
    s3: Any,
    bucket: str,
    key: str,
    document: bytes,
    server_side_encryption: str = "AES256",
    kms_key_id: str | None = None,
) -> Pointer:
    """Put ``document`` at ``s3://bucket/key``, encrypted at rest; returns its pointer.
    Raises botocore's errors (the caller turns them into a task failure)."""
    digest = hashlib.sha256(document).hexdigest()
    extra: dict[str, Any] = {"ServerSideEncryption": server_side_encryption}
    if kms_key_id:
        extra["SSEKMSKeyId"] = kms_key_id
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=document,
        ContentType="application/json",
        Metadata={"sha256": digest},
        **extra,
    )
    return Pointer(bucket, key, len(document), digest)


def fetch(s3: Any, pointer: Any) -> Any:
    """The document a claim-check pointer stands for, after checking its size and SHA-256.

    ``pointer`` may be the task output (``{"s3": {...}}``), its inner object or a
    :class:`Pointer`. Raises :class:`ClaimCheckError` naming the object when it is missing,
    altered or not JSON."""
    where = Pointer.parse(pointer)
    try:
        body = s3.get_object(Bucket=where.bucket, Key=where.key)["Body"].read()
    except ClientError as exc:
        code = error_code(exc, "error")
        raise ClaimCheckError(f"claim check {where.url} cannot be read ({code})") from None
    if len(body) != where.size:
        raise ClaimCheckError(
            f"claim check {where.url} holds {len(body)} bytes, the pointer says {where.size}"
        )
    digest = hashlib.sha256(body).hexdigest()
    if digest != where.sha256:
        raise ClaimCheckError(
            f"claim check {where.url} does not match its pointer: sha256 {digest}, "
            f"expected {where.sha256}"
        )
    try:
        # Anyone with write access to the bucket could have put it there: read it as strictly
        # as a message, with an output's depth limit.
        return strict_json.loads(body, max_depth=MAX_PAYLOAD_DEPTH)
    except strict_json.JSONError as exc:
        raise ClaimCheckError(f"claim check {where.url} cannot be read: {exc}") from None


def queue_limit(sqs: Any, queue_url: str) -> int:
    """The results queue's ``MaximumMessageSize``, within what a claim check supports (a queue
    allowing 1 MiB is still treated as 256 KiB: batches and Step Functions stay at that). Falls
    back to :data:`MAX_MESSAGE_BYTES` when the attribute cannot be read."""
    try:
        value = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["MaximumMessageSize"])[
            "Attributes"
        ]["MaximumMessageSize"]
        return max(MIN_MESSAGE_BYTES, min(int(value), MAX_MESSAGE_BYTES))
    except (BotoCoreError, ClientError, KeyError, ValueError):
        return MAX_MESSAGE_BYTES


def failed(result: Result, error: str, cause: str) -> Result:
    """``result`` turned into the failure of its task (output dropped, cause clipped)."""
    return result.model_copy(
        update={
            "outcome": "failed",
            "output": None,
            "error": error,
            "cause": clip(cause, MAX_CAUSE_CHARS),
        }
    )


@dataclass(frozen=True)
class ClaimCheck:
    """When a succeeded result's output goes to S3, and where.

    An output is claim-checked when it is larger than Step Functions' 262,144-byte task output
    limit, when it is larger than ``threshold_bytes`` (if set), or when the whole result message
    would be larger than ``max_message_bytes - margin_bytes``. Without ``bucket`` such an output
    fails its task with ``Bridge.OutputTooLarge`` instead."""

    s3: Any = None
    bucket: str | None = None
    #: Outputs larger than this always go to S3 (None: only those that must).
    threshold_bytes: int | None = None
    #: The results queue's ``MaximumMessageSize`` (at most 262,144: see :data:`MAX_MESSAGE_BYTES`).
    max_message_bytes: int = MAX_MESSAGE_BYTES
    #: Kept free below ``max_message_bytes`` (None: 4 KiB, or 1/16 of a smaller queue limit).
    margin_bytes: int | None = None
    key_prefix: str = DEFAULT_KEY_PREFIX
    server_side_encryption: str = "AES256"
    kms_key_id: str | None = None

    def __post_init__(self) -> None:
        if self.bucket is not None and not self.bucket:
            raise ValueError("the claim-check bucket name must not be empty")
        if self.bucket and self.s3 is None:
            raise ValueError("a claim-check bucket needs an S3 client (build_clients(s3=True))")
        if self.threshold_bytes is not None and not self.bucket:
            raise ValueError(f"a claim-check threshold needs a bucket: set {BUCKET_SETTING}")
        if self.threshold_bytes is not None and self.threshold_bytes < 0:
            raise ValueError(
                f"claim-check threshold must be >= 0 bytes, got {self.threshold_bytes}"
            )
        if not MIN_MESSAGE_BYTES <= self.max_message_bytes <= MAX_MESSAGE_BYTES:
            raise ValueError(
                f"max message size must be {MIN_MESSAGE_BYTES}..{MAX_MESSAGE_BYTES} bytes, "
                f"got {self.max_message_bytes}"
            )
        if (
            self.margin_bytes is not None
            and not 0 <= self.margin_bytes < self.max_message_bytes // 2
        ):
            raise ValueError(
                f"claim-check margin must be 0..{self.max_message_bytes // 2 - 1} bytes, "
                f"got {self.margin_bytes}"
            )

    @property
    def enabled(self) -> bool:
        return bool(self.bucket)

    @property
    def message_budget(self) -> int:
        """The largest result message sent without a claim check."""
        margin = self.margin_bytes
        if margin is None:
            margin = min(DEFAULT_MARGIN_BYTES, self.max_message_bytes // 16)
        return self.max_message_bytes - margin

    def reason(self, result: Result, output_bytes: int) -> str | None:
        """Why this succeeded result's output cannot travel inline, or ``None`` if it can."""
        if output_bytes > MAX_OUTPUT_BYTES:
            return f"output is {output_bytes} bytes; Step Functions accepts {MAX_OUTPUT_BYTES}"
        if self.threshold_bytes is not None and output_bytes > self.threshold_bytes:
            return f"output is {output_bytes} bytes, over the claim-check threshold"
        size = message_bytes(result)
        if size > self.message_budget:
            return (
                f"output is {output_bytes} bytes: with its token and fields the result message "
                f"would be {size} bytes; the results queue accepts {self.max_message_bytes}"
            )
        return None

    def apply(self, result: Result) -> Result:
        """``result`` ready to send: unchanged, its output replaced by a pointer to S3, or (no
        bucket, or S3 refused the object) the failure of its task naming why."""
        if result.outcome != "succeeded" or is_pointer(result.output):
            return result
        document = document_bytes(result.output)
        why = self.reason(result, len(document))
        if why is None:
            return result
        if not self.bucket:
            return failed(
                result,
                ERROR_OUTPUT_TOO_LARGE,
                f"{why}; set {BUCKET_SETTING} to pass large outputs through S3 by claim check",
            )
        digest = hashlib.sha256(document).hexdigest()
        key = object_key(result.execution_arn, result.job_id, digest, self.key_prefix)
        try:
            pointer = store(
                self.s3, self.bucket, key, document, self.server_side_encryption, self.kms_key_id
            )
        except (BotoCoreError, ClientError) as exc:
            return failed(
                result,
                ERROR_CLAIM_CHECK_FAILED,
                f"{why}, and storing it as s3://{self.bucket}/{key} failed: {exc}",
            )
        return result.model_copy(update={"output": pointer.as_output()})
