"""Results the worker could not send, kept on local disk until they can be (the result spool).

When the results queue cannot take a result (deleted, access denied, an outage that outlasts
the sender's retries), the result is not dropped: :class:`Spool` writes it to one file per job
message under the worker's state directory, and the sender (:mod:`consumers.results`) retries
it until the queue is back. The file survives a restart of the worker on the same host; a new
worker loads it at start and sends it without running the job again.

A file is written whole or not at all: to a temporary file in the same directory, fsync'd,
renamed over its final name, then the directory is fsync'd, so a power cut leaves either the
old state or the new one. The directory is created 0700 and the files 0600: a result carries
its task token, a bearer credential (logs show only its mask).

Each file is a JSON object (:data:`FORMAT_VERSION`): the job message's id and latest receipt
handle, when it was spooled, whether the result already went out (``sent``: only the job
message is left to delete when it comes back), and the result message's body exactly as it
will be sent. Anything read back is hostile until checked: a file that is truncated, not strict
JSON, too deep, too large, or whose body is not a valid result is moved aside into
:data:`REJECTED_DIR` with one log line; a file that is not ours (another name, a directory, a
symbolic link) is reported and left alone. Neither stops the worker.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge import strict_json
from bridge.contract import ContractError, mask_token, parse_result

log = logging.getLogger(__name__)

#: ``--state-dir``'s default outside systemd (systemd's ``StateDirectory=`` sets
#: ``$STATE_DIRECTORY``, which comes first).
DEFAULT_STATE_DIR = "~/.local/state/callback-bridge"
#: The spool's directory inside the state directory: one subdirectory per pair of queues
#: (:func:`scope`), in it one per worker process (``worker-0``, ``worker-1``, ...), each
#: claimed with a lock while its worker runs.
SPOOL_DIR = "results-spool"
#: The most workers one state directory serves at once (one per host under systemd; the demo
#: and the chaos campaign start several on one machine).
MAX_WORKERS_PER_STATE_DIR = 64
LOCK_FILE = ".lock"
#: Where files that cannot be read are moved, inside the spool directory.
REJECTED_DIR = "rejected"
FORMAT_VERSION = 1
SUFFIX = ".json"
#: A spool file is its envelope plus one result body: at most the results queue's
#: MaximumMessageSize (:data:`~bridge.contract.MAX_MESSAGE_BYTES` as Terraform sets it, 1 MiB on
#: the largest queues), written as ASCII JSON: escaping makes each UTF-8 byte at most 6 bytes.
#: Anything larger is not ours.
MAX_FILE_BYTES = 6 * 1_048_576 + 4096
#: The envelope is one flat object.
_ENVELOPE_DEPTH = 1
#: Job message ids used as file names as they are (SQS's are UUIDs); others are hashed.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_TEMP_PREFIX = ".tmp-"


def resolve_state_dir(configured: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """The worker's state directory: ``--state-dir`` when given, else systemd's
    ``$STATE_DIRECTORY`` (its first entry: systemd separates several with ``:``), else
    ``~/.local/state/callback-bridge``. The one place that decides."""
    env = os.environ if environ is None else environ
    if configured:
        return Path(configured).expanduser()
    systemd = (env.get("STATE_DIRECTORY") or "").split(":")[0]
    if systemd:
        return Path(systemd)
    home = env.get("HOME")
    return Path(home) / DEFAULT_STATE_DIR[2:] if home else Path(DEFAULT_STATE_DIR).expanduser()


def scope(jobs_queue_url: str, results_queue_url: str) -> str:
    """The spool subdirectory of a pair of queues: the results queue's name and a hash of both
    URLs, so that a result is only ever sent to the queue it was meant for (workers of another
    deployment, or of an earlier local stack, on the same machine never see it)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", results_queue_url.rstrip("/").rsplit("/", 1)[-1])[:64]
    digest = hashlib.sha256(f"{jobs_queue_url}\n{results_queue_url}".encode()).hexdigest()
    return f"{name or 'results'}-{digest[:12]}"


def file_name(message_id: str) -> str:
    """The spool file of a job message (its id, or a hash of it if it is not a safe name)."""
    if _SAFE_ID.fullmatch(message_id):
        return message_id + SUFFIX
    return "h-" + hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest() + SUFFIX


