"""What job code can reach: an allowlisted environment, another user, no task token.

Real commands and isolated handlers where the point is what a job process really gets; the
privilege checks with the capability mask given, since the tests may run as root.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.contract import Job, mask_token
from consumers import isolated
from consumers.command import CommandRunner, job_environment
from consumers.compose import build_pieces, build_runner
from consumers.context import JobContext
from consumers.intake import Intake
from consumers.isolated import IsolatedPythonRunner
from consumers.runner import PythonRunner
from consumers.sandbox import (
    CAP_KILL,
    CAP_SETGID,
    CAP_SETUID,
    WITHHELD_PREFIX,
    RunAs,
    Sandbox,
    check_privilege,
    parse_pass_env,
)
from consumers.settings import ServiceSettings
from tests.support.messages import make_job

TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAe" + "t0k3n" * 40  # long, like a real one
WORKER_SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAWORKERKEY",
    "AWS_SECRET_ACCESS_KEY": "worker-secret",
    "AWS_SESSION_TOKEN": "worker-session",
    "AWS_REGION": "eu-west-1",
    "BRIDGE_JOBS_QUEUE_URL": "https://sqs.example/jobs",
    "BRIDGE_RESULTS_QUEUE_URL": "https://sqs.example/results",
    "BRIDGE_WORKER_COMMAND": "env",
    "SOME_WORKER_SETTING": "x",
}
NOBODY = RunAs("nobody", 65534, 65534, (65534,), "/nonexistent")


@pytest.fixture
def worker_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in WORKER_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LC_TIME", "C")
    monkeypatch.setenv("TZ", "UTC")
    yield


def job(**fields: Any) -> Job:
    return make_job(token=TOKEN, **fields)


def assert_no_worker_settings(env: dict[str, str]) -> None:
    leaked = sorted(
        name
        for name in env
        if name.startswith("AWS_")
        or name in WORKER_SECRETS
        or (name.startswith("BRIDGE_") and not name.startswith(("BRIDGE_JOB_", "BRIDGE_EXEC")))
    )
    assert leaked == []
    assert not any(TOKEN in value or value in WORKER_SECRETS.values() for value in env.values())


# --- environment -------------------------------------------------------------------------------
def test_the_environment_is_the_allowlist_and_the_jobs_own_variables() -> None:
    worker = {
        **WORKER_SECRETS,
        "PATH": "/usr/bin:/bin",
        "HOME": "/var/lib/callback-bridge",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "PYTHONPATH": "/opt/jobs",
        "HTTP_PROXY": "http://proxy:3128",
    }
    env = Sandbox(pass_env=("HTTP_PROXY", "NOT_SET"), worker_env=worker).environment(
        job(input={"n": 1}), {"BRIDGE_JOB_INPUT": '{"n": 1}'}
    )
    assert sorted(env) == [
        "BRIDGE_EXECUTION_ARN",
        "BRIDGE_JOB_ATTEMPT",
        "BRIDGE_JOB_ID",
        "BRIDGE_JOB_INPUT",
        "BRIDGE_JOB_TYPE",
        "HOME",
        "HTTP_PROXY",
        "LANG",
        "LC_ALL",
        "PATH",
        "PYTHONPATH",
        "TZ",
    ]
    assert env["HOME"] == "/var/lib/callback-bridge"
    assert_no_worker_settings(env)


def test_run_as_gives_the_users_home_and_a_path_when_the_worker_has_none() -> None:
    env = Sandbox(run_as=NOBODY, worker_env={"HOME": "/root"}).environment(job())
    assert env["HOME"] == "/nonexistent"
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"


def test_a_command_gets_no_credentials_queue_urls_or_token(worker_env: None) -> None:
    outcome = CommandRunner("env", grace_s=1).run(job(input={"n": 1}))
    assert outcome.succeeded, outcome.cause
    env = dict(line.split("=", 1) for line in str(outcome.output).splitlines() if "=" in line)
    assert env["BRIDGE_JOB_ID"] == "exec-1/RunJob/0/0"
    assert env["LC_TIME"] == "C" and env["TZ"] == "UTC"
    assert_no_worker_settings(env)


def test_job_environment_without_a_sandbox_is_the_allowlist(worker_env: None) -> None:
    env = job_environment(job(), "{}")
    assert env["BRIDGE_JOB_INPUT"] == "{}"
    assert_no_worker_settings(env)


@pytest.fixture
def handlers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "sandbox_handlers.py").write_text(
        textwrap.dedent(
            """
            import os

            def environ(data, job):
                return dict(os.environ)

            def what_i_see(data, job, context):
                return {"token": job.token, "context_token": context.job.token,
                        "input": data, "dump": job.model_dump(mode="json")}
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "sandbox_handlers"


