"""The Trainer layer: datasets, collator, scoring, selection on validation, run folder, resume, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from deepfake_lib.config import ExperimentConfig
from deepfake_lib.corpora.experiment_data import prepare_data
from deepfake_lib.evaluation.error_rates import selection_score
from deepfake_lib.modeling.baselines import SYSTEM_CONTROL_LR
from deepfake_lib.modeling.frontends import build_tiny_model
from deepfake_lib.modeling.training import (
    AudioCollator,
    ClipDataset,
    class_weights_for,
    cross_validate,
    fine_tune,
    history_table,
)
from deepfake_lib.runs import RUN_FILES, load_run, load_run_config, state_dict_checksum
from deepfake_lib.scoring import EvalClips, predict_logits
from deepfake_lib.torch_settings import resolve_precision


def toy_config(corpus: Path, run_dir: Path, **changes: object) -> ExperimentConfig:
    base = dict(
        data_source=str(corpus),
        run_dir=str(run_dir),
        epochs=2,
        batch_size=8,
        n_bootstrap=50,
        learning_rate=1e-3,
        train_crop_s=1.5,
        augment_training=False,
        val_fraction=0.2,
        test_fraction=0.2,
    )
    return ExperimentConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def splits(toy_corpus: Path) -> object:
    return prepare_data(toy_config(toy_corpus, Path("unused")))[0]


def test_collator_pads_dynamically_and_masks_only_when_asked() -> None:
    tiny = build_tiny_model()
    feats = [
        {"input_values": np.ones(1000, np.float32), "labels": 1},
        {"input_values": np.ones(600, np.float32), "labels": 0},
    ]
    batch = AudioCollator(tiny.feature_extractor)(feats)
    assert batch["input_values"].shape == (2, 1000) and batch["attention_mask"][1].sum() == 600
    assert batch["labels"].tolist() == [1, 0]
    fixed = AudioCollator(tiny.feature_extractor, pad_to_samples=1500)(feats)
    assert fixed["input_values"].shape == (2, 1500)
    from transformers import Wav2Vec2FeatureExtractor

    no_mask = AudioCollator(Wav2Vec2FeatureExtractor(return_attention_mask=False))(feats)
    assert "attention_mask" not in no_mask


def test_training_dataset_crops_and_augments_freshly_but_reproducibly(splits: object) -> None:
    a = ClipDataset(splits["train"], max_samples=8000, augment=True, seed=3)
    b = ClipDataset(splits["train"], max_samples=8000, augment=True, seed=3)
    first, second = a[0]["input_values"], a[0]["input_values"]
    assert len(first) <= 8000 and not np.array_equal(first, second)  # a new draw every epoch
    assert np.array_equal(first, b[0]["input_values"]) and np.array_equal(second, b[0]["input_values"])
    ev = EvalClips.from_split(splits["validation"])
    assert np.array_equal(ev[0]["input_values"], ev.load(0)) and len(ev[0]["input_values"]) > 8000


def test_class_weights_only_when_imbalanced() -> None:
    assert class_weights_for(np.array([0, 1, 0, 1])) is None
    w = class_weights_for(np.array([0, 0, 0, 0, 0, 0, 1, 1]))
    assert w is not None and w[1] > w[0] and torch.isclose(w[0] * 6, w[1] * 2)


def test_precision_rules() -> None:
    assert resolve_precision("auto", "cpu") == "fp32"
    with pytest.raises(ValueError, match="CUDA"):
        resolve_precision("fp16", "cpu")


def test_history_table_merges_train_and_eval_logs() -> None:
    log = [
        {"loss": 0.7, "learning_rate": 1e-3, "epoch": 1.0, "step": 3},
        {"eval_eer": 0.4, "eval_loss": 0.69, "epoch": 1.0},
        {"loss": 0.5, "learning_rate": 5e-4, "epoch": 2.0},
        {"eval_eer": 0.2, "eval_loss": 0.6, "epoch": 2.0},
    ]
    table = history_table(log)
    assert table["epoch"].tolist() == [1, 2] and table["eval_eer"].tolist() == [0.4, 0.2]
    assert table["train_loss"].tolist() == [0.7, 0.5]


def test_selection_prefers_lower_eer_and_breaks_ties_by_auc() -> None:
    one_clip = 1 / 45  # one clip of 45 per class: the smallest EER step on the default validation split
    assert selection_score(0.10, 0.90) < selection_score(0.10 + one_clip, 1.0)  # a real EER gain always wins
    assert selection_score(0.10, 0.97) < selection_score(0.10, 0.96)  # among tied EERs, the higher AUC
    assert selection_score(0.0, 1.0) == 0.0


def test_scores_do_not_depend_on_batch_composition(splits: object) -> None:
    tiny = build_tiny_model(seed=1)
    ds = EvalClips.from_split(splits["test"])
    together = predict_logits(tiny.model, tiny.feature_extractor, ds, batch_size=8)
    alone = predict_logits(tiny.model, tiny.feature_extractor, ds, batch_size=1)
    assert together.shape == (len(ds), 2)
    np.testing.assert_allclose(together, alone, atol=2e-4)
    windows = predict_logits(tiny.model, tiny.feature_extractor, ds, batch_size=4, window_s=0.5)
    assert windows.shape == together.shape and not np.allclose(windows, together)


@pytest.mark.slow
def test_fine_tune_writes_the_run_folder_and_learns(toy_corpus: Path, tmp_path: Path) -> None:
    cfg = toy_config(toy_corpus, tmp_path / "run", epochs=6, patience=6)
    result = fine_tune(cfg)
    for key in ("config", "splits", "history", "validation_scores", "test_scores", "epoch_scores", "metrics"):
        assert (result.run_dir / RUN_FILES[key]).is_file(), key
    assert (result.model_dir / "model.safetensors").is_file() and (
        result.model_dir / "preprocessor_config.json"
    ).is_file()
    m = json.loads((result.run_dir / "metrics.json").read_text())
    assert m["threshold"]["chosen_on"] == "validation EER"
    assert {"eer", "auc", "accuracy", "ci", "confusion_matrix"} <= set(m["test"])
    # the field-standard metrics, with intervals, Cllr on LLRs (the training prior removed), meanings
    new = {"min_dcf", "act_dcf", "cllr", "min_cllr"}
    assert new <= set(m["test"]) and new <= set(m["test"]["ci"]) and "degenerate" in m["test"]["ci"]
    train_labels = np.asarray(prepare_data(cfg)[0]["train"]["label"])
    assert m["test"]["cllr_prior_real"] in (0.5, pytest.approx(float(train_labels.mean())))
    assert m["test"]["act_dcf_threshold"] == pytest.approx(m["threshold"]["value"])
    assert new | {"eer", "auc"} <= set(m["metric_meanings"])
    assert (
        m["shortcut_control"]["system"] == SYSTEM_CONTROL_LR and m["shortcut_control"]["n"] == m["test"]["n"]
    )
    assert m["caveat"] == ""
    # the selected epoch is the best validation epoch (lowest EER, ties broken by the highest AUC)
    h = result.history
    tied = h[h["eval_eer"] == h["eval_eer"].min()]
    assert m["best_epoch"] == int(tied.loc[tied["eval_auc"].idxmax(), "epoch"])
    assert m["test"]["eer"] <= 0.25, f"the toy task should be learnt, test EER {m['test']['eer']}"
    scores = pd.read_csv(result.run_dir / "test_scores.csv")
    assert {"clip_id", "label", "score", "prob_real", "attack", "utterance_id"} <= set(scores.columns)
    assert load_run(result.run_dir).metrics == m
    assert load_run_config(result.run_dir) == cfg


@pytest.mark.slow
def test_selection_never_sees_the_test_split(toy_corpus: Path, tmp_path: Path) -> None:
    """Same train and validation, different test clips: the same model is selected."""
    import datasets

    cfg = toy_config(toy_corpus, tmp_path / "a", epochs=3)
    splits, _ = prepare_data(cfg)
    other_test = splits["test"].map(lambda b: {"label": [1 - y for y in b["label"]]}, batched=True)
    runs = []
    for name, test in (("a", splits["test"]), ("b", other_test)):
        data = datasets.DatasetDict(
            {"train": splits["train"], "validation": splits["validation"], "test": test}
        )
        runs.append(fine_tune(cfg, data=data, run_dir=tmp_path / name, shortcut_control=False))
    assert runs[0].metrics["best_epoch"] == runs[1].metrics["best_epoch"]
    assert runs[0].metrics["model_checksum"] == runs[1].metrics["model_checksum"]
    assert runs[0].metrics["test"]["eer"] != runs[1].metrics["test"]["eer"]


@pytest.mark.slow
def test_resume_continues_from_the_last_checkpoint(toy_corpus: Path, tmp_path: Path) -> None:
    cfg = toy_config(toy_corpus, tmp_path / "run", epochs=1, patience=5)
    fine_tune(cfg, shortcut_control=False, record_epoch_scores=False)
    resumed = fine_tune(cfg.replace(epochs=2, resume=True), shortcut_control=False, record_epoch_scores=False)
    assert resumed.history["epoch"].tolist() == [1, 2]


@pytest.mark.slow
def test_cross_validation_tests_every_clip_once(toy_corpus: Path, tmp_path: Path) -> None:
    cfg = toy_config(toy_corpus, tmp_path / "cv", epochs=1)
    table = cross_validate(cfg, n_folds=3)
    folds = table[table["fold"].isin(["0", "1", "2"])]
    assert folds["n_test"].sum() == 48
    assert set(table["fold"]) == {"0", "1", "2", "mean", "std"}
    assert (tmp_path / "cv" / "cv" / "folds.csv").is_file()


@pytest.mark.slow
def test_ddp_two_cpu_ranks_finish_and_rank0_saves_its_model(toy_corpus: Path, tmp_path: Path) -> None:
    params = tmp_path / "ddp.yaml"
    params.write_text(
        f"data_source: {toy_corpus}\nrun_dir: {tmp_path / 'ddp'}\nepochs: 1\nbatch_size: 4\n"
        "n_bootstrap: 20\naugment_training: false\ntrain_crop_s: 1.0\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "deepfake_lib.cli",
            "train",
            "--params",
            str(params),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "rank 0 of 2 finished" in out.stdout and "rank 1 of 2 finished" in out.stdout
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    from deepfake_lib.modeling.models import load_model

    saved = load_model(str(tmp_path / "ddp" / "model"))
    assert state_dict_checksum(saved.model) == metrics["model_checksum"]
