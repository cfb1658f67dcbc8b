"""The house rules of the package layout, read from the source: no import cycles, a core that
knows only interfaces, production code that never loads the test fakes up front, and rooms of a
livable size. The import graph is built from the AST, so it sees imports inside functions too
(an import moved into a function to dodge a cycle is still a cycle)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import blitz

PACKAGE = Path(blitz.__file__).parent
MAX_LINES = 500

CORE = ("blitz.domain", "blitz.dag", "blitz.router", "blitz.breaker", "blitz.conductor")
"""Modules (and packages) that decide; they see the outside world only through interfaces."""

FORBIDDEN_IN_CORE = (
    "subprocess",
    "sqlalchemy",
    "psycopg",
    "alembic",
    "anthropic",
    "openai",
    "pydantic_ai",
    "claude_agent_sdk",
    "httpx",
    "ray",
    "fastapi",
    "blitz.store.sql",
    "blitz.process",
    "blitz.proctree",
    "blitz.git",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {
    module_name(path): path
    for path in sorted(PACKAGE.rglob("*.py"))
    if "migrations" not in path.parts
}


def _type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, *, top: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import under ``node`` but those under ``if TYPE_CHECKING:``; with whether it runs
    when the module is imported (``top``) or only when a function is called."""
    for child in ast.iter_child_nodes(node):
        if _type_checking_block(child):
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, top
        inner = top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield from _walk(child, top=inner)


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".")
    if MODULES[module].name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(module: str) -> Iterator[tuple[str, bool]]:
    """(imported module, at import time?) for every import in ``module``."""
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    for node, top in _walk(tree, top=True):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, top
            continue
        target = _resolve(module, node)
        for alias in node.names:
            child = f"{target}.{alias.name}"
            yield (child if child in MODULES else target), top


def internal_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name in MODULES:
        for target, _top in imports(name):
            if target in MODULES and target != name:
                graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
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
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_in_a_circle() -> None:
    assert cycles(internal_graph()) == []


def _in_core(module: str) -> bool:
    return any(module == core or module.startswith(core + ".") for core in CORE)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _in_core(m)))
def test_the_core_imports_no_sdk_sql_or_subprocess(module: str) -> None:
    bad = sorted(
        {
            target
            for target, _top in imports(module)
            if any(target == f or target.startswith(f + ".") for f in FORBIDDEN_IN_CORE)
        }
    )
    assert bad == [], f"{module} imports {bad}"
    assert "/proc" not in MODULES[module].read_text(), f"{module} reads /proc"


def test_production_code_loads_no_fake_at_import_time() -> None:
    offenders = sorted(
        f"{module} -> {target}"
        for module in MODULES
        if not module.startswith("blitz.testing")
        for target, top in imports(module)
        if top and target.startswith("blitz.testing")
    )
    assert offenders == []


def test_modules_stay_a_livable_size() -> None:
    big = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert big == {}, f"modules over {MAX_LINES} lines (split by concept): {big}"