def test_an_isolated_handler_gets_no_credentials_or_queue_urls(
    handlers: str, worker_env: None
) -> None:
    outcome = IsolatedPythonRunner(f"{handlers}:environ", grace_s=1).run(job())
    assert outcome.succeeded, outcome.cause
    env = outcome.output
    assert env["BRIDGE_JOB_ID"] == "exec-1/RunJob/0/0"
    assert env["PYTHONPATH"]  # it must still import the handler and this package
    assert_no_worker_settings(env)


def test_pass_env_refuses_the_workers_own_variables_and_warns_about_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert parse_pass_env(" HTTP_PROXY, NO_PROXY,HTTP_PROXY ") == ("HTTP_PROXY", "NO_PROXY")
    assert parse_pass_env("AWS_REGION,AWS_DEFAULT_REGION") == ("AWS_REGION", "AWS_DEFAULT_REGION")
    for name in ("AWS_PROFILE", "aws_secret_access_key", "BRIDGE_JOBS_QUEUE_URL"):
        with pytest.raises(ValueError, match="never reach jobs"):
            parse_pass_env(f"HTTP_PROXY,{name}")
    with pytest.raises(ValueError, match="not an environment variable name"):
        parse_pass_env("A=B")
    with caplog.at_level(logging.WARNING, logger="consumers.sandbox"):
        assert parse_pass_env("GITHUB_TOKEN") == ("GITHUB_TOKEN",)
    assert "looks like a secret" in caplog.text


# --- run as ------------------------------------------------------------------------------------
def test_run_as_refuses_a_missing_user_and_root() -> None:
    with pytest.raises(ValueError, match="no user 'no-such-user-here'"):
        Sandbox.from_settings(run_as="no-such-user-here")
    with pytest.raises(ValueError, match="is root"):
        RunAs.lookup("root")


def test_run_as_refuses_a_worker_that_cannot_switch_users() -> None:
    everything = (1 << CAP_SETUID) | (1 << CAP_SETGID) | (1 << CAP_KILL)
    check_privilege(euid=0, capabilities=0)
    check_privilege(euid=1000, capabilities=everything)
    with pytest.raises(ValueError, match="root or with CAP_SETUID, CAP_SETGID, CAP_KILL"):
        check_privilege(euid=1000, capabilities=0)
    with pytest.raises(ValueError, match=r"with CAP_KILL \("):
        check_privilege(euid=1000, capabilities=everything & ~(1 << CAP_KILL))


@pytest.mark.skipif(os.geteuid() == 0, reason="root may switch users")
def test_run_as_is_refused_at_start_without_privilege() -> None:
    other = next(p for p in pwd.getpwall() if p.pw_uid not in (0, os.geteuid()))
    with pytest.raises(ValueError, match="--run-as needs the worker to run as root"):
        build_pieces(ServiceSettings(command="true", run_as=other.pw_name))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a worker as another user")
def test_a_worker_without_privilege_refuses_run_as_in_one_line() -> None:
    """The real CLI, started as an ordinary user (``daemon``) without capabilities."""
    worker = RunAs.lookup("daemon")
    cli = [python_for(worker), "-m", "bridge.cli.main", "worker", "--command", "true"]
    done = subprocess.run(
        [*cli, "--run-as", "nobody", "--log-format", "text"],
        cwd="/",
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
            "PYTHONWARNINGS": "ignore",  # the system Python's own packages may warn
        },
        user=worker.uid,
        group=worker.gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "error: --run-as needs the worker to run as root or with CAP_SETUID, CAP_SETGID, "
        "CAP_KILL (the systemd unit's AmbientCapabilities= grants them)"
    ]


