"""Task tokens never reach a log line in full, wherever they hide in a record."""

from __future__ import annotations

import io
import json
import logging
import time
import urllib.parse
from collections.abc import Iterator

import pytest

from bridge.contract import mask_token
from bridge.redaction import (
    TokenRedactingFilter,
    TokenRegistry,
    install,
    redact,
    register,
    registry,
)

TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAf3+/x9zQ" + "Zz9+/xKq0=" * 40
MASK = mask_token(TOKEN)


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    registry.clear()
    yield
    registry.clear()


@pytest.fixture
def root_capture() -> Iterator[io.StringIO]:
    """A text handler on the root logger, removed afterwards with the root level restored and
    no redacting filter left on any root handler (pytest's own handlers persist)."""
    root = logging.getLogger()
    strip_redacting_filters()
    level = root.level
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(level)
    strip_redacting_filters()


def strip_redacting_filters() -> None:
    for handler in logging.getLogger().handlers:
        for found in [f for f in handler.filters if isinstance(f, TokenRedactingFilter)]:
            handler.removeFilter(found)


def keyed(value: str) -> str:
    return '{"token": "' + value + '"}'


def escaped(text: str, times: int) -> str:
    """``text`` JSON-string-escaped ``times`` times (what nested JSON bodies look like)."""
    for _ in range(times):
        text = json.dumps(text)[1:-1]
    return text


@pytest.mark.parametrize(
    "line",
    [
        pytest.param('{"token": "%s", "job_id": "j"}', id="json"),
        pytest.param('{"taskToken":"%s"}', id="json-compact"),
        pytest.param("{'TaskToken': '%s'}", id="python-dict-repr"),
        pytest.param("""'body': b'{"taskToken": "%s"}'""", id="botocore-request-bytes"),
        pytest.param("taskToken='%s', output='{}'", id="kwargs-repr"),
        pytest.param("Action=SendTaskSuccess&TaskToken=%s&Output=1", id="form-encoded"),
        pytest.param('TASKTOKEN: "%s"', id="upper-case-key"),
    ],
)
def test_token_in_a_token_keyed_position_is_masked(line: str) -> None:
    out = redact(line % TOKEN)
    assert TOKEN not in out
    assert MASK in out


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_escaped_json_bodies_at_any_depth_are_masked(depth: int) -> None:
    """An SQS ReceiveMessage answer carries the job (with its token) as an escaped string, and
    botocore's bytes repr escapes it again."""
    job = json.dumps({"version": 1, "token": TOKEN, "job_id": "j"})
    line = '"Body": "' + escaped(job, depth) + '", "MD5OfBody": "x"'
    out = redact(line)
    assert TOKEN not in out
    assert TOKEN[-20:] not in out
    assert MASK in out
    assert "MD5OfBody" in out


def test_asl_parameter_style_values_are_masked() -> None:
    assert redact('{"TaskToken.$": "$$.Task.Token"}') == (
        '{"TaskToken.$": "' + mask_token("$$.Task.Token") + '"}'
    )


def test_redaction_is_idempotent_and_keeps_masks_readable() -> None:
    once = redact(keyed(TOKEN))
    assert redact(once) == once
    assert redact(keyed(MASK)) == keyed(MASK)
    assert redact("token=<none>") == "token=<none>"


def test_text_without_tokens_is_unchanged_and_cheap() -> None:
    register(TOKEN)
    line = "job exec-1/RunJob/0/0 (default) started on worker host:123 after 0.4 s in queue"
    assert redact(line) == line
    started = time.perf_counter()
    for _ in range(10_000):
        redact(line)
    assert time.perf_counter() - started < 1.0


def test_registered_token_is_masked_in_free_text_and_url_encoded() -> None:
    register(TOKEN)
    out = redact(f"Task does not exist: {TOKEN} (and {urllib.parse.quote(TOKEN, safe='')})")
    assert TOKEN not in out
    assert urllib.parse.quote(TOKEN, safe="") not in out
    assert out.count(MASK) == 2


