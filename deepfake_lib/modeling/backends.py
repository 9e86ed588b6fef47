"""Back-ends: the classifier that turns a front-end's frame features into two logits, chosen by
name (``ExperimentConfig.backend``).

The contract a back-end meets, which training, :class:`~deepfake_lib.deploy.detector.Detector`,
export and the CPU runtimes rely on:

- it is an ``nn.Module`` built by a factory ``factory(input_size, num_labels) -> module``;
- ``forward(hidden, frame_mask)`` takes frame features ``hidden`` [batch, frames, input_size]
  (float) and ``frame_mask`` [batch, frames] (bool, True on real frames) or None (no padding),
  and returns logits [batch, num_labels] in the project's label order ``[Fake, Real]``;
- padded frames never change a clip's logits (a test pads a clip and compares);
- no Python control flow on tensor values, so ``torch.onnx`` can trace it; its ``nn.Linear``
  layers are what dynamic int8 quantisation (``--runtime int8`` and the mixed CPU runtime) turns
  into int8, everything else stays fp32;
- deterministic in ``eval()`` mode (dropout only in training).

What the loaders refuse: a checkpoint's own label order is matched by name and its rows permuted
only for the Hugging Face head (``pooled_linear`` on a wav2vec2-family checkpoint); a model saved
with another back-end must be in the project's label order (every run this project writes is).

Adding a back-end: write the module, then ``register_backend("name", factory)``; a config with
``backend="name"`` then trains, scores, exports and serves it with no other file touched (see
CONTRIBUTING.md and ``tests/test_registries.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

__all__ = [
    "BACKENDS",
    "classification_output",
    "DEFAULT_BACKEND",
    "AttentiveStatsPooling",
    "PooledLinear",
    "build_backend",
    "masked_mean",
    "register_backend",
]

BackendFactory = Callable[[int, int], nn.Module]

DEFAULT_BACKEND = "pooled_linear"
"""The Hugging Face audio-classification head: a linear projection, the mean over valid frames,
a linear classifier. On a wav2vec2-family model it is the checkpoint's own head."""


def classification_output(logits: torch.Tensor, labels: torch.Tensor | None) -> SequenceClassifierOutput:
    """A back-end's logits [batch, num_labels] with the cross-entropy loss when ``labels`` [batch]
    are given: what every network model of this package returns."""
    loss = None
    if labels is not None:
        loss = nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1))
    return SequenceClassifierOutput(loss=loss, logits=logits)


def masked_mean(hidden: torch.Tensor, frame_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the valid frames: ``hidden`` [batch, frames, dim] -> [batch, dim]."""
    if frame_mask is None:
        return hidden.mean(dim=1)
    weights = frame_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


class PooledLinear(nn.Module):
    """Projection, mean over valid frames, linear classifier (the Hugging Face head's layout)."""

    def __init__(self, input_size: int, num_labels: int, projection_size: int = 256) -> None:
        super().__init__()
        self.projector = nn.Linear(input_size, projection_size)
        self.classifier = nn.Linear(projection_size, num_labels)

    def forward(self, hidden: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """[batch, frames, input_size] -> logits [batch, num_labels]."""
        return self.classifier(masked_mean(self.projector(hidden), frame_mask))


class AttentiveStatsPooling(nn.Module):
    """Attentive statistics pooling (a learned weight per frame, then the weighted mean and
    standard deviation) and a linear classifier, as in speaker and spoofing x-vector heads."""

    def __init__(self, input_size: int, num_labels: int, attention_size: int = 64) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.Linear(input_size, attention_size), nn.Tanh(), nn.Linear(attention_size, 1)
        )
        self.classifier = nn.Linear(2 * input_size, num_labels)

    def forward(self, hidden: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """[batch, frames, input_size] -> logits [batch, num_labels]."""
        energy = self.attention(hidden).squeeze(-1)
        if frame_mask is not None:
            energy = energy.masked_fill(~frame_mask.bool(), torch.finfo(energy.dtype).min)
        weights = torch.softmax(energy, dim=1).unsqueeze(-1)
        mean = (weights * hidden).sum(dim=1)
        var = (weights * (hidden - mean.unsqueeze(1)) ** 2).sum(dim=1)
        return self.classifier(torch.cat([mean, torch.sqrt(var.clamp_min(1e-6))], dim=-1))


BACKENDS: dict[str, BackendFactory] = {
    DEFAULT_BACKEND: lambda input_size, num_labels: PooledLinear(input_size, num_labels),
    "attentive_stats": lambda input_size, num_labels: AttentiveStatsPooling(input_size, num_labels),
}
"""Back-end name -> factory. Change it only through :func:`register_backend`."""


def register_backend(name: str, factory: BackendFactory, *, replace: bool = False) -> None:
    """Make ``factory(input_size, num_labels)`` available as ``backend=name``."""
    if not name.isidentifier():
        raise ValueError(f"back-end name {name!r} must be an identifier (it is saved in model configs)")
    if name in BACKENDS and not replace:
        raise ValueError(f"back-end {name!r} is already registered (pass replace=True to change it)")
    BACKENDS[name] = factory


def build_backend(name: str, input_size: int, num_labels: int) -> nn.Module:
    """A fresh back-end module; ``ValueError`` naming the known back-ends for an unknown name."""
    if name not in BACKENDS:
        raise ValueError(f"unknown back-end {name!r}; registered: {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name](int(input_size), int(num_labels))
