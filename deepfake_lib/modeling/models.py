"""Load a detector (Hub id, local folder, or the tiny offline default) with labels aligned by name.

Every model this module returns outputs logits in the project's label order,
``[Fake, Real]`` (index 1 = bona fide), whatever order its checkpoint used: a checkpoint whose
head says ``{0: "real", 1: "fake"}`` has its head rows permuted, never retrained. A head whose
names cannot be matched (e.g. ``LABEL_0``/``LABEL_1`` or a base model without a head) is
re-initialised, and :attr:`LoadedModel.notes` says so.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
)

from deepfake_lib import LABEL_NAMES, TARGET_SAMPLE_RATE
from deepfake_lib.config import resolve_source
from deepfake_lib.labels import align_label_ids

__all__ = [
    "build_tiny_model",
    "canonical_label_maps",
    "count_parameters",
    "load_model",
    "load_model_for",
    "LoadedModel",
    "MODEL_ID_FALLBACKS",
    "save_model",
    "STUDY_MODEL_ID",
    "TINY",
    "TINY_CONFIG",
]

log = logging.getLogger(__name__)

TINY = "tiny"
"""``model_source`` value for the small wav2vec2 trained from scratch (the offline default)."""
STUDY_MODEL_ID = "mo-thecreator/Deepfake-audio-detection"
"""The checkpoint as the original study names it."""
MODEL_ID_FALLBACKS: dict[str, str] = {STUDY_MODEL_ID: "motheecreator/Deepfake-audio-detection"}
"""Hub ids tried, with a warning, when the id asked for cannot be loaded (the Hub spells the
study checkpoint's owner ``motheecreator``)."""

TINY_CONFIG: dict[str, Any] = dict(
    conv_dim=(48, 48, 48, 48, 48, 48, 48),
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    conv_bias=True,
    feat_extract_activation="relu",  # GELU backward costs a quarter of a CPU step here
    feat_extract_norm="layer",
    do_stable_layer_norm=True,
    hidden_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=192,
    num_conv_pos_embeddings=32,
    num_conv_pos_embedding_groups=8,
    classifier_proj_size=96,
    hidden_dropout=0.1,
    activation_dropout=0.0,
    attention_dropout=0.0,
    feat_proj_dropout=0.0,
    final_dropout=0.1,
    layerdrop=0.0,
    mask_time_prob=0.05,
    mask_time_length=5,
)
"""Architecture of the tiny offline model: wav2vec2's conv encoder (20 ms frames) with narrow
layers, layer norm (trains from scratch where group norm stalls) and two transformer layers."""


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


def canonical_label_maps() -> tuple[dict[int, str], dict[str, int]]:
    """``id2label`` and ``label2id`` in the project's order (0 = Fake, 1 = Real)."""
    return dict(enumerate(LABEL_NAMES)), {n: i for i, n in enumerate(LABEL_NAMES)}


def build_tiny_model(*, seed: int = 0, use_weighted_layer_sum: bool = False, **overrides: Any) -> LoadedModel:
    """The offline default: a randomly initialised tiny wav2vec2 classifier (about 0.4 M params).

    ``overrides`` replace entries of :data:`TINY_CONFIG` (for experiments and tests).
    """
    id2label, label2id = canonical_label_maps()
    cfg = Wav2Vec2Config(
        **{**TINY_CONFIG, **overrides},
        num_labels=len(LABEL_NAMES),
        id2label=id2label,
        label2id=label2id,
        use_weighted_layer_sum=use_weighted_layer_sum,
    )
    torch.manual_seed(seed)
    model = AutoModelForAudioClassification.from_config(cfg)
    fe = Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=TARGET_SAMPLE_RATE,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    )
    return LoadedModel(
        model,
        fe,
        TINY,
        [f"tiny wav2vec2 from scratch, {count_parameters(model)['total']:,} parameters"],
        {int(k): str(v) for k, v in model.config.id2label.items()},
    )


def load_model(
    source: str = TINY,
    *,
    freeze_feature_encoder: bool | None = None,
    freeze_base: bool = False,
    use_weighted_layer_sum: bool = False,
    seed: int = 0,
    revision: str | None = None,
    keep_layers: int | None = None,
) -> LoadedModel:
    """Load a detector from ``"tiny"``, a Hub id or a local folder saved with ``save_pretrained``.

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
    """
    if keep_layers is not None and (isinstance(keep_layers, bool) or int(keep_layers) < 1):
        raise ValueError(f"keep_layers={keep_layers!r}: must be None or an integer >= 1")
    if source == TINY:
        n_tiny = int(TINY_CONFIG["num_hidden_layers"])
        if keep_layers is not None and keep_layers > n_tiny:
            raise ValueError(f"keep_layers={keep_layers}: the tiny model has {n_tiny} transformer layers")
        extra = {"num_hidden_layers": int(keep_layers)} if keep_layers is not None else {}
        loaded = build_tiny_model(seed=seed, use_weighted_layer_sum=use_weighted_layer_sum, **extra)
        pretrained = False
    else:
        loaded = _load_with_fallback(
            source,
            seed=seed,
            use_weighted_layer_sum=use_weighted_layer_sum,
            revision=revision,
            keep_layers=keep_layers,
        )
        pretrained = True
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
    }
    kwargs.update(overrides)
    return load_model(cfg.model_source, **kwargs)


