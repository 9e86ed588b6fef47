"""Run the numbered notebook series with papermill, and keep the committed notebooks clean.

* :func:`run_series` executes ``notebooks/01..04`` in order into ``<run_dir>/notebooks/``,
  passing the run's parameters (each notebook receives only the names its ``parameters``
  cell declares), so every artifact of the run lands in one folder.
* :func:`refresh_notebooks` re-executes the committed notebooks in place on their defaults
  (the embedded offline configuration) and strips volatile metadata, which is how the
  outputs that nbval checks are regenerated after a deliberate change.
* :func:`check_notebook_hygiene` lists what would make a committed notebook stale or noisy.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deepfake_lib.config import ExperimentConfig, resolve_path

NOTEBOOKS: tuple[str, ...] = (
    "01_data_exploration.ipynb",
    "02_preprocessing_augmentation.ipynb",
    "03_fine_tuning.ipynb",
    "04_analysis_reflection.ipynb",
)
"""The series, in the order it runs."""

VOLATILE_KEYS: tuple[str, ...] = (
    "metadata.papermill",
    "cell.metadata.papermill",
    "cell.metadata.execution",
    "metadata.language_info.version",
    "metadata.widgets",
)
"""Metadata that changes on every execution; stripped by :func:`strip_volatile_metadata`."""

SOURCE_HASH_KEY = "deepfake_lib"


def notebooks_dir() -> Path:
    """The ``notebooks/`` folder of the source checkout (the series is not installed as data)."""
    folder = Path(__file__).resolve().parent.parent / "notebooks"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no notebooks folder; run the series from a clone of the repository")
    return folder


def read_parameters_cell(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Names and literal values of a notebook's ``parameters``-tagged cell.

    Raises ``ValueError`` naming the notebook if there is not exactly one such cell, if it is
    not the first code cell, or if a value is not a literal (no derived values).
    """
    nb = json.loads(Path(path).read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise ValueError(f"{path}: {len(tagged)} code cells are tagged 'parameters'; want exactly 1")
    source = "".join(code[tagged[0]]["source"])
    values: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name) or node.value is None:
            raise ValueError(f"{path}: parameters cell line {node.lineno} is not `name: type = literal`")
        try:
            values[node.target.id] = ast.literal_eval(node.value)
        except ValueError as exc:
            raise ValueError(f"{path}: parameter {node.target.id!r} is not a literal (derived values belong "
                             f"in the code, not the parameters cell)") from exc
    return values


