"""Run one program for a job, in its own session, and make sure nothing of it outlives the job.

Why a session of its own (``start_new_session=True``): Ctrl-C in the worker's terminal sends
SIGINT to the terminal's foreground process group. The worker treats it as "drain", but a job in
the same group would die of it mid-work; in its own session it never sees it. It also makes the
job's process group (the program, its children and grandchildren, including ``cmd &``
background ones) one target for :func:`os.killpg`.

How a job is stopped (cancellation, its deadline, or runaway output): SIGTERM to the whole group,
``grace_s`` seconds for it to clean up, then SIGKILL to the group. The same happens to members
that are still alive when the program itself exits normally (a forgotten ``cmd &``): a job owns
nothing after it ends. A process that leaves the group on purpose (``setsid``, a double-forking
daemon) escapes the group but not the job: every process of one run carries a marker in its
environment and, where the worker has one, sits in the run's own cgroup; once the group is gone,
:mod:`consumers.reaper` stops what is left of the run (the job's cgroup, or the processes
carrying its marker and their descendants: SIGTERM, the same grace, SIGKILL) and reaps it. The
supervisor stops reading pipes such processes hold open shortly after the program exits.

With ``run_as`` (:class:`~consumers.sandbox.RunAs`) the program starts as that user, with its
groups, in its home directory.

The supervisor reads stdout and stderr and writes stdin concurrently through one selector, so a
program producing lots of output cannot deadlock on a full pipe; it wakes at least every
:data:`TICK_S` seconds to notice cancellation (and at once on exit where ``pidfd_open`` exists),
so it never busy-waits. Only ``max_stdout_bytes`` of stdout are kept: more stops the job
(``stopped="output-too-large"``) instead of growing memory without bound. Only a tail of stderr
is kept.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from consumers import containment, reaper
from consumers.context import CancelReason, JobContext
from consumers.sandbox import RunAs

log = logging.getLogger(__name__)

#: Default seconds between SIGTERM and SIGKILL.
DEFAULT_GRACE_S = 10.0
#: Longest the supervisor sleeps between looks at the job's cancellation flag.
TICK_S = 0.1
#: After the group is gone, how long to keep reading pipes a process outside it may hold open.
DRAIN_S = 1.0
#: After SIGKILL, how long to wait for the group to vanish before giving up on it (a member in
#: uninterruptible sleep, or one that changed user and cannot be signalled).
KILL_WAIT_S = 2.0
DEFAULT_STDERR_TAIL_BYTES = 65_536
READ_CHUNK = 65_536
#: Writes to stdin are kept at or below the atomic pipe size so a non-blocking write never
#: blocks and rarely comes back partial.
WRITE_CHUNK = 4_096

#: Why the supervisor signalled the group before the program exited by itself.
StopCause = CancelReason | Literal["output-too-large"]


@dataclass(frozen=True)
class ProcessResult:
    """How a supervised program ended.

    ``returncode`` follows :mod:`subprocess`: negative means killed by that signal.
    ``stdout`` is empty when ``stdout_overflow`` is set (it was not kept).
    """

    returncode: int
    stdout: bytes
    stderr_tail: bytes
    duration_s: float
    stdout_overflow: bool = False
    stopped: StopCause | None = None
    #: SIGKILL was needed: something in the group ignored SIGTERM for ``grace_s``.
    escalated: bool = False
    #: Members of the group were still running when the program exited and were stopped.
    leftovers: bool = False


def run_process(
    argv: Sequence[str],
    *,
    context: JobContext,
    stdin: bytes = b"",
    env: Mapping[str, str] | None = None,
    grace_s: float = DEFAULT_GRACE_S,
    max_stdout_bytes: int,
    stderr_tail_bytes: int = DEFAULT_STDERR_TAIL_BYTES,
    cwd: str | None = None,
    on_stop: Callable[[StopCause], None] | None = None,
    run_as: RunAs | None = None,
) -> ProcessResult:
    """Run ``argv`` in a new session, feed it ``stdin``, and supervise it until its whole process
    group is gone (see the module docstring), then stop whatever of the run escaped the group.
    Watches ``context``: cancellation or its deadline (which it turns into
    ``context.cancel("timeout")``) stops the group within about :data:`TICK_S` seconds.
    ``on_stop(cause)`` runs just before that SIGTERM (to tell the program why, say).
    ``run_as``: the user to run as (``cwd`` defaults to its home). Raises :class:`OSError`
    when the program cannot be started."""
    if grace_s < 0:
        raise ValueError(f"grace_s must not be negative, got {grace_s}")
    marker = reaper.new_marker()
    environment = {**(os.environ if env is None else env), reaper.MARKER: marker}
    user = group = extra_groups = None
    if run_as is not None:
        user, group, extra_groups = run_as.uid, run_as.gid, list(run_as.groups)
        cwd = cwd or run_as.workdir
    with reaper.spawning() as register:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
            user=user,
            group=group,
            extra_groups=extra_groups,
        )
        register(proc.pid)
    tree = containment.cgroups()
    if tree is not None:
        tree.add(marker, proc.pid)
    supervisor: _Supervisor | None = None
    with _live_lock:
        _live_groups[proc.pid] = marker

    def end_run() -> None:
        reaper.release_leader(proc.pid)
        _end_run(proc.pid, marker, grace_s, context.job.job_id)

    try:
        supervisor = _Supervisor(
            proc, context, stdin, grace_s, max_stdout_bytes, stderr_tail_bytes, on_stop, end_run
        )
        return supervisor.run()
    except BaseException:
        # A bug here, or an exception delivered to this thread: leave nothing running behind.
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        end_run()  # a no-op when the supervisor got that far
        if supervisor is not None:
            supervisor.close()
        _close_streams(proc)


def _end_run(pid: int, marker: str, grace_s: float, job: str) -> None:
    """Stop what the run left behind outside its process group: its cgroup, or (also as a
    net under the cgroup) the processes that carry its marker. Once per run."""
    with _live_lock:
        if pid not in _live_groups:
            return
    try:
        tree = containment.cgroups()
        if tree is not None and tree.kill(marker, grace_s):
            log.warning("job %s: processes were left in its cgroup; killed them", job)
        reaper.sweep(marker, grace_s, job=job)
    except Exception:
        log.exception("job %s: stopping its leftover processes failed", job)
    finally:
        with _live_lock:
            _live_groups.pop(pid, None)


#: Process groups of jobs running now (leader pid -> the run's marker), so a worker leaving at
#: once can kill them all.
_live_groups: dict[int, str] = {}
_live_lock = threading.Lock()


def kill_all_groups(signum: int = signal.SIGKILL) -> int:
    """Signal every running job's process group (and, with SIGKILL, what escaped it); returns
    how many jobs. A worker that exits without waiting (a second stop) calls this last: jobs
    run in their own sessions, so nothing else would stop them."""
    with _live_lock:
        runs = dict(_live_groups)
    for pgid in runs:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signum)
    if signum == signal.SIGKILL:
        with contextlib.suppress(Exception):
            containment.kill_now(runs.values())
    return len(runs)


class _Supervisor:
    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        context: JobContext,
        stdin: bytes,
        grace_s: float,
        max_stdout_bytes: int,
        stderr_tail_bytes: int,
        on_stop: Callable[[StopCause], None] | None,
        on_group_gone: Callable[[], None] | None = None,
    ) -> None:
        assert proc.stdin and proc.stdout and proc.stderr
        self.proc, self.context, self.grace_s, self.on_stop = proc, context, grace_s, on_stop
        self.on_group_gone = on_group_gone
        self.pgid = proc.pid  # a new session's leader leads its own process group
        self.max_stdout, self.stderr_keep = max_stdout_bytes, stderr_tail_bytes
        self.stdout, self.stderr = bytearray(), bytearray()
        self.overflow = False
        self.stopped: StopCause | None = None
        self.term_at: float | None = None
        self.kill_at: float | None = None
        self.leftovers = False
        self.returncode: int | None = None
        self.pending = memoryview(stdin)
        self.selector = selectors.DefaultSelector()
        self.stdin_fd = proc.stdin.fileno()
        self.stdout_fd, self.stderr_fd = proc.stdout.fileno(), proc.stderr.fileno()
        self.selector.register(self.stdout_fd, selectors.EVENT_READ)
        self.selector.register(self.stderr_fd, selectors.EVENT_READ)
        os.set_blocking(self.stdin_fd, False)
        if self.pending:
            self.selector.register(self.stdin_fd, selectors.EVENT_WRITE)
        else:
            self._close_stdin()
        self.pidfd = self._open_pidfd()

    # --- main loop -----------------------------------------------------------------------
    def run(self) -> ProcessResult:
        started = time.monotonic()
        while True:
            if self.returncode is None:
                self._check_stop()
                self._check_exit()
            self._escalate()
            if self.returncode is not None and (not self._group_alive() or self._gave_up_killing()):
                break
            self._pump(self._sleep_for())
        if self.on_group_gone is not None:
            self.on_group_gone()  # escapees may hold the pipes: stop them before draining
        self._drain()
        assert self.returncode is not None
        return ProcessResult(
            returncode=self.returncode,
            stdout=b"" if self.overflow else bytes(self.stdout),
            stderr_tail=bytes(self.stderr[-self.stderr_keep :]),
            duration_s=time.monotonic() - started,
            stdout_overflow=self.overflow,
            stopped=self.stopped,
            escalated=self.kill_at is not None,
            leftovers=self.leftovers,
        )

    def _check_stop(self) -> None:
        if self.stopped is not None:
            return
        cause: StopCause
        if self.context.check_deadline():
            cause = self.context.reason or "shutdown"
        elif self.overflow:
            cause = "output-too-large"
        else:
            return
        self.stopped = cause
        log.info("job %s: stopping (%s): SIGTERM to its process group", self._job(), cause)
        if self.on_stop is not None:
            try:
                self.on_stop(cause)
            except Exception:
                log.exception("job %s: on_stop hook failed; stopping anyway", self._job())
        self._terminate()

    def _check_exit(self) -> None:
        if not self._leader_exited():
            return
        # The exited leader is a zombie until reaped, which pins the group id: signal the rest of
        # the group before reaping so the signal cannot reach a recycled id.
        if self.term_at is None and _has_running_member(self.pgid):
            self.leftovers = True
            log.warning(
                "job %s: its program exited but left processes in its group; stopping them",
                self._job(),
            )
            self._terminate()
        self.returncode = self.proc.wait()
        self._unregister_pidfd()
        if self.pending:
            self._close_stdin()

    def _escalate(self) -> None:
        if self.term_at is None or self.kill_at is not None:
            return
        if time.monotonic() - self.term_at >= self.grace_s:
            log.warning(
                "job %s: process group %d still running %.1f s after SIGTERM: SIGKILL",
                self._job(),
                self.pgid,
                self.grace_s,
            )
            self.signal_group(signal.SIGKILL)
            self.kill_at = time.monotonic()

    def _gave_up_killing(self) -> bool:
        if self.kill_at is None or time.monotonic() - self.kill_at < KILL_WAIT_S:
            return False
        log.error("job %s: process group %d survives SIGKILL; leaving it", self._job(), self.pgid)
        return True

    def _sleep_for(self) -> float:
        waits = [TICK_S]
        remaining = self.context.remaining()
        if remaining is not None and self.stopped is None:
            waits.append(remaining)
        if self.term_at is not None and self.kill_at is None:
            waits.append(self.term_at + self.grace_s - time.monotonic())
        return max(0.0, min(waits))

    # --- I/O -----------------------------------------------------------------------------
    def _pump(self, timeout: float) -> None:
        if not self.selector.get_map():
            time.sleep(timeout)  # nothing to watch: the selector would return at once
            return
        for key, _events in self.selector.select(timeout):
            if key.fd == self.stdin_fd:
                self._write_stdin()
            elif key.fd == self.pidfd:
                self._unregister_pidfd()  # readable once, on exit; the loop reaps the leader
            else:
                self._read(key.fd)

    def _write_stdin(self) -> None:
        try:
            written = os.write(self.stdin_fd, self.pending[:WRITE_CHUNK])
        except BlockingIOError:
            return
        except OSError:  # the program closed its stdin (EPIPE): the rest is not wanted
            self._close_stdin()
            return
        self.pending = self.pending[written:]
        if not self.pending:
            self._close_stdin()

    def _read(self, fd: int) -> None:
        chunk = os.read(fd, READ_CHUNK)
        if not chunk:
            self.selector.unregister(fd)
            return
        if fd == self.stderr_fd:
            self.stderr += chunk
            if len(self.stderr) > 2 * self.stderr_keep:
                del self.stderr[: -self.stderr_keep]
        elif not self.overflow:
            if len(self.stdout) + len(chunk) > self.max_stdout:
                self.overflow = True
                self.stdout = bytearray()  # the output is lost anyway; free it now
            else:
                self.stdout += chunk

    def _drain(self) -> None:
        until = time.monotonic() + DRAIN_S
        self._close_stdin()
        self._unregister_pidfd()
        while self.selector.get_map() and time.monotonic() < until:
            self._pump(min(TICK_S, max(0.0, until - time.monotonic())))

    def _close_stdin(self) -> None:
        self.pending = memoryview(b"")
        if self.stdin_fd in self.selector.get_map():
            self.selector.unregister(self.stdin_fd)
        stdin = self.proc.stdin
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(OSError):
                stdin.close()

    def close(self) -> None:
        self.selector.close()
        self._close_pidfd()

    # --- processes -----------------------------------------------------------------------
    def _terminate(self) -> None:
        self.signal_group(signal.SIGTERM)
        self.term_at = time.monotonic()

    def signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.pgid, signum)
        except ProcessLookupError:
            pass  # already gone
        except PermissionError:
            log.error("job %s: not allowed to signal process group %d", self._job(), self.pgid)

    def _group_alive(self) -> bool:
        """Whether any member of the group is still running. A killed orphan stays a zombie
        (and keeps the group "signallable") until init reaps it, which some container inits
        do late or never: zombies do not count."""
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return _has_running_member(self.pgid)

    def _leader_exited(self) -> bool:
        waitid = getattr(os, "waitid", None)
        if waitid is None:  # pragma: no cover - not on Linux
            return self.proc.poll() is not None
        try:
            # WNOWAIT: look without reaping, so the zombie keeps the group id reserved.
            return waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def _open_pidfd(self) -> int | None:
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is None:  # pragma: no cover - not on Linux
            return None
        try:
            fd: int = pidfd_open(self.proc.pid)
        except OSError:  # pragma: no cover - kernel older than 5.3: TICK_S polling only
            return None
        self.selector.register(fd, selectors.EVENT_READ)
        return fd

    def _unregister_pidfd(self) -> None:
        if self.pidfd is not None and self.pidfd in self.selector.get_map():
            self.selector.unregister(self.pidfd)

    def _close_pidfd(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    def _job(self) -> str:
        return self.context.job.job_id


def _close_streams(proc: subprocess.Popen[bytes]) -> None:
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _has_running_member(pgid: int) -> bool:
    """Scan ``/proc`` for a member of ``pgid`` that is not a zombie (True where there is no
    ``/proc`` to scan)."""
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:  # pragma: no cover - no procfs
        return True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False
