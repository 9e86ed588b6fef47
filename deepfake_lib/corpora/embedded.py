"""The embedded corpus: procedurally synthesised speech and vocoder-style spoofs of it.

This is the offline stand-in for ``Hemg/Deepfake-Audio-Dataset``. It is written in the same
parquet schema (``audio`` = ``{"bytes", "path"}``, ``label`` = ClassLabel ``["Fake", "Real"]``)
plus the metadata columns ``utterance_id``, ``attack``, ``sample_rate`` and ``duration``.

Pipeline, per utterance:

1. :func:`synthesize_bonafide` makes a speech-like clip: a glottal source (pitch contour,
   jitter, shimmer, breath noise) through time-varying formant filters moving between phone
   targets, with fricatives, stops and pauses. The speech band (below 8 kHz) is synthesised
   at 16 kHz; for 22.05 and 44.1 kHz clips a fricative high band is added at the native rate.
2. :func:`spoof_utterance` resynthesises the same clip with one of :data:`ATTACKS`. Every
   attack works on the band below 8 kHz (the clip is resampled to 16 kHz, attacked and
   resampled back; the clean band above 8 kHz is kept), so every artefact survives the
   resampling to 16 kHz that every model applies, and nothing above 8 kHz tells the classes
   apart.
3. :func:`apply_channel` passes bona fide clips and spoofs alike through a random recording
   channel (microphone colouring, small-room reverb, background noise) and sets the level to
   a random RMS with a peak limiter, so that duration, loudness, peak level and sample rate
   do not separate the classes; a spectral-tilt post-filter on each spoof keeps the
   zero-crossing rate a weak cue.

Strength at the default difficulty 0.5 was calibrated so that a tiny wav2vec2 trained from
scratch for about two minutes on two CPU cores learns every attack (the artefacts change the
spectrum below 4.5 kHz in every voiced frame, where a raw-waveform model sees them first),
while a logistic regression on duration, level, peak, sample rate and zero-crossing rate stays
near chance (the shortcut control, :mod:`deepfake_lib.modeling.baselines`, now uses all the
cheap cues of :mod:`deepfake_lib.audio.cues`, a stricter test).

Filtering is vectorised: time-varying filters are applied frame-wise in the STFT domain
(short-time Fourier transform, multiply, overlap-add), fixed filters with ``sosfilt`` or FFT
convolution over the whole signal.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import uuid
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from deepfake_lib import LABEL_NAMES
from deepfake_lib.audio.io import encode_audio
from deepfake_lib.corpora.embedded_attacks import ATTACKS, spoof_utterance
from deepfake_lib.corpora.embedded_channel import apply_channel, draw_crest, draw_level
from deepfake_lib.corpora.embedded_speech import synthesize_bonafide
from deepfake_lib.torch_settings import torch_threads

__all__ = [
    "BONAFIDE",
    "corpus_filename",
    "CorpusConfig",
    "generate_corpus",
    "generate_utterance",
    "GENERATOR_VERSION",
    "SAMPLE_RATES",
    "write_corpus",
]

GENERATOR_VERSION: int = 2
"""Bumped whenever the generator's output changes; part of :func:`corpus_filename`, so
cached corpora from older generators are never reused."""


BONAFIDE: str = "bonafide"
"""The ``attack`` value of bona fide rows."""

SAMPLE_RATES: tuple[int, ...] = (16000, 22050, 44100)
"""Native sample rates (Hz) drawn per utterance; both classes share each utterance's rate."""


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """Size, difficulty and seed of the embedded corpus.

    ``n_utterances`` utterances each give one bona fide clip and ``spoofs_per_utterance``
    spoofs (attacks assigned round-robin, so balanced across :data:`ATTACKS`).
    ``difficulty`` runs from 0 (blatant artefacts) to 1 (faint ones). Durations in seconds.
    """

    n_utterances: int = 300
    spoofs_per_utterance: int = 1
    difficulty: float = 0.5
    seed: int = 0
    min_duration_s: float = 1.5
    max_duration_s: float = 6.0

    def __post_init__(self) -> None:
        def need(ok: bool, field: str, why: str) -> None:
            if not ok:
                raise ValueError(f"CorpusConfig.{field} = {getattr(self, field)!r}: {why}")

        for name in ("n_utterances", "spoofs_per_utterance", "seed"):
            value = getattr(self, name)
            need(
                isinstance(value, (int, np.integer)) and not isinstance(value, bool),
                name,
                "must be an integer",
            )
        for name in ("difficulty", "min_duration_s", "max_duration_s"):
            value = getattr(self, name)
            need(
                isinstance(value, (int, float, np.number))
                and not isinstance(value, bool)
                and math.isfinite(value),
                name,
                "must be a finite number",
            )
        need(self.n_utterances >= 1, "n_utterances", "must be at least 1")
        need(self.spoofs_per_utterance >= 1, "spoofs_per_utterance", "must be at least 1")
        need(0.0 <= self.difficulty <= 1.0, "difficulty", "must lie in [0, 1]")
        need(self.seed >= 0, "seed", "must be non-negative")
        need(self.min_duration_s >= 0.5, "min_duration_s", "must be at least 0.5 s")
        need(self.max_duration_s >= self.min_duration_s, "max_duration_s", "must be >= min_duration_s")
        need(self.max_duration_s <= 60.0, "max_duration_s", "must be at most 60 s")


