"""Robustness of a trained detector: the test clips under noise, reverberation, codecs, gain
and clipping, scored through :mod:`deepfake_lib.scoring`.

Waveforms are float32 ``[samples]`` at 16 kHz unless a docstring says otherwise; conventions
as in :mod:`deepfake_lib.evaluation.summaries`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from deepfake_lib import TARGET_SAMPLE_RATE
from deepfake_lib.audio.augmentation import (
    CODECS,
    add_noise,
    add_reverb,
    apply_gain,
    available_codecs,
    clip_waveform,
    roundtrip_codec,
    simulate_telephone,
)
from deepfake_lib.evaluation.summaries import eer_row, save_dir
from deepfake_lib.runs import write_json
from deepfake_lib.scoring import EvalClips, score_waves

__all__ = [
    "CLIP_FRACTION_OF_PEAK",
    "Condition",
    "condition_key",
    "degrade_waves",
    "DegradeFn",
    "describe_codec_availability",
    "evaluate_robustness",
    "robustness_conditions",
    "ROBUSTNESS_GAINS_DB",
    "ROBUSTNESS_RT60S_S",
    "ROBUSTNESS_SNRS_DB",
]

log = logging.getLogger(__name__)

DegradeFn = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
"""A degradation: ``fn(wave [samples], sample_rate Hz, rng) -> wave [samples]``."""

ROBUSTNESS_SNRS_DB: tuple[float, ...] = (20.0, 10.0, 5.0, 0.0)
"""Signal-to-noise ratios (dB) of the additive-noise conditions."""
ROBUSTNESS_RT60S_S: tuple[float, ...] = (0.3, 0.8)
"""Reverberation times (s) of the room-reverb conditions."""
ROBUSTNESS_GAINS_DB: tuple[float, ...] = (-12.0, 12.0)
"""Gains (dB) of the level conditions; the result is clipped to [-1, 1] like a recorder."""
CLIP_FRACTION_OF_PEAK = 0.25
"""The clipping condition cuts every clip at this fraction of its own peak (12 dB of overdrive)."""


@dataclasses.dataclass(frozen=True)
class Condition:
    """One degradation of the robustness sweep.

    ``name`` is unique and readable (``"white noise 10 dB"``); ``family`` groups conditions in
    tables and plots (``"noise (white)"``); ``parameter`` is the setting in ``unit`` (dB SNR,
    RT60 s, codec name, ...); ``fn(wave [samples], sample_rate Hz, rng) -> wave [samples]``.
    """

    name: str
    family: str
    parameter: float | str | None
    fn: DegradeFn
    unit: str = ""
    note: str = ""


def _clean(wave: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    return np.asarray(wave, dtype=np.float32)


def _noise_fn(kind: str, snr_db: float) -> DegradeFn:
    def fn(wave: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:

        return add_noise(wave, snr_db, rng, kind=kind, sample_rate=sr)

    return fn


def _telephone(wave: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:

    return simulate_telephone(wave, sr)


def _codec_fn(codec: str) -> DegradeFn:
    def fn(wave: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:

        return roundtrip_codec(wave, sr, codec)

    return fn


def _reverb_fn(rt60_s: float) -> DegradeFn:
    def fn(wave: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:

        return add_reverb(wave, sr, rt60_s, rng, wet=0.5)

    return fn


def _clipping_fn(fraction_of_peak: float) -> DegradeFn:
    def fn(wave: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:

        peak = float(np.max(np.abs(wave))) if len(wave) else 0.0
        if peak <= 0.0:
            return np.asarray(wave, dtype=np.float32).copy()
        return clip_waveform(wave, fraction_of_peak * peak)

    return fn


def _gain_fn(gain_db: float) -> DegradeFn:
    def fn(wave: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:

        return np.clip(apply_gain(wave, gain_db), -1.0, 1.0)

    return fn


def describe_codec_availability() -> dict[str, list[str]]:
    """Which lossy codecs of :data:`deepfake_lib.audio.augmentation.CODECS` this libsndfile can run:
    ``{"available": [...], "unavailable": [...]}``."""

    ran = available_codecs()
    return {"available": list(ran), "unavailable": [c for c in CODECS if c not in ran]}


def robustness_conditions(
    *,
    snrs_db: Sequence[float] = ROBUSTNESS_SNRS_DB,
    noise_kinds: Sequence[str] = ("white", "speech_shaped"),
    codecs: Sequence[str] | None = None,
    rt60s_s: Sequence[float] = ROBUSTNESS_RT60S_S,
    gains_db: Sequence[float] = ROBUSTNESS_GAINS_DB,
    clip_fraction: float = CLIP_FRACTION_OF_PEAK,
) -> list[Condition]:
    """The conditions of the robustness sweep, clean first.

    Families: ``clean``; additive noise per kind (``noise_kinds`` of
    :data:`deepfake_lib.audio.augmentation.NOISE_KINDS`; ``"babble"`` is about 10x the cost of
    ``"speech_shaped"``) at each SNR in ``snrs_db`` (dB); ``telephone`` (8 kHz round trip,
    300-3400 Hz); ``codec``: each lossy codec in ``codecs`` (default: every one that
    :func:`deepfake_lib.audio.augmentation.available_codecs` reports) through libsndfile's real encoder and
    decoder at its default quality; ``reverb`` at each RT60 in ``rt60s_s`` (s, 50% wet);
    ``clipping`` at ``clip_fraction`` of each clip's own peak; ``gain`` by each of ``gains_db``
    (dB), then clipped to [-1, 1] as a real recorder would (so +12 dB also clips loud clips).
    Codecs asked for but unavailable are left out with a warning.
    """
    out = [Condition("clean", "clean", None, _clean, "", "the test clips as decoded")]
    for kind in noise_kinds:
        label = kind.replace("_", "-")
        for snr in snrs_db:
            out.append(
                Condition(
                    f"{label} noise {snr:g} dB",
                    f"noise ({label})",
                    float(snr),
                    _noise_fn(kind, float(snr)),
                    "dB SNR",
                    f"additive {label} noise at {snr:g} dB SNR",
                )
            )
    out.append(
        Condition(
            "telephone 8 kHz",
            "telephone",
            8000.0,
            _telephone,
            "Hz",
            "resampled to 8 kHz and back, band-passed 300-3400 Hz",
        )
    )
    have = available_codecs()
    wanted = list(have) if codecs is None else list(codecs)
    for codec in wanted:
        if codec not in have:
            log.warning("codec %s is not available in this libsndfile; its condition is left out", codec)
            continue
        out.append(
            Condition(
                codec,
                "codec",
                codec,
                _codec_fn(codec),
                "codec",
                f"{codec} encode + decode with libsndfile (default quality)",
            )
        )
    for rt60 in rt60s_s:
        out.append(
            Condition(
                f"reverb RT60 {rt60:g} s",
                "reverb",
                float(rt60),
                _reverb_fn(float(rt60)),
                "s RT60",
                "noise impulse response, 50% wet",
            )
        )
    out.append(
        Condition(
            f"clipping at {clip_fraction:g} x peak",
            "clipping",
            float(clip_fraction),
            _clipping_fn(float(clip_fraction)),
            "fraction of peak",
            f"hard clipping at {clip_fraction:g} of the clip's peak",
        )
    )
    for gain in gains_db:
        out.append(
            Condition(
                f"gain {gain:+g} dB",
                "gain",
                float(gain),
                _gain_fn(float(gain)),
                "dB",
                "level change, then clipped to [-1, 1] like a recorder",
            )
        )
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise ValueError(f"robustness condition names must be unique, got {names}")
    return out


def _centre_crop(
    wave: np.ndarray, max_duration_s: float | None, sample_rate: int = TARGET_SAMPLE_RATE
) -> np.ndarray:
    if max_duration_s is None:
        return wave
    n = int(round(max_duration_s * sample_rate))
    if n <= 0:
        raise ValueError(f"max_duration_s must be positive seconds, got {max_duration_s}")
    if wave.size <= n:
        return wave
    start = (wave.size - n) // 2
    return wave[start : start + n]


def _flat_top_fraction(wave: np.ndarray) -> float:
    """Share of samples at the clip's own peak (|x| >= 0.999 max|x|); about 1/len for an unclipped clip."""
    a = np.abs(wave)
    peak = float(a.max()) if a.size else 0.0
    return float(np.mean(a >= 0.999 * peak)) if peak > 0 else 0.0


