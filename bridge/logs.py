"""Logging set-up for long-running CLI processes (``worker``, ``local up``).

On EC2 the worker's stderr goes to journald and from there to CloudWatch Logs, where JSON lines
can be queried field by field (``job_id``, ``level``) with Logs Insights; on a laptop plain text
reads better. Either way the handler carries the token-redacting filter, so nothing the process
logs (botocore at DEBUG included) shows a task token in full.
"""

from __future__ import annotations

import json
import logging
import sys
from functools import partial
from typing import Any, Literal, TextIO

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from bridge.redaction import TokenRedactingFilter, install

LogFormat = Literal["json", "text"]
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("json", "text")

# Marks the handler configure_logging owns, so a second call replaces it instead of adding one.
_OWNED = "_callback_bridge_handler"
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
    | {"message", "asctime", "exception", "exception_name"}
)


class TextFormatter(logging.Formatter):
    """``time level service[pid] logger: message key=value ...``: extras such as ``job_id``
    stay visible in text logs too."""

    def __init__(self, service: str) -> None:
        safe_service = service.replace("%", "%%")
        super().__init__(
            f"%(asctime)s %(levelname)s {safe_service}[%(process)d] %(name)s: %(message)s"
        )

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}
        if not extras:
            return text
        first, newline, rest = text.partition("\n")
        fields = " ".join(f"{k}={v}" for k, v in extras.items())
        return f"{first} {fields}{newline}{rest}"


class JsonFormatter(LambdaPowertoolsFormatter):
    """Powertools' formatter plus a ``logger`` field (powertools only knows reserved record
    attributes by their own names, so the logger's name is passed as an extra on a copy)."""

    def format(self, record: logging.LogRecord) -> str:
        copy = logging.makeLogRecord(vars(record))
        copy.logger = record.name
        return super().format(copy)


def json_formatter(service: str) -> logging.Formatter:
    """Powertools' structured formatter (it works outside Lambda): one compact JSON object per
    line with timestamp (UTC, RFC 3339), level, logger, message, service, location and every
    ``extra=`` field. The serializer is fixed so ``POWERTOOLS_DEV`` cannot turn lines into
    indented multi-line JSON."""
    serializer = partial(json.dumps, default=str, separators=(",", ":"), ensure_ascii=False)
    return JsonFormatter(
        json_serializer=serializer,
        utc=True,
        use_rfc3339=True,
        log_record_order=["timestamp", "level", "logger", "message"],
        process="%(process)d",
        service=service,
    )


def parse_level(level: str) -> int:
    """The numeric level for a level name (any case); ValueError naming a wrong one."""
    name = str(level).strip().upper()
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}: expected one of {', '.join(LEVELS)}")
    return logging.getLevelNamesMapping()[name]


def configure_logging(
    level: str,
    fmt: str = "text",
    service: str = "callback-bridge",
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every logger's records to ``stream`` (default stderr) as JSON lines or text,
    through the token-redacting filter, at ``level``.

    Idempotent: a second call replaces the handler the first one added (so level, format or
    stream can change) and leaves other handlers alone (pytest's capture, for example), though
    those get the redacting filter too. Raises ValueError naming an unknown level or format."""
    numeric = parse_level(level)
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}: expected one of {', '.join(FORMATS)}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OWNED, False)]:
        root.removeHandler(old)
        old.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    setattr(handler, _OWNED, True)
    handler.setFormatter(json_formatter(service) if fmt == "json" else TextFormatter(service))
    handler.addFilter(TokenRedactingFilter())
    root.addHandler(handler)
    root.setLevel(numeric)
    install(root)
    return handler


def owned_handlers() -> list[Any]:
    """Handlers :func:`configure_logging` installed on the root logger (for tests/teardown)."""
    return [h for h in logging.getLogger().handlers if getattr(h, _OWNED, False)]
