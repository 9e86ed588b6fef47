"""The notebook series: parameters cells, Colab install cells, hygiene, and a papermill smoke run.

nbval re-executes the committed notebooks separately (``pytest notebooks --nbval-lax``, part of
``make test``); these tests check what nbval cannot.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from deepfake_lib.config import ExperimentConfig
from deepfake_lib.notebook.series import (
    NOTEBOOKS,
    check_notebook_hygiene,
    notebooks_dir,
    parameters_cell_index,
    read_parameters_cell,
)

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
        assert value == DEFAULTS[name], (
            f"{path.name}: {name} = {value!r} but ExperimentConfig's default is {DEFAULTS[name]!r}"
        )
    ExperimentConfig.from_params(params, strict=True)
    source = "".join(_code_cells(path)[0]["source"])
    for line in source.splitlines():
        _, _, comment = line.partition("#")
        assert comment.strip(), f"{path.name}: parameter line without a # help comment: {line!r}"
        assert "=" not in comment, (
            f"{path.name}: '=' in a help comment breaks papermill's inspection: {line!r}"
        )


def test_every_notebook_declares_the_run_folder() -> None:
    for path in PATHS:
        assert "run_dir" in read_parameters_cell(path), path.name


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_colab_install_cell_follows_the_parameters(path: Path) -> None:
    source = "".join(_code_cells(path)[1]["source"])
    assert '"google.colab" in sys.modules' in source and "pip" in source
    assert "-e" not in source.split(), "an editable install is not importable until the runtime restarts"


def test_parameter_parser_rejects_derived_values(tmp_path: Path) -> None:
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {"tags": ["parameters"]},
                "source": ["epochs: int = 2 * 3  # derived\n"],
            }
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
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
    assert "widget outputs" not in problems


def test_widget_outputs_are_debris_that_refresh_drops(tmp_path: Path) -> None:
    from deepfake_lib.notebook.series import WIDGET_VIEW, drop_widget_outputs

    nb = json.loads(PATHS[0].read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and c.get("outputs"))
    kept = list(cell["outputs"])
    bar = {
        "output_type": "display_data",
        "metadata": {},
        "data": {WIDGET_VIEW: {"model_id": "x"}, "text/plain": "Writing model shards:   0%|"},
    }
    cell["outputs"] = [*kept, bar]
    path = tmp_path / PATHS[0].name
    path.write_text(json.dumps(nb))
    assert any("widget outputs" in p for p in check_notebook_hygiene(path))
    assert drop_widget_outputs(nb) == 1 and cell["outputs"] == kept


@pytest.mark.slow
def test_series_runs_end_to_end_with_papermill(tmp_path: Path) -> None:
    from deepfake_lib.notebook.series import run_series

    summary = run_series(
        tmp_path / "run",
        parameters={
            "n_utterances": 24,
            "epochs": 1,
            "loao_epochs": 1,
            "n_bootstrap": 50,
            "run_robustness": False,
        },
    )
    run = tmp_path / "run"
    assert [Path(n["output"]).name for n in summary["notebooks"]] == list(NOTEBOOKS)
    for name in (
        "metrics.json",
        "history.csv",
        "test_scores.csv",
        "model",
        "series.json",
        "analysis",
        "figures",
    ):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_clips"]["train"] > 0 and "shortcut_control" in metrics
    executed = json.loads((run / "notebooks" / NOTEBOOKS[-1]).read_text())
    injected = [
        c for c in executed["cells"] if "injected-parameters" in c.get("metadata", {}).get("tags", [])
    ]
    assert injected and "n_bootstrap = 50" in "".join(injected[0]["source"])
    assert (run / "analysis" / "protocol_comparison.csv").is_file()


def test_series_rejects_unknown_parameters_before_running(tmp_path: Path) -> None:
    from deepfake_lib.config import ConfigError
    from deepfake_lib.notebook.series import run_series

    with pytest.raises(ConfigError, match="epohcs"):
        run_series(tmp_path / "run", parameters={"epohcs": 1})
    assert not (tmp_path / "run" / "notebooks").exists()


# --------------------------------------------------------------------------------------
# one rule for parameters: both routes pass the same keys and stop on the same unknown key
# --------------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
PARAMS_FILES = sorted((ROOT / "params").glob("*.yaml"))


def _yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text()) or {}


def _undeclared(path: Path) -> set[str]:
    from deepfake_lib.notebook.series import declared_parameters

    return set(_yaml(path)) - set(declared_parameters())


@pytest.mark.parametrize("params_file", PARAMS_FILES, ids=[p.stem for p in PARAMS_FILES])
def test_params_file_holds_only_parameters(params_file: Path) -> None:
    from deepfake_lib.notebook.series import check_parameter_names

    check_parameter_names(set(_yaml(params_file)))
    ExperimentConfig.from_yaml(params_file)
    assert not _undeclared(params_file), (
        f"{params_file.name}: keys no notebook declares: {sorted(_undeclared(params_file))}"
    )


def test_every_params_key_is_declared_by_a_notebook() -> None:
    assert all(not _undeclared(p) for p in PARAMS_FILES), {
        p.name: sorted(_undeclared(p)) for p in PARAMS_FILES
    }


@pytest.mark.parametrize("params_file", PARAMS_FILES, ids=[p.stem for p in PARAMS_FILES])
def test_make_demo_passes_every_key_to_every_notebook_like_papermill(
    params_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import papermill

    from deepfake_lib.notebook.series import run_series

    passed: dict[str, dict] = {}
    monkeypatch.setattr(
        papermill,
        "execute_notebook",
        lambda src, out, parameters=None, **kw: passed.__setitem__(Path(src).name, dict(parameters)),
    )
    run_series(tmp_path / "run", params_file=params_file, progress=False)
    given = _yaml(params_file)
    assert list(passed) == list(NOTEBOOKS)
    for name, params in passed.items():
        # plain `papermill nb out -f file` injects every key of the file into every notebook: so does make demo
        assert set(params) == set(given) | {"run_dir"}, name
        for key, value in given.items():
            if key != "run_dir":
                assert (
                    params[key] == pytest.approx(value) if isinstance(value, float) else params[key] == value
                ), key


def _injected_cell(notebook: Path, params_file: Path) -> str:
    """The cell plain `papermill notebook out -f params_file` injects, made by papermill itself."""
    import nbformat
    from papermill.parameterize import parameterize_notebook

    nb = nbformat.read(notebook, as_version=4)
    nb.metadata["papermill"] = {}
    nb = parameterize_notebook(nb, _yaml(params_file), kernel_name="python3", language="python")
    return next("".join(c.source) for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))


@pytest.mark.parametrize("bad_key", ["epohcs", "notes"])
def test_both_routes_stop_on_the_same_unknown_key(bad_key: str, tmp_path: Path) -> None:
    from deepfake_lib.config import ConfigError
    from deepfake_lib.notebook.series import check_injected_parameters, run_series

    params_file = tmp_path / "bad.yaml"
    params_file.write_text(f"epochs: 2\n{bad_key}: 1\n")
    with pytest.raises(ConfigError, match=bad_key) as via_series:
        run_series(tmp_path / "run", params_file=params_file, progress=False)
    assert not (tmp_path / "run").exists(), "nothing may run before the check"
    notebook = PATHS[2]
    history = ["", "".join(_code_cells(notebook)[0]["source"]), _injected_cell(notebook, params_file)]
    with pytest.raises(ConfigError, match=bad_key) as via_papermill:
        check_injected_parameters({"In": history})
    assert str(via_papermill.value) == str(via_series.value)
    good = tmp_path / "good.yaml"
    good.write_text("epochs: 2\nn_bootstrap: 10\n")
    history[-1] = _injected_cell(notebook, good)
    assert check_injected_parameters({"In": history}) == ["epochs", "n_bootstrap"]
    assert check_injected_parameters({"In": history[:2]}) == [], "interactive sessions inject nothing"


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_checks_what_papermill_injected(path: Path) -> None:
    assert "check_injected_parameters(globals())" in "".join(_code_cells(path)[2]["source"])


# --------------------------------------------------------------------------------------
# what the committed notebooks show: every figure, no machine paths, under 1 MB
# --------------------------------------------------------------------------------------
DRAWS_A_FIGURE = re.compile(r"\b(plot_\w+|LiveHistoryPlot)\(")
ABSOLUTE_PATH = re.compile(
    r"(?<![\w.~])(/work/|/root/|/home/|/tmp/|/content/|/Users/|/private/|/mnt/|[A-Z]:\\)"
)
MAX_NOTEBOOK_BYTES = 1_000_000


def _output_texts(output: dict) -> list[str]:
    texts = [output.get("text", "")] + list(output.get("traceback", []))
    for mime, value in output.get("data", {}).items():
        if mime.startswith("text/") or mime.endswith("json"):
            texts.append(value if isinstance(value, str) else json.dumps(value))
    return ["".join(t) if isinstance(t, list) else str(t) for t in texts]


def figure_cells_without_image(nb: dict) -> list[str]:
    """First lines of the code cells that call a plot function but store no image/png output."""
    missing = []
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if (
            cell["cell_type"] == "code"
            and DRAWS_A_FIGURE.search(source)
            and not any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))
        ):
            missing.append(source.splitlines()[0])
    return missing


def absolute_paths_in_outputs(nb: dict) -> list[str]:
    """Every output text that holds an absolute path of a machine."""
    return [
        m.group(0) + "…"
        for cell in nb["cells"]
        for o in cell.get("outputs", [])
        for text in _output_texts(o)
        for m in [ABSOLUTE_PATH.search(text)]
        if m
    ]


def test_figure_and_path_checks_catch_what_they_should() -> None:
    cell = {
        "cell_type": "code",
        "source": ["save_figure(plot_roc_det(y, s), figures / 'x.png')\n"],
        "outputs": [],
    }
    nb = {"cells": [cell]}
    assert figure_cells_without_image(nb) == ["save_figure(plot_roc_det(y, s), figures / 'x.png')"]
    cell["outputs"] = [
        {"output_type": "execute_result", "data": {"text/plain": "PosixPath('/home/u/runs/demo/x.png')"}}
    ]
    assert figure_cells_without_image(nb) and absolute_paths_in_outputs(nb) == ["/home/…"]
    cell["outputs"] = [
        {"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": "<figure x.png>"}}
    ]
    assert figure_cells_without_image(nb) == [] and absolute_paths_in_outputs(nb) == []
    cell["outputs"].append({"output_type": "stream", "name": "stdout", "text": ["saved to /tmp/run/x.png\n"]})
    assert absolute_paths_in_outputs(nb) == ["/tmp/…"]
    assert (
        absolute_paths_in_outputs(
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "source": [],
                        "outputs": [
                            {
                                "output_type": "stream",
                                "text": "runs/demo/figures/x.png and 1/2 and https://x.org/a\n",
                            }
                        ],
                    }
                ]
            }
        )
        == []
    )


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_every_figure_cell_stores_an_image(path: Path) -> None:
    assert figure_cells_without_image(json.loads(path.read_text())) == []


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_no_output_holds_an_absolute_path(path: Path) -> None:
    assert absolute_paths_in_outputs(json.loads(path.read_text())) == []


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_committed_notebook_stays_under_1_mb(path: Path) -> None:
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES, f"{path.name}: {path.stat().st_size / 1e6:.2f} MB"


# --------------------------------------------------------------------------------------
# the Colab route
# --------------------------------------------------------------------------------------
COLAB_TORCH = (2, 11)
"""torch and torchaudio preinstalled on Colab (2026); the package's minimum versions must not exceed them."""


