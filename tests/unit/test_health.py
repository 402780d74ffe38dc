"""The health endpoint answers the worker's state over real HTTP on loopback."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from consumers.health import HealthServer
from tests.support.polling import eventually


class State:
    def __init__(self) -> None:
        self.state = "ready"
        self.running = 0

    def __call__(self) -> dict[str, Any]:
        return {"state": self.state, "running": self.running, "worker_id": "host:1"}


@pytest.fixture
def state() -> State:
    return State()


@pytest.fixture
def server(state: State) -> Iterator[HealthServer]:
    with HealthServer(0, state) as running:
        yield running


def get(url: str, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_ready_answers_200_with_the_status(server: HealthServer, state: State) -> None:
    state.running = 3
    assert server.port > 0
    code, body = get(server.url)
    assert code == 200
    assert json.loads(body) == {"state": "ready", "running": 3, "worker_id": "host:1"}
    assert get(f"http://127.0.0.1:{server.port}/")[0] == 200
    assert get(f"http://127.0.0.1:{server.port}/health?verbose=1")[0] == 200


@pytest.mark.parametrize("not_ready", ["draining", "stopping", "starting"])
def test_not_ready_answers_503(server: HealthServer, state: State, not_ready: str) -> None:
    state.state, state.running = not_ready, 2
    code, body = get(server.url)
    assert code == 503
    assert json.loads(body)["running"] == 2


def test_head_and_unknown_paths(server: HealthServer) -> None:
    assert get(server.url, method="HEAD") == (200, "")
    code, body = get(f"http://127.0.0.1:{server.port}/metrics")
    assert code == 404
    assert "/metrics" in json.loads(body)["error"]


def test_a_failing_status_answers_500_without_a_traceback() -> None:
    def broken() -> dict[str, Any]:
        raise KeyError("boom")

    with HealthServer(0, broken) as server:
        code, body = get(server.url)
    assert code == 500
    assert json.loads(body) == {"state": "unknown", "error": "KeyError"}


def test_probes_leave_stderr_quiet(capfd: pytest.CaptureFixture[str], state: State) -> None:
    with HealthServer(0, state) as server:
        for _ in range(3):
            get(server.url)
    assert capfd.readouterr().err == ""


def test_non_loopback_hosts_are_refused_unless_allowed(state: State) -> None:
    with pytest.raises(ValueError, match=r"'0\.0\.0\.0' is not a loopback"):
        HealthServer(0, state, host="0.0.0.0")
    allowed = HealthServer(0, state, host="0.0.0.0", allow_non_loopback=True)
    allowed.stop()


def test_a_taken_port_fails_at_construction(server: HealthServer, state: State) -> None:
    with pytest.raises(OSError, match=f"127.0.0.1:{server.port}"):
        HealthServer(server.port, state)


def test_stop_releases_the_port(state: State) -> None:
    first = HealthServer(0, state).start()
    port = first.port
    first.stop()
    second = HealthServer(port, state).start()
    try:
        assert get(second.url)[0] == 200
    finally:
        second.stop()


def test_unhealthy_answers_503_with_the_reason(server: HealthServer, state: State) -> None:
    """What a worker whose internal thread died serves until it exits."""

    def unhealthy() -> dict[str, Any]:
        return {"state": "unhealthy", "reason": "thread receiver died: RecursionError"}

    server._server.status = unhealthy  # type: ignore[attr-defined]
    code, body = get(server.url)
    assert code == 503
    assert json.loads(body)["reason"] == "thread receiver died: RecursionError"


def test_a_serving_thread_that_dies_is_reported(state: State) -> None:
    deaths: list[tuple[str, BaseException]] = []
    server = HealthServer(0, state, on_death=lambda name, exc: deaths.append((name, exc)))
    fault = OSError("selector broke")

    def broken() -> None:
        raise fault

    server._server.service_actions = broken  # type: ignore[method-assign]
    server.start()
    try:
        assert eventually(lambda: deaths, timeout_s=5)
    finally:
        server.stop()  # returns although the thread is gone
    assert deaths == [("health-server", fault)]
