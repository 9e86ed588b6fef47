"""Tests for deepfake_lib.evaluation.metrics and the offline `evaluate` EER module.

Convention throughout: label 1 = bona fide (Real), 0 = spoof (Fake); higher score = more bona
fide; accept as bona fide when score >= threshold. FAR(t) = share of spoofs with score >= t,
FRR(t) = share of bona fide with score < t.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from scipy.stats import beta
from sklearn.metrics import roc_auc_score, roc_curve

import deepfake_lib.evaluation.intervals as intervals_module
from deepfake_lib.evaluation.costs import (
    ASVSPOOF5_COSTS,
    DCF,
    DetectionCosts,
    compute_act_dcf,
    compute_cllr,
    compute_min_cllr,
    compute_min_dcf,
    llr_from_log_odds,
    llr_from_probability,
)
from deepfake_lib.evaluation.error_rates import (
    EER,
    accuracy_at_threshold,
    compute_det_curve,
    compute_eer,
    format_rate,
    rate_interval,
)
from deepfake_lib.evaluation.inputs import MetricsError
from deepfake_lib.evaluation.intervals import (
    MIN_GROUPS_PER_CLASS,
    _replicate_statistics,
    bootstrap_ci,
)
from deepfake_lib.evaluation.metric_registry import bootstrap_keys
from deepfake_lib.evaluation.metrics import EER_METRIC_PATH, compute_metrics, format_metrics, summarize_scores
from deepfake_lib.evaluation.probability import (
    compute_reliability_curve,
    expected_calibration_error,
    fit_temperature,
    score_from_logits,
    softmax_probability,
)
from deepfake_lib.evaluation.summaries import eer_row


def _far_frr(labels, scores, threshold):
    labels = np.asarray(labels)
    accepted = np.asarray(scores) >= threshold
    return float(accepted[labels == 0].mean()), float((~accepted[labels == 1]).mean())


def _synthetic_scores(n: int, seed: int, separation: float = 1.5):
    """Balanced labels [n] and Gaussian scores [n] (bona fide shifted up by `separation`)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n // 2)
    scores = rng.normal(size=labels.size) + separation * labels
    return labels, scores


# ------------------------------------------------------------------------------------------
# EER: hand-worked cases
# ------------------------------------------------------------------------------------------


def test_eer_perfectly_separated_is_zero():
    # spoof {0.1, 0.2}, bona fide {0.7, 0.9}. At t = 0.7: FAR = 0/2, FRR = 0/2 -> EER 0.
    result = compute_eer([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9])
    assert result == EER(eer=0.0, threshold=0.7)


def test_eer_perfectly_inverted_is_one():
    # bona fide {1, 2}, spoof {3, 4}. Distinct thresholds and (FAR, FRR):
    # t=1 (1, 0); t=2 (1, 1/2); t=3 (1, 1) <- FAR = FRR = 1; t=4 (1/2, 1); inf (0, 1).
    result = compute_eer([1, 1, 0, 0], [1.0, 2.0, 3.0, 4.0])
    assert result.eer == 1.0
    assert result.threshold == 3.0


def test_eer_all_tied_is_one_half():
    # One distinct score u: t=u accepts all (FAR 1, FRR 0); t=inf rejects all (FAR 0, FRR 1).
    # FAR - FRR goes 1 -> -1, the segment crosses FAR = FRR at its midpoint: (1+0)/2 = 0.5.
    # Midpoint ties go to the lower end, so the threshold is the tied score, never inf.
    result = compute_eer([0, 1, 0, 1, 1], [0.3] * 5)
    assert result.eer == 0.5
    assert result.threshold == 0.3


def test_eer_ties_between_classes_are_not_split():
    # spoof {0, 1}, bona fide {1, 2}: a spoof and a bona fide clip tie at 1.
    # Distinct thresholds, (FAR, FRR):
    #   t=0 (2/2, 0/2); t=1 (1/2, 0/2) FAR-FRR = +1/2; t=2 (0/2, 1/2) FAR-FRR = -1/2; inf (0, 1).
    # Crossing on the segment t=1 -> t=2 at its midpoint: FAR = 1/2 - 1/2 * 1/2 = 0.25.
    # Splitting the tie (a cut between the tied spoof and bona fide clip) would give FAR = FRR = 0;
    # the classic script gives 0.5 or 0 depending on the order of the tied clips.
    labels, scores = [0, 0, 1, 1], [0.0, 1.0, 1.0, 2.0]
    assert compute_eer(labels, scores) == EER(eer=0.25, threshold=1.0)
    assert compute_eer(labels[::-1], scores[::-1]) == EER(eer=0.25, threshold=1.0)


def test_eer_four_plus_four_with_one_swap():
    # spoof {1, 2, 3, 5}, bona fide {4, 6, 7, 8}: spoof 5 and bona fide 4 are swapped.
    # t=4: FAR = 1/4 (only 5 >= 4), FRR = 0/4;  t=5: FAR = 1/4, FRR = 1/4 (4 < 5) -> EER 0.25
    # exactly at t = 5;  t=6: FAR = 0, FRR = 1/4.
    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    scores = [1.0, 2.0, 3.0, 5.0, 4.0, 6.0, 7.0, 8.0]
    result = compute_eer(labels, scores)
    assert result == EER(eer=0.25, threshold=5.0)
    assert _far_frr(labels, scores, result.threshold) == (0.25, 0.25)


