"""The metric table: one row per metric, read by every place that computes, bootstraps, writes,
prints or serves metrics.

A row (:class:`MetricSpec`) holds the key (as in ``metrics.json``), a short label for tables, a
one-line meaning, whether higher is better, the scalar function on one score list
(:class:`MetricInputs`) and, when the metric gets a bootstrap interval, its vectorised form over
bootstrap replicates (:class:`ReplicateInputs`). :func:`~deepfake_lib.evaluation.metrics.
compute_metrics`, :func:`~deepfake_lib.evaluation.intervals.bootstrap_ci`, ``metrics.json``,
``deepfake-lib score`` and the service's ``GET /model`` all loop over this table, so a metric
added with :func:`register_metric` reaches every one of them with no other file touched.

Adding a metric (see CONTRIBUTING.md): write ``compute(inputs) -> float`` and, for an interval,
``replicate(inputs) -> [B]`` that equals ``compute`` on each weighted replicate (a test compares
the two on a few replicates), then ``register_metric(MetricSpec(...))``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
from sklearn.metrics import roc_auc_score

from deepfake_lib.evaluation.costs import (
    ASVSPOOF5_COSTS,
    DetectionCosts,
    _cllr_input,
    _llr_costs,
    _normalised_dcf,
    _pav_cllr,
    compute_act_dcf,
    compute_cllr,
    compute_min_cllr,
    compute_min_dcf,
)
from deepfake_lib.evaluation.error_rates import _select_eer, compute_eer

__all__ = [
    "METRICS",
    "MetricInputs",
    "MetricSpec",
    "ReplicateInputs",
    "bootstrap_keys",
    "metric_meanings",
    "register_metric",
    "registered_metric",
    "served_keys",
    "table_keys",
    "unregister_metric",
]


@dataclasses.dataclass(frozen=True)
class MetricInputs:
    """One validated score list: ``labels`` [n] (1 = bona fide), ``scores`` [n] (higher = more
    bona fide), the operating ``threshold`` (accept when ``score >= threshold``), the actDCF
    threshold (None: the Bayes threshold of ``costs``), the DCF ``costs`` and the training prior
    that turns log-odds into LLRs for Cllr (None: scores are LLRs already)."""

    labels: np.ndarray
    scores: np.ndarray
    threshold: float
    act_threshold: float | None = None
    costs: DetectionCosts = ASVSPOOF5_COSTS
    cllr_prior_real: float | None = None


@dataclasses.dataclass(frozen=True)
class ReplicateInputs:
    """B weighted bootstrap replicates of one score list, sorted into distinct score levels.

    ``weights`` [B, n]: how often each clip appears in each replicate (every replicate holds
    both classes); ``bona_per_level``, ``spoof_per_level`` [B, L]: weighted counts per distinct
    score level, ascending; ``bona_below``, ``spoof_below`` [B, L + 1]: counts strictly below each
    level (the last column is the class total); ``n_bona``, ``n_spoof`` [B]. The other fields are
    those of :class:`MetricInputs`."""

    labels: np.ndarray
    scores: np.ndarray
    weights: np.ndarray
    bona_per_level: np.ndarray
    spoof_per_level: np.ndarray
    bona_below: np.ndarray
    spoof_below: np.ndarray
    n_bona: np.ndarray
    n_spoof: np.ndarray
    threshold: float
    act_threshold: float | None
    costs: DetectionCosts
    cllr_prior_real: float | None

    @property
    def false_accepts(self) -> np.ndarray:
        """[B, L + 1] spoofs accepted at each distinct threshold (accept when ``score >= level``)."""
        return self.n_spoof[:, None] - self.spoof_below


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """One row of the metric table.

    ``compute`` gives the value on one score list; ``replicate`` (optional) the values on B
    bootstrap replicates, [B]; without it the metric gets no bootstrap interval. ``at_threshold``:
    measured at the system's threshold (shown only where one exists). ``in_score_report`` and
    ``served``: a column of ``deepfake-lib score`` and a value of ``GET /model``."""

    key: str
    label: str
    meaning: str
    higher_is_better: bool
    compute: Callable[[MetricInputs], float]
    replicate: Callable[[ReplicateInputs], np.ndarray] | None = None
    at_threshold: bool = False
    in_score_report: bool = True
    served: bool = True


METRICS: dict[str, MetricSpec] = {}
"""The table, in display order. Change it only through :func:`register_metric`."""


def register_metric(spec: MetricSpec, *, replace: bool = False) -> MetricSpec:
    """Add ``spec`` to the table (at the end); a key already there is refused unless ``replace``."""
    if not spec.key.isidentifier():
        raise ValueError(
            f"metric key {spec.key!r} must be an identifier (it becomes a JSON key and a column)"
        )
    if spec.key in METRICS and not replace:
        raise ValueError(f"metric {spec.key!r} is already registered (pass replace=True to change it)")
    METRICS[spec.key] = spec
    return spec


def unregister_metric(key: str) -> None:
    """Remove a metric from the table (``KeyError`` when it is not there)."""
    del METRICS[key]


@contextmanager
def registered_metric(spec: MetricSpec) -> Iterator[MetricSpec]:
    """Register ``spec`` for the duration of a ``with`` block (tests, experiments)."""
    register_metric(spec)
    try:
        yield spec
    finally:
        METRICS.pop(spec.key, None)


def bootstrap_keys() -> tuple[str, ...]:
    """Keys of the metrics that get a bootstrap interval, in table order."""
    return tuple(k for k, s in METRICS.items() if s.replicate is not None)


def table_keys(*, with_threshold: bool = True) -> tuple[str, ...]:
    """Keys of the bootstrapped metrics shown in tables and ``deepfake-lib score`` (without the
    ones measured at a threshold when ``with_threshold`` is false)."""
    return tuple(
        k
        for k, s in METRICS.items()
        if s.replicate is not None and s.in_score_report and (with_threshold or not s.at_threshold)
    )


def served_keys() -> tuple[str, ...]:
    """Keys that ``GET /model`` reports from a run's ``metrics.json``."""
    return tuple(k for k, s in METRICS.items() if s.served)


