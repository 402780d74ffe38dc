"""Evidence read from the run itself: its log files and its listening sockets.

* **tokens**: no log line may contain a full task token, issued (UUIDs on the embedded stack,
  collected from the job messages and the histories) or fuzzed;
* **bugs**: log messages that mean code met an input it did not expect (:data:`BUG_MESSAGES`);
* **rejections**: a poison message that left no DLQ copy must be named in a log line that says
  why it was turned away;
* **loopback**: every listening TCP socket of the campaign and its consumers is on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_POISON_TOKEN = re.compile(r"chaos[A-Za-z0-9+/=]{30,}")
POISON_MARKER = re.compile(r"chaos-poison-\d+")
#: Log messages that mean code met an input or answer it did not expect (a bug), as opposed
#: to a fault it handled (a failed receive during an outage is logged and retried: not here).
BUG_MESSAGES = ("result not handled", "the runner failed", "concluding failed",
                "supervisor hook failed", "instance watcher callback failed",
                "shutdown hook failed")  # fmt: skip
#: Words in a log line that name why a poison job or result was turned away.
REJECTION_WORDS = ("closed", "stale", "cancelled", "malformed", "Invalid", "TaskTimedOut",
                   "TaskDoesNotExist")  # fmt: skip


def listeners_off_loopback(pids: list[int]) -> list[str]:
    """Listening TCP sockets of this process and ``pids`` bound to anything but loopback
    (Linux /proc; an empty list where /proc is not there)."""
    inodes: dict[str, int] = {}
    for pid in ["self", *map(str, pids)]:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes[target[8:-1]] = int(pid) if pid != "self" else 0
    bad = []
    for table, loopback in (("tcp", {"0100007F"}), ("tcp6", {"00000000000000000000000001000000"})):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            address, state, inode = cols[1], cols[3], cols[9]
            host, port = address.split(":")
            if state == "0A" and inode in inodes and host not in loopback:
                bad.append(f"pid {inodes[inode] or 'campaign'} listens on {host}:{int(port, 16)}")
    return bad


def _logs(work_dir: Path) -> list[Path]:
    return sorted(p for p in work_dir.glob("*.log"))


def token_leaks(work_dir: Path, tokens: set[str], poison_tokens: set[str]) -> list[str]:
    """Log lines (file:line) that contain a full task token, issued or fuzzed."""
    leaks = []
    for path in _logs(work_dir):
        with path.open(errors="replace") as f:
            for n, line in enumerate(f, 1):
                if any(m in tokens for m in _UUID.findall(line)) or any(
                    t in candidate
                    for candidate in _POISON_TOKEN.findall(line)
                    for t in poison_tokens
                ):
                    leaks.append(f"{path.name}:{n}")
    return leaks


def bug_lines(work_dir: Path) -> list[str]:
    """file:line of log lines carrying one of :data:`BUG_MESSAGES`."""
    found = []
    for path in _logs(work_dir):
        with path.open(errors="replace") as f:
            for n, line in enumerate(f, 1):
                if any(m in line for m in BUG_MESSAGES):
                    found.append(f"{path.name}:{n}")
    return found


def rejected_markers(work_dir: Path) -> set[str]:
    """Poison markers named in a log line that also says why it was turned away."""
    found: set[str] = set()
    for path in _logs(work_dir):
        with path.open(errors="replace") as f:
            for line in f:
                if "chaos-poison-" in line and any(w in line for w in REJECTION_WORDS):
                    found.update(POISON_MARKER.findall(line))
    return found
