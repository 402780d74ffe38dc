"""The moto version guard. The tested range has one home: the ``moto`` pin in pyproject.toml,
read back from the installed package's metadata (or from the source tree's pyproject.toml)."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

DISTRIBUTION = "callback-bridge"


class CompatError(RuntimeError):
    """The embedded stack cannot offer AWS behaviour with the installed moto."""


def tested_moto_range() -> SpecifierSet:
    try:
        requirements = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[3] / "pyproject.toml"
        extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
        requirements = [r for group in extras.values() for r in group]
    for line in requirements:
        requirement = Requirement(line)
        if requirement.name == "moto":
            return requirement.specifier
    raise CompatError("no moto requirement found in callback-bridge's metadata")


def check_moto_version(installed: str | None = None) -> str:
    """Return the installed moto version, or raise naming it and the tested range."""
    if installed is None:
        import moto

        installed = moto.__version__
    tested = tested_moto_range()
    if Version(installed) not in tested:
        raise CompatError(
            f"moto {installed} is outside the range the embedded stack is tested with "
            f"(moto{tested}); install it with: pip install 'moto[server]{tested}'"
        )
    return installed
