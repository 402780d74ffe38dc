"""Deployment artifacts built from the repository (issue 8, items 1 and 2).

* ``make lambda`` (tools/build_artifacts.py) builds the completion and dead-letter Lambda zip
  reproducibly for the runtime and architecture the Terraform modules deploy, and each handler
  imports (and answers an empty batch) from the built zip alone, plus what the Lambda runtime
  (boto3/botocore) and the declared Powertools layer provide.
* The worker bootstrap (consumers module user data + templates/install_worker.sh) installs
  callback-bridge and a handler package from wheels only, checks the handler imports before the
  service starts, and marks the instance Unhealthy when it cannot. The bootstrap drives the
  real ``aws`` CLI, and no AWS emulator runs shell CLIs, so these tests put a fake ``aws``
  script on PATH (``s3 sync`` copies from a local directory standing in for the bucket,
  ``autoscaling set-instance-health`` is recorded) and serve IMDSv2 on 127.0.0.1.

The Lambda python3.12 wheels come from the package index; where pip cannot fetch them the tests
that need them are skipped with the reason. The import proof runs the deployed zip (python3.12,
x86_64) under a ``python3.12`` found on PATH, as Lambda's runtime would; on a machine without one
(or not on x86_64) it runs a zip the same builder makes for the interpreter running the tests
(same code path, same file list, only pydantic-core's compiled wheel differs).
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import platform
import re
import stat
import subprocess
import sys
import textwrap
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest

from bridge.local_stack import deploy
from tests.support.terraform import module_locals, module_variables
from tools.build_artifacts import (
    LAMBDA_ARCHITECTURE,
    LAMBDA_PYTHON_VERSION,
    LAMBDA_ZIP,
    PROVIDED_TO_LAMBDA,
    ZIP_EPOCH,
    BuildError,
    build_lambda,
    lambda_requirements,
    lambda_zip,
)
from tools.find_python import find_python

REPO = Path(__file__).resolve().parents[2]
MODULES = REPO / "infra" / "modules"
CONSUMERS = MODULES / "consumers"
EXAMPLE = REPO / "infra" / "examples" / "complete"
INSTANCE_ID = "i-0123456789abcdef0"


def _unquote(value: Any) -> Any:
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _hcl(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        parsed: dict[str, Any] = _unquote(hcl2.load(fh))
    return parsed


def _variables(module_dir: Path) -> dict[str, dict[str, Any]]:
    return {
        name: body
        for entry in _hcl(module_dir / "variables.tf").get("variable", [])
        for name, body in entry.items()
    }


def _locals(path: Path) -> dict[str, Any]:
    return {k: v for entry in _hcl(path).get("locals", []) for k, v in entry.items()}


# --------------------------------------------------------------------------
# The Lambda zip
# --------------------------------------------------------------------------


def test_lambda_build_targets_what_the_modules_deploy() -> None:
    """Runtime, architecture, handlers and the package path of the example are the builder's."""
    for module, handler in (
        ("completion", "bridge.completion.handler"),
        ("dead_letter", "bridge.dead_letter.handler"),
    ):
        assert _locals(MODULES / module / "main.tf")["runtime"] == f"python{LAMBDA_PYTHON_VERSION}"
        variables = _variables(MODULES / module)
        assert variables["architecture"]["default"] == LAMBDA_ARCHITECTURE
        assert variables["handler"]["default"] == handler
    # powertools is left out of the zip because the completion module requires the layer and
    # the example attaches it to both functions.
    completion = (MODULES / "completion" / "main.tf").read_text(encoding="utf-8")
    assert re.search(r"^\s*layers\s*=\s*\[var\.powertools_layer_arn\]", completion, re.M)
    example = (EXAMPLE / "main.tf").read_text(encoding="utf-8")
    assert re.search(r"^\s*layers\s*=\s*\[local\.powertools_layer_arn\]", example, re.M)
    assert "aws-lambda-powertools" in PROVIDED_TO_LAMBDA and "boto3" in PROVIDED_TO_LAMBDA
    assert [r.split(">")[0] for r in lambda_requirements()] == ["pydantic"]
    # `make lambda` writes the file the example hashes (paths relative to the example).
    default = _variables(EXAMPLE)["lambda_package_path"]["default"]
    assert (EXAMPLE / default).resolve() == LAMBDA_ZIP == deploy.LAMBDA_ZIP
    assert LAMBDA_ZIP.name == "callback-bridge-lambda-py3.12-x86_64.zip"  # what it was built for
    assert lambda_zip("3.12", "arm64").name == "callback-bridge-lambda-py3.12-arm64.zip"
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^lambda:.*\n\t.*-m tools\.build_artifacts lambda", makefile, re.M)
    assert re.search(r"^LAMBDA_PYTHON\s*\?= 3\.12$", makefile, re.M)


