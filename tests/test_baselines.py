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

from deepfake_lib.audio.cues import CHEAP_CUE_NAMES, extract_cheap_cues
from deepfake_lib.audio.signal import level_stats, resample
from deepfake_lib.corpora.embedded import BONAFIDE, CorpusConfig, generate_corpus
from deepfake_lib.corpora.embedded_attacks import ATTACKS
from deepfake_lib.evaluation.error_rates import compute_eer
from deepfake_lib.modeling.baselines import (
    CONTROL_FEATURES,
    LfccGmm,
    extract_control_features,
    fit_lfcc_gmm,
    fit_logistic_baseline,
    score_baseline,
)
from deepfake_lib.modeling.lfcc import extract_lfcc_frames, extract_lfcc_stats

SR = 16_000
RECORDING_PROPERTIES = ("duration_s", "rms_dbfs", "peak_dbfs", "sample_rate", "zero_crossing_rate")
"""The five features the shortcut control used before it became the cheap cues."""


def recording_properties(wave: np.ndarray, sr: int) -> np.ndarray:
    """The :data:`RECORDING_PROPERTIES` of a clip: [5]."""
    stats = {**level_stats(wave, sr), "sample_rate": float(sr)}
    return np.array([stats[k] for k in RECORDING_PROPERTIES])


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
def test_control_features_are_the_cheap_cues_and_the_sample_rate():
    assert CONTROL_FEATURES == (*CHEAP_CUE_NAMES, "sample_rate") and len(CONTROL_FEATURES) == 30
    wave = tone(1000.0, seconds=2.0, amp=0.5) + noise(0, seconds=2.0, level=0.01)
    feats = extract_control_features(wave, SR)
    assert feats.shape == (len(CONTROL_FEATURES),) and np.isfinite(feats).all()
    cues = extract_cheap_cues(wave, SR)
    assert feats[:-1].tolist() == [cues[k] for k in CHEAP_CUE_NAMES] and feats[-1] == SR
    named = dict(zip(CONTROL_FEATURES, feats))
    assert named["duration_s"] == pytest.approx(2.0)
    assert named["rms_dbfs"] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.05)
    assert named["zero_crossing_rate"] == pytest.approx(2 * 1000 / SR, rel=0.05)
    # the 1 kHz tone's band holds nearly all the power
    assert named["band_1000_2000_db"] > -1.0 and named["band_2000_3000_db"] < -20.0


def test_control_features_reject_bad_input():
    with pytest.raises(ValueError, match="mono"):
        extract_control_features(np.zeros((2, 100), np.float32), SR)
    with pytest.raises(ValueError, match="sample_rate"):
        extract_control_features(tone(100.0), 0)
    with pytest.raises(ValueError, match="0.1 s"):
        extract_control_features(tone(100.0, seconds=0.05), SR)


def test_control_survives_silent_clips():
    silent = extract_control_features(np.zeros(SR, np.float32), SR)
    assert np.isnan(silent).any()  # kurtosis and skewness of a constant clip are undefined
    assert not np.isinf(silent).any()
    x = np.stack([extract_control_features(noise(s, level=0.05 + 0.02 * s), SR) for s in range(6)] + [silent])
    y = np.array([1, 0, 1, 0, 1, 0, 1])
    scores = score_baseline(fit_logistic_baseline(x, y), np.stack([silent, x[0]]))
    assert np.isfinite(scores).all()


def leaky_clips(n: int, leak: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` clips per class of coloured noise (random colour, level and duration in both classes);
    in class 0 ("Fake") ``leak`` adds a hum below 80 Hz ("hum") or a 3.5-4 kHz band ("band"),
    ``"none"`` adds nothing. Returns native-rate features [2n, 30] and [2n, 5], and labels [2n]."""
    from scipy.signal import butter, lfilter, sosfilt

    rng = np.random.default_rng(seed)
    band = butter(6, (3500, 3950), btype="bandpass", fs=SR, output="sos")
    control, recording, labels = [], [], []
    for k in range(2 * n):
        label = k % 2
        m = int(rng.uniform(1.0, 1.4) * SR)
        x = lfilter([1.0], [1.0, -rng.uniform(0.0, 0.9)], rng.standard_normal(m))
        if label == 0 and leak == "hum":
            t = np.arange(m) / SR
            x = x + 0.5 * np.std(x) * np.sin(2 * np.pi * rng.uniform(35, 60) * t + rng.uniform(0, 6.3))
        if label == 0 and leak == "band":
            x = x + 0.3 * np.std(x) * sosfilt(band, rng.standard_normal(m)) / 0.07
        x = (x / np.sqrt(np.mean(x**2)) * 10 ** (rng.uniform(-30, -18) / 20)).astype(np.float32)
        control.append(extract_control_features(x, SR))
        recording.append(recording_properties(x, SR))
        labels.append(label)
    return np.stack(control), np.stack(recording), np.array(labels)


def held_out_eer(features: np.ndarray, labels: np.ndarray) -> float:
    """EER of the logistic baseline trained on the first half of the clips, scored on the second."""
    half = labels.size // 2
    model = fit_logistic_baseline(features[:half], labels[:half])
    return compute_eer(labels[half:], score_baseline(model, features[half:])).eer


@pytest.mark.parametrize("leak", ["hum", "band"])
def test_control_catches_a_leak_the_five_recording_properties_miss(leak):
    control, recording, labels = leaky_clips(40, leak, seed=1)
    old, new = held_out_eer(recording, labels), held_out_eer(control, labels)
    assert old >= 0.25, f"{leak}: the five recording properties already see it (EER {old:.3f})"
    assert new <= 0.10, f"{leak}: the cheap-cue control misses it (EER {new:.3f})"


def test_control_stays_near_chance_without_a_class_difference():
    control, _, labels = leaky_clips(40, "none", seed=2)
    eer = held_out_eer(control, labels)
    assert eer >= 0.3, f"the control separates identical classes (EER {eer:.3f})"


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
    data["recording"] = np.stack(
        [recording_properties(w, sr) for w, sr in zip(data["native"], data["rates"])]
    )
    data["lfcc"] = np.stack([extract_lfcc_stats(w) for w in data["w16"]])
    return data


@pytest.mark.slow
def test_recording_properties_stay_near_chance(corpus):
    """What the corpus was calibrated for: duration, level, peak, sample rate and zero-crossing rate
    (not the cheap-cue shortcut control, whose band energies and pitch cues see the attacks)."""
    bacc, auc = held_out(corpus["recording"], corpus["labels"], corpus["groups"])
    assert bacc <= 0.60, (
        f"recording-property logistic regression: balanced accuracy {bacc:.3f} (AUC {auc:.3f})"
    )


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
