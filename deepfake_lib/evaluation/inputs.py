"""Validation of metric inputs: every metric raises :class:`MetricsError` naming the argument and the problem."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "MetricsError",
]


class MetricsError(ValueError):
    """Input that a metric cannot be computed on (non-finite scores, one class, bad shapes)."""


def _as_1d(values: ArrayLike, name: str, dtype: type) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise MetricsError(f"{name} cannot be read as {dtype.__name__} numbers: {error}") from None
    if array.ndim != 1:
        raise MetricsError(f"{name} must be one-dimensional [n], got shape {array.shape}")
    return array


def _check_finite(array: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        raise MetricsError(
            f"{name} contain {int(bad.sum())} non-finite value(s) (NaN or inf) out of "
            f"{array.size}; first at index {int(np.flatnonzero(bad)[0])}"
        )


def _validate_labels(labels: ArrayLike, name: str = "labels") -> np.ndarray:
    """Labels as an int64 array of 0 (spoof) and 1 (bona fide); anything else raises."""
    raw = _as_1d(labels, name, float)
    if raw.size == 0:
        raise MetricsError(f"{name} is empty: metrics need at least one clip")
    bad = ~np.isin(raw, (0.0, 1.0))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise MetricsError(
            f"{name} must be 0 (spoof/Fake) or 1 (bona fide/Real); {int(bad.sum())} value(s) are "
            f"not, first at index {first} ({raw[first]!r})"
        )
    return raw.astype(np.int64)


def _validate_pair(
    labels: ArrayLike,
    scores: ArrayLike,
    *,
    scores_name: str = "scores",
    both_classes: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(labels [n] int64, scores [n] float64)``."""
    label_array = _validate_labels(labels)
    score_array = _as_1d(scores, scores_name, float)
    if score_array.size != label_array.size:
        raise MetricsError(
            f"labels has {label_array.size} entries but {scores_name} has {score_array.size}; "
            "they must match one to one"
        )
    _check_finite(score_array, scores_name)
    if both_classes:
        n_real = int(label_array.sum())
        if n_real in (0, label_array.size):
            present = "1 = Real (bona fide)" if n_real else "0 = Fake (spoof)"
            raise MetricsError(
                f"only one class present: all {label_array.size} labels are {present}; "
                "EER and AUC need both bona fide (1) and spoof (0) clips"
            )
    return label_array, score_array


def _validate_threshold(threshold: float) -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise MetricsError(f"threshold must be a number, got {threshold!r}") from None
    if not math.isfinite(value):
        raise MetricsError(f"threshold must be finite, got {value}")
    return value


def _validate_logits(logits: np.ndarray, positive_index: int) -> np.ndarray:
    array = np.asarray(logits, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] < 2:
        raise MetricsError(f"logits must have shape [n, classes>=2], got shape {array.shape}")
    if array.shape[0] == 0:
        raise MetricsError("logits is empty: metrics need at least one clip")
    if not -array.shape[1] <= positive_index < array.shape[1]:
        raise MetricsError(f"positive_index {positive_index} is out of range for {array.shape[1]} classes")
    _check_finite(array.ravel(), "logits")
    return array


def _validate_probabilities(
    labels: ArrayLike, prob_real: ArrayLike, n_bins: int
) -> tuple[np.ndarray, np.ndarray]:
    label_array, prob_array = _validate_pair(labels, prob_real, scores_name="prob_real", both_classes=False)
    outside = (prob_array < 0.0) | (prob_array > 1.0)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise MetricsError(
            f"prob_real must lie in [0, 1]; {int(outside.sum())} value(s) do not, first at index "
            f"{first} ({prob_array[first]!r})"
        )
    if int(n_bins) != n_bins or n_bins < 1:
        raise MetricsError(f"n_bins must be a positive integer, got {n_bins!r}")
    return label_array, prob_array