def _load_with_fallback(source: str, **kwargs: Any) -> LoadedModel:
    """:func:`_load_pretrained` of ``source`` (a relative folder is looked up under the project root
    first); when that fails and :data:`MODEL_ID_FALLBACKS` knows another spelling, that one, with a
    warning and a note saying so."""
    try:
        return _load_pretrained(resolve_source(source), **kwargs)
    except ValueError as first:
        other = MODEL_ID_FALLBACKS.get(source)
        if other is None:
            raise
        log.warning("%s could not be loaded (%s); trying %s, the Hub's spelling", source, first, other)
        try:
            loaded = _load_pretrained(other, **kwargs)
        except ValueError as second:
            raise ValueError(
                f"{source} and its other spelling {other} both failed: {first}; {second}"
            ) from second
        loaded.notes.insert(0, f"{source} could not be loaded; loaded {other} instead (the Hub's spelling)")
        return loaded


def _load_pretrained(
    source: str,
    *,
    seed: int,
    use_weighted_layer_sum: bool,
    revision: str | None,
    keep_layers: int | None = None,
) -> LoadedModel:
    kwargs: dict[str, Any] = {"revision": revision} if revision else {}
    try:
        config = AutoConfig.from_pretrained(source, **kwargs)
        fe = AutoFeatureExtractor.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        where = "folder" if Path(source).exists() else "Hub id (is the network or HF_HUB_OFFLINE set?)"
        raise ValueError(
            f"{source}: cannot load a model config/feature extractor from this {where}: {exc}"
        ) from exc
    notes: list[str] = []
    id2label, label2id = canonical_label_maps()
    original = {str(k): int(v) for k, v in (config.label2id or {}).items()}
    checkpoint_id2label = {int(k): str(v) for k, v in (config.id2label or {}).items()}
    mapping = align_label_ids(LABEL_NAMES, original)
    had_layer_mix = bool(getattr(config, "use_weighted_layer_sum", False))
    if use_weighted_layer_sum:
        config.use_weighted_layer_sum = True
    resized: dict[str, Any] = {}
    n_layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    if keep_layers is not None and keep_layers != n_layers:
        if keep_layers > n_layers:
            raise ValueError(
                f"{source}: keep_layers={keep_layers} but the checkpoint has {n_layers} transformer layers"
            )
        config.num_hidden_layers = int(keep_layers)  # from_pretrained then builds and loads only the first N
        notes.append(f"first {keep_layers} of {n_layers} transformer layers kept")
        if getattr(config, "use_weighted_layer_sum", False):
            resized = {"ignore_mismatched_sizes": True}  # a saved layer mix has N + 1 weights no longer
    if mapping is None:
        config.num_labels = len(LABEL_NAMES)
        config.id2label, config.label2id = id2label, label2id
        torch.manual_seed(seed)
        model = AutoModelForAudioClassification.from_pretrained(
            source, config=config, ignore_mismatched_sizes=True, **kwargs
        )
        _reset_head(model)
        notes.append(
            f"head re-initialised: checkpoint labels {original} do not match {list(LABEL_NAMES)} by name"
        )
    else:
        model = AutoModelForAudioClassification.from_pretrained(source, config=config, **resized, **kwargs)
        perm = [mapping[i] for i in range(len(LABEL_NAMES))]  # our index -> checkpoint index
        if perm != list(range(len(perm))):
            _permute_head(model, perm)
            notes.append(
                f"head rows reordered by label name (checkpoint order {[config.id2label[p] for p in perm]})"
            )
        else:
            notes.append("checkpoint labels match by name; head kept")
        model.config.id2label, model.config.label2id = id2label, label2id
    if getattr(model.config, "use_weighted_layer_sum", False) and (not had_layer_mix or resized):
        # A layer mix the checkpoint lacks (or had for more layers) is not in the file, and
        # from_pretrained may leave such a parameter uninitialised (it came out NaN at times):
        # start from the equal mix the model class itself uses.
        with torch.no_grad():
            model.layer_weights.fill_(1.0 / model.layer_weights.numel())
        notes.append(f"layer mix of {model.layer_weights.numel()} hidden states starts equal")
    if getattr(fe, "sampling_rate", TARGET_SAMPLE_RATE) != TARGET_SAMPLE_RATE:
        raise ValueError(
            f"{source}: feature extractor expects {fe.sampling_rate} Hz, "
            f"the pipeline feeds {TARGET_SAMPLE_RATE} Hz"
        )
    return LoadedModel(model, fe, source, notes, checkpoint_id2label)


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


def save_model(loaded: LoadedModel, folder: str | os.PathLike[str]) -> Path:
    """Write the model (safetensors) and feature extractor with ``save_pretrained``."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    loaded.model.save_pretrained(out, safe_serialization=True)
    loaded.feature_extractor.save_pretrained(out)
    return out
