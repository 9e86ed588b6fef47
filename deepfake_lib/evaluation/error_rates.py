"""Error rates of a score list: the tie-aware EER and DET curve, accuracy at a threshold, and exact (Clopper-Pearson) intervals for a rate with few or no errors.

The EER convention is the module docstring of :mod:`deepfake_lib.evaluation.metrics`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import binomtest
from sklearn.metrics import (
    accuracy_score,
)

from deepfake_lib.evaluation.inputs import (
    MetricsError,
    _validate_pair,
    _validate_threshold,
)

__all__ = [
    "accuracy_at_threshold",
    "compute_det_curve",
    "compute_eer",
    "EER",
    "format_rate",
    "rate_interval",
    "selection_score",
]


@dataclass(frozen=True)
class EER:
    """Equal error rate and its operating point.

    ``eer`` is a rate in [0, 1]; ``threshold`` is a score value: a clip is accepted as bona fide
    when ``score >= threshold``.
    """

    eer: float
    threshold: float


def _error_counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, ...]:
    """Integer error counts at every distinct threshold, increasing, plus +inf.

    Returns ``(thresholds [m+1], false_accepts [m+1], false_rejects [m+1])`` where
    ``false_accepts[k]`` = spoofs with score >= thresholds[k] and ``false_rejects[k]`` = bona
    fide clips with score < thresholds[k]; the last threshold (+inf) accepts nothing. These are
    ``sklearn.metrics.roc_curve(..., drop_intermediate=False)`` reversed, kept as exact integer
    counts because the EER's crossing search compares them exactly.
    """
    thresholds = np.append(np.unique(scores), np.inf)
    spoof = np.sort(scores[labels == 0])
    bona = np.sort(scores[labels == 1])
    false_accepts = spoof.size - np.searchsorted(spoof, thresholds, side="left")
    false_rejects = np.searchsorted(bona, thresholds, side="left")
    return thresholds, false_accepts, false_rejects


def _select_eer(
    false_accepts: np.ndarray, false_rejects: np.ndarray, n_spoof: np.ndarray, n_bona: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """EER by the module's convention, along the last axis.

    ``false_accepts``/``false_rejects``: [..., points] integer counts at increasing thresholds,
    the first point accepting everything and the last accepting nothing; ``n_spoof``/``n_bona``:
    [...] totals. The crossing segment is found in exact integer arithmetic: ``k`` is the last
    point with FAR > FRR, and the EER is where the straight line from point ``k`` to point
    ``k + 1`` meets FAR = FRR. Returns ``(eer [...], index [...])``, ``index`` being the end of
    that segment nearer the crossing (``k`` on an exact midpoint).
    """
    n_spoof = np.asarray(n_spoof, dtype=np.int64)[..., None]
    n_bona = np.asarray(n_bona, dtype=np.int64)[..., None]
    # (FAR - FRR) * n_spoof * n_bona: an integer, strictly decreasing from > 0 to < 0 over the
    # distinct thresholds (repeated points, from bootstrap weights, keep it constant).
    gap = false_accepts * n_bona - false_rejects * n_spoof
    last_above = np.sum(gap > 0, axis=-1, keepdims=True) - 1
    gap_k = np.take_along_axis(gap, last_above, axis=-1)
    gap_next = np.take_along_axis(gap, last_above + 1, axis=-1)
    fa_k = np.take_along_axis(false_accepts, last_above, axis=-1)
    fa_next = np.take_along_axis(false_accepts, last_above + 1, axis=-1)
    # FAR at fraction s = gap_k / (gap_k - gap_next) along the segment, as one division.
    span = gap_k - gap_next
    eer = (fa_k * -gap_next.astype(np.float64) + fa_next * gap_k.astype(np.float64)) / (
        n_spoof * span.astype(np.float64)
    )
    index = np.where(2 * gap_k > span, last_above + 1, last_above)
    return eer[..., 0], index[..., 0]


def compute_det_curve(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detection error trade-off at every distinct score threshold.

    ``labels`` [n] (1 = bona fide, 0 = spoof), ``scores`` [n] (higher = more bona fide).
    Returns ``(far [m+1], frr [m+1], thresholds [m+1])`` with thresholds increasing: the ``m``
    distinct scores followed by ``+inf`` (accept nothing: FAR 0, FRR 1). At threshold ``t``,
    FAR = share of spoofs with ``score >= t`` and FRR = share of bona fide with ``score < t``.
    """
    label_array, score_array = _validate_pair(labels, scores)
    thresholds, false_accepts, false_rejects = _error_counts(label_array, score_array)
    n_bona = int(label_array.sum())
    n_spoof = label_array.size - n_bona
    return false_accepts / n_spoof, false_rejects / n_bona, thresholds


