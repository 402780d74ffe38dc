"""``callback-bridge dlq`` and ``callback-bridge status`` as a user runs them: real processes
against the embedded stack (its state file, or Terraform outputs plus an endpoint)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bridge.contract import ERROR_DEAD_LETTERED, parse_job
from bridge.local_stack import LocalStack, StackSettings, compat
from bridge.ops.inspect.peek import peek
from tests.support.polling import eventually, visible, wait_for_execution

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "bridge.cli.main"]


@pytest.fixture
def quiet_stack(tmp_path: Path, stack_settings: StackSettings) -> Iterator[LocalStack]:
    """Dead-letter handling off (teams that redrive instead): dead letters stay in the DLQ."""
    settings = replace(stack_settings, dead_letter_handling=False, jobs_max_receive_count=10)
    with LocalStack(settings, state_file=tmp_path / "quiet.json") as running:
        yield running


def cli(stack: LocalStack | None, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    state = ["--state-file", str(stack.state_file)] if stack else []
    return subprocess.run(
        [*CLI, *args, *state], capture_output=True, text=True, timeout=60, **kwargs
    )


def clients(stack: LocalStack) -> Any:
    assert stack.clients is not None
    return stack.clients


def urls(stack: LocalStack) -> Any:
    assert stack.config is not None
    return stack.config


def bodies(stack: LocalStack, url: str) -> Counter[str]:
    return Counter(m["Body"] for m in peek(clients(stack).sqs, url).messages.values())


def start(stack: LocalStack, jobs: list[Any], name: str) -> str:
    return str(
        clients(stack).sfn.start_execution(
            stateMachineArn=urls(stack).state_machine_arn,
            name=name,
            input=json.dumps({"jobs": jobs}),
        )["executionArn"]
    )


def dead_letter_jobs(stack: LocalStack, count: int) -> None:
    """Receive the jobs without deleting them until the redrive policy moves all of them."""
    sqs, jobs_url = clients(stack).sqs, urls(stack).jobs_queue_url
    assert eventually(lambda: visible(sqs, jobs_url) == count)
    for _ in range(40):
        sqs.receive_message(
            QueueUrl=jobs_url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
        )
        if visible(sqs, jobs_url) == 0:
            return
    raise AssertionError("the jobs never reached the DLQ")


def seed(stack: LocalStack, url: str, count: int) -> Counter[str]:
    for first in range(0, count, 10):
        entries = [
            {"Id": str(i), "MessageBody": json.dumps({"n": i})}
            for i in range(first, min(first + 10, count))
        ]
        clients(stack).sqs.send_message_batch(QueueUrl=url, Entries=entries)
    return Counter(json.dumps({"n": i}) for i in range(count))


# --- list / show / fail ---------------------------------------------------------------------


@pytest.mark.slow
def test_dlq_list_json_shows_exactly_the_archived_dead_letters(stack: LocalStack) -> None:
    execution = start(stack, [{"n": 0}, {"n": 1}, {"n": 2, "type": "render"}], "gone")
    dead_letter_jobs(stack, 3)
    sqs, config = clients(stack).sqs, urls(stack)
    assert eventually(lambda: visible(sqs, config.jobs_archive_url) == 3)
    wait_for_execution(clients(stack).sfn, execution)  # every task told Bridge.DeadLettered
    there = set(peek(sqs, config.jobs_archive_url).messages)

    done = cli(stack, "dlq", "list", "--json")

    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)  # nothing but the document on stdout
    assert {letter["message_id"] for letter in listed} == there
    assert visible(sqs, config.jobs_archive_url) == 3  # a peek consumes nothing
    for letter in listed:
        assert letter["queue"] == "callback-bridge-jobs-dead-letters"
        assert letter["execution_name"] == "gone" and letter["execution_arn"] == execution
        assert letter["reason_source"] == "attribute"
        assert "maxReceiveCount" in letter["reason"]
        assert ERROR_DEAD_LETTERED in letter["task_state"]
        assert letter["task_waiting"] is False
    assert sorted(letter["job_type"] for letter in listed) == ["default", "default", "render"]

    table = cli(stack, "dlq", "list", "--queue", "jobs")
    assert table.returncode == 0 and "3 dead letter(s)" in table.stdout


@pytest.mark.slow  # over 3.3 s: the full suite (make test stays under 3 minutes)
def test_dlq_show_then_fail_ends_a_waiting_task(quiet_stack: LocalStack) -> None:
    execution = start(quiet_stack, [{"n": 7}], "stuck")
    dead_letter_jobs(quiet_stack, 1)
    dlq = urls(quiet_stack).jobs_dlq_url
    ((message_id, message),) = peek(clients(quiet_stack).sqs, dlq).messages.items()
    token = parse_job(message["Body"]).token

    shown = cli(quiet_stack, "dlq", "show", message_id, "--json")

    assert shown.returncode == 0, shown.stderr
    assert token not in shown.stdout  # masked everywhere, history events included
    detail = json.loads(shown.stdout)
    assert detail["job_input"] == {"n": 7} and detail["execution"]["status"] == "RUNNING"
    assert detail["task_waiting"] is True

    failed = cli(quiet_stack, "dlq", "fail", message_id, "--json")

    assert failed.returncode == 0, failed.stderr
    assert json.loads(failed.stdout)["failed"] == [message_id]
    assert visible(clients(quiet_stack).sqs, dlq) == 0
    output = json.loads(wait_for_execution(clients(quiet_stack).sfn, execution)["output"])
    assert output[0]["error"] == ERROR_DEAD_LETTERED and "stuck/RunJob/0/0" in output[0]["cause"]


@pytest.mark.slow
def test_dlq_show_prints_history_details_whole(quiet_stack: LocalStack) -> None:
    """Details longer than 500 characters were clipped: now each event's details are whole
    JSON on one line, piped (no terminal) at 80 columns."""
    pad = "p" * 700
    start(quiet_stack, [{"n": 8, "pad": pad}], "padded")
    dead_letter_jobs(quiet_stack, 1)
    ((message_id, _),) = peek(
        clients(quiet_stack).sqs, urls(quiet_stack).jobs_dlq_url
    ).messages.items()

    plain = cli(quiet_stack, "dlq", "show", message_id, env={**os.environ, "COLUMNS": "80"})

    assert plain.returncode == 0, plain.stderr
    events = plain.stdout.split("--- last ")[1].splitlines()[1:]
    details = [json.loads(line.split("  ", 3)[3]) for line in events]  # whole: they parse
    assert any(pad in json.dumps(detail) for detail in details), events
    assert "TaskScheduled" in plain.stdout


@pytest.mark.slow
def test_dlq_show_finds_a_letter_by_every_id_its_execution_names(stack: LocalStack) -> None:
    """The cause names the job id and the message id first logged; the archived copy has an
    id of its own; the execution's name and ARN list its dead letters."""
    execution = start(stack, [{"n": 5}], "found")
    dead_letter_jobs(stack, 1)
    output = json.loads(wait_for_execution(clients(stack).sfn, execution)["output"])
    cause = output[0]["cause"]
    named = re.search(r"message (\S+) is kept in", cause)
    assert named and "callback-bridge dlq show found/RunJob/0/0" in cause, cause
    (archived,) = peek(clients(stack).sqs, urls(stack).jobs_archive_url).messages
    assert archived != named[1]

    for given in (named[1], "found/RunJob/0/0", archived):
        shown = cli(stack, "dlq", "show", given, "--json")
        assert shown.returncode == 0, (given, shown.stderr)
        document = json.loads(shown.stdout)
        assert document["message_id"] == archived and document["job_input"] == {"n": 5}
    for given in ("found", execution):
        shown = cli(stack, "dlq", "show", given, "--json")
        assert shown.returncode == 0, (given, shown.stderr)
        assert [letter["message_id"] for letter in json.loads(shown.stdout)] == [archived]
    plain = cli(stack, "dlq", "show", "found", env={**os.environ, "COLUMNS": "80"})
    assert f"  execution  {execution}\n" in plain.stdout  # whole, on one line
    assert f"  message    {archived}\n" in plain.stdout


