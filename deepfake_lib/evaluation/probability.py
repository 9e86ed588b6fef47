"""From logits to probabilities and back: P(bona fide), the log-odds score, reliability curves, expected calibration error (ECE) and temperature scaling."""

from __future__ import annotations

import logging
import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp, softmax

from deepfake_lib.evaluation.inputs import (
    MetricsError,
    _as_1d,
    _validate_logits,
    _validate_probabilities,
)

__all__ = [
    "compute_reliability_curve",
    "expected_calibration_error",
    "fit_temperature",
    "score_from_logits",
    "softmax_probability",
]

logger = logging.getLogger(__name__)


def softmax_probability(
    logits: np.ndarray, *, positive_index: int = 1, temperature: float = 1.0
) -> np.ndarray:
    """P(bona fide) [n] from ``logits`` [n, classes] divided by ``temperature`` (> 0)."""
    array = _validate_logits(logits, positive_index)
    if not (math.isfinite(temperature) and temperature > 0.0):
        raise MetricsError(f"temperature must be finite and > 0, got {temperature!r}")
    return softmax(array / temperature, axis=1)[:, positive_index]


def score_from_logits(logits: np.ndarray, *, positive_index: int = 1) -> np.ndarray:
    """Log-odds of bona fide [n] from ``logits`` [n, classes]: ``logit[pos] - logsumexp(others)``
    (for two classes, ``logit(real) - logit(fake)``)."""
    array = _validate_logits(logits, positive_index)
    others = np.delete(array, positive_index % array.shape[1], axis=1)
    return array[:, positive_index] - logsumexp(others, axis=1)


def compute_reliability_curve(
    labels: ArrayLike, prob_real: ArrayLike, *, n_bins: int = 10
) -> dict[str, list[float]]:
    """Reliability diagram of P(bona fide) ``prob_real`` [n] against ``labels`` [n] (1/0).

    ``n_bins`` equal-width bins on [0, 1] (the last includes 1.0); only non-empty bins are
    listed. Keys: ``bin_center``, ``mean_predicted`` (mean ``prob_real`` in the bin),
    ``observed_frequency`` (share of bona fide in the bin) and ``count``.
    """
    label_array, prob_array = _validate_probabilities(labels, prob_real, n_bins)
    n_bins = int(n_bins)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, prob_array, side="right") - 1, 0, n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    predicted = np.bincount(bins, weights=prob_array, minlength=n_bins)
    observed = np.bincount(bins, weights=label_array.astype(np.float64), minlength=n_bins)
    filled = counts > 0
    return {
        "bin_center": ((edges[:-1] + edges[1:]) / 2.0)[filled].tolist(),
        "mean_predicted": (predicted[filled] / counts[filled]).tolist(),
        "observed_frequency": (observed[filled] / counts[filled]).tolist(),
        "count": counts[filled].tolist(),
    }


def expected_calibration_error(labels: ArrayLike, prob_real: ArrayLike, *, n_bins: int = 10) -> float:
    """Expected calibration error of P(bona fide) ``prob_real`` [n] against ``labels`` [n].

    ``sum_b (n_b / n) * |mean prob_real in b - share of bona fide in b|`` over ``n_bins``
    equal-width bins (the binary, class-1 form, not the top-label-confidence form).
    """
    curve = compute_reliability_curve(labels, prob_real, n_bins=n_bins)
    counts = np.asarray(curve["count"], dtype=np.float64)
    gaps = np.abs(np.asarray(curve["mean_predicted"]) - np.asarray(curve["observed_frequency"]))
    return float((counts * gaps).sum() / counts.sum())


def fit_temperature(logits: np.ndarray, labels: ArrayLike) -> float:
    """Temperature ``T > 0`` that minimises the negative log-likelihood of
    ``softmax(logits / T)`` for ``logits`` [n, classes] and class indices ``labels`` [n].

    Fit it on validation logits only, then apply it with
    ``softmax_probability(test_logits, temperature=T)``; it leaves EER and AUC unchanged. The
    search runs over ``log T`` in [log 0.01, log 100]; a result on the bound is logged.
    """
    array = _validate_logits(logits, 0)
    raw = _as_1d(labels, "labels", float)
    if raw.size != array.shape[0]:
        raise MetricsError(
            f"labels has {raw.size} entries but logits has {array.shape[0]} rows; they must match one to one"
        )
    bad = ~np.isin(raw, np.arange(array.shape[1]))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise MetricsError(
            f"labels must be class indices 0..{array.shape[1] - 1}; {int(bad.sum())} value(s) "
            f"are not, first at index {first} ({raw[first]!r})"
        )
    target = array[np.arange(array.shape[0]), raw.astype(np.int64)]

    def negative_log_likelihood(log_temperature: float) -> float:
        inverse = math.exp(-log_temperature)
        return float(np.mean(logsumexp(array * inverse, axis=1) - target * inverse))

    low, high = math.log(0.01), math.log(100.0)
    result = minimize_scalar(
        negative_log_likelihood, bounds=(low, high), method="bounded", options={"xatol": 1e-6}
    )
    if min(result.x - low, high - result.x) < 1e-3:
        logger.warning(
            "fit_temperature: optimum at the search bound (T=%.3g); the logits may separate the "
            "classes perfectly",
            math.exp(result.x),
        )
    return float(math.exp(result.x))
