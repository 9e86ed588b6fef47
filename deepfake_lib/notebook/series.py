"""Run the numbered notebook series with papermill, and keep the committed notebooks clean.

* :func:`run_series` executes ``notebooks/01..04`` in order into ``<run_dir>/notebooks/``,
  printing one line per cell with its elapsed seconds, and ends with the run folder and the
  headline figure (test EER with its interval, and the shortcut control).
* :func:`refresh_notebooks` re-executes the committed notebooks in place on their defaults
  (the embedded offline configuration) and strips volatile metadata, which is how the
  outputs that nbval checks are regenerated after a deliberate change.
* :func:`check_notebook_hygiene` lists what would make a committed notebook stale or noisy.
* :func:`require_run` tells notebook 04 (or a user) what a run folder lacks, and how to get it.

**One rule for parameters.** A key of a params file reaches the notebooks the same way by both
routes: ``make demo PARAMS=x.yaml`` (:func:`run_series`) passes every key to every notebook,
exactly as ``papermill nb.ipynb out.ipynb -f x.yaml`` does, and each notebook reads the
parameters it uses (notebooks 01 to 03 build their configuration from the kernel's names,
notebook 04 takes the run's own configuration). A key that is no
:class:`~deepfake_lib.config.ExperimentConfig` field stops the run before any work, with a
:class:`~deepfake_lib.config.ConfigError` naming it, on both routes: :func:`run_series` checks
the file, and under plain papermill each notebook calls :func:`check_injected_parameters`, which
checks what papermill injected. A test requires every key of every ``params/*.yaml`` to be
declared in a notebook's ``parameters`` cell, so a reader finds every setting there.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deepfake_lib.config import ConfigError, ExperimentConfig, project_root, resolve_path

__all__ = [
    "check_injected_parameters",
    "check_notebook_hygiene",
    "check_parameter_names",
    "code_source_hash",
    "declared_parameters",
    "display_path",
    "drop_widget_outputs",
    "format_headline",
    "injected_parameter_names",
    "NOTEBOOKS",
    "notebooks_dir",
    "PAPERMILL_HEADER",
    "parameters_cell_index",
    "read_params_yaml",
    "read_parameters_cell",
    "refresh_notebooks",
    "render_parameters_table",
    "require_run",
    "RUN_NEEDS",
    "run_series",
    "SOURCE_HASH_KEY",
    "strip_volatile_metadata",
    "VOLATILE_KEYS",
    "WIDGET_VIEW",
]

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
    folder = Path(__file__).resolve().parents[2] / "notebooks"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: no notebooks folder; run the series from a clone of the repository"
        )
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
            raise ValueError(
                f"{path}: parameter {node.target.id!r} is not a literal (derived values belong "
                f"in the code, not the parameters cell)"
            ) from exc
    return values


def parameters_cell_index(path: str | os.PathLike[str]) -> int:
    """Position of the parameters cell among the notebook's code cells (0 = first)."""
    nb = json.loads(Path(path).read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    return next(i for i, c in enumerate(code) if "parameters" in c.get("metadata", {}).get("tags", []))


PAPERMILL_HEADER = "# Parameters"
"""First line of the cell papermill injects after the ``parameters`` cell (Python kernels)."""

RUN_NEEDS: tuple[str, ...] = (
    "config.json",
    "metrics.json",
    "history.csv",
    "test_scores.csv",
    "validation_scores.csv",
    "epoch_scores.csv",
    "model",
)
"""What notebook 04 reads from the run folder that notebook 03 wrote."""


def declared_parameters(notebooks: Sequence[str] = NOTEBOOKS) -> dict[str, set[str]]:
    """For every parameter declared by some notebook of the series, the notebooks declaring it."""
    declared: dict[str, set[str]] = {}
    for name in notebooks:
        for key in read_parameters_cell(notebooks_dir() / name):
            declared.setdefault(key, set()).add(name)
    return declared


def check_parameter_names(names: Sequence[str] | set[str]) -> None:
    """Raise :class:`ConfigError` naming every key that is no :class:`ExperimentConfig` field.

    The same check, with the same message, guards both routes: :func:`run_series` (before any
    notebook runs) and plain papermill (:func:`check_injected_parameters`, in the notebook).
    """
    fields = set(ExperimentConfig.field_names())
    unknown = sorted(k for k in names if k not in fields)
    if unknown:
        raise ConfigError(
            f"unknown parameter(s): {', '.join(unknown)}; no notebook can apply them "
            f"(known: {', '.join(sorted(fields))})"
        )


def injected_parameter_names(history: Sequence[str]) -> list[str]:
    """Names assigned in the cells papermill injected, from a kernel's input history (``In``)."""
    names: list[str] = []
    for source in history:
        if not isinstance(source, str) or not source.lstrip().startswith(PAPERMILL_HEADER):
            continue
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign):
                names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return names