def test_eer_interpolates_between_adjacent_thresholds_when_unbalanced():
    # spoof {1, 3}, bona fide {2}: t=1 (1, 0); t=2 (1/2, 0) gap +1/2; t=3 (1/2, 1) gap -1/2.
    # Crossing at s = (1/2) / (1/2 + 1/2) = 1/2 along t=2 -> t=3: FAR = 1/2, FRR = 0 + 1/2 * 1
    # = 1/2 -> EER 0.5 (picking either end alone would say 0.25 or 0.75). Midpoint -> lower t.
    assert compute_eer([0, 0, 1], [1.0, 3.0, 2.0]) == EER(eer=0.5, threshold=2.0)
    # spoof {1, 2, 4}, bona fide {3}: t=3 (1/3, 0) gap +1/3; t=4 (1/3, 1) gap -2/3.
    # s = (1/3) / (1/3 + 2/3) = 1/3: FAR = 1/3, FRR = 1/3 -> EER 1/3; nearer end is t=3.
    result = compute_eer([0, 0, 0, 1], [1.0, 2.0, 4.0, 3.0])
    assert result.eer == pytest.approx(1 / 3)
    assert result.threshold == 3.0


def test_eer_invariant_to_monotonic_transform():
    labels, scores = _synthetic_scores(300, seed=1, separation=1.0)
    scores = np.round(scores, 1)  # include ties
    base = compute_eer(labels, scores)
    transformed = compute_eer(labels, np.exp(2.0 * scores) + 7.0)
    assert transformed.eer == pytest.approx(base.eer, abs=1e-12)
    assert transformed.threshold == pytest.approx(math.exp(2.0 * base.threshold) + 7.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eer_threshold_reproduces_far_and_frr(seed):
    rng = np.random.default_rng(seed)
    labels = (rng.random(257) < 0.3).astype(int)  # unbalanced, untied scores
    scores = rng.normal(size=labels.size) + labels
    result = compute_eer(labels, scores)
    far, frr = _far_frr(labels, scores, result.threshold)
    # Without ties FAR moves in steps of 1/n_fake and FRR of 1/n_real along the segment.
    assert abs(far - result.eer) <= 1 / (labels == 0).sum() + 1e-12
    assert abs(frr - result.eer) <= 1 / (labels == 1).sum() + 1e-12
    assert 0.0 < result.eer < 0.5


def test_det_curve_matches_sklearn_roc_curve():
    labels, scores = _synthetic_scores(200, seed=3)
    scores = np.round(scores, 1)
    far, frr, thresholds = compute_det_curve(labels, scores)
    fpr, tpr, roc_thresholds = roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(far, fpr[::-1])
    np.testing.assert_allclose(frr, 1 - tpr[::-1], atol=1e-12)
    np.testing.assert_array_equal(thresholds, roc_thresholds[::-1])
    assert np.all(np.diff(thresholds) > 0) and thresholds[-1] == np.inf


def test_auc_matches_sklearn_with_ties():
    labels, scores = _synthetic_scores(300, seed=4)
    scores = np.round(scores, 1)
    assert compute_metrics(labels, scores)["auc"] == pytest.approx(roc_auc_score(labels, scores))


# ------------------------------------------------------------------------------------------
# thresholded metrics
# ------------------------------------------------------------------------------------------


def test_compute_metrics_confusion_matrix_orientation_and_per_class():
    # threshold 0.5: spoofs 0.1, 0.6, 0.7 -> predicted Fake, Real, Real (tn 1, fp 2);
    # bona fide 0.9, 0.4 -> predicted Real, Fake (tp 1, fn 1).
    labels = [0, 0, 0, 1, 1]
    scores = [0.1, 0.6, 0.7, 0.9, 0.4]
    report = compute_metrics(labels, scores, threshold=0.5)
    assert report["confusion_matrix"] == [[1, 2], [1, 1]]  # rows true (Fake, Real)
    assert report["accuracy"] == pytest.approx(2 / 5)
    assert report["balanced_accuracy"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert report["far"] == pytest.approx(2 / 3) and report["frr"] == pytest.approx(1 / 2)
    # Fake: precision tn/(tn+fn) = 1/2, recall tn/(tn+fp) = 1/3, f1 = 2PR/(P+R) = 0.4.
    assert report["per_class"]["Fake"] == pytest.approx(
        {"precision": 1 / 2, "recall": 1 / 3, "f1": 0.4, "support": 3}
    )
    # Real: precision tp/(tp+fp) = 1/3, recall tp/(tp+fn) = 1/2, f1 = 0.4.
    assert report["per_class"]["Real"] == pytest.approx(
        {"precision": 1 / 3, "recall": 1 / 2, "f1": 0.4, "support": 2}
    )
    assert (report["n"], report["n_real"], report["n_fake"]) == (5, 2, 3)
    assert report["threshold"] == 0.5
    assert report["accuracy"] == accuracy_at_threshold(labels, scores, 0.5)


def test_compute_metrics_defaults_to_eer_threshold_and_is_json_plain():
    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    scores = np.array([1, 2, 3, 5, 4, 6, 7, 8], dtype=np.float32)
    report = compute_metrics(labels, scores)
    assert report["threshold"] == report["eer_threshold"] == 5.0
    assert report["eer"] == 0.25 and report["far"] == 0.25 and report["frr"] == 0.25
    assert report["accuracy"] == 0.75

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
        else:
            assert type(value) in (float, int, str, type(None)), type(value)

    walk(report)
    assert json.loads(json.dumps(report)) == report


# ------------------------------------------------------------------------------------------
# bootstrap
# ------------------------------------------------------------------------------------------


def test_replicate_statistics_equal_explicit_resampling():
    labels, scores = _synthetic_scores(120, seed=5, separation=1.0)
    scores = np.round(scores, 1)  # ties, so absent score levels are exercised
    rng = np.random.default_rng(0)
    weights = rng.integers(0, 3, size=(40, labels.size))
    weights[0] = 0
    weights[0, labels == 1] = 1  # a single-class replicate
    stats = _replicate_statistics(labels, scores, weights, threshold=0.4)
    assert not stats["valid"][0] and math.isnan(stats["eer"][0])
    for row in range(1, weights.shape[0]):
        resampled_labels = np.repeat(labels, weights[row])
        resampled_scores = np.repeat(scores, weights[row])
        assert stats["eer"][row] == pytest.approx(
            compute_eer(resampled_labels, resampled_scores).eer, abs=1e-12
        )
        assert stats["auc"][row] == pytest.approx(
            roc_auc_score(resampled_labels, resampled_scores), abs=1e-12
        )
        assert stats["accuracy"][row] == pytest.approx(
            accuracy_at_threshold(resampled_labels, resampled_scores, 0.4), abs=1e-12
        )


def test_bootstrap_ci_contains_estimate_and_narrows_with_more_data():
    widths = []
    for n in (100, 1000):
        labels, scores = _synthetic_scores(n, seed=6)
        point = compute_metrics(labels, scores)
        ci = bootstrap_ci(labels, scores, n_bootstrap=500, seed=1)
        for key in ("eer", "auc", "accuracy"):
            low, high = ci[key]
            assert low <= point[key] <= high, (n, key, ci[key], point[key])
        assert ci["n_skipped"] == 0 and ci["threshold"] == point["eer_threshold"]
        widths.append({key: ci[key][1] - ci[key][0] for key in ("eer", "auc", "accuracy")})
    for key in ("eer", "auc", "accuracy"):
        assert widths[1][key] < 0.6 * widths[0][key], key  # about 1/sqrt(10) in theory


def test_bootstrap_ci_is_seeded():
    labels, scores = _synthetic_scores(80, seed=7)
    first = bootstrap_ci(labels, scores, n_bootstrap=200, seed=3)
    assert first == bootstrap_ci(labels, scores, n_bootstrap=200, seed=3)
    assert first != bootstrap_ci(labels, scores, n_bootstrap=200, seed=4)


def test_group_bootstrap_moves_groups_together():
    # 40 independent clips, each copied 10 times (perfectly correlated within a group).
    labels, scores = _synthetic_scores(40, seed=8, separation=1.0)
    copies = 10
    repeated_labels = np.repeat(labels, copies)
    repeated_scores = np.repeat(scores, copies)
    groups = np.repeat([f"utt{i:02d}" for i in range(labels.size)], copies)
    by_group = bootstrap_ci(repeated_labels, repeated_scores, groups=groups, n_bootstrap=400)
    by_clip = bootstrap_ci(repeated_labels, repeated_scores, n_bootstrap=400)
    originals = bootstrap_ci(labels, scores, n_bootstrap=400)
    # Resampling whole groups of copies is resampling the 40 originals (same draws, same seed):
    for key in ("eer", "auc", "accuracy"):
        assert by_group[key] == pytest.approx(originals[key], abs=1e-12), key
        # ...while treating the 400 copies as independent is overconfident (about sqrt(10)x).
        width_group = by_group[key][1] - by_group[key][0]
        width_clip = by_clip[key][1] - by_clip[key][0]
        assert width_clip < 0.6 * width_group, key


def test_bootstrap_skips_single_class_resamples():
    # 1 bona fide + 2 spoofs: a resample of 3 misses a class with probability
    # (2/3)^3 + (1/3)^3 = 1/3.
    ci = bootstrap_ci([1, 0, 0], [0.9, 0.1, 0.5], n_bootstrap=3000, seed=0)
    assert ci["n_skipped"] == pytest.approx(1000, abs=100)
    assert all(math.isfinite(value) for value in ci["eer"])


def test_bootstrap_raises_when_every_resample_is_single_class():
    # Two groups, one per class: with one resample, half of the seeds draw a single group.
    messages = []
    for seed in range(10):
        try:
            bootstrap_ci(
                [1, 0], [0.9, 0.1], groups=["a", "b"], n_bootstrap=1, seed=seed, min_groups_per_class=1
            )
        except MetricsError as error:
            messages.append(str(error))
    assert messages and all("single class" in message for message in messages)


def test_bootstrap_gives_no_interval_with_one_bona_fide_speaker():
    # One bona fide speaker (and its re-synthesised spoofs) plus four text-to-speech voices: every
    # replicate that holds both classes redraws the same speaker, so the percentile interval would
    # be far narrower than the real uncertainty. No interval is reported, and the counts say why.
    labels, scores = _synthetic_scores(100, seed=4)
    groups = np.where(labels == 1, "speaker", np.array([f"voice{i % 4}" for i in range(labels.size)]))
    ci = bootstrap_ci(labels, scores, groups=groups, n_bootstrap=200)
    assert ci["too_few_groups"] == {"bonafide": 1, "spoof": 4, "needed": MIN_GROUPS_PER_CLASS}
    assert not any(key in ci for key in bootstrap_keys())
    # The same clips in enough groups do get intervals.
    many = bootstrap_ci(labels, scores, groups=np.arange(labels.size) // 2, n_bootstrap=200)
    assert "too_few_groups" not in many and many["eer"][0] < many["eer"][1]


def test_eer_row_says_why_it_has_no_interval():
    labels, scores = _synthetic_scores(60, seed=2)
    groups = np.where(labels == 1, "speaker", "voice")
    row = eer_row(labels, scores, groups, n_bootstrap=100, seed=0)
    assert math.isnan(row["eer_low"]) and math.isnan(row["eer_high"]) and math.isfinite(row["eer"])
    assert "1 bona fide, 1 spoof" in row["no_interval"]
    assert eer_row(labels, scores, None, n_bootstrap=100, seed=0)["no_interval"] == ""


def test_bootstrap_chunks_give_the_same_intervals(monkeypatch):
    # Replicates are processed in chunks to bound memory; the draws, and so the intervals, must not
    # depend on the chunk size (here 7 replicates per chunk against all 300 at once).
    labels, scores = _synthetic_scores(100, seed=9)
    groups = np.arange(labels.size) // 2
    whole = bootstrap_ci(labels, scores, groups=groups, n_bootstrap=300, seed=5)
    monkeypatch.setattr(intervals_module, "_BOOTSTRAP_CHUNK_ELEMENTS", 7 * labels.size)
    chunked = bootstrap_ci(labels, scores, groups=groups, n_bootstrap=300, seed=5)
    assert chunked == whole


def test_summarize_scores_and_format_metrics():
    labels, scores = _synthetic_scores(90, seed=10)
    report = summarize_scores(labels, scores, n_bootstrap=300, seed=0)
    assert report["ci"]["threshold"] == report["threshold"]
    assert json.loads(json.dumps(report))["ci"]["eer"] == list(report["ci"]["eer"])
    text = format_metrics(report)
    assert text.startswith(f"EER {report['eer']:.3f} [")
    assert text.endswith("(n=90)")
    assert format_metrics(summarize_scores(labels, scores, n_bootstrap=300, seed=0)) == text
    no_ci = summarize_scores(labels, scores, n_bootstrap=0)
    assert no_ci["ci"] is None and "[" not in format_metrics(no_ci)


def test_format_metrics_text_is_stable():
    report = {
        "eer": 0.0833333,
        "auc": 0.96151,
        "accuracy": 0.9166667,
        "n": 90,
        "ci": {"eer": (0.0512, 0.12), "auc": (0.93, 0.9849), "accuracy": (0.87, 0.95)},
    }
    assert format_metrics(report) == (
        "EER 0.083 [0.051, 0.120] | AUC 0.962 [0.930, 0.985] | acc 0.917 [0.870, 0.950] (n=90)"
    )
    assert format_metrics(report, digits=2, name="test") == (
        "test: EER 0.08 [0.05, 0.12] | AUC 0.96 [0.93, 0.98] | acc 0.92 [0.87, 0.95] (n=90)"
    )
    plain = {key: report[key] for key in ("eer", "auc", "accuracy", "n")}
    assert format_metrics(plain) == "EER 0.083 | AUC 0.962 | acc 0.917 (n=90)"
    extended = {**report, "min_dcf": 0.25, "act_dcf": 0.5, "cllr": 1.25, "min_cllr": 0.4}
    extended["ci"] = {**report["ci"], "min_dcf": (0.125, 0.375)}
    assert format_metrics(extended, digits=2, extended=True) == (
        "EER 0.08 [0.05, 0.12] | AUC 0.96 [0.93, 0.98] | acc 0.92 [0.87, 0.95] | minDCF 0.25 [0.12, 0.38] | "
        "actDCF 0.50 | Cllr 1.25 | minCllr 0.40 (n=90)"
    )
    with pytest.raises(MetricsError, match="min_dcf"):
        format_metrics(plain, extended=True)


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: compute_eer([0, 1, 1, 0], [0.1, np.nan, 0.3, np.nan]), "2 non-finite.*index 1"),
        (lambda: compute_eer([0, 1, 1], [0.1, 0.2, np.inf]), "1 non-finite.*index 2"),
        (lambda: compute_eer([1, 1, 1], [0.1, 0.2, 0.3]), "only one class.*1 = Real"),
        (lambda: compute_metrics([0, 0], [0.1, 0.2]), "only one class.*0 = Fake"),
        (lambda: compute_eer([0, 1, 1], [0.1, 0.2]), "labels has 3 entries but scores has 2"),
        (lambda: compute_eer([], []), "empty"),
        (lambda: compute_eer([0, 2, 1], [0.1, 0.2, 0.3]), "0 .* or 1 .*index 1"),
        (lambda: compute_eer([0, 1], [[0.1], [0.2]]), "one-dimensional"),
        (lambda: compute_det_curve([0, 1], ["a", "b"]), "cannot be read"),
        (lambda: compute_metrics([0, 1], [0.1, 0.2], threshold=np.nan), "threshold must be finite"),
        (lambda: accuracy_at_threshold([0, 1], [0.1, 0.2], None), "threshold must be a number"),
        (lambda: bootstrap_ci([0, 1], [0.1, 0.2], n_bootstrap=0), "n_bootstrap"),
        (lambda: bootstrap_ci([0, 1], [0.1, 0.2], confidence=1.0), "confidence"),
        (lambda: bootstrap_ci([0, 1], [0.1, 0.2], groups=[1, 2, 3]), "groups must have shape"),
        (lambda: format_metrics({"eer": 0.1}), "report lacks"),
        (lambda: expected_calibration_error([0, 1], [0.2, 1.5]), r"\[0, 1\].*index 1"),
        (lambda: expected_calibration_error([0, 1], [0.2, 0.5], n_bins=0), "n_bins"),
        (lambda: softmax_probability(np.zeros(3)), r"shape \[n, classes>=2\]"),
        (lambda: softmax_probability(np.zeros((2, 2)), temperature=0.0), "temperature"),
        (lambda: score_from_logits(np.zeros((2, 2)), positive_index=2), "out of range"),
        (lambda: fit_temperature(np.zeros((2, 2)), [0, 2]), "class indices 0..1"),
        (lambda: fit_temperature(np.zeros((2, 2)), [0]), "labels has 1 entries"),
    ],
)
def test_metrics_errors_name_the_problem(call, message):
    with pytest.raises(MetricsError, match=message):
        call()


