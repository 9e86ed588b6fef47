"""The rehearsal's stand-ins load through the Hub code path; the real configuration trains on them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from deepfake_lib import LABEL_NAMES
from deepfake_lib.notebook import rehearsal

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=(32,) * 7,
    classifier_proj_size=16,
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
)
"""Narrow layers for the fast tests only; the slow test keeps the full wav2vec2-base sizes."""


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_rehearsal_params_differ_from_colab_t4_only_in_sources_and_epoch_cap() -> None:
    colab = yaml.safe_load((ROOT / "params" / "colab_t4.yaml").read_text())
    rehearse = yaml.safe_load((ROOT / "params" / "rehearsal.yaml").read_text())
    assert set(rehearse) == set(colab), "rehearsal.yaml must set every key colab_t4.yaml sets, and no other"
    differing = {k for k in colab if colab[k] != rehearse[k]}
    assert differing <= {"data_source", "model_source", "epochs", "run_dir"}
    assert {"data_source", "model_source"} <= differing
    assert rehearse["epochs"] <= colab["epochs"]


def test_rehearsal_params_validate_as_an_experiment_config() -> None:
    from deepfake_lib.config import ExperimentConfig

    cfg = ExperimentConfig.from_yaml(ROOT / "params" / "rehearsal.yaml")
    assert cfg.freeze_feature_encoder is True and cfg.precision == "auto" and cfg.eval_window_s == 4.0


def test_reference_config_is_wav2vec2_base_with_a_two_class_head() -> None:
    from transformers import Wav2Vec2Config

    cfg = Wav2Vec2Config(**rehearsal.REFERENCE_CONFIG)
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size) == (
        768,
        12,
        12,
        3072,
    )
    assert cfg.feat_extract_norm == "group" and not cfg.do_stable_layer_norm and not cfg.conv_bias
    assert sorted(rehearsal.REFERENCE_ID2LABEL) == [0, 1]
    assert rehearsal.REFERENCE_FEATURE_EXTRACTOR["return_attention_mask"] is False


def test_hemg_standin_loads_through_the_hub_code_path(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from deepfake_lib.corpora.source_kinds import detect_source_kind
    from deepfake_lib.corpora.sources import load_source

    folder = rehearsal.build_hemg_dataset(tmp_path / "hemg", n_rows=4, clip_s=1.5, seed=3)
    assert pq.read_schema(folder / "data" / "train-00000-of-00001.parquet").names == ["audio", "label"]
    assert detect_source_kind(str(folder)) == "hub"  # the datasets.load_dataset(<id or folder>) branch
    dd, report = load_source(str(folder))
    train = dd["train"]
    assert report.n_rows == 4 and list(train.features["label"].names) == list(LABEL_NAMES)
    assert sorted(train["label"]) == [0, 0, 1, 1]
    assert all(1.0 <= d <= 2.0 for d in train["duration"])
    assert rehearsal.check_standin(folder)["n_rows"] == 4


def test_hemg_standin_refuses_odd_row_counts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        rehearsal.build_hemg_dataset(tmp_path, n_rows=5)


def test_incomplete_standin_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    with pytest.raises(rehearsal.StandinError, match="model"):
        rehearsal.check_standin(tmp_path / "model")
    params = tmp_path / "p.yaml"
    params.write_text(f"data_source: {tmp_path / 'data'}\nmodel_source: {tmp_path / 'model'}\n")
    with pytest.raises(rehearsal.StandinError, match="data"):
        rehearsal.resolve_source_paths(params)


def test_checkpoint_labels_are_aligned_by_name_not_position(tmp_path: Path) -> None:
    """A head saved as {0: real, 1: fake} is permuted, never re-initialised, so its logits survive."""
    from transformers import AutoModelForAudioClassification

    from deepfake_lib.modeling.models import load_model

    folder = rehearsal.build_checkpoint(tmp_path / "reversed", id2label={0: "real", 1: "fake"}, **SMALL)
    original = AutoModelForAudioClassification.from_pretrained(folder).eval()
    loaded = load_model(str(folder))
    assert any("reordered by label name" in n for n in loaded.notes), loaded.notes
    assert loaded.model.config.id2label == dict(enumerate(LABEL_NAMES))
    wave = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 16_000)).astype(np.float32))
    with torch.no_grad():
        before = original(wave).logits
        after = loaded.model.eval()(wave).logits
    torch.testing.assert_close(after, before[:, [1, 0]])


def test_reference_labels_match_the_dataset_names_and_keep_the_head(tmp_path: Path) -> None:
    from deepfake_lib.modeling.models import load_model

    folder = rehearsal.build_checkpoint(tmp_path / "ref", **SMALL)
    loaded = load_model(str(folder))
    assert "checkpoint labels match by name; head kept" in loaded.notes
    assert loaded.uses_attention_mask is False  # wav2vec2-base is fed zero padding without a mask


@pytest.mark.slow
def test_real_configuration_trains_one_step_and_evaluates_on_the_standins(tmp_path: Path) -> None:
    """The full-size wav2vec2-base stand-in, colab_t4's parameters (batch 8 x 4 s crops, accumulation 2,
    frozen encoder, 4 s evaluation windows) through fine_tune: one optimiser update, one evaluation."""
    from deepfake_lib.config import ExperimentConfig
    from deepfake_lib.modeling.training import fine_tune

    data = rehearsal.build_hemg_dataset(tmp_path / "data", n_rows=12, clip_s=rehearsal.HEMG_CLIP_S)
    model = rehearsal.build_checkpoint(tmp_path / "model")
    cfg = ExperimentConfig.from_yaml(ROOT / "params" / "rehearsal.yaml").replace(
        data_source=str(data),
        model_source=str(model),
        run_dir=str(tmp_path / "run"),
        epochs=1,
        n_bootstrap=20,
        num_workers=0,
    )
    result = fine_tune(cfg, record_epoch_scores=False, shortcut_control=False)
    m = result.metrics
    assert (
        "checkpoint labels match by name; head kept" in m["notes"] and "feature encoder frozen" in m["notes"]
    )
    assert 94_000_000 < m["n_parameters"]["total"] < 95_000_000
    assert m["n_parameters"]["trainable"] < m["n_parameters"]["total"] - 4_000_000  # conv encoder frozen
    assert m["precision"] == "fp32" and m["epochs_run"] == 1
    assert len(result.history) == 1 and np.isfinite(result.history["eval_loss"]).all()
    assert len(result.test_scores) == m["n_clips"]["test"] and np.isfinite(result.test_scores["score"]).all()
    saved = json.loads((result.model_dir / "config.json").read_text())
    assert saved["id2label"] == {"0": "Fake", "1": "Real"}
