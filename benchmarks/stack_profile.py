"""Where the embedded stack's CPU goes, per job, by what each thread runs.

    .venv/bin/python -m benchmarks.stack_profile --jobs 1000 --map-mode DISTRIBUTED
    .venv/bin/python -m benchmarks.stack_profile --jobs 300 --functions 15   # and the hot functions

Sampling profilers mislead here: py-spy's ``--gil`` attributes samples to whichever thread
holds the GIL when it looks, and hundreds of short-lived interpreter threads hand it over
constantly. This measures instead: each thread's own CPU time (``time.thread_time``) at its end,
summed by the function the thread was started with (a Task state, a child execution, a server
connection, the completion handler's pool, ...), divided by the number of jobs. With
``--functions N`` every such thread also runs under ``cProfile`` timed by thread CPU (not wall
time, which would count waiting for the GIL), and the N functions with the most own CPU are
listed per kind of thread. Profiling slows the run; compare the shares, not the totals.
``--functions`` needs Python 3.11: from 3.12 cProfile sits on ``sys.monitoring``, one profiler
per process that sees every thread's calls, so a per-thread profile cannot be taken there (the
CPU time per kind of thread still can).
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import logging
import pstats
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from bridge.local_stack.demo import AUTO, DemoPlan, run_demo
from bridge.local_stack.stack import quiet_moto_logs

#: Whether each thread can run a cProfile of its own (see the module docstring).
PER_THREAD_PROFILES = sys.version_info < (3, 12)


def thread_kind(target: Any) -> str:
    """A thread's kind: the qualified name of the function it was started with."""
    function = getattr(target, "__func__", target)
    name = getattr(function, "__qualname__", None) or type(target).__qualname__
    return f"{getattr(function, '__module__', '') or ''}.{name}"


class ThreadCpu:
    """While active, every thread started records its CPU time (and, with ``functions``, a
    cProfile on thread CPU time) under its kind."""

    def __init__(self, functions: bool) -> None:
        if functions and not PER_THREAD_PROFILES:
            raise ValueError(
                "per-thread function profiles need Python 3.11 (from 3.12 one profiler sees "
                "every thread); run without --functions for CPU time per kind of thread"
            )
        self.functions = functions
        self.cpu_s: dict[str, float] = collections.defaultdict(float)
        self.threads: collections.Counter[str] = collections.Counter()
        self.profiles: dict[str, list[cProfile.Profile]] = collections.defaultdict(list)
        self._lock = threading.Lock()
        self._original_run: Callable[[threading.Thread], None] = threading.Thread.run

    def __enter__(self) -> ThreadCpu:
        recorder, original = self, self._original_run

        def run(thread: threading.Thread) -> None:
            kind = thread_kind(getattr(thread, "_target", None))
            profile = cProfile.Profile(time.thread_time) if recorder.functions else None
            started = time.thread_time()
            if profile:
                profile.enable()
            try:
                original(thread)
            finally:
                if profile:
                    profile.disable()
                recorder.record(kind, time.thread_time() - started, profile)

        threading.Thread.run = run  # type: ignore[method-assign, assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        threading.Thread.run = self._original_run  # type: ignore[method-assign, assignment]

    def record(self, kind: str, cpu_s: float, profile: cProfile.Profile | None) -> None:
        with self._lock:
            self.cpu_s[kind] += cpu_s
            self.threads[kind] += 1
            if profile is not None:
                self.profiles[kind].append(profile)

    def calls(self) -> int:
        """Python function calls in every profiled thread: steadier than CPU time on a shared
        machine, where the same run's CPU seconds vary by a third from one minute to the next."""
        return sum(pstats.Stats(p).total_calls for ps in self.profiles.values() for p in ps)  # type: ignore[attr-defined]

    def top_functions(
        self, kind: str | None, count: int, callers_of: str = "", sort: str = "tottime"
    ) -> str:
        """The ``count`` functions with the most own CPU (``sort``: or cumulative) in this kind
        of thread, or in all of them (``kind`` None); with ``callers_of`` (a regular
        expression), who called the functions it matches."""
        if kind is None:
            profiles = [p for kind_profiles in self.profiles.values() for p in kind_profiles]
        else:
            profiles = self.profiles.get(kind) or []
        if not profiles:
            return ""
        stats = pstats.Stats(profiles[0])
        for profile in profiles[1:]:
            stats.add(profile)
        stream = io.StringIO()
        stats.stream = stream  # type: ignore[attr-defined]
        stats.sort_stats(sort).print_stats(count)
        if callers_of:
            stats.print_callers(callers_of)
        lines = stream.getvalue().splitlines()
        start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
        return "\n".join(lines[start:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--consumers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--map-mode", default=AUTO, choices=[AUTO, "INLINE", "DISTRIBUTED"])
    parser.add_argument("--functions", type=int, default=0, help="list the N hottest functions")
    parser.add_argument("--top", type=int, default=12, help="thread kinds to list")
    parser.add_argument(
        "--callers", default="", help="with --functions: who calls functions matching this regex"
    )
    parser.add_argument(
        "--merged",
        action="store_true",
        help="with --functions: one list for all threads but the main one",
    )
    parser.add_argument("--sort", default="cumulative", help="with --merged: a pstats sort key")
    args = parser.parse_args(argv)
    if args.functions and not PER_THREAD_PROFILES:
        parser.error("--functions needs Python 3.11 (from 3.12 one profiler sees every thread)")
    quiet_moto_logs()
    logging.getLogger("bridge").setLevel(logging.WARNING)
    plan = DemoPlan(
        jobs=args.jobs,
        consumers=args.consumers,
        concurrency=args.concurrency,
        job_ms=(0, 0),
        map_mode=args.map_mode,
    )
    main_started = time.thread_time()
    with ThreadCpu(functions=args.functions > 0) as recorder:
        summary = run_demo(plan)
    main_cpu = time.thread_time() - main_started
    print(
        f"{args.jobs} jobs, {summary['map_mode']}: {summary['elapsed_s']} s end to end, "
        f"as intended: {summary['as_intended']}"
    )
    print("CPU ms/job  threads  started with")
    print(f"{1000 * main_cpu / args.jobs:10.2f}  {1:7d}  main thread (start-up, polling, summary)")
    ranked = sorted(recorder.cpu_s.items(), key=lambda item: -item[1])
    for kind, cpu_s in ranked[: args.top]:
        print(f"{1000 * cpu_s / args.jobs:10.2f}  {recorder.threads[kind]:7d}  {kind}")
    if args.functions:
        print(f"{recorder.calls() / args.jobs:,.0f} Python calls per job (all threads but main)")
    if args.functions and args.merged:
        merged = recorder.top_functions(None, args.functions, args.callers, args.sort)
        print(f"\n== all threads\n{merged}")
    elif args.functions:
        for kind, _ in ranked[: min(args.top, 4)]:
            print(f"\n== {kind}\n{recorder.top_functions(kind, args.functions, args.callers)}")
    return 0 if summary["as_intended"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
