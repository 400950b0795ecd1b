"""
The package's import graph: no module imports one that imports it back, at run time.

Imports under ``if TYPE_CHECKING:`` do not count; imports inside functions do (they hide a cycle,
they do not remove it).
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from tests.conftest import REPO

if TYPE_CHECKING:
    from pathlib import Path

PACKAGE = "airflow_provider_bridge"


def _modules() -> dict[str, Path]:
    found = {}
    for path in (REPO / PACKAGE).rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _runtime_imports(path: Path, modules: dict[str, Path]) -> set[str]:
    imported: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            test = node.test
            if getattr(test, "id", None) == "TYPE_CHECKING" or getattr(test, "attr", None) == "TYPE_CHECKING":
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            imported.update(alias.name for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.module:
                imported.add(node.module)
                imported.update(f"{node.module}.{alias.name}" for alias in node.names)

    Visitor().visit(ast.parse(path.read_text()))
    return {name for name in imported if name in modules}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle():
    modules = _modules()
    graph = {name: _runtime_imports(path, modules) - {name} for name, path in modules.items()}
    assert f"{PACKAGE}.triggers.entity" in graph[f"{PACKAGE}.sensors.entity"]  # the walk sees imports
    assert _cycles(graph) == []


def test_the_walk_finds_a_cycle_hidden_in_a_function():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_each_module_of_the_request_path_imports_alone():
    """Each in a fresh interpreter: no module works only because another was imported first."""
    import subprocess
    import sys

    names = [
        "vendors",
        "get_provider_info",
        "retry_policy",
        "changes",
        "hooks.connection",
        "hooks.responses",
        "hooks.transport",
        "hooks.auth",
        "hooks.oauth",
        "hooks.paging",
        "hooks.reconcile",
        "hooks.base",
        "state.sqlite_file",
        "state.sqlite_backend",
        "sync",
        "state.memory_backend",
    ]
    running = {
        name: subprocess.Popen(
            [sys.executable, "-c", f"import {PACKAGE}.{name}"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in names
    }
    failed = {}
    for name, process in running.items():
        output, _ = process.communicate(timeout=120)
        if process.returncode != 0:
            failed[name] = output[-500:]
    assert failed == {}