def test_run_as_refuses_at_start_a_program_the_user_cannot_run(tmp_path: Path) -> None:
    program = tmp_path / "private-tool"
    program.write_text("#!/bin/sh\necho ok\n")
    program.chmod(0o700)
    owner = RunAs("owner", os.geteuid(), os.getegid(), (), "/")
    CommandRunner(str(program), sandbox=Sandbox(run_as=owner)).check()
    CommandRunner(str(program)).check()
    with pytest.raises(ValueError, match="not executable by --run-as nobody"):
        CommandRunner(f"{program} --flag", sandbox=Sandbox(run_as=NOBODY)).check()
    program.chmod(0o755)
    CommandRunner(str(program), sandbox=Sandbox(run_as=NOBODY)).check()


def test_run_as_with_a_thread_handler_isolates_every_job() -> None:
    runner = build_runner(
        "consumers.demo_handler:work", None, "thread", 1, sandbox=Sandbox(run_as=NOBODY)
    )
    assert isinstance(runner, IsolatedPythonRunner) and runner.sandbox.run_as == NOBODY
    with pytest.raises(ValueError, match="cannot run as another user"):
        PythonRunner(lambda data, job: data, Sandbox(run_as=NOBODY))


def test_the_worker_settings_reach_every_runner() -> None:
    with pytest.raises(ValueError, match="--pass-env AWS_PROFILE"):
        build_pieces(ServiceSettings(command="true", pass_env="AWS_PROFILE"))
    with pytest.raises(ValueError, match="--run-as: no user"):
        build_pieces(ServiceSettings(command="true", run_as="no-such-user-here"))
    pieces = build_pieces(
        ServiceSettings(
            handler="consumers.demo_handler:work", expose_token=True, pass_env="HTTP_PROXY"
        )
    )
    assert isinstance(pieces.runner, PythonRunner)
    assert isinstance(pieces.isolated_runner, IsolatedPythonRunner)
    for runner in (pieces.runner, pieces.isolated_runner):
        assert runner.sandbox == Sandbox(("HTTP_PROXY",), None, True)


@pytest.fixture
def job_user() -> Iterator[RunAs]:
    """A throwaway unprivileged user (root only), removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("creating a user needs root")
    name = f"cbjob{os.getpid() % 100000}"
    subprocess.run(["useradd", "--create-home", "--user-group", name], check=True)
    try:
        yield RunAs.lookup(name)
    finally:
        subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)


def test_run_as_runs_commands_and_isolated_handlers_as_that_user(
    job_user: RunAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = Sandbox.from_settings(run_as=job_user.name)
    outcome = CommandRunner(
        'echo "{\\"uid\\": $(id -u), \\"gid\\": $(id -g), \\"home\\": \\"$HOME\\", '
        '\\"cwd\\": \\"$(pwd)\\"}"',
        grace_s=1,
        sandbox=sandbox,
    ).run(job())
    assert outcome.succeeded, outcome.cause
    assert outcome.output == {
        "uid": job_user.uid,
        "gid": job_user.gid,
        "home": job_user.home,
        "cwd": job_user.home,
    }
    # A handler under the worker's import path, readable by the job user but not writable.
    package = Path(tempfile.mkdtemp(prefix="cb-run-as-"))
    try:
        package.chmod(0o755)
        (package / "who_handler.py").write_text(
            "import os\n"
            "def who(data, job):\n"
            "    try:\n"
            f"        open({str(package / 'who_handler.py')!r}, 'a')\n"
            "        writable = True\n"
            "    except OSError:\n"
            "        writable = False\n"
            "    return {'uid': os.getuid(), 'euid': os.geteuid(), 'writable': writable}\n"
        )
        (package / "who_handler.py").chmod(0o644)
        monkeypatch.syspath_prepend(str(package))
        python = python_for(job_user)
        runner = IsolatedPythonRunner("who_handler:who", grace_s=1, python=python, sandbox=sandbox)
        outcome = runner.run(job())
        assert outcome.succeeded, outcome.cause
        assert outcome.output == {"uid": job_user.uid, "euid": job_user.uid, "writable": False}
    finally:
        shutil.rmtree(package)


def python_for(user: RunAs) -> str:
    """An interpreter of this Python version the job user may run (this one may live in a
    home directory only root can enter)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, shutil.which(version) or "", f"/usr/bin/{version}"):
        if not candidate:
            continue
        try:
            subprocess.run(
                [candidate, "-c", "pass"], user=user.uid, group=user.gid, cwd="/", check=True
            )
        except (OSError, subprocess.CalledProcessError):
            continue
        return candidate
    pytest.skip(f"no {version} the job user can run")


