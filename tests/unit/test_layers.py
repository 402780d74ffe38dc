"""The import contract: the layers of README's "Layout", enforced on every import statement.

Outer layers may import inner ones, never the reverse, and no module imports itself back
through others (no cycles):

    cli         bridge.cli                 flags and environment → settings → library calls
    tools       bridge.local_stack, bridge.chaos, benchmarks, tools    (not product)
    operations  bridge.ops                 │ siblings: neither imports the other
    worker      consumers                  │
    core        every other bridge module  contract, timing, limits, config/aws, the Lambdas, ...

Every module belongs to a layer by its name, so a new module is covered the day it is added.
The graph comes from grimp (the library under import-linter), which reads import statements at
any depth: inside functions and under ``TYPE_CHECKING`` too, because a lazy import is still a
dependency. The core and the worker may use only the standard library and the product's own
runtime dependencies, so a wheel user who never runs ``local up`` never imports moto, and the
Lambda zip needs nothing the runtime lacks.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator

import grimp
import pytest

from tools.build_artifacts import REPO, lambda_modules

PACKAGES = ("bridge", "consumers", "benchmarks", "tools")
#: Module prefix → layer; the longest matching prefix wins.
LAYER_OF_PREFIX = {
    "bridge.cli": "cli",
    "bridge.local_stack": "tools",
    "bridge.chaos": "tools",
    "benchmarks": "tools",
    "tools": "tools",
    "bridge.ops": "operations",
    "consumers": "worker",
    "bridge": "core",
}
RANK = {"core": 0, "worker": 1, "operations": 1, "tools": 2, "cli": 3}
#: Third-party packages the core and the worker may import: the runtime dependencies
#: (pyproject's [project.dependencies] minus the CLI's typer and rich).
PRODUCT_EXTERNALS = {"boto3", "botocore", "pydantic", "pydantic_core", "aws_lambda_powertools"}


def layer_of(module: str) -> str:
    prefixes = [p for p in LAYER_OF_PREFIX if module == p or module.startswith(p + ".")]
    if not prefixes:
        raise KeyError(f"{module} is in no layer")
    return LAYER_OF_PREFIX[max(prefixes, key=len)]


def may_import(importer: str, imported: str) -> bool:
    a, b = layer_of(importer), layer_of(imported)
    return a == b or RANK[a] > RANK[b]


def layer_violations(graph: grimp.ImportGraph) -> list[str]:
    """Every import that points outward or sideways, as ``importer -> imported (a -> b)``."""
    found = []
    for importer in sorted(m for m in graph.modules if not graph.is_module_squashed(m)):
        if importer.split(".")[0] not in PACKAGES:
            continue
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if imported.split(".")[0] in PACKAGES and not may_import(importer, imported):
                found.append(
                    f"{importer} -> {imported} ({layer_of(importer)} -> {layer_of(imported)})"
                )
    return found


def cycles(graph: grimp.ImportGraph, modules: Iterable[str]) -> list[list[str]]:
    """Strongly connected components of more than one module among ``modules``."""
    nodes = set(modules)
    edges = {m: sorted(set(graph.find_modules_directly_imported_by(m)) & nodes) for m in nodes}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(root: str) -> None:  # iterative Tarjan: module chains can be deep
        work: list[tuple[str, Iterator[str]]] = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(edges[successor])))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))

    for module in sorted(nodes):
        if module not in index:
            visit(module)
    return found


def external_imports(graph: grimp.ImportGraph, layers: set[str]) -> list[str]:
    """Third-party packages imported by modules of ``layers`` beyond PRODUCT_EXTERNALS."""
    found = []
    for module in sorted(graph.modules):
        if module.split(".")[0] not in PACKAGES or layer_of(module) not in layers:
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            top = imported.split(".")[0]
            if top in PACKAGES or top in sys.stdlib_module_names or top in PRODUCT_EXTERNALS:
                continue
            found.append(f"{module} -> {imported}")
    return sorted(found)


def own_modules(graph: grimp.ImportGraph) -> list[str]:
    return sorted(m for m in graph.modules if m.split(".")[0] in PACKAGES)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, include_external_packages=True, cache_dir=None)


def test_every_import_points_inward(graph: grimp.ImportGraph) -> None:
    assert layer_violations(graph) == []


def test_no_module_imports_itself_back(graph: grimp.ImportGraph) -> None:
    assert cycles(graph, own_modules(graph)) == []


def test_product_and_worker_use_only_the_runtime_dependencies(graph: grimp.ImportGraph) -> None:
    assert external_imports(graph, {"core", "worker"}) == []


def _planted(*imports: tuple[str, str]) -> grimp.ImportGraph:
    planted = grimp.build_graph(*PACKAGES, include_external_packages=True, cache_dir=None)
    for importer, imported in imports:
        planted.add_import(importer=importer, imported=imported)
    return planted


def test_the_contract_catches_a_forbidden_import() -> None:
    """Each rule fails on an import planted in today's graph."""
    outward = _planted(
        ("bridge.contract", "bridge.cli.main"),
        ("consumers.worker", "bridge.ops.status"),
        ("bridge.ops.status", "consumers.worker"),
    )
    assert layer_violations(outward) == [
        "bridge.contract -> bridge.cli.main (core -> cli)",
        "bridge.ops.status -> consumers.worker (operations -> worker)",
        "consumers.worker -> bridge.ops.status (worker -> operations)",
    ]
    cyclic = _planted(("bridge.contract", "bridge.limits"), ("bridge.limits", "bridge.contract"))
    assert layer_violations(cyclic) == []
    assert ["bridge.contract", "bridge.limits"] in cycles(cyclic, own_modules(cyclic))
    moto = _planted(("consumers.worker", "moto"))
    assert external_imports(moto, {"core", "worker"}) == ["consumers.worker -> moto"]


def test_every_module_has_a_layer(graph: grimp.ImportGraph) -> None:
    assert {layer_of(m) for m in own_modules(graph)} == set(RANK)
    with pytest.raises(KeyError):
        layer_of("moto.sqs")


def test_the_lambda_zip_holds_only_core_modules() -> None:
    """What ``make lambda`` stages (tools/build_artifacts.lambda_modules) is core, and holds
    both handlers."""
    names = [
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for p in lambda_modules()
    ]
    assert {"bridge.completion", "bridge.dead_letter"} <= set(names)
    assert [n for n in names if layer_of(n) != "core"] == []
