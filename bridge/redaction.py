"""Keep Step Functions task tokens out of logs, whoever logs them.

A task token is a bearer credential: anyone holding it can complete or fail the task. Our own
code logs :func:`bridge.contract.mask_token`, but other libraries do not: botocore at DEBUG logs
whole request and response bodies (``b'{"taskToken": "AAAA..."}'``, SQS ``ReceiveMessage``
answers whose ``Body`` is JSON escaped once or twice more), headers and parameter dicts. This
module rewrites every log record before any handler formats it, in two complementary ways:

* **by position**: a string value whose key contains ``token`` (``token``, ``taskToken``,
  ``TaskToken.$``, ``X-Amz-Security-Token``, ``NextToken``; any case), quoted with ``"`` or
  ``'`` behind any number of backslashes (JSON inside JSON inside a ``bytes`` repr), or
  form-encoded (``taskToken=...&``, values of 16 characters or more), is replaced by its mask;
* **by value**: tokens the process has seen (the worker registers every token it reads) are
  masked wherever they appear, e.g. inside a free-text error message.

The filter belongs on *handlers*, not loggers: a filter on a logger sees only records created
by that very logger, never those of its children (``botocore.endpoint`` propagates to the root
logger's handlers without passing the root logger's filters). :func:`install` does that.
"""

from __future__ import annotations

import logging
import re
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from bridge.contract import mask_token

#: Tokens shorter than this are not registered: masking every occurrence of a short string
#: would shred unrelated text, and real task tokens are hundreds of characters long.
MIN_REGISTERED_CHARS = 16
#: How many entries :data:`registry` remembers (a token and its URL-encoded form are two; a
#: worker holds at most its concurrency at a time).
DEFAULT_REGISTRY_SIZE = 512

# Keyed positions are found from each occurrence of "token" forwards (rest of the key,
# separator, quote, value), never by a pattern tried at every position, so a 256 KiB body
# costs one linear scan. A quote may be escaped any number of times: " \" \\" ' \' ...
_AFTER_KEY = re.compile(r"""[\w.$-]{0,64}(?:\\*["'])?\s*[:=]\s*\\*["']""")
# A quoted value: ordinary characters or backslash escapes, up to its closing quote, or up to
# whitespace or the end for a value cut short (tokens contain neither quotes nor spaces).
# Possessive (no backtracking): whatever stops the run is a quote, whitespace or the end,
# possibly behind backslashes, so the lookahead always holds.
_QUOTED_VALUE = re.compile(r"""(?:[^"'\\\s]++|\\++[^"'\\\s])++(?=\\*+(?:["']|\s|\Z))""")
_FORM_VALUE = re.compile(rf"""[\w.$-]{{0,64}}=([^&\s"'\\]{{{MIN_REGISTERED_CHARS},}})""")
_MENTIONS_TOKEN = re.compile("token", re.IGNORECASE)
# What mask_token produces, so masking twice (filter on two handlers, a masked value logged
# under a token key) leaves the first mask readable.
_ALREADY_MASKED = re.compile(r"…[^…]{0,6}\(\d+\)|<none>")

# Attributes every LogRecord has; anything else came from ``extra=`` and is formatted by JSON
# formatters, so it is redacted too.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
    | {"message", "asctime", "exception", "exception_name"}
)
_EXCEPTION_FORMATTER = logging.Formatter()


class TokenRegistry:
    """A bounded, thread-safe LRU of tokens to mask wherever they appear in a log line.

    Reads vastly outnumber writes (every log record reads, every job writes once), so writes
    rebuild an immutable snapshot and reads take no lock."""

    def __init__(self, maxsize: int = DEFAULT_REGISTRY_SIZE) -> None:
        self._tokens: OrderedDict[str, str] = OrderedDict()  # text to find -> its mask
        self._lock = threading.Lock()
        self._snapshot: tuple[tuple[str, str], ...] = ()
        self._maxsize = DEFAULT_REGISTRY_SIZE
        self.resize(maxsize)

    def resize(self, maxsize: int) -> None:
        """Keep at most ``maxsize`` entries (at least twice the worker's concurrency)."""
        if maxsize < 1:
            raise ValueError(f"registry maxsize must be at least 1, got {maxsize}")
        with self._lock:
            self._maxsize = maxsize
            self._evict()

    def register(self, token: str | None) -> None:
        """Remember ``token`` (and its URL-encoded form) so logs show only its mask."""
        if not token or len(token) < MIN_REGISTERED_CHARS:
            return
        mask = mask_token(token)
        with self._lock:
            for form in {token, urllib.parse.quote(token, safe="")}:
                self._tokens[form] = mask
                self._tokens.move_to_end(form)
            self._evict()

    def forget(self, token: str) -> None:
        """Stop looking for ``token`` (tests; a worker can simply let the LRU age it out)."""
        with self._lock:
            self._tokens.pop(token, None)
            self._tokens.pop(urllib.parse.quote(token, safe=""), None)
            self._snapshot = tuple(self._tokens.items())

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._snapshot = ()

    def __len__(self) -> int:
        return len(self._snapshot)

    def items(self) -> tuple[tuple[str, str], ...]:
        """(token form, mask) pairs, newest last; an immutable snapshot."""
        return self._snapshot

    def _evict(self) -> None:
        while len(self._tokens) > self._maxsize:
            self._tokens.popitem(last=False)
        self._snapshot = tuple(self._tokens.items())