# --- redrive --------------------------------------------------------------------------------


@pytest.mark.slow
def test_one_letter_is_deleted_and_closed_ones_are_not_redriven(stack: LocalStack) -> None:
    """Dead-letter handling on (the default): the handler failed both tasks before archiving,
    so redriving would run nothing; the commands say what to do instead."""
    execution = start(stack, [{"n": 0}, {"n": 1}], "two")
    dead_letter_jobs(stack, 2)
    sqs, archive = clients(stack).sqs, urls(stack).jobs_archive_url
    assert eventually(lambda: visible(sqs, archive) == 2)
    wait_for_execution(clients(stack).sfn, execution)

    one = cli(stack, "dlq", "redrive", "two/RunJob/0/0")
    every = cli(stack, "dlq", "redrive", "--json")
    failing = cli(stack, "dlq", "fail", "two/RunJob/0/0")
    unconfirmed = cli(stack, "dlq", "delete", "two/RunJob/1/0")
    deleted = cli(stack, "dlq", "delete", "two/RunJob/1/0", "--yes")

    assert one.returncode == 1 and one.stdout.startswith("skipped "), one
    assert "callback-bridge rerun two/RunJob/0/0" in one.stdout
    assert every.returncode == 1, every.stderr
    outcomes = json.loads(every.stdout)
    assert outcomes["queues"] == [] and {o["action"] for o in outcomes["letters"]} == {"skipped"}
    assert failing.returncode == 1 and "task already closed" in failing.stderr
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    assert deleted.returncode == 0, deleted.stderr
    (line,) = deleted.stdout.splitlines()
    (left,) = peek(sqs, archive).messages.values()
    assert json.loads(left["Body"])["job_id"] == "two/RunJob/0/0"
    assert line.startswith("deleted ") and line != f"deleted {left['MessageId']}"
    assert visible(sqs, urls(stack).jobs_queue_url) == 0  # nothing was redriven


