"""A worker that cannot half-die: each internal thread killed in turn, against moto in-process.

Whichever thread dies (receiver, keep-alive, result sender, supervisor loop, health server,
instance watcher, lifecycle heartbeats), what users see is the same: ``/health`` answers 503
``unhealthy`` naming the thread, the service returns :data:`EXIT_THREAD_DIED` within seconds,
the job it held is visible in the jobs queue again, and a healthy worker then completes it: no
job is lost. Faults are injected by making one step of the thread's loop raise, or (instance
watcher) by a malformed spot notice from the embedded instance metadata server.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bridge.aws import Clients
from bridge.contract import parse_result
from bridge.local_stack.imds import InstanceMetadataServer, StaticInstance
from consumers.ec2 import InstanceHandling, InstanceSettings
from consumers.imds import SPOT_WARNING_S
from consumers.metrics import WorkerMetrics
from consumers.runner import PythonRunner
from consumers.service import Service
from consumers.threads import EXIT_THREAD_DIED
from consumers.worker import Worker
from tests.support.aws import depth, receive_all, start
from tests.support.polling import eventually, visible
from tests.support.worker import running, settings

#: From the fault to the service's return: "within a few seconds".
EXIT_WITHIN_S = 5.0


def boom(error: BaseException) -> Callable[..., Any]:
    """A step that raises ``error`` once, the first time it is called."""
    calls = [0]

    def step(*_args: Any, **_kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise error
        return None

    return step


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


#: Runs started by the current test, stopped at its end should the fault not have stopped them.
STARTED: list[Run] = []


@pytest.fixture(autouse=True)
def stop_runs() -> Iterator[None]:
    yield
    while STARTED:
        run = STARTED.pop()
        run.worker.request_stop()
        run.worker.request_stop()
        run.thread.join(10)


class Run:
    """A :class:`Service` around a worker on a thread of its own: its exit code, and what
    ``/health`` answered while it stopped (probed from a stop hook, before the health server
    closes, as a load balancer probing then would see it)."""

    def __init__(self, worker: Worker, probe: bool = True) -> None:
        self.worker = worker
        self.service = Service(worker, WorkerMetrics(enabled=False), health_port=0)
        self.code: int | None = None
        self.health: tuple[int, dict[str, Any]] | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        if probe:
            self.service.on_stopped.append(self._probe)

    def _run(self) -> None:
        self.code = self.service.run()

    def _probe(self) -> None:
        assert self.service.health is not None
        self.health = get(self.service.health.url)

    def start(self) -> Run:
        self.thread.start()
        STARTED.append(self)
        return self

    def exit_code(self, timeout_s: float = EXIT_WITHIN_S) -> int | None:
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), f"the worker still runs {timeout_s} s after the fault"
        return self.code


class Blocking:
    """A handler that holds its job until released: the job is running when the fault hits."""

    def __init__(self) -> None:
        self.started, self.release = threading.Event(), threading.Event()

    def __call__(self, data: Any, job: Any) -> Any:
        self.started.set()
        self.release.wait(10)
        return "late"

    def wait_started(self) -> None:
        assert self.started.wait(10), "the worker never started the job"


def echo(data: Any, job: Any) -> Any:
    return {"echo": data}


@pytest.fixture
def blocking() -> Iterator[Blocking]:
    handler = Blocking()
    yield handler
    handler.release.set()


def assert_died(run: Run, thread: str, health: bool = True) -> None:
    """Exit code, health and status after ``thread`` died."""
    assert run.exit_code() == EXIT_THREAD_DIED
    status = run.worker.status()
    assert status["state"] == "unhealthy"
    assert status["reason"].startswith(f"thread {thread} died: ")
    if health:
        assert run.health is not None
        code, body = run.health
        assert code == 503
        assert (body["state"], body["reason"]) == ("unhealthy", status["reason"])


def assert_redone(aws: Clients, stack: dict[str, str], jobs: int = 1) -> None:
    """The released jobs are visible again at once, and a healthy worker completes them."""
    url = stack["jobs_queue_url"]
    assert eventually(lambda: visible(aws.sqs, url) == jobs, timeout_s=3), "not released"
    assert depth(aws.sqs, stack["results_queue_url"]) == 0
    with running(Worker(aws.sqs, aws.sfn, settings(stack), PythonRunner(echo))):
        results = receive_all(aws.sqs, stack["results_queue_url"], jobs)
        assert eventually(lambda: depth(aws.sqs, url) == 0, timeout_s=10)
    assert sorted(parse_result(m["Body"]).outcome for m in results) == ["succeeded"] * jobs


def test_a_receiver_that_dies_releases_what_it_received_and_exits(
    aws: Clients, stack: dict[str, str]
) -> None:
    """The reported bug: a RecursionError while reading a message killed the receiver, health
    stayed 200 and the queue filled up."""
    start(aws.sfn, stack["state_machine_arn"], [{"n": 0}, {"n": 1}])
    assert eventually(lambda: visible(aws.sqs, stack["jobs_queue_url"]) == 2, timeout_s=10)
    worker = Worker(aws.sqs, aws.sfn, settings(stack), PythonRunner(echo))
    accept = worker.accept
    fault = boom(RecursionError("maximum recursion depth exceeded while decoding a JSON array"))

    def poisoned(message: dict[str, Any]) -> None:
        fault()
        accept(message)

    worker.accept = poisoned  # type: ignore[method-assign]
    run = Run(worker).start()
    assert_died(run, "receiver")
    assert "RecursionError" in run.worker.status()["reason"]
    assert_redone(aws, stack, jobs=2)


def test_a_keepalive_that_dies_releases_the_running_job_and_exits(
    aws: Clients, stack: dict[str, str], blocking: Blocking
) -> None:
    start(aws.sfn, stack["state_machine_arn"], [{"n": 0}])
    worker = Worker(aws.sqs, aws.sfn, settings(stack), PythonRunner(blocking))
    run = Run(worker).start()
    blocking.wait_started()
    worker.keepalive.heartbeat_due = boom(ValueError("not an AWS error"))  # type: ignore[method-assign]
    assert_died(run, "keepalive")
    blocking.release.set()  # the handler's late result must not be sent: the job was released
    assert_redone(aws, stack)


def test_a_result_sender_that_dies_releases_the_jobs_it_held_and_exits(
    aws: Clients, stack: dict[str, str]
) -> None:
    """The result is lost with the sender, so the job goes back to the queue to be redone."""
    start(aws.sfn, stack["state_machine_arn"], [{"n": 0}])
    worker = Worker(aws.sqs, aws.sfn, settings(stack), PythonRunner(echo))
    worker.sender.send = boom(TypeError("sender bug"))  # type: ignore[method-assign]
    run = Run(worker).start()
    assert_died(run, "result-sender")
    assert_redone(aws, stack)


def test_a_supervisor_loop_that_dies_releases_the_running_job_and_exits(
    aws: Clients, stack: dict[str, str], blocking: Blocking
) -> None:
    start(aws.sfn, stack["state_machine_arn"], [{"n": 0}])
    worker = Worker(aws.sqs, aws.sfn, settings(stack), PythonRunner(blocking))
    run = Run(worker).start()
    blocking.wait_started()
    worker.supervisor._enforce_deadlines = boom(KeyError("supervisor bug"))  # type: ignore[method-assign]
    assert_died(run, "supervisor")
    blocking.release.set()
    assert_redone(aws, stack)


def test_a_health_server_that_dies_releases_the_running_job_and_exits(
    aws: Clients, stack: dict[str, str], blocking: Blocking
) -> None:
    """With no health server left to ask, the status still says why (and the exit code)."""
    start(aws.sfn, stack["state_machine_arn"], [{"n": 0}])
    worker = Worker(aws.sqs, aws.sfn, settings(stack), PythonRunner(blocking))
    run = Run(worker, probe=False).start()
    blocking.wait_started()
    assert eventually(lambda: run.service.health is not None, timeout_s=5)
    assert run.service.health is not None
    server = run.service.health._server
    server.service_actions = boom(OSError("selector broke"))  # type: ignore[method-assign]
    assert_died(run, "health-server", health=False)
    blocking.release.set()
    assert_redone(aws, stack)


class Autoscaling:
    """Answers the lifecycle calls; records them."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def record_lifecycle_action_heartbeat(self, **_: Any) -> None:
        self.calls.append("heartbeat")

    def complete_lifecycle_action(self, **_: Any) -> None:
        self.calls.append("complete")