def condition_key(condition: Condition) -> int:
    """Stable number of a condition (CRC-32 of its name): its part of every clip's seed."""
    return zlib.crc32(condition.name.encode("utf-8"))


def degrade_waves(
    waves: Sequence[np.ndarray],
    condition: Condition,
    *,
    seed: int = 0,
    sample_rate: int = TARGET_SAMPLE_RATE,
) -> list[np.ndarray]:
    """Apply one condition to every wave ``[samples]`` at ``sample_rate`` Hz.

    Clip ``i`` draws from ``np.random.default_rng([seed, i, condition_key(condition)])``, so
    the result is deterministic given the seed, and a clip degrades the same way whatever
    other clips or conditions are in the sweep. A condition must keep every clip's length.
    """
    key = condition_key(condition)
    out = []
    for i, wave in enumerate(waves):
        rng = np.random.default_rng([int(seed), int(i), key])
        y = np.asarray(condition.fn(np.asarray(wave, dtype=np.float32), sample_rate, rng), dtype=np.float32)
        if y.shape != np.shape(wave):
            raise ValueError(
                f"condition {condition.name!r} changed the length of clip {i}: {np.shape(wave)} -> {y.shape}"
            )
        out.append(y)
    return out


def evaluate_robustness(
    model: Any,
    feature_extractor: Any,
    test_ds: EvalClips,
    *,
    conditions: Sequence[Condition] | None = None,
    seed: int = 0,
    n_bootstrap: int = 1000,
    batch_size: int = 32,
    threshold: float | None = None,
    max_duration_s: float | None = None,
    precision: str = "fp32",
    window_s: float = 0.0,
    out_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """EER (with CI) and AUC of the model on the test clips under each degradation.

    ``test_ds`` is an :class:`~deepfake_lib.scoring.EvalClips`: its clean 16 kHz clips are degraded by every
    condition (:func:`robustness_conditions` by default; see :func:`degrade_waves` for the
    seeding: ``[seed, clip index, condition key]``) and scored. Training data is never touched.
    ``threshold`` (a score, e.g. the run's
    validation-EER threshold) adds accuracy, FAR and FRR at that fixed operating point, which
    shows score drift that the threshold-free EER hides. ``max_duration_s`` (s) keeps only the
    central part of longer clips before degrading (cost grows with audio length; with a crop
    the clean row is the sweep's reference, not the run's test EER). ``precision`` is passed
    to :func:`~deepfake_lib.scoring.predict_logits` (``"bf16"`` is faster on CPUs with bf16), and so
    is ``window_s`` (s; the run's ``eval_window_s``, so degraded clips are scored as the clean ones were).

    Returns one row per condition: condition, family, parameter, unit, eer, eer_low, eer_high,
    auc, auc_low, auc_high, n, delta_eer (vs clean), mean_score_real, mean_score_fake,
    clipped_fraction (mean share of samples at their clip's own peak, |x| >= 0.999 max|x|:
    flattened tops) [, accuracy, far, frr ... at ``threshold``].
    ``df.attrs`` holds ``codecs`` (available/unavailable) and ``seconds`` per condition.
    Writes ``robustness.csv``, ``robustness_scores.csv`` (per clip and condition) and
    ``robustness_meta.json`` to ``out_dir``.
    """
    conditions = list(conditions) if conditions is not None else robustness_conditions()
    meta = test_ds.metadata()
    labels = meta["label"].to_numpy()
    groups = np.asarray(test_ds.groups, dtype=str)  # the split's grouping (speaker when known)
    clean = [
        _centre_crop(np.asarray(test_ds.load(i), dtype=np.float32), max_duration_s)
        for i in range(len(test_ds))
    ]
    rows, score_frames, seconds = [], [], {}
    for cond in conditions:
        started = time.perf_counter()
        waves = degrade_waves(clean, cond, seed=seed)
        scores = score_waves(
            model, feature_extractor, waves, batch_size=batch_size, precision=precision, window_s=window_s
        )
        clipped = float(np.mean([_flat_top_fraction(w) for w in waves])) if waves else 0.0
        row = {"condition": cond.name, "family": cond.family, "parameter": cond.parameter, "unit": cond.unit}
        row.update(eer_row(labels, scores, groups, n_bootstrap=n_bootstrap, seed=seed, threshold=threshold))
        row.update(
            n=len(waves),
            mean_score_real=float(np.mean(scores[labels == 1])) if (labels == 1).any() else float("nan"),
            mean_score_fake=float(np.mean(scores[labels == 0])) if (labels == 0).any() else float("nan"),
            clipped_fraction=clipped,
        )
        rows.append(row)
        frame = meta.copy()
        frame.insert(0, "condition", cond.name)
        frame["score"] = scores
        score_frames.append(frame)
        seconds[cond.name] = round(time.perf_counter() - started, 3)
        log.info("robustness %s: EER %.3f (%.1f s)", cond.name, row["eer"], seconds[cond.name])
    table = pd.DataFrame(rows)
    clean_rows = table[table["family"] == "clean"]
    base = float(clean_rows["eer"].iloc[0]) if len(clean_rows) else float("nan")
    table.insert(table.columns.get_loc("n") + 1, "delta_eer", table["eer"] - base)
    codecs = describe_codec_availability()
    codecs["ran"] = [c.parameter for c in conditions if c.family == "codec"]
    table.attrs["codecs"] = codecs
    table.attrs["seconds"] = seconds
    folder = save_dir(out_dir)
    if folder is not None:
        table.to_csv(folder / "robustness.csv", index=False)
        pd.concat(score_frames, ignore_index=True).to_csv(folder / "robustness_scores.csv", index=False)
        write_json(
            folder / "robustness_meta.json",
            {
                "seed": seed,
                "n_bootstrap": n_bootstrap,
                "threshold": threshold,
                "precision": precision,
                "max_duration_s": max_duration_s,
                "audio_seconds_per_condition": round(sum(len(w) for w in clean) / TARGET_SAMPLE_RATE, 1),
                "codecs": codecs,
                "seconds": seconds,
                "total_seconds": round(sum(seconds.values()), 2),
                "conditions": [
                    {
                        "name": c.name,
                        "family": c.family,
                        "parameter": c.parameter,
                        "unit": c.unit,
                        "note": c.note,
                    }
                    for c in conditions
                ],
            },
        )
    return table
