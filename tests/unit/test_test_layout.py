"""The test suite's own layout: shared helpers live in tests/support, nowhere else.

A test module never imports another test module or a ``conftest.py`` (a conftest holds only
fixtures, which pytest finds by itself); tests/support imports nothing else from tests/.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(TESTS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """(line, absolute dotted name) of everything ``source`` (a module of ``package``) imports:
    ``from a import b`` yields ``a`` and ``a.b`` (b may be a module); relative imports resolved."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join([*base, *([module] if module else [])])
            found.append((node.lineno, module))
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return found


def is_test_module(name: str) -> bool:
    """A test module or a conftest under tests/ (what no other module may import)."""
    last = name.rsplit(".", 1)[-1]
    return name.startswith("tests.") and (last.startswith("test_") or last == "conftest")


def violations(source: str, module: str, package: str) -> list[str]:
    problems = []
    for line, name in imported_modules(source, package):
        if is_test_module(name) and name != module:
            problems.append(f"{line}: imports {name}; move the helper to tests/support")
        elif (
            module.startswith("tests.support")
            and name.startswith("tests.")
            and not name.startswith("tests.support")
        ):
            problems.append(f"{line}: tests/support imports {name} from outside tests/support")
    return problems


def test_no_module_imports_a_test_module_or_a_conftest() -> None:
    problems = []
    for path in sorted(TESTS.rglob("*.py")):
        module = module_name(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        source = path.read_text(encoding="utf-8")
        rel = path.relative_to(TESTS.parent)
        problems += [f"{rel}:{problem}" for problem in violations(source, module, package)]
    assert problems == []


def test_the_check_sees_cross_tier_and_relative_imports() -> None:
    source = (
        "from tests.functional.conftest import start\n"
        "from tests.e2e import test_pipeline\n"
        "from .conftest import stack\n"
        "import tests.infra.test_terraform\n"
        "from tests.support.aws import depth\n"
        "from tests.e2e.scripts import runs\n"
    )
    problems = violations(source, "tests.e2e.test_example", "tests.e2e")
    assert [p.split(";")[0] for p in problems] == [
        "1: imports tests.functional.conftest",
        "2: imports tests.e2e.test_pipeline",
        "3: imports tests.e2e.conftest",
        "4: imports tests.infra.test_terraform",
    ]
    assert violations("from tests.e2e.scripts import runs\n", "tests.support.x", "tests.support")
