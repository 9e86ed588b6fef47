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
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import (
    balanced_accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
)

from deepfake_lib import LABEL_NAMES
from deepfake_lib.evaluation.costs import (
    ASVSPOOF5_COSTS,
    DetectionCosts,
    compute_act_dcf,
    compute_min_dcf,
)
from deepfake_lib.evaluation.error_rates import compute_eer, rate_interval
from deepfake_lib.evaluation.inputs import (
    MetricsError,
    _validate_pair,
    _validate_threshold,
)
from deepfake_lib.evaluation.intervals import bootstrap_ci
from deepfake_lib.evaluation.metric_registry import METRICS, MetricInputs

__all__ = [
    "compute_metrics",
    "EER_METRIC_PATH",
    "format_metrics",
    "summarize_scores",
]

logger = logging.getLogger(__name__)

EER_METRIC_PATH: Path = Path(__file__).parent / "evaluate_metrics" / "eer"
"""Folder of the ``evaluate`` metric module that wraps :func:`compute_eer`; load it offline with
``evaluate.load(str(EER_METRIC_PATH))``."""


# --------------------------------------------------------------------------------------------
# one score list: every metric of the table, thresholded figures, counts
# --------------------------------------------------------------------------------------------


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
    predicted Fake, Real), the counts ``n``, ``n_real``, ``n_fake``, and every other metric of the
    table (:mod:`~deepfake_lib.evaluation.metric_registry`) by its key. All values are plain
    Python floats and ints (``min_dcf_threshold`` is ``inf`` only when rejecting everything is
    cheapest, which the default costs never make strictly so).
    """
    label_array, score_array = _validate_pair(labels, scores)
    eer = compute_eer(label_array, score_array)
    operating = eer.threshold if threshold is None else _validate_threshold(threshold)
    act_at = threshold if act_dcf_threshold is None else act_dcf_threshold
    inputs = MetricInputs(label_array, score_array, operating, act_at, costs, cllr_prior_real)
    report: dict[str, Any] = {key: float(spec.compute(inputs)) for key, spec in METRICS.items()}
    predicted = (score_array >= operating).astype(np.int64)
    matrix = confusion_matrix(label_array, predicted, labels=[0, 1])
    precision, recall, f1, support = precision_recall_fscore_support(
        label_array, predicted, labels=[0, 1], zero_division=0.0
    )
    (tn, fp), (fn, tp) = matrix.tolist()
    n_real = int(label_array.sum())
    report.update(
        {
            "eer_threshold": eer.threshold,
            "min_dcf_threshold": compute_min_dcf(label_array, score_array, costs=costs).threshold,
            "act_dcf_threshold": compute_act_dcf(
                label_array, score_array, threshold=act_at, costs=costs
            ).threshold,
            "cllr_prior_real": None if cllr_prior_real is None else float(cllr_prior_real),
            "costs": costs.as_dict(),
            "threshold": float(operating),
            "balanced_accuracy": float(balanced_accuracy_score(label_array, predicted)),
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
            "n_fake": label_array.size - n_real,
        }
    )
    return report


# --------------------------------------------------------------------------------------------
# the report every stage writes: metrics with intervals, and its one-line text
# --------------------------------------------------------------------------------------------


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
