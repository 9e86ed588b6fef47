"""Each figure's sentence follows the data it was drawn from (data made here)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepfake_lib.notebook import captions

SR = 16_000


def tone(freq: float, seconds: float = 1.0, amp: float = 0.1) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_examples_caption_finds_the_band_where_the_spoof_differs():
    rng = np.random.default_rng(0)
    real = (0.01 * rng.standard_normal(SR)).astype(np.float32)
    fake = real + tone(3000.0)
    text = captions.caption_examples([("A01", fake, real)])
    khz = float(text.split("A01 near ")[1].split(" kHz")[0])
    assert 2.6 <= khz <= 3.4 and "(+" in text


def test_augmentation_caption_names_a_uniform_gain_and_orders_by_change():
    rng = np.random.default_rng(1)
    clean = (0.05 * rng.standard_normal(SR)).astype(np.float32)
    noisy = clean + (0.5 * rng.standard_normal(SR)).astype(np.float32)
    text = captions.caption_augmentations([("clean", clean), ("gain", clean * 0.5), ("noise", noisy)])
    assert text.index("*noise*") < text.index("*gain*")  # the larger change first
    assert "*gain* shifts every cell by the same 6.0 dB" in text


def test_scores_caption_counts_per_attack_at_the_threshold():
    scores = pd.DataFrame(
        {
            "label": [1, 1, 0, 0, 0],
            "attack": ["bonafide", "bonafide", "A01", "A01", "A02"],
            "score": [2.0, -1.0, 0.5, -3.0, -2.0],
        }
    )
    text = captions.caption_scores(scores, threshold=0.0)
    assert "1 of 3 spoofs score as bona fide (A01 1 of 2, A02 0 of 1)" in text
    assert "1 of 2 bona fide clips score as spoofs" in text
    assert "0 of 3 spoofs" in captions.caption_scores(scores, threshold=1.0)


def test_timeline_caption_counts_windows_wholly_inside_the_spoof_that_read_as_bona_fide():
    starts = np.arange(0.0, 9.0, 1.0)
    windows = pd.DataFrame(
        {
            "start_s": starts,
            "end_s": starts + 1,
            "center_s": starts + 0.5,
            "score": [3, 3, 3, 3, 2, 1, 1, -2, -2],
        }
    )
    text = captions.caption_timeline(windows, boundary_s=4.0, threshold=0.0)
    assert "Of the 5 windows wholly inside the spoof, 3 still score above the threshold" in text
    assert "of the 4 wholly inside the bona fide part, 0 score below" in text
    assert "starts 3.00 s after the splice" in text


def test_reliability_caption_flags_bins_too_small_to_read():
    calibration = {
        "reliability_after": {
            "bin_center": [0.05, 0.45, 0.95],
            "count": [40, 2, 48],
            "mean_predicted": [0.02, 0.4, 0.97],
            "observed_frequency": [0, 0.5, 1],
        }
    }
    text = captions.caption_reliability(calibration)
    assert "88 of 90 test clips sit in the two outer bins" in text and "1 of the 3 filled bins" in text
    calibration["reliability_after"]["count"] = [40, 6, 48]
    assert "hollow" not in captions.caption_reliability(calibration)


def test_far_frr_and_roc_captions_use_the_scores_given():
    labels = np.array([1] * 10 + [0] * 10)
    scores = np.concatenate([np.linspace(1, 3, 10), np.linspace(-3, 1.5, 10)])
    text = captions.caption_far_frr(labels, scores, threshold=0.0)
    assert "one clip of a class moves its rate by 10.0 points".lower() in text.lower()
    assert "(4 of 10 spoofs)" in text  # 0, 0.5, 1.0 and 1.5 lie at or above 0
    assert captions.caption_roc(labels, scores).startswith("AUC 0.9")


def test_occlusion_caption_names_the_strongest_cell_and_its_direction():
    matrix = np.zeros((2, 3))
    matrix[1, 2] = -0.8
    text = captions.caption_occlusion(matrix, [0, 4000, 8000], [0.0, 1.0, 2.0, 3.0])
    assert "Removing 4000-8000 Hz at 2.0-3.0 s" in text and "-0.80" in text and "towards spoof" in text
    assert "1 of 6 cells" in text


def test_shortcut_caption_finds_a_feature_that_gives_one_attack_away():
    rng = np.random.default_rng(2)
    n = 60
    labels = np.array([1] * n + [0] * n)
    attacks = np.array(["bonafide"] * n + ["A01"] * (n // 2) + ["A02"] * (n // 2))
    zcr = rng.normal(0.1, 0.01, 2 * n)
    zcr[attacks == "A01"] += 0.05  # A01 higher, A02 lower: pooled they cancel out
    zcr[attacks == "A02"] -= 0.05
    features = pd.DataFrame({"duration": rng.normal(3, 1, 2 * n), "zero_crossing_rate": zcr})
    text = captions.caption_shortcut_features(features, labels, attacks)
    assert "zero_crossing_rate alone separates A0" in text


def test_shortcut_caption_counts_the_features_and_names_the_most_separating():
    rng = np.random.default_rng(3)
    labels = np.repeat([1, 0], 50)
    attacks = np.where(labels == 1, "bonafide", "A01")
    features = pd.DataFrame({f"cue{k}": rng.normal(0, 1, 100) for k in range(8)})
    features["cue5"] += 3.0 * labels  # the one that separates
    features.loc[0, "cue2"] = np.nan  # an undefined value is left out, not fatal
    text = captions.caption_shortcut_features(features, labels, attacks, shown=3)
    assert "uses 8 features" in text and "shows the 3 that" in text
    listed = text.split("information): ")[1].split(". ")[0]
    assert listed.startswith("cue5 (") and listed.count("(") == 3
    assert "cue5 alone separates A01" in text


def test_class_balance_and_distribution_captions():
    counts = pd.DataFrame({"Fake": [210, 45], "Real": [210, 40]}, index=["train", "test"])
    assert "not balanced" in captions.caption_class_balance(counts)
    counts.loc["test", "Real"] = 45
    assert captions.caption_class_balance(counts).startswith("Every split holds as many")
    clips = pd.DataFrame(
        {
            "attack": ["bonafide"] * 4 + ["A01"] * 2 + ["A02"] * 2,
            "duration": [3, 4, 3, 4, 3.5, 3.5, 9, 9],
            "rms_dbfs": [-25.0] * 8,
        }
    )
    assert "is A02 on duration" in captions.caption_distributions(clips)


def test_history_caption_reads_the_kept_epoch():
    history = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [0.7, 0.5, 0.4], "eval_eer": [0.4, 0.1, 0.2]})
    text = captions.caption_history(history, best_epoch=2)
    assert "from 40.0% at epoch 1 to 10.0% at epoch 2, the epoch kept (of 3 run)" in text


def test_confusion_caption():
    assert captions.caption_confusion([[41, 4], [3, 42]]).endswith("(accuracy 92.2%).")
