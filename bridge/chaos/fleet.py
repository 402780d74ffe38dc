"""The campaign's consumers: real ``callback-bridge worker`` processes, killed and restarted.

Slot 0 is the embedded EC2 instance (``--instance-handling on``: it reads the stack's instance
metadata and drains on a termination notice); the others run with instance handling off, so a
notice meant for one instance does not drain the whole fleet. One consumer logs at DEBUG
(botocore request and response bodies included) for the token check. A process that exits
without having been signalled has crashed: it is counted and restarted (as systemd's
``Restart=on-failure`` would). Each slot keeps its state directory (``state-N``: the result
spool) across restarts, as a replacement process on the same host would. A consumer may also be
stopped (SIGSTOP) and continued (SIGCONT) later. The last ``isolated_consumers`` slots run
every job in a process of its own (``--isolation process``); the others run a job's first
delivery in one of their threads, where a crashing job takes them down.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bridge.chaos.schedule import HANG_TYPE, ChaosPlan
from bridge.chaos.work import JOURNAL_ENV

HANDLER = "bridge.chaos.work:run"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Slot:
    index: int
    process: subprocess.Popen[bytes] | None = None
    #: The signal we sent (an exit after it is expected), None while it should be running.
    signalled: int | None = None
    instance: bool = False
    generation: int = 0
    health_port: int = 0
    #: Stopped with SIGSTOP (the generation stopped), None while running.
    stopped: int | None = None


@dataclass
class Fleet:
    plan: ChaosPlan
    state_file: Path
    endpoint_url: str
    work_dir: Path
    slots: list[Slot] = field(default_factory=list)
    killed: int = 0
    terminated: int = 0
    restarts: int = 0
    #: (slot, exit code, log file) of processes that exited on their own.
    crashes: list[tuple[int, int | None, str]] = field(default_factory=list)
    #: Consumers a poison-pill job took down (expected: its journal says so last).
    pill_deaths: int = 0
    health_ports: list[int] = field(default_factory=list)
    stops: int = 0
    #: "consumer-I.G" of generations that died by SIGKILL or a crash (theirs, or a job's in
    #: their process): what they started may be left behind without a bug of theirs.
    killed_generations: set[str] = field(default_factory=set)
    #: "consumer-I.G" of generations stopped with SIGSTOP (frozen past the visibility timeout:
    #: their jobs go to other consumers, finished or not).
    stopped_generations: set[str] = field(default_factory=set)

    def command(self, slot: Slot, health_port: int) -> list[str]:
        plan = self.plan
        return [
            sys.executable, "-m", "bridge.cli.main", "worker",
            "--state-file", str(self.state_file), "--endpoint-url", self.endpoint_url,
            "--handler", HANDLER, "--concurrency", str(plan.concurrency),
            "--isolation", "process" if self.isolated(slot.index) else "thread",
            "--wait-seconds", "1", "--visibility-timeout", str(plan.visibility_timeout_s),
            "--heartbeat-interval", str(plan.heartbeat_interval_s),
            "--job-timeout", str(plan.job_timeout_s),
            "--job-timeouts", f"{HANG_TYPE}={plan.hang_timeout_s}",
            "--cancel-grace", "1", "--drain-timeout", str(plan.drain_timeout_s),
            "--stale-check-age", str(plan.stale_check_age_s),
            "--max-queue-wait", str(plan.max_queue_wait_s),
            "--instance-handling", "on" if slot.instance else "off",
            "--state-dir", str(self.work_dir / f"state-{slot.index}"),
            "--pass-env", JOURNAL_ENV,
            "--lifecycle-hook-timeout", "30",
            "--health-port", str(health_port),
            "--log-format", "json",
            "--log-level", "DEBUG" if slot.index == 1 else "INFO",
        ]  # fmt: skip

    def start(self, index: int, instance: bool = False) -> Slot:
        while len(self.slots) <= index:
            self.slots.append(Slot(len(self.slots)))
        slot = self.slots[index]
        slot.instance, slot.signalled, slot.stopped = instance, None, None
        slot.generation += 1
        port = free_port()
        self.health_ports.append(port)
        slot.health_port = port
        name = f"consumer-{index}.{slot.generation}"
        env = {**os.environ, JOURNAL_ENV: str(self.work_dir / f"{name}.journal")}
        log = (self.work_dir / f"{name}.log").open("wb")
        slot.process = subprocess.Popen(
            self.command(slot, port), stdout=log, stderr=subprocess.STDOUT, env=env
        )
        log.close()
        return slot

    def ready(self, index: int) -> bool:
        """The consumer answers its health endpoint: its signal handlers are installed (a
        SIGTERM before that ends the process the default way, which is not the drain path)."""
        slot = self.slots[index]
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{slot.health_port}/health", timeout=0.3
            ) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def signal(self, index: int, signum: int) -> bool:
        """Send ``signum`` to a running consumer; False if it is not running."""
        slot = self.slots[index]
        if slot.process is None or slot.process.poll() is not None or slot.signalled:
            return False
        slot.signalled = signum
        if slot.stopped is not None and signum != signal.SIGKILL:
            self.cont(index)  # a stopped process would not act on SIGTERM
        slot.process.send_signal(signum)
        if signum == signal.SIGKILL:
            self.killed += 1
            self.killed_generations.add(self.name(slot))
        else:
            self.terminated += 1
        return True

    def stop(self, index: int) -> int | None:
        """SIGSTOP a running consumer; returns its generation (None: not running)."""
        slot = self.slots[index]
        if slot.process is None or slot.process.poll() is not None or slot.signalled:
            return None
        if slot.stopped is not None:
            return None
        slot.process.send_signal(signal.SIGSTOP)
        slot.stopped = slot.generation
        self.stops += 1
        self.stopped_generations.add(self.name(slot))
        return slot.generation

    def cont(self, index: int, generation: int | None = None) -> bool:
        """SIGCONT a stopped consumer (of ``generation``, if given)."""
        slot = self.slots[index]
        if slot.stopped is None or (generation is not None and slot.stopped != generation):
            return False
        slot.stopped = None
        if slot.process is not None and slot.process.poll() is None:
            slot.process.send_signal(signal.SIGCONT)
        return True

    def isolated(self, index: int) -> bool:
        """Slot ``index`` runs every job in a process of its own."""
        return index >= self.plan.consumers - self.plan.isolated_consumers

    @staticmethod
    def name(slot: Slot) -> str:
        return f"consumer-{slot.index}.{slot.generation}"

    def expect_exit(self, index: int) -> None:
        """The process will exit by itself (a termination notice drains it)."""
        self.slots[index].signalled = signal.SIGTERM

    def restart(self, index: int) -> bool:
        """Start a replacement once the old process has exited (False: still draining)."""
        slot = self.slots[index]
        if slot.process is not None and slot.process.poll() is None:
            return False
        self._judge(slot)
        self.restarts += 1
        self.start(index, instance=False)  # a replacement instance: not the announced one
        return True

    def _judge(self, slot: Slot, allowed: tuple[int, ...] = (0,)) -> None:
        """A SIGTERM (or a termination notice) must end in a clean exit: 0 after a drain,
        130 after a second signal (stopped at once), unless a poison pill got it first."""
        process = slot.process
        if process is None or slot.signalled != signal.SIGTERM or process.returncode in allowed:
            return
        name = self.name(slot)
        if self._pill(name, process.pid):
            self.pill_deaths += 1
            self.killed_generations.add(name)
        else:
            self.crashes.append((slot.index, process.returncode, f"{name}.log"))

    def check(self) -> None:
        """Count and restart processes that exited without being signalled."""
        for slot in self.slots:
            process = slot.process
            if process is None or slot.signalled is not None:
                continue
            code = process.poll()
            if code is not None:
                name = self.name(slot)
                self.killed_generations.add(name)
                if self._pill(name, process.pid):
                    self.pill_deaths += 1
                else:
                    self.crashes.append((slot.index, code, f"{name}.log"))
                self.restarts += 1
                self.start(slot.index, instance=slot.instance)

    def _pill(self, name: str, pid: int) -> bool:
        """The consumer's journal ends with a crashing job's "crash" line written in the
        consumer's own process (not in an isolated job process of its)."""
        try:
            lines = (self.work_dir / f"{name}.journal").read_text().splitlines()
        except OSError:
            return False
        for line in lines[-8:]:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut by the SIGKILL
            if entry.get("event") == "crash" and entry.get("pid") == pid:
                return True
        return False

    def pids(self) -> list[int]:
        return [
            s.process.pid for s in self.slots if s.process is not None and s.process.poll() is None
        ]

    def stop_all(self, timeout_s: float = 20.0) -> list[int | None]:
        """SIGTERM twice (release at once), then wait; SIGKILL what is left. A consumer still
        starting (no health answer yet, so no signal handler and no job) may die of the
        SIGTERM itself (exit -15): that is not a crash."""
        live = [s for s in self.slots if s.process is not None and s.process.poll() is None]
        for slot in live:
            self.cont(slot.index)
        starting = {s.index for s in live if not self.ready(s.index)}
        for signals in range(2):
            for slot in live:
                assert slot.process is not None
                if slot.process.poll() is None:
                    slot.signalled = signal.SIGTERM
                    slot.process.send_signal(signal.SIGTERM)
            if signals == 0:
                time.sleep(0.3)
        codes: list[int | None] = []
        for slot in live:
            assert slot.process is not None
            try:
                codes.append(slot.process.wait(timeout=timeout_s))
            except subprocess.TimeoutExpired:
                slot.process.kill()
                codes.append(slot.process.wait())
            early = (-signal.SIGTERM,) if slot.index in starting else ()
            self._judge(slot, allowed=(0, 130, *early))
        return codes