@pytest.fixture
def imds() -> Iterator[InstanceMetadataServer]:
    with InstanceMetadataServer(StaticInstance("i-0123456789abcdef0")) as server:
        yield server


def on_ec2(
    worker: Worker, imds: InstanceMetadataServer, autoscaling: Autoscaling
) -> tuple[Run, InstanceHandling]:
    """The worker with its instance handling, as ``compose`` builds it, polling every 0.1 s."""
    instance = InstanceSettings(
        "on", metadata_endpoint=imds.endpoint, group_name="workers", hook_name="drain"
    )
    handling = InstanceHandling(worker, autoscaling, instance)
    handling.watcher.poll_s = 0.1
    handling.start()
    run = Run(worker)
    run.service.on_stopped.insert(0, handling.stop)
    return run, handling


def test_an_instance_watcher_that_dies_releases_and_exits(
    aws: Clients, stack: dict[str, str], blocking: Blocking, imds: InstanceMetadataServer
) -> None:
    start(aws.sfn, stack["state_machine_arn"], [{"n": 0}])
    worker = Worker(aws.sqs, aws.sfn, settings(stack), PythonRunner(blocking))
    run, handling = on_ec2(worker, imds, Autoscaling())
    run.start()
    blocking.wait_started()  # the job runs: its message must be released
    handling.watcher.poll = boom(AttributeError("watcher bug"))  # type: ignore[method-assign]
    assert_died(run, "instance-watcher")
    blocking.release.set()
    assert_redone(aws, stack)


