"""``callback-bridge worker`` with time compressed ``K`` times, for the ``steady`` scenario.

    python -m benchmarks.compressed_worker --compress 60 -- --state-file local.json ...

A benchmark that runs an hour's jobs in a minute must not flatter batching: a 0.25 s window
catches K times more completions when completions come K times faster. So every window is
divided by K with the durations:

* the worker's timing flags (``--visibility-timeout``, ``--heartbeat-interval``,
  ``--stale-check-age``, ``--delete-window``) are given scaled by the harness
  (:meth:`Compression.worker_flags`);
* the windows that are module constants, with no flag, are divided by K here, in this process,
  before the worker starts (:data:`WINDOWS`; a name the worker does not have is skipped and
  listed on stderr, so a renamed constant shows in the log instead of silently running at full
  width).

The embedded mapping's batching window is scaled by the harness on the stack's side
(:mod:`benchmarks.steady_run`).

With ``BENCH_WORKER_STATS=<path>`` the process also counts, and keeps in that JSON file, what the
server cannot tell apart: its receives that came back empty (idle long polls, whose number
depends on the long-poll wait, which cannot be compressed below SQS's whole second) and the
heartbeats its stale check sent (per job, not keep-alive).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import runpy
import sys
import threading
from dataclasses import dataclass
from typing import Any

from bridge.timing import (
    DEFAULT_HEARTBEAT_INTERVAL_S,
    DEFAULT_STALE_CHECK_AGE_S,
    DEFAULT_VISIBILITY_TIMEOUT_S,
)

#: (module, constant) pairs that are windows or ticks in seconds: batching lingers, the
#: keep-alive's tick (a heartbeat is due at most a tick late, so an unscaled tick would stretch
#: a scaled interval), the delete window.
WINDOWS: tuple[tuple[str, str], ...] = (
    ("consumers.results", "LINGER_S"),
    ("consumers.worker", "RECEIVE_LINGER_S"),
    ("consumers.keepalive", "TICK_S"),
    ("bridge.timing", "KEEPALIVE_TICK_S"),
    ("bridge.timing", "EXTEND_RETRY_S"),
    ("consumers.results", "DELETE_WINDOW_S"),
    ("consumers.deletes", "DELETE_WINDOW_S"),
    ("consumers.deletes", "WINDOW_S"),
    ("consumers.worker", "DELETE_WINDOW_S"),
    ("bridge.timing", "DELETE_WINDOW_S"),
    ("bridge.timing", "DEFAULT_DELETE_WINDOW_S"),
)


#: The program the wrapper runs once the windows are scaled.
CLI_PROGRAM = "bridge.cli.main"
#: The environment variable naming the worker's stats file (:class:`Stats`).
STATS_ENV = "BENCH_WORKER_STATS"
#: Modules with a same-named constant that is no batching window (a job process's poll tick):
#: scaling them only burns CPU.
_NOT_WINDOWS = frozenset({"consumers.process", "consumers.supervisor"})
#: Settings fields (dataclass defaults, bound when the class was made) that are windows.
_WINDOW_FIELD_SUFFIXES = ("_window_s", "_linger_s")


@dataclass(frozen=True)
class Compression:
    """Time runs ``factor`` times faster: durations and every window divided by it."""

    factor: int

    def __post_init__(self) -> None:
        if not 1 <= self.factor <= 600:
            raise ValueError(f"compression must be 1-600, got {self.factor}")

    @property
    def visibility_s(self) -> int:
        """The jobs queue's visibility timeout in the run: whole seconds (SQS), at least 3 so
        extensions (every half) stay at or above the worker's 1 s floor."""
        return max(3, round(DEFAULT_VISIBILITY_TIMEOUT_S / self.factor))

    @property
    def visibility_factor(self) -> float:
        """How much shorter the run's visibility timeout is than the default (the rounding to
        whole seconds may make it differ from ``factor``)."""
        return DEFAULT_VISIBILITY_TIMEOUT_S / self.visibility_s

    def worker_flags(self) -> list[str]:
        """The worker's timing flags at the defaults, scaled (given explicitly, so no
        ``BRIDGE_*`` variable in the environment can put one back at full width)."""
        from consumers.deletes import DELETE_WINDOW_S

        return [
            "--visibility-timeout", str(self.visibility_s),
            "--heartbeat-interval", f"{DEFAULT_HEARTBEAT_INTERVAL_S / self.factor:.4f}",
            "--stale-check-age", f"{DEFAULT_STALE_CHECK_AGE_S / self.factor:.4f}",
            "--delete-window", f"{DELETE_WINDOW_S / self.factor:.4f}",
        ]  # fmt: skip


