"""Nothing a job starts outlives it: not its process group, not the daemons that left it.

A job's process group (:mod:`consumers.process`) ends with the job, but a process can leave
the group on purpose (``setsid some-daemon &``, a double-forking daemon). Two mechanisms catch
those escapees:

* **The job's own cgroup**, where the worker runs under systemd with ``Delegate=yes`` on a
  writable cgroup v2 hierarchy with ``cgroup.kill`` (Linux 5.14+):
  :class:`~consumers.containment.CgroupTree`. The
  worker moves itself into a leaf (``<unit>/worker``) at start and each job's program into
  ``<unit>/job-<run>`` as soon as it has started; when the job ends (or is stopped),
  whatever is left in it, escapees included, gets SIGTERM, the grace period, then
  ``cgroup.kill``, and the directory is removed. A process cannot leave a cgroup without
  write access to the worker's delegated tree, which job code (another user under
  ``--run-as``) does not have.
* **The worker as child subreaper** everywhere else, and as a net under the cgroup (a process
  forked between the program's start and its move to the job cgroup stays in the worker's):
  ``prctl(PR_SET_CHILD_SUBREAPER)`` makes orphans of the jobs re-parent to the worker instead
  of init, so the worker can find and reap them. Each run's processes carry a marker in their
  environment (``BRIDGE_JOB_RUN=<random id>``, :data:`MARKER`), readable in
  ``/proc/PID/environ`` for processes of the worker's own user (all of them when the worker is
  root). After the job's group is gone, :func:`sweep` stops every process carrying the run's
  marker, and their descendants (which may have cleared their environment), with SIGTERM and,
  after the grace period, SIGKILL. An orphan whose environment cannot be read (another user,
  a non-dumpable process) cannot be attributed to a job: it is stopped once no job of this
  worker is running (every re-parented orphan descends from some job), and at worker exit.

Why a marker and not the session, or a start-time window: a ``setsid`` escapee has a session of
its own, and with several jobs running at once a start time does not say which job a process
came from, while an environment marker is inherited by everything the job forks and execs. Its
limit: a process of the worker's own user that empties its environment and re-parents to init
(no subreaper: not Linux) escapes attribution; the cgroup has no such gap.

Reaping: re-parented orphans that exit become zombies of the worker. :func:`reap` collects them,
but never a child :mod:`subprocess` is still waiting for (``Popen.wait`` would then get
ECHILD and report exit status 0): it reaps only pids it signalled itself, and, once this
process is a subreaper (it then owns all its children: the worker starts no other
subprocesses), any zombie child that is not a running job's program.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: Environment variable marking every process of one job run.
MARKER = "BRIDGE_JOB_RUN"
_PR_SET_CHILD_SUBREAPER = 36
#: How often :func:`sweep` looks whether what it signalled is gone.
POLL_S = 0.05
#: After SIGKILL, how long to wait for escapees to vanish before giving up.
KILL_WAIT_S = 2.0
#: Rounds of finding and signalling (an escapee may fork while it is being stopped).
MAX_ROUNDS = 5

_lock = threading.RLock()
_subreaper = False
#: Pids of running jobs' programs (subprocess waits for those itself).
_leaders: set[int] = set()
#: Pids this module signalled and may reap.
_signalled: set[int] = set()


def new_marker() -> str:
    """A marker value for one job run."""
    return secrets.token_hex(12)


# --- subreaper -------------------------------------------------------------------------------
def become_subreaper() -> bool:
    """Make this process the child subreaper of everything it starts (Linux); returns whether
    it now is. Elsewhere a no-op with a debug line: orphans then go to init."""
    global _subreaper
    if not sys.platform.startswith("linux"):
        log.debug("not Linux: no child subreaper; escaped job processes re-parent to init")
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_CHILD_SUBREAPER) failed (errno %d)", ctypes.get_errno())
        return False
    with _lock:
        _subreaper = True
    return True


def is_subreaper() -> bool:
    return _subreaper


@contextlib.contextmanager
def spawning() -> Iterator[Callable[[int], None]]:
    """Hold while starting a job's program: ``register(pid)`` inside, so :func:`reap` never
    sees it as a stray zombie between its start and its registration."""
    with _lock:
        yield _leaders.add


def release_leader(pid: int) -> None:
    """The job's program has been waited for by subprocess."""
    with _lock:
        _leaders.discard(pid)


# --- finding a run's processes ----------------------------------------------------------------
@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    state: str
    #: None: the environment could not be read.
    environ: bytes | None


