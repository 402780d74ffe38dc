"""What job code can reach: its environment, its user, its capabilities and the task token.

One :class:`Sandbox` per worker, built from ``--pass-env``, ``--run-as`` and ``--expose-token``
(:meth:`Sandbox.from_settings` refuses a bad one with one line). Runners use it for every job:

* **Environment** (:meth:`Sandbox.environment`): built from an allowlist, never from the
  worker's whole environment: ``PATH``, ``HOME``, ``LANG``, ``LC_*``, ``TZ``, ``PYTHONPATH``,
  the job's own ``BRIDGE_JOB_*`` and ``BRIDGE_EXECUTION_ARN``, and the names the operator lists
  with ``--pass-env``. AWS credentials, queue URLs and the worker's other settings stay with the
  worker. ``--pass-env`` refuses ``AWS_*`` and ``BRIDGE_*`` names (the instance's credentials and
  the bridge's own settings: a job that needs AWS gets its own role or credentials another way)
  except ``AWS_REGION`` and ``AWS_DEFAULT_REGION``,
  and warns about names that look secret (``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ...): the
  operator named them, so they pass, but the log says so.
* **User** (:class:`RunAs`): with ``--run-as USER`` job processes run as that user, its primary
  group and its supplementary groups, with its ``HOME`` as home and working directory. The
  worker needs to be root, or to hold CAP_SETUID and CAP_SETGID (to switch) and CAP_KILL (to
  signal the job's processes, which are no longer its own); the systemd unit grants those three.
  A worker that cannot switch, or a user that does not exist (or is root), is refused at start.
* **Capabilities** (:func:`confine_capabilities`, at worker start): the capabilities a non-root
  worker holds for ``--run-as`` are kept in its effective and permitted sets only: the ambient
  and inheritable sets are cleared, so no job program inherits them through ``execve``. A
  worker without ``--run-as`` drops them altogether.
* **Task token** (:meth:`Sandbox.job_view`): handlers get the job with its token replaced by
  ``withheld:<mask>`` (the mask logs use), and any string of the input equal to the token
  replaced the same way, unless ``--expose-token``. Commands never get the token.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import pwd
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge.contract import Job, mask_token

log = logging.getLogger(__name__)

#: Worker environment variables every job gets (when the worker has them).
ALLOWED_ENV = ("PATH", "LANG", "TZ", "PYTHONPATH")
#: ... and every variable with one of these prefixes.
ALLOWED_ENV_PREFIXES = ("LC_",)
#: PATH when the worker has none.
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
#: ``--pass-env`` names that are refused: the instance's credentials, the bridge's settings.
REFUSED_ENV_PREFIXES = ("AWS_", "BRIDGE_")
#: ... except these, which say where, not who: a job with credentials of its own needs a region.
PASSABLE_AWS_ENV = ("AWS_REGION", "AWS_DEFAULT_REGION")
#: ``--pass-env`` names containing one of these words are passed with a warning.
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "PRIVATE", "KEY")
#: What a handler's ``job.token`` reads when the token is withheld: ``withheld:…abc123(1024)``.
WITHHELD_PREFIX = "withheld:"

#: Linux capability numbers (linux/capability.h).
CAP_KILL, CAP_SETGID, CAP_SETUID = 5, 6, 7
RUN_AS_CAPABILITIES = {"CAP_SETUID": CAP_SETUID, "CAP_SETGID": CAP_SETGID, "CAP_KILL": CAP_KILL}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class RunAs:
    """The user job processes run as."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str

    @classmethod
    def lookup(cls, user: str) -> RunAs:
        """The user named ``user`` (or a numeric uid); :class:`ValueError` when there is none
        or it is root."""
        try:
            entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        except (KeyError, OverflowError):
            raise ValueError(f"--run-as: no user {user!r} on this host") from None
        if entry.pw_uid == 0:
            raise ValueError(f"--run-as {user!r} is root: name an unprivileged user")
        groups = tuple(sorted(set(os.getgrouplist(entry.pw_name, entry.pw_gid))))
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir or "/")

    @property
    def workdir(self) -> str:
        """Where the job starts: its home, or ``/`` when that is not a directory (the worker's
        own working directory is usually not the job user's to read)."""
        return self.home if os.path.isdir(self.home) else "/"


