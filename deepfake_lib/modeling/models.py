"""Load a detector (Hub id, local folder, or the tiny offline default) with labels aligned by name.

Every model this module returns outputs logits in the project's label order,
``[Fake, Real]`` (index 1 = bona fide), whatever order its checkpoint used: a checkpoint whose
head says ``{0: "real", 1: "fake"}`` has its head rows permuted, never retrained. A head whose
names cannot be matched (e.g. ``LABEL_0``/``LABEL_1`` or a base model without a head) is
re-initialised, and :attr:`LoadedModel.notes` says so.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from deepfake_lib.modeling.frontends import MODEL_ID_FALLBACKS, STUDY_MODEL_ID, TINY, frontend_for_source
from deepfake_lib.modeling.loaded_model import (
    LoadedModel,
    count_parameters,
)

__all__ = [
    "MODEL_ID_FALLBACKS",
    "STUDY_MODEL_ID",
    "load_model",
    "load_model_for",
    "save_model",
]


log = logging.getLogger(__name__)


def load_model(
    source: str = TINY,
    *,
    freeze_feature_encoder: bool | None = None,
    freeze_base: bool = False,
    use_weighted_layer_sum: bool = False,
    seed: int = 0,
    revision: str | None = None,
    keep_layers: int | None = None,
    backend: str | None = None,
) -> LoadedModel:
    """Load a detector from ``"tiny"``, a Hub id or a local folder saved with ``save_pretrained``:
    the one place where a source becomes a model (the front-end of
    :func:`~deepfake_lib.modeling.frontends.frontend_for_source` with a back-end of
    :data:`~deepfake_lib.modeling.backends.BACKENDS`).

    Args:
        source: ``"tiny"``, e.g. ``"mo-thecreator/Deepfake-audio-detection"``, or a folder.
        freeze_feature_encoder: freeze the conv feature encoder; ``None`` freezes it for
            pretrained checkpoints and trains it for the tiny model (random weights).
        freeze_base: train only the classification head.
        use_weighted_layer_sum: classify from a learned mix of all hidden layers.
        seed: seed for any freshly initialised weights.
        revision: Hub revision, for reproducible Hub runs.
        keep_layers: keep only the first N transformer layers (``None``: all). The saved
            config records N (``num_hidden_layers``), so a saved model reloads with the same N.
        backend: the classifier head by name; ``None`` keeps the one a saved model has (the
            Hugging Face head, ``"pooled_linear"``, for a checkpoint and for ``"tiny"``).
    """
    if keep_layers is not None and (isinstance(keep_layers, bool) or int(keep_layers) < 1):
        raise ValueError(f"keep_layers={keep_layers!r}: must be None or an integer >= 1")
    frontend = frontend_for_source(source)
    loaded = frontend.build(
        source,
        seed=seed,
        use_weighted_layer_sum=use_weighted_layer_sum,
        revision=revision,
        keep_layers=keep_layers,
        backend=backend,
    )
    pretrained = frontend.name == "pretrained"  # the from-scratch front-ends train every layer
    model = loaded.model
    if freeze_feature_encoder is None:
        freeze_feature_encoder = pretrained
    if freeze_feature_encoder and hasattr(model, "freeze_feature_encoder"):
        model.freeze_feature_encoder()
        loaded.notes.append("feature encoder frozen")
    if freeze_base:
        base = getattr(model, "freeze_base_model", None)
        if base is None:
            raise ValueError(f"{source}: this architecture cannot freeze its base model")
        base()
        loaded.notes.append("base model frozen: training the head only")
    counts = count_parameters(model)
    loaded.notes.append(f"{counts['trainable']:,} of {counts['total']:,} parameters trainable")
    return loaded


def load_model_for(cfg: Any, **overrides: Any) -> LoadedModel:
    """:func:`load_model` with the model parameters of an
    :class:`~deepfake_lib.config.ExperimentConfig` (``overrides`` replace any of them)."""
    kwargs: dict[str, Any] = {
        "freeze_feature_encoder": cfg.freeze_feature_encoder,
        "freeze_base": cfg.freeze_base,
        "use_weighted_layer_sum": cfg.use_weighted_layer_sum,
        "keep_layers": cfg.keep_layers,
        "seed": cfg.seed,
        "backend": cfg.backend,
    }
    kwargs.update(overrides)
    return load_model(cfg.model_source, **kwargs)


def save_model(loaded: LoadedModel, folder: str | os.PathLike[str]) -> Path:
    """Write the model (safetensors) and feature extractor with ``save_pretrained``."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    loaded.model.save_pretrained(out, safe_serialization=True)
    loaded.feature_extractor.save_pretrained(out)
    return out
