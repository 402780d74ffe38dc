"""The worker's flags: each has an environment variable, the README documents exactly them, and
invalid settings are refused in one line naming the setting, with exit code 2, before anything
is received."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from bridge.cli import worker as worker_cli
from bridge.cli.main import app
from consumers.settings import ServiceSettings

README = Path(__file__).resolve().parents[2] / "README.md"
QUEUES = [
    "--jobs-queue-url",
    "http://127.0.0.1:1/123456789012/jobs",
    "--results-queue-url",
    "http://127.0.0.1:1/123456789012/results",
    "--endpoint-url",
    "http://127.0.0.1:1",
]


def worker_params() -> list[Any]:
    command = typer.main.get_command(app)
    worker = command.commands["worker"]  # type: ignore[attr-defined]
    options = [p for p in worker.params if p.param_type_name == "option"]
    assert len(options) > 20  # the list itself is what the tests below check
    return options


START, END = "<!-- worker-flags:start -->", "<!-- worker-flags:end -->"


def render_table() -> str:
    """The README's worker flag table, generated from the command's own options."""
    lines = [START, "| flag | environment | default | meaning |", "|---|---|---|---|"]
    for p in worker_params():
        if p.hidden:
            continue
        env = f"`{p.envvar}`" if isinstance(p.envvar, str) else "—"
        default = "" if p.default is None or callable(p.default) else f"`{p.default}`"
        meaning = (p.help or "").replace("|", "\\|")
        lines.append(f"| `{p.opts[0]}` | {env} | {default} | {meaning} |")
    return "\n".join([*lines, END])


def test_every_worker_flag_has_an_environment_variable() -> None:
    missing = [p.opts[0] for p in worker_params() if not p.envvar and not p.hidden]
    # Region and endpoint come from AWS's own variables (AWS_REGION, AWS_ENDPOINT_URL).
    assert set(missing) <= {"--region", "--endpoint-url"}


def test_the_readme_documents_exactly_the_worker_flags() -> None:
    text = README.read_text()
    documented = text[text.index(START) : text.index(END) + len(END)]
    assert documented == render_table(), (
        "regenerate the table: .venv/bin/python -m tests.unit.test_worker_cli --write-readme"
    )


def refused(*args: str) -> str:
    result = CliRunner().invoke(app, ["worker", *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--concurrency", "0"], "--concurrency"),
        (["--wait-seconds", "25"], "--wait-seconds"),
        (["--delete-window", "61"], "--delete-window"),
        (["--delete-window", "-1"], "--delete-window"),
        (["--job-timeouts", "render"], "--job-timeouts"),
        (["--isolation", "fork"], "--isolation"),
        (["--log-level", "LOUD"], "log level"),
        (["--token-path", "$..token[0]"], "--token-path"),
    ],
)
def test_bad_settings_are_refused_in_one_line(args: list[str], named: str) -> None:
    line = refused("--handler", "consumers.demo_handler:work", *args, *QUEUES)
    assert named in line


def test_an_unknown_handler_is_refused() -> None:
    assert "no_such_module" in refused("--handler", "no_such_module:run", *QUEUES)


def test_a_command_whose_program_does_not_exist_is_refused() -> None:
    assert "no-such-program" in refused("--command", "no-such-program --flag", *QUEUES)


def test_a_queue_that_does_not_answer_is_refused() -> None:
    line = refused("--handler", "consumers.demo_handler:work", *QUEUES)
    assert "jobs queue" in line and "does not answer" in line


def test_the_example_environment_file_names_every_variable() -> None:
    example = (README.parent / "consumers" / "systemd" / "worker.env.example").read_text()
    named = set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    expected = {p.envvar for p in worker_params() if isinstance(p.envvar, str) and not p.hidden}
    assert expected - named == set()


def test_the_service_settings_hold_every_flag_with_the_same_default() -> None:
    """The CLI maps flags onto ServiceSettings by name: the two lists cannot drift apart."""
    params = {p.name: p for p in worker_params()}
    fields = {f.name: f for f in dataclasses.fields(ServiceSettings)}
    assert set(fields) == set(params) - set(worker_cli.WHERE) - {"log_level", "log_format"}
    for name, f in fields.items():
        assert f.default == params[name].default, name


def test_flags_and_environment_reach_the_composition_root(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[ServiceSettings] = []

    def build_service(settings: ServiceSettings, connect: Any) -> Any:
        built.append(settings)
        raise ValueError("composition root reached")

    monkeypatch.setattr(worker_cli, "build_service", build_service)
    monkeypatch.setenv("BRIDGE_DRAIN_TIMEOUT", "77")
    args = ["--command", "cat", "--concurrency", "9", "--job-timeouts", "render=60"]
    assert refused(*args, "--scale-in-protection", *QUEUES) == "error: composition root reached"
    assert built == [
        ServiceSettings(
            command="cat",
            concurrency=9,
            job_timeouts="render=60",
            scale_in_protection=True,
            drain_timeout=77,
        )
    ]


if __name__ == "__main__":  # regenerate the README table
    import sys

    if "--write-readme" in sys.argv:
        text = README.read_text()
        head, rest = text.split(START, 1)
        README.write_text(head + render_table() + rest.split(END, 1)[1])
    else:
        print(render_table())
