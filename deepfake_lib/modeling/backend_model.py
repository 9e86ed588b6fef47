"""A wav2vec2-family front-end with any registered back-end: the model class used when
``backend`` is not the checkpoint's own head.

The class keeps the Hugging Face layout (``wav2vec2`` base model, optional learned layer mix), so
``save_pretrained`` / ``from_pretrained``, ``transformers.Trainer``, ONNX export and the mixed CPU
runtime (which reaches ``base_model.feature_extractor`` and ``base_model.encoder.layers``) work
unchanged; only the head is the back-end's (:mod:`deepfake_lib.modeling.backends`). The saved
config records ``backend``; :func:`deepfake_lib.modeling.models.load_model` reads it back.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import Wav2Vec2Config, Wav2Vec2Model, Wav2Vec2PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from deepfake_lib.modeling.backends import DEFAULT_BACKEND, build_backend, classification_output

__all__ = ["Wav2Vec2WithBackend", "uses_custom_backend"]


def uses_custom_backend(config: Any) -> bool:
    """Whether a saved model config asks for a back-end other than the Hugging Face head."""
    return getattr(config, "backend", DEFAULT_BACKEND) != DEFAULT_BACKEND


class Wav2Vec2WithBackend(Wav2Vec2PreTrainedModel):
    """wav2vec2-family encoder -> frame features [batch, frames, hidden] -> back-end -> logits
    [batch, 2]. ``config.backend`` names the back-end (a key of
    :data:`~deepfake_lib.modeling.backends.BACKENDS`)."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__(config)
        self.wav2vec2 = Wav2Vec2Model(config)
        if config.use_weighted_layer_sum:
            n_layers = config.num_hidden_layers + 1  # transformer layers + input embeddings
            self.layer_weights = nn.Parameter(torch.ones(n_layers) / n_layers)
        self.backend = build_backend(
            getattr(config, "backend", DEFAULT_BACKEND), config.hidden_size, config.num_labels
        )
        self.post_init()

    def freeze_feature_encoder(self) -> None:
        """Stop training the convolutional feature encoder."""
        self.wav2vec2.feature_extractor._freeze_parameters()

    def freeze_base_model(self) -> None:
        """Train the back-end only."""
        for param in self.wav2vec2.parameters():
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
        weighted = bool(self.config.use_weighted_layer_sum)
        outputs = self.wav2vec2(input_values, attention_mask=attention_mask, output_hidden_states=weighted)
        if weighted:
            stacked = torch.stack(outputs.hidden_states, dim=1)
            mix = nn.functional.softmax(self.layer_weights, dim=-1).view(-1, 1, 1)
            hidden = (stacked * mix).sum(dim=1)
        else:
            hidden = outputs.last_hidden_state
        frame_mask = None
        if attention_mask is not None:
            frame_mask = self._get_feature_vector_attention_mask(hidden.shape[1], attention_mask)
        logits = self.backend(hidden, frame_mask)
        return classification_output(logits, labels)