@dataclass(frozen=True)
class Spooled:
    """One spooled result: the job message it answers and the message body to send."""

    message_id: str
    job_id: str
    token: str
    #: The result message's body, fitted to the results queue, exactly as it will be sent.
    body: str
    #: Wall-clock time (epoch seconds) it was first spooled; for a ``sent`` marker, when the
    #: result was sent.
    spooled_at: float
    #: The result went out; only the job message is left to delete when it comes back.
    sent: bool = False
    #: The job message's latest receipt handle: a worker restarted before the message's
    #: visibility timeout lapses takes it back with this (SQS accepts the handle until the
    #: message is received again), so no other worker can receive it meanwhile.
    receipt_handle: str | None = None

    def describe(self) -> str:
        """For logs: the job and its masked token, never the token itself."""
        return f"job {self.job_id} (message {self.message_id}, token {mask_token(self.token)})"


class SpoolError(OSError):
    """The spool cannot be written (a full disk, permissions)."""


@dataclass(frozen=True)
class SpoolPlace:
    """Where a worker's spool will be: claimed (:meth:`Spool.claim`) only when the worker
    starts, so that building a worker that never runs takes no spool."""

    state_dir: Path
    #: :func:`scope` of the worker's queues.
    queues: str = ""

    def check(self) -> None:
        """Create the spool's parent directory (0700) now; :class:`SpoolError` naming it if
        it cannot be created or written."""
        Spool(self.state_dir / SPOOL_DIR / self.queues)

    def claim(self) -> Spool:
        return Spool.claim(self.state_dir, self.queues)


