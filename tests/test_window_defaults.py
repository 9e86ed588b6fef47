"""A run evaluated on 2 s windows is deployed on 2 s windows: its test scores, ``deepfake-detect``
and ``/predict`` give the same score for the same clip unless told another window."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from deepfake_lib.config import ExperimentConfig

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

EVAL_WINDOW_S = 2.0


@pytest.fixture(scope="module")
def windowed_run(toy_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch tiny run on the toy corpus (clips of 1 to 2.5 s) evaluated on 2 s windows."""
    from deepfake_lib.modeling.training import fine_tune

    cfg = ExperimentConfig(
        data_source=str(toy_corpus),
        run_dir=str(tmp_path_factory.mktemp("windowed") / "run"),
        epochs=1,
        batch_size=8,
        n_bootstrap=20,
        learning_rate=1e-3,
        train_crop_s=1.5,
        augment_training=False,
        val_fraction=0.2,
        test_fraction=0.2,
        eval_window_s=EVAL_WINDOW_S,
    )
    return fine_tune(cfg, shortcut_control=False, record_epoch_scores=False).run_dir


def longest_test_clip(run_dir: Path) -> tuple[str, np.ndarray]:
    """The id and 16 kHz waveform of the run's longest test clip (longer than one window)."""
    from deepfake_lib.corpora.experiment_data import prepare_data
    from deepfake_lib.corpora.sources import load_example_audio
    from deepfake_lib.runs import load_run_config

    test = prepare_data(load_run_config(run_dir))[0]["test"]
    waves = {cid: load_example_audio(test[i]) for i, cid in enumerate(test["clip_id"])}
    clip_id = max(waves, key=lambda c: waves[c].shape[0])
    return clip_id, waves[clip_id]


@pytest.mark.slow
def test_run_scores_cli_and_service_agree_on_the_runs_window(windowed_run: Path, tmp_path: Path) -> None:
    from deepfake_lib.cli.main import main_detect
    from deepfake_lib.deploy import service
    from deepfake_lib.deploy.detector import Detector

    clip_id, wave = longest_test_clip(windowed_run)
    assert wave.shape[0] > EVAL_WINDOW_S * 16_000, "the check needs a clip longer than one window"
    scores = pd.read_csv(windowed_run / "test_scores.csv", dtype={"clip_id": str})
    run_score = float(scores.loc[scores["clip_id"] == clip_id, "score"].iloc[0])
    clip = tmp_path / "clip.wav"
    sf.write(clip, wave, 16_000, subtype="FLOAT")  # lossless: the CLI and the service read the same samples

    out = tmp_path / "scores.csv"
    code = main_detect(
        [
            str(windowed_run),
            str(clip),
            "--out",
            str(out),
            "--runtime",
            "torch",
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    assert code == 0
    cli_score = float(next(csv.DictReader(io.StringIO(out.read_text())))["score"])

    app = service.create_app(str(windowed_run), runtime="torch", device="cpu")
    with TestClient(app) as client:
        info = client.get("/model").json()
        body = client.post("/predict", files={"file": ("clip.wav", clip.read_bytes(), "audio/wav")}).json()
    assert (info["window_s"], info["hop_s"]) == (EVAL_WINDOW_S, EVAL_WINDOW_S / 2)
    assert body["n_windows"] == 2
    assert cli_score == pytest.approx(run_score, abs=1e-5)
    assert body["score"] == pytest.approx(run_score, abs=1e-5)
    assert json.loads((windowed_run / "config.json").read_text())["eval_window_s"] == EVAL_WINDOW_S
    # the check can fail: the old default (4 s windows) scores this clip whole, differently
    whole = Detector.from_source(windowed_run, runtime="torch", device="cpu", window_s=4.0).predict(clip)
    assert whole.n_windows == 1 and abs(whole.score - run_score) > 1e-4


def test_serve_takes_the_same_scoring_flags_as_detect(monkeypatch) -> None:
    import uvicorn

    from deepfake_lib.cli import main as cli
    from deepfake_lib.cli import service as cli_service

    parser = cli.build_parser()
    detect = parser.parse_args(["detect", "m", "a.wav"])
    serve = parser.parse_args(["serve"])
    for flag in ("threshold", "window_s", "hop_s", "batch_size", "runtime", "device", "log_path"):
        assert getattr(detect, flag) == getattr(serve, flag), flag
    assert detect.window_s is None and detect.hop_s is None  # None: the run's own window and hop
    seen: dict = {}
    monkeypatch.setattr(cli_service, "create_app", lambda model, **kw: seen.update(kw, model=model) or "app")
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(uvicorn=kw))
    argv = ["serve", "--model", "runs/x", "--window-s", "2", "--hop-s", "0.5", "--batch-size", "3"]
    assert cli.main([*argv, "--threshold", "0.25", "--max-message-bytes", "5000"]) == 0
    assert (seen["window_s"], seen["hop_s"], seen["batch_size"], seen["threshold"]) == (2.0, 0.5, 3, 0.25)
    assert seen["stream_limits"].max_message_bytes == 5000 and seen["uvicorn"]["ws_max_size"] == 20_000
    assert seen["uvicorn"]["ws_max_queue"] == cli_service.WS_MAX_QUEUE
