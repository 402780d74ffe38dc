"""Nothing a job starts outlives it: escaped daemons are found, stopped and reaped.

The subreaper path runs for real in a child Python process (a subreaper owns every orphan of
its descendants, which the test process must not become). The cgroup path runs against a fake
cgroup directory, and for real where this host lets root create cgroups.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers import process, reaper
from consumers.command import CommandRunner
from consumers.containment import CgroupTree
from consumers.context import JobContext
from consumers.reaper import MARKER, ProcInfo
from tests.support.messages import make_job
from tests.support.polling import eventually

ROOT = Path(__file__).resolve().parents[2]

# Runs one job in a subreaper worker process and reports what is left of it.
SCENARIO = textwrap.dedent(
    """
    import json, os, sys, threading, time
    from consumers import reaper
    from consumers.context import JobContext
    from consumers.command import CommandRunner
    from tests.support.messages import make_job

    command, cancel_after = sys.argv[1], float(sys.argv[2])
    assert reaper.become_subreaper()
    job = make_job()
    context = JobContext(job)
    if cancel_after >= 0:
        threading.Timer(cancel_after, context.cancel, args=("task-closed",)).start()
    started = time.monotonic()
    outcome = CommandRunner(command, grace_s=1).run(job, context)
    elapsed = time.monotonic() - started
    children = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, ValueError):
            continue
        if int(fields[1]) == os.getpid():
            children.append((int(pid), fields[0].decode()))
    print(json.dumps({
        "succeeded": outcome.succeeded, "output": outcome.output,
        "interrupted_by": outcome.interrupted_by, "elapsed": elapsed, "children": children,
    }))
    """
)


def run_scenario(command: str, cancel_after: float = -1) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", SCENARIO, command, str(cancel_after)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def alive(tag: str) -> list[int]:
    """Pids of running (not zombie) processes whose first two arguments are ``tag``."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if b" ".join(argv[:2]) == tag.encode() and state not in (b"Z", b"X"):
            found.append(int(pid))
    return found


@pytest.fixture
def tag() -> Iterator[str]:
    """A unique ``sleep`` duration, so the test finds its own daemons only."""
    value = f"300.{os.getpid()}{int(time.monotonic() * 1000) % 100000}"
    yield value
    for pid in alive(f"sleep {value}"):  # never leave one behind, pass or fail
        os.kill(pid, 9)


def test_a_setsid_daemon_does_not_outlive_its_finished_job(tag: str) -> None:
    # Two ways out of the process group: setsid, and a double fork into a new session.
    report = run_scenario(
        f"setsid sleep {tag} & (setsid sh -c 'sleep {tag}' &) ; sleep 0.3; echo '{{\"done\": 1}}'"
    )
    assert report["succeeded"] and report["output"] == {"done": 1}
    assert alive(f"sleep {tag}") == []
    assert report["children"] == []  # killed and reaped: no zombies left with the worker


def test_a_setsid_daemon_does_not_outlive_its_cancelled_job(tag: str) -> None:
    report = run_scenario(f"setsid sleep {tag} & sleep {tag}", cancel_after=0.5)
    assert report["interrupted_by"] == "task-closed"
    assert alive(f"sleep {tag}") == []
    assert report["children"] == []
    assert float(str(report["elapsed"])) < 10


def test_the_marker_finds_escapees_without_a_subreaper(tag: str) -> None:
    """In this (non-subreaper) process the escapee re-parents to init: its marker still
    gives it away."""
    command = f"setsid sleep {tag} & sleep 0.3; echo started"  # out of the group before the end
    outcome = CommandRunner(command, grace_s=1).run(make_job())
    assert outcome.succeeded and outcome.output == "started"
    assert alive(f"sleep {tag}") == []


