"""The registries: a back-end and a metric added in a few lines each reach training, the detector,
``metrics.json``, ``deepfake-lib score`` and the service with no other file touched."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from deepfake_lib.config import ExperimentConfig
from deepfake_lib.evaluation.intervals import _replicate_statistics, bootstrap_ci
from deepfake_lib.evaluation.metric_registry import (
    METRICS,
    MetricInputs,
    MetricSpec,
    ReplicateInputs,
    bootstrap_keys,
    metric_meanings,
    register_metric,
    registered_metric,
    served_keys,
)
from deepfake_lib.evaluation.metrics import compute_metrics
from deepfake_lib.modeling import backends
from deepfake_lib.modeling.backend_model import Wav2Vec2WithBackend
from deepfake_lib.modeling.backends import BACKENDS, build_backend, register_backend
from deepfake_lib.modeling.frontends import FRONTENDS, FrontEnd, frontend_for_source, register_frontend
from deepfake_lib.modeling.models import load_model, save_model


# ------------------------------------------------------------------------------------------
# a toy metric and a toy back-end, each a few lines
# ------------------------------------------------------------------------------------------
def _margin(m: MetricInputs) -> float:
    return float(m.scores[m.labels == 1].mean() - m.scores[m.labels == 0].mean())


def _margin_replicates(r: ReplicateInputs) -> np.ndarray:
    bona = (r.labels == 1).astype(np.float64)
    return (r.weights @ (r.scores * bona)) / r.n_bona - (r.weights @ (r.scores * (1 - bona))) / r.n_spoof


MARGIN = MetricSpec(
    "score_margin", "margin", "mean bona fide score minus mean spoof score", True, _margin, _margin_replicates
)


class MaxPoolHead(nn.Module):
    """Toy back-end: the largest value of each feature over the valid frames, then a linear layer."""

    def __init__(self, input_size: int, num_labels: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(input_size, num_labels)

    def forward(self, hidden: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        if frame_mask is not None:
            hidden = hidden.masked_fill(~frame_mask.bool().unsqueeze(-1), -1e4)
        return self.classifier(hidden.max(dim=1).values)


# ------------------------------------------------------------------------------------------
# the metric table
# ------------------------------------------------------------------------------------------
def trials(seed: int = 0, n: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n // 2, int), np.zeros(n - n // 2, int)]
    scores = rng.normal(size=n) + 1.2 * labels
    scores[:4] = np.round(scores[:4])  # some ties
    scores[-4:] = np.round(scores[-4:])
    groups = np.arange(n) % 15
    return labels, scores, groups


@pytest.mark.parametrize("key", ["eer", "min_dcf", "act_dcf", "cllr", "min_cllr", "auc", "accuracy"])
def test_each_vectorised_metric_equals_its_scalar_form_on_replicates(key):
    labels, scores, _ = trials()
    rng = np.random.default_rng(1)
    weights = rng.integers(0, 3, size=(5, labels.size))
    reps = _replicate_statistics(labels, scores, weights, threshold=0.3, act_threshold=0.1)
    spec = METRICS[key]
    for b in range(weights.shape[0]):
        idx = np.repeat(np.arange(labels.size), weights[b])
        inputs = MetricInputs(labels[idx], scores[idx], 0.3, 0.1)
        assert reps[key][b] == pytest.approx(spec.compute(inputs), abs=1e-9), (key, b)


def test_the_table_feeds_compute_metrics_the_bootstrap_and_the_meanings():
    labels, scores, groups = trials()
    report = compute_metrics(labels, scores)
    assert set(METRICS) <= set(report)
    ci = bootstrap_ci(labels, scores, groups=groups, n_bootstrap=50)
    assert set(bootstrap_keys()) <= set(ci)
    assert all(metric_meanings()[key] for key in report if key in METRICS)
    assert {"eer", "min_dcf", "auc", "far"} <= set(served_keys())


def test_a_toy_metric_flows_through_metrics_bootstrap_and_the_score_command(tmp_path, capsys):
    from deepfake_lib.cli.main import main

    labels, scores, groups = trials()
    with registered_metric(MARGIN):
        report = compute_metrics(labels, scores)
        assert report["score_margin"] == pytest.approx(_margin(MetricInputs(labels, scores, 0.0)))
        low, high = bootstrap_ci(labels, scores, groups=groups, n_bootstrap=100)["score_margin"]
        assert low < report["score_margin"] < high
        score_file = tmp_path / "scores.csv"
        score_file.write_text(
            "id,label,score\n"
            + "".join(
                f"c{i},{'bonafide' if y else 'spoof'},{s}\n" for i, (y, s) in enumerate(zip(labels, scores))
            )
        )
        assert main(["score", "--scores", str(score_file), "--n-bootstrap", "20", "--json"]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["pooled"]["score_margin"] == pytest.approx(report["score_margin"])
        assert main(["score", "--scores", str(score_file), "--n-bootstrap", "20"]) == 0
        assert "margin" in capsys.readouterr().out
    assert "score_margin" not in METRICS  # the context manager removed it
    assert "score_margin" not in compute_metrics(labels, scores)


def test_register_metric_refuses_a_duplicate_or_a_bad_key():
    with pytest.raises(ValueError, match="already registered"):
        register_metric(METRICS["eer"])
    with pytest.raises(ValueError, match="identifier"):
        register_metric(MetricSpec("not a key", "x", "x", True, _margin))


# ------------------------------------------------------------------------------------------
# back-ends and front-ends
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_a_backend_ignores_padded_frames_and_gives_two_logits(name):
    torch.manual_seed(0)
    head = build_backend(name, 16, 2).eval()
    hidden = torch.randn(1, 7, 16)
    padded = torch.cat([hidden, 100 * torch.randn(1, 5, 16)], dim=1)
    mask = torch.tensor([[True] * 7 + [False] * 5])
    with torch.no_grad():
        alone = head(hidden, None)
        with_padding = head(padded, mask)
    assert alone.shape == (1, 2)
    torch.testing.assert_close(alone, with_padding, atol=1e-5, rtol=1e-5)


def test_unknown_parts_are_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="pooled_linear"):
        build_backend("nope", 8, 2)
    with pytest.raises(ValueError, match="already registered"):
        register_backend("pooled_linear", lambda i, n: nn.Linear(i, n))
    with pytest.raises(ValueError, match="frame features"):
        frontend_for_source("lfcc")
    with pytest.raises(ValueError, match="needs build"):
        register_frontend(FrontEnd("empty", "nothing"))
    assert frontend_for_source("tiny").name == "tiny"
    assert frontend_for_source("some-org/some-model").name == "pretrained"


def test_feature_frontends_give_frames_every_10_ms():
    wave = np.random.default_rng(0).normal(size=16_000).astype(np.float32) * 0.1
    for name in ("lfcc", "log_mel"):
        frames = FRONTENDS[name].features(wave, 16_000)
        assert frames.ndim == 2 and 95 <= frames.shape[0] <= 102 and np.isfinite(frames).all(), name


def test_a_custom_backend_saves_and_reloads_with_the_same_logits(tmp_path, monkeypatch):
    monkeypatch.setitem(backends.BACKENDS, "toy_max", lambda i, n: MaxPoolHead(i, n))
    loaded = load_model("tiny", backend="toy_max", seed=3)
    assert isinstance(loaded.model, Wav2Vec2WithBackend) and isinstance(loaded.model.backend, MaxPoolHead)
    save_model(loaded, tmp_path / "m")
    again = load_model(str(tmp_path / "m"))
    assert isinstance(again.model.backend, MaxPoolHead) and "back-end toy_max kept" in again.notes
    x = torch.randn(2, 8000)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model.eval()(x).logits, again.model.eval()(x).logits)


@pytest.mark.slow
def test_a_toy_backend_and_metric_flow_through_training_detector_score_and_service(
    toy_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    from fastapi.testclient import TestClient

    from deepfake_lib.cli.main import main
    from deepfake_lib.deploy import service
    from deepfake_lib.deploy.detector import Detector
    from deepfake_lib.modeling.training import fine_tune

    monkeypatch.setitem(backends.BACKENDS, "toy_max", lambda i, n: MaxPoolHead(i, n))
    with registered_metric(MARGIN):
        cfg = ExperimentConfig(
            data_source=str(toy_corpus),
            run_dir=str(tmp_path / "run"),
            backend="toy_max",
            epochs=1,
            batch_size=8,
            n_bootstrap=30,
            train_crop_s=1.0,
            augment_training=False,
            val_fraction=0.2,
            test_fraction=0.3,  # 7 utterance groups: enough for a grouped bootstrap
            device="cpu",
        )
        run = fine_tune(cfg)
        metrics = json.loads((run.run_dir / "metrics.json").read_text())
        test = metrics["test"]
        assert "eer" in test["ci"], test["ci"]
        assert "score_margin" in test and "score_margin" in test["ci"]
        assert metrics["metric_meanings"]["score_margin"] == MARGIN.meaning

        detector = Detector.from_source(str(run.run_dir), device="cpu")
        assert any("back-end toy_max" in note for note in detector.notes)
        wave = np.random.default_rng(0).normal(size=16_000).astype(np.float32) * 0.1
        predicted = detector.predict(wave, 16_000)

        assert (
            main(["score", "--scores", str(run.run_dir / "test_scores.csv"), "--n-bootstrap", "10", "--json"])
            == 0
        )
        assert "score_margin" in json.loads(capsys.readouterr().out)["pooled"]

        with TestClient(service.create_app(str(run.run_dir), device="cpu")) as client:
            served = client.get("/model").json()
            assert "score_margin" in served["metrics"]["values"]
            import io

            import soundfile as sf

            buf = io.BytesIO()
            sf.write(buf, wave, 16_000, format="WAV", subtype="FLOAT")
            response = client.post("/predict", files={"file": ("clip.wav", buf.getvalue(), "audio/wav")})
            assert response.status_code == 200
            assert response.json()["score"] == pytest.approx(predicted.score, abs=1e-4)
