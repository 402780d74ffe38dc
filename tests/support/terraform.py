"""The Terraform under infra/ read with python-hcl2 (infra tier, and e2e tests of its examples).

python-hcl2 7.x returns bare strings, 8.x keeps the quotes of string literals and block labels
and adds "__is_block__" markers; :func:`parse` normalises both.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import hcl2

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
MODULES_DIR = INFRA / "modules"
EXAMPLES_DIR = INFRA / "examples"
ASL = INFRA / "statemachine" / "bridge.asl.json"
SYSTEMD = REPO / "consumers" / "systemd"

MODULES = (
    "queues",
    "state_machine",
    "completion",
    "dead_letter",
    "consumers",
    "alarms",
    "claim_check",
    "fanout",
    "private_bucket",
)


def _unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _clean(node: Any) -> Any:
    """Normalise python-hcl2 7.x / 8.x output: drop markers, strip quotes."""
    if isinstance(node, dict):
        return {_unquote(k): _clean(v) for k, v in node.items() if not str(k).startswith("__")}
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return _unquote(node)


@functools.cache
def parse(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return _clean(hcl2.load(fh))


def blocks(path: Path, kind: str) -> list[tuple[str, dict[str, Any]]]:
    """(label, body) of every single-label block of a kind (variable, output...)."""
    found = []
    for entry in parse(path).get(kind, []):
        for label, body in entry.items():
            found.append((label, body))
    return found


def labelled2(path: Path, kind: str, type_name: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, body) of every `kind "type_name" "name"` block (resource, data)."""
    found = []
    for entry in parse(path).get(kind, []):
        for tname, named in entry.items():
            if tname != type_name:
                continue
            for name, body in named.items():
                found.append((name, body))
    return found


def module_locals(module_dir: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for tf in sorted(module_dir.glob("*.tf")):
        for entry in parse(tf).get("locals", []):
            merged.update(entry)
    return merged


def module_variables(module_dir: Path) -> dict[str, dict[str, Any]]:
    return {
        name: body
        for tf in sorted(module_dir.glob("*.tf"))
        for name, body in blocks(tf, "variable")
    }


def module_outputs(module_dir: Path) -> dict[str, dict[str, Any]]:
    return {
        name: body for tf in sorted(module_dir.glob("*.tf")) for name, body in blocks(tf, "output")
    }


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def variable_default(variables: dict[str, dict[str, Any]], name: str) -> Any:
    """The default of variable ``name`` in ``module_variables(...)``."""
    return variables[name]["default"]


def unit_directives(path: Path) -> dict[str, str]:
    """``Key=value`` directives of a systemd unit (sections and comments skipped)."""
    directives = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, _, value = line.partition("=")
            directives[key.strip()] = value.strip()
    return directives


def provider_mirror() -> Path | None:
    """A local mirror of the AWS provider for ``terraform init -plugin-dir`` (offline)."""
    for candidate in (os.environ.get("TF_PLUGIN_DIR"), "/opt/tf-plugins"):
        if candidate and (Path(candidate) / "registry.terraform.io/hashicorp/aws").is_dir():
            return Path(candidate)
    return None
