"""Detection costs (normalised minDCF and actDCF, ASVspoof 5 parameters) and log-likelihood-ratio costs (Cllr, minCllr), with the conversions from log-odds and probabilities to LLRs."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import isotonic_regression

from deepfake_lib.evaluation.error_rates import _error_counts
from deepfake_lib.evaluation.inputs import (
    MetricsError,
    _as_1d,
    _check_finite,
    _validate_pair,
    _validate_threshold,
)

__all__ = [
    "ASVSPOOF5_COSTS",
    "compute_act_dcf",
    "compute_cllr",
    "compute_min_cllr",
    "compute_min_dcf",
    "DCF",
    "DetectionCosts",
    "llr_from_log_odds",
    "llr_from_probability",
]


@dataclass(frozen=True)
class DetectionCosts:
    """Prior and costs of the detection cost function (DCF).

    ``p_spoof``: prior probability that a trial is a spoof, in (0, 1); ``c_miss``: cost of
    rejecting a bona fide clip; ``c_fa``: cost of accepting a spoof (both > 0, unitless).
    The defaults are ASVspoof 5's (:data:`ASVSPOOF5_COSTS`).
    """

    p_spoof: float = 0.05
    c_miss: float = 1.0
    c_fa: float = 10.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.p_spoof) and 0.0 < self.p_spoof < 1.0):
            raise MetricsError(f"p_spoof must lie strictly between 0 and 1, got {self.p_spoof!r}")
        for name in ("c_miss", "c_fa"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise MetricsError(f"{name} must be finite and > 0, got {value!r}")

    @property
    def miss_weight(self) -> float:
        """``c_miss * (1 - p_spoof)``: the weight of the miss rate (FRR)."""
        return self.c_miss * (1.0 - self.p_spoof)

    @property
    def false_alarm_weight(self) -> float:
        """``c_fa * p_spoof``: the weight of the false-alarm rate (FAR)."""
        return self.c_fa * self.p_spoof

    @property
    def bayes_threshold(self) -> float:
        """``-log(beta)``, ``beta = c_miss (1 - p_spoof) / (c_fa p_spoof)``: the threshold at which
        a natural-log likelihood ratio minimises the expected cost (accept when ``llr >= it``)."""
        return -math.log(self.miss_weight / self.false_alarm_weight)

    def as_dict(self) -> dict[str, float]:
        """``{"p_spoof", "c_miss", "c_fa"}`` as plain floats (for JSON reports)."""
        return {"p_spoof": float(self.p_spoof), "c_miss": float(self.c_miss), "c_fa": float(self.c_fa)}


ASVSPOOF5_COSTS: DetectionCosts = DetectionCosts(p_spoof=0.05, c_miss=1.0, c_fa=10.0)
"""ASVspoof 5 track 1 DCF parameters: ``Pspoof = 0.05``, ``Cmiss = 1``, ``Cfa = 10`` (the cost
model of ``calculate_metrics.py`` in the evaluation package of github.com/asvspoof-challenge/
asvspoof5, the same values as the ASVspoof 5 evaluation plan's DCF and its t-DCF's CM costs)."""


@dataclass(frozen=True)
class DCF:
    """A normalised detection cost and the threshold it is taken at.

    ``dcf`` >= 0 (1 = the better of accepting or rejecting everything); ``threshold``: accept as
    bona fide when ``score >= threshold`` (``math.inf``: reject everything).
    """

    dcf: float
    threshold: float


def _normalised_dcf(
    false_accepts: np.ndarray,
    false_rejects: np.ndarray,
    n_spoof: np.ndarray | int,
    n_bona: np.ndarray | int,
    costs: DetectionCosts,
) -> np.ndarray:
    """Normalised DCF from error counts [..., points] and class totals [...] (broadcast)."""
    n_spoof = np.asarray(n_spoof, dtype=np.float64)[..., None]
    n_bona = np.asarray(n_bona, dtype=np.float64)[..., None]
    cost = costs.miss_weight * false_rejects / n_bona + costs.false_alarm_weight * false_accepts / n_spoof
    return cost / min(costs.miss_weight, costs.false_alarm_weight)


def compute_min_dcf(labels: ArrayLike, scores: ArrayLike, *, costs: DetectionCosts = ASVSPOOF5_COSTS) -> DCF:
    """Minimum normalised DCF of ``labels`` [n] (1 = bona fide) against ``scores`` [n].

    Taken over the same operating points as :func:`compute_eer`: every distinct score (accept
    ``score >= t``) and ``+inf`` (reject everything), never between tied scores. The lowest
    threshold wins a tie. With the default :data:`ASVSPOOF5_COSTS`, accepting everything costs 1,
    so minDCF <= 1. Invariant to strictly increasing transforms of the scores.
    """
    label_array, score_array = _validate_pair(labels, scores)
    thresholds, false_accepts, false_rejects = _error_counts(label_array, score_array)
    n_bona = int(label_array.sum())
    dcf = _normalised_dcf(false_accepts, false_rejects, label_array.size - n_bona, n_bona, costs)
    best = int(np.argmin(dcf))
    return DCF(dcf=float(dcf[best]), threshold=float(thresholds[best]))


def compute_act_dcf(
    labels: ArrayLike,
    scores: ArrayLike,
    *,
    threshold: float | None = None,
    costs: DetectionCosts = ASVSPOOF5_COSTS,
) -> DCF:
    """Actual normalised DCF: the DCF of deciding ``score >= threshold`` (bona fide).

    ``threshold`` is the system's own decision threshold (for this project's runs, the validation
    EER threshold in ``metrics.json``); when None, the scores are read as natural-log likelihood
    ratios and the Bayes threshold :attr:`DetectionCosts.bayes_threshold` is used, as the
    ASVspoof 5 evaluation package does.
    """
    label_array, score_array = _validate_pair(labels, scores)
    value = costs.bayes_threshold if threshold is None else _validate_threshold(threshold)
    accepted = score_array >= value
    false_accepts = np.array([np.sum(accepted & (label_array == 0))])
    false_rejects = np.array([np.sum(~accepted & (label_array == 1))])
    n_bona = int(label_array.sum())
    dcf = _normalised_dcf(false_accepts, false_rejects, label_array.size - n_bona, n_bona, costs)
    return DCF(dcf=float(dcf[0]), threshold=float(value))


def _llr_costs(labels: np.ndarray, llrs: np.ndarray) -> np.ndarray:
    """Per-clip log-loss in bits [n]: ``log2(1 + e^-llr)`` for bona fide, ``log2(1 + e^llr)`` for
    spoofs (overflow-free through ``logaddexp``)."""
    signed = np.where(labels == 1, -llrs, llrs)
    return np.logaddexp(0.0, signed) / math.log(2.0)


def compute_cllr(labels: ArrayLike, llrs: ArrayLike) -> float:
    """Cost of the log-likelihood ratio, in bits, of ``llrs`` [n] against ``labels`` [n].

    ``Cllr = 1/2 [mean_bona log2(1 + e^-llr) + mean_spoof log2(1 + e^llr)]`` with ``llrs`` natural-
    log likelihood ratios of bona fide over spoof (convert log-odds and probabilities first with
    :func:`llr_from_log_odds` / :func:`llr_from_probability`). 0 for perfect, confident scores; 1
    for an uninformative ``llr = 0``; unbounded for confident errors.
    """
    label_array, llr_array = _validate_pair(labels, llrs, scores_name="llrs")
    cost = _llr_costs(label_array, llr_array)
    bona = label_array == 1
    return float(0.5 * (cost[bona].mean() + cost[~bona].mean()))


def _pav_cllr(bona_per_level: np.ndarray, spoof_per_level: np.ndarray) -> float:
    """minCllr (bits) from class counts per distinct score level [levels], levels increasing.

    Pool-adjacent-violators (:func:`scipy.optimize.isotonic_regression`, weighted by the clips
    at each level) gives the monotone posterior ``p`` of bona fide per level that best fits the
    labels; with the empirical prior removed (``llr = logit(p) - log(N_bona / N_spoof)``) the
    per-clip costs are ``log2(1 + (1 - p) N_bona / (p N_spoof))`` for bona fide and
    ``log2(1 + p N_spoof / ((1 - p) N_bona))`` for spoofs, finite because PAV never gives a level
    holding bona fide clips ``p = 0`` (nor one holding spoofs ``p = 1``).
    """
    total = bona_per_level + spoof_per_level
    present = total > 0
    bona, spoof, weight = bona_per_level[present], spoof_per_level[present], total[present]
    n_bona, n_spoof = float(bona.sum()), float(spoof.sum())
    posterior = isotonic_regression(bona / weight, weights=weight.astype(np.float64), increasing=True).x
    posterior = np.clip(posterior, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        bona_cost = np.where(bona > 0, np.log2(1.0 + (1.0 - posterior) * n_bona / (posterior * n_spoof)), 0.0)
        spoof_cost = np.where(
            spoof > 0, np.log2(1.0 + posterior * n_spoof / ((1.0 - posterior) * n_bona)), 0.0
        )
    return float(0.5 * ((bona * bona_cost).sum() / n_bona + (spoof * spoof_cost).sum() / n_spoof))


def _level_counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bona fide and spoof counts per distinct score, scores increasing: ``([m], [m])``."""
    _, level = np.unique(scores, return_inverse=True)
    n_levels = int(level.max()) + 1
    bona = np.bincount(level, weights=(labels == 1).astype(np.float64), minlength=n_levels)
    spoof = np.bincount(level, weights=(labels == 0).astype(np.float64), minlength=n_levels)
    return bona, spoof


