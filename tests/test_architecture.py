"""The arrows allowed between the rooms, read from the source (ARCHITECTURE.md).

Every import counts, at module level or inside a function, except those under
``if TYPE_CHECKING:`` (they never run). An import of ``a.b`` names the module
``a.b``; ``from a.b import c`` names ``a.b.c`` when that is a module, else ``a.b``.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("webhooks", "realtime")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules(*packages: str) -> dict[str, Path]:
    found = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node that can run: the bodies of ``if TYPE_CHECKING:`` are left out."""
    pending = [tree]
    while pending:
        node = pending.pop()
        yield node
        if isinstance(node, ast.If) and is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))


def imported(path: Path, name: str, modules: Collection[str] = ()) -> set[str]:
    """The dotted names ``path`` (module ``name``) imports at run time.

    ``from a.b import c`` gives ``a.b.c`` when that is one of ``modules``, else ``a.b``.
    """
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                parent = ".".join([*base, *([node.module] if node.module else [])])
            else:
                parent = node.module or ""
            for alias in node.names:
                child = f"{parent}.{alias.name}"
                names.add(child if child in modules else parent)
    return names


def graph(*packages: str) -> dict[str, set[str]]:
    """Module -> the modules of ``packages`` it imports."""
    modules = source_modules(*packages)
    return {
        name: {t for t in imported(path, name, modules) if t in modules} - {name}
        for name, path in modules.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def all_imports(*packages: str) -> Iterator[tuple[str, str]]:
    """(module, imported name) for every runtime import in ``packages``, any target."""
    modules = source_modules(*CHECKED, "orders")
    for name, path in source_modules(*packages).items():
        for target in imported(path, name, modules):
            yield name, target


def test_no_import_cycle_in_webhooks_or_realtime() -> None:
    found = cycles(graph(*CHECKED))
    assert found == [], "import cycles (each list imports itself round):\n" + "\n".join(
        " -> ".join(component) for component in found
    )


def test_webhooks_never_imports_realtime() -> None:
    offenders = sorted(
        f"{module} imports {target}"
        for module, target in all_imports("webhooks")
        if target == "realtime" or target.startswith("realtime.")
    )
    assert offenders == []


FORBIDDEN_TO_PROVIDERS = ("webhooks.models", "webhooks.ingest", "webhooks.processing")


def test_providers_import_nothing_from_models_ingest_or_processing() -> None:
    offenders = sorted(
        f"{module} imports {target}"
        for module, target in all_imports("webhooks/providers")
        if any(
            target == room or target.startswith(room + ".")
            for room in FORBIDDEN_TO_PROVIDERS
        )
    )
    assert offenders == []


def offenders_of(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module, target in all_imports(package)
        if any(target == room or target.startswith(room + ".") for room in forbidden)
    )


def test_processing_never_imports_ingest() -> None:
    # Ingest hands work to processing through dispatch; the other way round would tie
    # the worker to the request path.
    assert offenders_of("webhooks/processing", ("webhooks.ingest",)) == []


def test_observability_imports_neither_ingest_nor_processing() -> None:
    # Both report to it; it reads only models and settings, so it can never call back.
    forbidden = ("webhooks.ingest", "webhooks.processing")
    assert offenders_of("webhooks/observability", forbidden) == []
    assert offenders_of("webhooks/alerts", forbidden) == []


def test_nothing_imports_the_demo_project() -> None:
    offenders = sorted(
        f"{module} imports {target}"
        for module, target in all_imports("webhooks", "realtime", "orders")
        if target == "project" or target.startswith("project.")
    )
    assert offenders == []


# The checker itself: each rule must be able to fail.


def test_a_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def later():\n    from pkg.a import thing\n")
    (package / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n"
    )
    known = {"pkg", "pkg.a", "pkg.b", "pkg.c"}
    edges = {
        f"pkg.{path.stem}": imported(path, f"pkg.{path.stem}", known) & known - {"pkg"}
        for path in sorted(package.glob("[abc].py"))
    }
    assert edges["pkg.c"] == set()  # TYPE_CHECKING imports never run
    assert cycles(edges) == [["pkg.a", "pkg.b"]]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import realtime.hub\n", "realtime.hub"),
        ("def f():\n    from realtime import consumers\n", "realtime.consumers"),
    ],
)
def test_imports_inside_functions_are_read(
    tmp_path: Path, source: str, expected: str
) -> None:
    path = tmp_path / "module.py"
    path.write_text(source)
    known = {"realtime", "realtime.hub", "realtime.consumers"}
    assert imported(path, "module", known) == {expected}
