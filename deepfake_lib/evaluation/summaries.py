"""Small shared pieces of the analysis modules: EER rows with intervals, output folders.

Conventions (as everywhere in the project): label 1 = Real (bona fide), 0 = Fake (spoof);
a score is the log-odds of Real (higher = more bona fide); EERs follow
:func:`deepfake_lib.evaluation.metrics.compute_eer`; intervals are 95% percentile bootstraps over the
split's groups (:func:`score_groups`: speakers when the data names them, else utterances, so a
bona fide clip and its spoofs move together), except that a statistic with no error gets exact
bounds instead of a zero-width bootstrap interval (:func:`exact_zero_error_bounds`), and counts
at a threshold get exact Clopper-Pearson intervals (:func:`deepfake_lib.evaluation.metrics.format_rate`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfake_lib.evaluation.costs import ASVSPOOF5_COSTS, DetectionCosts
from deepfake_lib.evaluation.error_rates import format_rate
from deepfake_lib.evaluation.intervals import bootstrap_ci
from deepfake_lib.evaluation.metric_registry import METRICS, bootstrap_keys
from deepfake_lib.evaluation.metrics import compute_metrics

__all__ = [
    "eer_row",
    "exact_zero_error_bounds",
    "require_columns",
    "save_dir",
    "score_groups",
    "slug",
]


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


def score_groups(table: pd.DataFrame) -> np.ndarray | None:
    """The bootstrap groups of a scores table (e.g. ``test_scores.csv``): ``speaker_id`` when the
    table names speakers (like :func:`deepfake_lib.corpora.sources.group_column` on the split), else
    ``utterance_id``, else ``None`` (resample clips). Strings ``[n]``."""
    if "speaker_id" in table.columns:
        speakers = table["speaker_id"]
        if speakers.notna().any() and (speakers.fillna("").astype(str) != "").any():
            return speakers.fillna("").astype(str).to_numpy()
    if "utterance_id" in table.columns:
        return table["utterance_id"].astype(str).to_numpy()
    return None


def _zero_error_upper(n: int, level: float) -> float:
    """One-sided exact (Clopper-Pearson) upper bound on a rate with 0 events in ``n`` trials."""
    return 1.0 - (1.0 - level) ** (1.0 / n)


def _dcf(far: float, frr: float, costs: DetectionCosts) -> float:
    return (costs.miss_weight * frr + costs.false_alarm_weight * far) / min(
        costs.miss_weight, costs.false_alarm_weight
    )


def exact_zero_error_bounds(
    n_bonafide: int, n_spoof: int, *, confidence: float = 0.95, costs: DetectionCosts = ASVSPOOF5_COSTS
) -> dict[str, tuple[float, float]]:
    """Exact bounds for scores with no error (bona fide and spoofs separated), where a bootstrap
    gives the zero-width ``[0, 0]``.

    At the separating threshold 0 of ``n_spoof`` spoofs are accepted and 0 of ``n_bonafide`` bona
    fide rejected; each true rate lies below its one-sided Clopper-Pearson bound ``u_spoof``,
    ``u_bona`` at level ``1 - (1 - confidence) / 2`` (so both hold together with ``confidence``, by
    the union bound). Hence EER <= max(u_spoof, u_bona), minDCF and actDCF <= DCF(u_spoof, u_bona)
    and AUC >= (1 - u_spoof)(1 - u_bona). Returns ``{"eer", "auc", "min_dcf", "act_dcf"}`` as
    ``(low, high)``.
    """
    level = 1.0 - (1.0 - confidence) / 2.0
    u_spoof = _zero_error_upper(n_spoof, level)
    u_bona = _zero_error_upper(n_bonafide, level)
    dcf = _dcf(u_spoof, u_bona, costs)
    return {
        "eer": (0.0, max(u_spoof, u_bona)),
        "auc": ((1.0 - u_spoof) * (1.0 - u_bona), 1.0),
        "min_dcf": (0.0, dcf),
        "act_dcf": (0.0, dcf),
    }


def eer_row(
    labels: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray | None,
    *,
    n_bootstrap: int,
    seed: int,
    threshold: float | None = None,
    prefix: str = "",
    confidence: float = 0.95,
    costs: DetectionCosts = ASVSPOOF5_COSTS,
) -> dict[str, Any]:
    """Flat columns for every bootstrapped metric of the table (eer, min_dcf, cllr, min_cllr, auc,
    and any registered since), each with ``_low``/``_high`` bounds; at ``threshold`` (the run's
    threshold; accept as bona fide when ``score >= threshold``) also accuracy and act_dcf with
    bounds, far and frr, the counts ``n_spoof_accepted`` and ``n_bonafide_rejected``,
    and ``spoof_accepted`` / ``bonafide_rejected``: those counts as :func:`~deepfake_lib.evaluation.metrics.
    format_rate` text with an exact interval (``"0 of 11, at most 24% at 95%"``).

    Bounds come from a (grouped) bootstrap, except where it is degenerate (every replicate equal,
    listed in the ``degenerate`` column, from ``ci["degenerate"]``): a statistic with no error
    (EER, minDCF or actDCF 0, AUC 1) gets the exact bounds of :func:`exact_zero_error_bounds`
    instead of a zero-width interval, an accuracy of 1 (or 0) its one-sided Clopper-Pearson bound;
    ``exact_bounds`` names the statistics so treated. ``no_interval`` says why the bounds are NaN
    when the groups are too few to resample (see :func:`~deepfake_lib.evaluation.metrics.bootstrap_ci`);
    empty otherwise. NaN where undefined (one class present, or
    ``n_bootstrap == 0`` for the bounds).
    """

    nan = float("nan")
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    keys = [k for k in bootstrap_keys() if threshold is not None or not METRICS[k].at_threshold]
    values: dict[str, float] = {k: nan for k in keys}
    bounds: dict[str, tuple[float, float]] = {k: (nan, nan) for k in keys}
    far = frr = nan
    degenerate: list[str] = []
    exact: list[str] = []
    no_interval = ""
    n_real = int(labels.sum())
    n_fake = int(labels.size - n_real)
    if 0 < n_real < labels.size:
        m = compute_metrics(labels, scores, threshold=threshold, costs=costs)
        values.update({k: m[k] for k in keys})
        far, frr = m["far"], m["frr"]
        if n_bootstrap > 0:
            ci = bootstrap_ci(
                labels,
                scores,
                groups=groups,
                threshold=m["threshold"],
                act_dcf_threshold=threshold,
                costs=costs,
                n_bootstrap=n_bootstrap,
                confidence=confidence,
                seed=seed,
            )
            bounds.update({k: tuple(ci[k]) for k in keys if k in ci})
            if "too_few_groups" in ci:
                few = ci["too_few_groups"]
                no_interval = (
                    f"too few groups for a grouped bootstrap: {few['bonafide']} bona fide, "
                    f"{few['spoof']} spoof ({few['needed']} of each needed)"
                )
            degenerate = [k for k in keys if k in ci["degenerate"]]
            zero = exact_zero_error_bounds(n_real, n_fake, confidence=confidence, costs=costs)
            for k in degenerate:
                perfect = values[k] == (1.0 if k == "auc" else 0.0)
                if k in zero and perfect:
                    bounds[k] = zero[k]
                    exact.append(k)
                elif k == "accuracy" and values[k] in (0.0, 1.0):
                    u = _zero_error_upper(labels.size, confidence)
                    bounds[k] = (1.0 - u, 1.0) if values[k] == 1.0 else (0.0, u)
                    exact.append(k)
    elif threshold is not None and labels.size:
        values["accuracy"] = float(np.mean((scores >= threshold) == labels))
    row: dict[str, Any] = {}
    for k in keys:
        row.update(
            {prefix + k: values[k], prefix + k + "_low": bounds[k][0], prefix + k + "_high": bounds[k][1]}
        )
    if threshold is not None:
        accepted = int(np.sum((scores >= threshold) & (labels == 0)))
        rejected = int(np.sum((scores < threshold) & (labels == 1)))
        row.update(
            {
                prefix + "far": far,
                prefix + "frr": frr,
                prefix + "n_spoof_accepted": accepted,
                prefix + "n_bonafide_rejected": rejected,
                prefix + "spoof_accepted": format_rate(accepted, n_fake, confidence=confidence)
                if n_fake
                else "",
                prefix + "bonafide_rejected": format_rate(rejected, n_real, confidence=confidence)
                if n_real
                else "",
            }
        )
    row.update(
        {
            prefix + "degenerate": ",".join(degenerate),
            prefix + "exact_bounds": ",".join(exact),
            prefix + "no_interval": no_interval,
        }
    )
    return row
