"""Detector: sources and thresholds, windowing and aggregation, errors, batching, monitoring log.

A random-weight tiny wav2vec2 saved into a temporary folder stands in for a trained model
(scores are meaningless but deterministic); windowing and batching logic is also checked
with a stub classifier, which is instant.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading

import numpy as np
import pytest
import soundfile as sf

from deepfake_lib.audio.errors import AudioError
from deepfake_lib.classifier import TorchClassifier
from deepfake_lib.deploy.detector import Detector, aggregate_windows
from deepfake_lib.deploy.model_location import DEFAULT_THRESHOLD_NOTE, locate_model
from deepfake_lib.deploy.prediction_log import Prediction, PredictionError, PredictionLogger
from deepfake_lib.evaluation.probability import score_from_logits, softmax_probability
from deepfake_lib.runs import IncompleteFolderError, mark_complete

SR = 16_000


def make_wave(seconds: float, *, seed: int = 0, sr: int = SR) -> np.ndarray:
    """Speech-band test signal: a few harmonics with a wandering pitch plus noise, [samples]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    wave = sum(np.sin(k * phase) / k for k in range(1, 6)) * 0.1
    wave = wave * (0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t)) + 0.01 * rng.standard_normal(t.size)
    return wave.astype(np.float32)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from deepfake_lib.modeling.frontends import build_tiny_model
    from deepfake_lib.modeling.models import save_model

    return save_model(build_tiny_model(seed=3), tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, model_dir):
    import shutil

    run = tmp_path_factory.mktemp("run") / "demo"
    shutil.copytree(model_dir, run / "model")
    (run / "metrics.json").write_text(
        json.dumps({"threshold": {"value": 0.0123, "chosen_on": "validation EER"}})
    )
    mark_complete(run, "run", writer="test fixture")
    return run


@pytest.fixture(scope="module")
def detector(model_dir):
    # fp32: exact window arithmetic (int8 paths quantise activations per batch; see test_cpu_runtime.py)
    return Detector.from_source(model_dir, device="cpu", backend="torch")


class StubClassifier:
    """Logits from the window's mean and length, so each window gets a distinct, known score."""

    accepts_attention_mask = False

    def __init__(self):
        self.batch_shapes: list[tuple[int, ...]] = []

    def __call__(self, input_values, attention_mask=None):
        self.batch_shapes.append(input_values.shape)
        real = input_values[:, :100].mean(axis=1)
        return np.stack([np.zeros_like(real), real], axis=1).astype(np.float32)


class IdentityExtractor:
    """A feature extractor that only stacks equal-length windows (no normalisation)."""

    return_attention_mask = False

    def __call__(self, waves, **kwargs):
        return {"input_values": np.stack(waves).astype(np.float32)}


def manual_window_logits(detector: Detector, wave: np.ndarray, spans) -> np.ndarray:
    """Logits of each window computed one by one, outside the Detector's batching."""
    rows = []
    for a, b in spans:
        feats = detector.feature_extractor(
            [wave[a:b]], sampling_rate=SR, return_tensors="np", return_attention_mask=True
        )
        rows.append(detector.classifier(feats["input_values"], feats["attention_mask"].astype(np.int64))[0])
    return np.asarray(rows, dtype=np.float64)


# ---------------------------------------------------------------------------------- sources
def test_from_run_folder_takes_the_validation_threshold(run_dir):
    det = Detector.from_source(run_dir, device="cpu")
    assert det.threshold == pytest.approx(0.0123)
    assert "validation EER" in det.threshold_source and str(run_dir) in det.threshold_source
    assert locate_model(run_dir).kind == "run"
    assert det.describe()["threshold"] == pytest.approx(0.0123)


def test_from_model_folder_uses_argmax_and_says_so(detector, model_dir):
    assert detector.threshold == 0.0
    assert detector.threshold_source == DEFAULT_THRESHOLD_NOTE
    info = detector.describe()
    assert info["labels"] == ["Fake", "Real"] and info["sample_rate"] == SR
    assert info["window_s"] == 4.0 and info["hop_s"] == 2.0 and info["backend"] == "torch"
    assert info["backend_choice"] == {
        "requested": "torch",
        "chosen": "torch",
        "reason": "backend given by the caller",
    }