#: The process-wide registry the worker feeds and every installed filter consults.
registry = TokenRegistry()


def register(token: str | None) -> None:
    """Mask ``token`` wherever it appears in this process's logs from now on."""
    registry.register(token)


def _mask_keyed(text: str) -> str:
    """Mask string values whose key contains ``token`` (see the module docstring)."""
    parts: list[str] = []
    copied = 0  # text[:copied] is already in parts
    for hit in _MENTIONS_TOKEN.finditer(text):
        if hit.start() < copied:
            continue  # inside a value just masked
        key = _AFTER_KEY.match(text, hit.end())
        value = _QUOTED_VALUE.match(text, key.end()) if key else None
        if value is not None:
            start, end = value.span()
        else:
            form = _FORM_VALUE.match(text, hit.end())
            if form is None:
                continue
            start, end = form.span(1)
        raw = text[start:end]
        if _ALREADY_MASKED.fullmatch(raw):
            continue
        parts += (text[copied:start], mask_token(raw))
        copied = end
    if not parts:
        return text
    parts.append(text[copied:])
    return "".join(parts)


def redact(text: str, tokens: TokenRegistry | None = None) -> str:
    """``text`` with every recognisable task token replaced by its mask.

    Cheap when there is nothing to do: one case-insensitive scan for ``token`` and one
    substring test per registered token."""
    known = (tokens if tokens is not None else registry).items()
    for token, mask in known:
        if token in text:
            text = text.replace(token, mask)
    return _mask_keyed(text)


def redact_value(value: Any, tokens: TokenRegistry | None = None, key: str = "") -> Any:
    """Redact strings inside a structure (``extra=`` fields, dict messages), masking whole
    string values whose key names a token."""
    if isinstance(value, str):
        if _MENTIONS_TOKEN.search(key) and value and not _ALREADY_MASKED.fullmatch(value):
            return mask_token(value)
        return redact(value, tokens)
    if isinstance(value, bytes):
        return redact_value(repr(value), tokens, key)
    if isinstance(value, dict):
        return {k: redact_value(v, tokens, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v, tokens, key) for v in value]
    return value


class TokenRedactingFilter(logging.Filter):
    """Rewrites each record so no task token survives in its message, arguments, exception,
    stack or extra fields. Never drops a record and never raises."""

    def __init__(self, tokens: TokenRegistry | None = None) -> None:
        super().__init__()
        self._tokens = tokens

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._redact(record)
        except Exception:  # pragma: no cover - a logging filter must never break logging
            record.msg, record.args = "<log record dropped: redaction failed>", None
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True

    def _redact(self, record: logging.LogRecord) -> None:
        tokens = self._tokens
        if isinstance(record.msg, dict) and not record.args:
            record.msg = redact_value(record.msg, tokens)  # keep structured messages structured
        else:
            try:
                text = record.getMessage()
            except Exception:
                # logging would print the raw arguments to stderr in handleError: do it safely.
                text = f"{record.msg} (unformattable log arguments: {record.args!r})"
            record.msg, record.args = redact(text, tokens), None
        if record.exc_info and record.exc_info[0] is not None:
            formatted = _EXCEPTION_FORMATTER.formatException(record.exc_info)
            cleaned = redact(formatted, tokens)
            record.exc_text = cleaned
            if cleaned != formatted:
                # Formatters such as powertools' re-format exc_info themselves: hand them the
                # clean text in the fields they read (``exception``) instead of the exception.
                record.exception = cleaned
                record.exception_name = record.exc_info[0].__name__
                record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text, tokens)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, tokens)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD_ATTRS and isinstance(
                value, str | bytes | dict | list | tuple | set | frozenset
            ):
                setattr(record, name, redact_value(value, tokens, name))


def install(
    logger: logging.Logger | None = None, handlers: Iterable[logging.Handler] | None = None
) -> TokenRedactingFilter:
    """Attach one redacting filter to every handler of ``logger`` (the root logger by default),
    plus any ``handlers`` given, so records from every logger (botocore's included) are
    redacted before they are formatted. Idempotent: a handler gets at most one such filter.

    Handlers added to the logger later are not covered: install again after adding them."""
    target = logger if logger is not None else logging.getLogger()
    redactor = TokenRedactingFilter()
    for handler in [*target.handlers, *(handlers or ())]:
        if not any(isinstance(f, TokenRedactingFilter) for f in handler.filters):
            handler.addFilter(redactor)
    return redactor