def check_injected_parameters(namespace: Mapping[str, Any]) -> list[str]:
    """In a notebook: refuse parameters papermill injected that no run can apply.

    Call with ``globals()`` in the first code cell after the Colab install cell. Reads the
    kernel's input history (``In``) for the cell papermill injects after the ``parameters``
    cell; interactive sessions (JupyterLab, Colab) have none, and nothing is checked. Returns
    the injected names; raises :class:`ConfigError` naming each one that is no parameter.
    """
    names = injected_parameter_names(namespace.get("In") or namespace.get("_ih") or [])
    check_parameter_names(names)
    return names


class _SkipDeclaredElsewhere(logging.Filter):
    """Drops papermill's "Passed unknown parameter" warning: :func:`run_series` passes every
    (checked) key to every notebook on purpose, and each notebook reads what it uses."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passed unknown parameter:")


class _CellProgress:
    """nbclient hooks that print one line per code cell: index, elapsed seconds, first line of code."""

    def __init__(self, notebook: str, n_code: int) -> None:
        self.notebook = notebook
        self.n_code = n_code
        self.done = 0
        self.started = time.perf_counter()
        self.cell_started = self.started

    def on_cell_start(self, cell: Any, cell_index: int, **_: Any) -> None:
        if cell.cell_type != "code" or not cell.source.strip():
            return  # nbclient skips these: no on_cell_executed follows
        self.cell_started = time.perf_counter()
        first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
        print(
            f"  {Path(self.notebook).stem} cell {self.done + 1:>2}/{self.n_code}  {first[:60]:<60}",
            end="",
            flush=True,
        )

    def on_cell_executed(self, cell: Any, cell_index: int, **_: Any) -> None:
        self.done += 1
        now = time.perf_counter()
        print(f" {now - self.cell_started:7.1f} s  (notebook {now - self.started:6.1f} s)", flush=True)


def format_headline(metrics: Mapping[str, Any]) -> str:
    """``"test EER 8.9% (95% CI 4.4% to 15.6%) on 90 clips; shortcut control 48.9% (...)"`` from a
    run's ``metrics.json``."""

    def rate(report: Mapping[str, Any]) -> str:
        ci = (report.get("ci") or {}).get("eer")
        text = f"{100 * report['eer']:.1f}%"
        return text + (f" (95% CI {100 * ci[0]:.1f}% to {100 * ci[1]:.1f}%)" if ci else "")

    test = metrics["test"]
    text = f"test EER {rate(test)} on {test['n']} clips"
    if metrics.get("shortcut_control"):
        text += f"; shortcut control (cheap cues) {rate(metrics['shortcut_control'])}"
    return text


