"""Bootstrap confidence intervals of the detection metrics, clip-level or grouped (a speaker or an utterance and its spoofs move together); vectorised over replicates."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from deepfake_lib.evaluation.costs import (
    ASVSPOOF5_COSTS,
    DetectionCosts,
)
from deepfake_lib.evaluation.error_rates import compute_eer
from deepfake_lib.evaluation.inputs import (
    MetricsError,
    _validate_pair,
    _validate_threshold,
)
from deepfake_lib.evaluation.metric_registry import METRICS, ReplicateInputs, bootstrap_keys

__all__ = [
    "bootstrap_ci",
    "MIN_GROUPS_PER_CLASS",
]

logger = logging.getLogger(__name__)


def _draw_counts(rng: np.random.Generator, n_units: int, n_bootstrap: int) -> np.ndarray:
    """[n_bootstrap, n_units] multiplicities of ``n_units`` units drawn with replacement."""
    draws = rng.integers(0, n_units, size=(n_bootstrap, n_units))
    offsets = (np.arange(n_bootstrap) * n_units)[:, None]
    flat = np.bincount((draws + offsets).ravel(), minlength=n_bootstrap * n_units)
    return flat.reshape(n_bootstrap, n_units)


def _replicate_statistics(
    labels: np.ndarray,
    scores: np.ndarray,
    weights: np.ndarray,
    threshold: float,
    *,
    act_threshold: float | None = None,
    costs: DetectionCosts = ASVSPOOF5_COSTS,
    cllr_prior_real: float | None = None,
) -> dict[str, np.ndarray]:
    """Every bootstrapped metric of the table (:func:`~deepfake_lib.evaluation.metric_registry.
    bootstrap_keys`) on every weighted replicate.

    ``weights`` [B, n]: how many times each clip appears in each replicate. Each statistic equals
    the one computed on ``np.repeat(clips, weights[b])``; replicates with one class come out NaN.
    Accuracy is taken at ``threshold``, actDCF at ``act_threshold`` (default: the Bayes threshold
    of ``costs``). Returns ``{key: [B]}`` plus ``"valid"`` [B].
    """
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    is_bona = labels[order] == 1
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    sorted_weights = weights[:, order]
    bona_per_level = np.add.reduceat(np.where(is_bona, sorted_weights, 0), starts, axis=1)
    spoof_per_level = np.add.reduceat(np.where(is_bona, 0, sorted_weights), starts, axis=1)
    valid = (bona_per_level.sum(axis=1) > 0) & (spoof_per_level.sum(axis=1) > 0)
    bona_per_level, spoof_per_level = bona_per_level[valid], spoof_per_level[valid]
    zero = np.zeros((bona_per_level.shape[0], 1), dtype=bona_per_level.dtype)
    inputs = ReplicateInputs(
        labels=labels,
        scores=scores,
        weights=weights[valid].astype(np.float64),
        bona_per_level=bona_per_level,
        spoof_per_level=spoof_per_level,
        # Counts strictly below each distinct score level, then below +inf.
        bona_below=np.cumsum(np.hstack([zero, bona_per_level]), axis=1),
        spoof_below=np.cumsum(np.hstack([zero, spoof_per_level]), axis=1),
        n_bona=bona_per_level.sum(axis=1),
        n_spoof=spoof_per_level.sum(axis=1),
        threshold=threshold,
        act_threshold=act_threshold,
        costs=costs,
        cllr_prior_real=cllr_prior_real,
    )
    result = {"valid": valid}
    for key in bootstrap_keys():
        result[key] = np.full(valid.size, np.nan)
        result[key][valid] = METRICS[key].replicate(inputs)
    return result


MIN_GROUPS_PER_CLASS = 5
"""A grouped bootstrap needs at least this many distinct groups holding each class: with fewer
(one bona fide speaker in a test split, say) every replicate redraws the same few groups and the
percentile interval is far narrower than the real uncertainty, so none is reported."""

_BOOTSTRAP_CHUNK_ELEMENTS = 4_000_000
"""Replicates are processed in chunks of about this many clip weights (memory bound); the draws
are the same as in one block, so results do not depend on it."""


def bootstrap_ci(
    labels: ArrayLike,
    scores: ArrayLike,
    *,
    groups: ArrayLike | None = None,
    threshold: float | None = None,
    act_dcf_threshold: float | None = None,
    costs: DetectionCosts = ASVSPOOF5_COSTS,
    cllr_prior_real: float | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
    min_groups_per_class: int = MIN_GROUPS_PER_CLASS,
) -> dict[str, Any]:
    """Percentile bootstrap confidence intervals for every metric of the table that has a
    vectorised form (:func:`~deepfake_lib.evaluation.metric_registry.bootstrap_keys`: EER, minDCF,
    actDCF, Cllr, minCllr, AUC, accuracy, and any metric registered since).

    ``labels`` [n] (1/0), ``scores`` [n]. Resamples clips with replacement, or whole groups when
    ``groups`` [n] is given: pass the split's grouping column, the speaker when the data names
    speakers (else the utterance id, so a bona fide clip and its spoofs move together), because
    clips of one group are not independent. Accuracy is measured at a fixed ``threshold``; when
    None, at the EER threshold of the full sample (so its interval covers sampling of clips,
    not re-tuning the threshold). actDCF is measured at ``act_dcf_threshold`` (None: the Bayes
    threshold of ``costs``, scores read as LLRs); Cllr on the scores as LLRs, or with
    ``cllr_prior_real`` as in :func:`compute_metrics`. Resamples that contain a single class are
    skipped.

    Returns ``{"eer": (lo, hi), "auc": ..., "accuracy": ..., "min_dcf": ..., "act_dcf": ...,
    "cllr": ..., "min_cllr": ..., "n_skipped", "n_bootstrap", "confidence", "threshold",
    "degenerate"}`` with plain Python numbers; ``degenerate`` lists the statistics whose
    replicates were all equal (an interval of zero width, e.g. an EER of 0 on separable scores:
    report such a rate with :func:`format_rate` instead).

    With ``groups``, when fewer than ``min_groups_per_class`` distinct groups hold the bona fide
    (or the spoofed) clips, no interval can be trusted: the result then has no statistic keys,
    only the counts above and ``"too_few_groups"`` = ``{"bonafide": k, "spoof": m, "needed": n}``
    (callers read a missing key as "no interval").
    """
    label_array, score_array = _validate_pair(labels, scores)
    if int(n_bootstrap) != n_bootstrap or n_bootstrap < 1:
        raise MetricsError(f"n_bootstrap must be a positive integer, got {n_bootstrap!r}")
    if not 0.0 < confidence < 1.0:
        raise MetricsError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    operating = (
        compute_eer(label_array, score_array).threshold
        if threshold is None
        else _validate_threshold(threshold)
    )
    act = None if act_dcf_threshold is None else _validate_threshold(act_dcf_threshold)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if groups is None:
        group_index = None
        n_units = label_array.size
    else:
        group_array = np.asarray(groups)
        if group_array.ndim != 1 or group_array.size != label_array.size:
            raise MetricsError(
                f"groups must have shape [{label_array.size}] like labels, got shape {group_array.shape}"
            )
        try:
            _, group_index = np.unique(group_array, return_inverse=True)
        except TypeError as error:
            raise MetricsError(f"groups cannot be sorted (mixed types?): {error}") from None
        n_units = int(group_index.max()) + 1
        per_class = {
            "bonafide": int(np.unique(group_index[label_array == 1]).size),
            "spoof": int(np.unique(group_index[label_array == 0]).size),
        }
        if min(per_class.values()) < min_groups_per_class:
            logger.info("bootstrap_ci: no interval, too few groups per class %s", per_class)
            return {
                "n_skipped": 0,
                "n_bootstrap": int(n_bootstrap),
                "confidence": float(confidence),
                "threshold": float(operating),
                "degenerate": [],
                "too_few_groups": {**per_class, "needed": int(min_groups_per_class)},
            }
    chunk = max(1, _BOOTSTRAP_CHUNK_ELEMENTS // max(n_units, label_array.size))
    parts = []
    for start in range(0, int(n_bootstrap), chunk):
        counts = _draw_counts(rng, n_units, min(chunk, int(n_bootstrap) - start))
        weights = counts if group_index is None else counts[:, group_index]
        parts.append(
            _replicate_statistics(
                label_array,
                score_array,
                weights,
                operating,
                act_threshold=act,
                costs=costs,
                cllr_prior_real=cllr_prior_real,
            )
        )
    replicates = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    valid = replicates["valid"]
    n_skipped = int((~valid).sum())
    if n_skipped == valid.size:
        raise MetricsError(
            f"all {valid.size} bootstrap resamples contain a single class; use more clips or more groups"
        )
    if n_skipped:
        logger.info("bootstrap_ci: skipped %d of %d single-class resamples", n_skipped, valid.size)
    tail = 100.0 * (1.0 - confidence) / 2.0
    result: dict[str, Any] = {}
    degenerate = []
    for key in bootstrap_keys():
        values = replicates[key][valid]
        low, high = np.percentile(values, [tail, 100.0 - tail])
        result[key] = (float(low), float(high))
        if values.min() == values.max():
            degenerate.append(key)
    result.update(
        n_skipped=n_skipped,
        n_bootstrap=int(n_bootstrap),
        confidence=float(confidence),
        threshold=float(operating),
        degenerate=degenerate,
    )
    return result
