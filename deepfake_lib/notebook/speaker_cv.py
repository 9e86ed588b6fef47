"""The real-speech systems compared over speaker-grouped cross-validation, for notebook 04.

A run's own test split on the real-speech corpus holds about one bona fide speaker, so no
interval can be estimated there and nothing is ranked. The benchmarks score every system with
every bona fide speaker held out once (``benchmarks/bench_real_speech.py``: the classical systems
and the cheap-cue control; ``benchmarks/bench_real_speech_nets.py``: the networks, trained by the
recipe of ``params/real_speech.yaml``). :func:`speaker_cv_table` reads their saved results when
they were measured on the corpus the run used; :func:`describe_speaker_cv` states what the
intervals allow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from deepfake_lib.config import project_root, resolve_source
from deepfake_lib.notebook.claims import interval_of, pct, state_difference

__all__ = ["RESULT_FILES", "describe_speaker_cv", "speaker_cv_table"]

RESULT_FILES: tuple[str, str] = (
    "benchmarks/results/real_speech.json",
    "benchmarks/results/real_speech_nets.json",
)
"""The saved benchmark results, relative to the project root."""

CLASSICAL_NAMES: dict[str, str] = {
    "lfcc_lr": "LFCC + logistic regression",
    "lfcc_gmm": "LFCC-GMM",
    "cheap_cues_lr": "cheap-cue control (29 cues + LR)",
}
CONTROL = "cheap_cues_lr"


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _row(key: str, name: str, entry: dict[str, Any], origin: str) -> dict[str, Any]:
    pooled = entry["pooled"]["all"]
    per_fold = entry.get("per_fold") or {}
    return {
        "key": key,
        "system": name,
        "eer": float(pooled["eer"]),
        "eer_low": pooled.get("eer_low"),
        "eer_high": pooled.get("eer_high"),
        "fold_mean": per_fold.get("mean"),
        "fold_min": per_fold.get("min"),
        "fold_max": per_fold.get("max"),
        "n_folds": per_fold.get("n_folds"),
        "control": key == CONTROL,
        "benchmark": origin,
    }


def speaker_cv_table(data_source: str, *, root: Path | None = None) -> pd.DataFrame | None:
    """One row per system (pooled out-of-fold EER over speaker-grouped folds with its interval,
    per-fold mean and range) from the saved benchmark results measured on ``data_source``'s
    corpus (same folder name and clip count); ``None`` when there are none for this source
    (e.g. the embedded corpus, or a Colab install without the benchmarks folder)."""
    folder = Path(resolve_source(str(data_source)))
    if not folder.is_dir():
        return None
    base = root if root is not None else project_root()
    rows: list[dict[str, Any]] = []
    for rel in RESULT_FILES:
        saved = _read(base / rel)
        if not saved or (saved.get("corpus") or {}).get("folder") != folder.name:
            continue
        origin = Path(rel).name
        if "speaker_cv" in saved:
            for key, name in CLASSICAL_NAMES.items():
                if key in saved["speaker_cv"]:
                    rows.append(_row(key, name, saved["speaker_cv"][key], origin))
        for key, entry in (saved.get("systems") or {}).items():
            rows.append(_row(key, str(entry.get("name", key)), entry, origin))
    if not rows:
        return None
    return pd.DataFrame(rows).sort_values("eer", kind="stable").reset_index(drop=True)


def describe_speaker_cv(table: pd.DataFrame) -> str:
    """Which system has the lowest pooled EER, whether the intervals set it apart from each other
    system and from the cheap-cue control; generated from ``table``
    (:func:`speaker_cv_table`)."""
    if table.empty:
        raise ValueError("describe_speaker_cv: empty table")
    best = table.iloc[0]
    parts = [
        f"Over {int(best['n_folds'] or 0)} speaker-grouped folds (every bona fide speaker scored once while "
        f"unseen in training), the lowest pooled EER is **{best['system']}** at {pct(best['eer'])} "
        f"({pct(best['eer_low'])} to {pct(best['eer_high'])})."
    ]
    for _, other in table.iloc[1:].iterrows():
        parts.append(
            state_difference(
                str(best["system"]),
                float(best["eer"]),
                interval_of(best, "eer"),
                str(other["system"]),
                float(other["eer"]),
                interval_of(other, "eer"),
            )
        )
    control = table[table["control"]]
    if not control.empty and not bool(best["control"]):
        c = control.iloc[0]
        separated = any(
            float(r["eer_high"]) < float(c["eer_low"])
            for _, r in table[~table["control"]].iterrows()
            if pd.notna(r["eer_high"]) and pd.notna(c["eer_low"])
        )
        parts.append(
            "At least one system is below the cheap-cue control with intervals apart."
            if separated
            else "No system is set apart from the cheap-cue control by the intervals: on held-out speakers "
            "this corpus cannot tell any detector here from cheap cues."
        )
    return " ".join(parts)