@pytest.mark.slow
def test_dlq_redrive_by_move_task_reports_counts(quiet_stack: LocalStack) -> None:
    config = urls(quiet_stack)
    sent = seed(quiet_stack, config.jobs_dlq_url, 12)

    done = cli(quiet_stack, "dlq", "redrive", "--queue", "jobs", "--force", "--json")

    assert done.returncode == 0, done.stderr
    (report,) = json.loads(done.stdout)["queues"]
    assert (report["method"], report["moved"], report["status"]) == ("move task", 12, "COMPLETED")
    assert bodies(quiet_stack, config.jobs_queue_url) == sent


@pytest.mark.slow
def test_dlq_redrive_copies_where_the_endpoint_has_no_move_task(
    tmp_path: Path, stack_settings: StackSettings
) -> None:
    settings = replace(stack_settings, dead_letter_handling=False)
    # Every patch but the move tasks (moto as shipped lacks them); the template needs others.
    compat.apply([p for p in compat.registry() if p.name != "sqs-message-move-tasks"])
    try:
        with LocalStack(settings, state_file=tmp_path / "moto.json", patched=False) as no_move:
            sent = seed(no_move, urls(no_move).jobs_dlq_url, 3)

            done = cli(no_move, "dlq", "redrive", "--queue", "jobs", "--force", "--json")

            assert done.returncode == 0, done.stderr
            (report,) = json.loads(done.stdout)["queues"]
            assert (report["method"], report["moved"], report["status"]) == (
                "copy",
                3,
                "COMPLETED",
            )
            assert "StartMessageMoveTask unavailable" in report["note"]
            assert bodies(no_move, urls(no_move).jobs_queue_url) == sent
    finally:
        compat.revert()


