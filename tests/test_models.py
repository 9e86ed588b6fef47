"""Model loading: the tiny default, label alignment by name, head re-initialisation, freezing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deepfake_lib.modeling.frontends import build_tiny_model
from deepfake_lib.modeling.loaded_model import count_parameters
from deepfake_lib.modeling.models import load_model, save_model


def _logits(model: torch.nn.Module, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    x = torch.randn(2, 16_000)
    model.eval()
    with torch.no_grad():
        return model(input_values=x).logits


def _save_with_labels(tmp_path: Path, id2label: dict[int, str]) -> tuple[Path, torch.Tensor]:
    tiny = build_tiny_model(seed=5)
    tiny.model.config.id2label = id2label
    tiny.model.config.label2id = {v: k for k, v in id2label.items()}
    folder = save_model(tiny, tmp_path / "ckpt")
    return folder, _logits(tiny.model)


def test_tiny_model_is_small_and_in_project_label_order() -> None:
    tiny = build_tiny_model()
    n = count_parameters(tiny.model)["total"]
    assert 100_000 < n < 1_000_000
    assert tiny.model.config.id2label == {0: "Fake", 1: "Real"}
    assert tiny.uses_attention_mask


def test_matching_labels_keep_the_head(tmp_path: Path) -> None:
    folder, before = _save_with_labels(tmp_path, {0: "fake", 1: "real"})
    loaded = load_model(str(folder))
    torch.testing.assert_close(_logits(loaded.model), before)
    assert any("head kept" in n for n in loaded.notes)


def test_reversed_labels_are_aligned_by_name_not_position(tmp_path: Path) -> None:
    folder, before = _save_with_labels(tmp_path, {0: "bonafide", 1: "spoof"})
    loaded = load_model(str(folder))
    torch.testing.assert_close(_logits(loaded.model), before[:, [1, 0]])
    assert loaded.model.config.id2label == {0: "Fake", 1: "Real"}
    assert any("reordered" in n for n in loaded.notes)


def test_unmatched_labels_reinitialise_the_head_and_say_so(tmp_path: Path) -> None:
    folder, before = _save_with_labels(tmp_path, {0: "LABEL_0", 1: "LABEL_1"})
    loaded = load_model(str(folder))
    assert not torch.allclose(_logits(loaded.model), before)
    assert any("re-initialised" in n for n in loaded.notes)


def test_freezing_options(tmp_path: Path) -> None:
    folder, _ = _save_with_labels(tmp_path, {0: "fake", 1: "real"})
    pretrained = load_model(str(folder))  # default: freeze the encoder of a pretrained checkpoint
    conv = pretrained.model.wav2vec2.feature_extractor
    assert not any(p.requires_grad for p in conv.parameters())
    tiny = load_model("tiny")  # random weights: the encoder must train
    assert all(p.requires_grad for p in tiny.model.wav2vec2.feature_extractor.parameters())
    head_only = load_model(str(folder), freeze_base=True)
    trainable = {n.split(".")[0] for n, p in head_only.model.named_parameters() if p.requires_grad}
    assert trainable == {"projector", "classifier"}
    weighted = load_model("tiny", use_weighted_layer_sum=True)
    assert weighted.model.config.use_weighted_layer_sum and hasattr(weighted.model, "layer_weights")


def test_unreachable_hub_id_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="no-such-owner/no-such-model"):
        load_model("no-such-owner/no-such-model")
