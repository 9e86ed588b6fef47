"""Notebook 03's view of what fine_tune hides, on a tiny model made here."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepfake_lib.modeling.frontends import build_tiny_model
from deepfake_lib.notebook import inside


def test_labels_are_matched_by_name_and_a_swapped_head_is_reported():
    table = inside.label_mapping_table(["Fake", "Real"], {0: "fake", 1: "real"})
    assert table["checkpoint output"].tolist() == [0, 1] and table["matched by name"].all()
    assert "head is kept" in inside.describe_label_mapping(table)
    swapped = inside.label_mapping_table(["Fake", "Real"], {0: "REAL", 1: "spoof"})
    assert swapped["checkpoint output"].tolist() == [1, 0]
    assert "permutes the head" in inside.describe_label_mapping(swapped)
    unknown = inside.label_mapping_table(["Fake", "Real"], {0: "LABEL_0", 1: "LABEL_1"})
    assert not unknown["matched by name"].any() and "re-initialises" in inside.describe_label_mapping(unknown)


def test_parameter_table_counts_what_trains():
    loaded = build_tiny_model(seed=0)
    loaded.model.freeze_feature_encoder()
    table = inside.parameter_table(loaded.model).set_index("component")
    total = sum(p.numel() for p in loaded.model.parameters())
    assert table.loc["total", "parameters"] == total
    assert table.loc["wav2vec2.feature_extractor", "trainable"] == 0
    assert table.loc["total", "trainable"] == sum(
        p.numel() for p in loaded.model.parameters() if p.requires_grad
    )


def test_batch_preparation_shows_normalisation_and_padding():
    loaded = build_tiny_model(seed=0)
    rng = np.random.default_rng(0)
    short = (0.1 + 0.05 * rng.standard_normal(8000)).astype(np.float32)
    long = (0.2 * rng.standard_normal(16000)).astype(np.float32)
    table = inside.batch_preparation_table(loaded.feature_extractor, [short, long])
    assert table["samples out"].tolist() == [16000, 16000] and table["padded samples"].tolist() == [8000, 0]
    if loaded.feature_extractor.do_normalize:
        assert table.loc[0, "mean out (clip part)"] == pytest.approx(0.0, abs=1e-3)
        assert table.loc[0, "std out (clip part)"] == pytest.approx(1.0, abs=1e-2)
    assert table.loc[0, "mean in"] == pytest.approx(0.1, abs=0.01)


def test_training_arguments_table_reads_the_run_folder(tmp_path):
    (tmp_path / "training_args.json").write_text(
        json.dumps({"learning_rate": 5e-4, "output_dir": "/x", "seed": 0})
    )
    table = inside.training_arguments_table(tmp_path)
    assert table["argument"].tolist() == ["learning_rate", "seed"]  # no paths