def test_example_needs_only_the_tfvars_it_documents() -> None:
    """Beyond `make lambda`, a plan needs only the variables terraform.tfvars.example sets."""
    required = {n for n, body in _variables(EXAMPLE).items() if "default" not in body}
    tfvars = hcl2.loads((EXAMPLE / "terraform.tfvars.example").read_text(encoding="utf-8"))
    assert required <= set(tfvars), f"not in terraform.tfvars.example: {required - set(tfvars)}"
    assert "worker_wheels_s3_uri" in required


def _build_or_skip(output: Path, python_version: str, architecture: str) -> Path:
    try:
        return build_lambda(output, python_version=python_version, architecture=architecture)
    except BuildError as exc:
        pytest.skip(
            f"pip cannot fetch the python{python_version} {architecture} wheels here: {exc}"
        )


@pytest.fixture(scope="module")
def lambda_zips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The deployed artifact (python3.12, x86_64), built twice, a moment apart."""
    tmp = tmp_path_factory.mktemp("lambda")
    first = _build_or_skip(tmp / "first.zip", LAMBDA_PYTHON_VERSION, LAMBDA_ARCHITECTURE)
    second = _build_or_skip(tmp / "second.zip", LAMBDA_PYTHON_VERSION, LAMBDA_ARCHITECTURE)
    return first, second


@pytest.mark.slow
def test_lambda_zip_is_reproducible(lambda_zips: tuple[Path, Path]) -> None:
    first, second = lambda_zips
    digests = {hashlib.sha256(z.read_bytes()).hexdigest() for z in (first, second)}
    assert len(digests) == 1, "two builds of the same sources differ"
    with zipfile.ZipFile(first) as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {ZIP_EPOCH}


@pytest.mark.slow
def test_lambda_zip_holds_the_handlers_and_what_the_runtime_lacks(
    lambda_zips: tuple[Path, Path],
) -> None:
    with zipfile.ZipFile(lambda_zips[0]) as archive:
        names = set(archive.namelist())
    tag = f"cpython-{LAMBDA_PYTHON_VERSION.replace('.', '')}-x86_64-linux-gnu"
    for expected in (
        "bridge/__init__.py",
        "bridge/completion.py",
        "bridge/dead_letter.py",
        "bridge/callback.py",
        "bridge/contract.py",
        "pydantic/__init__.py",
        f"pydantic_core/_pydantic_core.{tag}.so",
        "typing_extensions.py",
        "annotated_types/__init__.py",
        "typing_inspection/__init__.py",
    ):
        assert expected in names, f"{expected} missing from the Lambda zip"
    tops = {n.split("/")[0] for n in names}
    for provided in ("boto3", "botocore", "aws_lambda_powertools", "typer", "rich", "consumers"):
        assert provided not in tops, f"{provided} must not be in the zip"
    # Only what the handlers import: no emulator, fault campaign, CLI, operations or template.
    for layer in ("local_stack", "chaos", "cli", "ops", "statemachine"):
        assert not [n for n in names if n.startswith(f"bridge/{layer}/")], f"bridge/{layer} shipped"
    assert not tops & {"moto", "hypothesis", "benchmarks", "tools", "tests"}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


# Stand-ins for what AWS provides: the python3.12 runtime's boto3 (with its dependencies) and
# the Powertools layer. Taken from the test environment, nothing else is on sys.path.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
LAYER_PACKAGES = ("aws_lambda_powertools",)

IMPORT_PROBE = textwrap.dedent(
    """
    import json, sys
    task, layer, runtime = sys.argv[1:4]
    stdlib = list(sys.path)
    sys.path[:0] = [task, layer, runtime]
    from types import SimpleNamespace
    context = SimpleNamespace(
        function_name="f", function_version="1", memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:f",
        aws_request_id="r", log_group_name="g", log_stream_name="s",
        get_remaining_time_in_millis=lambda: 10_000,
    )
    import bridge.completion, bridge.dead_letter
    answers = [
        bridge.completion.handler({"Records": []}, context),
        bridge.dead_letter.handler({"Records": []}, context),
        bridge.dead_letter.lambda_handler({"Records": []}, context),  # the first name still works
    ]
    where = {
        name: getattr(module, "__file__", None) or ""
        for name, module in list(sys.modules.items())
    }
    allowed = (task, layer, runtime, *stdlib)
    outside = sorted(f for f in where.values() if f and not f.startswith(allowed))
    print(json.dumps({"answers": answers, "outside": outside, "where": where}))
    """
)


def _link_packages(target: Path, names: tuple[str, ...]) -> None:
    import importlib

    target.mkdir()
    for name in names:
        module = importlib.import_module(name)
        path = Path(module.__file__ or "")
        source = path.parent if path.name == "__init__.py" else path
        (target / source.name).symlink_to(source)


def _lambda_python() -> str | None:
    """A working python3.12 (the Lambda runtime's version) on this machine, or None."""
    found = find_python(LAMBDA_PYTHON_VERSION)
    return None if found is None else str(found)


@pytest.mark.slow
def test_handlers_import_from_the_built_zip_alone(tmp_path: Path) -> None:
    """Built for this interpreter (see the module docstring), extracted as Lambda does into its
    task directory, and imported by ``python -I -S``: no site-packages, no PYTHONPATH, only
    the task directory, the layer and the runtime stand-ins. Both handlers answer an empty
    batch, which also runs their lazy imports (configuration, clients, metrics)."""
    machine = {"x86_64": "x86_64", "aarch64": "arm64"}.get(platform.machine())
    if machine is None:
        pytest.skip(f"no manylinux wheels for {platform.machine()}")
    python = _lambda_python()
    if python is not None and machine == LAMBDA_ARCHITECTURE:
        version = LAMBDA_PYTHON_VERSION  # the deployed artifact, on the runtime's Python
    else:
        python, version = sys.executable, f"{sys.version_info.major}.{sys.version_info.minor}"
    package = _build_or_skip(tmp_path / "local.zip", version, machine)
    task = tmp_path / "task"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(task)
    _link_packages(tmp_path / "layer", LAYER_PACKAGES)
    _link_packages(tmp_path / "runtime", RUNTIME_PACKAGES)
    queue = "https://sqs.eu-west-1.amazonaws.com/123456789012"
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "BRIDGE_RESULTS_DLQ_URL": f"{queue}/results-dlq",
        "BRIDGE_JOBS_DLQ_URL": f"{queue}/jobs-dlq",
        "BRIDGE_JOBS_ARCHIVE_URL": f"{queue}/jobs-dead-letters",
        "POWERTOOLS_METRICS_NAMESPACE": "CallbackBridge",
    }
    run = subprocess.run(
        [python, "-I", "-S", "-W", "ignore", "-c", IMPORT_PROBE]
        + [str(tmp_path / d) for d in ("task", "layer", "runtime")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["answers"] == [{"batchItemFailures": []}] * 3
    assert report["outside"] == [], "modules imported from outside the zip, layer and runtime"
    for module in ("pydantic", "pydantic_core", "typing_extensions", "annotated_types", "bridge"):
        assert report["where"][module].startswith(str(task)), f"{module} not from the zip"
    assert report["where"]["aws_lambda_powertools"].startswith(str(tmp_path / "layer"))


# --------------------------------------------------------------------------
# The worker bootstrap
# --------------------------------------------------------------------------

USER_DATA = CONSUMERS / "templates" / "user_data.sh.tftpl"
INSTALL_SCRIPT = CONSUMERS / "templates" / "install_worker.sh"
WHEELS_URI = "s3://acme-artifacts/callback-bridge/wheels/"


def _templatefile_keys() -> set[str]:
    main = (CONSUMERS / "main.tf").read_text(encoding="utf-8")
    call = re.search(
        r'templatefile\("\$\{path\.module\}/templates/user_data\.sh\.tftpl", \{(.*?)\n  \}\)',
        main,
        re.S,
    )
    assert call, "the consumers module no longer renders user_data.sh.tftpl with an object literal"
    return set(re.findall(r"^\s*([a-z_0-9]+)\s*=", call.group(1), re.M))


def render_user_data(values: dict[str, object]) -> str:
    """templatefile() for this template: ``${name}`` interpolations and ``$${`` escapes only
    (the test fails if the template starts using ``%{`` directives this does not render)."""
    text = USER_DATA.read_text(encoding="utf-8")
    assert "%{" not in text

    def value(match: re.Match[str]) -> str:
        return str(values[match.group(1)])

    return re.sub(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}", value, text).replace("$${", "${")


def _user_data_values(handler: str | None, python: str) -> dict[str, object]:
    """What the consumers module passes to templatefile(), for this test's deployment."""
    known: dict[str, object] = {
        "stop_timeout_seconds": 1870,
        "os_packages": "python3.12 python3.12-pip",
        "python_executable": python,
        "wheels_s3_uri": WHEELS_URI,
        "handler_packages": "acme-jobs==1.0.0",
        "import_check": handler or "",
        "install_script_b64": base64.b64encode(INSTALL_SCRIPT.read_bytes()).decode(),
        "worker_env_b64": base64.b64encode(b'BRIDGE_WORKER_HANDLER="x"\n').decode(),
        "worker_unit_b64": base64.b64encode(b"[Unit]\n").decode(),
        "job_user": "callback-bridge-job",
    }
    # Keys another part of the module adds render as a dummy: their steps are not run here.
    return {key: known.get(key, "x") for key in _templatefile_keys()}


def test_user_data_placeholders_are_the_templatefile_keys() -> None:
    placeholders = set(
        re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}", USER_DATA.read_text(encoding="utf-8"))
    )
    assert placeholders == _templatefile_keys()
    for key in ("wheels_s3_uri", "handler_packages", "import_check", "install_script_b64"):
        assert key in placeholders


def test_user_data_installs_from_the_deployments_wheels_only() -> None:
    rendered = render_user_data(_user_data_values("acme_jobs.tasks:run", "python3.12"))
    script = INSTALL_SCRIPT.read_text(encoding="utf-8")
    assert "pip install" not in rendered, "the user data must install through install_worker.sh"
    assert re.search(r"-m pip install [^\n]*--no-index", script)
    assert "--find-links" in script and "index-url" not in script
    # The handler is checked before the service starts; a failure anywhere marks the instance.
    assert rendered.index("callback-bridge-install install") < rendered.index("systemctl enable")
    assert "callback-bridge-install mark-unhealthy" in rendered.split("# 1. Python")[0]
    assert f"BRIDGE_WHEELS_S3_URI='{WHEELS_URI}'" in rendered


def test_instance_role_reads_the_wheels_prefix_and_replaces_only_itself() -> None:
    docs = _hcl(CONSUMERS / "main.tf")["data"]
    statements = [
        s
        for entry in docs
        for doc in entry.get("aws_iam_policy_document", {}).values()
        for s in doc.get("statement", [])
        if "sid" in s
    ]
    by_sid = {s["sid"]: s for s in statements}
    assert by_sid["ReplaceOwnBrokenInstance"]["actions"] == ["autoscaling:SetInstanceHealth"]
    assert by_sid["ReplaceOwnBrokenInstance"]["resources"] == ["${local.autoscaling_group_arn}"]
    assert by_sid["ReadWorkerWheels"]["actions"] == ["s3:GetObject"]
    assert by_sid["ReadWorkerWheels"]["resources"] == ["${local.wheels_objects_arn}"]
    listing = by_sid["ListWorkerWheels"]
    assert listing["actions"] == ["s3:ListBucket"]
    assert listing["resources"] == ["${local.wheels_bucket_arn}"]
    assert listing["condition"][0]["variable"] == "s3:prefix"
    s3_actions = {a for s in statements for a in s.get("actions", []) if a.startswith("s3:")}
    assert s3_actions == {"s3:GetObject", "s3:ListBucket"}


# The fake AWS CLI. No AWS emulator runs shell CLIs, and the user data drives the real `aws`
# command, so a stub on PATH stands in for it: `s3 sync` copies from a local directory laid
# out as bucket/key, `autoscaling set-instance-health` is recorded; anything else fails.
AWS_STUB = """#!/bin/bash
printf '%s\\n' "$*" >> "$AWS_STUB_LOG"
if [ "$1" = s3 ] && [ "$2" = sync ]; then
  src="${@: -2:1}"; dst="${@: -1}"
  mkdir -p "$dst"
  if [ -d "$AWS_STUB_S3/${src#s3://}" ]; then cp -R "$AWS_STUB_S3/${src#s3://}/." "$dst/"; fi
  exit 0
fi
if [ "$1" = autoscaling ] && [ "$2" = set-instance-health ]; then exit 0; fi
if [ "$1" = autoscaling ] && [ "$2" = complete-lifecycle-action ]; then exit 0; fi
if [ "$1" = cloudwatch ] && [ "$2" = put-metric-data ]; then exit 0; fi
echo "aws stub: unexpected call: $*" >&2
exit 255
"""


class _Imds(http.server.BaseHTTPRequestHandler):
    """IMDSv2 on 127.0.0.1: a token for PUT, the instance id for a GET that presents it."""

    def do_PUT(self) -> None:
        self._answer(200, "token-1" if self.path == "/latest/api/token" else None)

    def do_GET(self) -> None:
        ok = self.headers.get("X-aws-ec2-metadata-token") == "token-1"
        self._answer(200 if ok else 401, INSTANCE_ID if ok else None)

    def _answer(self, status: int, body: str | None) -> None:
        self.send_response(status if body else 404)
        self.end_headers()
        self.wfile.write((body or "").encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def imds() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Imds)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _handler_wheel(directory: Path) -> Path:
    """A tiny handler package, acme-jobs 1.0.0, as a wheel (written directly: a wheel is a zip)."""
    files = {
        "acme_jobs/__init__.py": b"",
        "acme_jobs/tasks.py": b"def run(input, job):\n    return {'echo': input}\n",
        "acme_jobs-1.0.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: acme-jobs\n"
        b"Version: 1.0.0\n",
        "acme_jobs-1.0.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for name, data in files.items()
    ]
    files["acme_jobs-1.0.0.dist-info/RECORD"] = (
        "\n".join([*record, "acme_jobs-1.0.0.dist-info/RECORD,,"]) + "\n"
    ).encode()
    wheel = directory / "acme_jobs-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


@pytest.fixture(scope="module")
def wheels_bucket(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local directory standing in for S3: <root>/acme-artifacts/callback-bridge/wheels/ holds
    the callback-bridge wheel built from this checkout and the handler package's wheel."""
    root = tmp_path_factory.mktemp("s3")
    prefix = root / WHEELS_URI.removeprefix("s3://")
    prefix.mkdir(parents=True)
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(prefix),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if build.returncode != 0:
        pytest.skip(
            f"cannot build the callback-bridge wheel here (hatchling?): {build.stderr[-500:]}"
        )
    _handler_wheel(prefix)
    return root


def _dependencies_dir(tmp: Path) -> Path:
    """The installed dependencies of callback-bridge (boto3, pydantic, typer...) and pip,
    without callback-bridge itself, so pip --no-index finds them satisfied and must take
    callback-bridge from the wheels (downloading every dependency wheel would need the network;
    `make wheels` does that for real deployments)."""
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    deps = tmp / "deps"
    deps.mkdir()
    skip = re.compile(
        r"^(bridge|consumers|callback_bridge.*|_editable_impl_.*|.*\.pth|__pycache__)$"
    )
    for entry in site.iterdir():
        if not skip.match(entry.name):
            (deps / entry.name).symlink_to(entry)
    return deps


def run_bootstrap(
    tmp: Path, bucket: Path, imds: str, handler: str | None, uri: str = WHEELS_URI
) -> tuple[subprocess.CompletedProcess[str], list[str], Path]:
    """Render the user data, then run its install step (section 3, as rendered) with the install
    script it embeds; only the two absolute paths are moved into ``tmp``."""
    values = _user_data_values(handler, sys.executable)
    values["wheels_s3_uri"] = uri
    rendered = render_user_data(values)
    embedded = re.search(
        r"echo '([A-Za-z0-9+/=]+)' \| base64 -d > /usr/local/sbin/callback-bridge-install", rendered
    )
    assert embedded, "the user data no longer writes /usr/local/sbin/callback-bridge-install"
    script = tmp / "callback-bridge-install"
    script.write_bytes(base64.b64decode(embedded.group(1)))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    step = re.search(r"^# 3\..*?^ln -sf", rendered, re.S | re.M)
    assert step, "the user data has no install step (section 3)"
    venv = tmp / "venv"
    snippet = (
        step.group(0)
        .replace("/usr/local/sbin/callback-bridge-install", str(script))
        .replace("BRIDGE_VENV=/opt/callback-bridge", f"BRIDGE_VENV={venv}")
        .removesuffix("ln -sf")
    )
    # The venv exists already, with callback-bridge's dependencies and pip visible through a
    # .pth file (see _dependencies_dir): the script keeps an existing venv, and this skips
    # ensurepip, seconds on a shared machine.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (venv_site,) = venv.glob("lib/python*/site-packages")
    (venv_site / "deps.pth").write_text(f"{_dependencies_dir(tmp)}\n", encoding="utf-8")
    stubs = tmp / "bin"
    stubs.mkdir()
    (stubs / "aws").write_text(AWS_STUB, encoding="utf-8")
    (stubs / "aws").chmod(0o755)
    log = tmp / "aws.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "BRIDGE_", "AWS_"))}
    env.update(
        PATH=f"{stubs}:{env.get('PATH', '/usr/bin:/bin')}",
        PIP_CONFIG_FILE=os.devnull,  # no find-links or index from this machine's pip config
        AWS_STUB_LOG=str(log),
        AWS_STUB_S3=str(bucket),
        BRIDGE_WHEELS_DIR=str(tmp / "wheels"),
        BRIDGE_IMDS_URL=imds,
        BRIDGE_UNHEALTHY_MARKER=str(tmp / "marked-unhealthy"),
    )
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", snippet],
        env=env,
        cwd=tmp,  # as on an instance: nothing importable from the working directory
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    calls = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return run, calls, venv


UNHEALTHY_CALL = (
    f"autoscaling set-instance-health --instance-id {INSTANCE_ID} --health-status Unhealthy "
    "--no-should-respect-grace-period"
)


@pytest.mark.slow
def test_bootstrap_installs_the_bridge_and_the_handler_from_wheels(
    tmp_path: Path, wheels_bucket: Path, imds: str
) -> None:
    """callback-bridge (a wheel of this checkout) and acme-jobs (a wheel) come from the synced
    prefix, the import check passes, and the venv runs the handler."""
    run, calls, venv = run_bootstrap(tmp_path, wheels_bucket, imds, "acme_jobs.tasks:run")
    assert run.returncode == 0, run.stderr
    assert "acme_jobs.tasks:run imports" in run.stdout + run.stderr
    assert calls == [f"s3 sync --only-show-errors {WHEELS_URI} {tmp_path / 'wheels'}"]
    probe = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import bridge, acme_jobs.tasks as t; print(bridge.__file__, t.run({'n': 1}, None))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=tmp_path,
    )
    installed_from, _, answer = probe.stdout.strip().partition(" ")
    assert installed_from.startswith(str(venv)), "callback-bridge was not installed from its wheel"
    assert answer == "{'echo': {'n': 1}}"


@pytest.mark.slow
def test_bootstrap_marks_the_instance_unhealthy_when_the_handler_does_not_import(
    tmp_path: Path, wheels_bucket: Path, imds: str
) -> None:
    """A handler that does not import: exit non-zero and ask the group to replace the instance
    (one SetInstanceHealth call, recorded by the fake ``aws`` CLI on PATH: no AWS emulator runs
    shell CLIs)."""
    run, calls, _ = run_bootstrap(tmp_path, wheels_bucket, imds, "acme_jobs.missing:run")
    assert run.returncode != 0
    assert "No module named 'acme_jobs.missing'" in run.stderr
    assert calls[-1] == UNHEALTHY_CALL
    assert calls.count(UNHEALTHY_CALL) == 1


@pytest.mark.slow
def test_bootstrap_marks_the_instance_unhealthy_without_wheels(
    tmp_path: Path, wheels_bucket: Path, imds: str
) -> None:
    empty = "s3://acme-artifacts/nothing-uploaded/"
    run, calls, _ = run_bootstrap(tmp_path, wheels_bucket, imds, "acme_jobs.tasks:run", uri=empty)
    assert run.returncode != 0
    assert "build them with 'make wheels'" in run.stderr
    assert calls == [f"s3 sync --only-show-errors {empty} {tmp_path / 'wheels'}", UNHEALTHY_CALL]


def _job_user_step(rendered: str) -> str:
    step = re.search(r"^# 3b\..*?^# 4\.", rendered, re.S | re.M)
    assert step, "the user data has no job user step (3b)"
    return step.group(0)


def test_user_data_creates_the_job_user_and_blocks_the_metadata_endpoint() -> None:
    values = _user_data_values("acme_jobs.tasks:run", "python3.12")
    rendered = render_user_data(values)
    step = _job_user_step(rendered)
    assert "JOB_USER='callback-bridge-job'" in step
    # A system user with no home and no login.
    useradd = next(line for line in step.splitlines() if "useradd" in line)
    assert "--system" in useradd and "--no-create-home" in useradd
    assert "--shell /sbin/nologin" in useradd
    # The metadata endpoint refused to that user's processes, IPv4 and IPv6.
    script = re.search(r"<<'SCRIPT'\n(.*?)\nSCRIPT\n", step, re.S)
    assert script, "the block script is not written by a quoted heredoc"
    rules = script.group(1)
    assert "id -u 'callback-bridge-job'" in rules
    assert re.search(
        r"^  iptables -I OUTPUT 1 -d 169\.254\.169\.254/32 -m owner "
        r'--uid-owner "\$uid" -j REJECT$',
        rules,
        re.M,
    )
    assert re.search(
        r"^  ip6tables -I OUTPUT 1 -d fd00:ec2::254/128 -m owner "
        r'--uid-owner "\$uid" -j REJECT$',
        rules,
        re.M,
    )
    # Persistent: a oneshot unit run at every boot, before the worker, which requires it.
    unit = re.search(r"<<'UNIT'\n(.*?)\nUNIT\n", step, re.S)
    assert unit, "the block unit is not written by a quoted heredoc"
    directives = [line.strip() for line in unit.group(1).splitlines()]
    for directive in (
        "Type=oneshot",
        "RemainAfterExit=yes",
        "ExecStart=/usr/local/sbin/callback-bridge-imds-block",
        "Before=callback-bridge-worker.service",
        "RequiredBy=callback-bridge-worker.service",
        "WantedBy=multi-user.target",
    ):
        assert directive in directives, directive
    assert "systemctl enable --now callback-bridge-imds-block.service" in step
    # Before the worker is enabled.
    assert rendered.index("callback-bridge-imds-block.service") < rendered.index(
        "systemctl enable --now callback-bridge-worker.service"
    )


def test_user_data_without_a_job_user_skips_the_step() -> None:
    values = {**_user_data_values("acme_jobs.tasks:run", "python3.12"), "job_user": ""}
    step = _job_user_step(render_user_data(values))
    assert "JOB_USER=''" in step
    before, guarded = step.split('if [ -n "$JOB_USER" ]; then\n', 1)
    for command in ("useradd", "iptables", "systemctl enable"):
        assert command not in before and command in guarded, command
    # The guard closes at the end of the step: nothing of it runs without a job user.
    assert [line for line in guarded.splitlines() if line.strip()][-2:] == ["fi", "# 4."]


def test_the_worker_runs_jobs_as_the_job_user() -> None:
    worker_env = module_locals(CONSUMERS)["worker_env"]
    assert re.search(r"\bBRIDGE_RUN_AS = var\.job_user\b", worker_env)
    main = (CONSUMERS / "main.tf").read_text(encoding="utf-8")
    assert 'job_user             = var.job_user == null ? "" : var.job_user' in main
    variables = module_variables(CONSUMERS)
    assert variables["job_user"]["default"] == "callback-bridge-job"


class _TerminatingImds(_Imds):
    """The same, and the group terminating the instance (target lifecycle state)."""

    def do_GET(self) -> None:
        ok = self.headers.get("X-aws-ec2-metadata-token") == "token-1"
        terminating = self.path.endswith("/autoscaling/target-lifecycle-state")
        self._answer(
            200 if ok else 401, ("Terminated" if terminating else INSTANCE_ID) if ok else None
        )


def _install_script(tmp: Path) -> Path:
    rendered = render_user_data(_user_data_values("acme_jobs.tasks:run", "python3.12"))
    embedded = re.search(
        r"echo '([A-Za-z0-9+/=]+)' \| base64 -d > /usr/local/sbin/callback-bridge-install", rendered
    )
    assert embedded
    script = tmp / "callback-bridge-install"
    script.write_bytes(base64.b64decode(embedded.group(1)))
    script.chmod(0o755)
    return script


def test_a_broken_instance_ends_its_termination_hook_with_abandon(tmp_path: Path) -> None:
    """mark-unhealthy, given the group and hook (as the user data and the OnFailure unit give
    them), waits for the group to terminate the instance, then completes the hook's action with
    ABANDON: nothing to drain, so the instance does not wait out the hook timeout."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TerminatingImds)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "aws").write_text(AWS_STUB, encoding="utf-8")
    (stubs / "aws").chmod(0o755)
    log = tmp_path / "aws.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "AWS_"))}
    env.update(
        PATH=f"{stubs}:{env.get('PATH', '/usr/bin:/bin')}",
        AWS_STUB_LOG=str(log),
        BRIDGE_IMDS_URL=f"http://127.0.0.1:{server.server_address[1]}",
        BRIDGE_UNHEALTHY_MARKER=str(tmp_path / "marked"),
        BRIDGE_ASG_NAME="acme-worker",
        BRIDGE_LIFECYCLE_HOOK_NAME="acme-drain",
        BRIDGE_ABANDON_FOREGROUND="1",
    )
    try:
        run = subprocess.run(
            [str(_install_script(tmp_path)), "mark-unhealthy"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        server.shutdown()
    assert run.returncode == 0, run.stderr
    assert log.read_text(encoding="utf-8").splitlines() == [
        UNHEALTHY_CALL,
        "cloudwatch put-metric-data --namespace CallbackBridge --metric-name WorkersReplaced "
        "--dimensions service=callback-bridge-worker,AutoScalingGroupName=acme-worker "
        "--value 1 --unit Count",
        "autoscaling complete-lifecycle-action --lifecycle-action-result ABANDON "
        f"--instance-id {INSTANCE_ID} --auto-scaling-group-name acme-worker "
        "--lifecycle-hook-name acme-drain",
    ]


def test_user_data_passes_the_group_and_hook_to_every_unhealthy_mark() -> None:
    values = _user_data_values("acme_jobs.tasks:run", "python3.12")
    values.update(asg_name="acme-worker", lifecycle_hook_name="acme-drain")
    rendered = render_user_data(values)
    head = rendered.split("# 1. Python")[0]
    assert "export BRIDGE_ASG_NAME='acme-worker' BRIDGE_LIFECYCLE_HOOK_NAME='acme-drain'" in head
    assert head.index("export BRIDGE_ASG_NAME") < head.index("trap ")
    # A worker systemd gives up on (past its restarts) marks the instance too.
    drop_in = re.search(r"on-failure\.conf <<'UNIT'\n(.*?)\nUNIT\n", rendered, re.S)
    assert drop_in and "OnFailure=callback-bridge-unhealthy.service" in drop_in.group(1)
    unit = re.search(r"callback-bridge-unhealthy\.service <<UNIT\n(.*?)\nUNIT\n", rendered, re.S)
    assert unit, "no callback-bridge-unhealthy.service"
    lines = unit.group(1).splitlines()
    assert "ExecStart=/usr/local/sbin/callback-bridge-install mark-unhealthy" in lines
    assert "Environment=BRIDGE_ASG_NAME=acme-worker BRIDGE_LIFECYCLE_HOOK_NAME=acme-drain" in lines
    assert "Environment=BRIDGE_ABANDON_FOREGROUND=1" in lines
    assert rendered.index("on-failure.conf") < rendered.index(
        "systemctl enable --now callback-bridge-worker.service"
    )
