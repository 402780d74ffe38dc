"""Build the deployment artifacts of callback-bridge from this repository.

Two artifacts, both consumed by ``infra/``:

* ``lambda``: ``dist/callback-bridge-lambda-py3.12-x86_64.zip``, the code of the completion Lambda
  (``bridge.completion.handler``) and the dead-letter Lambda
  (``bridge.dead_letter.handler``). It holds the ``bridge`` modules those handlers import
  (the product core: no embedded stack, chaos, CLI or operations code) and the runtime
  dependencies the Lambda Python runtime lacks: pydantic with the compiled ``pydantic_core``
  wheel for the function's Python version and architecture, and pydantic's own dependencies
  (typing-extensions, annotated-types, typing-inspection). It leaves out boto3/botocore (in the
  runtime), aws-lambda-powertools (the Powertools layer the completion module requires and the
  example attaches to both functions) and the CLI-only typer/rich. The zip is reproducible: files
  in sorted order, fixed timestamps and modes, no bytecode, so the same sources and the same
  resolved wheels give the same sha256 (Terraform's ``source_code_hash`` then changes only when
  the code does).
* ``wheels``: ``dist/wheels/*.whl``, what the workers install with
  ``pip install --no-index --find-links`` (infra/modules/consumers): the callback-bridge wheel
  built from this checkout, the wheels of its dependencies for the workers' platform, and the
  wheels of any handler package given as a directory (built here) or a requirement.

Why a module under ``tools/`` and not ``bridge/build``: it is repository tooling, so it must not
ship inside the wheel or the Lambda zip it builds. Run it through ``make lambda`` /
``make wheels`` or ``python -m tools.build_artifacts --help``.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WHEELS_DIR = REPO / "dist" / "wheels"

# What the completion module deploys (infra/modules/completion: runtime "python3.12",
# architecture default "x86_64"); tests/infra/test_artifacts.py keeps these in step.
LAMBDA_PYTHON_VERSION = "3.12"
LAMBDA_ARCHITECTURE = "x86_64"


def lambda_zip(
    python_version: str = LAMBDA_PYTHON_VERSION, architecture: str = LAMBDA_ARCHITECTURE
) -> Path:
    """Where ``make lambda`` writes the zip: its name carries what its compiled dependencies
    (pydantic_core) were built for, so the modules' precondition can refuse a zip built for
    another architecture than ``lambda_architecture``."""
    return REPO / "dist" / f"callback-bridge-lambda-py{python_version}-{architecture}.zip"


LAMBDA_ZIP = lambda_zip()
# The workers' default interpreter (consumers module python_executable "python3.12").
WORKER_PYTHON_VERSION = "3.12"

# Dependencies of the project the Lambda package does not carry, and who provides them.
PROVIDED_TO_LAMBDA = {
    "boto3": "the Lambda Python runtime",
    "aws-lambda-powertools": "the Powertools for AWS Lambda (Python) v3 layer",
    "typer": "nobody: CLI only",
    "rich": "nobody: CLI only",
}

# ZIP timestamps start in 1980; every entry gets this one.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

_PLATFORMS = {"x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}


class BuildError(RuntimeError):
    """A build step failed; the message says which and why (pip's own output is above it)."""


def platform_args(architecture: str, python_version: str) -> list[str]:
    """pip options selecting CPython wheels for Amazon Linux (glibc) on ``architecture``.

    manylinux2014 (glibc 2.17) and manylinux_2_28 both run on the Lambda python3.12 runtime and
    on Amazon Linux 2023 (glibc 2.34); ``--only-binary`` forbids building anything here.
    """
    try:
        machine = _PLATFORMS[architecture]
    except KeyError:
        raise BuildError(f"architecture must be x86_64 or arm64, not {architecture!r}") from None
    if not re.fullmatch(r"3\.\d+", python_version):
        raise BuildError(f"python version must look like 3.12, not {python_version!r}")
    return [
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--platform",
        f"manylinux2014_{machine}",
        "--platform",
        f"manylinux_2_28_{machine}",
    ]


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise BuildError(f"cannot read a package name from requirement {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def lambda_requirements(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    """The project's runtime dependencies the Lambda package must carry (pydantic's range as
    pyproject.toml pins it): every dependency nobody else provides, so a new one is bundled
    by default rather than missing at import time."""
    dependencies = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    return [d for d in dependencies if _requirement_name(d) not in PROVIDED_TO_LAMBDA]


def _pip(args: Sequence[str], step: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    completed = subprocess.run(command, check=False)
    if completed.returncode != 0:
        raise BuildError(f"{step} failed (pip exit {completed.returncode}): {' '.join(command)}")


#: The Lambda entry points (infra/modules/completion and the dead-letter function): the zip holds
#: these modules and every ``bridge`` module they import, nothing else of the repository.
LAMBDA_ENTRY_MODULES = ("bridge.completion", "bridge.dead_letter")


def _module_file(module: str) -> Path | None:
    """The source file of a ``bridge`` module (its ``__init__.py`` for a package), or None."""
    base = REPO.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path, module: str) -> set[str]:
    """Every module ``path`` (the source of ``module``) names in an import statement, at any
    depth (functions and ``TYPE_CHECKING`` blocks included: a lazy import still runs in Lambda),
    with ``from package import name`` yielding both ``package`` and ``package.name``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def lambda_modules(entries: Iterable[str] = LAMBDA_ENTRY_MODULES) -> list[Path]:
    """The ``bridge`` source files the Lambda handlers import, transitively, with the
    ``__init__.py`` of every package on the way: what the zip must hold, found by reading the
    import statements (no import runs), so emulator, chaos, CLI and operations code never ship
    unless a handler really imports it (tests/unit/test_layers.py keeps the core from doing so)."""
    pending = list(entries)
    seen: set[str] = set()
    files: set[Path] = set()
    while pending:
        module = pending.pop()
        if module in seen or not (module == "bridge" or module.startswith("bridge.")):
            continue
        seen.add(module)
        path = _module_file(module)
        if path is None:
            continue  # ``from bridge.x import name`` where name is not a module
        files.add(path)
        parent = module.rpartition(".")[0]
        if parent:
            pending.append(parent)
        pending.extend(_imported_modules(path, module))
    return sorted(files)


def _stage_bridge(stage: Path) -> None:
    """Copy the ``bridge`` modules the handlers import (:func:`lambda_modules`), laid out as in
    the wheel."""
    for source in lambda_modules():
        target = stage / source.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def write_reproducible_zip(source_dir: Path, output: Path) -> Path:
    """Zip ``source_dir`` with sorted entries, one timestamp, normalised modes, no bytecode.

    Written to a temporary file first, so an interrupted build never leaves a partial zip where
    Terraform would hash it.
    """
    files = sorted(
        (p for p in source_dir.rglob("*") if p.is_file()),
        key=lambda p: p.relative_to(source_dir).as_posix(),
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for path in files:
            if "__pycache__" in path.parts or path.suffix in {".pyc", ".pyo"}:
                continue
            info = zipfile.ZipInfo(path.relative_to(source_dir).as_posix(), ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the mode below is honoured
            mode = 0o755 if path.suffix == ".so" or os.access(path, os.X_OK) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    partial.replace(output)
    return output


def build_lambda(
    output: Path | None = None,
    *,
    python_version: str = LAMBDA_PYTHON_VERSION,
    architecture: str = LAMBDA_ARCHITECTURE,
    requirements: Iterable[str] | None = None,
) -> Path:
    """Build the Lambda zip for ``python_version`` on ``architecture`` (at ``output``, else at
    :func:`lambda_zip`); return its path."""
    output = output or lambda_zip(python_version, architecture)
    reqs = list(lambda_requirements() if requirements is None else requirements)
    with tempfile.TemporaryDirectory(prefix="callback-bridge-lambda-") as tmp:
        stage = Path(tmp) / "package"
        stage.mkdir()
        if reqs:
            _pip(
                [
                    "install",
                    "--quiet",
                    "--no-compile",
                    "--target",
                    str(stage),
                    *platform_args(architecture, python_version),
                    *reqs,
                ],
                f"downloading {', '.join(reqs)} for python{python_version} on {architecture}",
            )
        shutil.rmtree(stage / "bin", ignore_errors=True)  # console scripts: useless in Lambda
        _stage_bridge(stage)
        return write_reproducible_zip(stage, output)


def build_wheels(
    output_dir: Path = WHEELS_DIR,
    *,
    python_version: str = WORKER_PYTHON_VERSION,
    architecture: str = "x86_64",
    handler_packages: Iterable[str] = (),
) -> list[Path]:
    """Fill ``output_dir`` with every wheel a worker installs: callback-bridge (built from this
    checkout), each handler package (a directory is built, anything else is a requirement), and
    all their dependencies for the workers' Python and architecture. Returns the wheels."""
    output_dir.mkdir(parents=True, exist_ok=True)
    local = [str(REPO), *(p for p in handler_packages if Path(p).is_dir())]
    remote = [p for p in handler_packages if not Path(p).is_dir()]
    for source in local:
        _pip(
            ["wheel", "--quiet", "--no-deps", "--wheel-dir", str(output_dir), source],
            f"building the wheel of {source}",
        )
    built = [_newest_wheel(output_dir, _project_name(Path(source))) for source in local]
    _pip(
        [
            "download",
            "--quiet",
            "--dest",
            str(output_dir),
            *platform_args(architecture, python_version),
            *map(str, built),
            *remote,
        ],
        f"downloading the dependencies for python{python_version} on {architecture}",
    )
    return sorted(output_dir.glob("*.whl"))


def _project_name(source: Path) -> str:
    pyproject = source / "pyproject.toml"
    if not pyproject.is_file():
        raise BuildError(f"{source} has no pyproject.toml: cannot tell which wheel it builds")
    name = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["name"]
    return re.sub(r"[-_.]+", "_", str(name)).lower()


def _newest_wheel(directory: Path, project: str) -> Path:
    wheels = [w for w in directory.glob("*.whl") if w.name.lower().startswith(project + "-")]
    if not wheels:
        raise BuildError(f"no wheel of {project} in {directory} after building it")
    return max(wheels, key=lambda w: w.stat().st_mtime)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tools.build_artifacts lambda|wheels``: exit 0 with the artifact paths printed,
    or 1 with the failed step on stderr."""
    parser = argparse.ArgumentParser(prog="python -m tools.build_artifacts", description=__doc__)
    sub = parser.add_subparsers(dest="artifact", required=True)
    lam = sub.add_parser("lambda", help="the completion and dead-letter Lambda zip")
    lam.add_argument(
        "--output", type=Path, help="default: dist/callback-bridge-lambda-pyVERSION-ARCH.zip"
    )
    lam.add_argument("--python-version", default=LAMBDA_PYTHON_VERSION)
    lam.add_argument("--architecture", default=LAMBDA_ARCHITECTURE, choices=["x86_64", "arm64"])
    whl = sub.add_parser("wheels", help="the wheels the workers install")
    whl.add_argument("--output", type=Path, default=WHEELS_DIR)
    whl.add_argument("--python-version", default=WORKER_PYTHON_VERSION)
    whl.add_argument("--architecture", default="x86_64", choices=["x86_64", "arm64"])
    whl.add_argument(
        "handler_packages",
        nargs="*",
        help="handler packages: project directories (built here) or pinned requirements",
    )
    args = parser.parse_args(argv)
    try:
        if args.artifact == "lambda":
            print(
                build_lambda(
                    args.output, python_version=args.python_version, architecture=args.architecture
                )
            )
        else:
            for wheel in build_wheels(
                args.output,
                python_version=args.python_version,
                architecture=args.architecture,
                handler_packages=args.handler_packages,
            ):
                print(wheel)
    except BuildError as exc:
        print(f"build_artifacts: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
