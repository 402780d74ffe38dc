"""Job containment set up for the whole worker process: the job cgroups where systemd delegates
them (:class:`CgroupTree`), the child subreaper and the capability confinement
(:class:`Containment`, started with the service), and stopping a run at once (:func:`kill_now`).

Why each mechanism, and how a run's processes are found: :mod:`consumers.reaper`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from consumers.reaper import (
    KILL_WAIT_S,
    POLL_S,
    become_subreaper,
    is_subreaper,
    kill_orphans,
    list_processes,
    reap,
    run_processes,
    signal_pids,
)

log = logging.getLogger(__name__)

_lock = threading.Lock()
_cgroups: CgroupTree | None = None


@dataclass
class CgroupTree:
    """The worker's delegated cgroup v2 subtree: one child cgroup per job run."""

    root: Path
    created: set[str] = field(default_factory=set)

    @classmethod
    def detect(
        cls,
        environ: Mapping[str, str] = os.environ,
        self_cgroup: Path = Path("/proc/self/cgroup"),
        mount: Path = Path("/sys/fs/cgroup"),
    ) -> CgroupTree | None:
        """The worker's own cgroup when it can manage children in it: under systemd
        (``INVOCATION_ID`` set), on the unified hierarchy, writable (``Delegate=yes``) and
        with ``cgroup.kill``; else None."""
        if not environ.get("INVOCATION_ID"):
            return None
        try:
            lines = self_cgroup.read_text(encoding="ascii").splitlines()
        except OSError:
            return None
        paths = [line[3:] for line in lines if line.startswith("0::")]
        if len(lines) != 1 or not paths:
            return None  # not (only) cgroup v2
        root = mount / paths[0].lstrip("/")
        if root.name == "worker":  # restarted in place: the unit's cgroup is the parent
            root = root.parent
        if not (root / "cgroup.kill").exists() or not os.access(root, os.W_OK):
            return None
        if not os.access(root / "cgroup.procs", os.W_OK):
            return None
        return cls(root)

    def enter(self, pid: int | None = None) -> None:
        """Move this process into the ``worker`` leaf (a cgroup v2 node with children holds
        no processes of its own)."""
        leaf = self.root / "worker"
        leaf.mkdir(exist_ok=True)
        (leaf / "cgroup.procs").write_text(str(pid or os.getpid()), encoding="ascii")

    def path(self, marker: str) -> Path:
        return self.root / f"job-{marker}"

    def add(self, marker: str, pid: int) -> bool:
        """Put ``pid`` (a job's program, just started) into the run's own cgroup."""
        path = self.path(marker)
        try:
            path.mkdir(exist_ok=True)
            self.created.add(marker)
            (path / "cgroup.procs").write_text(str(pid), encoding="ascii")
        except OSError as exc:
            log.warning("job cgroup %s: cannot move process %d into it: %s", path, pid, exc)
            return False
        return True

    def populated(self, marker: str) -> bool:
        try:
            events = (self.path(marker) / "cgroup.events").read_text(encoding="ascii")
        except OSError:
            return False
        return "populated 1" in events.splitlines()

    def pids(self, marker: str) -> list[int]:
        try:
            text = (self.path(marker) / "cgroup.procs").read_text(encoding="ascii")
        except OSError:
            return []
        return [int(line) for line in text.split() if line.isdigit()]

    def kill(self, marker: str, grace_s: float = 0.0, wait_s: float = KILL_WAIT_S) -> bool:
        """Stop everything in the run's cgroup (SIGTERM, up to ``grace_s`` seconds, then
        ``cgroup.kill``), wait until it is empty and remove it; returns whether something was
        still running in it."""
        if marker not in self.created:
            return False
        path = self.path(marker)
        was_populated = self.populated(marker)
        if was_populated and grace_s > 0:
            signal_pids(self.pids(marker), signal.SIGTERM)
            until = time.monotonic() + grace_s
            while self.populated(marker) and time.monotonic() < until:
                reap()
                time.sleep(POLL_S)
        if self.populated(marker):
            try:
                (path / "cgroup.kill").write_text("1", encoding="ascii")
            except OSError as exc:
                log.error("job cgroup %s: cgroup.kill failed: %s", path, exc)
        until = time.monotonic() + wait_s
        while self.populated(marker) and time.monotonic() < until:
            reap()
            time.sleep(POLL_S)
        reap()
        try:
            path.rmdir()
        except OSError as exc:
            log.warning("job cgroup %s: not removed: %s", path, exc)
        else:
            self.created.discard(marker)
        return was_populated


def cgroups() -> CgroupTree | None:
    return _cgroups


def kill_now(markers: Iterable[str]) -> None:
    """SIGKILL every process of these runs at once, without waiting (a worker leaving now)."""
    markers = list(markers)
    tree = _cgroups
    for marker in markers:
        if tree is not None and marker in tree.created:
            with contextlib.suppress(OSError):
                (tree.path(marker) / "cgroup.kill").write_text("1", encoding="ascii")
    processes = list_processes()
    for marker in markers:
        signal_pids(run_processes(marker, processes, include_unattributed=False), signal.SIGKILL)


# --- the worker's side -----------------------------------------------------------------------
@dataclass
class Containment:
    """Process-wide job containment, set up when the worker service starts (a
    :class:`~consumers.service.Service` companion): child subreaper, the job cgroups where
    systemd delegates them, and the capability confinement of :mod:`consumers.sandbox`."""

    keep_run_as_capabilities: bool = False
    detect_cgroups: Callable[[], CgroupTree | None] = CgroupTree.detect
    started: bool = False

    def start(self) -> None:
        global _cgroups
        from consumers.sandbox import confine_capabilities

        confine_capabilities(self.keep_run_as_capabilities)
        become_subreaper()
        tree = self.detect_cgroups()
        if tree is not None:
            try:
                tree.enter()
            except OSError as exc:
                log.warning("cgroup %s: cannot use it for jobs (%s); subreaper only", tree, exc)
                tree = None
        with _lock:
            _cgroups = tree
        log.info(
            "job containment: %s",
            f"a cgroup per job under {tree.root}" if tree else "process groups and subreaper",
        )
        self.started = True

    def stop(self) -> None:
        """The worker is leaving: stop the orphans no job claimed (see :func:`sweep`)."""
        if is_subreaper():
            kill_orphans()
        reap()
