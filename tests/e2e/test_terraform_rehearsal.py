"""The deployment rehearsal (``callback-bridge local deploy``, bridge/local_stack/deploy.py):
``terraform apply`` of infra/examples/complete onto the embedded stack, jobs through what
Terraform created, an empty second plan, and a destroy that leaves no bridge resource behind.

Needs a ``terraform`` binary and a provider mirror holding hashicorp/aws (``TF_PLUGIN_DIR`` or
``/opt/tf-plugins``, as tests/infra finds it); skipped with one line otherwise. 303 s on 2
shared cores (``.venv/bin/pytest tests/e2e/test_terraform_rehearsal.py``): the provider waits
about 25 s for each queue's attributes to settle and about 55 s for each bucket's lifecycle
rules, on apply and again on destroy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.local_stack import LocalStack
from bridge.local_stack.deploy import (
    LAMBDA_ZIP,
    Rehearsal,
    build_lambda_zip,
    default_network,
    provider_mirror,
)
from tests.support.polling import eventually, wait_for_execution
from tests.support.stack import e2e_settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NAME = "cbtf"
JOBS = 20


@pytest.fixture(scope="module")
def tools() -> tuple[str, Path]:
    terraform, mirror = shutil.which("terraform"), provider_mirror()
    if not terraform or not mirror:
        pytest.skip("needs a terraform binary and a provider mirror (TF_PLUGIN_DIR)")
    # What `local deploy` does too: build the zip when it is missing (a clean clone, CI).
    build_lambda_zip(LAMBDA_ZIP, print)
    return terraform, mirror


@pytest.fixture
def applied(
    tools: tuple[str, Path], tmp_path: Path
) -> Iterator[tuple[LocalStack, Rehearsal, dict[str, Any]]]:
    terraform, mirror = tools
    log = (tmp_path / "terraform.log").open("w")
    with LocalStack(e2e_settings(), state_file=tmp_path / "local.json") as stack:
        assert stack.config and stack.clients
        run = Rehearsal(
            stack.config,
            workdir=tmp_path / "deploy",
            name=NAME,
            terraform=terraform,
            mirror=mirror,
            out=log,
        )
        from bridge.aws import build_clients

        vpc_id, subnet_ids = default_network(
            build_clients(stack.config, autoscaling=False, ec2=True).ec2
        )
        run.write_files(subnet_ids, vpc_id)
        run.init()
        outputs = run.apply()
        yield stack, run, outputs
    log.close()


def worker_environment(outputs: dict[str, Any], stack: LocalStack) -> dict[str, str]:
    assert stack.config
    return {
        **os.environ,
        **outputs["bridge_environment"]["value"],
        "AWS_ENDPOINT_URL": str(stack.config.endpoint_url),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


@pytest.mark.timeout(900)
def test_the_complete_example_applies_runs_jobs_plans_empty_and_destroys(
    applied: tuple[LocalStack, Rehearsal, dict[str, Any]], tmp_path: Path
) -> None:
    stack, run, outputs = applied
    assert stack.clients
    sfn, sqs = stack.clients.sfn, stack.clients.sqs
    machine = outputs["state_machine_arn"]["value"]
    assert machine.endswith(f":stateMachine:{NAME}")
    assert json.loads((run.workdir / "outputs.json").read_text()) == outputs

    # A second plan, run as a user would (no arguments): nothing to change.
    plan = subprocess.run(
        [run.terraform, "plan", "-detailed-exitcode", "-no-color", "-input=false"],
        cwd=run.workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-2000:]

    # The instance metadata follows the Terraform-made group: a worker started from its outputs
    # sees that group's instance (and the state file names it for `local env` / `announce`).
    group = outputs["autoscaling_group_name"]["value"]
    assert eventually(lambda: stack.config is not None and stack.config.asg_name == group, 10)
    assert stack.imds is not None
    assert stack.imds.metadata("autoscaling/target-lifecycle-state") == "InService"
    assert json.loads((tmp_path / "local.json").read_text())["asg_name"] == group

    # A dead-lettered job fails its task with Bridge.DeadLettered, through the dead-letter
    # function's mapping on the Terraform-made jobs DLQ (moved by hand, as the redrive would).
    lost = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"jobs": [{"n": 0}]}))
    jobs_url, dlq_url = outputs["jobs_queue_url"]["value"], outputs["jobs_dlq_url"]["value"]
    messages: list[dict[str, Any]] = []
    for _ in range(20):
        messages = sqs.receive_message(QueueUrl=jobs_url, WaitTimeSeconds=1).get("Messages", [])
        if messages:
            break
    assert len(messages) == 1
    sqs.send_message(QueueUrl=dlq_url, MessageBody=messages[0]["Body"])
    sqs.delete_message(QueueUrl=jobs_url, ReceiptHandle=messages[0]["ReceiptHandle"])
    ended = wait_for_execution(sfn, lost["executionArn"], timeout_s=60)
    assert ended["status"] == "SUCCEEDED"  # failure_policy "report": failures are data
    assert [entry.get("error") for entry in json.loads(ended["output"])] == ["Bridge.DeadLettered"]

    # Jobs through the Terraform-made queues, with a worker configured from the outputs.
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bridge.cli.main",
            "worker",
            "--handler",
            "consumers.demo_handler:work",
            "--concurrency",
            "4",
            "--wait-seconds",
            "1",
        ],
        env=worker_environment(outputs, stack),
        stdout=(tmp_path / "worker.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        jobs = [{"n": n, "sleep_ms": 10} for n in range(JOBS)]
        started = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"jobs": jobs}))
        done = wait_for_execution(sfn, started["executionArn"], timeout_s=120)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    assert done["status"] == "SUCCEEDED", (tmp_path / "worker.log").read_text()[-3000:]
    results = json.loads(done["output"])
    assert sorted(entry["output"]["n"] for entry in results) == list(range(JOBS))

    # Destroy leaves nothing of the deployment behind.
    run.run("destroy", "-auto-approve", "-input=false", "-no-color")
    left = sqs.list_queues(QueueNamePrefix=NAME).get("QueueUrls", [])
    assert left == []
    assert not [m for m in sfn.list_state_machines()["stateMachines"] if m["name"] == NAME]
    # ... and the instance metadata is the stack's own again.
    assert eventually(lambda: stack.config is not None and stack.config.asg_name != group, 10)
