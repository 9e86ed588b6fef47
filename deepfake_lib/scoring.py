"""The one scoring path: 16 kHz audio -> window logits -> clip logits and score.

Training evaluation (:mod:`deepfake_lib.modeling.training`), the analysis modules and the deployed
:class:`~deepfake_lib.deploy.detector.Detector` all score audio through this module, so the scores
behind a run's ``metrics.json`` are the scores the detector gives for the same clips.

Rules:

* **windows** (:func:`window_spans`): with a window of ``window`` samples, starts follow
  :func:`deepfake_lib.audio.io.window_starts` every ``hop`` samples (default half a window,
  i.e. 50 % overlap), and the last window is moved back to end exactly at the end of the
  audio, so every window holds real audio only (no padding, no looping). Audio no longer than
  one window, or ``window_s = 0``, is scored whole, as one window of its own length;
* **classification** (:func:`classify_waves`): the model's feature extractor normalises the
  windows; they are padded to the longest in a batch only when the model takes an attention
  mask, otherwise only windows of equal length share a batch, so padding never changes a score;
* **aggregation** (:func:`mean_logits`): a clip's logits ``[Fake, Real]`` are the mean of its
  window logits; its score is the log-odds of bona fide ``logit_real - logit_fake`` of that
  mean (:func:`deepfake_lib.evaluation.metrics.score_from_logits`).

:class:`EvalClips` is the one evaluation dataset type: the clips of a ``datasets`` split
(decoded lazily, cached) or waveforms held in memory, with their labels and metadata.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from deepfake_lib import LABEL_NAMES, TARGET_SAMPLE_RATE
from deepfake_lib.audio.signal import window_starts
from deepfake_lib.classifier import Classifier, TorchClassifier
from deepfake_lib.corpora.sources import load_example_audio
from deepfake_lib.evaluation.probability import score_from_logits, softmax_probability

__all__ = [
    "as_classifier",
    "classify_waves",
    "EvalClips",
    "mean_logits",
    "METADATA_COLUMNS",
    "MIN_DURATION_S",
    "predict_logits",
    "score_waves",
    "scores_table",
    "uses_attention_mask",
    "window_samples",
    "window_spans",
]

MIN_DURATION_S = 0.1
"""Shortest audio (seconds) the detector scores; wav2vec2's encoder needs a few frames."""

METADATA_COLUMNS: tuple[str, ...] = ("clip_id", "utterance_id", "label", "attack")
"""Per-clip columns of :meth:`EvalClips.metadata` and of every scores table."""