def test_threshold_override(run_dir):
    det = Detector.from_source(run_dir, device="cpu", threshold=-1.5)
    assert det.threshold == -1.5
    assert det.threshold_source == "given by the caller"


def test_unknown_hub_id_and_bad_arguments_raise(model_dir):
    with pytest.raises(ValueError, match="cannot load"):
        Detector.from_source("no-such-owner/no-such-model")
    with pytest.raises(ValueError, match="backend"):
        Detector.from_source(model_dir, backend="tensorrt")
    with pytest.raises(ValueError, match="hop_s"):
        Detector(StubClassifier(), IdentityExtractor(), window_s=2.0, hop_s=3.0)
    with pytest.raises(ValueError, match="export folder"):
        Detector.from_source(model_dir, backend="onnx")


def test_model_without_fake_real_head_is_refused(tmp_path):
    from deepfake_lib.modeling.frontends import build_tiny_model
    from deepfake_lib.modeling.models import save_model

    loaded = build_tiny_model()
    loaded.model.config.id2label = {0: "LABEL_0", 1: "LABEL_1"}
    loaded.model.config.label2id = {"LABEL_0": 0, "LABEL_1": 1}
    save_model(loaded, tmp_path / "m")
    with pytest.raises(ValueError, match="head re-initialised"):
        Detector.from_source(tmp_path / "m", device="cpu")


# ------------------------------------------------------------------------------- scoring
def test_label_follows_score_and_threshold(detector):
    wave = make_wave(3.0)
    pred = detector.predict(wave, SR)
    assert pred.label == ("Real" if pred.score >= pred.threshold else "Fake")
    for shift, label in ((-0.5, "Real"), (0.5, "Fake"), (0.0, "Real")):
        other = Detector(detector.classifier, detector.feature_extractor, threshold=pred.score + shift)
        p = other.predict(wave, SR)
        assert p.score == pytest.approx(pred.score, abs=1e-6)
        assert p.label == label
    assert pred.prob_real == pytest.approx(1 / (1 + np.exp(-pred.score)), abs=1e-6)


def test_long_audio_windows_and_timestamps(detector):
    pred = detector.predict(make_wave(20.0, seed=1), SR)
    assert pred.n_windows == 9
    assert [w["start_s"] for w in pred.windows] == [float(s) for s in range(0, 17, 2)]
    assert all(w["end_s"] - w["start_s"] == pytest.approx(4.0) for w in pred.windows)
    assert pred.duration_s == pytest.approx(20.0)
    # 21 s: the last window moves back to end at 21 s instead of being padded
    spans = detector.window_spans(21 * SR)
    assert len(spans) == 10 and spans[-1] == (17 * SR, 21 * SR)


def test_window_aggregation_equals_manual_computation(detector):
    wave = make_wave(9.0, seed=2)
    pred = detector.predict(wave, SR)
    spans = detector.window_spans(len(wave))
    logits = manual_window_logits(detector, wave, spans)
    mean = logits.mean(axis=0, keepdims=True)
    assert pred.score == pytest.approx(float(score_from_logits(mean)[0]), abs=1e-5)
    assert pred.score == pytest.approx(float(score_from_logits(logits).mean()), abs=1e-5)
    assert pred.prob_real == pytest.approx(float(softmax_probability(mean)[0]), abs=1e-6)
    np.testing.assert_allclose([w["score"] for w in pred.windows], score_from_logits(logits), atol=1e-5)
    assert pred.max_fake_prob == pytest.approx(float(np.max(1 - softmax_probability(logits))), abs=1e-6)


def test_short_clip_is_scored_whole(detector):
    wave = make_wave(1.5, seed=4)
    pred = detector.predict(wave, SR)
    assert pred.n_windows == 1
    assert pred.windows[0]["start_s"] == 0.0 and pred.windows[0]["end_s"] == pytest.approx(1.5)
    logits = manual_window_logits(detector, wave, [(0, len(wave))])
    assert pred.score == pytest.approx(float(score_from_logits(logits)[0]), abs=1e-5)