def parameters_cell_index(path: str | os.PathLike[str]) -> int:
    """Position of the parameters cell among the notebook's code cells (0 = first)."""
    nb = json.loads(Path(path).read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    return next(i for i, c in enumerate(code) if "parameters" in c.get("metadata", {}).get("tags", []))


def run_series(
    run_dir: str | os.PathLike[str] = "runs/demo",
    *,
    params_file: str | os.PathLike[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    notebooks: Sequence[str] = NOTEBOOKS,
    kernel_name: str = "python3",
    log_output: bool = False,
) -> dict[str, Any]:
    """Execute the notebooks in order with papermill into ``<run_dir>/notebooks/``.

    Args:
        run_dir: the run folder (relative paths resolve against the project root).
        params_file: a flat YAML of :class:`~deepfake_lib.config.ExperimentConfig` fields
            (e.g. ``params/colab_t4.yaml``); validated before anything runs.
        parameters: more overrides, applied after the file.
        notebooks: which notebooks to run (default: all four, in order).
        kernel_name: Jupyter kernel to use.
        log_output: stream cell output to the log (papermill's ``log_output``).

    Returns a summary (also written to ``<run_dir>/series.json``): notebook paths and seconds.
    A failing notebook raises papermill's ``PapermillExecutionError``; the executed copy up to
    the failing cell is kept in ``<run_dir>/notebooks/`` for inspection.
    """
    import papermill as pm

    overrides: dict[str, Any] = {}
    if params_file is not None:
        overrides.update(ExperimentConfig.from_yaml(params_file).to_dict())
        given = _yaml_keys(params_file)
        overrides = {k: v for k, v in overrides.items() if k in given}
    overrides.update(parameters or {})
    run = resolve_path(run_dir)
    overrides["run_dir"] = str(run)
    ExperimentConfig.from_params(overrides, strict=True)  # fail before running anything
    src_dir = notebooks_dir()
    out_dir = run / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"run_dir": str(run), "parameters": overrides, "notebooks": []}
    for name in notebooks:
        src = src_dir / name
        declared = read_parameters_cell(src)
        passed = {k: v for k, v in overrides.items() if k in declared}
        start = time.perf_counter()
        pm.execute_notebook(str(src), str(out_dir / name), parameters=passed, cwd=str(src_dir),
                            kernel_name=kernel_name, progress_bar=False, log_output=log_output)
        seconds = round(time.perf_counter() - start, 1)
        summary["notebooks"].append({"name": name, "output": str(out_dir / name), "seconds": seconds})
        print(f"{name}: {seconds:.0f} s -> {out_dir / name}", flush=True)
    (run / "series.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def _yaml_keys(path: str | os.PathLike[str]) -> set[str]:
    import yaml

    return set(yaml.safe_load(Path(path).read_text()) or {})


def code_source_hash(nb: Mapping[str, Any]) -> str:
    """SHA-256 of all code cells' sources: changes whenever code changes, not when outputs do."""
    h = hashlib.sha256()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            h.update("".join(cell["source"]).encode())
            h.update(b"\0")
    return h.hexdigest()


def strip_volatile_metadata(path: str | os.PathLike[str]) -> None:
    """Strip volatile metadata with nbstripout (outputs and execution counts kept)."""
    subprocess.run([sys.executable, "-m", "nbstripout", "--keep-output", "--keep-count",
                    "--extra-keys", " ".join(VOLATILE_KEYS), str(path)], check=True)


def refresh_notebooks(notebooks: Sequence[str] = NOTEBOOKS, *, kernel_name: str = "python3") -> list[Path]:
    """Re-execute the committed notebooks in place on their defaults; record the code hash.

    Run after a deliberate change to a notebook or to behaviour its checked outputs show, then
    commit the notebooks. The code hash lets a test spot outputs that no longer match the code.
    """
    import papermill as pm

    done = []
    for name in notebooks:
        path = notebooks_dir() / name
        pm.execute_notebook(str(path), str(path), cwd=str(path.parent), kernel_name=kernel_name, progress_bar=False)
        nb = json.loads(path.read_text())
        nb["metadata"][SOURCE_HASH_KEY] = {"code_sha256": code_source_hash(nb)}
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        strip_volatile_metadata(path)
        done.append(path)
        print(f"refreshed {path}", flush=True)
    return done


def check_notebook_hygiene(path: str | os.PathLike[str]) -> list[str]:
    """Problems that make a committed notebook stale or noisy (empty list = clean).

    Checks: outputs present and produced top to bottom in one run (execution counts
    1, 2, 3, ...), no error outputs, the recorded code hash matches the code (else the outputs
    are stale), and no volatile metadata (nbstripout's verify mode with the same keep flags).
    """
    p = Path(path)
    nb = json.loads(p.read_text())
    problems = []
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    counts = [c.get("execution_count") for c in code]
    if counts != list(range(1, len(code) + 1)):
        problems.append(f"{p.name}: execution counts {counts} are not 1..{len(code)} (not one top-to-bottom run)")
    if any(o.get("output_type") == "error" for c in code for o in c.get("outputs", [])):
        problems.append(f"{p.name}: a cell has an error output")
    recorded = nb["metadata"].get(SOURCE_HASH_KEY, {}).get("code_sha256")
    if recorded != code_source_hash(nb):
        problems.append(f"{p.name}: code changed since the outputs were made (run `make notebooks`)")
    verify = subprocess.run([sys.executable, "-m", "nbstripout", "--verify", "--keep-output", "--keep-count",
                             "--extra-keys", " ".join(VOLATILE_KEYS), str(p)], capture_output=True, text=True)
    if verify.returncode != 0:
        problems.append(f"{p.name}: volatile metadata present (nbstripout --verify failed: {verify.stdout.strip()})")
    return problems