def test_metrics_error_is_a_value_error():
    assert issubclass(MetricsError, ValueError)


# ------------------------------------------------------------------------------------------
# logits, probabilities and calibration
# ------------------------------------------------------------------------------------------


def test_scores_and_probabilities_from_logits():
    logits = np.array([[2.0, -1.0], [0.0, 0.0], [-3.0, 1.5]])
    score = score_from_logits(logits)
    np.testing.assert_allclose(score, [-3.0, 0.0, 4.5])
    np.testing.assert_allclose(softmax_probability(logits), 1 / (1 + np.exp(-score)))
    np.testing.assert_allclose(
        softmax_probability(logits, positive_index=0, temperature=2.0),
        1 / (1 + np.exp(score / 2.0)),
    )
    three = np.array([[1.0, 2.0, 0.5]])
    p = softmax_probability(three, positive_index=1)
    np.testing.assert_allclose(score_from_logits(three, positive_index=1), np.log(p / (1 - p)))


def test_ece_is_near_zero_when_calibrated_and_large_when_overconfident():
    rng = np.random.default_rng(11)
    prob = rng.random(200_000)
    labels = (rng.random(prob.size) < prob).astype(int)
    assert expected_calibration_error(labels, prob) < 0.01
    logit = np.log(prob / (1 - prob))
    overconfident = 1 / (1 + np.exp(-4.0 * logit))
    assert expected_calibration_error(labels, overconfident) > 0.1


