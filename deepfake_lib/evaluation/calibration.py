"""Calibration of a run's scores (temperature scaling fitted on validation) and the choice of
the operating threshold.

Conventions as in :mod:`deepfake_lib.evaluation.summaries`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.metrics import brier_score_loss, log_loss

from deepfake_lib.evaluation.error_rates import compute_eer
from deepfake_lib.evaluation.metrics import compute_metrics
from deepfake_lib.evaluation.probability import (
    compute_reliability_curve,
    expected_calibration_error,
    fit_temperature,
    score_from_logits,
    softmax_probability,
)
from deepfake_lib.evaluation.summaries import require_columns, save_dir
from deepfake_lib.runs import write_json

__all__ = [
    "calibrate_scores",
]


def _logits_of(scores: pd.DataFrame, name: str) -> np.ndarray:
    require_columns(scores, ("label", "logit_fake", "logit_real"), name)
    return scores[["logit_fake", "logit_real"]].to_numpy(dtype=np.float64)


def _operating_point(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:

    m = compute_metrics(labels, scores, threshold=threshold)
    return {k: m[k] for k in ("threshold", "accuracy", "balanced_accuracy", "far", "frr")}


def calibrate_scores(
    val_scores: pd.DataFrame,
    test_scores: pd.DataFrame,
    *,
    n_bins: int = 10,
    min_clips_per_class: int = 10,
    out_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Temperature scaling fitted on validation logits only, and the operating threshold.

    ``val_scores``/``test_scores``: per-clip tables with ``label``, ``logit_fake``,
    ``logit_real`` (``validation_scores.csv``, ``test_scores.csv``). The temperature ``T``
    minimises the validation negative log-likelihood; test clips never influence it.

    Returns ``temperature``; test ``ece_before``/``ece_after`` (P(Real), ``n_bins`` bins),
    ``nll_*`` and ``brier_*``; ``reliability_before``/``reliability_after`` (curves of
    :func:`~deepfake_lib.evaluation.metrics.compute_reliability_curve`); ``operating_points``: validation
    and test accuracy, balanced accuracy, FAR, FRR at ``"validation_eer"`` (the validation EER
    threshold) and at ``"probability_0.5"`` (score 0; temperature scaling does not move it);
    and ``recommendation``: which threshold the Detector should use, with ``reasons`` (the
    validation-EER threshold when validation holds at least ``min_clips_per_class`` clips of
    each class, else 0.5) and ``test_agrees`` (whether test balanced accuracy is at least as
    good there). Writes ``calibration.json``.
    """
    val_logits = _logits_of(val_scores, "val_scores")
    test_logits = _logits_of(test_scores, "test_scores")
    val_labels = val_scores["label"].to_numpy(np.int64)
    test_labels = test_scores["label"].to_numpy(np.int64)
    temperature = fit_temperature(val_logits, val_labels)
    before = softmax_probability(test_logits)
    after = softmax_probability(test_logits, temperature=temperature)

    def nll(p: np.ndarray) -> float:
        return float(log_loss(test_labels, p, labels=[0, 1]))

    val_score = score_from_logits(val_logits)
    test_score = score_from_logits(test_logits)
    val_eer = compute_eer(val_labels, val_score)
    thresholds = {"validation_eer": val_eer.threshold, "probability_0.5": 0.0}
    points = {
        name: {
            "validation": _operating_point(val_labels, val_score, thr),
            "test": _operating_point(test_labels, test_score, thr),
        }
        for name, thr in thresholds.items()
    }
    n_val_real = int(val_labels.sum())
    n_val_fake = int(val_labels.size - n_val_real)
    enough = min(n_val_real, n_val_fake) >= min_clips_per_class
    if enough:
        chosen, other = "validation_eer", "probability_0.5"
        reasons = [
            f"it was chosen on held-out validation clips ({n_val_real} bona fide, {n_val_fake} spoofed), "
            "never on test",
            "it balances false acceptances and false rejections, so it does not depend on the class prior "
            "or on the scores being calibrated",
            "0.5 is only the right cut when P(Real) is calibrated and deployment has the training class "
            "balance",
        ]
    else:
        chosen, other = "probability_0.5", "validation_eer"
        reasons = [
            f"validation has only {n_val_real} bona fide and {n_val_fake} spoofed clips "
            f"(< {min_clips_per_class} "
            "of a class): an EER threshold placed on so few clips is noise",
            "score 0 (P(Real) = 0.5) is the classifier's own decision boundary and needs no tuning",
        ]
    test_chosen = points[chosen]["test"]["balanced_accuracy"]
    test_other = points[other]["test"]["balanced_accuracy"]
    result: dict[str, Any] = {
        "temperature": temperature,
        "fitted_on": "validation logits",
        "n_validation": int(val_labels.size),
        "n_test": int(test_labels.size),
        "n_bins": int(n_bins),
        "ece_before": expected_calibration_error(test_labels, before, n_bins=n_bins),
        "ece_after": expected_calibration_error(test_labels, after, n_bins=n_bins),
        "nll_before": nll(before),
        "nll_after": nll(after),
        "brier_before": float(brier_score_loss(test_labels, before)),
        "brier_after": float(brier_score_loss(test_labels, after)),
        "reliability_before": compute_reliability_curve(test_labels, before, n_bins=n_bins),
        "reliability_after": compute_reliability_curve(test_labels, after, n_bins=n_bins),
        "operating_points": points,
        "recommendation": {
            "threshold_name": chosen,
            "score_threshold": float(thresholds[chosen]),
            "probability_threshold_raw": float(expit(thresholds[chosen])),
            "probability_threshold_calibrated": float(expit(thresholds[chosen] / temperature)),
            "reasons": reasons,
            "test_agrees": bool(test_chosen >= test_other),
            "test_balanced_accuracy": {chosen: test_chosen, other: test_other},
            "note": (
                "temperature scaling changes probabilities, not the ranking: EER, AUC and the score-0 "
                "cut stay the same"
            ),
        },
    }
    folder = save_dir(out_dir)
    if folder is not None:
        write_json(folder / "calibration.json", result)
    return result
