"""Evidence read from the run itself: its log files and its listening sockets.

* **tokens**: no log line may contain a task token, issued (real-length base64 tokens, see
  :mod:`bridge.chaos.tokens`, collected from the job messages and the histories) or fuzzed, in
  full or any piece of one of :data:`LEAK_CHARS` characters or more (a line cut short still
  leaks what it shows; a mask shows 6);
* **daemons**: no process a ``daemon`` job started may outlive its job;
* **bugs**: log messages that mean code met an input it did not expect (:data:`BUG_MESSAGES`);
* **rejections**: a poison message that left no DLQ copy must be named in a log line that says
  why it was turned away;
* **loopback**: every listening TCP socket of the campaign and its consumers is on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bridge.chaos.work import DAEMON_MARKER

#: A run of this many characters of a token in a log line is a leak (a mask shows 6).
LEAK_CHARS = 32
#: Tokens are indexed by pieces of this length at every multiple of it: any run of
#: ``LEAK_CHARS`` (>= 2 * _PIECE - 1) characters of a token contains one whole piece.
_PIECE = 16
#: Runs of characters a token may consist of (base64, URL-safe base64, UUIDs).
_RUN = re.compile(rf"[A-Za-z0-9+/=_-]{{{LEAK_CHARS},}}")
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


class TokenIndex:
    """Finds pieces of known tokens in text, in time linear in the text.

    Every token is cut into ``_PIECE``-character pieces at multiples of ``_PIECE``; a run of
    ``LEAK_CHARS`` characters of a token holds at least one of them whole. A hit on a piece is
    then extended both ways, character by character, against that token: a leak is a match of
    ``LEAK_CHARS`` or more."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self._pieces: dict[str, list[tuple[str, int]]] = {}
        for token in set(tokens):
            if len(token) < LEAK_CHARS and len(token) < _PIECE:
                continue
            for start in range(0, len(token) - _PIECE + 1, _PIECE):
                self._pieces.setdefault(token[start : start + _PIECE], []).append((token, start))

    def __len__(self) -> int:
        return len(self._pieces)

    def longest(self, text: str) -> int:
        """The longest run of ``text`` that is part of one token (0: none of a piece's size)."""
        best = 0
        for run in _RUN.finditer(text):
            chunk = run.group()
            for i in range(len(chunk) - _PIECE + 1):
                for token, start in self._pieces.get(chunk[i : i + _PIECE], ()):
                    best = max(best, _extend(chunk, i, token, start))
        return best

    def leaks(self, line: str) -> bool:
        """``line`` shows ``LEAK_CHARS`` characters of a token (as is, URL-decoded, or with
        JSON's escaped slashes)."""
        forms = {line, line.replace("\\/", "/")}
        if "%" in line:
            forms.add(urllib.parse.unquote(line))
        return any(self.longest(form) >= LEAK_CHARS for form in forms)


def _extend(chunk: str, at: int, token: str, start: int) -> int:
    """Length of the common run of ``chunk`` and ``token`` through chunk[at] == token[start]."""
    left = 0
    while at - left > 0 and start - left > 0 and chunk[at - left - 1] == token[start - left - 1]:
        left += 1
    right = _PIECE
    while at + right < len(chunk) and start + right < len(token):
        if chunk[at + right] != token[start + right]:
            break
        right += 1
    return left + right


def token_leaks(work_dir: Path, tokens: set[str], poison_tokens: set[str]) -> list[str]:
    """Log lines (file:line) that show a task token, issued or fuzzed, in full or a piece of
    :data:`LEAK_CHARS` characters or more."""
    index = TokenIndex(tokens | poison_tokens)
    leaks = []
    for path in _logs(work_dir):
        with path.open(errors="replace") as f:
            for n, line in enumerate(f, 1):
                if index.leaks(line):
                    leaks.append(f"{path.name}:{n}")
    return leaks


@dataclass(frozen=True)
class Daemon:
    """A live process started by a ``daemon`` job (its command line names the job)."""

    pid: int
    job_id: str
    ppid: int


def live_daemons(job_prefixes: Iterable[str]) -> list[Daemon]:
    """Processes whose command line carries :data:`DAEMON_MARKER` and a job id starting with
    one of ``job_prefixes`` (this campaign's execution names), from /proc."""
    prefixes = tuple(job_prefixes)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv]
        if DAEMON_MARKER not in words:
            continue
        at = words.index(DAEMON_MARKER)
        job_id = words[at + 1] if at + 1 < len(words) else ""
        if prefixes and not job_id.startswith(prefixes):
            continue
        state_and_ppid = stat.rsplit(")", 1)[-1].split()
        if state_and_ppid and state_and_ppid[0] == "Z":
            continue  # a zombie: already dead, waiting for its parent
        found.append(Daemon(int(entry.name), job_id, int(state_and_ppid[1])))
    return found


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
