"""The committed run: one results file that the committed notebooks and the README both show.

:func:`~deepfake_lib.notebook.series.refresh_notebooks` re-executes the notebooks into their
default run folder, then :func:`write_committed_run` snapshots that run's figures into
:data:`COMMITTED_RUN_FILE` (next to the notebooks) and :func:`update_readme` renders it into the
README between :data:`README_BEGIN` and :data:`README_END`. The lines it quotes are formatted by
the same functions the notebooks print with (:func:`~deepfake_lib.evaluation.metrics.format_metrics`),
so a test can check that every README figure is one a notebook printed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from deepfake_lib.config import project_root, resolve_path
from deepfake_lib.evaluation.metrics import format_metrics
from deepfake_lib.notebook.claims import format_interval, interval_of
from deepfake_lib.notebook.report import describe_baselines_vs_model
from deepfake_lib.runs import RUN_FILES

__all__ = [
    "COMMITTED_RUN_FILE",
    "README_BEGIN",
    "README_END",
    "SYSTEMS_FILE",
    "collect_committed_run",
    "format_training_line",
    "read_readme_block",
    "render_committed_run",
    "update_readme",
    "write_committed_run",
]

COMMITTED_RUN_FILE = "notebooks/committed_run.json"
"""The committed run's figures (relative to the project root)."""
SYSTEMS_FILE = "analysis/systems.csv"
"""The model and baselines table notebook 04 shows (relative to the run folder)."""
README_BEGIN = "<!-- committed run: begin (generated from notebooks/committed_run.json; make notebooks) -->"
README_END = "<!-- committed run: end -->"


def format_training_line(metrics: dict[str, Any]) -> str:
    """The training line notebook 03 prints: best epoch, time, device, peak memory."""
    return (
        f"best epoch (validation EER): {metrics['best_epoch']} of {metrics['epochs_run']} run; "
        f"{metrics['train_seconds']:.0f} s on {metrics['device']} ({metrics['precision']}), "
        f"peak memory {metrics['peak_rss_mb']:.0f} MB"
    )


def collect_committed_run(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The figures of a finished series run that the README quotes (a JSON-ready dict).

    Reads ``metrics.json`` and, when notebook 04 ran, :data:`SYSTEMS_FILE`. ``printed`` holds the
    exact lines the notebooks print, which the README repeats.
    """
    run = resolve_path(run_dir)
    m = json.loads((run / RUN_FILES["metrics"]).read_text())
    test = m["test"]
    result: dict[str, Any] = {
        "data_source": m.get("data_source"),
        "model_source": m.get("model_source"),
        "n_test": int(test["n"]),
        "n_test_real": int(test.get("n_real", 0)),
        "n_test_fake": int(test.get("n_fake", 0)),
        "printed": {
            "test": "fine-tuned model: " + format_metrics(test),
            "shortcut": "shortcut control: " + format_metrics(m["shortcut_control"])
            if m.get("shortcut_control")
            else "",
            "training": format_training_line(m),
        },
        "systems": [],
    }
    systems = run / SYSTEMS_FILE
    if systems.is_file():
        table = pd.read_csv(systems)
        result["systems"] = table[["system", "eer", "eer_low", "eer_high", "auc"]].to_dict("records")
    return result


def write_committed_run(
    run_dir: str | os.PathLike[str], path: str | os.PathLike[str] = COMMITTED_RUN_FILE
) -> Path:
    """Write :func:`collect_committed_run` of ``run_dir`` to ``path`` (under the project root)."""
    out = resolve_path(path)
    out.write_text(json.dumps(collect_committed_run(run_dir), indent=1) + "\n")
    return out


def render_committed_run(results: dict[str, Any]) -> str:
    """The README block (Markdown, without the markers) for a committed-run results dict."""
    printed = results["printed"]
    n_real, n_fake = results["n_test_real"], results["n_test_fake"]
    lines = [
        f"The committed notebooks show one run: data `{results['data_source']}`, model "
        f"`{results['model_source']}`, {results['n_test']} test clips ({n_real} bona fide, {n_fake} spoofed). "
        "On the embedded corpus its figures are pipeline checks, not the performance of a detector on real "
        "deepfakes. What notebook 03 prints:",
        "",
        "```text",
        printed["test"],
    ]
    if printed.get("shortcut"):
        lines.append(printed["shortcut"])
    lines += [printed["training"], "```", ""]
    if n_real and n_fake:
        lines.append(
            f"- One clip moves the EER by {100 / n_fake:.1f} points (one of {n_fake} spoofs) or "
            f"{100 / n_real:.1f} points (one of {n_real} bona fide clips)"
            + (", so every EER above is a multiple of that step." if n_real == n_fake else ".")
        )
    if results.get("systems"):
        table = pd.DataFrame(results["systems"])
        lines.append("- Notebook 04 scores other systems on the same test clips:")
        for _, row in table.iterrows():
            lines.append(
                f"  - {row['system']}: test EER {format_interval(row['eer'], interval_of(row, 'eer'))}, AUC {row['auc']:.3f}"
            )
        lines.append(f"- {describe_baselines_vs_model(table)}")
    if results.get("data_source") == "embedded" and printed.get("shortcut"):
        lines.append(
            "- The shortcut control is a logistic regression on cheap cues (levels, band energies, pitch, ...). "
            "The embedded corpus's attacks change the spectrum on purpose and only its recording properties "
            "(duration, level, peak, rate, zero-crossing rate) were calibrated to chance, so on it the control "
            "is a cheap artefact detector, and a low control EER there is expected; the real-speech benchmark "
            "below sets every system beside the same control over held-out speakers."
        )
    lines.append(
        "- Training time and memory are this run's, on the shared machine that executed the notebooks; "
        "the benchmark table below times training separately, on an idle host."
    )
    return "\n".join(lines)


def read_readme_block(readme: str) -> str:
    """The text between the committed-run markers of ``readme`` (a ``ValueError`` when absent)."""
    if README_BEGIN not in readme or README_END not in readme:
        raise ValueError("README has no committed-run block (markers missing)")
    return readme.split(README_BEGIN + "\n", 1)[1].split("\n" + README_END, 1)[0]


def update_readme(
    results_path: str | os.PathLike[str] = COMMITTED_RUN_FILE, readme: str | os.PathLike[str] | None = None
) -> bool:
    """Render the results file into the README's committed-run block; True when it changed."""
    path = Path(readme) if readme is not None else project_root() / "README.md"
    text = path.read_text()
    old = read_readme_block(text)
    new = render_committed_run(json.loads(resolve_path(results_path).read_text()))
    if old == new:
        return False
    path.write_text(
        text.replace(
            README_BEGIN + "\n" + old + "\n" + README_END, README_BEGIN + "\n" + new + "\n" + README_END
        )
    )
    return True