def test_reliability_curve_bins():
    # bins of width 0.5: [0, 0.5) holds 0.1, 0.2, 0.4; [0.5, 1] holds 0.8 and 1.0.
    curve = compute_reliability_curve([0, 0, 1, 1, 1], [0.1, 0.2, 0.4, 0.8, 1.0], n_bins=2)
    assert curve["bin_center"] == [0.25, 0.75]
    assert curve["count"] == [3, 2]
    assert curve["mean_predicted"] == pytest.approx([0.7 / 3, 0.9])
    assert curve["observed_frequency"] == pytest.approx([1 / 3, 1.0])
    # ECE = 3/5 * |0.2333 - 0.3333| + 2/5 * |0.9 - 1.0| = 0.06 + 0.04 = 0.10
    ece = expected_calibration_error([0, 0, 1, 1, 1], [0.1, 0.2, 0.4, 0.8, 1.0], n_bins=2)
    assert ece == pytest.approx(0.10)


@pytest.mark.parametrize("true_temperature", [0.5, 2.5])
def test_fit_temperature_recovers_known_temperature(true_temperature):
    rng = np.random.default_rng(12)
    logits = rng.normal(scale=3.0, size=(20_000, 2))
    prob_real = softmax_probability(logits, temperature=true_temperature)
    labels = (rng.random(prob_real.size) < prob_real).astype(int)
    fitted = fit_temperature(logits, labels)
    assert fitted == pytest.approx(true_temperature, rel=0.1)