def metric_meanings() -> dict[str, str]:
    """``{key: one-line meaning}`` for ``metrics.json``, READMEs and service responses."""
    return {k: s.meaning for k, s in METRICS.items()}


# --------------------------------------------------------------------------------------------
# the built-in metrics
# --------------------------------------------------------------------------------------------
def _eer_replicates(r: ReplicateInputs) -> np.ndarray:
    eer, _ = _select_eer(r.false_accepts, r.bona_below, r.n_spoof, r.n_bona)
    return eer


def _auc_replicates(r: ReplicateInputs) -> np.ndarray:
    # AUC = P(score_bona > score_spoof) + P(tie) / 2, the same as roc_auc_score.
    pairs = r.bona_per_level * (r.spoof_below[:, :-1] + 0.5 * r.spoof_per_level)
    return pairs.sum(axis=1) / (r.n_bona * r.n_spoof)


def _accuracy_replicates(r: ReplicateInputs) -> np.ndarray:
    correct = ((r.scores >= r.threshold).astype(np.int64) == r.labels).astype(np.float64)
    return (r.weights @ correct) / r.weights.sum(axis=1)


def _min_dcf_replicates(r: ReplicateInputs) -> np.ndarray:
    return _normalised_dcf(r.false_accepts, r.bona_below, r.n_spoof, r.n_bona, r.costs).min(axis=1)


def _act_dcf_replicates(r: ReplicateInputs) -> np.ndarray:
    act = r.costs.bayes_threshold if r.act_threshold is None else r.act_threshold
    accepted = r.scores >= act
    return _normalised_dcf(
        (r.weights @ (accepted & (r.labels == 0)))[:, None],
        (r.weights @ (~accepted & (r.labels == 1)))[:, None],
        r.n_spoof,
        r.n_bona,
        r.costs,
    )[:, 0]


