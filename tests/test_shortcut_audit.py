"""Cheap cues, single-cue audits, speaker folds and grouped cross-validation (fixtures made in code)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepfake_lib.audio.cues import CHEAP_CUE_NAMES, extract_cheap_cues
from deepfake_lib.evaluation.folds import (
    assign_group_folds,
    assign_speaker_folds,
    leave_one_attack_out_masks,
)
from deepfake_lib.evaluation.shortcuts import audit_single_cues, two_sided_eer
from deepfake_lib.modeling.baselines import fit_logistic_baseline, score_baseline
from deepfake_lib.studies import grouped_cv


def _voiced(f0: float, seconds: float = 1.0, sr: int = 16000, pause_s: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8)) * 0.1
    wave = wave + 0.001 * np.random.default_rng(0).standard_normal(t.size)
    return np.concatenate([wave, np.zeros(int(pause_s * sr)), wave])


def test_cheap_cues_measure_pitch_zero_runs_and_bands() -> None:
    low = extract_cheap_cues(_voiced(120.0), 16000)
    high = extract_cheap_cues(_voiced(220.0, pause_s=0.2), 16000)
    assert set(low) == set(CHEAP_CUE_NAMES) and len(CHEAP_CUE_NAMES) == 29
    assert abs(low["f0_median_hz"] - 120.0) < 6 and abs(high["f0_median_hz"] - 220.0) < 11
    assert low["longest_zero_run_s"] == 0.0 and abs(high["longest_zero_run_s"] - 0.2) < 0.01
    assert high["silence_fraction"] > low["silence_fraction"]
    assert low["band_0_80_db"] < low["band_80_200_db"]  # a 120 Hz fundamental, no energy below 80 Hz
    with pytest.raises(ValueError, match="0.1 s"):
        extract_cheap_cues(np.zeros(100), 16000)


def test_audit_flags_a_separating_cue_per_attack_and_passes_a_random_one() -> None:
    rng = np.random.default_rng(1)
    attacks = np.array(["bonafide"] * 40 + ["a"] * 40 + ["b"] * 40)
    labels = (attacks == "bonafide").astype(int)
    table = pd.DataFrame(
        {
            "leak_b": np.where(attacks == "b", 5.0, 0.0) + rng.normal(0, 0.1, attacks.size),
            "noise": rng.normal(0, 1, attacks.size),
        }
    )
    audit = audit_single_cues(table, labels, attacks, n_permutations=100).set_index(["attack", "cue"])
    assert audit.loc[("b", "leak_b"), "eer"] == 0.0 and audit.loc[("b", "leak_b"), "beats_null"]
    assert not audit.loc[("a", "leak_b"), "beats_null"]
    assert not audit.loc[("all", "noise"), "beats_null"] and not audit.loc[("a", "noise"), "beats_null"]
    assert two_sided_eer(labels, np.ones(labels.size)) == 0.5
    with pytest.raises(ValueError, match="missing columns"):
        audit_single_cues(table, labels, attacks, cue_names=["absent"])


def _toy_corpus() -> pd.DataFrame:
    """6 bona fide speakers (+ 2 re-synthesis spoofs each) and 4 TTS voices, 10 prompts each."""
    rows = []
    for s in range(6):
        for p in range(10):
            rows += [(f"spk{s}", "bonafide", 1, p), (f"spk{s}", "voc", 0, p), (f"spk{s}", "gl", 0, p)]
    for v in range(4):
        rows += [(f"tts{v}", "tts", 0, p) for p in range(10)]
    return pd.DataFrame(rows, columns=["speaker_id", "attack", "label", "prompt"])


def test_speaker_folds_hold_each_speaker_out_once_with_its_spoofs() -> None:
    df = _toy_corpus()
    folds = assign_speaker_folds(df["speaker_id"], df["label"])
    assert sorted(set(folds)) == list(range(6))
    for speaker, f in df.assign(fold=folds).groupby("speaker_id")["fold"]:
        assert f.nunique() == 1, speaker  # a speaker's bona fide clips and re-synthesis spoofs together
    tests = [frozenset(df.loc[folds == k, "speaker_id"]) for k in range(6)]
    assert len(set(tests)) == 6  # no two folds alike
    assert all(sum(s.startswith("spk") for s in t) == 1 for t in tests)
    assert sorted(v for t in tests for v in t if v.startswith("tts")) == ["tts0", "tts1", "tts2", "tts3"]
    with pytest.raises(ValueError, match="n_folds"):
        assign_speaker_folds(df["speaker_id"], df["label"], n_folds=7)
    with pytest.raises(ValueError, match="2 bona fide speakers"):
        assign_speaker_folds(["a", "b"], [1, 0])


def test_group_folds_keep_groups_together_and_leave_one_attack_out_masks() -> None:
    df = _toy_corpus()
    folds = assign_group_folds(df["prompt"], n_folds=5, seed=0)
    assert df.assign(fold=folds).groupby("prompt")["fold"].nunique().max() == 1
    assert sorted(set(folds)) == list(range(5))
    for _, train, test in leave_one_attack_out_masks(folds, df["attack"], "gl"):
        assert not (df["attack"][train] == "gl").any()
        assert set(df["attack"][test]) == {"bonafide", "gl"}


def test_cross_validation_scores_each_clip_once_and_pools_with_speaker_intervals() -> None:
    df = _toy_corpus()
    rng = np.random.default_rng(0)
    y = df["label"].to_numpy()
    x = np.c_[y + rng.normal(0, 0.3, y.size), rng.normal(0, 1, y.size)]  # feature 0 separates
    folds = assign_speaker_folds(df["speaker_id"], y)
    seen: list[np.ndarray] = []

    def fit(idx: np.ndarray):
        seen.append(idx)
        return fit_logistic_baseline(x[idx], y[idx])

    def score(model, idx: np.ndarray) -> np.ndarray:
        return score_baseline(model, x[idx])

    scores = grouped_cv.cross_validate(y, folds, fit, score)
    assert np.isfinite(scores).all() and len(seen) == 6
    for k, idx in enumerate(seen):
        assert not (folds[idx] == k).any()  # never trained on the clips it scores
    pooled = grouped_cv.summarize_pooled(y, scores, df["speaker_id"], df["attack"], n_bootstrap=200)
    assert set(pooled) == {"all", "voc", "gl", "tts"}
    assert (
        pooled["all"]["eer"] < 0.1
        and pooled["all"]["eer_low"] <= pooled["all"]["eer"] <= pooled["all"]["eer_high"]
    )
    left = grouped_cv.leave_one_attack_out(
        y, folds, df["attack"], df["speaker_id"], fit, score, n_bootstrap=50
    )
    assert set(left) == {"voc", "gl", "tts"} and left["gl"]["n_spoof"] == 60
    null = grouped_cv.permutation_null(y, folds, df["attack"], fit, score, n_permutations=5)
    assert null["all"]["q05"] > pooled["all"]["eer"] and null["all"]["n"] == 5
