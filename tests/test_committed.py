"""The README's figures for the committed run are the ones the committed notebooks print."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from deepfake_lib.notebook import committed
from deepfake_lib.notebook.series import NOTEBOOKS, notebooks_dir

ROOT = Path(__file__).resolve().parents[1]


def printed_lines(name: str) -> list[str]:
    """Every line of stream output a committed notebook printed."""
    nb = json.loads((notebooks_dir() / name).read_text())
    lines = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text = out["text"] if isinstance(out["text"], str) else "".join(out["text"])
                lines += text.splitlines()
    return lines


def test_readme_block_is_the_rendering_of_the_committed_results_file():
    results = json.loads((ROOT / committed.COMMITTED_RUN_FILE).read_text())
    block = committed.read_readme_block((ROOT / "README.md").read_text())
    assert block == committed.render_committed_run(results), (
        "run `make notebooks` (it rewrites the README block)"
    )


def test_every_figure_the_readme_quotes_is_one_a_notebook_printed():
    results = json.loads((ROOT / committed.COMMITTED_RUN_FILE).read_text())
    printed = {line for name in NOTEBOOKS for line in printed_lines(name)}
    for key, line in results["printed"].items():
        if line:
            assert line in printed, f"README quotes {key!r} = {line!r}, which no committed notebook printed"
    block = committed.read_readme_block((ROOT / "README.md").read_text())
    fenced = block.split("```text\n", 1)[1].split("\n```", 1)[0].splitlines()
    assert fenced and all(line in printed for line in fenced)


def test_render_and_update_follow_the_results(tmp_path: Path):
    run = tmp_path / "run"
    (run / "analysis").mkdir(parents=True)
    test = {
        "n": 90,
        "n_real": 45,
        "n_fake": 45,
        "eer": 0.1,
        "auc": 0.95,
        "accuracy": 0.9,
        "ci": {"eer": [0.05, 0.16], "auc": [0.9, 0.99], "accuracy": [0.85, 0.95]},
    }
    metrics = {
        "data_source": "embedded",
        "model_source": "tiny",
        "test": test,
        "shortcut_control": test,
        "best_epoch": 3,
        "epochs_run": 4,
        "train_seconds": 12.3,
        "device": "cpu",
        "precision": "fp32",
        "peak_rss_mb": 999.0,
    }
    (run / "metrics.json").write_text(json.dumps(metrics))
    pd.DataFrame(
        [
            {
                "system": "fine-tuned wav2vec2 (this run)",
                "eer": 0.1,
                "eer_low": 0.05,
                "eer_high": 0.16,
                "auc": 0.95,
            },
            {
                "system": "LFCC + logistic regression",
                "eer": 0.07,
                "eer_low": 0.02,
                "eer_high": 0.13,
                "auc": 0.98,
            },
        ]
    ).to_csv(run / committed.SYSTEMS_FILE, index=False)
    results = committed.collect_committed_run(run)
    assert results["printed"]["training"] == (
        "best epoch (validation EER): 3 of 4 run; 12 s on cpu (fp32), peak memory 999 MB"
    )
    text = committed.render_committed_run(results)
    assert (
        "moves the EER by 2.2 points" in text and "not shown to be better than a classical baseline" in text
    )
    out = tmp_path / "committed_run.json"
    committed.write_committed_run(run, out)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{committed.README_BEGIN}\nstale\n{committed.README_END}\nrest\n")
    assert committed.update_readme(out, readme) is True
    assert committed.read_readme_block(readme.read_text()) == text and readme.read_text().endswith("rest\n")
    assert committed.update_readme(out, readme) is False
    with pytest.raises(ValueError, match="markers"):
        committed.read_readme_block("no block")
