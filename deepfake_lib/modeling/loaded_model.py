"""A loaded detector (model, feature extractor, what loading changed) and the head operations the loaders share: label maps in the project's order, reordering or resetting a Hugging Face head, parameter counts."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from transformers import Wav2Vec2FeatureExtractor

from deepfake_lib import LABEL_NAMES, TARGET_SAMPLE_RATE

__all__ = [
    "canonical_label_maps",
    "normalising_feature_extractor",
    "count_parameters",
    "LoadedModel",
]


@dataclasses.dataclass
class LoadedModel:
    """A classification model, its feature extractor, and what loading it changed."""

    model: Any
    feature_extractor: Any
    source: str
    notes: list[str] = dataclasses.field(default_factory=list)
    checkpoint_id2label: dict[int, str] = dataclasses.field(default_factory=dict)
    """The checkpoint's own ``id2label``, before labels were aligned to ``[Fake, Real]``."""

    @property
    def uses_attention_mask(self) -> bool:
        """Whether padded batches need an attention mask (layer-norm wav2vec2 variants do)."""
        return bool(getattr(self.feature_extractor, "return_attention_mask", False))


def normalising_feature_extractor() -> Wav2Vec2FeatureExtractor:
    """The feature extractor of the networks trained from scratch: 16 kHz mono, zero-mean
    unit-variance per clip, zero padding with an attention mask."""
    return Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=TARGET_SAMPLE_RATE,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    )


def canonical_label_maps() -> tuple[dict[int, str], dict[str, int]]:
    """``id2label`` and ``label2id`` in the project's order (0 = Fake, 1 = Real)."""
    return dict(enumerate(LABEL_NAMES)), {n: i for i, n in enumerate(LABEL_NAMES)}


def _classifier(model: Any) -> torch.nn.Linear:
    head = getattr(model, "classifier", None)
    if not isinstance(head, torch.nn.Linear):
        raise ValueError(f"{type(model).__name__}: expected a Linear `classifier` head")
    return head


def _permute_head(model: Any, perm: list[int]) -> None:
    """Reorder the output rows of the classifier so that row i is our label i."""
    head = _classifier(model)
    with torch.no_grad():
        head.weight.copy_(head.weight[perm].clone())
        if head.bias is not None:
            head.bias.copy_(head.bias[perm].clone())


def _reset_head(model: Any) -> None:
    for name in ("projector", "classifier"):
        layer = getattr(model, name, None)
        if isinstance(layer, torch.nn.Linear):
            layer.reset_parameters()


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """Total and trainable parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": int(total), "trainable": int(trainable)}
