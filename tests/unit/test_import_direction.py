"""Dependencies point one way: engine <- diagnostics <- ui/report/remote, with no circles.

Walks the AST of every module in cockpit/ and collects every import, at module level and
inside functions alike (an import inside a function is still a dependency; it only moves
the moment it is paid). Imports under ``if TYPE_CHECKING:`` are left out: they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cockpit

PACKAGE = Path(cockpit.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, modules: set[str], here: str, is_package: bool) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".") if is_package else here.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                # ``from cockpit.engine import rundir`` depends on the submodule itself.
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name in modules}


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    return {
        name: _imports(ast.parse(path.read_text(encoding="utf-8")), modules, name, path.name == "__init__.py") - {name}
        for name, path in files.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def connect(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def _is_inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_graph_sees_function_level_imports():
    # cli.py imports the session inside its command functions only: it must still be an edge.
    source = (PACKAGE / "cli.py").read_text(encoding="utf-8")
    assert "\nfrom cockpit.engine.session" not in source
    assert "cockpit.engine.session" in _graph()["cockpit.cli"]


def test_the_engine_never_imports_diagnostics_or_the_front_ends():
    graph = _graph()
    upward = ("cockpit.diagnostics", "cockpit.ui", "cockpit.report", "cockpit.remote")
    wrong = sorted(
        f"{source} -> {target}"
        for source, targets in graph.items()
        if _is_inside(source, "cockpit.engine")
        for target in targets
        if any(_is_inside(target, package) for package in upward)
    )
    assert wrong == []


def test_diagnostics_never_import_the_front_ends():
    graph = _graph()
    upward = ("cockpit.ui", "cockpit.report", "cockpit.remote")
    wrong = sorted(
        f"{source} -> {target}"
        for source, targets in graph.items()
        if _is_inside(source, "cockpit.diagnostics")
        for target in targets
        if any(_is_inside(target, package) for package in upward)
    )
    assert wrong == []


def test_no_import_cycles_among_cockpit_modules():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
