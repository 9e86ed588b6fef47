"""Packaging: environment.yml and pyproject.toml agree; the CI entry calls the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pysoundfile": "soundfile", "pytorch": "torch"}  # conda-forge name -> PyPI name


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_name(r) for r in project["dependencies"]}
    for reqs in project["optional-dependencies"].values():
        names |= {_name(r) for r in reqs if not r.startswith("deepfake_lib")}
    return names


def test_environment_yml_lists_the_same_packages_as_pyproject() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {CONDA_NAMES.get(_name(d), _name(d)) for d in env["dependencies"] if isinstance(d, str)}
    pip_section = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    conda |= {_name(r) for reqs in pip_section for r in reqs if not r.startswith("-")}  # PyPI-only packages
    conda -= {"python", "pip"}
    assert conda == _pyproject_dependencies(), (
        f"only in environment.yml: {sorted(conda - _pyproject_dependencies())}; "
        f"only in pyproject.toml: {sorted(_pyproject_dependencies() - conda)}"
    )


def test_torch_is_not_pinned_exactly_in_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"]:
        if _name(req) in {"torch", "torchaudio"}:
            assert "==" not in req, f"{req}: an exact pin would fight Colab's preinstalled build"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", readme, flags=re.S)
    commands = {
        line.split("#")[0].strip()
        for b in blocks
        for line in b.splitlines()
        if line.strip().startswith("make ")
    }
    assert "make test" in commands and "make demo" in commands
    assert re.search(r"^make test$", ci, flags=re.M), (
        ".ci/run must call `make test`, the README's test command"
    )


def test_makefile_targets_are_documented() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = re.findall(r"^([a-z-]+):", makefile, flags=re.M)
    documented = re.findall(r"^([a-z-]+):.*## ", makefile, flags=re.M)
    assert set(targets) == set(documented), f"undocumented targets: {sorted(set(targets) - set(documented))}"


def test_package_imports_without_side_effects() -> None:
    import subprocess
    import sys

    code = (
        "import sys, deepfake_lib, deepfake_lib.config; "
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'matplotlib') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def _tracked_texts() -> dict[str, str]:
    """Text of every tracked file except notebooks (their outputs have their own tests) and this file."""
    import subprocess

    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    texts = {}
    for name in tracked:
        path = ROOT / name
        if path.suffix == ".ipynb" or not path.is_file() or path.name == Path(__file__).name:
            continue
        try:
            texts[name] = path.read_text()
        except UnicodeDecodeError:
            continue
    return texts


def test_committed_files_hold_no_paths_of_a_build_machine_or_working_notes() -> None:
    pattern = re.compile(r"/work/(main|shared)\b|CONTRIBUTING_HELPERS")
    offenders = [
        f"{name}: {m.group(0)}"
        for name, text in _tracked_texts().items()
        for m in [pattern.search(text)]
        if m
    ]
    assert not offenders, offenders
    assert (ROOT / "CONTRIBUTING.md").is_file() and not (ROOT / "docs" / "CONTRIBUTING_HELPERS.md").exists()


def test_no_committed_file_cites_a_design_file_outside_the_repository() -> None:
    offenders = [name for name, text in _tracked_texts().items() if "DESIGN.md" in text]
    assert not offenders, offenders


def test_package_docstring_names_every_module_and_subpackage() -> None:
    """The package docstring is the map: it names each core module and each subpackage, and
    each subpackage's docstring says what it holds."""
    import importlib

    import deepfake_lib

    package = ROOT / "deepfake_lib"
    units = {p.stem for p in package.glob("*.py")} - {"__init__"}
    units |= {p.parent.name for p in package.glob("*/__init__.py")}
    named = set(re.findall(r"``(\w+)``", deepfake_lib.__doc__ or ""))
    assert units - named == set(), f"deepfake_lib/__init__.py's docstring lacks {sorted(units - named)}"
    assert named - units == set(), f"the docstring names units that do not exist: {sorted(named - units)}"
    for sub in sorted(p.parent.name for p in package.glob("*/__init__.py")):
        doc = importlib.import_module(f"deepfake_lib.{sub}").__doc__ or ""
        assert len(doc.split()) >= 5, f"deepfake_lib/{sub}/__init__.py needs a docstring saying what it holds"
