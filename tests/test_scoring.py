"""The one scoring path: window rules, batching, and a run's scores equal to its Detector's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepfake_lib import TARGET_SAMPLE_RATE
from deepfake_lib.classifier import TorchClassifier
from deepfake_lib.config import ExperimentConfig
from deepfake_lib.corpora.experiment_data import prepare_data
from deepfake_lib.deploy.detector import Detector
from deepfake_lib.modeling.frontends import build_tiny_model
from deepfake_lib.modeling.loaded_model import LoadedModel
from deepfake_lib.modeling.models import load_model
from deepfake_lib.modeling.training import fine_tune
from deepfake_lib.runs import RUN_FILES
from deepfake_lib.scoring import (
    EvalClips,
    classify_waves,
    mean_logits,
    predict_logits,
    scores_table,
    window_samples,
    window_spans,
)


def test_window_spans_end_at_the_audio_and_never_pad() -> None:
    assert window_spans(10, 4, 2) == [(0, 4), (2, 6), (4, 8), (6, 10)]
    assert window_spans(11, 4, 2) == [(0, 4), (2, 6), (4, 8), (6, 10), (7, 11)]  # last moved back, not padded
    assert window_spans(3, 4, 2) == [(0, 3)]  # shorter than a window: scored whole
    assert window_spans(9, 0, 0) == [(0, 9)]  # window 0: whole clips
    assert window_samples(1.0) == (TARGET_SAMPLE_RATE, TARGET_SAMPLE_RATE // 2)
    assert window_samples(0.0) == (0, 0)
    with pytest.raises(ValueError, match="hop_s"):
        window_samples(1.0, 2.0)


def test_clip_logits_are_the_mean_of_window_logits() -> None:
    tiny = build_tiny_model(seed=2)
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(int(1.3 * TARGET_SAMPLE_RATE))).astype(np.float32)
    clips = EvalClips.from_waves([wave], [1])
    win, hop = window_samples(0.5)
    windows = [wave[a:b] for a, b in window_spans(wave.size, win, hop)]
    expected = mean_logits(classify_waves(predict_classifier(tiny), tiny.feature_extractor, windows))
    got = predict_logits(tiny.model, tiny.feature_extractor, clips, window_s=0.5, batch_size=2)[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    starts = [a / TARGET_SAMPLE_RATE for a, _ in window_spans(wave.size, win, hop)]
    assert starts == [0.0, 0.25, 0.5, 0.75, 0.8] and all(w.size == win for w in windows)


def predict_classifier(loaded: LoadedModel) -> TorchClassifier:
    """The torch backend the Detector uses."""
    return TorchClassifier(loaded.model)


@pytest.mark.slow
@pytest.mark.parametrize("eval_window_s", [0.0, 0.6])
def test_run_scores_equal_the_detectors(toy_corpus: Path, tmp_path: Path, eval_window_s: float) -> None:
    """test_scores.csv of a run is what Detector.from_source(run) says for the same clips."""
    cfg = ExperimentConfig(
        data_source=str(toy_corpus),
        run_dir=str(tmp_path / "run"),
        epochs=1,
        batch_size=8,
        n_bootstrap=0,
        learning_rate=1e-3,
        train_crop_s=1.5,
        augment_training=False,
        val_fraction=0.2,
        test_fraction=0.2,
        eval_window_s=eval_window_s,
    )
    result = fine_tune(cfg, record_epoch_scores=False, shortcut_control=False)
    saved = pd.read_csv(result.run_dir / RUN_FILES["test_scores"], dtype={"clip_id": str})
    clips = EvalClips.from_split(prepare_data(cfg)[0]["test"])
    assert clips.clip_ids == saved["clip_id"].tolist()
    detector = Detector.from_source(
        result.run_dir, device="cpu", batch_size=3, backend="torch"
    )  # fp32: exact
    expected_window = eval_window_s or 4.0
    assert detector.window_s == expected_window
    preds = list(detector.predict_many([(clips.load(i), TARGET_SAMPLE_RATE) for i in range(len(clips))]))
    scores = np.array([p.score for p in preds])
    np.testing.assert_allclose(scores, saved["score"].to_numpy(float), atol=1e-4)
    n_windows = np.array([p.n_windows for p in preds])
    assert (n_windows > 1).any() == (eval_window_s > 0)  # the windowed run really scored several windows
    # the same clips through the evaluation path give the same table
    loaded = load_model(str(result.model_dir))
    again = scores_table(
        clips, predict_logits(loaded.model, loaded.feature_extractor, clips, window_s=eval_window_s)
    )
    np.testing.assert_allclose(again["score"], saved["score"], atol=1e-4)


def _split_with_speakers(speakers: list[str]) -> object:
    import datasets

    n = len(speakers)
    return datasets.Dataset.from_dict(
        {
            "clip_id": [f"c{i}" for i in range(n)],
            "utterance_id": [f"u{i // 2}" for i in range(n)],
            "speaker_id": speakers,
            "label": [i % 2 for i in range(n)],
            "attack": ["bonafide" if i % 2 else "A01" for i in range(n)],
        }
    )


def test_bootstrap_groups_follow_the_split_grouping() -> None:
    named = _split_with_speakers(["spk0", "spk0", "spk1", "spk1", "spk0", "spk0"])
    clips = EvalClips.from_split(named)
    assert clips.groups == ["spk0", "spk0", "spk1", "spk1", "spk0", "spk0"]  # speakers, as the split
    assert clips.utterance_ids == ["u0", "u0", "u1", "u1", "u2", "u2"]
    logits = np.zeros((6, 2), dtype=np.float32)
    table = scores_table(clips, logits)
    assert list(table["speaker_id"]) == clips.groups and list(table["utterance_id"]) == clips.utterance_ids
    assert list(scores_table(named, logits)["speaker_id"]) == clips.groups  # a datasets split too

    unnamed = _split_with_speakers([""] * 6)
    clips = EvalClips.from_split(unnamed)
    assert clips.groups == clips.utterance_ids == ["u0", "u0", "u1", "u1", "u2", "u2"]
    assert "speaker_id" not in scores_table(clips, logits).columns
    assert "speaker_id" not in scores_table(unnamed, logits).columns
    # the older call: groups alone are the utterance ids
    legacy = EvalClips.from_waves([np.zeros(1600, np.float32)] * 2, [1, 0], groups=["a", "b"])
    assert legacy.utterance_ids == legacy.groups == ["a", "b"]
    assert list(legacy.metadata()["utterance_id"]) == ["a", "b"]