# --------------------------------------------------------------------------------------
# the evaluation dataset
# --------------------------------------------------------------------------------------
class EvalClips(torch.utils.data.Dataset):
    """Whole clips to score: 16 kHz float32 waveforms ``[samples]`` with labels and metadata.

    Build it with :meth:`from_split` (a ``datasets`` split with ``audio``, ``label`` and
    optionally ``clip_id``, ``utterance_id``, ``attack``; clips are decoded on first use and
    cached when ``cache``) or :meth:`from_waves` (arrays in memory). ``labels`` is int64
    ``[n]`` (1 = Real, 0 = Fake; all 0 when unknown); ``clip_ids``, ``utterance_ids``,
    ``groups`` and ``attacks`` are lists of ``n`` strings, ``speaker_ids`` one too or ``None``.
    ``groups`` is what grouped bootstraps resample: the split's grouping column
    (:func:`deepfake_lib.corpora.sources.group_column`: speakers when named, else utterances). When only
    ``groups`` is given it is taken as the utterance ids (the older call).
    """

    def __init__(
        self,
        n: int,
        *,
        labels: Sequence[int] | np.ndarray | None = None,
        clip_ids: Sequence[str] | None = None,
        groups: Sequence[str] | None = None,
        attacks: Sequence[str] | None = None,
        utterance_ids: Sequence[str] | None = None,
        speaker_ids: Sequence[str] | None = None,
        waves: Sequence[np.ndarray] | None = None,
        ds: Any | None = None,
        cache: bool = True,
    ) -> None:
        if (waves is None) == (ds is None):
            raise ValueError("EvalClips: give exactly one of waves or ds")
        self.ds = ds
        self.labels = np.zeros(n, dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
        if self.labels.shape != (n,):
            raise ValueError(f"EvalClips: {n} clips but labels has shape {self.labels.shape}")
        self.clip_ids = (
            [str(c) for c in clip_ids] if clip_ids is not None else [f"clip{i:05d}" for i in range(n)]
        )
        if utterance_ids is None:
            utterance_ids = groups
        self.utterance_ids = (
            [str(u) for u in utterance_ids] if utterance_ids is not None else list(self.clip_ids)
        )
        self.speaker_ids = [str(s) for s in speaker_ids] if speaker_ids is not None else None
        self.groups = [str(g) for g in groups] if groups is not None else list(self.utterance_ids)
        self.attacks = [str(a) for a in attacks] if attacks is not None else ["unknown"] * n
        for name in ("clip_ids", "utterance_ids", "groups", "attacks", "speaker_ids"):
            if getattr(self, name) is not None and len(getattr(self, name)) != n:
                raise ValueError(f"EvalClips: {n} clips but {name} has {len(getattr(self, name))} entries")
        self._waves: dict[int, np.ndarray] | None = (
            {i: np.asarray(w, dtype=np.float32) for i, w in enumerate(waves)}
            if waves is not None
            else ({} if cache else None)
        )
        self._n = n

    @classmethod
    def from_split(cls, ds: Any, *, cache: bool = True) -> EvalClips:
        """The clips of one ``datasets`` split (decoded to 16 kHz on first use); ``groups`` follow
        the split's grouping (:func:`deepfake_lib.corpora.sources.group_column`: speakers when named)."""
        cols = set(ds.column_names)
        n = len(ds)
        utterances = ds["utterance_id"] if "utterance_id" in cols else None
        speakers = ds["speaker_id"] if "speaker_id" in cols and any(ds["speaker_id"]) else None
        return cls(
            n,
            labels=ds["label"],
            clip_ids=ds["clip_id"] if "clip_id" in cols else None,
            utterance_ids=utterances,
            speaker_ids=speakers,
            groups=speakers if speakers is not None else utterances,
            attacks=ds["attack"] if "attack" in cols else None,
            ds=ds,
            cache=cache,
        )

    @classmethod
    def from_waves(
        cls, waves: Sequence[np.ndarray], labels: Sequence[int] | np.ndarray | None = None, **metadata: Any
    ) -> EvalClips:
        """Clips held in memory (float32 ``[samples]`` at 16 kHz); ``metadata``: ``clip_ids``,
        ``groups``, ``attacks``."""
        return cls(len(waves), labels=labels, waves=waves, **metadata)

    def __len__(self) -> int:
        return self._n

    def load(self, i: int) -> np.ndarray:
        """Waveform ``i``, float32 ``[samples]`` at 16 kHz."""
        i = int(i)
        if self._waves is not None and i in self._waves:
            return self._waves[i]
        wave = load_example_audio(self.ds[i])
        if self._waves is not None:
            self._waves[i] = wave
        return wave

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_values": self.load(i), "labels": int(self.labels[i])}

    def metadata(self) -> pd.DataFrame:
        """One row per clip: clip_id, utterance_id, label, attack (and speaker_id when known)."""
        table = pd.DataFrame(
            {
                "clip_id": self.clip_ids,
                "utterance_id": self.utterance_ids,
                "label": self.labels,
                "attack": self.attacks,
            }
        )
        if self.speaker_ids is not None:
            table["speaker_id"] = self.speaker_ids
        return table


# --------------------------------------------------------------------------------------
# windows, classification, aggregation
# --------------------------------------------------------------------------------------
def window_samples(window_s: float, hop_s: float | None = None) -> tuple[int, int]:
    """``(window, hop)`` in samples at 16 kHz for ``window_s`` and ``hop_s`` seconds
    (``hop_s`` ``None`` = half a window); ``window_s = 0`` gives ``(0, 0)``: whole clips."""
    if not (math.isfinite(window_s) and window_s >= 0):
        raise ValueError(f"window_s={window_s!r}: must be 0 (whole clips) or a positive number of seconds")
    if window_s == 0:
        return 0, 0
    hop = window_s / 2 if hop_s is None else hop_s
    if not (math.isfinite(hop) and 0 < hop <= window_s):
        raise ValueError(f"hop_s={hop_s!r}: must lie in (0, window_s={window_s}] seconds")
    return int(round(window_s * TARGET_SAMPLE_RATE)), max(1, int(round(hop * TARGET_SAMPLE_RATE)))


def window_spans(n_samples: int, window: int, hop: int) -> list[tuple[int, int]]:
    """``(start, end)`` sample indices of the windows over ``n_samples`` samples.

    Starts every ``hop`` samples (:func:`~deepfake_lib.audio.io.window_starts`); the last window
    is moved back to end at ``n_samples``; audio no longer than ``window`` (or ``window <= 0``)
    is one span.
    """
    n_samples = int(n_samples)
    if window <= 0 or n_samples <= window:
        return [(0, n_samples)]
    spans: list[tuple[int, int]] = []
    for start in window_starts(n_samples, window, hop):
        start = min(int(start), n_samples - window)
        if spans and spans[-1][0] == start:
            continue
        spans.append((start, start + window))
    return spans


def uses_attention_mask(classifier: Any, feature_extractor: Any) -> bool:
    """Whether windows of different lengths may share a padded batch: the feature extractor
    returns a mask and the classifier takes it."""
    return bool(getattr(feature_extractor, "return_attention_mask", False)) and bool(
        getattr(classifier, "accepts_attention_mask", False)
    )


def classify_waves(classifier: Classifier, feature_extractor: Any, waves: Sequence[np.ndarray]) -> np.ndarray:
    """Logits float32 ``[len(waves), 2]`` for 16 kHz waveforms, in one call per length group.

    Windows of different lengths share a (padded) call only when the model takes an attention
    mask (:func:`uses_attention_mask`); otherwise each length is a call of its own.
    """
    with_mask = uses_attention_mask(classifier, feature_extractor)
    groups: dict[int, list[int]] = {}
    for k, w in enumerate(waves):
        groups.setdefault(0 if with_mask else int(w.shape[0]), []).append(k)
    out = np.zeros((len(waves), len(LABEL_NAMES)), dtype=np.float32)
    for members in groups.values():
        feats = feature_extractor(
            [waves[k] for k in members],
            sampling_rate=TARGET_SAMPLE_RATE,
            return_tensors="np",
            padding="longest",
            return_attention_mask=with_mask,
        )
        mask = np.asarray(feats["attention_mask"], dtype=np.int64) if with_mask else None
        logits = np.asarray(classifier(np.asarray(feats["input_values"], dtype=np.float32), mask))
        if logits.shape != (len(members), len(LABEL_NAMES)):
            raise RuntimeError(
                f"classifier returned logits of shape {logits.shape}, "
                f"expected ({len(members)}, {len(LABEL_NAMES)})"
            )
        out[members] = logits
    return out


def mean_logits(window_logits: np.ndarray) -> np.ndarray:
    """A clip's logits ``[2]``: the mean of its window logits ``[n_windows, 2]``."""
    arr = np.asarray(window_logits, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"window logits of shape {arr.shape}: expected [n_windows >= 1, 2]")
    return arr.mean(axis=0)


def as_classifier(model: Any, *, device: str | None = None, precision: str = "fp32") -> Classifier:
    """``model`` as a :class:`~deepfake_lib.classifier.Classifier`: a torch module is wrapped in a
    :class:`~deepfake_lib.classifier.TorchClassifier` on its own device (or ``device``)."""
    if isinstance(model, torch.nn.Module):
        dev = device or next(model.parameters()).device.type
        return TorchClassifier(model, device=dev, precision=precision)
    return model


def predict_logits(
    model: Any,
    feature_extractor: Any,
    dataset: EvalClips,
    *,
    batch_size: int = 16,
    window_s: float = 0.0,
    hop_s: float | None = None,
    device: str | None = None,
    precision: str = "fp32",
) -> np.ndarray:
    """Clip logits ``[n_clips, 2]`` (Fake, Real) for every clip of an evaluation dataset.

    ``model``: a torch audio classifier or any :class:`~deepfake_lib.classifier.Classifier`.
    ``window_s = 0`` scores each whole clip; otherwise clips are cut by :func:`window_spans`
    (``hop_s`` default half a window) and a clip's logits are the mean of its windows'
    (module docstring). Windows are sorted by length and scored ``batch_size`` at a time. A
    torch model's train/eval mode is restored afterwards.
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size={batch_size!r}: must be at least 1")
    win, hop = window_samples(window_s, hop_s)
    was_training = isinstance(model, torch.nn.Module) and model.training
    classifier = as_classifier(model, device=device, precision=precision)
    with_mask = uses_attention_mask(classifier, feature_extractor)
    units: list[tuple[int, np.ndarray]] = []  # (clip index, window view)
    for i in range(len(dataset)):
        wave = dataset.load(i)
        units.extend((i, wave[a:b]) for a, b in window_spans(wave.shape[0], win, hop))
    order = sorted(range(len(units)), key=lambda u: units[u][1].shape[0])
    batches: list[list[int]] = []
    for u in order:
        last = batches[-1] if batches else None
        if (
            last is not None
            and len(last) < batch_size
            and (with_mask or units[last[0]][1].shape[0] == units[u][1].shape[0])
        ):
            last.append(u)
        else:
            batches.append([u])
    sums = np.zeros((len(dataset), len(LABEL_NAMES)), dtype=np.float64)
    counts = np.zeros(len(dataset), dtype=np.int64)
    try:
        for b in batches:
            logits = classify_waves(classifier, feature_extractor, [units[u][1] for u in b])
            for u, row in zip(b, logits):
                sums[units[u][0]] += row
                counts[units[u][0]] += 1
    finally:
        if was_training:
            model.train()
    return (sums / counts[:, None]).astype(np.float32)


def score_waves(
    model: Any,
    feature_extractor: Any,
    waves: Sequence[np.ndarray],
    *,
    batch_size: int = 16,
    precision: str = "fp32",
    window_s: float = 0.0,
) -> np.ndarray:
    """Log-odds of Real ``[n]`` for 16 kHz waveforms, each scored whole (``window_s = 0``) or
    by the windowing rule of :func:`predict_logits` (``window_s`` seconds, half-window hop)."""
    logits = predict_logits(
        model,
        feature_extractor,
        EvalClips.from_waves(waves),
        batch_size=batch_size,
        precision=precision,
        window_s=window_s,
    )
    return score_from_logits(logits)


def scores_table(ds: Any, logits: np.ndarray) -> pd.DataFrame:
    """Per-clip scores: clip id, utterance id, label, attack, logits, score (log-odds of Real),
    P(Real), and ``speaker_id`` when the data names speakers (the bootstrap groups then, see
    :func:`deepfake_lib.evaluation.summaries.score_groups`).

    ``ds``: an :class:`EvalClips` or a ``datasets`` split with the :data:`METADATA_COLUMNS`.
    """
    if isinstance(ds, EvalClips):
        meta = ds.metadata()
    else:
        meta = pd.DataFrame({c: ds[c] for c in METADATA_COLUMNS})
        if "speaker_id" in ds.column_names and any(ds["speaker_id"]):
            meta["speaker_id"] = [str(s) for s in ds["speaker_id"]]
    return meta.assign(
        logit_fake=logits[:, 0],
        logit_real=logits[:, 1],
        score=score_from_logits(logits),
        prob_real=softmax_probability(logits),
    )
