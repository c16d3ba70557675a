"""The layout's promises: no import cycle between modules, imports inside functions included;
no import inside a function unless it is listed below with its reason; the contracts' layers.

A function-level ("late") import still ties two modules together: it only hides the circle
until the function first runs (and an import-order accident turns it into an ImportError).
Services queue their tasks by name through their domain's ``dispatch`` module instead.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("platforms", "dashboard")

#: Imports inside functions that must stay there: (importing module, imported module) → why.
LATE_IMPORTS_ALLOWED: dict[tuple[str, str], str] = {
    # ``AppConfig.ready()`` is Django's place for modules that define or use models: they cannot
    # load while ``platforms.apps`` itself loads (the app registry is not ready yet).
    ("platforms.apps", "platforms.server.health"): "AppConfig.ready(): uses models",
    ("platforms.apps", "platforms.coverage.signals"): "AppConfig.ready(): connects receivers",
    ("platforms.apps", "platforms.mirror.signals"): "AppConfig.ready(): connects receivers",
    ("dashboard.apps", "dashboard.middleware"): "AppConfig.ready(): connects the login receiver",
    ("dashboard.apps", "dashboard.checks"): "AppConfig.ready(): registers the deploy checks",
    ("dashboard.apps", "dashboard.timezones"): "AppConfig.ready(): connects the login receiver",
    # openpyxl takes hundreds of milliseconds to import; only a workbook download needs it.
    ("dashboard.exports", "openpyxl"): "heavy, loaded on the first workbook download only",
}

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[_module_name(path)] = path
    return found


@dataclass(frozen=True)
class Import:
    node: ast.Import | ast.ImportFrom
    late: bool  # inside a function: runs when the function first runs, not at load
    function: str = ""


def _imports(tree: ast.Module) -> list[Import]:
    """Every import statement that can run (``if TYPE_CHECKING`` excluded), at load or late."""
    found: list[Import] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for branch in child.orelse:
                    visit_one(branch, function)
                continue
            visit_one(child, function)

    def visit_one(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(Import(node, bool(function), function))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            visit(node, node.name if not function else f"{function}.{node.name}")
        else:
            visit(node, function)

    visit(tree, "")
    return found


def _targets(node: ast.Import | ast.ImportFrom, name: str, is_package: bool,
             modules: dict[str, Path]) -> list[str]:
    """The modules an import statement loads (of ours, or the top-level name of another's)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = name if is_package else name.rpartition(".")[0]
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    # ``from pkg import module`` imports the module; ``from pkg import name``, pkg.
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
            for alias in node.names]


def import_graph(*, late: bool = True) -> dict[str, set[str]]:
    """Module → the modules of ours it imports (``late``: imports inside functions too)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for found in _imports(ast.parse(path.read_text(), str(path))):
            if found.late and not late:
                continue
            for target in _targets(found.node, name, path.name == "__init__.py", modules):
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def late_imports() -> list[tuple[str, str, str, int]]:
    """``(module, imported module, function, line)`` of every import inside a function."""
    modules = _modules()
    found = []
    for name, path in modules.items():
        for imp in _imports(ast.parse(path.read_text(), str(path))):
            if imp.late:
                for target in _targets(imp.node, name, path.name == "__init__.py", modules):
                    found.append((name, target, imp.function, imp.node.lineno))
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
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
    return found


def test_no_module_imports_itself_in_a_circle():
    """Counting imports inside functions as well as those that run at load."""
    assert cycles(import_graph()) == []


def test_no_import_inside_a_function_unless_allowed():
    offenders = [
        f"{module}:{line} imports {target} inside {function}()"
        for module, target, function, line in late_imports()
        if (module, target) not in LATE_IMPORTS_ALLOWED
        and not any(target.startswith(f"{allowed}.") for m, allowed in LATE_IMPORTS_ALLOWED
                    if m == module)
    ]
    assert offenders == []


def test_the_allowed_late_imports_still_exist():
    """A reason for an import that is gone would allow a new one silently."""
    present = {(module, target) for module, target, _, _ in late_imports()}
    assert set(LATE_IMPORTS_ALLOWED) - present == set()


def test_late_imports_are_found():
    """The finder itself: an import in a nested function or a method is late, one under
    ``if TYPE_CHECKING`` is not counted, one in a module-level ``try`` runs at load."""
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import typed\n"
        "try:\n    import loaded\nexcept ImportError:\n    pass\n"
        "def f():\n    def g():\n        import nested\n"
        "class C:\n    def m(self):\n        from pkg import thing\n"
    )
    found = {(ast.unparse(i.node), i.late, i.function) for i in _imports(tree)}
    assert found == {("from typing import TYPE_CHECKING", False, ""),
                     ("import loaded", False, ""), ("import nested", True, "f.g"),
                     ("from pkg import thing", True, "m")}


def test_the_cycle_check_finds_a_circle():
    """The detector itself: a -> b -> c -> a is reported, a tree is not."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_import_contracts_hold():
    """``[tool.importlinter]`` in pyproject.toml: dashboard → domains → client/access; the
    sandbox knows nothing of Django or the dashboard."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True,
                            text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