# ------------------------------------------------------------------------------------------
# the offline `evaluate` module
# ------------------------------------------------------------------------------------------


def test_eer_metric_path_points_at_the_module_script():
    assert (EER_METRIC_PATH / "eer.py").is_file()
    assert EER_METRIC_PATH.name == "eer"


def test_importing_metrics_does_not_import_evaluate():
    # evaluate is absent on Colab; only the metric script itself needs it.
    code = "import sys, deepfake_lib.evaluation.metrics; print('evaluate' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"


@pytest.mark.slow
def test_evaluate_loads_eer_module_offline(tmp_path):
    labels, scores = _synthetic_scores(60, seed=13)
    code = (
        "import json, sys, evaluate\n"
        "from deepfake_lib.evaluation.metrics import EER_METRIC_PATH\n"
        "labels, scores = json.loads(sys.stdin.read())\n"
        "metric = evaluate.load(str(EER_METRIC_PATH))\n"
        "print(json.dumps(metric.compute(references=labels, predictions=scores)))\n"
    )
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        HF_EVALUATE_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf_home"),  # fresh caches: nothing pre-downloaded to lean on
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps([labels.tolist(), scores.tolist()]),
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    expected = compute_eer(labels, scores)
    assert result["eer"] == pytest.approx(expected.eer, abs=1e-12)
    assert result["threshold"] == pytest.approx(expected.threshold)


