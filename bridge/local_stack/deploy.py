"""``callback-bridge local deploy``: ``terraform apply`` of ``infra/examples/complete`` onto the
running embedded stack, the way platform teams rehearse a deployment on a local AWS emulator.

The working directory (default ``.callback-bridge/deploy``) holds everything Terraform needs
as files it loads by itself, so a plain ``terraform plan`` or ``terraform destroy`` run there
works with no extra arguments:

* the example's ``*.tf`` files, copied with their module sources pointing back at
  ``infra/modules`` (copied again on every deploy, so edits to the example are picked up);
* ``rehearsal_override.tf``: the ``aws`` provider pointed at the stack's endpoint (an
  ``endpoints {}`` block per service, dummy credentials, no account or metadata checks);
* ``rehearsal.auto.tfvars``: the stack's region, a name of its own, the default VPC's subnets,
  a placeholder AMI, the Lambda zip and an example worker.

``terraform init`` uses a provider mirror when there is one (``TF_PLUGIN_DIR`` or
``/opt/tf-plugins``: ``-plugin-dir``, offline); the modules need only ``hashicorp/aws``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bridge.config import BridgeConfig

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "infra" / "examples" / "complete"
MODULES = REPO / "infra" / "modules"
DEFAULT_WORKDIR = Path(".callback-bridge/deploy")
#: ``make lambda``'s zip (``tools.build_artifacts.lambda_zip()``; tests/infra/test_artifacts.py
#: keeps the two in step): its name carries the Python version and architecture.
LAMBDA_ZIP = REPO / "dist" / "callback-bridge-lambda-py3.12-x86_64.zip"
#: Every resource's name starts with it; the stack's own resources use ``callback-bridge``.
DEFAULT_NAME = "callback-bridge-tf"
#: A placeholder image: moto launches instances from any id (bridge.local_stack.resources).
IMAGE_ID = "ami-0123456789abcdef0"
#: The services the example's resources and data sources call (provider endpoint names).
SERVICES = (
    "autoscaling",
    "cloudwatch",
    "cloudwatchlogs",
    "ec2",
    "iam",
    "kms",
    "lambda",
    "s3",
    "sfn",
    "sns",
    "sqs",
    "sts",
)
OVERRIDE = "rehearsal_override.tf"
TFVARS = "rehearsal.auto.tfvars"
OUTPUTS = "outputs.json"
#: The stack the working directory's state was written against (see forget_stale_state).
STACK_MARKER = ".embedded-stack"
MIRROR_DEFAULT = Path("/opt/tf-plugins")
INSTALL_HINT = (
    "terraform not found on PATH: install Terraform >= 1.5 "
    "(https://developer.hashicorp.com/terraform/install) or set TERRAFORM=/path/to/terraform"
)


class DeployError(RuntimeError):
    """The rehearsal cannot go on; the message says why in one line."""


def find_terraform() -> str:
    found = os.environ.get("TERRAFORM") or shutil.which("terraform")
    if not found:
        raise DeployError(INSTALL_HINT)
    return found


def provider_mirror() -> Path | None:
    """A local mirror holding hashicorp/aws, for an offline ``terraform init -plugin-dir``: the
    place tests/infra looks (``TF_PLUGIN_DIR``, then ``/opt/tf-plugins``)."""
    for candidate in (os.environ.get("TF_PLUGIN_DIR"), str(MIRROR_DEFAULT)):
        if candidate and (Path(candidate) / "registry.terraform.io/hashicorp/aws").is_dir():
            return Path(candidate)
    return None


def _hcl(value: object) -> str:
    return json.dumps(value)  # a JSON string, list or number is valid HCL


def provider_override(config: BridgeConfig) -> str:
    assert config.endpoint_url and config.region
    endpoints = "\n".join(
        f"    {service:<14} = {_hcl(config.endpoint_url)}" for service in SERVICES
    )
    return f"""# Written by `callback-bridge local deploy`: the aws provider pointed at the embedded
