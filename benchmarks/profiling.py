"""Where a measured window's time goes, so a throughput figure can name the limit it hits.

Over one window (a scenario's consumers start → its execution closed) :class:`ProfileWatch`
records the CPU seconds of the embedded stack's process (this one: moto's server, its Step
Functions interpreter, the event source mapping and the completion handler all run here), of
the consumer processes and of the whole machine (``/proc/stat``: other work on a shared machine
shows as the rest), and runs ``py-spy record --gil`` on the stack and on one consumer.

With ``--gil`` py-spy keeps only the thread holding the GIL at each sample, so the samples over
``rate * seconds`` are the share of the window the interpreter was busy running Python: a
process whose share nears 1 cannot go faster however many cores are free. The samples are
summarised to the top functions (where the time is spent) and to components (whose code).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.measure import process_stats

PY_SPY = Path(sys.executable).with_name("py-spy")
RATE_HZ = 50
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

#: A frame's file (full path) → the component it belongs to. Each sample is charged to the
#: innermost frame that matches, so stdlib leaves (json, re, socket) go to their caller.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("/moto/stepfunctions/", "moto Step Functions interpreter"),
    ("/moto/sqs/", "moto SQS"),
    ("/moto/s3/", "moto S3"),
    ("/bridge/local_stack/event_source", "event source mapping"),
    ("/bridge/completion", "completion handler"),
    ("/bridge/local_stack/", "embedded stack glue"),
    ("/benchmarks/", "bench harness"),
    ("/moto/", "moto core (dispatch, responses, auth)"),
    ("/werkzeug/", "HTTP server (werkzeug)"),
    ("/socketserver.py", "HTTP server (werkzeug)"),
    ("/http/server.py", "HTTP server (werkzeug)"),
    ("/botocore/", "boto3/botocore clients"),
    ("/boto3/", "boto3/botocore clients"),
    ("/urllib3/", "boto3/botocore clients"),
    ("/consumers/", "worker (consumers/)"),
    ("/bridge/", "bridge library"),
)
TOP = 6
#: Inclusive shares: the samples with any frame whose text (``func (path:line)``) contains the
#: marker, so nested work is counted within its caller (the request serving includes moto's
#: action; the action is also shown alone).
INCLUSIVE: tuple[tuple[str, str], ...] = (
    ("process_request_thread (", "serving HTTP requests (werkzeug thread, all of it)"),
    ("BaseResponse.call_action (", "moto's action handlers (the API's own work)"),
    ("/moto/stepfunctions/", "Step Functions interpreter"),
    ("/bridge/local_stack/event_source", "event source mapping"),
    ("/bridge/completion", "completion handler"),
    ("BaseClient._make_api_call (", "boto3 calls made by this process"),
    ("/consumers/worker.py", "worker loop (consumers/worker.py)"),
    ("/consumers/keepalive.py", "keep-alive (consumers/keepalive.py)"),
    ("/consumers/results.py", "results (consumers/results.py)"),
)


@dataclass
class Profile:
    """One process's ``py-spy record --gil`` over the window, summarised."""

    samples: int
    window_s: float
    rate_hz: int
    #: Share of the window the process held the GIL (samples / (rate * window)).
    gil_share: float
    #: (function (file:line), share of the samples) where the sample's innermost frame was.
    top_functions: list[tuple[str, float]] = field(default_factory=list)
    #: (component, share of the samples), by :data:`COMPONENTS`.
    components: list[tuple[str, float]] = field(default_factory=list)
    #: (label, share of the samples), by :data:`INCLUSIVE`; labels with no sample left out.
    inclusive: list[tuple[str, float]] = field(default_factory=list)
    error: str = ""


def _frame_file(frame: str) -> str:
    """``func (path:line)`` → ``path``."""
    inner = frame.rsplit(" (", 1)[-1].rstrip(")")
    return inner.rsplit(":", 1)[0]