@pytest.mark.slow  # over 3.3 s: the full suite (make test stays under 3 minutes)
def test_an_unreadable_spot_notice_drains_instead_of_killing_the_watcher(
    aws: Clients, stack: dict[str, str], blocking: Blocking, imds: InstanceMetadataServer
) -> None:
    """A notice whose time is a number once killed the watcher thread (AttributeError): a notice
    that is there is a notice, whatever its shape; the usual two minutes are assumed."""
    start(aws.sfn, stack["state_machine_arn"], [{"n": 0}])
    worker = Worker(aws.sqs, aws.sfn, settings(stack), PythonRunner(blocking))
    run, handling = on_ec2(worker, imds, Autoscaling())
    run.start()
    blocking.wait_started()
    imds.spot_notice = {"action": "terminate", "time": 1_700_000_000}  # type: ignore[dict-item]
    assert eventually(lambda: handling.watcher.spot_seconds_left is not None, timeout_s=5)
    assert handling.watcher.spot_seconds_left == SPOT_WARNING_S
    assert worker.stopping and worker.failure is None
    blocking.release.set()


@pytest.mark.slow  # over 3.3 s: the full suite (make test stays under 3 minutes)
def test_lifecycle_heartbeats_that_die_release_the_running_job_and_exit(
    aws: Clients, stack: dict[str, str], blocking: Blocking, imds: InstanceMetadataServer
) -> None:
    """Died while draining for a termination: the jobs go back at once, the lifecycle action
    is still completed so the termination proceeds."""
    start(aws.sfn, stack["state_machine_arn"], [{"n": 0}])
    worker = Worker(aws.sqs, aws.sfn, settings(stack), PythonRunner(blocking))
    autoscaling = Autoscaling()
    run, handling = on_ec2(worker, imds, autoscaling)
    assert handling.action is not None
    handling.action.heartbeat = boom(RuntimeError("lifecycle bug"))  # type: ignore[method-assign]
    run.start()
    blocking.wait_started()
    began = time.monotonic()
    imds.announce_termination()
    assert_died(run, "lifecycle-heartbeat")
    assert time.monotonic() - began < EXIT_WITHIN_S
    assert autoscaling.calls[-1:] == ["complete"]
    blocking.release.set()
    assert_redone(aws, stack)
