"""benchmarks.stack_profile: each thread's CPU, summed by what it was started with."""

from __future__ import annotations

import threading
import time

import pytest

from benchmarks.stack_profile import PER_THREAD_PROFILES, ThreadCpu, thread_kind


def busy(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def idle(seconds: float) -> None:
    time.sleep(seconds)


def run_threads(*targets: tuple[object, float]) -> None:
    threads = [threading.Thread(target=t, args=(s,)) for t, s in targets]  # type: ignore[arg-type]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.skipif(not PER_THREAD_PROFILES, reason="one profiler per process from Python 3.12")
def test_cpu_is_summed_by_the_function_each_thread_runs_and_waiting_costs_none() -> None:
    with ThreadCpu(functions=True) as recorder:
        run_threads((busy, 0.05), (busy, 0.05), (idle, 0.1))
    assert recorder.threads[thread_kind(busy)] == 2
    assert recorder.cpu_s[thread_kind(busy)] >= 0.09
    assert recorder.cpu_s[thread_kind(idle)] < 0.02  # sleeping is not CPU
    assert "busy" in recorder.top_functions(thread_kind(busy), 5)


def test_threads_started_after_it_ends_are_not_recorded() -> None:
    with ThreadCpu(functions=False) as recorder:
        pass
    run_threads((busy, 0.01))
    assert not recorder.threads


def test_cpu_per_thread_kind_needs_no_profiler() -> None:
    """What every Python supports: CPU time summed by the function each thread runs."""
    with ThreadCpu(functions=False) as recorder:
        run_threads((busy, 0.05), (busy, 0.05), (idle, 0.1))
    assert recorder.threads[thread_kind(busy)] == 2
    assert recorder.cpu_s[thread_kind(busy)] >= 0.09
    assert recorder.cpu_s[thread_kind(idle)] < 0.02
    assert not recorder.profiles


@pytest.mark.skipif(PER_THREAD_PROFILES, reason="Python 3.11 profiles each thread")
def test_function_profiles_are_refused_where_a_profiler_sees_every_thread() -> None:
    with pytest.raises(ValueError, match=r"need Python 3\.11"):
        ThreadCpu(functions=True)
