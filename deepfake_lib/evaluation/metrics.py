"""Evaluation metrics for bona fide / spoof detection: EER, AUC, the ASVspoof 5 detection costs
(minDCF, actDCF) and calibration costs (Cllr, minCllr), thresholded scores, bootstrap and exact
(Clopper-Pearson) intervals, calibration and the one text formatter the notebooks use.

Conventions (the same everywhere in the project):

- label 1 = bona fide (``"Real"``), label 0 = spoof (``"Fake"``);
- a higher score means more bona fide; a clip is accepted as bona fide when
  ``score >= threshold``. Scores are usually the log-odds ``logit(real) - logit(fake)``
  (:func:`score_from_logits`) or a probability (:func:`softmax_probability`);
- FAR (false acceptance rate) = share of spoofs accepted, FRR (false rejection rate) = share
  of bona fide clips rejected.

EER convention (see :func:`compute_eer`): the detection error trade-off is evaluated only at
the distinct score values (plus "accept nothing"), never between tied scores, so ties between
a bona fide clip and a spoof cannot be broken in the system's favour. The EER is where the
straight line between the two adjacent distinct thresholds at which FAR - FRR changes sign
meets FAR = FRR; it is exact (no interpolation) when some threshold has FAR = FRR.

How it differs from the classic ASVspoof script (``compute_eer`` of the 2019/2021/5 evaluation
packages): that script sorts the individual scores, cuts between every pair of neighbouring
clips (also between tied ones, in the order the sort leaves them: bona fide first, because it
concatenates the bona fide scores first) and reports the mean of FAR and FRR at the single cut
where they are closest. On untied scores the two agree to within one error step (1/n of the
smaller class); on tied scores the classic value depends on how the tie happened to be ordered
(example: spoof {0, 1}, bona fide {1, 2} gives 0.5 there, 0.25 here, and 0.0 if the tie were
broken in the system's favour). :func:`compute_min_dcf` follows the same distinct-threshold rule.

Detection costs and Cllr (the ASVspoof 5 track 1 metrics: primary minDCF, secondary EER, Cllr
and actDCF, as listed in the ASVspoof 5 evaluation plan and in the README of its evaluation
package, github.com/asvspoof-challenge/asvspoof5, folder ``evaluation-package``):

- normalised DCF(t) = (C_miss (1 - pi_spoof) P_miss(t) + C_fa pi_spoof P_fa(t)) /
  min(C_miss (1 - pi_spoof), C_fa pi_spoof), with P_miss = FRR and P_fa = FAR at threshold t.
  A DCF of 1 is what the better of "accept everything" and "reject everything" costs.
  :data:`ASVSPOOF5_COSTS` holds the package's parameters (``calculate_metrics.py``:
  ``Pspoof = 0.05``, ``Cmiss = 1``, ``Cfa = 10``).
- minDCF: the lowest DCF over all thresholds (an oracle threshold, like the EER's).
- actDCF: the DCF at the system's own threshold. For a score file read as log-likelihood
  ratios that is the Bayes threshold ``-log(beta)``, ``beta = C_miss (1 - pi_spoof) /
  (C_fa pi_spoof)`` (-0.642 with the defaults; ``compute_actDCF`` in ``calculate_modules.py``);
  for this project's runs it is the validation EER threshold that the deployed detector uses.
- Cllr (bits) = 1/2 [mean over bona fide of log2(1 + e^-s) + mean over spoofs of log2(1 + e^s)]
  with s read as natural-log likelihood ratios (bona fide over spoof); 0 is perfect, 1 is what an
  uninformative LLR of 0 costs, and badly calibrated scores can cost far more.
- minCllr: the Cllr after the best monotone recalibration (pool-adjacent-violators, PAV), i.e.
  the discrimination part of Cllr; Cllr - minCllr is the calibration loss.

Turning this project's outputs into LLRs: :func:`score_from_logits` gives the log posterior
odds ``logit(real) - logit(fake)``, which equals LLR + log(pi / (1 - pi)) for the bona fide share
pi the classifier was trained on; :func:`llr_from_log_odds` removes that prior and
:func:`llr_from_probability` does the same for P(bona fide). The field-standard Cllr is of LLRs,
so the training report (``metrics.json``) passes ``cllr_prior_real`` = the bona fide share of the
train split to :func:`summarize_scores` and its Cllr charges only the miscalibration of the
likelihood ratios; fed raw log-odds (``cllr_prior_real=None``, as in the analysis tables), Cllr
also charges the training prior as miscalibration.

Rates at a fixed threshold (FAR, FRR, per-attack miss rates) get exact Clopper-Pearson intervals
(:func:`rate_interval`, :func:`format_rate`): a bootstrap of a rate with no errors is always
``[0, 0]``, which says nothing about how small the rate really is.

Every function here validates its input and raises :class:`MetricsError` (a ``ValueError``)
naming the argument and the problem. Results are plain Python floats and ints, so reports can
be written to JSON as they are.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import isotonic_regression, minimize_scalar
from scipy.special import logsumexp, softmax
from scipy.stats import binomtest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)

from deepfake_lib import LABEL_NAMES

logger = logging.getLogger(__name__)

EER_METRIC_PATH: Path = Path(__file__).parent / "evaluate_metrics" / "eer"
"""Folder of the ``evaluate`` metric module that wraps :func:`compute_eer`; load it offline with
``evaluate.load(str(EER_METRIC_PATH))``."""


class MetricsError(ValueError):
    """Input that a metric cannot be computed on (non-finite scores, one class, bad shapes)."""


@dataclass(frozen=True)
class EER:
    """Equal error rate and its operating point.

    ``eer`` is a rate in [0, 1]; ``threshold`` is a score value: a clip is accepted as bona fide
    when ``score >= threshold``.
    """

    eer: float
    threshold: float


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


METRIC_MEANINGS: dict[str, str] = {
    "eer": "equal error rate: where the share of spoofs accepted equals the share of bona fide rejected "
    "(oracle threshold)",
    "min_dcf": "ASVspoof 5 primary metric: lowest normalised detection cost over thresholds "
    "(p_spoof 0.05, C_miss 1, C_fa 10; 1 = no better than accepting everything)",
    "act_dcf": "normalised detection cost at the system's own threshold (its calibration of the decision)",
    "cllr": "cost of the scores read as log-likelihood ratios, in bits (0 perfect, 1 uninformative); "
    "a run's scores are log posterior odds, turned into LLRs by removing its training prior "
    "(cllr_prior_real) first",
    "min_cllr": "Cllr after the best monotone recalibration: what the ranking alone allows",
    "auc": "probability that a random bona fide clip scores above a random spoof",
    "accuracy": "share of clips classified correctly at the run's threshold (the validation EER threshold)",
    "far": "share of spoofs accepted as bona fide at the run's threshold",
    "frr": "share of bona fide clips rejected at the run's threshold",
}
"""One line per metric (keys as in :func:`compute_metrics`), for tables, ``metrics.json``, READMEs
and service responses."""


@dataclass(frozen=True)
class DCF:
    """A normalised detection cost and the threshold it is taken at.

    ``dcf`` >= 0 (1 = the better of accepting or rejecting everything); ``threshold``: accept as
    bona fide when ``score >= threshold`` (``math.inf``: reject everything).
    """

    dcf: float
    threshold: float


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# EER and DET curve
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# detection costs (minDCF, actDCF) and log-likelihood-ratio costs (Cllr, minCllr)
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# exact intervals for rates
# --------------------------------------------------------------------------------------------


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


def _cllr_input(scores: np.ndarray, prior_real: float | None) -> np.ndarray:
    """``scores`` as LLRs for Cllr: unchanged, or log-odds with the training prior removed."""
    return scores if prior_real is None else llr_from_log_odds(scores, prior_real=prior_real)


def compute_metrics(
    labels: ArrayLike,
    scores: ArrayLike,
    *,
    threshold: float | None = None,
    act_dcf_threshold: float | None = None,
    costs: DetectionCosts = ASVSPOOF5_COSTS,
    cllr_prior_real: float | None = None,
) -> dict[str, Any]:
    """Threshold-free and thresholded metrics of ``labels`` [n] (1/0) against ``scores`` [n].

    Keys: ``eer``, ``eer_threshold``, ``auc`` (bona fide as the positive class), ``min_dcf`` and
    ``min_dcf_threshold`` (:func:`compute_min_dcf`), ``act_dcf`` and ``act_dcf_threshold``
    (:func:`compute_act_dcf` at ``act_dcf_threshold`` when given, else at ``threshold`` when
    given, else at the Bayes threshold of the scores read as LLRs), ``cllr`` (:func:`compute_cllr`
    on the scores read as LLRs; with ``cllr_prior_real`` the scores are log posterior odds of a
    classifier trained with that bona fide share and are turned into LLRs first by
    :func:`llr_from_log_odds`), ``cllr_prior_real`` (that share, or None), ``min_cllr``
    (:func:`compute_min_cllr`), ``costs`` (the DCF parameters), and at ``threshold`` (default:
    the EER threshold; accept when ``score >= threshold``): ``threshold``, ``accuracy``,
    ``balanced_accuracy``, ``far``, ``frr``, ``per_class``
    (``{"Fake": {"precision", "recall", "f1", "support"}, "Real": {...}}``),
    ``confusion_matrix`` (``[[tn, fp], [fn, tp]]``, rows = true Fake, Real; columns =
    predicted Fake, Real), and the counts ``n``, ``n_real``, ``n_fake``. All values are plain
    Python floats and ints (``min_dcf_threshold`` is ``inf`` only when rejecting everything is
    cheapest, which the default costs never make strictly so).
    """
    label_array, score_array = _validate_pair(labels, scores)
    eer = compute_eer(label_array, score_array)
    operating = eer.threshold if threshold is None else _validate_threshold(threshold)
    min_dcf = compute_min_dcf(label_array, score_array, costs=costs)
    act_dcf = compute_act_dcf(
        label_array,
        score_array,
        threshold=threshold if act_dcf_threshold is None else act_dcf_threshold,
        costs=costs,
    )
    predicted = (score_array >= operating).astype(np.int64)
    matrix = confusion_matrix(label_array, predicted, labels=[0, 1])
    precision, recall, f1, support = precision_recall_fscore_support(
        label_array, predicted, labels=[0, 1], zero_division=0.0
    )
    (tn, fp), (fn, tp) = matrix.tolist()
    n_real = int(label_array.sum())
    n_fake = label_array.size - n_real
    return {
        "eer": eer.eer,
        "eer_threshold": eer.threshold,
        "auc": float(roc_auc_score(label_array, score_array)),
        "min_dcf": min_dcf.dcf,
        "min_dcf_threshold": min_dcf.threshold,
        "act_dcf": act_dcf.dcf,
        "act_dcf_threshold": act_dcf.threshold,
        "cllr": compute_cllr(label_array, _cllr_input(score_array, cllr_prior_real)),
        "cllr_prior_real": None if cllr_prior_real is None else float(cllr_prior_real),
        "min_cllr": compute_min_cllr(label_array, score_array),
        "costs": costs.as_dict(),
        "threshold": float(operating),
        "accuracy": float(accuracy_score(label_array, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(label_array, predicted)),
        "far": fp / n_fake,
        "frr": fn / n_real,
        "per_class": {
            name: {
                "precision": float(precision[index]),
                "recall": float(recall[index]),
                "f1": float(f1[index]),
                "support": int(support[index]),
            }
            for index, name in enumerate(LABEL_NAMES)
        },
        "confusion_matrix": [[int(tn), int(fp)], [int(fn), int(tp)]],
        "n": int(label_array.size),
        "n_real": n_real,
        "n_fake": n_fake,
    }


# --------------------------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------------------------


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
    """EER, AUC, accuracy, minDCF, actDCF, Cllr and minCllr of every weighted replicate.

    ``weights`` [B, n]: how many times each clip appears in each replicate. Each statistic equals
    the one computed on ``np.repeat(clips, weights[b])``; replicates with one class come out NaN.
    Accuracy is taken at ``threshold``, actDCF at ``act_threshold`` (default: the Bayes threshold
    of ``costs``). Everything but minCllr is vectorised; minCllr runs one PAV per replicate.
    Returns ``{"eer", "auc", "accuracy", "min_dcf", "act_dcf", "cllr", "min_cllr", "valid"}``,
    each [B].
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
    n_bona = bona_per_level.sum(axis=1)
    n_spoof = spoof_per_level.sum(axis=1)
    zero = np.zeros((n_bona.size, 1), dtype=bona_per_level.dtype)
    # Counts strictly below each distinct score level, then below +inf.
    bona_below = np.cumsum(np.hstack([zero, bona_per_level]), axis=1)
    spoof_below = np.cumsum(np.hstack([zero, spoof_per_level]), axis=1)
    false_accepts = n_spoof[:, None] - spoof_below
    eer, _ = _select_eer(false_accepts, bona_below, n_spoof, n_bona)
    min_dcf = _normalised_dcf(false_accepts, bona_below, n_spoof, n_bona, costs).min(axis=1)
    # AUC = P(score_bona > score_spoof) + P(tie) / 2, the same as roc_auc_score.
    pairs = bona_per_level * (spoof_below[:, :-1] + 0.5 * spoof_per_level)
    auc = pairs.sum(axis=1) / (n_bona * n_spoof)
    valid_weights = weights[valid].astype(np.float64)
    correct = ((scores >= threshold).astype(np.int64) == labels).astype(np.float64)
    accuracy = (valid_weights @ correct) / valid_weights.sum(axis=1)
    act = costs.bayes_threshold if act_threshold is None else act_threshold
    accepted = scores >= act
    act_dcf = _normalised_dcf(
        (valid_weights @ (accepted & (labels == 0)))[:, None],
        (valid_weights @ (~accepted & (labels == 1)))[:, None],
        n_spoof,
        n_bona,
        costs,
    )[:, 0]
    clip_cost = _llr_costs(labels, _cllr_input(scores, cllr_prior_real))
    bona_mask = (labels == 1).astype(np.float64)
    cllr = 0.5 * (
        (valid_weights @ (clip_cost * bona_mask)) / n_bona
        + (valid_weights @ (clip_cost * (1.0 - bona_mask))) / n_spoof
    )
    min_cllr = np.array(
        [_pav_cllr(bona, spoof) for bona, spoof in zip(bona_per_level, spoof_per_level, strict=True)],
        dtype=np.float64,
    )
    result = {"valid": valid}
    for key, values in (
        ("eer", eer),
        ("auc", auc),
        ("accuracy", accuracy),
        ("min_dcf", min_dcf),
        ("act_dcf", act_dcf),
        ("cllr", cllr),
        ("min_cllr", min_cllr),
    ):
        result[key] = np.full(valid.size, np.nan)
        result[key][valid] = values
    return result