@dataclass(frozen=True)
class Sandbox:
    """How this worker confines its jobs (see the module docstring)."""

    pass_env: tuple[str, ...] = ()
    run_as: RunAs | None = None
    expose_token: bool = False
    #: The worker's environment (a parameter for tests).
    worker_env: Mapping[str, str] = field(
        default_factory=lambda: os.environ, repr=False, compare=False
    )

    @classmethod
    def from_settings(
        cls, run_as: str | None = None, pass_env: str | None = None, expose_token: bool = False
    ) -> Sandbox:
        """Check the flags; raises :class:`ValueError` with one line for the first bad one."""
        names = parse_pass_env(pass_env)
        user = None
        if run_as:
            user = RunAs.lookup(run_as)
            if user.uid != os.geteuid():
                check_privilege()
        return cls(names, user, expose_token)

    def environment(self, job: Job, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A job's environment: the allowlist, ``--pass-env``, ``HOME`` (the ``--run-as``
        user's), the job's ``BRIDGE_JOB_*`` variables and ``extra``."""
        source = self.worker_env
        env = {
            name: value
            for name, value in source.items()
            if name in ALLOWED_ENV or name.startswith(ALLOWED_ENV_PREFIXES)
        }
        env.setdefault("PATH", DEFAULT_PATH)
        for name in self.pass_env:
            if name in source:
                env[name] = source[name]
        home = self.run_as.home if self.run_as else source.get("HOME")
        if home:
            env["HOME"] = home
        env.update(
            {
                "BRIDGE_JOB_ID": job.job_id,
                "BRIDGE_JOB_TYPE": job.type,
                "BRIDGE_JOB_ATTEMPT": str(job.attempt),
                "BRIDGE_EXECUTION_ARN": job.execution_arn,
            }
        )
        env.update(extra or {})
        return env

    def job_view(self, job: Job) -> Job:
        """The job as handler code may see it: without its task token unless
        ``--expose-token``."""
        if self.expose_token:
            return job
        return withhold_token(job)


def withhold_token(job: Job) -> Job:
    """``job`` with ``token`` replaced by ``withheld:<mask>``, and so is every string (value or
    key) of its input equal to the token (a message adopted with ``--token-path`` may carry it
    there)."""
    masked = WITHHELD_PREFIX + mask_token(job.token)
    return job.model_copy(update={"token": masked, "input": _scrub(job.input, job.token, masked)})


def _scrub(value: Any, token: str, masked: str) -> Any:
    """``value`` with every string equal to ``token`` replaced (iteratively: inputs may be
    nested as deep as the contract allows)."""
    if isinstance(value, str):
        return masked if value == token else value
    if not isinstance(value, (dict, list)):
        return value
    root: Any = {} if isinstance(value, dict) else []
    stack: list[tuple[Any, Any]] = [(value, root)]
    while stack:
        source, target = stack.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in items:
            if isinstance(item, (dict, list)):
                child: Any = {} if isinstance(item, dict) else []
                stack.append((item, child))
                item = child
            elif isinstance(item, str) and item == token:
                item = masked
            if isinstance(target, dict):
                target[masked if key == token else key] = item
            else:
                target.append(item)
    return root


def parse_pass_env(text: str | None) -> tuple[str, ...]:
    """``HTTP_PROXY,NO_PROXY`` -> the names; refuses ``AWS_*``, ``BRIDGE_*`` and malformed
    names, warns about secret-looking ones."""
    names: list[str] = []
    for name in filter(None, (part.strip() for part in (text or "").split(","))):
        if not _NAME.match(name):
            raise ValueError(f"--pass-env: {name!r} is not an environment variable name")
        if name.upper().startswith(REFUSED_ENV_PREFIXES) and name not in PASSABLE_AWS_ENV:
            raise ValueError(
                f"--pass-env {name}: AWS_* and BRIDGE_* variables never reach jobs (the "
                "worker's credentials and settings); give the job its own configuration"
            )
        if any(word in name.upper() for word in SECRET_WORDS):
            log.warning("--pass-env %s: this looks like a secret; every job will see it", name)
        if name not in names:
            names.append(name)
    return tuple(names)


# --- privilege -------------------------------------------------------------------------------
def effective_capabilities(status_path: str = "/proc/self/status") -> int | None:
    """The effective capability mask (``CapEff``), or None where it cannot be read."""
    try:
        with open(status_path, encoding="ascii") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        return None
    return None


def check_privilege(euid: int | None = None, capabilities: int | None = None) -> None:
    """Refuse ``--run-as`` when this process cannot switch users and signal the job's
    processes: it must be root, or hold CAP_SETUID, CAP_SETGID and CAP_KILL."""
    if (os.geteuid() if euid is None else euid) == 0:
        return
    mask = effective_capabilities() if capabilities is None else capabilities
    missing = [name for name, bit in RUN_AS_CAPABILITIES.items() if not (mask or 0) >> bit & 1]
    if missing:
        raise ValueError(
            f"--run-as needs the worker to run as root or with {', '.join(missing)} "
            "(the systemd unit's AmbientCapabilities= grants them)"
        )


# --- capabilities ----------------------------------------------------------------------------
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def confine_capabilities(keep_run_as: bool) -> bool:
    """Make sure no job program inherits this worker's capabilities: clear the ambient and
    inheritable sets, and, for a non-root worker, keep in the effective and permitted sets only
    what ``--run-as`` needs (nothing when ``keep_run_as`` is false). Root keeps its own: a job
    of a root worker without ``--run-as`` runs as root anyway. Returns whether it applied
    (Linux only)."""
    if not sys.platform.startswith("linux"):
        log.debug("capabilities: not Linux, nothing to confine")
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    if libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0:
        log.debug("capabilities: PR_CAP_AMBIENT_CLEAR_ALL failed (errno %d)", ctypes.get_errno())
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        log.warning("capabilities: capget failed (errno %d)", ctypes.get_errno())
        return False
    keep = sum(1 << bit for bit in RUN_AS_CAPABILITIES.values()) if keep_run_as else 0
    for index, item in enumerate(data):
        item.inheritable = 0
        if os.geteuid() != 0:
            keep_word = (keep >> (32 * index)) & 0xFFFFFFFF
            item.permitted &= keep_word
            item.effective &= keep_word
    if libc.capset(ctypes.byref(header), data) != 0:
        log.warning("capabilities: capset failed (errno %d)", ctypes.get_errno())
        return False
    return True
