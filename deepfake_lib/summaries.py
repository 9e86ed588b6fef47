"""Small shared pieces of the analysis modules: EER rows with intervals, output folders.

Conventions (as everywhere in the project): label 1 = Real (bona fide), 0 = Fake (spoof);
a score is the log-odds of Real (higher = more bona fide); EERs follow
:func:`deepfake_lib.metrics.compute_eer`; intervals are 95% percentile bootstraps, over
utterance groups where the data has them (a bona fide clip and its spoofs move together).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfake_lib.metrics import bootstrap_ci, compute_metrics


def save_dir(out_dir: str | os.PathLike[str] | None) -> Path | None:
    """``out_dir`` as a created folder, or ``None`` (write nothing) when it is ``None``."""
    if out_dir is None:
        return None
    p = Path(out_dir)
    p.mkdir(parents=True, exist_ok=True)
    return p


def slug(text: str) -> str:
    """A file-name-safe form of ``text`` (at most its last 60 characters)."""
    return re.sub(r"[^\w.-]+", "_", text).strip("_")[-60:] or "source"


def require_columns(df: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    """Raise ``ValueError`` naming ``name`` when ``df`` lacks any of ``columns``."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}; it has {list(df.columns)}")


def eer_row(
    labels: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray | None,
    *,
    n_bootstrap: int,
    seed: int,
    threshold: float | None = None,
    prefix: str = "",
) -> dict[str, Any]:
    """Flat columns eer, eer_low, eer_high, auc, auc_low, auc_high (and accuracy, its bounds,
    far and frr at ``threshold``), bounds from a (grouped) bootstrap; NaN where undefined
    (one class present, or ``n_bootstrap == 0`` for the bounds)."""

    nan = float("nan")
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    keys = ["eer", "auc"] + (["accuracy"] if threshold is not None else [])
    values: dict[str, float] = {k: nan for k in keys}
    bounds: dict[str, tuple[float, float]] = {k: (nan, nan) for k in keys}
    far = frr = nan
    n_real = int(labels.sum())
    if 0 < n_real < labels.size:
        m = compute_metrics(labels, scores, threshold=threshold)
        values.update({k: m[k] for k in keys})
        far, frr = m["far"], m["frr"]
        if n_bootstrap > 0:
            ci = bootstrap_ci(
                labels, scores, groups=groups, threshold=m["threshold"], n_bootstrap=n_bootstrap, seed=seed
            )
            bounds.update({k: tuple(ci[k]) for k in keys})
    elif threshold is not None and labels.size:
        values["accuracy"] = float(np.mean((scores >= threshold) == labels))
    row: dict[str, Any] = {}
    for k in keys:
        row.update(
            {prefix + k: values[k], prefix + k + "_low": bounds[k][0], prefix + k + "_high": bounds[k][1]}
        )
    if threshold is not None:
        row.update({prefix + "far": far, prefix + "frr": frr})
    return row