def run_series(
    run_dir: str | os.PathLike[str] = "runs/demo",
    *,
    params_file: str | os.PathLike[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    notebooks: Sequence[str] = NOTEBOOKS,
    kernel_name: str = "python3",
    log_output: bool = False,
    progress: bool = True,
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
        progress: print one line per cell (elapsed seconds) and the headline at the end.

    Every key goes to every notebook, as ``papermill -f`` does (see the module docstring);
    a key that is no parameter raises :class:`~deepfake_lib.config.ConfigError` before anything
    runs. Returns a summary (also written to ``<run_dir>/series.json``): notebook paths and
    seconds. A failing notebook raises papermill's ``PapermillExecutionError``; the executed copy
    up to the failing cell is kept in ``<run_dir>/notebooks/`` for inspection.
    """
    import papermill as pm

    overrides: dict[str, Any] = {}
    if params_file is not None:
        overrides.update(read_params_yaml(params_file))
    overrides.update(parameters or {})
    check_parameter_names(set(overrides))
    run = resolve_path(run_dir)
    overrides["run_dir"] = str(run)
    ExperimentConfig.from_params(overrides, strict=True)  # fail before running anything
    src_dir = notebooks_dir()
    out_dir = run / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"run_dir": str(run), "parameters": overrides, "notebooks": []}
    papermill_log = logging.getLogger("papermill")
    quiet = _SkipDeclaredElsewhere()
    papermill_log.addFilter(quiet)
    try:
        for k, name in enumerate(notebooks, start=1):
            src = src_dir / name
            hooks: dict[str, Any] = {}
            if progress:
                n_code = sum(
                    c["cell_type"] == "code" and "".join(c["source"]).strip() != ""
                    for c in json.loads(src.read_text())["cells"]
                )
                tracker = _CellProgress(name, n_code + 1)  # + the cell papermill injects
                hooks = {"on_cell_start": tracker.on_cell_start, "on_cell_executed": tracker.on_cell_executed}
                print(f"[{k}/{len(notebooks)}] {name}", flush=True)
            start = time.perf_counter()
            pm.execute_notebook(
                str(src),
                str(out_dir / name),
                parameters=overrides,
                cwd=str(src_dir),
                kernel_name=kernel_name,
                progress_bar=False,
                log_output=log_output,
                **hooks,
            )
            seconds = round(time.perf_counter() - start, 1)
            summary["notebooks"].append({"name": name, "output": str(out_dir / name), "seconds": seconds})
            print(f"{name}: {seconds:.0f} s -> {out_dir / name}", flush=True)
    finally:
        papermill_log.removeFilter(quiet)
    (run / "series.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    if progress:
        print(f"run folder: {display_path(run)}", flush=True)
        metrics = run / "metrics.json"
        if metrics.is_file():
            print(format_headline(json.loads(metrics.read_text())), flush=True)
    return summary


def display_path(path: Path) -> str:
    """``path`` relative to the current folder or the project root when under one, else as is."""
    for base in (Path.cwd(), project_root()):
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            continue
    return str(path)


def require_run(run_dir: str | os.PathLike[str], needs: Sequence[str] = RUN_NEEDS) -> Path:
    """The absolute run folder, after checking it holds what notebook 04 reads.

    Raises ``FileNotFoundError`` naming what is missing and how to get it: run notebook 03 with
    the same ``run_dir`` first; on Colab, a fresh runtime keeps nothing, so both notebooks must
    point ``run_dir`` at the same folder on Google Drive.
    """
    run = resolve_path(run_dir)
    missing = [name for name in needs if not (run / name).exists()]
    if missing:
        where = "does not exist" if not run.exists() else f"lacks {', '.join(missing)}"
        raise FileNotFoundError(
            f"run folder {run_dir!s} {where}. Notebook 04 analyses the run that notebook 03 wrote: run 03 "
            f"with the same run_dir first. On Colab a new runtime starts empty, so mount Google Drive "
            f"(from google.colab import drive; drive.mount('/content/drive')) and give both notebooks the "
            f"same run_dir on it, e.g. /content/drive/MyDrive/deepfake_lib/runs/colab_t4."
        )
    return run


def render_parameters_table(params_file: str | os.PathLike[str]) -> str:
    """Markdown table of every key of ``params_file``: the notebooks declaring it, the default of
    the notebooks (the embedded offline run) and the file's value (``Colab_setup.md`` holds
    this table for ``params/colab_t4.yaml``; a test keeps the two equal)."""
    import yaml

    values = yaml.safe_load(Path(params_file).read_text()) or {}
    declared = declared_parameters()
    defaults = ExperimentConfig().to_dict()
    rows = [
        "| parameter | declared in notebooks | embedded default | "
        f"`{Path(params_file).parent.name}/{Path(params_file).name}` |",
        "|---|---|---|---|",
    ]
    for key, value in values.items():
        where = (
            ", ".join(sorted(n[:2] for n in declared.get(key, ()))) or "none (add it to 03's parameters cell)"
        )
        rows.append(f"| `{key}` | {where} | `{defaults.get(key)!r}` | `{value!r}` |")
    return "\n".join(rows)


def read_params_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The values a params file sets, typed as :meth:`ExperimentConfig.from_yaml` types them.

    The one reader of params files: ``make demo PARAMS=`` (:func:`run_series`) and a notebook's
    ``params_file`` parameter (:func:`deepfake_lib.notebook.colab.read_params_file`). Names are
    checked first (:func:`check_parameter_names`), so the error names the key, not a type.
    """
    given = _yaml_keys(path)
    check_parameter_names(given)
    return {k: v for k, v in ExperimentConfig.from_yaml(path).to_dict().items() if k in given}


def _yaml_keys(path: str | os.PathLike[str]) -> set[str]:
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of parameter names to values")
    return set(data)


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
    subprocess.run(
        [
            sys.executable,
            "-m",
            "nbstripout",
            "--keep-output",
            "--keep-count",
            "--extra-keys",
            " ".join(VOLATILE_KEYS),
            str(path),
        ],
        check=True,
    )


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
"""Output type of an ipywidgets view (e.g. a library's tqdm bar in Jupyter)."""


def drop_widget_outputs(nb: dict[str, Any]) -> int:
    """Remove widget views from ``nb``'s outputs (in place); return how many were removed.

    A committed notebook keeps no widget state (``metadata.widgets`` is volatile), so a widget
    view renders as an error or as progress-bar text: it is debris, not a result.
    """
    removed = 0
    for cell in nb["cells"]:
        outputs = cell.get("outputs", [])
        kept = [o for o in outputs if WIDGET_VIEW not in o.get("data", {})]
        removed += len(outputs) - len(kept)
        if "outputs" in cell:
            cell["outputs"] = kept
    return removed


def refresh_notebooks(notebooks: Sequence[str] = NOTEBOOKS, *, kernel_name: str = "python3") -> list[Path]:
    """Re-execute the committed notebooks in place on their defaults, drop widget outputs
    (:func:`drop_widget_outputs`); record the code hash.

    Run after a deliberate change to a notebook or to behaviour its checked outputs show, then
    commit the notebooks. The code hash lets a test spot outputs that no longer match the code.
    When notebook 03 ran, the run's figures go to
    :data:`~deepfake_lib.notebook.committed.COMMITTED_RUN_FILE` and the README's committed-run block
    is rendered from that file (:mod:`deepfake_lib.notebook.committed`).
    """
    import papermill as pm

    from deepfake_lib.notebook.committed import update_readme, write_committed_run

    done = []
    for name in notebooks:
        path = notebooks_dir() / name
        pm.execute_notebook(
            str(path), str(path), cwd=str(path.parent), kernel_name=kernel_name, progress_bar=False
        )
        nb = json.loads(path.read_text())
        drop_widget_outputs(nb)
        nb["metadata"][SOURCE_HASH_KEY] = {"code_sha256": code_source_hash(nb)}
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        strip_volatile_metadata(path)
        done.append(path)
        print(f"refreshed {path}", flush=True)
    if "03_fine_tuning.ipynb" in notebooks:
        run_dir = read_parameters_cell(notebooks_dir() / "03_fine_tuning.ipynb")["run_dir"]
        print(f"committed run: {display_path(write_committed_run(run_dir))}", flush=True)
        if update_readme():
            print("README.md: committed-run block updated", flush=True)
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
        problems.append(
            f"{p.name}: execution counts {counts} are not 1..{len(code)} (not one top-to-bottom run)"
        )
    if any(o.get("output_type") == "error" for c in code for o in c.get("outputs", [])):
        problems.append(f"{p.name}: a cell has an error output")
    if any(WIDGET_VIEW in o.get("data", {}) for c in code for o in c.get("outputs", [])):
        problems.append(f"{p.name}: widget outputs (progress bars) left in; refresh_notebooks drops them")
    recorded = nb["metadata"].get(SOURCE_HASH_KEY, {}).get("code_sha256")
    if recorded != code_source_hash(nb):
        problems.append(f"{p.name}: code changed since the outputs were made (run `make notebooks`)")
    verify = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbstripout",
            "--verify",
            "--keep-output",
            "--keep-count",
            "--extra-keys",
            " ".join(VOLATILE_KEYS),
            str(p),
        ],
        capture_output=True,
        text=True,
    )
    if verify.returncode != 0:
        problems.append(
            f"{p.name}: volatile metadata present (nbstripout --verify failed: {verify.stdout.strip()})"
        )
    return problems