# --- the task token ----------------------------------------------------------------------------
WITHHELD = WITHHELD_PREFIX + mask_token(TOKEN)


def see(job: Job, context: JobContext) -> dict[str, Any]:
    return {"token": job.token, "context_token": context.job.token, "input": job.input}


def test_a_thread_handler_never_sees_the_token() -> None:
    the_job = job(input={"keep": "this", "copy": TOKEN, TOKEN: 1})
    context = JobContext(the_job)
    outcome = PythonRunner(lambda data, j, ctx: see(j, ctx)).run(the_job, context)
    assert outcome.output == {
        "token": WITHHELD,
        "context_token": WITHHELD,
        "input": {"keep": "this", "copy": WITHHELD, WITHHELD: 1},
    }
    assert TOKEN not in json.dumps(outcome.output)
    assert context.job.token == TOKEN  # the worker's own context keeps it


def test_the_handlers_context_shares_cancellation_with_the_workers() -> None:
    the_job = job()
    context = JobContext(the_job, deadline=123.0)
    view = context.seen_as(Sandbox().job_view(the_job))
    assert view.job.token == WITHHELD and view.deadline == 123.0
    assert view.cancel("task-closed") and context.reason == "task-closed" and view.is_cancelled
    assert not context.cancel("timeout") and view.reason == "task-closed"


def test_expose_token_gives_handlers_the_real_token() -> None:
    the_job = job()
    sandbox = Sandbox(expose_token=True)
    outcome = PythonRunner(lambda data, j, ctx: see(j, ctx), sandbox).run(the_job)
    assert outcome.output["token"] == TOKEN and outcome.output["context_token"] == TOKEN