def compute_min_cllr(labels: ArrayLike, scores: ArrayLike) -> float:
    """Minimum Cllr (bits) of ``scores`` [n] against ``labels`` [n]: :func:`compute_cllr` after the
    optimal monotone recalibration (PAV), with the empirical class prior removed so that
    uninformative scores give 1. Depends only on the ranking of the scores (tied scores stay
    tied); ``compute_cllr - compute_min_cllr`` is the calibration loss."""
    label_array, score_array = _validate_pair(labels, scores)
    return _pav_cllr(*_level_counts(label_array, score_array))


def llr_from_log_odds(log_odds: ArrayLike, *, prior_real: float = 0.5) -> np.ndarray:
    """Natural-log likelihood ratios [n] from log posterior odds of bona fide [n] (e.g.
    :func:`score_from_logits`) of a classifier trained with bona fide share ``prior_real``:
    ``llr = log_odds - log(prior_real / (1 - prior_real))``. With 0.5 it is the identity."""
    if not (math.isfinite(prior_real) and 0.0 < prior_real < 1.0):
        raise MetricsError(f"prior_real must lie strictly between 0 and 1, got {prior_real!r}")
    array = _as_1d(log_odds, "log_odds", float)
    _check_finite(array, "log_odds")
    return array - math.log(prior_real / (1.0 - prior_real))


def llr_from_probability(prob_real: ArrayLike, *, prior_real: float = 0.5, eps: float = 1e-12) -> np.ndarray:
    """Natural-log likelihood ratios [n] from P(bona fide) [n] in [0, 1] of a classifier trained
    with bona fide share ``prior_real``. Probabilities are clipped to ``[eps, 1 - eps]`` first, so
    a 0 or 1 becomes an LLR of about -/+27.6 instead of an infinity."""
    array = _as_1d(prob_real, "prob_real", float)
    _check_finite(array, "prob_real")
    outside = (array < 0.0) | (array > 1.0)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise MetricsError(
            f"prob_real must lie in [0, 1]; {int(outside.sum())} value(s) do not, first at index "
            f"{first} ({array[first]!r})"
        )
    clipped = np.clip(array, eps, 1.0 - eps)
    return llr_from_log_odds(np.log(clipped) - np.log1p(-clipped), prior_real=prior_real)


def _cllr_input(scores: np.ndarray, prior_real: float | None) -> np.ndarray:
    """``scores`` as LLRs for Cllr: unchanged, or log-odds with the training prior removed."""
    return scores if prior_real is None else llr_from_log_odds(scores, prior_real=prior_real)
