"""The shape of the package code: no module imports another of its package that imports it back
(also through an import inside a function), no module takes another's private name, and modules
and functions stay small enough to read (issue 13: at most 450 and 80 lines)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("space", "connectors", "sandbox", "contracts", "policies", "node", "tds")
MODULE_LINES, FUNCTION_LINES = 450, 80


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> Iterator[tuple[str, str]]:
    """(module imported, name taken from it or "") for every import anywhere in the file."""
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    yield alias.name, ""
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if f"{node.module}.{alias.name}" in known:  # a module of a package
                    yield f"{node.module}.{alias.name}", ""
                elif node.module in known:
                    yield node.module, alias.name


def private_attributes(path: Path, known: dict[str, Path]) -> Iterator[tuple[str, str]]:
    """(module, name) for every ``module._name`` read through an imported module's alias."""
    tree = ast.parse(path.read_text("utf-8"))
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if f"{node.module}.{alias.name}" in known:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known and alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            yield aliases[node.value.id], node.attr


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def package_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        package = name.split(".")[0]
        graph[name] = {m for m, _ in imports(path, known) if m.split(".")[0] == package and m != name}
    return graph


def test_no_module_imports_one_that_imports_it_back() -> None:
    assert cycles(package_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above is not vacuous: a cycle through three modules is reported."""
    graph = {"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "a.w": {"a.x"}}
    assert cycles(graph) == [["a.x", "a.y", "a.z"]]


def test_no_module_takes_a_private_name_of_another() -> None:
    known = modules()
    taken = []
    for name, path in known.items():
        for module, attribute in [*imports(path, known), *private_attributes(path, known)]:
            if attribute.startswith("_") and not attribute.startswith("__") and module != name:
                taken.append(f"{name} uses {module}.{attribute}")
    assert taken == []


def lengths() -> Iterator[tuple[str, int, dict[str, int]]]:
    for path in modules().values():
        rel = path.relative_to(ROOT).as_posix()
        source = path.read_text("utf-8")
        functions = {
            f"{rel}:{node.name}": node.end_lineno - node.lineno + 1  # type: ignore[operator]
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        yield rel, len(source.splitlines()), functions


def test_modules_and_functions_stay_short() -> None:
    too_long = []
    for rel, lines, functions in lengths():
        if lines > MODULE_LINES:
            too_long.append(f"{rel}: {lines} lines")
        too_long += [
            f"{name}: {length} lines" for name, length in functions.items() if length > FUNCTION_LINES
        ]
    assert too_long == []