def test_an_isolated_handler_never_sees_the_token_nor_does_its_envelope(
    handlers: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[bytes] = []
    real_run_process = isolated.run_process

    def spy(*args: Any, **kwargs: Any) -> Any:
        sent.append(kwargs["stdin"])
        assert TOKEN not in json.dumps(kwargs["env"])
        return real_run_process(*args, **kwargs)

    monkeypatch.setattr(isolated, "run_process", spy)
    runner = IsolatedPythonRunner(f"{handlers}:what_i_see", grace_s=1)
    outcome = runner.run(job(input={"copy": TOKEN}))
    assert outcome.succeeded, outcome.cause
    assert outcome.output["token"] == outcome.output["context_token"] == WITHHELD
    assert outcome.output["input"] == {"copy": WITHHELD}
    assert TOKEN not in json.dumps(outcome.output)
    assert sent and TOKEN.encode() not in sent[0]


def test_expose_token_gives_isolated_handlers_the_real_token(handlers: str) -> None:
    exposed = IsolatedPythonRunner(
        f"{handlers}:what_i_see", grace_s=1, sandbox=Sandbox(expose_token=True)
    ).run(job())
    assert exposed.succeeded, exposed.cause
    assert exposed.output["token"] == exposed.output["context_token"] == TOKEN


@pytest.mark.parametrize(
    ("token_path", "body"),
    [
        ("$.TaskToken", {"MessageTitle": "hi", "TaskToken": TOKEN}),
        ("$.meta.TaskToken", {"MessageTitle": "hi", "meta": {"TaskToken": TOKEN}}),
    ],
)
def test_a_handler_serving_token_path_messages_never_sees_the_token(
    token_path: str, body: dict[str, Any]
) -> None:
    adopted = Intake(token_path=token_path).parse({"MessageId": "m-1", "Body": json.dumps(body)})
    assert adopted.token == TOKEN
    outcome = PythonRunner(lambda data, j, ctx: see(j, ctx)).run(adopted)
    assert outcome.succeeded, outcome.cause
    assert outcome.output["token"] == WITHHELD
    assert TOKEN not in json.dumps(outcome.output)
    assert outcome.output["input"]["MessageTitle"] == "hi"


def test_withholding_copes_with_the_deepest_input() -> None:
    deep: Any = TOKEN
    for _ in range(60):
        deep = [deep]
    view = Sandbox().job_view(job(input=deep))
    innermost = view.input
    for _ in range(60):
        (innermost,) = innermost
    assert innermost == WITHHELD


# --- capabilities ------------------------------------------------------------------------------
# Stage 1 (root) becomes a non-root worker holding CAP_SETUID, CAP_SETGID and CAP_KILL in its
# ambient set, as systemd's AmbientCapabilities= makes it, then execs stage 2, the "worker".
CAPS_STAGE1 = textwrap.dedent(
    """
    import ctypes, os, sys
    from consumers.sandbox import _CapData, _CapHeader, _CAPABILITY_VERSION_3
    libc = ctypes.CDLL(None, use_errno=True)
    uid = int(sys.argv[1])
    assert libc.prctl(8, 1, 0, 0, 0) == 0  # PR_SET_KEEPCAPS
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    header, data = _CapHeader(_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    assert libc.capget(ctypes.byref(header), data) == 0
    wanted = (1 << 5) | (1 << 6) | (1 << 7)
    data[0].effective = data[0].permitted = data[0].inheritable = wanted
    data[1].effective = data[1].permitted = data[1].inheritable = 0
    assert libc.capset(ctypes.byref(header), data) == 0, ctypes.get_errno()
    for cap in (5, 6, 7):
        assert libc.prctl(47, 2, cap, 0, 0) == 0, ctypes.get_errno()  # PR_CAP_AMBIENT_RAISE
    os.execv(sys.executable, [sys.executable, "-c", sys.argv[2], *sys.argv[3:]])
    """
)
CAPS_STAGE2 = textwrap.dedent(
    """
    import json, sys
    from consumers.command import CommandRunner
    from consumers.sandbox import Sandbox, confine_capabilities, effective_capabilities
    from tests.support.messages import make_job

    def status():
        fields = dict(l.split(":\\t", 1) for l in open("/proc/self/status").read().splitlines()
                      if l.startswith("Cap"))
        return {k: int(v, 16) for k, v in fields.items()}

    probe = ('echo "{\\\\"uid\\\\": $(id -u), '
             '\\\\"eff\\\\": \\\\"$(grep CapEff /proc/self/status | cut -f2)\\\\"}"')
    report = {"before": status()}
    report["job_before"] = CommandRunner(probe, grace_s=1).run(make_job()).output
    assert confine_capabilities(keep_run_as=True)
    report["after"] = status()
    sandbox = Sandbox.from_settings(run_as=sys.argv[1])
    report["job_as_user"] = CommandRunner(probe, grace_s=1, sandbox=sandbox).run(make_job()).output
    report["job_after"] = CommandRunner(probe, grace_s=1).run(make_job()).output
    assert confine_capabilities(keep_run_as=False)
    report["dropped"] = status()
    print(json.dumps(report))
    """
)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become a worker with capabilities")
def test_a_worker_with_capabilities_passes_none_to_its_jobs() -> None:
    worker, job_user = pwd.getpwnam("daemon"), pwd.getpwnam("nobody")
    python = python_for(RunAs.lookup("daemon"))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run(
        [python, "-c", CAPS_STAGE1, str(worker.pw_uid), CAPS_STAGE2, job_user.pw_name],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    run_as_caps = (1 << CAP_SETUID) | (1 << CAP_SETGID) | (1 << CAP_KILL)
    assert report["before"]["CapAmb"] == run_as_caps == report["before"]["CapEff"]
    # Without confinement a job inherits them (the reason for it).
    assert int(report["job_before"]["eff"], 16) == run_as_caps
    assert report["after"]["CapAmb"] == report["after"]["CapInh"] == 0
    assert report["after"]["CapEff"] == run_as_caps == report["after"]["CapPrm"]
    assert report["job_as_user"] == {"uid": job_user.pw_uid, "eff": "0000000000000000"}
    assert report["job_after"] == {"uid": worker.pw_uid, "eff": "0000000000000000"}
    assert report["dropped"]["CapEff"] == report["dropped"]["CapPrm"] == 0