# ------------------------------------------------------------------------------------------
# independent implementations: EER, minDCF, actDCF, Cllr, minCllr on random and tied scores
# ------------------------------------------------------------------------------------------


def _brute_rates(labels, scores, threshold):
    """(FAR, FRR) as exact fractions at one threshold, counted clip by clip."""
    spoof = [s for s, y in zip(scores, labels) if y == 0]
    bona = [s for s, y in zip(scores, labels) if y == 1]
    far = Fraction(sum(1 for s in spoof if s >= threshold), len(spoof))
    frr = Fraction(sum(1 for s in bona if s < threshold), len(bona))
    return far, frr


def _brute_eer(labels, scores) -> float:
    """EER by the documented convention, in exact fractions: operating points only at distinct
    scores and +inf; linear interpolation on the segment where FAR - FRR changes sign."""
    points = [_brute_rates(labels, scores, t) for t in sorted(set(scores)) + [math.inf]]
    for (far_a, frr_a), (far_b, frr_b) in itertools.pairwise(points):
        gap_a, gap_b = far_a - frr_a, far_b - frr_b
        if gap_a == 0:
            return float(far_a)
        if gap_a > 0 > gap_b or gap_b == 0:
            step = gap_a / (gap_a - gap_b)
            return float(far_a + step * (far_b - far_a))
    raise AssertionError("FAR - FRR never changed sign")


def _classic_eer(labels, scores) -> float:
    """The classic ASVspoof-script EER: cuts between sorted clips (bona fide first on ties, as
    its concatenation leaves them), mean of FAR and FRR at the cut where they are closest."""
    pairs = sorted(zip(scores, [0 if y == 1 else 1 for y in labels]))  # bona fide (0) first
    n_bona = sum(labels)
    n_spoof = len(labels) - n_bona
    best = None
    for cut in range(len(pairs) + 1):  # reject the first `cut` clips
        frr = sum(1 for _, kind in pairs[:cut] if kind == 0) / n_bona
        far = sum(1 for _, kind in pairs[cut:] if kind == 1) / n_spoof
        if best is None or abs(frr - far) < best[0]:
            best = (abs(frr - far), (frr + far) / 2)
    return best[1]


def _brute_min_dcf(labels, scores) -> float:
    """ASVspoof 5 normalised DCF, written out: (0.95 * 1 * Pmiss + 0.05 * 10 * Pfa) / 0.5."""
    costs = []
    for t in sorted(set(scores)) + [math.inf]:
        far, frr = _brute_rates(labels, scores, t)
        costs.append((0.95 * float(frr) + 0.5 * float(far)) / 0.5)
    return min(costs)


def _brute_cllr(labels, llrs) -> float:
    bona = [math.log2(1 + math.exp(-s)) for s, y in zip(llrs, labels) if y == 1]
    spoof = [math.log2(1 + math.exp(s)) for s, y in zip(llrs, labels) if y == 0]
    return 0.5 * (sum(bona) / len(bona) + sum(spoof) / len(spoof))


def _brute_min_cllr(labels, scores) -> float:
    """Hand-written pool-adjacent-violators over the distinct score levels (tied clips stay in one
    block), posterior -> LLR with the empirical prior removed, then Cllr clip by clip."""
    levels = sorted(set(scores))
    blocks = []  # [bona, total, members]
    for level in levels:
        bona = sum(1 for s, y in zip(scores, labels) if s == level and y == 1)
        total = sum(1 for s in scores if s == level)
        blocks.append([bona, total, [level]])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            last = blocks.pop()
            blocks[-1] = [blocks[-1][0] + last[0], blocks[-1][1] + last[1], blocks[-1][2] + last[2]]
    posterior = {level: Fraction(b, t) for b, t, members in blocks for level in members}
    n_bona = sum(labels)
    n_spoof = len(labels) - n_bona
    total = [0.0, 0.0]
    for s, y in zip(scores, labels):
        p = posterior[s]
        if y == 1:  # log2(1 + e^-llr) with e^llr = p / (1 - p) * n_spoof / n_bona
            total[1] += math.log2(1 + float((1 - p) * n_bona / (p * n_spoof)))
        else:
            total[0] += math.log2(1 + float(p * n_spoof / ((1 - p) * n_bona)))
    return 0.5 * (total[1] / n_bona + total[0] / n_spoof)


def _score_sets():
    """(name, labels, scores): untied Gaussian, unbalanced, heavily tied (5 levels) and all tied."""
    rng = np.random.default_rng(21)
    labels = (rng.random(150) < 0.35).astype(int)
    untied = rng.normal(size=labels.size) * 1.5 + 1.2 * labels
    tied = np.round(untied)  # about 5 distinct values, ties within and across classes
    coarse = np.clip(np.round(untied / 2.0), -1, 1)  # 3 levels
    return [
        ("untied", labels, untied),
        ("tied", labels, tied),
        ("three levels", labels, coarse),
        ("all tied", labels, np.zeros(labels.size)),
        ("separated", labels, labels * 3.0 + rng.normal(size=labels.size) * 0.1),
    ]