def test_other_sample_rates_and_encoded_inputs(detector, tmp_path):
    wave = make_wave(3.0, seed=5, sr=44_100)
    path = tmp_path / "clip.flac"
    sf.write(path, wave, 44_100, format="FLAC")
    from_path = detector.predict(path)
    from_bytes = detector.predict(path.read_bytes())
    assert from_path.source == str(path) and from_bytes.source == "bytes"
    assert from_path.score == pytest.approx(from_bytes.score, abs=1e-6)
    assert from_path.duration_s == pytest.approx(3.0, abs=1e-3)


def test_bad_audio_raises_audio_error_naming_the_source(detector, tmp_path):
    bad = tmp_path / "not_audio.wav"
    bad.write_bytes(b"this is not a wav file" * 10)
    with pytest.raises(AudioError, match="not_audio.wav"):
        detector.predict(bad)
    with pytest.raises(AudioError, match="upload 'x.mp3'"):
        detector.predict(b"\x00\x01garbage", source="upload 'x.mp3'")
    with pytest.raises(AudioError, match="too short"):
        detector.predict(make_wave(0.05), SR)
    with pytest.raises(AudioError, match="needs sample_rate"):
        detector.predict(make_wave(1.0))


def test_suspicious_segments_merge_windows_below_threshold():
    det = Detector(StubClassifier(), IdentityExtractor(), window_s=1.0, hop_s=0.5, threshold=0.0)
    wave = np.full(6 * SR, 0.5, dtype=np.float32)
    wave[int(1.0 * SR) : int(2.6 * SR)] = -0.5  # windows starting at 1.0, 1.5, 2.0, 2.5 s score < 0
    wave[int(4.5 * SR) : int(4.6 * SR)] = -0.5  # window starting at 4.5 s
    pred = det.predict(wave, SR)
    assert [(s["start_s"], s["end_s"], s["n_windows"]) for s in pred.suspicious_segments] == [
        (1.0, 3.5, 4),
        (4.5, 5.5, 1),
    ]
    assert all(s["min_score"] < 0 for s in pred.suspicious_segments)
    assert pred.max_fake_prob == pytest.approx(1 - 1 / (1 + np.exp(0.5)))


def test_aggregate_windows_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="do not match"):
        aggregate_windows(np.zeros((2, 2)), [(0, 10)], threshold=0.0)


# ----------------------------------------------------------------- batching and memory
def test_windows_are_scored_lazily_in_bounded_batches():
    stub = StubClassifier()
    det = Detector(stub, IdentityExtractor(), window_s=1.0, hop_s=0.5, batch_size=4)
    long_wave = np.full(120 * SR, 0.25, dtype=np.float32)  # 2 minutes -> 239 windows
    pred = det.predict(long_wave, SR)
    assert pred.n_windows == 239
    assert max(s[0] for s in stub.batch_shapes) <= 4
    assert all(s[1] == SR for s in stub.batch_shapes)