def _cllr_replicates(r: ReplicateInputs) -> np.ndarray:
    clip_cost = _llr_costs(r.labels, _cllr_input(r.scores, r.cllr_prior_real))
    bona = (r.labels == 1).astype(np.float64)
    return 0.5 * (
        (r.weights @ (clip_cost * bona)) / r.n_bona + (r.weights @ (clip_cost * (1.0 - bona))) / r.n_spoof
    )


def _min_cllr_replicates(r: ReplicateInputs) -> np.ndarray:
    # One pool-adjacent-violators fit per replicate: the only metric not vectorised.
    return np.array(
        [_pav_cllr(b, s) for b, s in zip(r.bona_per_level, r.spoof_per_level, strict=True)], dtype=np.float64
    )


def _far(m: MetricInputs) -> float:
    spoof = m.labels == 0
    return float(np.mean(m.scores[spoof] >= m.threshold))


def _frr(m: MetricInputs) -> float:
    bona = m.labels == 1
    return float(np.mean(m.scores[bona] < m.threshold))


for _spec in (
    MetricSpec(
        "eer",
        "EER",
        "equal error rate: where the share of spoofs accepted equals the share of bona fide rejected "
        "(oracle threshold)",
        False,
        lambda m: compute_eer(m.labels, m.scores).eer,
        _eer_replicates,
    ),
    MetricSpec(
        "min_dcf",
        "minDCF",
        "ASVspoof 5 primary metric: lowest normalised detection cost over thresholds "
        "(p_spoof 0.05, C_miss 1, C_fa 10; 1 = no better than accepting everything)",
        False,
        lambda m: compute_min_dcf(m.labels, m.scores, costs=m.costs).dcf,
        _min_dcf_replicates,
    ),
    MetricSpec(
        "act_dcf",
        "actDCF",
        "normalised detection cost at the system's own threshold (its calibration of the decision)",
        False,
        lambda m: compute_act_dcf(m.labels, m.scores, threshold=m.act_threshold, costs=m.costs).dcf,
        _act_dcf_replicates,
        at_threshold=True,
    ),
    MetricSpec(
        "cllr",
        "Cllr",
        "cost of the scores read as log-likelihood ratios, in bits (0 perfect, 1 uninformative); "
        "a run's scores are log posterior odds, turned into LLRs by removing its training prior "
        "(cllr_prior_real) first",
        False,
        lambda m: compute_cllr(m.labels, _cllr_input(m.scores, m.cllr_prior_real)),
        _cllr_replicates,
    ),
    MetricSpec(
        "min_cllr",
        "minCllr",
        "Cllr after the best monotone recalibration: what the ranking alone allows",
        False,
        lambda m: compute_min_cllr(m.labels, m.scores),
        _min_cllr_replicates,
    ),
    MetricSpec(
        "auc",
        "AUC",
        "probability that a random bona fide clip scores above a random spoof",
        True,
        lambda m: float(roc_auc_score(m.labels, m.scores)),
        _auc_replicates,
    ),
    MetricSpec(
        "accuracy",
        "accuracy",
        "share of clips classified correctly at the run's threshold (the validation EER threshold)",
        True,
        lambda m: float(np.mean((m.scores >= m.threshold).astype(np.int64) == m.labels)),
        _accuracy_replicates,
        at_threshold=True,
        in_score_report=False,
    ),
    MetricSpec(
        "far",
        "FAR",
        "share of spoofs accepted as bona fide at the run's threshold",
        False,
        _far,
        at_threshold=True,
        in_score_report=False,
    ),
    MetricSpec(
        "frr",
        "FRR",
        "share of bona fide clips rejected at the run's threshold",
        False,
        _frr,
        at_threshold=True,
        in_score_report=False,
    ),
):
    register_metric(_spec)
del _spec