def _short(frame: str) -> str:
    """``func (/long/path/pkg/mod.py:12)`` → ``func (pkg/mod.py:12)``."""
    name, _, where = frame.rpartition(" (")
    path = where.rstrip(")")
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif "/" in path:
        path = "/".join(path.split("/")[-2:])
    return f"{name} ({path})" if name else frame


def component(stack: list[str]) -> str:
    """The component of the innermost frame (the stack's last) that matches one."""
    for frame in reversed(stack):
        path = _frame_file(frame)
        for marker, label in COMPONENTS:
            if marker in path:
                return label
    return "other (stdlib, threads)"


def summarise(raw: str, window_s: float, rate_hz: int = RATE_HZ, top: int = TOP) -> Profile:
    """A py-spy ``--format raw`` (collapsed stacks: ``frame;frame;... count``) summary."""
    leaves: Counter[str] = Counter()
    parts: Counter[str] = Counter()
    within: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack_text, _, count_text = line.rstrip().rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count, stack = int(count_text), stack_text.split(";")
        total += count
        leaves[_short(stack[-1])] += count
        parts[component(stack)] += count
        for marker, label in INCLUSIVE:
            if marker in stack_text:
                within[label] += count
    expected = rate_hz * window_s
    return Profile(
        samples=total,
        window_s=round(window_s, 2),
        rate_hz=rate_hz,
        gil_share=round(min(1.0, total / expected), 3) if expected else 0.0,
        top_functions=[(f, round(n / total, 3)) for f, n in leaves.most_common(top)],
        components=[(c, round(n / total, 3)) for c, n in parts.most_common(top)],
        inclusive=[(label, round(within[label] / total, 3)) for _, label in INCLUSIVE
                   if within[label]],
    )  # fmt: skip


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of all CPUs since boot, from ``/proc/stat`` ((0, 0) without)."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0.0, 0.0
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values) - idle) / _TICK, sum(values) / _TICK