def test_registry_is_a_bounded_lru_and_ignores_short_strings() -> None:
    tokens = TokenRegistry(maxsize=4)
    tokens.register("short")
    assert len(tokens) == 0
    names = [f"token-number-{i:04d}-abcdefgh" for i in range(5)]
    for name in names:
        tokens.register(name)
    assert len(tokens) == 4
    assert names[0] in redact(f"x {names[0]} y", tokens)  # evicted: oldest
    assert names[4] not in redact(f"x {names[4]} y", tokens)
    with pytest.raises(ValueError, match="maxsize"):
        TokenRegistry(maxsize=0)


def make_record(msg: object, *args: object, **attrs: object) -> logging.LogRecord:
    record = logging.LogRecord("botocore.endpoint", logging.DEBUG, __file__, 1, msg, args, None)
    for name, value in attrs.items():
        setattr(record, name, value)
    return record


def test_filter_formats_args_then_redacts_and_clears_args() -> None:
    params = {"headers": {"X-Amz-Target": "AWSStepFunctions.SendTaskHeartbeat"}}
    params["body"] = b'{"taskToken": "%s"}' % TOKEN.encode()  # type: ignore[assignment]
    record = make_record("Making request with params: %r", params)
    assert TokenRedactingFilter().filter(record) is True
    assert record.args is None
    assert TOKEN not in record.getMessage()
    assert MASK in record.getMessage()


def test_filter_redacts_extra_fields_and_dict_messages() -> None:
    record = make_record({"event": "received", "token": TOKEN}, body=keyed(TOKEN))
    TokenRedactingFilter().filter(record)
    assert record.msg == {"event": "received", "token": MASK}
    assert TOKEN not in record.body  # type: ignore[attr-defined]


def test_filter_redacts_exceptions_and_stack_info(root_capture: io.StringIO) -> None:
    logger = logging.getLogger("consumers.worker")
    install()
    register(TOKEN)
    try:
        raise RuntimeError(f"SendTaskSuccess failed for {TOKEN}")
    except RuntimeError:
        logger.exception("callback failed", stack_info=True)
    out = root_capture.getvalue()
    assert "RuntimeError" in out
    assert TOKEN not in out
    assert MASK in out


def test_unformattable_arguments_are_redacted_not_dumped_raw(root_capture: io.StringIO) -> None:
    install()
    logging.getLogger("lib").warning("two placeholders %s %s", keyed(TOKEN))
    out = root_capture.getvalue()
    assert "unformattable" in out
    assert TOKEN not in out


def test_install_puts_the_filter_on_handlers_so_child_loggers_are_covered(
    root_capture: io.StringIO,
) -> None:
    """A filter on a logger never sees its children's records; on a handler it sees all."""
    root = logging.getLogger()
    on_logger = TokenRedactingFilter()
    root.addFilter(on_logger)
    try:
        logging.getLogger("botocore.endpoint").debug('body: b\'{"taskToken": "%s"}\'', TOKEN)
    finally:
        root.removeFilter(on_logger)
    assert TOKEN in root_capture.getvalue()  # the trap this module's install() avoids

    root_capture.truncate(0)
    root_capture.seek(0)
    install()
    install()  # idempotent
    handler = root.handlers[-1]
    assert sum(isinstance(f, TokenRedactingFilter) for f in handler.filters) == 1
    logging.getLogger("botocore.endpoint").debug('body: b\'{"taskToken": "%s"}\'', TOKEN)
    register(TOKEN)  # a token in no keyed position needs the registry
    logging.getLogger("botocore.parsers").debug("Response body:\n%r", TOKEN.encode())
    out = root_capture.getvalue()
    assert TOKEN not in out
    assert out.count(MASK) == 2


def test_a_value_cut_short_is_masked_too() -> None:
    """A clipped or truncated line may lose the closing quote; the token must not survive."""
    for line in ['{"token": "' + TOKEN, '{"token": "' + TOKEN + "\nnext line"]:
        out = redact(line)
        assert TOKEN not in out
        assert MASK in out
    assert redact('{"token": "' + TOKEN + "\nnext line").endswith("\nnext line")