@pytest.mark.slow
def test_an_interrupted_copy_redrive_loses_and_duplicates_nothing(quiet_stack: LocalStack) -> None:
    config = urls(quiet_stack)
    sqs = clients(quiet_stack).sqs
    sent = seed(quiet_stack, config.jobs_dlq_url, 40)
    command = [*CLI, "dlq", "redrive", "--queue", "jobs", "--method", "copy", "--force"]
    command += ["--max-per-second", "10", "--json", "--state-file", str(quiet_stack.state_file)]
    running = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert eventually(lambda: visible(sqs, config.jobs_queue_url) >= 10, timeout_s=30)
        running.send_signal(signal.SIGTERM)
        out, err = running.communicate(timeout=30)
    finally:
        if running.poll() is None:
            running.kill()
    (report,) = json.loads(out)["queues"]
    assert running.returncode == 1, err
    assert report["status"] == "STOPPED" and 10 <= report["moved"] < 40
    moved, left = (
        bodies(quiet_stack, config.jobs_queue_url),
        bodies(quiet_stack, config.jobs_dlq_url),
    )
    assert sum(moved.values()) == report["moved"]
    assert moved + left == sent and max((moved + left).values()) == 1

    again = cli(
        quiet_stack, "dlq", "redrive", "--queue", "jobs", "--method", "copy", "--force", "--json"
    )

    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["queues"][0]["moved"] == 40 - report["moved"]
    assert bodies(quiet_stack, config.jobs_queue_url) == sent
    assert visible(sqs, config.jobs_dlq_url) == 0


@pytest.mark.slow
def test_dlq_purge_needs_yes_then_empties(quiet_stack: LocalStack) -> None:
    seed(quiet_stack, urls(quiet_stack).jobs_dlq_url, 3)

    refused = cli(quiet_stack, "dlq", "purge")
    purged = cli(quiet_stack, "dlq", "purge", "--yes", "--queue", "jobs", "--json")

    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert purged.returncode == 0 and json.loads(purged.stdout) == {"callback-bridge-jobs-dlq": 3}
    assert eventually(
        lambda: visible(clients(quiet_stack).sqs, urls(quiet_stack).jobs_dlq_url) == 0
    )


# --- status ---------------------------------------------------------------------------------


@pytest.mark.slow  # over 3.3 s: the full suite (make test stays under 3 minutes)
def test_status_json_and_table_show_queues_and_running_executions(stack: LocalStack) -> None:
    execution = start(stack, [{"n": 0}, {"n": 1}], "busy")
    assert eventually(lambda: visible(clients(stack).sqs, urls(stack).jobs_queue_url) == 2)

    done = cli(stack, "status", "--json")
    table = cli(stack, "status")

    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    queues = {queue["label"]: queue for queue in status["queues"]}
    assert queues["jobs"]["visible"] == 2 and queues["jobs archive"]["age_source"] == "peek"
    (run,) = status["executions"]
    assert run["arn"] == execution and (run["jobs"]["total"], run["jobs"]["running"]) == (2, 2)
    assert status["consumers"] is None
    assert table.returncode == 0 and "running executions" in table.stdout and "busy" in table.stdout


@pytest.mark.slow
def test_status_watch_refreshes_until_interrupted(stack: LocalStack) -> None:
    command = [
        *CLI,
        "status",
        "--watch",
        "--interval",
        "0.5",
        "--state-file",
        str(stack.state_file),
    ]
    watching = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    watching.send_signal(signal.SIGINT)
    out, err = watching.communicate(timeout=30)
    assert watching.returncode == 0, err
    assert "callback-bridge-jobs" in out and "Traceback" not in err
    # Off a terminal (a pipe here) every refresh is printed, one picture after another.
    assert out.count("queues at ") >= 2, out


@pytest.mark.slow
def test_status_watch_json_streams_a_json_line_per_refresh(stack: LocalStack) -> None:
    done = cli(stack, "status", "--watch", "--json", "--interval", "0.5", "--count", "3")
    assert done.returncode == 0, done.stderr
    documents = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(documents) == 3
    assert all(d["queues"][0]["label"] == "jobs" for d in documents)
    assert documents[0]["taken_at"] <= documents[-1]["taken_at"]


