"""The package's layout: subpackages by stage that import only downward, no import cycles between
modules, no oversized module, and no config field left unread."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from deepfake_lib.config import ExperimentConfig

PACKAGE = Path(__file__).resolve().parents[1] / "deepfake_lib"

LAYERS: dict[str, int] = {
    "__init__": 0,
    "config": 0,
    "labels": 0,
    "runs": 0,
    "torch_settings": 0,
    "classifier": 0,
    "audio": 1,
    "evaluation": 2,
    "corpora": 3,
    "scoring": 4,
    "modeling": 5,
    "deploy": 6,
    "studies": 7,
    "notebook": 8,
    "cli": 9,
}
"""Rank of each top-level unit (a core module or a subpackage). A unit imports only units of a lower
rank (core modules of rank 0 may import each other); deploy and studies may import modeling and
evaluation, never the reverse."""

MAX_MODULE_LINES = 800


def module_name(path: Path, package: Path = PACKAGE) -> str:
    """``deepfake_lib/audio/io.py`` -> ``audio.io``; ``deepfake_lib/config.py`` -> ``config``."""
    rel = path.relative_to(package).with_suffix("")
    return ".".join(rel.parts)


def package_modules(package: Path = PACKAGE) -> list[Path]:
    """Every module of the package, subpackages included (the ``evaluate`` metric script aside)."""
    return sorted(p for p in package.rglob("*.py") if "evaluate_metrics" not in p.parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module name (``audio.io``) -> the package modules it imports, at any depth of the file."""
    names = {module_name(p, package) for p in package_modules(package)}

    def resolve(dotted: str) -> str | None:
        parts = dotted.split(".")
        if parts[0] != package.name:
            return None
        rest = ".".join(parts[1:]) or "__init__"
        if rest in names:
            return rest
        if f"{rest}.__init__" in names:
            return f"{rest}.__init__"
        return None

    graph: dict[str, set[str]] = {}
    for path in package_modules(package):
        name = module_name(path, package)
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                base = resolve(node.module)
                for alias in node.names:  # from deepfake_lib.audio import io: io may be a module
                    sub = resolve(f"{node.module}.{alias.name}")
                    if sub is not None:
                        edges.add(sub)
                    elif base is not None:
                        edges.add(base)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    target = resolve(alias.name)
                    if target is not None:
                        edges.add(target)
        edges.discard(name)
        graph[name] = edges
    return graph


def unit_of(module: str) -> str:
    """The top-level unit a module belongs to: ``audio.io`` -> ``audio``."""
    return module.split(".")[0]


def upward_imports(graph: dict[str, set[str]], layers: dict[str, int] = LAYERS) -> list[str]:
    """Imports that point to a unit of a higher rank, or sideways between two subpackages."""
    bad = []
    for module, targets in graph.items():
        here = unit_of(module)
        for target in targets:
            there = unit_of(target)
            if here == there:
                continue
            if layers[there] > layers[here] or (layers[there] == layers[here] and layers[here] > 0):
                bad.append(f"{module} -> {target}")
    return sorted(bad)


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


def test_direction_check_flags_a_planted_upward_import() -> None:
    graph = {"evaluation.metrics": {"modeling.training"}, "modeling.training": {"evaluation.metrics"}}
    assert upward_imports(graph) == ["evaluation.metrics -> modeling.training"]
    assert upward_imports({"deploy.x": {"studies.y"}}) == ["deploy.x -> studies.y"]
    assert upward_imports({"runs": {"config"}, "studies.y": {"deploy.x", "runs"}}) == []


def test_the_graph_recurses_into_subpackages() -> None:
    graph = import_graph()
    assert {"modeling.training", "scoring", "runs", "deploy.detector", "deploy.export", "audio.io"} <= set(
        graph
    )
    assert "evaluation.metrics" in graph["modeling.training"]


def test_every_module_belongs_to_a_ranked_unit() -> None:
    units = {unit_of(m) for m in import_graph()}
    assert units <= set(LAYERS), f"units without a rank in LAYERS: {sorted(units - set(LAYERS))}"


def test_the_package_has_no_import_cycles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_subpackages_import_only_downward() -> None:
    bad = upward_imports(import_graph())
    assert not bad, "imports that point up or sideways:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", package_modules(), ids=lambda p: module_name(p))
def test_no_module_is_oversized(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{module_name(path)} has {lines} lines (limit {MAX_MODULE_LINES})"


def test_every_config_field_is_read_by_library_code() -> None:
    """A field only a notebook reads would hide its defaults there; config.py itself does not count."""
    read: set[str] = set()
    for path in package_modules():
        if path.name == "config.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                read.add(node.attr)
    unread = [f.name for f in dataclasses.fields(ExperimentConfig) if f.name not in read]
    assert not unread, f"ExperimentConfig fields no library code reads: {unread}"


def test_every_import_of_a_package_module_names_what_it_defines() -> None:
    """Imports inside functions and notebook cells included: a moved function must not leave an
    import behind that only fails when that code path runs."""
    import json

    root = PACKAGE.parent
    defined: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        names: set[str] = set()
        for node in ast.parse(path.read_text()).body:
            for sub in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(sub.name)
                elif isinstance(sub, (ast.Assign, ast.AnnAssign)):
                    targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
                    names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
                elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                    names |= {(a.asname or a.name).split(".")[0] for a in sub.names}
        defined[name] = names

    def problems(code: str, where: str) -> list[str]:
        found = []
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("deepfake_lib"):
                if node.module not in defined:
                    found.append(f"{where}:{node.lineno}: no module {node.module}")
                    continue
                for alias in node.names:
                    if (
                        alias.name not in defined[node.module]
                        and f"{node.module}.{alias.name}" not in defined
                    ):
                        found.append(f"{where}:{node.lineno}: {node.module} has no {alias.name}")
        return found

    bad: list[str] = []
    for path in [*PACKAGE.rglob("*.py"), *root.glob("tests/*.py"), *root.glob("benchmarks/*.py")]:
        bad += problems(path.read_text(), str(path.relative_to(root)))
    for path in root.glob("notebooks/*.ipynb"):
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "code":
                lines = "".join(cell["source"]).splitlines()
                code = "\n".join(line for line in lines if not line.lstrip().startswith(("!", "%")))
                bad += problems(code, f"{path.relative_to(root)} cell {i}")
    assert not bad, "\n".join(bad)


MAX_FUNCTION_LINES = 100


def long_functions(package: Path = PACKAGE) -> list[str]:
    """Functions whose code (docstring aside) runs over :data:`MAX_FUNCTION_LINES` lines and
    whose docstring does not say why ("Long because ...")."""
    found = []
    for path in package_modules(package):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            doc = ast.get_docstring(node) or ""
            first = node.body[0]
            doc_lines = first.end_lineno - first.lineno + 1 if doc and isinstance(first, ast.Expr) else 0
            code_lines = node.end_lineno - node.lineno + 1 - doc_lines
            if code_lines > MAX_FUNCTION_LINES and "Long because" not in doc:
                found.append(f"{module_name(path, package)}.{node.name}: {code_lines} lines")
    return found


def test_no_function_is_long_without_a_reason(tmp_path: Path) -> None:
    planted = tmp_path / "pkg"
    planted.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES + 1))
    (planted / "m.py").write_text(
        f'def f():\n    """Short."""\n{body}\n\n\ndef g():\n    """Long because: test."""\n{body}\n'
    )
    assert long_functions(planted) == [f"m.f: {MAX_FUNCTION_LINES + 2} lines"]
    assert long_functions() == [], "functions over the limit with no reason in their docstring"
