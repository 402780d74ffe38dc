"""Internal threads that may not die quietly: what escapes a thread's target is logged with its
traceback and the thread's name, and reported once; a target that returns is no death."""

from __future__ import annotations

import logging

import pytest

from bridge import redaction
from consumers.threads import EXIT_THREAD_DIED, CriticalThread, describe, guarded


class Deaths:
    def __init__(self) -> None:
        self.seen: list[tuple[str, BaseException]] = []

    def __call__(self, name: str, exc: BaseException) -> None:
        self.seen.append((name, exc))


def raiser(exc: BaseException) -> None:
    raise exc


@pytest.mark.parametrize(
    "exc",
    [RecursionError("too deep"), SystemExit(3), KeyboardInterrupt(), ValueError("bad")],
    ids=["RecursionError", "SystemExit", "KeyboardInterrupt", "ValueError"],
)
def test_whatever_escapes_the_target_is_reported_with_the_thread_name(
    exc: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    deaths = Deaths()
    thread = CriticalThread("receiver", raiser, deaths, args=(exc,))
    with caplog.at_level(logging.CRITICAL, logger="consumers.threads"):
        thread.start()
        thread.join(5)
    assert not thread.is_alive()
    assert deaths.seen == [("receiver", exc)]
    assert thread.died is exc
    [record] = caplog.records
    assert record.getMessage().startswith(f"thread receiver died: {type(exc).__name__}")
    assert record.exc_info and record.exc_info[1] is exc  # the traceback is logged


def test_a_target_that_returns_has_not_died() -> None:
    deaths = Deaths()
    thread = CriticalThread("instance-watcher", lambda: None, deaths)
    thread.start()
    thread.join(5)
    assert deaths.seen == [] and thread.died is None
    assert thread.daemon


def test_a_failing_death_report_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_name: str, _exc: BaseException) -> None:
        raise RuntimeError("report failed")

    with caplog.at_level(logging.CRITICAL, logger="consumers.threads"):
        guarded("keepalive", lambda: raiser(OSError("x")), broken)()  # does not raise
    assert "reporting the death of thread keepalive failed" in caplog.text


def test_the_description_is_one_line_and_masks_task_tokens() -> None:
    token = "AQB" + "x" * 200
    redaction.register(token)
    line = describe("receiver", ValueError(f"bad token {token}\nsecond line"))
    assert line.startswith("thread receiver died: ValueError: bad token ")
    assert token not in line and "\n" not in line
    assert describe("supervisor", KeyError()) == "thread supervisor died: KeyError"


def test_the_exit_code_is_neither_a_drain_nor_a_second_signal() -> None:
    assert EXIT_THREAD_DIED not in (0, 1, 2, 130)