@pytest.mark.parametrize(
    ("name", "labels", "scores"), _score_sets(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_metrics_match_independent_implementations(name, labels, scores):
    labels, scores = labels.tolist(), scores.tolist()
    assert compute_eer(labels, scores).eer == pytest.approx(_brute_eer(labels, scores), abs=1e-12)
    assert compute_min_dcf(labels, scores).dcf == pytest.approx(_brute_min_dcf(labels, scores), abs=1e-12)
    far, frr = _brute_rates(labels, scores, -math.log(1.9))
    assert compute_act_dcf(labels, scores).dcf == pytest.approx((0.95 * frr + 0.5 * far) / 0.5, abs=1e-12)
    assert compute_cllr(labels, scores) == pytest.approx(_brute_cllr(labels, scores), abs=1e-12)
    assert compute_min_cllr(labels, scores) == pytest.approx(_brute_min_cllr(labels, scores), abs=1e-9)
    report = compute_metrics(labels, scores)
    for key, value in (("min_dcf", _brute_min_dcf(labels, scores)), ("cllr", _brute_cllr(labels, scores))):
        assert report[key] == pytest.approx(value, abs=1e-12), key


def test_eer_agrees_with_the_classic_script_within_one_step_on_untied_scores():
    rng = np.random.default_rng(22)
    for _ in range(5):
        labels = (rng.random(120) < 0.4).astype(int).tolist()
        scores = (rng.normal(size=120) + np.asarray(labels)).tolist()
        step = 1 / min(sum(labels), len(labels) - sum(labels))
        assert abs(compute_eer(labels, scores).eer - _classic_eer(labels, scores)) <= step


def test_min_cllr_pools_ties_and_is_at_most_cllr():
    # spoof {0, 1}, bona fide {1, 2}: PAV posteriors 0, 1/2 (the tie), 1 -> the two tied clips
    # cost log2(1 + 1) = 1 bit each (prior 2:2 removes nothing), the others 0:
    # minCllr = 1/2 * (1/2 + 1/2) = 0.5. Breaking the tie would give 0.
    assert compute_min_cllr([0, 0, 1, 1], [0.0, 1.0, 1.0, 2.0]) == pytest.approx(0.5)
    rng = np.random.default_rng(23)
    labels = np.repeat([0, 1], 100)
    scores = rng.normal(size=200) + labels
    for llrs in (scores, 5.0 * scores - 3.0, 0.1 * scores):
        assert compute_min_cllr(labels, llrs) <= compute_cllr(labels, llrs) + 1e-12
    assert compute_min_cllr(labels, scores) == pytest.approx(compute_min_cllr(labels, np.exp(scores)))


def test_detection_cost_reference_values():
    assert ASVSPOOF5_COSTS == DetectionCosts(p_spoof=0.05, c_miss=1.0, c_fa=10.0)
    assert ASVSPOOF5_COSTS.bayes_threshold == pytest.approx(-math.log(1.9))
    # Uninformative scores: accepting everything costs 0.5 / 0.5 = 1; an LLR of 0 costs 1 bit.
    labels = [0, 1, 0, 1, 0]
    assert compute_min_dcf(labels, [0.0] * 5) == DCF(dcf=1.0, threshold=0.0)
    assert compute_act_dcf(labels, [0.0] * 5).dcf == 1.0  # 0 >= -0.64: all accepted
    assert compute_cllr(labels, [0.0] * 5) == pytest.approx(1.0)
    assert compute_min_cllr(labels, [0.0] * 5) == pytest.approx(1.0)
    # Perfect, confident scores cost nothing; confidently wrong ones cost a lot.
    assert compute_min_dcf([0, 1], [-5.0, 5.0]).dcf == 0.0
    assert compute_cllr([0, 1], [-50.0, 50.0]) == pytest.approx(0.0, abs=1e-12)
    assert compute_cllr([0, 1], [50.0, -50.0]) == pytest.approx(50 / math.log(2), rel=1e-6)
    # actDCF at a given threshold: spoofs {1, 2}, bona fide {3, 4}; at t = 2.5 no error, at t = 3.5
    # one of two bona fide rejected: 0.95 * 1/2 / 0.5 = 0.95.
    assert compute_act_dcf([0, 0, 1, 1], [1.0, 2.0, 3.0, 4.0], threshold=2.5).dcf == 0.0
    assert compute_act_dcf([0, 0, 1, 1], [1.0, 2.0, 3.0, 4.0], threshold=3.5).dcf == pytest.approx(0.95)
    custom = DetectionCosts(p_spoof=0.5, c_miss=1.0, c_fa=1.0)
    assert compute_min_dcf([0, 0, 1, 1], [1.0, 3.0, 2.0, 4.0], costs=custom).dcf == pytest.approx(0.5)


def test_compute_metrics_act_dcf_threshold_rule():
    labels, scores = _synthetic_scores(60, seed=24)
    assert compute_metrics(labels, scores)["act_dcf_threshold"] == pytest.approx(-math.log(1.9))
    assert compute_metrics(labels, scores, threshold=0.3)["act_dcf_threshold"] == 0.3
    report = compute_metrics(labels, scores, threshold=0.3, act_dcf_threshold=-1.0)
    assert report["act_dcf_threshold"] == -1.0 and report["threshold"] == 0.3
    assert report["act_dcf"] == compute_act_dcf(labels, scores, threshold=-1.0).dcf
    assert report["costs"] == {"p_spoof": 0.05, "c_miss": 1.0, "c_fa": 10.0}


def test_replicate_statistics_of_new_metrics_equal_explicit_resampling():
    labels, scores = _synthetic_scores(80, seed=25, separation=1.0)
    scores = np.round(scores, 1)
    weights = np.random.default_rng(1).integers(0, 3, size=(15, labels.size))
    stats = _replicate_statistics(labels, scores, weights, threshold=0.4, act_threshold=0.2)
    for row in range(weights.shape[0]):
        y, s = np.repeat(labels, weights[row]), np.repeat(scores, weights[row])
        assert stats["min_dcf"][row] == pytest.approx(compute_min_dcf(y, s).dcf, abs=1e-12)
        assert stats["act_dcf"][row] == pytest.approx(compute_act_dcf(y, s, threshold=0.2).dcf, abs=1e-12)
        assert stats["cllr"][row] == pytest.approx(compute_cllr(y, s), abs=1e-12)
        assert stats["min_cllr"][row] == pytest.approx(compute_min_cllr(y, s), abs=1e-9)


def test_llr_conversions():
    np.testing.assert_allclose(llr_from_log_odds([0.0, 2.0], prior_real=0.2), [math.log(4), 2 + math.log(4)])
    np.testing.assert_allclose(llr_from_log_odds([1.5]), [1.5])
    np.testing.assert_allclose(llr_from_probability([0.5, 0.8]), [0.0, math.log(4)])
    assert np.all(np.isfinite(llr_from_probability([0.0, 1.0])))
    with pytest.raises(MetricsError, match="prior_real"):
        llr_from_log_odds([0.0], prior_real=1.0)
    with pytest.raises(MetricsError, match=r"\[0, 1\]"):
        llr_from_probability([1.2])


# ------------------------------------------------------------------------------------------
# exact intervals for rates
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(0, 11), (3, 11), (11, 11), (1, 200), (57, 90)])
def test_rate_interval_is_clopper_pearson(k, n):
    # Clopper-Pearson from beta quantiles: lower B(a/2; k, n-k+1), upper B(1-a/2; k+1, n-k).
    low = 0.0 if k == 0 else beta.ppf(0.025, k, n - k + 1)
    high = 1.0 if k == n else beta.ppf(0.975, k + 1, n - k)
    assert rate_interval(k, n) == pytest.approx((low, high), abs=1e-9)