def _loaded_windows() -> list[tuple[object, str, float]]:
    """Every (module, name, seconds) of :data:`WINDOWS`' names in the worker's modules: the
    listed modules are imported first, then each ``bridge``/``consumers`` module holding one
    of the names counts (a module that imported the constant by value has its own copy)."""
    names = {name for _, name in WINDOWS}
    for module_name in {m for m, _ in WINDOWS} | {"consumers.compose", "consumers.service"}:
        try:
            importlib.import_module(module_name)
        except ImportError:
            continue
    found: list[tuple[object, str, float]] = []
    for module_name, module in sorted(sys.modules.items()):
        if not module_name.startswith(("consumers.", "bridge.")) or module is None:
            continue
        if module_name in _NOT_WINDOWS:
            continue
        for name in sorted(names):
            value = getattr(module, name, None)
            if isinstance(value, int | float) and not isinstance(value, bool):
                found.append((module, name, float(value)))
    return found


def scale_windows(factor: float) -> dict[str, float]:
    """Divide each window constant found by ``factor``, once per module; returns the
    originals (``module.NAME`` → seconds)."""
    originals: dict[str, float] = {}
    for module, name, value in _loaded_windows():
        originals[f"{getattr(module, '__name__', '?')}.{name}"] = value
        setattr(module, name, value / factor)
    return originals


def scale_settings_defaults(factor: float) -> dict[str, float]:
    """Dataclass fields of ``consumers.settings`` named ``*_window_s`` / ``*_linger_s`` took
    their default when the class was made: make each class's ``__init__`` default them to the
    value divided by ``factor`` (a value given explicitly, by a flag, is left alone)."""
    try:
        settings = importlib.import_module("consumers.settings")
    except ImportError:
        return {}
    originals: dict[str, float] = {}
    for cls in vars(settings).values():
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            continue
        if cls.__module__ != settings.__name__:
            continue
        scaled = {
            f.name: f.default / factor
            for f in dataclasses.fields(cls)
            if f.name.endswith(_WINDOW_FIELD_SUFFIXES) and isinstance(f.default, int | float)
        }
        if not scaled:
            continue
        for name in scaled:
            originals[f"{cls.__name__}.{name}"] = float(scaled[name] * factor)
        original_init = cls.__init__

        def init(self: Any, *args: Any, __init: Any = original_init, __d: Any = scaled,
                 **kwargs: Any) -> None:  # fmt: skip
            for name, value in __d.items():
                kwargs.setdefault(name, value)
            __init(self, *args, **kwargs)

        cls.__init__ = init  # type: ignore[method-assign]
    return originals


def window_defaults() -> dict[str, float]:
    """The window constants as the worker has them (unscaled, in this process)."""
    return {f"{getattr(m, '__name__', '?')}.{n}": v for m, n, v in _loaded_windows()}


class Stats:
    """Counters kept in a JSON file, rewritten (atomically) on each change."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.counts = {"receives": 0, "empty_receives": 0, "stale_probes": 0}
        self._lock = threading.Lock()

    def add(self, **increments: int) -> None:
        with self._lock:
            for key, n in increments.items():
                self.counts[key] += n
            tmp = f"{self.path}.tmp"
            with open(tmp, "w") as f:
                json.dump(self.counts, f)
            os.replace(tmp, self.path)


def instrument(stats: Stats) -> None:
    """Count the worker's receives (and the empty ones) and its stale-check heartbeats."""
    import consumers.stale
    import consumers.worker

    receive = consumers.worker.Worker.receive

    def counted_receive(self: Any, max_messages: int) -> list[dict[str, Any]]:
        messages = receive(self, max_messages)
        stats.add(receives=1, empty_receives=0 if messages else 1)
        return messages

    probe = consumers.stale.probe_task

    def counted_probe(sfn: Any, token: str) -> tuple[str | None, bool]:
        stats.add(stale_probes=1)
        return probe(sfn, token)

    consumers.worker.Worker.receive = counted_receive  # type: ignore[method-assign]
    consumers.stale.probe_task = counted_probe


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compress", type=int, required=True)
    parser.add_argument("worker_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    Compression(args.compress)  # validates
    scaled = {**scale_windows(args.compress), **scale_settings_defaults(args.compress)}
    print(f"compressed {args.compress}x: {sorted(scaled)}", file=sys.stderr)
    if os.environ.get(STATS_ENV):
        instrument(Stats(os.environ[STATS_ENV]))
    rest = [a for a in args.worker_args if a != "--"]
    # The CLI program itself, as ``python -m bridge.cli.main worker ...`` would run it (a tool
    # runs the program; it does not build on the CLI's code).
    sys.argv = ["callback-bridge", "worker", *rest]
    runpy.run_module(CLI_PROGRAM, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