class Spool:
    """One directory of spooled results; methods are safe from several threads (each file is
    written by one atomic rename)."""

    def __init__(self, directory: Path | str, clock: Callable[[], float] = time.time) -> None:
        """Create ``directory`` (0700) if needed; raises :class:`SpoolError` when it cannot be
        created or written, naming the directory."""
        self.directory = Path(directory)
        self.clock = clock
        self._lock_fd: int | None = None
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = self.directory.lstat()
            if not stat.S_ISDIR(info.st_mode):
                raise NotADirectoryError(f"{self.directory} is not a directory")
            if stat.S_IMODE(info.st_mode) & 0o077:
                os.chmod(self.directory, 0o700)
            if not os.access(self.directory, os.W_OK | os.X_OK):
                raise PermissionError(f"{self.directory} is not writable")
        except OSError as exc:
            raise SpoolError(f"result spool {self.directory}: {exc}") from exc

    @classmethod
    def claim(cls, state_dir: Path | str, queues: str = "") -> Spool:
        """The spool of one worker process under ``state_dir``: the first
        ``results-spool/QUEUES/worker-N`` no running worker holds (``queues``: :func:`scope`),
        locked (``flock``) until this process ends or :meth:`close`. A worker restarted on the
        same host claims the spool its predecessor left, with the results in it; two workers
        never share one. Raises :class:`SpoolError` naming the directory."""
        base = Path(state_dir) / SPOOL_DIR / queues
        for n in range(MAX_WORKERS_PER_STATE_DIR):
            for _attempt in range(3):  # a worker that ends may remove an empty spool meanwhile
                spool = cls(base / f"worker-{n}")
                taken = spool._lock()
                if taken is not None:
                    break
            if taken:
                return spool
        raise SpoolError(
            f"result spool {base}: {MAX_WORKERS_PER_STATE_DIR} workers already use it; "
            "give this one another --state-dir"
        )

    def _lock(self) -> bool | None:
        """Take this directory's lock for this process; False if another process holds it,
        None if the directory went away meanwhile (its worker removed it empty)."""
        path = self.directory / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SpoolError(f"result spool {self.directory}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # The lock file may have been unlinked between our open and our lock (see
            # close()): a lock on a file no longer at the path protects nothing.
            if os.fstat(fd).st_ino != os.stat(path, follow_symlinks=False).st_ino:
                raise FileNotFoundError(path)
        except FileNotFoundError:
            os.close(fd)
            return None
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def close(self) -> None:
        """Let another worker claim this spool. Files stay; an empty spool is removed (with
        its lock file, still locked, so that nobody can be holding a lock on it), so that
        short-lived workers (tests, demos) leave no directories behind."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is None:
            return
        try:
            if not any(n not in (LOCK_FILE,) for n in os.listdir(self.directory)):
                os.unlink(self.directory / LOCK_FILE)
                os.rmdir(self.directory)
                for parent in (self.directory.parent, self.directory.parent.parent):
                    if parent.name in (SPOOL_DIR,) or parent.parent.name == SPOOL_DIR:
                        os.rmdir(parent)  # only if empty: OSError otherwise
        except OSError:
            pass  # not empty, or already gone: nothing to tidy
        finally:
            os.close(fd)

    def path_of(self, message_id: str) -> Path:
        return self.directory / file_name(message_id)

    # --- writing -------------------------------------------------------------------------
    def put(self, entry: Spooled) -> Path:
        """Write ``entry`` durably (replacing an older version of it); raises
        :class:`SpoolError`."""
        data = _dumps(
            {
                "version": FORMAT_VERSION,
                "message_id": entry.message_id,
                "spooled_at": entry.spooled_at,
                "sent": entry.sent,
                **({"receipt_handle": entry.receipt_handle} if entry.receipt_handle else {}),
                "body": entry.body,
            }
        )
        final = self.path_of(entry.message_id)
        temp = self.directory / f"{_TEMP_PREFIX}{final.stem}-{secrets.token_hex(4)}"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, final)
            self._sync_directory()
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise SpoolError(f"cannot spool {entry.describe()} in {self.directory}: {exc}") from exc
        return final

    def remove(self, message_id: str) -> None:
        """Forget a spooled result (sent and answered). A file already gone is fine; any other
        failure is logged: the entry then comes back at the next start, and its job message
        is found answered (stale) or its result is sent a second time, never lost."""
        try:
            self.path_of(message_id).unlink(missing_ok=True)
            self._sync_directory()
        except OSError as exc:
            log.error("could not remove spooled result of message %s: %s", message_id, exc)

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # --- reading -------------------------------------------------------------------------
    def load(self) -> list[Spooled]:
        """Every readable spooled result, oldest first. Leftover temporary files are removed,
        unreadable spool files moved into :data:`REJECTED_DIR`, anything else reported and
        left alone; nothing here raises for what it finds in the directory."""
        entries: list[Spooled] = []
        try:
            names = sorted(os.listdir(self.directory))
        except OSError as exc:
            log.error("cannot read the result spool %s: %s", self.directory, exc)
            return []
        for name in names:
            path = self.directory / name
            if name in (REJECTED_DIR, LOCK_FILE):
                continue
            if name.startswith(_TEMP_PREFIX):
                log.info("removing %s, a spool file whose writing was interrupted", path)
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            if not name.endswith(SUFFIX) or not _is_regular(path):
                log.warning("ignoring %s in the result spool: not a spool file", path)
                continue
            try:
                entry = self._read(path)
            except (OSError, ValueError) as exc:
                self._reject(path, str(exc))
                continue
            entries.append(entry)
        entries.sort(key=lambda e: e.spooled_at)
        return entries

    def _read(self, path: Path) -> Spooled:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
        try:
            data: Any = strict_json.loads(raw, max_depth=_ENVELOPE_DEPTH)
        except strict_json.JSONError as exc:
            raise ValueError(f"not a spool file: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("not a spool file: not a JSON object")
        version, message_id = data.get("version"), data.get("message_id")
        spooled_at, sent, body = data.get("spooled_at"), data.get("sent"), data.get("body")
        if type(version) is not int or version != FORMAT_VERSION:
            raise ValueError(f"unknown spool format {version!r}")
        if not isinstance(message_id, str) or file_name(message_id) != path.name:
            raise ValueError("its message id does not match its name")
        if not isinstance(spooled_at, int | float) or isinstance(spooled_at, bool):
            raise ValueError("no spooled_at time")
        if type(sent) is not bool:
            raise ValueError("no sent flag")
        if not isinstance(body, str):
            raise ValueError("no result body")
        handle = data.get("receipt_handle")
        if handle is not None and not (isinstance(handle, str) and 0 < len(handle) <= 8192):
            raise ValueError("a receipt handle that is not one")
        try:
            result = parse_result(body)
        except ContractError as exc:
            raise ValueError(f"its result is not valid: {exc}") from None
        return Spooled(
            message_id, result.job_id, result.token, body, float(spooled_at), sent, handle
        )

    def _reject(self, path: Path, reason: str) -> None:
        """Move an unreadable spool file aside (never deleted: an operator may want it)."""
        rejected = self.directory / REJECTED_DIR
        try:
            rejected.mkdir(mode=0o700, exist_ok=True)
            target = rejected / f"{path.name}.{int(self.clock())}-{secrets.token_hex(2)}"
            os.replace(path, target)
            self._sync_directory()
        except OSError as exc:
            log.error("spool file %s is unreadable (%s) and cannot be moved: %s", path, reason, exc)
            return
        log.error("spool file %s is unreadable (%s): moved to %s", path, reason, target)


def _dumps(data: dict[str, Any]) -> bytes:
    """The envelope as ASCII JSON (the body is a string inside it, so the result keeps its exact
    text; escaping everything non-ASCII means no text can fail to encode)."""
    return json.dumps(data, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False