def corpus_filename(config: CorpusConfig) -> str:
    """Cache file name for ``config``, e.g. ``embedded_n300_s1_d0.50_seed0_v2.parquet``.

    Includes :data:`GENERATOR_VERSION`; non-default durations add a ``_dur1.5-6.0`` part.
    """
    d = config.difficulty
    d_text = f"{d:.2f}" if round(d, 2) == d else f"{d:.6g}"
    name = f"embedded_n{config.n_utterances}_s{config.spoofs_per_utterance}_d{d_text}_seed{config.seed}"
    defaults = CorpusConfig()
    if (config.min_duration_s, config.max_duration_s) != (defaults.min_duration_s, defaults.max_duration_s):
        name += f"_dur{config.min_duration_s:g}-{config.max_duration_s:g}"
    return f"{name}_v{GENERATOR_VERSION}.parquet"


# --------------------------------------------------------------------------------------------
# the corpus
# --------------------------------------------------------------------------------------------
def _hf_features_metadata() -> bytes:
    """The ``huggingface`` schema metadata that makes ``datasets`` load Audio and ClassLabel."""
    features = datasets.Features(
        {
            "audio": datasets.Audio(),
            "label": datasets.ClassLabel(names=list(LABEL_NAMES)),
            "utterance_id": datasets.Value("string"),
            "attack": datasets.Value("string"),
            "sample_rate": datasets.Value("int64"),
            "duration": datasets.Value("float64"),
        }
    )
    return json.dumps({"info": {"features": features.to_dict()}}).encode()


_SCHEMA = pa.schema(
    [
        ("audio", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        ("label", pa.int64()),
        ("utterance_id", pa.string()),
        ("attack", pa.string()),
        ("sample_rate", pa.int64()),
        ("duration", pa.float64()),
    ]
)


def _attack_for(index: int, spoof: int, per_utterance: int) -> str:
    ids = sorted(ATTACKS)
    return ids[(index * per_utterance + spoof) % len(ids)]


def generate_utterance(config: CorpusConfig, index: int) -> list[dict[str, Any]]:
    """Rows of utterance ``index`` of the corpus ``config``: its bona fide clip, then its spoofs.

    Each row: ``wave`` [samples] float32 after the channel, ``label`` (1 Real, 0 Fake),
    ``utterance_id``, ``attack``, ``sample_rate`` (Hz), ``duration`` (s). The utterance's
    clips share its sample rate, duration, RMS level and crest cap; each gets its own
    channel. Depends only on ``config`` and ``index`` (not on ``n_utterances``), so corpora
    of different sizes share their first utterances.
    """
    if not 0 <= index:
        raise ValueError(f"index = {index}: must be non-negative")
    seq = np.random.SeedSequence(entropy=config.seed, spawn_key=(index,))
    utt_rng, bona_rng, chan_rng, *spoof_rngs = [
        np.random.default_rng(s) for s in seq.spawn(3 + 2 * config.spoofs_per_utterance)
    ]
    sr = int(SAMPLE_RATES[utt_rng.integers(len(SAMPLE_RATES))])
    n = int(round(utt_rng.uniform(config.min_duration_s, config.max_duration_s) * sr))
    level = {"level_dbfs": draw_level(utt_rng), "crest_db": draw_crest(utt_rng)}
    meta = {"utterance_id": f"utt{index:04d}", "sample_rate": sr, "duration": n / sr}
    with torch_threads(1):
        clean = synthesize_bonafide(bona_rng, sr, n / sr)
        rows = [{"wave": apply_channel(clean, sr, chan_rng, **level), "label": 1, "attack": BONAFIDE, **meta}]
        for j in range(config.spoofs_per_utterance):
            attack = _attack_for(index, j, config.spoofs_per_utterance)
            spoof = spoof_utterance(clean, sr, attack, config.difficulty, spoof_rngs[2 * j])
            rows.append(
                {
                    "wave": apply_channel(spoof, sr, spoof_rngs[2 * j + 1], **level),
                    "label": 0,
                    "attack": attack,
                    **meta,
                }
            )
    return rows


def generate_corpus(config: CorpusConfig = CorpusConfig()) -> pa.Table:
    """The corpus as an Arrow table in the Hemg schema plus metadata columns.

    Columns: ``audio`` (struct ``bytes`` WAV PCM_16 / ``path`` like ``utt0007_A02.wav``),
    ``label`` (0 Fake, 1 Real), ``utterance_id``, ``attack``, ``sample_rate`` (Hz), ``duration``
    (s). Rows are ordered by utterance, bona fide first. Same config -> same table.
    """
    columns: dict[str, list] = {name: [] for name in _SCHEMA.names}
    for i in range(config.n_utterances):
        for row in generate_utterance(config, i):
            columns["audio"].append(
                {
                    "bytes": encode_audio(row["wave"], row["sample_rate"], "WAV", "PCM_16"),
                    "path": f"{row['utterance_id']}_{row['attack']}.wav",
                }
            )
            for key in ("label", "utterance_id", "attack", "sample_rate", "duration"):
                columns[key].append(row[key])
    table = pa.Table.from_pydict(columns, schema=_SCHEMA)
    return table.replace_schema_metadata({b"huggingface": _hf_features_metadata()})


def write_corpus(path: str | os.PathLike[str], config: CorpusConfig = CorpusConfig()) -> Path:
    """Generate the corpus and write it as one parquet file at ``path``; returns the path.

    ``load_dataset("parquet", data_files=...)`` reads ``audio`` as Audio and ``label`` as
    ClassLabel(["Fake", "Real"]). The write is atomic (temporary file, then rename): an
    interrupted write leaves no partial file and keeps any existing file intact.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    table = generate_corpus(config)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=64, write_statistics=False)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