def compute_eer(labels: ArrayLike, scores: ArrayLike) -> EER:
    """Equal error rate of bona fide ``labels`` [n] (1/0) against ``scores`` [n].

    Convention: FAR and FRR are evaluated only at the distinct score values ``t_1 < ... < t_m``
    and ``+inf`` (accept nothing), never between tied scores, so a tie between a bona fide clip
    and a spoof counts as one operating point, not split in the system's favour. FAR - FRR falls
    strictly from 1 (at ``t_1``) to -1 (at ``+inf``); with ``t_k`` the last threshold where
    FAR > FRR, the EER is the point where the straight line from ``(FAR, FRR)(t_k)`` to
    ``(FAR, FRR)(t_k+1)`` crosses FAR = FRR (linear interpolation between two real operating
    points, i.e. what randomising between them achieves). When some threshold has FAR = FRR
    exactly, that value is the EER. The returned threshold is whichever of ``t_k``, ``t_k+1`` is
    nearer the crossing (``t_k`` on the exact midpoint), so FAR and FRR at it are within one
    step of the EER. Perfectly separated scores give 0.0, perfectly inverted 1.0, and all-tied
    scores 0.5 (threshold: the tied score). Invariant to strictly increasing transforms.
    """
    label_array, score_array = _validate_pair(labels, scores)
    thresholds, false_accepts, false_rejects = _error_counts(label_array, score_array)
    n_bona = int(label_array.sum())
    n_spoof = label_array.size - n_bona
    eer, index = _select_eer(false_accepts, false_rejects, np.int64(n_spoof), np.int64(n_bona))
    # The chosen end is never the +inf point: that needs FAR - FRR at t_k above 1.
    return EER(eer=float(eer), threshold=float(thresholds[int(index)]))


def accuracy_at_threshold(labels: ArrayLike, scores: ArrayLike, threshold: float) -> float:
    """Share of clips in ``labels`` [n] classified correctly when ``score >= threshold`` means
    bona fide (1)."""
    label_array, score_array = _validate_pair(labels, scores, both_classes=False)
    value = _validate_threshold(threshold)
    return float(accuracy_score(label_array, (score_array >= value).astype(np.int64)))


def selection_score(eer: float, auc: float) -> float:
    """Validation EER with ties broken by ROC AUC: ``eer + 1e-6 * (1 - auc)``; lower is better.

    Picks the checkpoint in training. On a small validation split the EER moves in steps of one
    clip (1.1 points on 90 clips), so epochs often tie; among tied epochs the better-ranked one
    (higher AUC) wins. The AUC term is at most 1e-6, below any EER step of a split with fewer than
    a million clips per class, so it never outweighs a real EER difference.
    """
    return float(eer) + 1e-6 * (1.0 - float(auc))


def _validate_count(k: int, n: int) -> tuple[int, int]:
    if int(k) != k or int(n) != n or not 0 <= k <= n or n < 1:
        raise MetricsError(f"need integer counts 0 <= k <= n with n >= 1, got k={k!r}, n={n!r}")
    return int(k), int(n)


def rate_interval(k: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) two-sided interval for a rate of ``k`` events in ``n`` trials,
    from :meth:`scipy.stats.binomtest(...).proportion_ci <scipy.stats.binomtest>`.

    Use it for rates at a fixed threshold (FAR, FRR, a per-attack miss rate) instead of a
    bootstrap, which gives ``[0, 0]`` when there is no error. It assumes independent trials:
    clips of one speaker or utterance are not, so treat it as a lower bound on the uncertainty.
    """
    k, n = _validate_count(k, n)
    if not 0.0 < confidence < 1.0:
        raise MetricsError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    interval = binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(interval.low), float(interval.high)


def _percent(value: float) -> str:
    """A rate as a short percentage: 24%, 4.5%, 0.31%."""
    percent = 100.0 * value
    if percent >= 10.0 or percent == 0.0:
        return f"{percent:.0f}%"
    if percent >= 1.0:
        return f"{percent:.1f}%"
    return f"{percent:.2g}%"


def format_rate(k: int, n: int, *, confidence: float = 0.95) -> str:
    """``k`` of ``n`` with an exact bound, for tables and reports.

    No event: the one-sided upper Clopper-Pearson bound, ``"0 of 11, at most 24% at 95%"``; all
    events: the one-sided lower bound, ``"11 of 11, at least 76% at 95%"``; otherwise the
    two-sided interval, ``"3 of 11 (27%), 95% CI 6.0%-61%"``.
    """
    k, n = _validate_count(k, n)
    if not 0.0 < confidence < 1.0:
        raise MetricsError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    level = f"{100.0 * confidence:g}%"
    if k == 0:
        high = binomtest(0, n, alternative="less").proportion_ci(confidence_level=confidence).high
        return f"0 of {n}, at most {_percent(high)} at {level}"
    if k == n:
        low = binomtest(n, n, alternative="greater").proportion_ci(confidence_level=confidence).low
        return f"{n} of {n}, at least {_percent(low)} at {level}"
    low, high = rate_interval(k, n, confidence=confidence)
    return f"{k} of {n} ({_percent(k / n)}), {level} CI {_percent(low)}-{_percent(high)}"