def test_a_second_stop_kills_escapees_of_running_jobs(tag: str) -> None:
    context = JobContext(make_job())
    runner = CommandRunner(f"setsid sleep {tag} & sleep {tag}", grace_s=5)
    thread = threading.Thread(target=runner.run, args=(make_job(), context), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while len(alive(f"sleep {tag}")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(alive(f"sleep {tag}")) == 2
    assert process.kill_all_groups() == 1
    time.sleep(0.3)
    assert alive(f"sleep {tag}") == []
    thread.join(10)


# --- attribution -------------------------------------------------------------------------------
def info(pid: int, ppid: int, marker: str | None = None, state: str = "S") -> ProcInfo:
    environ = None if marker is None else f"PATH=/bin\0{MARKER}={marker}\0".encode()
    return ProcInfo(pid, ppid, state, environ)


def test_a_run_is_its_marked_processes_and_their_descendants() -> None:
    me = os.getpid()
    processes = {
        p.pid: p
        for p in [
            info(1, 0, "other"),
            info(100, me, "run-a"),  # escaped, re-parented to the worker
            info(101, 100),  # its child, environment cleared or unreadable
            info(102, 101, "x"),  # a grandchild whose environment says otherwise
            info(103, 1, "run-a"),  # re-parented to init (no subreaper)
            info(104, me, "run-a", state="Z"),  # dead already
            info(200, me, "run-b"),  # another job's
            info(300, me),  # unattributable: another user's, or non-dumpable
        ]
    }
    assert reaper.run_processes("run-a", processes, include_unattributed=False) == {
        100,
        101,
        102,
        103,
    }
    assert 300 in reaper.run_processes("run-a", processes, include_unattributed=True)
    assert reaper.run_processes("run-c", processes, include_unattributed=False) == set()


def test_what_in_thread_handlers_left_is_the_unmarked_children_and_their_descendants() -> None:
    me = os.getpid()
    plain = ProcInfo(0, 0, "S", b"PATH=/bin\0HOME=/root\0")
    processes = {
        p.pid: p
        for p in [
            ProcInfo(100, me, "S", plain.environ),  # a handler's double-forked daemon
            info(101, 100),  # its child, environment unreadable
            info(200, me, "run-b"),  # a command job's escapee: its own sweep's
            info(300, me),  # unreadable: another user's, left to the run's own sweep
            ProcInfo(400, me, "Z", plain.environ),  # dead already
            ProcInfo(500, 1, "S", plain.environ),  # not ours
        ]
    }
    assert reaper.unmarked_processes(processes) == {100, 101}


def test_reap_never_takes_a_status_subprocess_waits_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reaper, "_subreaper", True)  # the worker's mode: reap any stray zombie
    with reaper.spawning() as register:
        proc = subprocess.Popen(["/bin/sh", "-c", "exit 3"])
        register(proc.pid)
    try:
        wait_for_zombie(proc.pid)
        assert reaper.reap() == 0
    finally:
        reaper.release_leader(proc.pid)
    assert proc.wait(5) == 3
    # An unregistered zombie child is a stray, and the worker's to reap.
    stray = subprocess.Popen(["/bin/sh", "-c", "exit 4"])
    wait_for_zombie(stray.pid)
    reaper.reap()
    assert not Path(f"/proc/{stray.pid}").exists()


def wait_for_zombie(pid: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z":
            return
        time.sleep(0.02)
    raise AssertionError(f"{pid} never exited")


# --- cgroups -----------------------------------------------------------------------------------
def fake_cgroup(tmp_path: Path, own: str = "/system.slice/callback-bridge-worker.service") -> Path:
    root = tmp_path / "sys-fs-cgroup" / own.lstrip("/")
    root.mkdir(parents=True)
    for name in ("cgroup.kill", "cgroup.procs", "cgroup.events"):
        (root / name).write_text("")
    (tmp_path / "cgroup").write_text(f"0::{own}\n")
    return root


def detect(tmp_path: Path, environ: dict[str, str]) -> CgroupTree | None:
    return CgroupTree.detect(environ, tmp_path / "cgroup", tmp_path / "sys-fs-cgroup")


def test_job_cgroups_are_used_only_under_systemd_with_a_writable_v2_tree(tmp_path: Path) -> None:
    root = fake_cgroup(tmp_path)
    systemd = {"INVOCATION_ID": "abc"}
    assert detect(tmp_path, {}) is None  # not started by systemd
    tree = detect(tmp_path, systemd)
    assert tree is not None and tree.root == root
    (tmp_path / "cgroup").write_text("1:name=systemd:/x\n0::/system.slice/x.service\n")
    assert detect(tmp_path, systemd) is None  # hybrid hierarchy
    (tmp_path / "cgroup").write_text("0::/system.slice/callback-bridge-worker.service/worker\n")
    tree = detect(tmp_path, systemd)  # restarted in place: the leaf's parent
    assert tree is not None and tree.root == root
    (root / "cgroup.kill").unlink()
    assert detect(tmp_path, systemd) is None  # kernel older than 5.14


def test_a_job_cgroup_is_created_joined_stopped_and_removed(tmp_path: Path) -> None:
    root = fake_cgroup(tmp_path)
    tree = CgroupTree(root)
    tree.enter(pid=4242)
    assert (root / "worker" / "cgroup.procs").read_text() == "4242"
    with reaper.spawning() as register:  # a process subprocess waits for is never reaped here
        member = subprocess.Popen(["sleep", "30"])
        register(member.pid)
    try:
        assert tree.add("run1", member.pid)
        job = root / "job-run1"
        assert (job / "cgroup.procs").read_text() == str(member.pid)
        (job / "cgroup.events").write_text("populated 1\nfrozen 0\n")  # it never empties
        (job / "cgroup.kill").write_text("")
        assert tree.kill("run1", grace_s=0.2, wait_s=0)
        assert member.wait(5) == -15  # SIGTERM first, to what the cgroup lists
        assert (job / "cgroup.kill").read_text() == "1"  # then cgroup.kill
    finally:
        member.kill()
        member.wait()
        reaper.release_leader(member.pid)
    assert not tree.kill("never-created")


@pytest.fixture
def real_cgroup() -> Iterator[Path]:
    base = Path("/sys/fs/cgroup/unified")
    if not base.is_dir():
        base = Path("/sys/fs/cgroup")
    if os.geteuid() != 0 or not (base / "cgroup.procs").exists():
        pytest.skip("needs root and a cgroup v2 hierarchy")
    root = base / f"callback-bridge-test-{os.getpid()}"
    try:
        root.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot create a cgroup here: {exc}")
    if not (root / "cgroup.kill").exists():
        root.rmdir()
        pytest.skip("no cgroup.kill (Linux < 5.14)")
    yield root
    for cgroup in [*(child for child in root.iterdir() if child.is_dir()), root]:
        (cgroup / "cgroup.kill").write_text("1")  # whatever a failed test left running
        deadline = time.monotonic() + 5
        while "populated 1" in (cgroup / "cgroup.events").read_text():
            assert time.monotonic() < deadline, f"{cgroup} does not empty"
            time.sleep(0.05)
        cgroup.rmdir()


def test_cgroup_kill_stops_an_escapee_for_real(real_cgroup: Path, tag: str) -> None:
    tree = CgroupTree(real_cgroup)
    proc = subprocess.Popen(
        ["/bin/sh", "-c", f"read go; setsid sleep {tag} >/dev/null & echo started"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert tree.add("run1", proc.pid)  # before it forks: all it starts is in the cgroup
    assert proc.communicate(b"go\n", timeout=10)[0] == b"started\n"
    # The shell says "started" once it has forked, maybe before the child has exec'd sleep.
    assert eventually(lambda: len(alive(f"sleep {tag}")) == 1, timeout_s=5)
    assert tree.populated("run1")
    assert tree.kill("run1", grace_s=1)
    assert alive(f"sleep {tag}") == []
    assert not (real_cgroup / "job-run1").exists()


# --- the worker's side -------------------------------------------------------------------------
CONTAINMENT = textwrap.dedent(
    """
    import json, os, subprocess, sys, time
    from consumers import containment, reaper
    contained = containment.Containment(detect_cgroups=lambda: None)
    contained.start()
    # A process no job claims: started outside run_process, orphaned into this subreaper.
    subprocess.run(["/bin/sh", "-c", f"setsid sleep {sys.argv[1]} >/dev/null 2>&1 &"], check=True)
    time.sleep(0.2)
    before = [p.pid for p in reaper._processes_of(os.getpid(), reaper.Path("/proc"))]
    contained.stop()
    time.sleep(0.2)
    reaper.reap()
    after = [p.pid for p in reaper._processes_of(os.getpid(), reaper.Path("/proc"))]
    print(json.dumps({"subreaper": reaper.is_subreaper(), "before": before, "after": after}))
    """
)


def test_the_worker_stops_unclaimed_orphans_when_it_leaves(tag: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CONTAINMENT, tag],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["subreaper"] and len(report["before"]) == 1  # the orphan came to the worker
    assert report["after"] == [] and alive(f"sleep {tag}") == []
