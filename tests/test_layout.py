"""The package's layout: no import cycles between its modules, and no config field left unread."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from deepfake_lib.config import ExperimentConfig

PACKAGE = Path(__file__).resolve().parents[1] / "deepfake_lib"


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module name -> the package modules it imports (at any depth of the file)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(package.glob("*.py")):
        name = path.stem
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if parts[0] != package.name:
                    continue
                if len(parts) > 1:
                    edges.add(parts[1])
                else:  # from deepfake_lib import x: x may be a module
                    edges.update(a.name for a in node.names if (package / f"{a.name}.py").is_file())
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    if parts[0] == package.name and len(parts) > 1:
                        edges.add(parts[1])
        edges.discard(name)
        edges.discard("__init__")
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first repeated at the end), or ``None``."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_cycle_finder_finds_a_planted_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_package_has_no_import_cycles() -> None:
    graph = import_graph()
    assert {"train", "scoring", "runs", "infer", "export", "backends"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


@pytest.mark.parametrize("module", ["runs", "scoring", "backends"])
def test_the_lower_layer_does_not_import_the_stages_above_it(module: str) -> None:
    above = {"train", "analysis", "infer", "export", "serve", "cli"}
    assert not (import_graph()[module] & above), f"{module} imports {import_graph()[module] & above}"


def test_every_config_field_is_read_by_library_code() -> None:
    """A field only a notebook reads would hide its defaults there; config.py itself does not count."""
    read: set[str] = set()
    for path in PACKAGE.glob("*.py"):
        if path.name == "config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                read.add(node.attr)
    unread = [f.name for f in dataclasses.fields(ExperimentConfig) if f.name not in read]
    assert not unread, f"ExperimentConfig fields no library code reads: {unread}"