def test_format_rate_texts():
    # one-sided: 1 - 0.05 ** (1/11) = 0.238; 0.05 ** (1/11) = 0.762.
    assert format_rate(0, 11) == "0 of 11, at most 24% at 95%"
    assert format_rate(11, 11) == "11 of 11, at least 76% at 95%"
    assert format_rate(3, 11) == "3 of 11 (27%), 95% CI 6.0%-61%"
    assert format_rate(0, 300, confidence=0.99) == "0 of 300, at most 1.5% at 99%"
    with pytest.raises(MetricsError, match="0 <= k <= n"):
        format_rate(5, 4)


def test_summarize_scores_gives_exact_rate_intervals_and_flags_degenerate_bootstraps():
    # Separable scores: every resample has EER 0, the bootstrap interval has zero width.
    labels = np.repeat([0, 1], 11)
    scores = np.r_[np.linspace(-3, -1, 11), np.linspace(1, 3, 11)]
    report = summarize_scores(labels, scores, n_bootstrap=200, seed=0)
    assert report["ci"]["eer"] == (0.0, 0.0) and "eer" in report["ci"]["degenerate"]
    assert report["far"] == 0.0 and report["ci"]["far"] == pytest.approx(rate_interval(0, 11))
    assert report["ci"]["far"][1] > 0.25  # two-sided 95% upper bound on 0 of 11: 0.285
    assert report["ci"]["frr"] == pytest.approx(rate_interval(0, 11))
    json.dumps(report)


def test_cllr_with_the_training_prior_removed():
    from deepfake_lib.evaluation.costs import compute_cllr, compute_min_cllr, llr_from_log_odds
    from deepfake_lib.evaluation.metrics import summarize_scores

    rng = np.random.default_rng(3)
    labels = np.r_[np.ones(60, int), np.zeros(140, int)]
    # calibrated Gaussian LLRs (mean +-mu, variance 2 mu), as log posterior odds of a 30% bona fide prior
    llrs = np.where(labels == 1, 1.0, -1.0) * 2.0 + rng.normal(size=200) * 2.0
    log_odds = llrs + np.log(0.3 / 0.7)
    raw = summarize_scores(labels, log_odds, n_bootstrap=200, seed=0)
    fixed = summarize_scores(labels, log_odds, cllr_prior_real=0.3, n_bootstrap=200, seed=0)
    assert raw["cllr_prior_real"] is None and fixed["cllr_prior_real"] == 0.3
    assert raw["cllr"] == pytest.approx(compute_cllr(labels, log_odds))
    assert fixed["cllr"] == pytest.approx(compute_cllr(labels, llr_from_log_odds(log_odds, prior_real=0.3)))
    assert fixed["cllr"] < raw["cllr"]  # the prior was charged as miscalibration before
    assert fixed["min_cllr"] == raw["min_cllr"] == pytest.approx(compute_min_cllr(labels, log_odds))
    low, high = fixed["ci"]["cllr"]
    assert low <= fixed["cllr"] <= high and (low, high) != tuple(raw["ci"]["cllr"])
    for key in ("eer", "min_dcf", "act_dcf", "auc"):  # nothing else moves
        assert fixed[key] == raw[key] and fixed["ci"][key] == raw["ci"][key]
