"""Detectors trained from scratch that are not wav2vec2: an LCNN on LFCC
(:mod:`~deepfake_lib.modeling.lcnn`) and a RawNet2-style raw-waveform network
(:mod:`~deepfake_lib.modeling.rawnet`), each with any back-end of
:mod:`~deepfake_lib.modeling.backends`.

:class:`ScratchNetForAudioClassification` is a Hugging Face ``PreTrainedModel`` with the same
interface as the wav2vec2 classifiers (``input_values`` [batch, samples] of normalised 16 kHz
audio, ``attention_mask``, ``labels`` -> logits [batch, 2] in the order ``[Fake, Real]``), so
``transformers.Trainer``, ``save_pretrained``, :class:`~deepfake_lib.deploy.detector.Detector`,
int8 and ONNX export take it unchanged. Its saved ``config.json`` says ``model_type``
:data:`MODEL_TYPE` and which ``encoder``; :func:`saved_scratch_encoder` reads that back so
:func:`~deepfake_lib.modeling.models.load_model` routes a saved folder to this class.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from deepfake_lib import LABEL_NAMES
from deepfake_lib.modeling.backends import DEFAULT_BACKEND, build_backend, classification_output
from deepfake_lib.modeling.lcnn import LcnnEncoder
from deepfake_lib.modeling.loaded_model import (
    LoadedModel,
    canonical_label_maps,
    count_parameters,
    normalising_feature_extractor,
)
from deepfake_lib.modeling.rawnet import RawNetEncoder

__all__ = [
    "ENCODERS",
    "MODEL_TYPE",
    "ScratchNetConfig",
    "ScratchNetForAudioClassification",
    "build_scratch_net",
    "saved_scratch_encoder",
]

MODEL_TYPE = "deepfake_lib_scratch_net"
"""``model_type`` in the saved ``config.json`` of these models."""

ENCODERS: dict[str, tuple[type[nn.Module], str]] = {
    "lcnn": (
        LcnnEncoder,
        "a light CNN (max-feature-map) on LFCC, the ASVspoof LFCC-LCNN baseline, from scratch",
    ),
    "rawnet": (
        RawNetEncoder,
        "a RawNet2-style raw-waveform network (sinc filters, residual 1-D blocks), from scratch",
    ),
}
"""Encoder name -> (module class, one-line description); the names are front-end names too."""


class ScratchNetConfig(PretrainedConfig):
    """Config of :class:`ScratchNetForAudioClassification`: ``encoder`` (a key of
    :data:`ENCODERS`) and ``backend`` (a key of :data:`~deepfake_lib.modeling.backends.BACKENDS`)."""

    model_type = MODEL_TYPE

    def __init__(self, encoder: str = "rawnet", backend: str = DEFAULT_BACKEND, **kwargs: Any) -> None:
        self.encoder = encoder
        self.backend = backend
        super().__init__(**kwargs)


class ScratchNetForAudioClassification(PreTrainedModel):
    """Encoder -> frame features -> back-end -> logits [batch, 2]."""

    config_class = ScratchNetConfig
    base_model_prefix = "encoder"
    main_input_name = "input_values"

    def __init__(self, config: ScratchNetConfig) -> None:
        super().__init__(config)
        if config.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {config.encoder!r}; known: {', '.join(sorted(ENCODERS))}")
        self.encoder = ENCODERS[config.encoder][0]()
        self.backend = build_backend(config.backend, self.encoder.output_size, config.num_labels)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Keep PyTorch's own initialisation (the modules set it when built)."""

    def freeze_base_model(self) -> None:
        """Train the back-end only."""
        for param in self.encoder.parameters():
            param.requires_grad = False

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        """``input_values`` [batch, samples] normalised 16 kHz audio, ``attention_mask`` [batch,
        samples] (1 on real samples); ``labels`` [batch] for the cross-entropy loss."""
        if attention_mask is None:
            lengths = torch.ones_like(input_values, dtype=torch.long).sum(dim=-1)
        else:
            lengths = attention_mask.sum(dim=-1).long()
        # Zeros after every clip: a clip shorter than the receptive field still gives a frame,
        # and no branch on the input's length (so ONNX export keeps the time axis dynamic); the
        # frames past each clip's own length are masked out of the back-end's pooling.
        padded = nn.functional.pad(input_values, (0, int(self.encoder.min_samples)))
        hidden = self.encoder(padded)
        valid = self.encoder.frame_counts(lengths).clamp_min(1)
        frame_mask = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0) < valid.unsqueeze(1)
        logits = self.backend(hidden, frame_mask)
        return classification_output(logits, labels)


def _load_saved(folder: Path) -> ScratchNetForAudioClassification:
    """The model saved in ``folder``: its config, then its weights loaded strictly (the network is
    built on the CPU first: the LFCC layer's filter banks cannot be built on the meta device that
    ``from_pretrained`` uses)."""
    config = ScratchNetConfig.from_pretrained(folder)
    model = ScratchNetForAudioClassification(config)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ValueError(f"{folder}: no model.safetensors beside config.json")
    try:
        model.load_state_dict(load_file(str(weights)), strict=True)
    except (RuntimeError, OSError, ValueError) as exc:
        raise ValueError(f"{weights}: not the weights of a {config.encoder} network: {exc}") from exc
    return model.eval()


def saved_scratch_encoder(source: str) -> str | None:
    """The ``encoder`` of a folder saved from :class:`ScratchNetForAudioClassification`, else None."""
    config = Path(source) / "config.json"
    if not config.is_file():
        return None
    try:
        saved = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("model_type") != MODEL_TYPE:
        return None
    return str(saved.get("encoder", ""))


def build_scratch_net(
    encoder: str, source: str, *, seed: int = 0, backend: str | None = None, **_: Any
) -> LoadedModel:
    """A fresh ``encoder`` network (``source`` is the encoder's name) or one saved in the folder
    ``source``, with the back-end ``backend`` (``None``: the saved one, or the default)."""
    saved = saved_scratch_encoder(source)
    id2label, label2id = canonical_label_maps()
    if saved is not None:
        model = _load_saved(Path(source))
        if list(model.config.id2label.values()) != list(LABEL_NAMES):
            raise ValueError(
                f"{source}: labels {model.config.id2label} are not in the order {list(LABEL_NAMES)}"
            )
        if backend is not None and backend != model.config.backend:
            raise ValueError(
                f"{source}: saved with back-end {model.config.backend!r}; a {encoder} network cannot swap "
                f"its back-end for {backend!r} on load (train a new one with backend={backend!r})"
            )
        notes = [f"{encoder} network loaded from {source}, back-end {model.config.backend}"]
    else:
        config = ScratchNetConfig(
            encoder=encoder,
            backend=backend or DEFAULT_BACKEND,
            num_labels=len(LABEL_NAMES),
            id2label=id2label,
            label2id=label2id,
        )
        torch.manual_seed(seed)
        model = ScratchNetForAudioClassification(config)
        notes = [
            f"{ENCODERS[encoder][1]}, back-end {config.backend}, {count_parameters(model)['total']:,} parameters"
        ]
    return LoadedModel(
        model, normalising_feature_extractor(), source, notes, {int(k): str(v) for k, v in id2label.items()}
    )
