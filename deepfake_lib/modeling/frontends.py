"""Front-ends, chosen by name: what turns 16 kHz audio into frame features.

- Network front-ends build a trainable model whose head is a back-end
  (:mod:`~deepfake_lib.modeling.backends`): ``tiny`` (a small wav2vec2 from scratch, the offline
  default), ``pretrained`` (any wav2vec2-family checkpoint: a Hub id or a folder saved with
  ``save_pretrained``), and the from-scratch ``lcnn`` (LCNN on LFCC) and ``rawnet``
  (RawNet2-style, raw waveform) of :mod:`~deepfake_lib.modeling.scratch_nets`. ``model_source``
  picks one: a front-end's name, or anything else (a checkpoint folder or Hub id; a folder saved
  from ``lcnn`` or ``rawnet`` goes back to its own front-end).
- Feature front-ends (``lfcc``, ``log_mel``) give frame features [frames, dims] of 16 kHz audio
  for the classical back-ends of :mod:`~deepfake_lib.modeling.baselines`.

Adding a front-end: ``register_frontend(FrontEnd(name, description, build=...))`` for a network
(``build(source, *, seed, use_weighted_layer_sum, revision, keep_layers, backend) -> LoadedModel``)
or ``features=...`` for frame features; see CONTRIBUTING.md.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import torch
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    Wav2Vec2Config,
)

from deepfake_lib import LABEL_NAMES, TARGET_SAMPLE_RATE
from deepfake_lib.config import resolve_source
from deepfake_lib.labels import align_label_ids
from deepfake_lib.modeling.backend_model import Wav2Vec2WithBackend
from deepfake_lib.modeling.backends import DEFAULT_BACKEND
from deepfake_lib.modeling.lfcc import extract_lfcc_frames
from deepfake_lib.modeling.loaded_model import (
    LoadedModel,
    _permute_head,
    _reset_head,
    canonical_label_maps,
    count_parameters,
    normalising_feature_extractor,
)
from deepfake_lib.modeling.scratch_nets import ENCODERS, build_scratch_net, saved_scratch_encoder

__all__ = [
    "build_tiny_model",
    "extract_log_mel_frames",
    "FrontEnd",
    "frontend_for_source",
    "FRONTENDS",
    "MODEL_ID_FALLBACKS",
    "MODEL_NAMES",
    "model_name",
    "register_frontend",
    "STUDY_MODEL_ID",
    "TINY",
    "TINY_CONFIG",
]


TINY = "tiny"
"""``model_source`` value for the small wav2vec2 trained from scratch (the offline default)."""

log = logging.getLogger(__name__)

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


def build_tiny_model(
    *, seed: int = 0, use_weighted_layer_sum: bool = False, backend: str = DEFAULT_BACKEND, **overrides: Any
) -> LoadedModel:
    """The offline default: a randomly initialised tiny wav2vec2 classifier (about 0.4 M params)
    with the back-end ``backend``.

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
    if backend == DEFAULT_BACKEND:
        model = AutoModelForAudioClassification.from_config(cfg)
    else:
        cfg.backend = backend
        cfg.architectures = [Wav2Vec2WithBackend.__name__]
        model = Wav2Vec2WithBackend(cfg)
    fe = normalising_feature_extractor()
    return LoadedModel(
        model,
        fe,
        TINY,
        [f"tiny wav2vec2 from scratch, back-end {backend}, {count_parameters(model)['total']:,} parameters"],
        {int(k): str(v) for k, v in model.config.id2label.items()},
    )


def _load_pretrained(
    source: str,
    *,
    seed: int,
    use_weighted_layer_sum: bool,
    revision: str | None,
    keep_layers: int | None = None,
    backend: str | None = None,
) -> LoadedModel:
    """A wav2vec2-family checkpoint (Hub id or folder) with its head aligned by label name, or a
    fresh ``backend`` head when one other than the checkpoint's is asked for (``None``: the
    back-end the checkpoint was saved with)."""
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
    saved_backend = getattr(config, "backend", DEFAULT_BACKEND)
    wanted = saved_backend if backend is None else backend
    if wanted != DEFAULT_BACKEND or saved_backend != DEFAULT_BACKEND:
        model = _load_with_backend(
            source, config, wanted, saved_backend, mapping, seed=seed, notes=notes, **resized, **kwargs
        )
    elif mapping is None:
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


def _load_with_backend(
    source: str,
    config: Any,
    wanted: str,
    saved: str,
    mapping: dict[int, int] | None,
    *,
    seed: int,
    notes: list[str],
    **kwargs: Any,
) -> Any:
    """A checkpoint loaded into :class:`Wav2Vec2WithBackend` (or, for the default head asked of a
    model saved with another back-end, into the Hugging Face class with a fresh head)."""
    id2label, label2id = canonical_label_maps()
    if wanted == saved:
        if mapping is None or any(mapping[i] != i for i in mapping):
            raise ValueError(
                f"{source}: saved with back-end {saved!r} but labels {dict(config.label2id)} are not in the "
                f"order {list(LABEL_NAMES)}; only the Hugging Face head can be reordered by name"
            )
        notes.append(f"back-end {saved} kept")
        return Wav2Vec2WithBackend.from_pretrained(source, config=config, **kwargs)
    config.num_labels = len(LABEL_NAMES)
    config.id2label, config.label2id = id2label, label2id
    config.backend = wanted
    torch.manual_seed(seed)
    kwargs["ignore_mismatched_sizes"] = True
    if wanted == DEFAULT_BACKEND:
        model = AutoModelForAudioClassification.from_pretrained(source, config=config, **kwargs)
        _reset_head(model)
    else:
        config.architectures = [Wav2Vec2WithBackend.__name__]
        model = Wav2Vec2WithBackend.from_pretrained(source, config=config, **kwargs)
    notes.append(f"head re-initialised: back-end {wanted} asked of a checkpoint saved with {saved}")
    return model


