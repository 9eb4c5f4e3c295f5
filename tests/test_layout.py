"""The shape of the source packages: every module imports, none imports itself back through
others, and none is over 400 lines.

The import graph is read from the source with ``ast`` and holds every import statement:
those inside functions (kept lazy for start-up time) and under ``if TYPE_CHECKING:`` too,
because a cycle hidden in a function is still a cycle in the design. An edge goes to the
module an import names (``from pkg import mod`` names ``pkg.mod`` when that is a module);
importing ``a.b`` also runs ``a/__init__.py``, which is counted only through its own imports.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("orchestrator", "parsers", "reports")
MAX_LINES = 400
# Over the limit before the limit was tested, owned by other work in progress: each may not
# grow, and leaves this list once it is under the limit (the test says so).
KNOWN_OVER = {
    "orchestrator.config": 420,
    "orchestrator.models": 422,
    "orchestrator.reference_target.app": 418,
}
# Entry points run the program when imported; what they import is covered by the others.
ENTRY_POINT = "orchestrator.__main__"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


MODULES = source_modules()


def imported_modules(name: str, path: Path) -> set[str]:
    """The source modules that ``name`` imports, wherever in the file the import is."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    named: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            named += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                full = f"{base}.{alias.name}"
                named.append(full if full in MODULES else base)
    return {module for module in named if module in MODULES and module != name}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
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
                    cycles.append(sorted(component))
    return cycles


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_the_source_modules() -> None:
    graph = {name: imported_modules(name, path) for name, path in MODULES.items()}
    # The graph is really read: the CLI reaches the workflow through its commands.
    assert "orchestrator.workflow" in graph["orchestrator.commands.run"]
    assert find_cycles(graph) == []


@pytest.mark.parametrize("name", sorted(set(MODULES) - {ENTRY_POINT}))
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)


def test_no_module_is_over_400_lines() -> None:
    sizes = {
        name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in MODULES.items()
    }
    assert len(sizes) > 40  # the packages were found
    over = {name: n for name, n in sizes.items() if n > KNOWN_OVER.get(name, MAX_LINES)}
    assert over == {}, f"over {MAX_LINES} lines (or grown past the size noted in KNOWN_OVER)"
    now_under = sorted(name for name in KNOWN_OVER if sizes.get(name, 0) <= MAX_LINES)
    assert now_under == [], "under the limit now: remove from KNOWN_OVER"
