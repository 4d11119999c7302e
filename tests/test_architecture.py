"""The package's layout rules: no import circle (imports inside functions count), no module
over 600 lines, no module importing another module's private name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dbm_lightning"
MAX_LINES = 600
CONFIG_CHECK_MAX_LINES = 300


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> list[tuple[str, str]]:
    """``(imported module, imported name or "")`` of every import statement of a module,
    wherever it stands (module level, functions, ``TYPE_CHECKING`` blocks)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.append((full, "") if full in MODULES else (base, alias.name))
    return out


def _graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports from (a package's ``__init__`` when a name is
    taken from the package itself)."""
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        targets = {module for module, _ in _imports(name, path)}
        graph[name] = {t for t in targets if t in MODULES and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_among_the_package_modules() -> None:
    graph = _graph()
    assert len(graph) > 40  # the walk saw the package
    assert "dbm_lightning.models.classic" in graph["dbm_lightning.training"]
    assert _cycles(graph) == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_at_most_600_lines(name: str) -> None:
    n = len(MODULES[name].read_text().splitlines())
    assert n <= MAX_LINES, f"{MODULES[name]}: {n} lines"


def test_the_config_check_is_small() -> None:
    """Keys, types, defaults and ranges live in the schema; the checker only walks it."""
    n = len(MODULES["dbm_lightning.config_check"].read_text().splitlines())
    assert n <= CONFIG_CHECK_MAX_LINES


def test_no_module_imports_a_private_name_of_another() -> None:
    private = []
    for name, path in MODULES.items():
        for module, imported in _imports(name, path):
            if module.startswith("dbm_lightning") and imported.startswith("_"):
                private.append(f"{name}: {module}.{imported}")
    assert private == []


def test_no_test_module_imports_another() -> None:
    """Shared fixtures live in conftest.py and shared helpers in tests/helpers.py."""
    tests = Path(__file__).resolve().parent
    offending = []
    for path in sorted(tests.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offending += [
                f"{path.name}: {n}" for n in names if n.startswith("test_") or n == "conftest"
            ]
    assert offending == []