def test_predict_many_batches_across_files_and_keeps_order(detector, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEfmt garbage")
    waves = [make_wave(2.0, seed=6), make_wave(5.0, seed=7), make_wave(1.2, seed=8)]
    items = [(waves[0], SR), bad, (waves[1], SR, "second"), (waves[2], SR)]
    results = list(detector.predict_many(items))
    assert [type(r).__name__ for r in results] == [
        "Prediction",
        "PredictionError",
        "Prediction",
        "Prediction",
    ]
    assert isinstance(results[1], PredictionError) and "bad.wav" in results[1].error
    assert results[2].source == "second"
    for r, w in zip([results[0], results[2], results[3]], waves):
        alone = detector.predict(w, SR)
        assert r.score == pytest.approx(alone.score, abs=1e-4)
        assert r.n_windows == alone.n_windows


def test_no_mask_models_only_batch_equal_lengths():
    stub = StubClassifier()
    det = Detector(stub, IdentityExtractor(), window_s=1.0, batch_size=8)
    list(det.predict_many([(np.full(n, 0.3, np.float32), SR) for n in (8000, 8000, 9000, 16000, 20000)]))
    # 8000, 8000, 9000, 16000 and two 16000-sample windows of the 20000-sample clip
    assert sorted(stub.batch_shapes) == [(1, 9000), (2, 8000), (3, 16000)]


# ------------------------------------------------------------------------------- outputs
def test_prediction_to_dict_is_json(detector):
    pred = detector.predict(make_wave(5.0, seed=9), SR)
    data = json.loads(json.dumps(pred.to_dict()))
    for key in (
        "label",
        "prob_real",
        "score",
        "threshold",
        "windows",
        "duration_s",
        "model_id",
        "processing_ms",
        "max_fake_prob",
        "suspicious_segments",
        "n_windows",
        "sha256",
    ):
        assert key in data
    assert isinstance(pred, Prediction) and pred.processing_ms > 0


def test_monitoring_log_lines(model_dir, tmp_path):
    log_path = tmp_path / "logs" / "predictions.jsonl"
    det = Detector.from_source(model_dir, device="cpu", log_path=log_path)
    clip = tmp_path / "clip.wav"
    sf.write(clip, make_wave(2.0, seed=10), SR)
    wave = make_wave(1.0, seed=11)
    p1 = det.predict(clip)
    p2 = det.predict(wave, SR)
    with pytest.raises(AudioError):
        det.predict(b"nope", source="broken upload")
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert len(lines) == 3
    first, second, third = lines
    assert first["sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()
    assert second["sha256"] == hashlib.sha256(wave.tobytes()).hexdigest()
    assert first["source"] == str(clip) and second["source"] == "array"
    assert first["score"] == pytest.approx(p1.score) and second["label"] == p2.label
    assert first["model_id"] == str(model_dir) and first["threshold"] == 0.0
    assert set(first) >= {"time", "sha256", "source", "score", "label", "prob_real", "threshold", "model_id"}
    when = dt.datetime.fromisoformat(first["time"])
    assert when.utcoffset() == dt.timedelta(0)
    assert third["source"] == "broken upload" and third["label"] is None and "broken upload" in third["error"]


def test_prediction_logger_is_thread_safe(tmp_path):
    logger = PredictionLogger(tmp_path / "log.jsonl")
    pred = aggregate_windows(np.array([[0.0, 1.0]]), [(0, SR)], threshold=0.0, source="x" * 500)

    def worker():
        for _ in range(25):
            logger.log(pred)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert len(lines) == 200
    assert all(json.loads(line)["source"] == "x" * 500 for line in lines)


def test_torch_classifier_matches_model_forward(detector):
    import torch

    x = np.random.default_rng(0).standard_normal((2, SR)).astype(np.float32)
    clf: TorchClassifier = detector.classifier
    with torch.inference_mode():
        expected = clf.model(torch.from_numpy(x)).logits.numpy()
    np.testing.assert_allclose(clf(x), expected, atol=1e-6)


def test_a_run_folder_detector_scores_with_the_runs_evaluation_window(run_dir, tmp_path):
    import shutil

    assert Detector.from_source(run_dir, device="cpu").window_s == 4.0  # no config.json: the default window
    windowed = tmp_path / "windowed"
    shutil.copytree(run_dir, windowed)
    (windowed / "config.json").write_text(json.dumps({"eval_window_s": 1.5}))
    det = Detector.from_source(windowed, device="cpu")
    assert det.window_s == 1.5 and det.hop_s == 0.75
    assert Detector.from_source(windowed, device="cpu", window_s=2.0).window_s == 2.0  # the caller decides
    assert det.window_spans(int(3.2 * 16_000))[-1] == (
        int(1.7 * 16_000),
        int(3.2 * 16_000),
    )  # last ends at the end


def test_an_unfinished_run_folder_is_refused(run_dir, tmp_path):
    import shutil

    killed = tmp_path / "killed"
    shutil.copytree(run_dir, killed)
    (killed / "complete.json").unlink()  # killed after metrics.json, before the marker
    with pytest.raises(IncompleteFolderError, match=r"killed.*incomplete run folder.*no completion marker"):
        Detector.from_source(killed, device="cpu")
    shutil.rmtree(killed / "model")
    (killed / "model").mkdir()  # a model folder cut short while a finished run's marker says otherwise
    mark_complete(killed, "run")
    (killed / "metrics.json").write_text("{}")
    with pytest.raises(IncompleteFolderError, match="metrics.json is 2 bytes"):
        locate_model(killed)
