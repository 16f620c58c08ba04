"""The package's shape: no import cycles, a core that imports no feature, and features that depend one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tracker"
CORE = {"config", "db", "clock", "errors", "audit", "trail", "i18n", "models", "queries", "http", "text", "migrate",
        "error_pages", "fields"}
# What each feature may import besides the core (desk → custody → items → accounts → core; labels print items).
FEATURES = {
    "items": {"accounts"},  # a department's managers are typed with the people suggestions (accounts.people)
    "accounts": set(),
    "custody": {"accounts"},  # a take-out's witness confirms with their own password (accounts.signin); people typed
    "notify": set(),
    "reports": {"labels"},  # the PDF records print with the label font
    "labels": {"items"},
    "desk": {"custody", "items", "labels"},
    "sso": {"accounts"},  # single sign-on and SCIM provisioning create, find and disable accounts
    "ops": {"desk", "custody", "notify"},  # running in production: the scheduler's lease, health, metrics, backups
    "api": {"accounts", "custody", "desk", "items", "labels"},  # the JSON API calls the rules the pages call
    "stocktake": {"desk", "custody", "items", "labels", "reports"},  # counts with the desk's scanner, flags, reports
}
# Entry points that put the features together: the app factory, the CLI, the scheduler and its jobs, demo data.
ENTRY = {"__init__", "cli", "jobs", "scheduler", "demo"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every tracker module `name` imports, at the top or inside functions."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("tracker")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("tracker"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    # Importing a submodule runs its package's __init__ first; that is not a dependency of the code.
    return {m for m in found if m in known and m != name and not name.startswith(m + ".")}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    """Which tracker modules each one imports; read once for the module's tests, which only look at it."""
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _area(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def test_the_graph_sees_the_imports_it_must(graph):
    assert "tracker.custody.operations" in graph["tracker.custody.views"]
    assert "tracker.http" in graph["tracker.desk.views"]
    assert "tracker.models" in graph["tracker.audit"]


def test_no_module_of_the_package_imports_itself_through_others(graph):
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def test_every_module_has_a_place(graph):
    areas = {_area(m) for m in graph}
    assert areas <= CORE | set(FEATURES) | ENTRY, areas - (CORE | set(FEATURES) | ENTRY)


@pytest.mark.parametrize("core", sorted(CORE))
def test_the_core_imports_no_feature(graph, core):
    imported = {_area(m) for m in graph.get(f"tracker.{core}", set())}
    assert imported <= CORE, f"tracker.{core} imports {sorted(imported - CORE)}"


@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_features_depend_one_way(graph, feature):
    allowed = CORE | {feature} | FEATURES[feature]
    imported = {_area(m) for name, deps in graph.items() if _area(name) == feature for m in deps}
    assert imported <= allowed, f"tracker.{feature} imports {sorted(imported - allowed)}"