BOOTSTRAP_STATISTICS: tuple[str, ...] = ("eer", "auc", "accuracy", "min_dcf", "act_dcf", "cllr", "min_cllr")
"""Statistics that :func:`bootstrap_ci` gives percentile intervals for."""

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
    """Percentile bootstrap confidence intervals for the statistics in
    :data:`BOOTSTRAP_STATISTICS` (EER, AUC, accuracy, minDCF, actDCF, Cllr, minCllr).

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
    for key in BOOTSTRAP_STATISTICS:
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


def summarize_scores(
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
) -> dict[str, Any]:
    """The one evaluation report: :func:`compute_metrics` plus ``"ci"``.

    ``"ci"`` holds :func:`bootstrap_ci` at the same thresholds (accuracy at ``threshold``,
    actDCF at ``act_dcf_threshold``) plus exact Clopper-Pearson intervals (:func:`rate_interval`)
    for ``"far"`` and ``"frr"`` at ``threshold``; it is None when ``n_bootstrap == 0``.
    ``labels`` [n] (1/0), ``scores`` [n], ``groups`` [n] optional: the split's grouping column
    (speaker when known, else utterance id). ``cllr_prior_real``: the bona fide share of the
    training data when ``scores`` are a classifier's log posterior odds (the field-standard Cllr
    is of LLRs, so the prior is removed first; None reads the scores as LLRs already). The result
    is JSON-serialisable; this is what gets written to ``metrics.json``.
    """
    report = compute_metrics(
        labels,
        scores,
        threshold=threshold,
        act_dcf_threshold=act_dcf_threshold,
        costs=costs,
        cllr_prior_real=cllr_prior_real,
    )
    if n_bootstrap == 0:
        report["ci"] = None
        return report
    report["ci"] = bootstrap_ci(
        labels,
        scores,
        groups=groups,
        threshold=report["threshold"],
        act_dcf_threshold=report["act_dcf_threshold"],
        costs=costs,
        cllr_prior_real=cllr_prior_real,
        n_bootstrap=n_bootstrap,
        confidence=confidence,
        seed=seed,
    )
    (tn, fp), (fn, tp) = report["confusion_matrix"]
    report["ci"]["far"] = rate_interval(fp, fp + tn, confidence=confidence)
    report["ci"]["frr"] = rate_interval(fn, fn + tp, confidence=confidence)
    return report


def format_metrics(
    report: dict[str, Any], *, digits: int = 3, name: str | None = None, extended: bool = False
) -> str:
    """One line of text for a :func:`compute_metrics` or :func:`summarize_scores` report.

    E.g. ``"EER 0.083 [0.051, 0.120] | AUC 0.962 [0.930, 0.985] | acc 0.917 [0.870, 0.950]
    (n=90)"``, prefixed by ``"name: "`` when given. Rates are fractions (not percentages) with
    ``digits`` decimals; the bracketed intervals appear when the report has a ``"ci"``. With
    ``extended``, minDCF, actDCF, Cllr and minCllr follow the accuracy.
    """
    if int(digits) != digits or digits < 0:
        raise MetricsError(f"digits must be a non-negative integer, got {digits!r}")
    fields = [("EER", "eer"), ("AUC", "auc"), ("acc", "accuracy")]
    if extended:
        fields += [("minDCF", "min_dcf"), ("actDCF", "act_dcf"), ("Cllr", "cllr"), ("minCllr", "min_cllr")]
    missing = [key for key in [key for _, key in fields] + ["n"] if key not in report]
    if missing:
        raise MetricsError(f"report lacks {missing}; pass the output of compute_metrics or summarize_scores")
    intervals = report.get("ci") or {}
    parts = []
    for label, key in fields:
        text = f"{label} {float(report[key]):.{digits}f}"
        if key in intervals:
            low, high = intervals[key]
            text += f" [{float(low):.{digits}f}, {float(high):.{digits}f}]"
        parts.append(text)
    line = " | ".join(parts) + f" (n={int(report['n'])})"
    return f"{name}: {line}" if name else line


# --------------------------------------------------------------------------------------------
# logits, probabilities and calibration
# --------------------------------------------------------------------------------------------


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
