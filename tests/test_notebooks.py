"""The notebook series: parameters cells, Colab install cells, hygiene, and a papermill smoke run.

nbval re-executes the committed notebooks separately (``pytest notebooks --nbval-lax``, part of
``make test``); these tests check what nbval cannot.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from deepfake_lib.config import ExperimentConfig
from deepfake_lib.series import NOTEBOOKS, check_notebook_hygiene, notebooks_dir, parameters_cell_index, read_parameters_cell

PATHS = [notebooks_dir() / name for name in NOTEBOOKS]
DEFAULTS = {f.name: f.default for f in dataclasses.fields(ExperimentConfig)}


def _code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_parameters_cell_is_first_and_holds_config_literals(path: Path) -> None:
    assert parameters_cell_index(path) == 0, "the parameters cell must be the first code cell"
    params = read_parameters_cell(path)
    unknown = set(params) - set(DEFAULTS)
    assert not unknown, f"{path.name}: parameters not in ExperimentConfig: {sorted(unknown)}"
    for name, value in params.items():
        assert value == DEFAULTS[name], f"{path.name}: {name} = {value!r} but ExperimentConfig's default is {DEFAULTS[name]!r}"
    ExperimentConfig.from_params(params, strict=True)
    source = "".join(_code_cells(path)[0]["source"])
    for line in source.splitlines():
        code, _, comment = line.partition("#")
        assert comment.strip(), f"{path.name}: parameter line without a # help comment: {line!r}"
        assert "=" not in comment, f"{path.name}: '=' in a help comment breaks papermill's inspection: {line!r}"


def test_every_notebook_declares_the_run_folder() -> None:
    for path in PATHS:
        assert "run_dir" in read_parameters_cell(path), path.name


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_colab_install_cell_follows_the_parameters(path: Path) -> None:
    source = "".join(_code_cells(path)[1]["source"])
    assert '"google.colab" in sys.modules' in source and "pip" in source
    assert "-e" not in source.split(), "an editable install is not importable until the runtime restarts"


def test_parameter_parser_rejects_derived_values(tmp_path: Path) -> None:
    nb = {"cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": ["epochs: int = 2 * 3  # derived\n"]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    with pytest.raises(ValueError, match="not a literal"):
        read_parameters_cell(path)
    nb["cells"][0]["metadata"]["tags"] = []
    path.write_text(json.dumps(nb))
    with pytest.raises(ValueError, match="0 code cells are tagged"):
        read_parameters_cell(path)


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_committed_notebook_is_clean_and_current(path: Path) -> None:
    assert check_notebook_hygiene(path) == []


def test_hygiene_check_catches_stale_outputs(tmp_path: Path) -> None:
    nb = json.loads(PATHS[0].read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    code[-1]["source"] = "print('edited without re-running')\n"
    code[0]["execution_count"] = 7
    nb["metadata"]["papermill"] = {"start_time": "2026-01-01T00:00:00"}
    stale = tmp_path / PATHS[0].name
    stale.write_text(json.dumps(nb))
    problems = " ".join(check_notebook_hygiene(stale))
    assert "execution counts" in problems and "code changed" in problems and "volatile metadata" in problems


@pytest.mark.slow
def test_series_runs_end_to_end_with_papermill(tmp_path: Path) -> None:
    from deepfake_lib.series import run_series

    summary = run_series(tmp_path / "run", parameters={"n_utterances": 24, "epochs": 1, "loao_epochs": 1,
                                                        "n_bootstrap": 50, "robustness": False})
    run = tmp_path / "run"
    assert [Path(n["output"]).name for n in summary["notebooks"]] == list(NOTEBOOKS)
    for name in ("metrics.json", "history.csv", "test_scores.csv", "model", "series.json", "analysis", "figures"):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_clips"]["train"] > 0 and "shortcut_control" in metrics
    executed = json.loads((run / "notebooks" / NOTEBOOKS[-1]).read_text())
    injected = [c for c in executed["cells"] if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    assert injected and "n_bootstrap = 50" in "".join(injected[0]["source"])
    assert (run / "analysis" / "protocol_comparison.csv").is_file()


def test_series_rejects_unknown_parameters_before_running(tmp_path: Path) -> None:
    from deepfake_lib.config import ConfigError
    from deepfake_lib.series import run_series

    with pytest.raises(ConfigError, match="epohcs"):
        run_series(tmp_path / "run", parameters={"epohcs": 1})
    assert not (tmp_path / "run" / "notebooks").exists()