def list_processes(proc: Path = Path("/proc")) -> dict[int, ProcInfo]:
    """Every process in ``proc``: pid, parent, state and (when readable) environment."""
    found: dict[int, ProcInfo] = {}
    try:
        names = [name for name in os.listdir(proc) if name.isdigit()]
    except OSError:  # no procfs
        return found
    for name in names:
        try:
            with open(proc / name / "stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        try:
            with open(proc / name / "environ", "rb") as environ:
                env: bytes | None = environ.read()
        except OSError:
            env = None
        found[int(name)] = ProcInfo(int(name), int(fields[1]), fields[0].decode(), env)
    return found


def run_processes(
    marker: str, processes: Mapping[int, ProcInfo], include_unattributed: bool
) -> set[int]:
    """The live processes of the run ``marker``: those carrying it in their environment, their
    descendants, and (``include_unattributed``) this process's re-parented children whose
    environment cannot be read."""
    me = os.getpid()
    tag = f"{MARKER}={marker}".encode()
    found = {
        info.pid
        for info in processes.values()
        if info.environ is not None and tag in info.environ.split(b"\0")
    }
    if include_unattributed:
        found |= {
            info.pid
            for info in processes.values()
            if info.ppid == me and info.environ is None and info.pid not in _leaders
        }
    return _alive_with_descendants(found, processes)


def _alive_with_descendants(found: set[int], processes: Mapping[int, ProcInfo]) -> set[int]:
    """``found`` and every descendant of theirs, less this process and the dead."""
    children: dict[int, list[int]] = {}
    for info in processes.values():
        children.setdefault(info.ppid, []).append(info.pid)
    stack = list(found)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    found.discard(os.getpid())
    return {pid for pid in found if processes[pid].state not in ("Z", "X")}


def _find(marker: str, proc: Path) -> set[int]:
    """The run's live processes; with them, while no job program runs or starts (the lock
    is held across every start), this subreaper's unattributable orphans."""
    with _lock:
        include = _subreaper and not _leaders
        return run_processes(marker, list_processes(proc), include)


def sweep(marker: str, grace_s: float, *, job: str = "", proc: Path = Path("/proc")) -> int:
    """Stop every process of the run ``marker`` that is still alive: SIGTERM, ``grace_s``
    seconds, SIGKILL; reap those that are this process's children. Returns how many were
    found. When no other job is running, this subreaper's orphans that no marker attributes
    are stopped too (they came from some job, and every job is over)."""
    found = _find(marker, proc)
    if not found:
        reap()
        return 0
    log.warning(
        "job %s: %d process(es) outlived its process group (%s); stopping them",
        job,
        len(found),
        ", ".join(str(pid) for pid in sorted(found)),
    )
    total = set(found)
    for signum, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, KILL_WAIT_S)):
        for _round in range(MAX_ROUNDS):
            signal_pids(found, signum)
            until = time.monotonic() + wait_s
            while True:
                reap()
                found = _find(marker, proc)
                total |= found
                if not found or time.monotonic() >= until:
                    break
                time.sleep(POLL_S)
            if not found or signum == signal.SIGTERM:
                break
        if not found:
            break
    if found:
        log.error("job %s: processes %s survive SIGKILL; leaving them", job, sorted(found))
    reap()
    return len(total)


def unmarked_processes(processes: Mapping[int, ProcInfo]) -> set[int]:
    """This process's children that carry no run marker (so no command's or isolated
    handler's), that are no running job's program, and their descendants: what in-thread
    handlers started and left behind (a handler's own subprocess is this process's child too,
    so call this only when no in-thread handler runs)."""
    me, prefix = os.getpid(), f"{MARKER}=".encode()
    found = {
        info.pid
        for info in processes.values()
        if info.ppid == me
        and info.pid not in _leaders
        and info.environ is not None
        and not any(entry.startswith(prefix) for entry in info.environ.split(b"\0"))
    }
    return _alive_with_descendants(found, processes)


def sweep_unmarked(grace_s: float, proc: Path = Path("/proc")) -> int:
    """Stop what in-thread handlers left running (:func:`unmarked_processes`): SIGTERM,
    ``grace_s`` seconds, SIGKILL. Only a subreaper sees a handler's double-forked daemon; the
    caller makes sure no in-thread handler runs meanwhile. Returns how many were found."""
    if not _subreaper:
        return 0
    found = unmarked_processes(list_processes(proc))
    if not found:
        reap()
        return 0
    log.warning(
        "%d process(es) started by in-thread handlers outlived them (%s); stopping them",
        len(found),
        ", ".join(str(pid) for pid in sorted(found)),
    )
    total = set(found)
    for signum, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, KILL_WAIT_S)):
        signal_pids(found, signum)
        until = time.monotonic() + wait_s
        while found and time.monotonic() < until:
            time.sleep(POLL_S)
            reap()
            found = unmarked_processes(list_processes(proc)) & total
        if not found:
            break
    reap()
    return len(total)


def signal_pids(pids: Iterable[int], signum: int) -> None:
    """Send ``signum`` to each pid (gone already: fine); this module may then reap them."""
    for pid in pids:
        with _lock:
            _signalled.add(pid)
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
        except PermissionError:
            log.error("not allowed to signal process %d (CAP_KILL missing?)", pid)


def reap(proc: Path = Path("/proc")) -> int:
    """Collect zombie children that are not a running job's program: those this module
    signalled, and, in a subreaper, any. Returns how many."""
    me, reaped = os.getpid(), 0
    with _lock:
        zombies = [
            info.pid
            for info in _processes_of(me, proc)
            if info.state == "Z"
            and info.pid not in _leaders
            and (_subreaper or info.pid in _signalled)
        ]
        for pid in zombies:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    reaped += 1
            except ChildProcessError:
                pass
            _signalled.discard(pid)
        if len(_signalled) > 10_000:  # pids signalled that were never our children
            _signalled.clear()
    return reaped


def _processes_of(parent: int, proc: Path) -> list[ProcInfo]:
    children: list[ProcInfo] = []
    try:
        names = [name for name in os.listdir(proc) if name.isdigit()]
    except OSError:
        return children
    for name in names:
        try:
            with open(proc / name / "stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent:
            children.append(ProcInfo(int(name), parent, fields[0].decode(), None))
    return children


def kill_orphans() -> int:
    """SIGKILL this process's children that are not a running job's program: orphans of jobs
    that re-parented to the subreaper. Returns how many."""
    me = os.getpid()
    with _lock:
        orphans = [
            info.pid
            for info in _processes_of(me, Path("/proc"))
            if info.state not in ("Z", "X") and info.pid not in _leaders
        ]
    signal_pids(orphans, signal.SIGKILL)
    if orphans:
        log.warning("stopped %d orphaned job process(es) at exit", len(orphans))
    return len(orphans)