def _repository() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


def test_repository_address_has_one_home() -> None:
    repo = _repository()
    owner_name = repo.removeprefix("https://github.com/")
    for path in PATHS:
        install = "".join(_code_cells(path)[1]["source"])
        assert f'"{repo}"' in install, (
            f"{path.name}: the install cell must default to {repo} (pyproject.toml)"
        )
        text = path.read_text()
        badges = re.findall(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob", text)
        assert badges and set(badges) == {owner_name}, f"{path.name}: badges point to {set(badges)}"
    readme_badges = set(
        re.findall(
            r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob", (ROOT / "README.md").read_text()
        )
    )
    assert readme_badges == {owner_name}
    guide = (ROOT / "Colab_setup.md").read_text()
    assert f'git grep -l "github.com/{owner_name}"' in guide, (
        "the guide's fork command must match the address"
    )


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_install_cell_keeps_colabs_torch(path: Path) -> None:
    install = "".join(_code_cells(path)[1]["source"])
    args = re.findall(r'"([^"]*)"', install.split("pip", 1)[1])
    for forbidden in ("-U", "--upgrade", "--force-reinstall", "--no-deps", "torch", "torchaudio"):
        assert forbidden not in args, (
            f"{path.name}: {forbidden!r} in the install command would replace Colab's torch"
        )
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        m = re.fullmatch(r"(torch|torchaudio)>=(\d+)\.(\d+)\S*", dep)
        if m:
            assert (int(m.group(2)), int(m.group(3))) <= COLAB_TORCH, f"{dep} would upgrade Colab's torch"


def test_colab_guide_parameters_table_is_current() -> None:
    from deepfake_lib.notebook.series import render_parameters_table

    guide = (ROOT / "Colab_setup.md").read_text()
    table = guide.split("<!-- parameters table: begin -->\n")[1].split("\n<!-- parameters table: end -->")[0]
    expected = render_parameters_table(ROOT / "params" / "colab_t4.yaml")
    assert table == expected, (
        "Colab_setup.md's table is stale; paste render_parameters_table('params/colab_t4.yaml')"
    )


def test_require_run_names_what_notebook_04_lacks(tmp_path: Path) -> None:
    from deepfake_lib.notebook.series import RUN_NEEDS, require_run

    with pytest.raises(FileNotFoundError, match="does not exist.*notebook 03.*Google Drive"):
        require_run(tmp_path / "absent")
    run = tmp_path / "run"
    run.mkdir()
    for name in RUN_NEEDS[:-1]:
        (run / name).write_text("{}")
    with pytest.raises(FileNotFoundError, match="lacks model"):
        require_run(run)
    (run / "model").mkdir()
    assert require_run(run) == run


def test_progress_prints_one_line_per_executed_cell(capsys: pytest.CaptureFixture[str]) -> None:
    import nbformat

    from deepfake_lib.notebook.series import _CellProgress, format_headline

    tracker = _CellProgress("03_fine_tuning.ipynb", 2)
    cells = [
        nbformat.v4.new_markdown_cell("# title"),
        nbformat.v4.new_code_cell("   "),
        nbformat.v4.new_code_cell("run = fine_tune(cfg)\nprint(run)"),
        nbformat.v4.new_code_cell("x = 1"),
    ]
    for i, cell in enumerate(cells):
        tracker.on_cell_start(cell=cell, cell_index=i)
        if cell.cell_type == "code" and cell.source.strip():  # nbclient's rule for on_cell_executed
            tracker.on_cell_executed(cell=cell, cell_index=i, execute_reply={})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "03_fine_tuning cell  1/2  run = fine_tune(cfg)" in lines[0] and lines[0].rstrip().endswith("s)")
    assert "cell  2/2  x = 1" in lines[1]
    metrics = {
        "test": {"eer": 0.089, "n": 90, "ci": {"eer": [0.044, 0.156]}},
        "shortcut_control": {"eer": 0.489, "ci": {"eer": [0.38, 0.6]}},
    }
    assert format_headline(metrics) == (
        "test EER 8.9% (95% CI 4.4% to 15.6%) on 90 clips; shortcut control "
        "(cheap cues) 48.9% (95% CI 38.0% to 60.0%)"
    )