# stack ({config.endpoint_url}). Terraform merges it into the example's provider block.
provider "aws" {{
  region                      = {_hcl(config.region)}
  access_key                  = {_hcl(config.access_key_id or "testing")}
  secret_key                  = {_hcl(config.secret_access_key or "testing")}
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true

  endpoints {{
{endpoints}
  }}
}}
"""


@dataclass
class Rehearsal:
    """One deployment of the example onto the stack ``config`` describes."""

    config: BridgeConfig
    workdir: Path = DEFAULT_WORKDIR
    name: str = DEFAULT_NAME
    package: Path = LAMBDA_ZIP
    worker_handler: str = "consumers.demo_handler:work"
    terraform: str = field(default_factory=find_terraform)
    mirror: Path | None = field(default_factory=provider_mirror)
    out: IO[str] = field(default_factory=lambda: sys.stdout)

    def __post_init__(self) -> None:
        self.workdir = self.workdir.resolve()

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def stack_identity(self) -> str:
        """What tells one embedded stack from the next: moto keeps nothing across restarts, so
        Terraform state written against an earlier stack describes nothing that exists."""
        return f"{self.config.endpoint_url} {self.config.instance_id or ''}".strip()

    def forget_stale_state(self) -> Path | None:
        """Move aside a terraform.tfstate written against another (stopped) stack; returns
        where it went, or ``None``."""
        state, marker = self.workdir / "terraform.tfstate", self.workdir / STACK_MARKER
        previous = marker.read_text(encoding="utf-8").strip() if marker.exists() else None
        moved = None
        if state.exists() and previous != self.stack_identity():
            moved = state.with_name(f"terraform.tfstate.stale-{int(time.time())}")
            state.rename(moved)
            self.say(f"{state} described another embedded stack ({previous}); moved to {moved}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        marker.write_text(self.stack_identity() + "\n", encoding="utf-8")
        return moved

    def write_files(self, subnet_ids: list[str], vpc_id: str) -> None:
        """The example (module sources re-pointed), the override and the variables."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        modules = os.path.relpath(MODULES, self.workdir)
        for old in self.workdir.glob("*.tf"):
            if old.name != OVERRIDE:
                old.unlink()
        for source in sorted(EXAMPLE.glob("*.tf")):
            text = source.read_text(encoding="utf-8")
            text = re.sub(r'source(\s*)= "\.\./\.\./modules/', rf'source\1= "{modules}/', text)
            (self.workdir / source.name).write_text(text, encoding="utf-8")
        (self.workdir / OVERRIDE).write_text(provider_override(self.config), encoding="utf-8")
        variables = {
            "region": self.config.region,
            "name": self.name,
            "vpc_id": vpc_id,
            "subnet_ids": subnet_ids,
            "ami_id": IMAGE_ID,
            "min_size": 1,
            "max_size": 1,
            "lambda_package_path": str(self.package.resolve()),
            "worker_handler": self.worker_handler,
            "worker_wheels_s3_uri": f"s3://{self.name}-artifacts/wheels/",
        }
        lines = [
            "# Written by `callback-bridge local deploy` for the embedded stack at "
            f"{self.config.endpoint_url}.",
            *(f"{key} = {_hcl(value)}" for key, value in variables.items()),
        ]
        (self.workdir / TFVARS).write_text("\n".join(lines) + "\n", encoding="utf-8")

    def run(self, *args: str, capture: bool = False) -> str:
        command = [self.terraform, *args]
        env = {**os.environ, "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
        # A CLI configuration that does not exist only makes terraform warn on every command.
        if env.get("TF_CLI_CONFIG_FILE") and not Path(env["TF_CLI_CONFIG_FILE"]).exists():
            env.pop("TF_CLI_CONFIG_FILE")
        if capture:
            done = subprocess.run(
                command, cwd=self.workdir, env=env, capture_output=True, text=True, check=False
            )
        else:
            done = subprocess.run(
                command,
                cwd=self.workdir,
                env=env,
                stdout=self.out,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
            )
        if done.returncode != 0:
            detail = (done.stderr or done.stdout or "").strip().splitlines()[-1:] if capture else []
            raise DeployError(
                f"terraform {args[0]} failed (exit {done.returncode}) in {self.workdir}"
                + (f": {detail[0]}" if detail else "")
            )
        return done.stdout if capture else ""

    def init(self) -> None:
        args = ["init", "-input=false", "-no-color"]
        if self.mirror:
            args.append(f"-plugin-dir={self.mirror}")
        self.run(*args)

    def apply(self) -> dict[str, object]:
        self.run("apply", "-auto-approve", "-input=false", "-no-color")
        return self.outputs()

    def outputs(self) -> dict[str, object]:
        text = self.run("output", "-json", "-no-color", capture=True)
        (self.workdir / OUTPUTS).write_text(text, encoding="utf-8")
        data: dict[str, object] = json.loads(text)
        return data


def default_network(ec2: object) -> tuple[str, list[str]]:
    """The default VPC and its subnets (moto creates one per region, as AWS does)."""
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]  # type: ignore[attr-defined]
    if not vpcs:
        raise DeployError("the embedded stack has no default VPC")
    vpc_id = vpcs[0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]  # type: ignore[attr-defined]
    return vpc_id, sorted(subnet["SubnetId"] for subnet in subnets)[:2]


def build_lambda_zip(package: Path, say: Callable[[str], None]) -> None:
    """``make lambda``'s build (tools/build_artifacts.py) when the zip is missing."""
    if package.exists():
        return
    say(f"{package} is missing: building it (make lambda)")
    done = subprocess.run(
        [sys.executable, "-m", "tools.build_artifacts", "lambda"], cwd=REPO, check=False
    )
    if done.returncode != 0 or not package.exists():
        raise DeployError(f"building {package} failed; run 'make lambda' and look at its output")


def summary(outputs: dict[str, object]) -> list[str]:
    """One line per output that names something (``terraform output`` values)."""
    lines = []
    for name, output in sorted(outputs.items()):
        value = output.get("value") if isinstance(output, dict) else output
        if isinstance(value, str) and value:
            lines.append(f"  {name:<28} {value}")
    return lines
