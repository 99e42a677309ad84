"""The package's import graph (read from the source with ``ast``, imports inside functions
included) has no circle and no arrow up the layers (#17)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS: dict[str, int] = {
    "errors": 0,
    "registry": 0,
    "choices": 0,
    "utils": 1,
    "dar": 2,
    "metrics": 2,
    "models": 2,
    "data": 2,
    "config": 3,
    "ssl_config": 3,
    "losses": 3,
    "evaluation": 3,
    "reporting": 3,
    "objective": 4,
    "run_data": 4,
}
"""Packages and modules below ``training`` (the only layer that knows Lightning) and the
ones above it (``tuning``, ``reproduce``, ``deploy``, ``cli``): an import may only go to the
same layer or down. Modules not listed are not checked for direction (cycles still are)."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str) -> set[str]:
    """Every ``dasl`` module ``path`` imports, at the top or inside a function
    (``from dasl.x import y`` counts as ``dasl.x.y`` when that is a module, else ``dasl.x``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "dasl")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "dasl":
                continue
            for alias in node.names:
                found.add(f"{mod}.{alias.name}")
                found.add(mod)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in SRC.joinpath("dasl").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets = {t for t in imports_of(path, name) if t in files and t != name}
        # ``from dasl.x import y`` with y a name: the edge is to dasl.x, kept above.
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (a list of modules, first == last), else ``None``. A package's
    own ``__init__`` importing its submodules is not a cycle with them unless they import
    it back."""
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if colour.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = 2
        return None

    for start in sorted(graph):
        if colour.get(start) is None:
            found = visit(start)
            if found:
                return found
    return None


def layer(module: str) -> int | None:
    parts = module.split(".")[1:]
    return LAYERS.get(parts[0]) if parts else None


def test_find_cycle_finds_a_planted_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_arrow_up_the_layers() -> None:
    upward = []
    for module, targets in import_graph().items():
        low = layer(module)
        for target in targets:
            high = layer(target)
            if low is not None and (high is None or high > low):
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that go up the layers: " + ", ".join(sorted(upward))


@pytest.mark.parametrize("module", ["dasl.config", "dasl.ssl_config", "dasl.registry"])
def test_config_modules_import_nothing_inside_functions(module: str) -> None:
    """The config is no hub: it names the registries it validates with, at the top."""
    path = SRC / (module.replace(".", "/") + ".py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inner = [
        node.lineno
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(fn)
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    assert not inner, f"{module}: imports inside functions at lines {inner}"
