"""The worker's internal threads: none may die quietly.

A worker is a handful of long-lived threads (receiver, keep-alive, result sender, health
server, instance watcher, lifecycle heartbeats) around the supervisor loop. Python ends a
thread whose target raises and carries on with the others, so an exception in one of them used
to leave a half-alive worker: a receiver killed by a crafted message while ``GET /health``
answered 200 and jobs piled up in the queue.

:class:`CriticalThread` (and :func:`guarded`, for the supervisor loop, which runs on the
caller's thread) catches anything that escapes the thread's target, :class:`BaseException`
included (``SystemExit`` in a thread would otherwise vanish without a word), logs it with its
traceback and the thread's name, and calls ``on_death(name, exc)``. The worker's
``on_death`` marks it unhealthy (health 503, ``state: unhealthy``, a ``reason`` naming the
thread) and stops it at once the way a second signal does: running and received jobs' messages
go back to the queue (visibility 0), results already produced are sent (or, when the sender
is the thread that died, their jobs' messages are released too), and the process exits with
:data:`EXIT_THREAD_DIED` so that systemd (``Restart=on-failure``) or the Auto Scaling health
check replaces it.

A thread whose target returns has ended by design (its owner stopped it, or it had nothing
left to watch); only an exception is a death. Job threads are not internal threads: a handler
that raises fails its task, as it always has.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from bridge.redaction import redact

log = logging.getLogger(__name__)

#: The worker's exit code after an internal thread died (EX_SOFTWARE, sysexits.h): distinct
#: from 0 (drained) and 130 (stopped at once by a second signal).
EXIT_THREAD_DIED = 70

#: Told that the thread ``name`` died of ``exc``; called on the dying thread.
OnDeath = Callable[[str, BaseException], None]


def describe(name: str, exc: BaseException) -> str:
    """One line for logs and the health endpoint: which thread, and of what (a task token in
    the exception's text is masked: the health body is served over HTTP)."""
    text = redact(str(exc))
    detail = text.splitlines()[0][:200] if text else ""
    return f"thread {name} died: {type(exc).__name__}" + (f": {detail}" if detail else "")


def guarded(name: str, target: Callable[[], Any], on_death: OnDeath | None) -> Callable[[], None]:
    """``target`` made safe to run at the top of a thread: whatever escapes it is logged with
    its traceback and reported to ``on_death`` instead of ending the thread unseen."""

    def run() -> None:
        try:
            target()
        except BaseException as exc:
            log.critical("%s", describe(name, exc), exc_info=exc)
            if on_death is None:
                return
            try:
                on_death(name, exc)
            except BaseException:
                log.critical("reporting the death of thread %s failed", name, exc_info=True)

    return run


class CriticalThread(threading.Thread):
    """A daemon thread whose death (an exception escaping ``target``) is reported to
    ``on_death``; :attr:`died` holds the exception afterwards."""

    def __init__(
        self,
        name: str,
        target: Callable[..., Any],
        on_death: OnDeath | None = None,
        *,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._body = lambda: target(*args, **(kwargs or {}))
        self._on_death = on_death
        self.died: BaseException | None = None

    def run(self) -> None:
        guarded(self.name, self._body, self._record)()

    def _record(self, name: str, exc: BaseException) -> None:
        self.died = exc
        if self._on_death is not None:
            self._on_death(name, exc)