@dataclasses.dataclass(frozen=True)
class FrontEnd:
    """One front-end: a network (``build``) or frame features (``features``), with a one-line
    description."""

    name: str
    description: str
    build: Callable[..., LoadedModel] | None = None
    features: Callable[[np.ndarray, int], np.ndarray] | None = None


def extract_log_mel_frames(
    wave_16k: np.ndarray, sample_rate: int = TARGET_SAMPLE_RATE, n_mels: int = 40
) -> np.ndarray:
    """Log-mel energies (dB): [frames, n_mels] float32, 25 ms Hann frames every 10 ms."""
    mel = librosa.feature.melspectrogram(
        y=np.asarray(wave_16k, dtype=np.float32),
        sr=int(sample_rate),
        n_fft=512,
        win_length=int(0.025 * sample_rate),
        hop_length=int(0.010 * sample_rate),
        n_mels=int(n_mels),
    )
    return librosa.power_to_db(mel, ref=1.0, top_db=None).T.astype(np.float32)


FRONTENDS: dict[str, FrontEnd] = {}
"""Front-end name -> :class:`FrontEnd`. Change it only through :func:`register_frontend`."""


def register_frontend(frontend: FrontEnd, *, replace: bool = False) -> FrontEnd:
    """Add a front-end; it needs ``build`` or ``features``; a name already there is refused
    unless ``replace``."""
    if frontend.build is None and frontend.features is None:
        raise ValueError(f"front-end {frontend.name!r} needs build (a network) or features (frame features)")
    if frontend.name in FRONTENDS and not replace:
        raise ValueError(
            f"front-end {frontend.name!r} is already registered (pass replace=True to change it)"
        )
    FRONTENDS[frontend.name] = frontend
    return frontend


def frontend_for_source(model_source: str) -> FrontEnd:
    """The network front-end that ``model_source`` names: ``"tiny"``, a registered network
    front-end's name, a folder saved from one of the from-scratch networks of
    :mod:`~deepfake_lib.modeling.scratch_nets` (its own front-end), or else ``pretrained`` (a Hub
    id or a folder)."""
    named = FRONTENDS.get(model_source)
    saved = saved_scratch_encoder(resolve_source(model_source)) if named is None else None
    if saved is not None:  # a folder saved from an LCNN or RawNet front-end
        if saved not in FRONTENDS:
            raise ValueError(f"{model_source}: saved with encoder {saved!r}, which no front-end registers")
        return FRONTENDS[saved]
    if named is not None and named.build is not None:
        return named
    if named is not None:
        raise ValueError(
            f"front-end {model_source!r} gives frame features for the classical baselines; "
            f"model_source needs a network: {', '.join(sorted(k for k, f in FRONTENDS.items() if f.build))}"
        )
    return FRONTENDS["pretrained"]


MODEL_NAMES: dict[str, str] = {
    TINY: "tiny wav2vec2 trained from scratch",
    "lcnn": "LCNN on LFCC trained from scratch",
    "rawnet": "RawNet2-style network trained from scratch",
    "pretrained": "fine-tuned wav2vec2",
}
"""Network front-end -> the name tables and prose give a model built on it."""


def model_name(model_source: str) -> str:
    """What a model trained from ``model_source`` is, in words (e.g. ``"fine-tuned wav2vec2"``)."""
    frontend = frontend_for_source(str(model_source))
    return MODEL_NAMES.get(frontend.name, f"{frontend.name} network")


def _build_tiny(
    source: str,
    *,
    seed: int,
    use_weighted_layer_sum: bool,
    revision: str | None,
    keep_layers: int | None,
    backend: str | None,
) -> LoadedModel:
    n_tiny = int(TINY_CONFIG["num_hidden_layers"])
    if keep_layers is not None and keep_layers > n_tiny:
        raise ValueError(f"keep_layers={keep_layers}: the tiny model has {n_tiny} transformer layers")
    extra = {"num_hidden_layers": int(keep_layers)} if keep_layers is not None else {}
    return build_tiny_model(
        seed=seed, use_weighted_layer_sum=use_weighted_layer_sum, backend=backend or DEFAULT_BACKEND, **extra
    )


for _frontend in (
    FrontEnd(TINY, "a small wav2vec2 trained from scratch (the offline default)", build=_build_tiny),
    FrontEnd(
        "pretrained",
        "a wav2vec2-family checkpoint: a Hub id or a folder saved with save_pretrained",
        build=lambda source, **kw: _load_with_fallback(source, **kw),
    ),
    *(
        FrontEnd(
            name,
            description,
            build=lambda source, _name=name, **kw: build_scratch_net(_name, resolve_source(source), **kw),
        )
        for name, (_, description) in ENCODERS.items()
    ),
    FrontEnd(
        "lfcc",
        "linear-frequency cepstral coefficients and their deltas, 10 ms frames",
        features=extract_lfcc_frames,
    ),
    FrontEnd("log_mel", "log-mel energies, 10 ms frames", features=extract_log_mel_frames),
):
    register_frontend(_frontend)
del _frontend