@dataclass
class WindowStats:
    """CPU over one window, in cores (CPU seconds / window seconds), and the profiles."""

    window_s: float
    cpus: int
    machine_busy_cores: float
    stack_cores: float
    consumers_cores: float
    #: The busiest consumer process.
    consumer_max_cores: float
    profiler_cores: float
    #: Busy cores not ours: other work on a shared machine.
    other_cores: float
    profiles: dict[str, Profile] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ProfileWatch:
    """A :class:`benchmarks.scenarios.Watch`: CPU and py-spy over a scenario's window.

    ``profile=False`` measures CPU only (to check the profiler's own cost)."""

    def __init__(self, out_dir: Path, profile: bool = True, rate_hz: int = RATE_HZ) -> None:
        self.out_dir = out_dir
        self.profile = profile and PY_SPY.exists()
        self.rate_hz = rate_hz
        self.result: WindowStats | None = None
        self._spies: dict[str, subprocess.Popen[bytes]] = {}
        self._consumers: list[subprocess.Popen[bytes]] = []

    def _spy(self, name: str, pid: int) -> None:
        out = self.out_dir / f"profile-{name}.txt"
        command = [str(PY_SPY), "record", "--pid", str(pid), "--gil", "--nonblocking"]
        command += ["--full-filenames", "--rate", str(self.rate_hz), "--format", "raw"]
        command += ["-o", str(out)]
        log = (self.out_dir / f"profile-{name}.log").open("wb")
        self._spies[name] = subprocess.Popen(command, stdout=log, stderr=log)

    def start(self, consumers: list[subprocess.Popen[bytes]]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._consumers = consumers
        self._t0 = time.monotonic()
        self._machine0 = machine_cpu()
        self._stack0 = process_stats(os.getpid())[0]
        self._cons0 = [process_stats(p.pid)[0] for p in consumers]
        if self.profile:
            self._spy("stack", os.getpid())
            if consumers:
                self._spy("consumer", consumers[0].pid)

    def stop(self) -> None:
        window = time.monotonic() - self._t0
        machine1 = machine_cpu()
        stack = process_stats(os.getpid())[0] - self._stack0
        pairs = zip(self._consumers, self._cons0, strict=True)
        cons = [process_stats(p.pid)[0] - c0 for p, c0 in pairs]
        spies_cpu = sum(process_stats(s.pid)[0] for s in self._spies.values())
        profiles: dict[str, Profile] = {}
        for name, spy in self._spies.items():
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
            out = self.out_dir / f"profile-{name}.txt"
            if out.exists():
                profiles[name] = summarise(out.read_text(), window, self.rate_hz)
            else:
                log = (self.out_dir / f"profile-{name}.log").read_text(errors="replace")
                profiles[name] = Profile(0, round(window, 2), self.rate_hz, 0.0, error=log[-500:])
        busy = machine1[0] - self._machine0[0]
        w = window or 1.0
        self.result = WindowStats(
            window_s=round(window, 2),
            cpus=os.cpu_count() or 1,
            machine_busy_cores=round(busy / w, 2),
            stack_cores=round(stack / w, 2),
            consumers_cores=round(sum(cons) / w, 2),
            consumer_max_cores=round(max(cons, default=0.0) / w, 2),
            profiler_cores=round(spies_cpu / w, 2),
            other_cores=round(max(0.0, busy - stack - sum(cons) - spies_cpu) / w, 2),
            profiles=profiles,
        )


#: A process whose GIL share (or, unprofiled, CPU) reaches this is saturated.
SATURATED = 0.85
#: The machine is the limit when its busy cores reach this share of its CPUs.
MACHINE_BUSY = 0.9
#: Throughput this close to the slots' ceiling (slots / job duration) is bounded by job time.
SLOTS = 0.8


def limit(stats: WindowStats, jobs_per_s: float, slots_per_s: float) -> dict[str, str]:
    """The limit one result hits, with the figures that show it. The rule, in order: the stack's
    process busy (GIL share or cores) >= 85 % of one core, the machine's busy cores >= 90 % of
    its CPUs, a consumer busy >= 85 %, jobs/s >= 80 % of what the slots allow."""
    stack = stats.profiles.get("stack")
    consumer = stats.profiles.get("consumer")
    # Busy = the larger of the GIL share and the cores used: a process's Python runs under one
    # GIL, so either near 1 means it cannot go faster (CPU above the GIL share is C code and
    # the threads' GIL hand-offs; a GIL share above the CPU is a holder waiting for a core).
    stack_busy = max(stack.gil_share if stack else 0.0, stats.stack_cores)
    consumer_busy = max(consumer.gil_share if consumer else 0.0, stats.consumer_max_cores)
    cpu = (
        f"machine {stats.machine_busy_cores}/{stats.cpus} cores busy (stack "
        f"{stats.stack_cores}, consumers {stats.consumers_cores}, profiler "
        f"{stats.profiler_cores}, other work {stats.other_cores})"
    )
    if stack_busy >= SATURATED:
        return {"limit": "embedded stack", "why": f"stack busy {stack_busy:.0%} of one core; {cpu}"}
    if stats.machine_busy_cores >= MACHINE_BUSY * stats.cpus:
        return {"limit": "machine CPU", "why": f"{cpu}; stack busy {stack_busy:.0%} of one core"}
    if consumer_busy >= SATURATED:
        return {"limit": "bridge (consumer)", "why": f"a consumer busy {consumer_busy:.0%}"}
    if slots_per_s and jobs_per_s >= SLOTS * slots_per_s:
        return {
            "limit": "job slots",
            "why": f"{jobs_per_s:.0f} of {slots_per_s:.0f} jobs/s the slots allow",
        }
    return {
        "limit": "none saturated",
        "why": f"stack busy {stack_busy:.0%}, a consumer {consumer_busy:.0%}; {cpu}",
    }