@pytest.mark.slow
def test_status_watch_interrupted_before_its_first_table_exits_cleanly(
    stack: LocalStack, tmp_path: Path
) -> None:
    """Ctrl-C while the first snapshot is still being collected (here: an endpoint that
    accepts the connection and never answers) ends --watch as quietly as later."""
    assert stack.state_file is not None
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        state = json.loads(stack.state_file.read_text())
        state["endpoint_url"] = f"http://127.0.0.1:{silent.getsockname()[1]}"
        state_file = tmp_path / "silent.json"
        state_file.write_text(json.dumps(state))
        command = [*CLI, "status", "--watch", "--state-file", str(state_file)]
        watching = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        silent.settimeout(60)
        connection, _ = silent.accept()  # the first snapshot's first request is on its way
        with connection:
            watching.send_signal(signal.SIGINT)
            _, err = watching.communicate(timeout=30)
    assert watching.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


@pytest.mark.slow
def test_terraform_outputs_and_an_endpoint_give_the_same_listing(
    stack: LocalStack, tmp_path: Path
) -> None:
    config = urls(stack)
    outputs = {
        name: {"sensitive": False, "type": "string", "value": getattr(config, name)}
        for name in ("jobs_queue_url", "results_queue_url", "jobs_dlq_url", "results_dlq_url")
    }
    outputs["jobs_archive_url"] = {"value": config.jobs_archive_url}
    outputs["state_machine_arn"] = {"value": config.state_machine_arn}
    outputs["region"] = {"value": config.region}
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    seed(stack, config.jobs_archive_url, 2)
    env = {**os.environ, "AWS_ENDPOINT_URL": config.endpoint_url or ""}

    by_state = cli(stack, "dlq", "list", "--json")
    by_outputs = cli(None, "dlq", "list", "--json", "--tf-outputs", str(path), env=env)

    assert by_outputs.returncode == 0, by_outputs.stderr
    ids = [
        {letter["message_id"] for letter in json.loads(run.stdout)}
        for run in (by_state, by_outputs)
    ]
    assert ids[0] == ids[1] and len(ids[0]) == 2


# --- bad input ------------------------------------------------------------------------------


def one_error_line(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("dlq", "list", "--queue", "dlq"), ("unknown queue 'dlq'", "jobs, results or all")),
        (("dlq", "show", "no-such-id"), ("no dead letter with message id 'no-such-id'",)),
        (("dlq", "fail", "no-such-id"), ("no dead letter with message id 'no-such-id'",)),
        (("dlq", "show", "nobody/RunJob/0/0"), ("job 'nobody/RunJob/0/0' has no dead letter",)),
        (("dlq", "fail"), ("--all",)),
        (("dlq", "purge", "--yes", "m-1"), ("callback-bridge dlq delete m-1 --yes",)),
        (("dlq", "delete"), ("give one or more ids",)),
        (("dlq", "redrive", "--method", "teleport"), ("unknown method",)),
        (("dlq", "list", "--endpoint-url", "http://127.0.0.1:9"), ("cannot reach AWS",)),
        (("status", "--count", "2"), ("add --watch",)),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    quiet_stack: LocalStack, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    one_error_line(cli(quiet_stack, *args), *words)


def test_a_missing_state_file_or_no_credentials_is_one_line(tmp_path: Path) -> None:
    one_error_line(
        cli(None, "dlq", "list", "--state-file", str(tmp_path / "none.json")), "does not exist"
    )
    bare = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BRIDGE_"))}
    bare.update(
        AWS_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
        BRIDGE_JOBS_DLQ_URL="https://sqs.us-east-1.amazonaws.com/123456789012/x-jobs-dlq",
    )
    one_error_line(cli(None, "status", env=bare, cwd=tmp_path), "no AWS credentials")
