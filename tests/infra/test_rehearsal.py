"""The files ``callback-bridge local deploy`` writes (bridge/local_stack/deploy.py), checked
without terraform: the provider override covers every service the Terraform calls, the copied
example points back at infra/modules, and the variables it sets exist in the example."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bridge.config import BridgeConfig
from bridge.local_stack import deploy
from tests.support.terraform import EXAMPLES_DIR, INFRA, module_variables, parse

CONFIG = BridgeConfig(
    region="us-east-1",
    endpoint_url="http://127.0.0.1:45123",
    access_key_id="testing",
    secret_access_key="testing",
)
#: Terraform type prefix -> the provider's endpoint name for it.
SERVICE_OF = {
    "autoscaling": "autoscaling",
    "cloudwatch_log": "cloudwatchlogs",
    "cloudwatch": "cloudwatch",
    "ami": "ec2",
    "launch_template": "ec2",
    "security_group": "ec2",
    "vpc": "ec2",
    "iam": "iam",
    "caller_identity": "sts",
    "lambda": "lambda",
    "s3": "s3",
    "sfn": "sfn",
    "sqs": "sqs",
    "kms": "kms",
    "sns": "sns",
}
LOCAL_ONLY = {"aws_partition", "aws_region", "aws_iam_policy_document"}  # no API call


def _rehearsal(tmp_path: Path) -> deploy.Rehearsal:
    return deploy.Rehearsal(
        CONFIG,
        workdir=tmp_path / "deploy",
        terraform="terraform",
        mirror=None,
        package=tmp_path / "lambda.zip",
    )


def test_the_override_points_every_service_the_terraform_calls_at_the_stack(
    tmp_path: Path,
) -> None:
    used = {
        match
        for tf in INFRA.rglob("*.tf")
        if ".terraform" not in tf.parts
        for match in re.findall(r'^(?:resource|data) "(aws_[a-z0-9_]+)"', tf.read_text(), re.M)
    }
    written = tmp_path / deploy.OVERRIDE
    written.write_text(deploy.provider_override(CONFIG))
    override = parse(written)["provider"][0]["aws"]
    endpoints = override["endpoints"][0]
    assert set(endpoints) == set(deploy.SERVICES)
    assert set(endpoints.values()) == {CONFIG.endpoint_url}
    for kind in sorted(used - LOCAL_ONLY):
        name = kind.removeprefix("aws_")
        service = next((s for p, s in SERVICE_OF.items() if name.startswith(p)), None)
        assert service in endpoints, f"{kind}: no endpoint in the provider override"
    assert override["skip_credentials_validation"] is True
    assert override["skip_requesting_account_id"] is True
    assert override["s3_use_path_style"] is True


def test_the_working_directory_holds_the_example_pointing_back_at_the_modules(
    tmp_path: Path,
) -> None:
    run = _rehearsal(tmp_path)
    run.write_files(["subnet-1", "subnet-2"], "vpc-1")
    example = {p.name for p in (EXAMPLES_DIR / "complete").glob("*.tf")}
    written = {p.name for p in run.workdir.glob("*.tf")}
    assert written == example | {deploy.OVERRIDE}
    sources = re.findall(r'source\s*= "([^"]+)"', (run.workdir / "main.tf").read_text())
    assert sources
    for source in sources:
        assert (run.workdir / source).resolve().parent == INFRA / "modules", source


def test_the_variables_exist_in_the_example(tmp_path: Path) -> None:
    run = _rehearsal(tmp_path)
    run.write_files(["subnet-1"], "vpc-1")
    values = parse(run.workdir / deploy.TFVARS)
    assert set(values) <= set(module_variables(EXAMPLES_DIR / "complete"))
    assert values["subnet_ids"] == ["subnet-1"]
    assert values["name"] != "callback-bridge"  # the stack's own resources use that name
    assert Path(values["lambda_package_path"]).is_absolute()


def test_a_second_deploy_replaces_stale_copies(tmp_path: Path) -> None:
    run = _rehearsal(tmp_path)
    run.workdir.mkdir(parents=True)
    (run.workdir / "removed_from_the_example.tf").write_text("# stale\n")
    run.write_files(["subnet-1"], "vpc-1")
    assert not (run.workdir / "removed_from_the_example.tf").exists()


def test_without_terraform_it_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("TERRAFORM", raising=False)
    with pytest.raises(deploy.DeployError) as info:
        deploy.find_terraform()
    message = str(info.value)
    assert "\n" not in message
    assert "terraform not found" in message and "install" in message


def test_the_mirror_is_found_where_tests_infra_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TF_PLUGIN_DIR", str(tmp_path))
    assert deploy.provider_mirror() in (None, deploy.MIRROR_DEFAULT)
    (tmp_path / "registry.terraform.io/hashicorp/aws").mkdir(parents=True)
    assert deploy.provider_mirror() == tmp_path


def test_state_written_against_another_stack_is_moved_aside(tmp_path: Path) -> None:
    run = _rehearsal(tmp_path)
    assert run.forget_stale_state() is None  # nothing yet
    state = run.workdir / "terraform.tfstate"
    state.write_text("{}")
    assert run.forget_stale_state() is None  # the same stack: kept
    assert state.exists()
    restarted = deploy.Rehearsal(
        CONFIG.model_copy(update={"instance_id": "i-0fedcba9876543210"}),
        workdir=run.workdir,
        terraform="terraform",
        mirror=None,
        out=run.out,
    )
    moved = restarted.forget_stale_state()
    assert moved is not None and moved.read_text() == "{}"
    assert not state.exists()


@pytest.mark.slow
def test_the_example_validates_without_deprecations_on_aws_6(tmp_path: Path) -> None:
    """Where the provider mirror holds a 6.x hashicorp/aws, terraform init picks it (the modules
    allow < 7) and the example validates with no deprecation warning; elsewhere the constraint
    and the absence of data.aws_region are checked statically (tests/infra/test_terraform.py)."""
    import shutil
    import subprocess

    terraform, mirror = shutil.which("terraform"), deploy.provider_mirror()
    found = mirror / "registry.terraform.io/hashicorp/aws" if mirror else None
    versions = sorted(p.name for p in found.iterdir()) if found else []
    if not terraform or not any(v.startswith("6.") for v in versions):
        pytest.skip(f"needs terraform and a 6.x hashicorp/aws in the mirror (found {versions})")
    run = _rehearsal(tmp_path)
    run.write_files(["subnet-1"], "vpc-1")
    env = {k: v for k, v in os.environ.items() if k != "TF_CLI_CONFIG_FILE"}
    for command in (["init", "-backend=false", f"-plugin-dir={mirror}"], ["validate", "-no-color"]):
        done = subprocess.run(
            [terraform, *command],
            cwd=run.workdir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert "Deprecated" not in done.stdout + done.stderr
    lock = (run.workdir / ".terraform.lock.hcl").read_text()
    assert re.search(r'version\s*=\s*"6\.', lock), lock
