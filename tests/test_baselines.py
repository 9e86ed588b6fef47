"""Classical baselines, and the honesty of the embedded corpus measured with them.

The honesty tests use utterances 0-199 of the default corpus (400 clips; a corpus's
utterances do not depend on its size, so these are the default corpus's first 400 rows) and
evaluate on held-out utterances only (GroupKFold on ``utterance_id``).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import GroupKFold

from deepfake_lib.audio.signal import resample
from deepfake_lib.corpora.embedded import BONAFIDE, CorpusConfig, generate_corpus
from deepfake_lib.corpora.embedded_attacks import ATTACKS
from deepfake_lib.modeling.baselines import (
    TRIVIAL_FEATURES,
    LfccGmm,
    extract_trivial_features,
    fit_lfcc_gmm,
    fit_logistic_baseline,
    score_baseline,
)
from deepfake_lib.modeling.lfcc import extract_lfcc_frames, extract_lfcc_stats

SR = 16_000


def tone(freq: float, seconds: float = 1.0, sr: int = SR, amp: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seed: int, seconds: float = 1.0, level: float = 0.1) -> np.ndarray:
    return (level * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def held_out(
    features: np.ndarray, labels: np.ndarray, groups: np.ndarray, folds: int = 5
) -> tuple[float, float]:
    """Balanced accuracy (at score 0) and AUC of the logistic baseline on held-out utterances."""
    scores = np.zeros(labels.shape[0])
    for train, test in GroupKFold(folds).split(features, labels, groups):
        scores[test] = score_baseline(fit_logistic_baseline(features[train], labels[train]), features[test])
    return balanced_accuracy_score(labels, scores > 0), roc_auc_score(labels, scores)


def decode_corpus(config: CorpusConfig) -> dict[str, object]:
    table = generate_corpus(config).to_pydict()
    native, rates = [], []
    for audio in table["audio"]:
        wave, sr = sf.read(io.BytesIO(audio["bytes"]), dtype="float32")
        native.append(wave)
        rates.append(sr)
    return {
        "native": native,
        "rates": rates,
        "w16": [resample(w, sr, SR) for w, sr in zip(native, rates)],
        "labels": np.array(table["label"]),
        "groups": np.array(table["utterance_id"]),
        "attacks": np.array(table["attack"]),
    }


# --------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------
def test_trivial_features_of_a_sine():
    feats = extract_trivial_features(tone(1000.0, seconds=2.0, amp=0.5), SR)
    assert feats.shape == (len(TRIVIAL_FEATURES),)
    duration, rms, peak, rate, zcr = feats
    assert duration == pytest.approx(2.0)
    assert rms == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.01)
    assert peak == pytest.approx(20 * np.log10(0.5), abs=0.01)
    assert rate == SR
    assert zcr == pytest.approx(2 * 1000 / SR, rel=0.01)


def test_trivial_features_reject_bad_input():
    with pytest.raises(ValueError, match="mono"):
        extract_trivial_features(np.zeros((2, 100), np.float32), SR)
    with pytest.raises(ValueError, match="sample_rate"):
        extract_trivial_features(tone(100.0), 0)


def test_lfcc_stats_shape_and_sensitivity():
    frames = extract_lfcc_frames(noise(0), SR, n_lfcc=20)
    assert frames.shape == (101, 40) and np.isfinite(frames).all()
    a, b = extract_lfcc_stats(noise(1)), extract_lfcc_stats(tone(440.0, amp=0.1) + noise(2, level=0.001))
    assert a.shape == b.shape == (80,)
    assert extract_lfcc_stats(noise(3), n_lfcc=13).shape == (52,)
    assert np.linalg.norm(a - b) > 10 * np.linalg.norm(a - extract_lfcc_stats(noise(4)))
    assert np.isfinite(extract_lfcc_stats(np.zeros(SR, np.float32))).all()  # digital silence


def test_logistic_baseline_scores_log_odds_of_real():
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 1, (40, 3)), rng.normal(3, 1, (40, 3))]
    y = np.r_[np.zeros(40, int), np.ones(40, int)]  # label 1 (Real) has the larger values
    model = fit_logistic_baseline(x, y)
    scores = score_baseline(model, np.array([[-2.0, -2, -2], [5.0, 5, 5]]))
    assert scores[0] < 0 < scores[1]
    with pytest.raises(ValueError, match="both classes"):
        fit_logistic_baseline(x[:40], y[:40])
    with pytest.raises(ValueError, match="features_train"):
        fit_logistic_baseline(x[:, 0], y)


def test_lfcc_gmm_scores_higher_for_real():
    real = [noise(s) for s in range(6)]  # "bona fide": white noise
    fake = [noise(10 + s, level=0.05) + tone(3000.0, amp=0.1) for s in range(6)]  # "spoof": plus a whistle
    model = fit_lfcc_gmm(real + fake, [1] * 6 + [0] * 6, n_components=2, seed=0)
    assert isinstance(model, LfccGmm)
    scores = score_baseline(model, [noise(50), noise(51, level=0.05) + tone(3000.0, amp=0.1)])
    assert scores[0] > 0 > scores[1]
    with pytest.raises(ValueError, match="differ in length"):
        fit_lfcc_gmm(real, [1, 0])


# --------------------------------------------------------------------------------------
# the corpus is honest: shortcuts stay at chance, spectral artefacts do not
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus() -> dict[str, object]:
    data = decode_corpus(CorpusConfig(n_utterances=200))  # the default corpus's first 400 clips
    data["trivial"] = np.stack(
        [extract_trivial_features(w, sr) for w, sr in zip(data["native"], data["rates"])]
    )
    data["lfcc"] = np.stack([extract_lfcc_stats(w) for w in data["w16"]])
    return data


@pytest.mark.slow
def test_trivial_features_stay_near_chance(corpus):
    bacc, auc = held_out(corpus["trivial"], corpus["labels"], corpus["groups"])
    assert bacc <= 0.60, f"trivial-feature logistic regression: balanced accuracy {bacc:.3f} (AUC {auc:.3f})"


@pytest.mark.slow
def test_lfcc_baseline_learns_the_artefacts(corpus):
    bacc, auc = held_out(corpus["lfcc"], corpus["labels"], corpus["groups"])
    assert bacc >= 0.75, f"LFCC-stats logistic regression: balanced accuracy {bacc:.3f} (AUC {auc:.3f})"


@pytest.mark.slow
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_every_attack_is_measurable_at_16khz(corpus, attack):
    keep = np.isin(corpus["attacks"], [attack, BONAFIDE])
    bacc, auc = held_out(corpus["lfcc"][keep], corpus["labels"][keep], corpus["groups"][keep], folds=4)
    assert bacc >= 0.80, f"{attack} vs bona fide at 16 kHz: LFCC balanced accuracy {bacc:.3f} (AUC {auc:.3f})"


@pytest.mark.slow
def test_difficulty_knob_makes_artefacts_fainter():
    figures = {}
    for difficulty in (0.0, 1.0):
        data = decode_corpus(
            CorpusConfig(
                n_utterances=40, difficulty=difficulty, seed=11, min_duration_s=1.5, max_duration_s=2.5
            )
        )
        lfcc = np.stack([extract_lfcc_stats(w) for w in data["w16"]])
        figures[difficulty] = held_out(lfcc, data["labels"], data["groups"], folds=4)
    assert figures[0.0][0] >= figures[1.0][0] and figures[0.0][1] > figures[1.0][1], figures
