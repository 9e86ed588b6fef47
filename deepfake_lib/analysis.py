"""Analysis of a trained detector (notebook 04): robustness, attacks, calibration, baselines,
where the model listens, other sources, and the study's protocol against ours.

Every function returns a :class:`pandas.DataFrame` or a plain dict, and writes it under
``out_dir`` (usually ``<run_dir>/analysis``) when ``out_dir`` is given; ``None`` writes nothing.

Conventions (as everywhere in the project): label 1 = Real (bona fide), 0 = Fake (spoof);
a score is the log-odds of Real (higher = more bona fide); EERs follow
:func:`deepfake_lib.metrics.compute_eer`; intervals are 95% percentile bootstraps, over
utterance groups where the data has them (a bona fide clip and its spoofs move together).
Waveforms are float32 ``[samples]`` at 16 kHz unless a docstring says otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfake_lib import LABEL_NAMES, TARGET_SAMPLE_RATE

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
STUDY_NOISE_SNR_DB: tuple[float, float] = (15.0, 30.0)
"""Range (dB) of the white-noise SNR drawn per clip when mimicking the study's augmentation."""
STUDY_MAX_SHIFT_S = 0.5
"""Largest circular time shift (s) drawn per clip when mimicking the study's augmentation."""

SYSTEM_LFCC_GMM = "LFCC-GMM (ASVspoof baseline recipe)"
SYSTEM_LFCC_LR = "LFCC + logistic regression"
SYSTEM_TRIVIAL_LR = "trivial features + logistic regression (shortcut control)"


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------
def _save_dir(out_dir: str | os.PathLike[str] | None) -> Path | None:
    if out_dir is None:
        return None
    p = Path(out_dir)
    p.mkdir(parents=True, exist_ok=True)
    return p


def _write_json(path: Path, obj: Any) -> None:
    from deepfake_lib.train import write_json

    write_json(path, obj)


def _slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text).strip("_")[-60:] or "source"


class WaveListDataset:
    """Evaluation dataset over waveforms held in memory (what :func:`train.predict_logits` reads).

    ``waves``: float32 ``[samples]`` arrays at 16 kHz; ``labels`` [n] (1 = Real, 0 = Fake);
    optional ``clip_ids``, ``groups`` (utterance ids for grouped bootstraps) and ``attacks``.
    """

    def __init__(
        self,
        waves: Sequence[np.ndarray],
        labels: Sequence[int] | np.ndarray | None = None,
        *,
        clip_ids: Sequence[str] | None = None,
        groups: Sequence[str] | None = None,
        attacks: Sequence[str] | None = None,
    ) -> None:
        self.waves = [np.asarray(w, dtype=np.float32) for w in waves]
        n = len(self.waves)
        self.labels = np.zeros(n, dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
        if self.labels.shape != (n,):
            raise ValueError(f"WaveListDataset: {n} waves but labels has shape {self.labels.shape}")
        self.clip_ids = list(clip_ids) if clip_ids is not None else [f"clip{i:05d}" for i in range(n)]
        self.groups = list(groups) if groups is not None else list(self.clip_ids)
        self.attacks = list(attacks) if attacks is not None else ["unknown"] * n
        for name in ("clip_ids", "groups", "attacks"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"WaveListDataset: {n} waves but {name} has {len(getattr(self, name))} entries")

    def __len__(self) -> int:
        return len(self.waves)

    def load(self, i: int) -> np.ndarray:
        """Waveform ``i`` (float32 ``[samples]``, 16 kHz)."""
        return self.waves[int(i)]


def _clip_metadata(dataset: Any) -> pd.DataFrame:
    """clip_id, utterance_id, label, attack of an evaluation dataset (ClipDataset or WaveListDataset)."""
    labels = np.asarray(dataset.labels, dtype=np.int64)
    ds = getattr(dataset, "ds", None)
    if ds is not None and hasattr(ds, "column_names"):
        cols = ds.column_names
        n = len(labels)
        return pd.DataFrame({
            "clip_id": list(ds["clip_id"]) if "clip_id" in cols else [f"clip{i:05d}" for i in range(n)],
            "utterance_id": list(ds["utterance_id"]) if "utterance_id" in cols else [f"clip{i:05d}" for i in range(n)],
            "label": labels,
            "attack": list(ds["attack"]) if "attack" in cols else ["unknown"] * n,
        })
    return pd.DataFrame({
        "clip_id": list(getattr(dataset, "clip_ids", [f"clip{i:05d}" for i in range(len(labels))])),
        "utterance_id": list(getattr(dataset, "groups", getattr(dataset, "clip_ids", range(len(labels))))),
        "label": labels,
        "attack": list(getattr(dataset, "attacks", ["unknown"] * len(labels))),
    })


def _score_waves(model: Any, fe: Any, waves: Sequence[np.ndarray], *, batch_size: int, precision: str = "fp32") -> np.ndarray:
    """Log-odds of Real ``[n]`` for a list of 16 kHz waveforms."""
    from deepfake_lib.metrics import score_from_logits
    from deepfake_lib.train import predict_logits

    logits = predict_logits(model, fe, WaveListDataset(waves), batch_size=batch_size, precision=precision)
    return score_from_logits(logits)


def _eer_row(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray | None, *, n_bootstrap: int, seed: int,
             threshold: float | None = None, prefix: str = "") -> dict[str, Any]:
    """Flat columns eer, eer_low, eer_high, auc, auc_low, auc_high (and accuracy, its bounds,
    far and frr at ``threshold``), bounds from a (grouped) bootstrap; NaN where undefined
    (one class present, or ``n_bootstrap == 0`` for the bounds)."""
    from deepfake_lib.metrics import bootstrap_ci, compute_metrics

    nan = float("nan")
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    keys = ["eer", "auc"] + (["accuracy"] if threshold is not None else [])
    values: dict[str, float] = {k: nan for k in keys}
    bounds: dict[str, tuple[float, float]] = {k: (nan, nan) for k in keys}
    far = frr = nan
    n_real = int(labels.sum())
    if 0 < n_real < labels.size:
        m = compute_metrics(labels, scores, threshold=threshold)
        values.update({k: m[k] for k in keys})
        far, frr = m["far"], m["frr"]
        if n_bootstrap > 0:
            ci = bootstrap_ci(labels, scores, groups=groups, threshold=m["threshold"], n_bootstrap=n_bootstrap, seed=seed)
            bounds.update({k: tuple(ci[k]) for k in keys})
    elif threshold is not None and labels.size:
        values["accuracy"] = float(np.mean((scores >= threshold) == labels))
    row: dict[str, Any] = {}
    for k in keys:
        row.update({prefix + k: values[k], prefix + k + "_low": bounds[k][0], prefix + k + "_high": bounds[k][1]})
    if threshold is not None:
        row.update({prefix + "far": far, prefix + "frr": frr})
    return row


# --------------------------------------------------------------------------------------
# 1. robustness sweep
# --------------------------------------------------------------------------------------
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
        from deepfake_lib.augment import add_noise

        return add_noise(wave, snr_db, rng, kind=kind, sample_rate=sr)

    return fn


def _telephone(wave: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    from deepfake_lib.augment import simulate_telephone

    return simulate_telephone(wave, sr)


def _codec_fn(codec: str) -> DegradeFn:
    def fn(wave: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        from deepfake_lib.augment import roundtrip_codec

        return roundtrip_codec(wave, sr, codec)

    return fn


def _reverb_fn(rt60_s: float) -> DegradeFn:
    def fn(wave: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        from deepfake_lib.augment import add_reverb

        return add_reverb(wave, sr, rt60_s, rng, wet=0.5)

    return fn


def _clipping_fn(fraction_of_peak: float) -> DegradeFn:
    def fn(wave: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        from deepfake_lib.augment import clip_waveform

        peak = float(np.max(np.abs(wave))) if len(wave) else 0.0
        if peak <= 0.0:
            return np.asarray(wave, dtype=np.float32).copy()
        return clip_waveform(wave, fraction_of_peak * peak)

    return fn


def _gain_fn(gain_db: float) -> DegradeFn:
    def fn(wave: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        from deepfake_lib.augment import apply_gain

        return np.clip(apply_gain(wave, gain_db), -1.0, 1.0)

    return fn


def describe_codec_availability() -> dict[str, list[str]]:
    """Which lossy codecs of :data:`deepfake_lib.augment.CODECS` this libsndfile can run:
    ``{"available": [...], "unavailable": [...]}``."""
    from deepfake_lib.augment import CODECS, available_codecs

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
    :data:`deepfake_lib.augment.NOISE_KINDS`; ``"babble"`` is about 10x the cost of
    ``"speech_shaped"``) at each SNR in ``snrs_db`` (dB); ``telephone`` (8 kHz round trip,
    300-3400 Hz); ``codec``: each lossy codec in ``codecs`` (default: every one that
    :func:`deepfake_lib.augment.available_codecs` reports) through libsndfile's real encoder and
    decoder at its default quality; ``reverb`` at each RT60 in ``rt60s_s`` (s, 50% wet);
    ``clipping`` at ``clip_fraction`` of each clip's own peak; ``gain`` by each of ``gains_db``
    (dB), then clipped to [-1, 1] as a real recorder would (so +12 dB also clips loud clips).
    Codecs asked for but unavailable are left out with a warning.
    """
    from deepfake_lib.augment import available_codecs

    out = [Condition("clean", "clean", None, _clean, "", "the test clips as decoded")]
    for kind in noise_kinds:
        label = kind.replace("_", "-")
        for snr in snrs_db:
            out.append(Condition(f"{label} noise {snr:g} dB", f"noise ({label})", float(snr), _noise_fn(kind, float(snr)),
                                 "dB SNR", f"additive {label} noise at {snr:g} dB SNR"))
    out.append(Condition("telephone 8 kHz", "telephone", 8000.0, _telephone, "Hz",
                         "resampled to 8 kHz and back, band-passed 300-3400 Hz"))
    have = available_codecs()
    wanted = list(have) if codecs is None else list(codecs)
    for codec in wanted:
        if codec not in have:
            log.warning("codec %s is not available in this libsndfile; its condition is left out", codec)
            continue
        out.append(Condition(codec, "codec", codec, _codec_fn(codec), "codec",
                             f"{codec} encode + decode with libsndfile (default quality)"))
    for rt60 in rt60s_s:
        out.append(Condition(f"reverb RT60 {rt60:g} s", "reverb", float(rt60), _reverb_fn(float(rt60)), "s RT60",
                             "noise impulse response, 50% wet"))
    out.append(Condition(f"clipping at {clip_fraction:g} x peak", "clipping", float(clip_fraction),
                         _clipping_fn(float(clip_fraction)), "fraction of peak",
                         f"hard clipping at {clip_fraction:g} of the clip's peak"))
    for gain in gains_db:
        out.append(Condition(f"gain {gain:+g} dB", "gain", float(gain), _gain_fn(float(gain)), "dB",
                             "level change, then clipped to [-1, 1] like a recorder"))
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise ValueError(f"robustness condition names must be unique, got {names}")
    return out


def _centre_crop(wave: np.ndarray, max_duration_s: float | None, sample_rate: int = TARGET_SAMPLE_RATE) -> np.ndarray:
    if max_duration_s is None:
        return wave
    n = int(round(max_duration_s * sample_rate))
    if n <= 0:
        raise ValueError(f"max_duration_s must be positive seconds, got {max_duration_s}")
    if wave.size <= n:
        return wave
    start = (wave.size - n) // 2
    return wave[start:start + n]


def _flat_top_fraction(wave: np.ndarray) -> float:
    """Share of samples at the clip's own peak (|x| >= 0.999 max|x|); about 1/len for an unclipped clip."""
    a = np.abs(wave)
    peak = float(a.max()) if a.size else 0.0
    return float(np.mean(a >= 0.999 * peak)) if peak > 0 else 0.0


def condition_key(condition: Condition) -> int:
    """Stable number of a condition (CRC-32 of its name): its part of every clip's seed."""
    return zlib.crc32(condition.name.encode("utf-8"))


def degrade_waves(
    waves: Sequence[np.ndarray], condition: Condition, *, seed: int = 0, sample_rate: int = TARGET_SAMPLE_RATE,
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
            raise ValueError(f"condition {condition.name!r} changed the length of clip {i}: {np.shape(wave)} -> {y.shape}")
        out.append(y)
    return out


def evaluate_robustness(
    model: Any,
    feature_extractor: Any,
    test_ds: Any,
    *,
    conditions: Sequence[Condition] | None = None,
    seed: int = 0,
    n_bootstrap: int = 1000,
    batch_size: int = 32,
    threshold: float | None = None,
    max_duration_s: float | None = None,
    precision: str = "fp32",
    out_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """EER (with CI) and AUC of the model on the test clips under each degradation.

    ``test_ds`` is an evaluation dataset (a :class:`~deepfake_lib.train.ClipDataset` with
    ``train=False``, or a :class:`WaveListDataset`): its clean 16 kHz clips are degraded by every
    condition (:func:`robustness_conditions` by default; see :func:`degrade_waves` for the
    seeding: ``[seed, clip index, condition key]``) and scored. Training data is never touched. ``threshold`` (a score, e.g. the run's
    validation-EER threshold) adds accuracy, FAR and FRR at that fixed operating point, which
    shows score drift that the threshold-free EER hides. ``max_duration_s`` (s) keeps only the
    central part of longer clips before degrading (cost grows with audio length; with a crop
    the clean row is the sweep's reference, not the run's test EER). ``precision`` is passed
    to :func:`~deepfake_lib.train.predict_logits` (``"bf16"`` is faster on CPUs with bf16).

    Returns one row per condition: condition, family, parameter, unit, eer, eer_low, eer_high,
    auc, auc_low, auc_high, n, delta_eer (vs clean), mean_score_real, mean_score_fake,
    clipped_fraction (mean share of samples at their clip's own peak, |x| >= 0.999 max|x|:
    flattened tops) [, accuracy, far, frr ... at ``threshold``].
    ``df.attrs`` holds ``codecs`` (available/unavailable) and ``seconds`` per condition.
    Writes ``robustness.csv``, ``robustness_scores.csv`` (per clip and condition) and
    ``robustness_meta.json`` to ``out_dir``.
    """
    conditions = list(conditions) if conditions is not None else robustness_conditions()
    meta = _clip_metadata(test_ds)
    labels = meta["label"].to_numpy()
    groups = meta["utterance_id"].to_numpy().astype(str)
    clean = [_centre_crop(np.asarray(test_ds.load(i), dtype=np.float32), max_duration_s) for i in range(len(test_ds))]
    rows, score_frames, seconds = [], [], {}
    for cond in conditions:
        started = time.perf_counter()
        waves = degrade_waves(clean, cond, seed=seed)
        scores = _score_waves(model, feature_extractor, waves, batch_size=batch_size, precision=precision)
        clipped = float(np.mean([_flat_top_fraction(w) for w in waves])) if waves else 0.0
        row = {"condition": cond.name, "family": cond.family, "parameter": cond.parameter, "unit": cond.unit}
        row.update(_eer_row(labels, scores, groups, n_bootstrap=n_bootstrap, seed=seed, threshold=threshold))
        row.update(n=len(waves), mean_score_real=float(np.mean(scores[labels == 1])) if (labels == 1).any() else float("nan"),
                   mean_score_fake=float(np.mean(scores[labels == 0])) if (labels == 0).any() else float("nan"),
                   clipped_fraction=clipped)
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
    folder = _save_dir(out_dir)
    if folder is not None:
        table.to_csv(folder / "robustness.csv", index=False)
        pd.concat(score_frames, ignore_index=True).to_csv(folder / "robustness_scores.csv", index=False)
        _write_json(folder / "robustness_meta.json", {
            "seed": seed, "n_bootstrap": n_bootstrap, "threshold": threshold, "precision": precision,
            "max_duration_s": max_duration_s, "audio_seconds_per_condition": round(sum(len(w) for w in clean) / TARGET_SAMPLE_RATE, 1),
            "codecs": codecs, "seconds": seconds, "total_seconds": round(sum(seconds.values()), 2),
            "conditions": [{"name": c.name, "family": c.family, "parameter": c.parameter, "unit": c.unit, "note": c.note}
                           for c in conditions],
        })
    return table


# --------------------------------------------------------------------------------------
# 2. per-attack EER
# --------------------------------------------------------------------------------------
def per_attack_eer(
    scores: pd.DataFrame,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    out_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """EER of each attack's spoofs against all bona fide clips, plus the pooled row.

    ``scores``: a per-clip table with ``label``, ``attack``, ``score`` (and ``utterance_id`` for
    grouped intervals), e.g. ``test_scores.csv``. Returns rows attack, n_bonafide, n_spoof,
    eer, eer_low, eer_high, auc, auc_low, auc_high; the last row is ``"pooled"`` (all spoofs).
    Writes ``per_attack.csv``.
    """
    _require_columns(scores, ("label", "attack", "score"), "scores")
    labels = scores["label"].to_numpy(dtype=np.int64)
    bona = labels == 1
    if not bona.any() or bona.all():
        raise ValueError("per_attack_eer: scores need both bona fide (label 1) and spoofed (label 0) clips")
    groups = scores["utterance_id"].astype(str).to_numpy() if "utterance_id" in scores else None
    attacks = sorted(set(scores.loc[~bona, "attack"].astype(str)))
    rows = []
    for attack in [*attacks, "pooled"]:
        keep = bona | ((scores["attack"].astype(str) == attack).to_numpy() if attack != "pooled" else ~bona)
        row = {"attack": attack, "n_bonafide": int(bona.sum()), "n_spoof": int((keep & ~bona).sum())}
        row.update(_eer_row(labels[keep], scores["score"].to_numpy(float)[keep],
                            groups[keep] if groups is not None else None, n_bootstrap=n_bootstrap, seed=seed))
        rows.append(row)
    table = pd.DataFrame(rows)
    folder = _save_dir(out_dir)
    if folder is not None:
        table.to_csv(folder / "per_attack.csv", index=False)
    return table


def _require_columns(df: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}; it has {list(df.columns)}")


# --------------------------------------------------------------------------------------
# 3. leave one attack out
# --------------------------------------------------------------------------------------
def _spoof_attacks(ds: Any) -> list[str]:
    return sorted({a for a, y in zip(ds["attack"], ds["label"]) if int(y) == 0})


def _drop_attack(ds: Any, attack: str) -> Any:
    keep = [i for i, (a, y) in enumerate(zip(ds["attack"], ds["label"])) if not (int(y) == 0 and a == attack)]
    return ds.select(keep)


def leave_one_attack_out(
    cfg: Any,
    splits: Any,
    *,
    epochs: int,
    out_dir: str | os.PathLike[str],
    attacks: Sequence[str] | None = None,
    n_bootstrap: int | None = None,
    keep_checkpoints: bool = False,
) -> pd.DataFrame:
    """Retrain with each attack held out and compare its (unseen) EER with the seen attacks'.

    For each attack A (``attacks``; default every spoof attack in the train split): fine-tune
    ``cfg`` for ``epochs`` epochs (cheap runs) on train and validation without A's spoofs, into
    ``<out_dir>/loao_<A>``, and score the full test split. Unseen EER: test bona fide vs test
    spoofs of A; seen EER: test bona fide vs the other attacks' spoofs; both with grouped
    bootstrap intervals (``n_bootstrap``, default ``cfg.n_bootstrap``). Returns one row per
    attack (attack, unseen_eer, unseen_eer_low, unseen_eer_high, seen_eer, ..., n_bonafide,
    n_unseen_spoof, n_seen_spoof, epochs, epochs_run, best_epoch, run_dir, note) and writes
    ``<out_dir>/loao.csv``. Checkpoint folders are deleted unless ``keep_checkpoints``.
    """
    import datasets

    from deepfake_lib.train import RUN_FILES, fine_tune

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    all_attacks = _spoof_attacks(splits["train"])
    attacks = list(attacks) if attacks is not None else all_attacks
    if len(all_attacks) < 2:
        raise ValueError(f"leave_one_attack_out needs at least two spoof attacks in the train split, found {all_attacks}")
    unknown = [a for a in attacks if a not in all_attacks]
    if unknown:
        raise ValueError(f"attacks {unknown} have no spoofs in the train split (attacks there: {all_attacks})")
    n_boot = cfg.n_bootstrap if n_bootstrap is None else n_bootstrap
    rows = []
    for attack in attacks:
        run_dir = out / f"loao_{_slug(attack)}"
        data = datasets.DatasetDict({
            "train": _drop_attack(splits["train"], attack),
            "validation": _drop_attack(splits["validation"], attack),
            "test": splits["test"],
        })
        started = time.perf_counter()
        result = fine_tune(cfg.replace(epochs=int(epochs), run_dir=str(run_dir)), data=data, run_dir=run_dir,
                           record_epoch_scores=False, shortcut_control=False)
        t = result.test_scores
        labels = t["label"].to_numpy(np.int64)
        scores = t["score"].to_numpy(float)
        groups = t["utterance_id"].astype(str).to_numpy()
        bona = labels == 1
        is_a = (t["attack"].astype(str) == attack).to_numpy() & ~bona
        other = ~bona & ~is_a
        row: dict[str, Any] = {"attack": attack}
        for prefix, mask in (("unseen_", bona | is_a), ("seen_", bona | other)):
            row.update(_eer_row(labels[mask], scores[mask], groups[mask], n_bootstrap=n_boot, seed=cfg.seed, prefix=prefix))
        row.update(n_bonafide=int(bona.sum()), n_unseen_spoof=int(is_a.sum()), n_seen_spoof=int(other.sum()),
                   epochs=int(epochs), epochs_run=result.metrics.get("epochs_run"), best_epoch=result.metrics.get("best_epoch"),
                   seconds=round(time.perf_counter() - started, 1), run_dir=str(run_dir),
                   note=f"cheap run: {int(epochs)} epoch(s), not the full training budget")
        rows.append(row)
        if not keep_checkpoints:
            shutil.rmtree(run_dir / RUN_FILES["checkpoints"], ignore_errors=True)
        log.info("LOAO %s: unseen EER %.3f, seen EER %.3f", attack, row["unseen_eer"], row["seen_eer"])
    table = pd.DataFrame(rows)
    table.to_csv(out / "loao.csv", index=False)
    return table


# --------------------------------------------------------------------------------------
# 4. calibration and the operating threshold
# --------------------------------------------------------------------------------------
def _logits_of(scores: pd.DataFrame, name: str) -> np.ndarray:
    _require_columns(scores, ("label", "logit_fake", "logit_real"), name)
    return scores[["logit_fake", "logit_real"]].to_numpy(dtype=np.float64)


def _operating_point(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    from deepfake_lib.metrics import compute_metrics

    m = compute_metrics(labels, scores, threshold=threshold)
    return {k: m[k] for k in ("threshold", "accuracy", "balanced_accuracy", "far", "frr")}


def calibrate_scores(
    val_scores: pd.DataFrame,
    test_scores: pd.DataFrame,
    *,
    n_bins: int = 10,
    min_clips_per_class: int = 10,
    out_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Temperature scaling fitted on validation logits only, and the operating threshold.

    ``val_scores``/``test_scores``: per-clip tables with ``label``, ``logit_fake``,
    ``logit_real`` (``validation_scores.csv``, ``test_scores.csv``). The temperature ``T``
    minimises the validation negative log-likelihood; test clips never influence it.

    Returns ``temperature``; test ``ece_before``/``ece_after`` (P(Real), ``n_bins`` bins),
    ``nll_*`` and ``brier_*``; ``reliability_before``/``reliability_after`` (curves of
    :func:`~deepfake_lib.metrics.compute_reliability_curve`); ``operating_points``: validation
    and test accuracy, balanced accuracy, FAR, FRR at ``"validation_eer"`` (the validation EER
    threshold) and at ``"probability_0.5"`` (score 0; temperature scaling does not move it);
    and ``recommendation``: which threshold the Detector should use, with ``reasons`` (the
    validation-EER threshold when validation holds at least ``min_clips_per_class`` clips of
    each class, else 0.5) and ``test_agrees`` (whether test balanced accuracy is at least as
    good there). Writes ``calibration.json``.
    """
    from scipy.special import expit

    from deepfake_lib.metrics import (
        compute_eer,
        compute_reliability_curve,
        expected_calibration_error,
        fit_temperature,
        score_from_logits,
        softmax_probability,
    )

    val_logits = _logits_of(val_scores, "val_scores")
    test_logits = _logits_of(test_scores, "test_scores")
    val_labels = val_scores["label"].to_numpy(np.int64)
    test_labels = test_scores["label"].to_numpy(np.int64)
    temperature = fit_temperature(val_logits, val_labels)
    before = softmax_probability(test_logits)
    after = softmax_probability(test_logits, temperature=temperature)

    def nll(p: np.ndarray) -> float:
        q = np.clip(np.where(test_labels == 1, p, 1 - p), 1e-12, 1.0)
        return float(-np.mean(np.log(q)))

    val_score = score_from_logits(val_logits)
    test_score = score_from_logits(test_logits)
    val_eer = compute_eer(val_labels, val_score)
    thresholds = {"validation_eer": val_eer.threshold, "probability_0.5": 0.0}
    points = {name: {"validation": _operating_point(val_labels, val_score, thr),
                     "test": _operating_point(test_labels, test_score, thr)} for name, thr in thresholds.items()}
    n_val_real = int(val_labels.sum())
    n_val_fake = int(val_labels.size - n_val_real)
    enough = min(n_val_real, n_val_fake) >= min_clips_per_class
    if enough:
        chosen, other = "validation_eer", "probability_0.5"
        reasons = [
            f"it was chosen on held-out validation clips ({n_val_real} bona fide, {n_val_fake} spoofed), never on test",
            "it balances false acceptances and false rejections, so it does not depend on the class prior "
            "or on the scores being calibrated",
            "0.5 is only the right cut when P(Real) is calibrated and deployment has the training class balance",
        ]
    else:
        chosen, other = "probability_0.5", "validation_eer"
        reasons = [
            f"validation has only {n_val_real} bona fide and {n_val_fake} spoofed clips (< {min_clips_per_class} "
            "of a class): an EER threshold placed on so few clips is noise",
            "score 0 (P(Real) = 0.5) is the classifier's own decision boundary and needs no tuning",
        ]
    test_chosen = points[chosen]["test"]["balanced_accuracy"]
    test_other = points[other]["test"]["balanced_accuracy"]
    result: dict[str, Any] = {
        "temperature": temperature,
        "fitted_on": "validation logits",
        "n_validation": int(val_labels.size),
        "n_test": int(test_labels.size),
        "n_bins": int(n_bins),
        "ece_before": expected_calibration_error(test_labels, before, n_bins=n_bins),
        "ece_after": expected_calibration_error(test_labels, after, n_bins=n_bins),
        "nll_before": nll(before),
        "nll_after": nll(after),
        "brier_before": float(np.mean((before - test_labels) ** 2)),
        "brier_after": float(np.mean((after - test_labels) ** 2)),
        "reliability_before": compute_reliability_curve(test_labels, before, n_bins=n_bins),
        "reliability_after": compute_reliability_curve(test_labels, after, n_bins=n_bins),
        "operating_points": points,
        "recommendation": {
            "threshold_name": chosen,
            "score_threshold": float(thresholds[chosen]),
            "probability_threshold_raw": float(expit(thresholds[chosen])),
            "probability_threshold_calibrated": float(expit(thresholds[chosen] / temperature)),
            "reasons": reasons,
            "test_agrees": bool(test_chosen >= test_other),
            "test_balanced_accuracy": {chosen: test_chosen, other: test_other},
            "note": "temperature scaling changes probabilities, not the ranking: EER, AUC and the score-0 cut stay the same",
        },
    }
    folder = _save_dir(out_dir)
    if folder is not None:
        _write_json(folder / "calibration.json", result)
    return result


# --------------------------------------------------------------------------------------
# 5. classical baselines and the shortcut control
# --------------------------------------------------------------------------------------
def _decode_split(ds: Any) -> tuple[list[np.ndarray], list[int], list[np.ndarray]]:
    """Native-rate waves, their rates (Hz) and 16 kHz waves of every clip of a split."""
    from deepfake_lib.audio import resample
    from deepfake_lib.data import load_example_audio

    native, rates, w16 = [], [], []
    for ex in ds:
        sr = int(ex["sample_rate"])
        wave = load_example_audio(ex, target_sr=sr)
        native.append(wave)
        rates.append(sr)
        w16.append(resample(wave, sr, TARGET_SAMPLE_RATE))
    return native, rates, w16


def _trivial_matrix(native: Sequence[np.ndarray], rates: Sequence[int]) -> np.ndarray:
    from deepfake_lib.baselines import extract_trivial_features

    return np.stack([extract_trivial_features(w, r) for w, r in zip(native, rates)])


def summarize_system(
    system: str,
    scores: pd.DataFrame,
    *,
    threshold: float | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    """One row of the baseline table for any scored system (e.g. the fine-tuned model's
    ``test_scores``): system, eer/auc/accuracy with ``_low``/``_high`` bounds, threshold, n_test.

    ``scores`` needs ``label`` and ``score`` (``utterance_id`` for grouped intervals);
    accuracy is taken at ``threshold`` (a score; default the test EER threshold, which flatters).
    ``extra`` columns are appended as they are.
    """
    from deepfake_lib.metrics import compute_eer

    _require_columns(scores, ("label", "score"), "scores")
    labels = scores["label"].to_numpy(np.int64)
    values = scores["score"].to_numpy(float)
    groups = scores["utterance_id"].astype(str).to_numpy() if "utterance_id" in scores else None
    thr = compute_eer(labels, values).threshold if threshold is None else float(threshold)
    row = {"system": system}
    row.update(_eer_row(labels, values, groups, n_bootstrap=n_bootstrap, seed=seed, threshold=thr))
    row.update(threshold=thr, n_test=int(labels.size), **extra)
    return row


def evaluate_classical_baselines(
    splits: Any,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    gmm_components: int = 32,
    out_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """LFCC-GMM, LFCC + logistic regression and the trivial-feature shortcut control.

    Each system is trained on the train split only and scored on test: EER, AUC and accuracy
    with grouped bootstrap intervals. Accuracy is taken at the validation EER threshold when
    the splits have a validation split (as for the fine-tuned model), else at score 0.
    Rows in the order of :data:`SYSTEM_LFCC_GMM`, :data:`SYSTEM_LFCC_LR`,
    :data:`SYSTEM_TRIVIAL_LR`; columns as :func:`summarize_system` plus n_train, features,
    threshold_from, seconds. Writes ``baselines.csv`` and ``baselines_scores.csv``.
    """
    from deepfake_lib.baselines import (
        TRIVIAL_FEATURES,
        extract_lfcc_stats,
        fit_lfcc_gmm,
        fit_logistic_baseline,
        score_baseline,
    )
    from deepfake_lib.metrics import compute_eer

    names = [s for s in ("train", "validation", "test") if s in splits]
    decoded = {s: _decode_split(splits[s]) for s in names}
    labels = {s: np.asarray(splits[s]["label"], dtype=np.int64) for s in names}
    systems: dict[str, tuple[Callable[[], Any], Callable[[Any, str], np.ndarray], str]] = {}
    lfcc = {s: np.stack([extract_lfcc_stats(w) for w in decoded[s][2]]) for s in names}
    trivial = {s: _trivial_matrix(decoded[s][0], decoded[s][1]) for s in names}
    systems[SYSTEM_LFCC_GMM] = (
        lambda: fit_lfcc_gmm(decoded["train"][2], labels["train"], n_components=gmm_components, seed=seed),
        lambda m, s: score_baseline(m, decoded[s][2]),
        "frame LFCC (20) + deltas, one diagonal GMM per class",
    )
    systems[SYSTEM_LFCC_LR] = (
        lambda: fit_logistic_baseline(lfcc["train"], labels["train"], seed=seed),
        lambda m, s: score_baseline(m, lfcc[s]),
        "mean and std of LFCC (20) + deltas",
    )
    systems[SYSTEM_TRIVIAL_LR] = (
        lambda: fit_logistic_baseline(trivial["train"], labels["train"], seed=seed),
        lambda m, s: score_baseline(m, trivial[s]),
        ", ".join(TRIVIAL_FEATURES),
    )
    rows, frames = [], []
    test_meta = splits["test"].select_columns(["clip_id", "utterance_id", "label", "attack"]).to_pandas()
    for system, (fit, score, features) in systems.items():
        started = time.perf_counter()
        model = fit()
        test_scores = test_meta.assign(score=score(model, "test"))
        if "validation" in names:
            threshold = compute_eer(labels["validation"], score(model, "validation")).threshold
            source = "validation EER"
        else:
            threshold, source = 0.0, "score 0 (no validation split)"
        rows.append(summarize_system(system, test_scores, threshold=threshold, n_bootstrap=n_bootstrap, seed=seed,
                                     n_train=int(labels["train"].size), features=features, threshold_from=source,
                                     seconds=round(time.perf_counter() - started, 2)))
        frames.append(test_scores.assign(system=system))
    table = pd.DataFrame(rows)
    folder = _save_dir(out_dir)
    if folder is not None:
        table.to_csv(folder / "baselines.csv", index=False)
        pd.concat(frames, ignore_index=True).to_csv(folder / "baselines_scores.csv", index=False)
    return table


def evaluate_shortcut_control(splits: Any, *, n_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Can trivial features (duration, level, peak, sample rate, zero-crossing rate) tell the classes apart?

    A class-balanced logistic regression on :func:`deepfake_lib.baselines.extract_trivial_features`
    (native-rate clips) is trained on the train split and scored on test. Returns
    :func:`~deepfake_lib.metrics.summarize_scores` (grouped by utterance) at score 0, the
    regression's own decision boundary (no threshold tuned on test), plus ``system``,
    ``features``, ``n_train`` and ``threshold_from``. On an honest corpus the AUC and balanced
    accuracy stay near 0.5.
    """
    from deepfake_lib.baselines import TRIVIAL_FEATURES, fit_logistic_baseline, score_baseline
    from deepfake_lib.metrics import summarize_scores

    train_native, train_rates, _ = _decode_split(splits["train"])
    test_native, test_rates, _ = _decode_split(splits["test"])
    model = fit_logistic_baseline(_trivial_matrix(train_native, train_rates), np.asarray(splits["train"]["label"]), seed=seed)
    scores = score_baseline(model, _trivial_matrix(test_native, test_rates))
    report = summarize_scores(np.asarray(splits["test"]["label"]), scores, groups=np.asarray(splits["test"]["utterance_id"]),
                              threshold=0.0, n_bootstrap=n_bootstrap, seed=seed)
    report.update(system=SYSTEM_TRIVIAL_LR, features=list(TRIVIAL_FEATURES), n_train=len(train_native),
                  threshold_from="score 0 (the regression's decision boundary)")
    return report


# --------------------------------------------------------------------------------------
# 6. where the model listens
# --------------------------------------------------------------------------------------
def score_windows(
    model: Any,
    feature_extractor: Any,
    wave: np.ndarray,
    *,
    window_s: float = 1.0,
    hop_s: float = 0.25,
    sample_rate: int = TARGET_SAMPLE_RATE,
    batch_size: int = 32,
    out_dir: str | os.PathLike[str] | None = None,
    name: str = "windows",
) -> pd.DataFrame:
    """Score timeline of a long clip: one score per window of ``window_s`` seconds every ``hop_s`` s.

    ``wave`` is float32 ``[samples]`` at ``sample_rate`` (16 kHz). Windows lie inside the clip
    (no padding); a last window is aligned to the end so every sample is covered; a clip shorter
    than one window is scored whole. Returns start_s, end_s, center_s, score, prob_real; writes
    ``<name>.csv`` to ``out_dir``.
    """
    from scipy.special import expit

    x = np.asarray(wave, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"score_windows: expected a non-empty [samples] wave, got shape {x.shape}")
    if not (window_s > 0 and hop_s > 0):
        raise ValueError(f"score_windows: window_s ({window_s}) and hop_s ({hop_s}) must be positive seconds")
    win = int(round(window_s * sample_rate))
    hop = max(1, int(round(hop_s * sample_rate)))
    if x.size <= win:
        starts = np.array([0])
        win = x.size
    else:
        starts = np.arange(0, x.size - win + 1, hop)
        if starts[-1] + win < x.size:
            starts = np.append(starts, x.size - win)
    windows = [x[s:s + win] for s in starts]
    scores = _score_waves(model, feature_extractor, windows, batch_size=batch_size)
    table = pd.DataFrame({
        "start_s": starts / sample_rate,
        "end_s": (starts + win) / sample_rate,
        "center_s": (starts + win / 2) / sample_rate,
        "score": scores,
        "prob_real": expit(scores),
    })
    folder = _save_dir(out_dir)
    if folder is not None:
        table.to_csv(folder / f"{_slug(name)}.csv", index=False)
    return table


def occlusion_map(
    model: Any,
    feature_extractor: Any,
    wave: np.ndarray,
    *,
    n_time_segments: int = 8,
    band_edges_hz: Sequence[float] = (0, 500, 1000, 2000, 3000, 4000, 5000, 6000, 8000),
    sample_rate: int = TARGET_SAMPLE_RATE,
    n_fft: int = 512,
    hop_length: int = 128,
    batch_size: int = 16,
    out_dir: str | os.PathLike[str] | None = None,
    name: str = "occlusion",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score change when one frequency band in one time segment is removed.

    The clip's STFT (Hann, ``n_fft``, ``hop_length``) has the bins of band ``b``
    (``band_edges_hz[b] <= f < band_edges_hz[b+1]``; the top band includes Nyquist) in the
    frames centred in time segment ``s`` (``n_time_segments`` equal segments) set to zero, and
    is inverted. Returns ``(matrix [bands, segments], band_edges_hz [bands+1],
    segment_edges_s [segments+1])`` with ``matrix = score(occluded) - score(resynthesised
    original)`` in log-odds: negative where removing the region makes the clip look less
    bona fide (the model relied on it as evidence of Real), positive where it held spoof
    evidence. Zeroing leaves a spectral hole, itself unnatural; read the map comparatively.
    All ``bands x segments`` variants are scored in batches. Writes ``<name>.json`` (matrix,
    edges and the original's score) to ``out_dir``.
    """
    import torch

    x = np.asarray(wave, dtype=np.float32)
    edges = np.asarray(band_edges_hz, dtype=np.float64)
    if x.ndim != 1 or x.size < n_fft:
        raise ValueError(f"occlusion_map: expected a [samples] wave of at least n_fft={n_fft} samples, got shape {x.shape}")
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0) or edges[0] < 0 or edges[-1] > sample_rate / 2:
        raise ValueError(f"occlusion_map: band_edges_hz must increase within [0, {sample_rate / 2:g}] Hz, got {list(edges)}")
    if int(n_time_segments) < 1:
        raise ValueError(f"occlusion_map: n_time_segments must be >= 1, got {n_time_segments}")
    n_seg = int(n_time_segments)
    window = torch.hann_window(n_fft)
    spec = torch.stft(torch.from_numpy(x), n_fft, hop_length, window=window, center=True, return_complex=True)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    frame_t = np.arange(spec.shape[-1]) * hop_length / sample_rate
    duration = x.size / sample_rate
    seg_edges = np.linspace(0.0, duration, n_seg + 1)
    seg_of_frame = np.clip(np.searchsorted(seg_edges, frame_t, side="right") - 1, 0, n_seg - 1)

    def invert(s: torch.Tensor) -> np.ndarray:
        return torch.istft(s, n_fft, hop_length, window=window, center=True, length=x.size).numpy().astype(np.float32)

    variants: list[np.ndarray] = [invert(spec)]
    for b in range(edges.size - 1):
        top = b == edges.size - 2
        in_band = (freqs >= edges[b]) & ((freqs <= edges[b + 1]) if top else (freqs < edges[b + 1]))
        masks = torch.ones((n_seg, *spec.shape), dtype=torch.float32)
        for s in range(n_seg):
            masks[s][np.ix_(in_band, seg_of_frame == s)] = 0.0
        out = invert(spec.unsqueeze(0) * masks)
        variants.extend(out[s] for s in range(n_seg))
    scores = _score_waves(model, feature_extractor, variants, batch_size=batch_size)
    matrix = (scores[1:] - scores[0]).reshape(edges.size - 1, n_seg)
    folder = _save_dir(out_dir)
    if folder is not None:
        _write_json(folder / f"{_slug(name)}.json", {"matrix": matrix, "band_edges_hz": edges, "segment_edges_s": seg_edges,
                                                     "original_score": float(scores[0]), "n_fft": n_fft,
                                                     "hop_length": hop_length})
    return matrix, edges, seg_edges


# --------------------------------------------------------------------------------------
# 7. cross-source evaluation
# --------------------------------------------------------------------------------------
def evaluate_cross_source(
    run_dir: str | os.PathLike[str],
    source: str,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    out_dir: str | os.PathLike[str] | None = None,
    corpus_config: Any | None = None,
    max_clips: int | None = None,
    batch_size: int = 16,
) -> dict[str, Any]:
    """Score every clip of another data source with a run's model, at the run's threshold.

    "Train on one source, test on another through the same call": ``source`` is anything
    :func:`deepfake_lib.data.load_source` takes (a Hub id, a parquet file or folder, an
    audiofolder, ``"embedded"`` with ``corpus_config``); all its splits are pooled. The model
    comes from ``<run_dir>/model``, the threshold from ``metrics.json`` (validation EER of the
    run). ``max_clips`` takes a seeded random subset. Returns ``source``, ``train_source``,
    ``load_report``, ``n_clips``, ``threshold``, ``metrics`` (summarize_scores, or accuracy
    only when the source has a single class) and ``in_domain_test`` (the run's own test
    figures). Writes ``cross_source_<source>.json`` and ``..._scores.csv``.
    """
    import datasets

    from deepfake_lib.data import load_source
    from deepfake_lib.metrics import accuracy_at_threshold, summarize_scores
    from deepfake_lib.models import load_model
    from deepfake_lib.train import RUN_FILES, ClipDataset, predict_logits, scores_table

    run = Path(run_dir)
    metrics_path = run / RUN_FILES["metrics"]
    model_dir = run / RUN_FILES["model"]
    if not metrics_path.is_file() or not model_dir.is_dir():
        raise FileNotFoundError(f"{run}: needs {RUN_FILES['metrics']} and {RUN_FILES['model']}/ (a finished fine_tune run)")
    run_metrics = json.loads(metrics_path.read_text())
    threshold = float(run_metrics["threshold"]["value"])
    loaded = load_model(str(model_dir))
    dd, report = load_source(source, corpus_config=corpus_config)
    pooled = datasets.concatenate_datasets(list(dd.values())) if len(dd) > 1 else next(iter(dd.values()))
    if max_clips is not None and len(pooled) > max_clips:
        idx = np.sort(np.random.default_rng(seed).choice(len(pooled), int(max_clips), replace=False))
        pooled = pooled.select(idx)
    logits = predict_logits(loaded.model, loaded.feature_extractor, ClipDataset(pooled, train=False), batch_size=batch_size)
    table = scores_table(pooled, logits)
    labels = table["label"].to_numpy(np.int64)
    if 0 < labels.sum() < labels.size:
        summary = summarize_scores(labels, table["score"], groups=table["utterance_id"].astype(str), threshold=threshold,
                                   n_bootstrap=n_bootstrap, seed=seed)
    else:
        summary = {"accuracy": accuracy_at_threshold(labels, table["score"], threshold), "n": int(labels.size),
                   "n_real": int(labels.sum()), "n_fake": int(labels.size - labels.sum()),
                   "note": "one class only: EER and AUC are undefined; accuracy = share classified correctly"}
    test = run_metrics.get("test", {})
    result = {
        "run_dir": str(run),
        "source": source,
        "train_source": run_metrics.get("data_source"),
        "load_report": report.summary(),
        "n_clips": int(labels.size),
        "threshold": threshold,
        "threshold_from": "the run's validation EER threshold",
        "metrics": summary,
        "in_domain_test": {k: test.get(k) for k in ("eer", "auc", "accuracy", "n", "ci") if k in test},
    }
    folder = _save_dir(out_dir)
    if folder is not None:
        slug = _slug(source)
        _write_json(folder / f"cross_source_{slug}.json", result)
        table.to_csv(folder / f"cross_source_{slug}_scores.csv", index=False)
    return result


# --------------------------------------------------------------------------------------
# 8. the study's protocol against ours
# --------------------------------------------------------------------------------------
def waves_to_dataset(waves: Sequence[np.ndarray], rows: pd.DataFrame, *, sample_rate: int = TARGET_SAMPLE_RATE) -> Any:
    """A :class:`datasets.Dataset` in the project's common schema from in-memory waves.

    ``waves``: float32 ``[samples]`` at ``sample_rate`` Hz, stored as float WAV bytes in
    ``audio``; ``rows``: one row per wave with ``label``, ``clip_id`` and optionally
    ``utterance_id``, ``speaker_id``, ``attack``. ``sample_rate`` and ``duration`` (s) are set
    from the waves. Built from a plain struct and cast to ``Audio(decode=False)`` at the Arrow
    level (``Audio.encode_example`` would need torchcodec).
    """
    import datasets

    from deepfake_lib.audio import encode_audio
    from deepfake_lib.data import _features

    if len(waves) != len(rows):
        raise ValueError(f"waves_to_dataset: {len(waves)} waves but {len(rows)} rows")
    _require_columns(rows, ("label", "clip_id"), "rows")
    n = len(waves)
    clip_ids = rows["clip_id"].astype(str).tolist()
    data = {
        "audio": [{"bytes": encode_audio(np.asarray(w, dtype=np.float32), sample_rate, "WAV", "FLOAT"), "path": f"{c}.wav"}
                  for w, c in zip(waves, clip_ids)],
        "label": [int(v) for v in rows["label"]],
        "clip_id": clip_ids,
        "utterance_id": rows["utterance_id"].astype(str).tolist() if "utterance_id" in rows else clip_ids,
        "speaker_id": rows["speaker_id"].astype(str).tolist() if "speaker_id" in rows else [""] * n,
        "attack": rows["attack"].astype(str).tolist() if "attack" in rows else
        ["bonafide" if int(v) == 1 else "unknown" for v in rows["label"]],
        "sample_rate": [int(sample_rate)] * n,
        "duration": [len(w) / sample_rate for w in waves],
    }
    target = _features()
    struct = datasets.Features({**target, "audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}})
    return datasets.Dataset.from_dict(data, features=struct).cast_column("audio", datasets.Audio(decode=False))


def build_study_protocol_data(
    splits: Any,
    *,
    n_clips: int = 100,
    n_val: int = 10,
    seed: int = 0,
    snr_db_range: tuple[float, float] = STUDY_NOISE_SNR_DB,
    max_shift_s: float = STUDY_MAX_SHIFT_S,
) -> tuple[Any, dict[str, Any]]:
    """The study's data handling, reproduced on our clips (for :func:`run_original_protocol`).

    Takes ``n_clips`` clips, half of each class, at random from train + validation (never
    test); augments each ONCE before splitting (white noise at an SNR drawn from
    ``snr_db_range`` dB and a circular time shift of up to ``max_shift_s`` s, with
    :mod:`deepfake_lib.augment`); then splits at random, ignoring utterance groups, into
    ``n_clips - n_val`` train and ``n_val`` "validation" clips (redrawn until both classes are
    in validation). Returns ``(DatasetDict(train, validation, test = the same n_val clips),
    info)``; ``info`` lists the clip ids, the augmentation drawn per clip, and how many
    validation clips share an utterance with a training clip (the leak a group-blind split lets in).
    """
    import datasets

    from deepfake_lib.augment import add_noise, shift_time
    from deepfake_lib.data import load_example_audio

    pool = datasets.concatenate_datasets([splits["train"], splits["validation"]])
    labels = np.asarray(pool["label"], dtype=np.int64)
    rng = np.random.default_rng([int(seed), 20_240])
    picked: list[int] = []
    for cls, want in ((1, n_clips // 2), (0, n_clips - n_clips // 2)):
        idx = np.flatnonzero(labels == cls)
        if len(idx) < want:
            log.warning("study protocol: only %d clips of class %s available, wanted %d", len(idx), LABEL_NAMES[cls], want)
        picked.extend(rng.choice(idx, min(want, len(idx)), replace=False).tolist())
    picked = sorted(picked)
    if not 2 <= n_val < len(picked):
        raise ValueError(f"study protocol: n_val={n_val} must be at least 2 and below the {len(picked)} clips selected")
    subset = pool.select(picked)
    meta = subset.select_columns(["clip_id", "utterance_id", "speaker_id", "label", "attack"]).to_pandas()
    waves, augments = [], []
    for i in range(len(subset)):
        clean = load_example_audio(subset[i])
        clip_rng = np.random.default_rng([int(seed), 20_241, i])
        snr = float(clip_rng.uniform(*snr_db_range))
        shift = int(clip_rng.integers(-int(max_shift_s * TARGET_SAMPLE_RATE), int(max_shift_s * TARGET_SAMPLE_RATE) + 1))
        waves.append(shift_time(add_noise(clean, snr, clip_rng, kind="white"), shift, mode="roll"))
        augments.append({"clip_id": meta["clip_id"][i], "snr_db": round(snr, 2), "shift_s": round(shift / TARGET_SAMPLE_RATE, 4)})
    meta["clip_id"] = "study-" + meta["clip_id"].astype(str)
    augmented = waves_to_dataset(waves, meta)
    sub_labels = meta["label"].to_numpy()
    for _ in range(1000):
        order = rng.permutation(len(picked))
        val_idx = np.sort(order[:n_val])
        if 0 < sub_labels[val_idx].sum() < n_val:
            break
    else:  # pragma: no cover - needs a pathological class balance
        raise ValueError("study protocol: could not draw a validation set holding both classes")
    train_idx = np.sort(order[n_val:])
    val = augmented.select(val_idx)
    train = augmented.select(train_idx)
    leaked = sorted(set(val["utterance_id"]) & set(train["utterance_id"]))
    info = {
        "n_clips": len(picked),
        "n_train": len(train_idx),
        "n_val": int(n_val),
        "val_clip_ids": list(val["clip_id"]),
        "train_clip_ids": list(train["clip_id"]),
        "val_labels": [int(v) for v in val["label"]],
        "augmentation": augments,
        "augmentation_rule": (f"once per clip before splitting: white noise at {snr_db_range[0]:g}-{snr_db_range[1]:g} dB SNR "
                              f"and a circular shift of up to {max_shift_s:g} s"),
        "val_utterances_also_in_train": len(leaked),
    }
    return datasets.DatasetDict({"train": train, "validation": val, "test": val}), info


def run_original_protocol(
    cfg: Any,
    splits: Any,
    *,
    n_clips: int = 100,
    n_val: int = 10,
    epochs: int | None = None,
    out_dir: str | os.PathLike[str],
    n_bootstrap: int | None = None,
) -> dict[str, Any]:
    """Train and report the way the study did, then score the same model honestly.

    The data come from :func:`build_study_protocol_data` (augmented once before a group-blind
    split). ``cfg`` is fine-tuned for ``epochs`` (default ``cfg.epochs``) without on-the-fly
    augmentation into ``<out_dir>/study_protocol``, with the ``n_val`` augmented clips as both
    validation and test, so the Trainer picks its epoch on the very clips that are reported.
    Returns ``reported_accuracy`` (accuracy at P(Real) = 0.5, i.e. score 0, on those clips, as
    the study reported), ``reported_accuracy_ci`` (exact binomial 95%), and ``clean_test``:
    the same selected model on our clean, group-disjoint test split (summarize_scores at
    score 0: EER, AUC, accuracy with grouped CIs), plus the protocol details. Writes
    ``<out_dir>/study_protocol.json``.
    """
    from scipy.stats import binomtest

    from deepfake_lib.metrics import accuracy_at_threshold, summarize_scores
    from deepfake_lib.models import load_model
    from deepfake_lib.train import RUN_FILES, ClipDataset, fine_tune, predict_logits, scores_table

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data, info = build_study_protocol_data(splits, n_clips=n_clips, n_val=n_val, seed=cfg.seed)
    n_epochs = int(epochs) if epochs is not None else cfg.epochs
    run_dir = out / "study_protocol"
    started = time.perf_counter()
    result = fine_tune(cfg.replace(epochs=n_epochs, augment=False, run_dir=str(run_dir)), data=data, run_dir=run_dir,
                       record_epoch_scores=False, shortcut_control=False)
    shutil.rmtree(run_dir / RUN_FILES["checkpoints"], ignore_errors=True)
    val = result.validation_scores
    val_labels = val["label"].to_numpy(np.int64)
    reported = accuracy_at_threshold(val_labels, val["score"], 0.0)
    k = int(round(reported * len(val_labels)))
    ci = binomtest(k, len(val_labels)).proportion_ci(confidence_level=0.95, method="exact")
    loaded = load_model(str(result.model_dir))
    test_logits = predict_logits(loaded.model, loaded.feature_extractor, ClipDataset(splits["test"], train=False),
                                 batch_size=cfg.batch_size)
    test = scores_table(splits["test"], test_logits)
    n_boot = cfg.n_bootstrap if n_bootstrap is None else n_bootstrap
    clean = summarize_scores(test["label"], test["score"], groups=test["utterance_id"].astype(str), threshold=0.0,
                             n_bootstrap=n_boot, seed=cfg.seed)
    report = {
        "reported_accuracy": reported,
        "reported_accuracy_ci": [float(ci.low), float(ci.high)],
        "reported_on": f"{len(val_labels)} augmented clips that also picked the epoch (study protocol)",
        "clean_test": clean,
        "clean_test_note": "the same selected model on our clean, group-disjoint test split, accuracy at score 0",
        "epochs": n_epochs,
        "epochs_run": result.metrics.get("epochs_run"),
        "best_epoch": result.metrics.get("best_epoch"),
        "run_dir": str(run_dir),
        "seconds": round(time.perf_counter() - started, 1),
        **info,
    }
    _write_json(out / "study_protocol.json", report)
    test.to_csv(out / "study_protocol_clean_test_scores.csv", index=False)
    return report


def summarize_epoch_picking(
    epoch_scores: pd.DataFrame,
    *,
    n_val: int = 10,
    n_draws: int = 1000,
    seed: int = 0,
    selected_epoch: int | None = None,
    threshold: float = 0.0,
    out_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """How much picking the epoch on the clips you report flatters accuracy.

    ``epoch_scores``: ``epoch_scores.csv`` of a run (columns epoch, split, clip_id, label,
    score; test scores of every epoch). For each of ``n_draws`` random subsets of ``n_val``
    test clips, the best accuracy over epochs on that subset is what the study's protocol would
    report ("picked"); the honest figure is the accuracy of the validation-selected epoch
    (``selected_epoch``, e.g. ``metrics["best_epoch"]``; default: the epoch with the lowest
    validation EER in ``epoch_scores``, ties broken by AUC as in training) on the whole test split. Accuracy is at ``threshold``
    (score 0 = P(Real) 0.5, as the study used) for both. Returns ``picked`` and
    ``honest_subsets`` (the same subsets without picking) as {mean, median, p05, p95, draws},
    ``honest_accuracy``, ``inflation`` (picked mean - honest), and the epochs. Writes
    ``epoch_picking.json``.
    """
    from deepfake_lib.metrics import compute_metrics, selection_score

    _require_columns(epoch_scores, ("epoch", "split", "clip_id", "label", "score"), "epoch_scores")
    test = epoch_scores[epoch_scores["split"] == "test"]
    if test.empty:
        raise ValueError("epoch_scores has no test rows (split == 'test'); was the run made with record_epoch_scores=True?")
    wide = test.pivot_table(index="clip_id", columns="epoch", values="score", aggfunc="first")
    labels = test.groupby("clip_id")["label"].first().reindex(wide.index).to_numpy(np.int64)
    epochs = [int(e) for e in wide.columns]
    correct = ((wide.to_numpy(float).T >= threshold).astype(np.int64) == labels[None, :])  # [epochs, clips]
    if selected_epoch is None:
        val = epoch_scores[epoch_scores["split"] == "validation"]
        if val.empty:
            raise ValueError("pass selected_epoch: epoch_scores has no validation rows to select an epoch on")
        picks = {}
        for e, g in val.groupby("epoch"):
            m = compute_metrics(g["label"], g["score"])
            picks[int(e)] = selection_score(m["eer"], m["auc"])
        selected_epoch = min(picks, key=lambda e: (picks[e], e))
    if int(selected_epoch) not in epochs:
        raise ValueError(f"selected_epoch {selected_epoch} is not among the recorded epochs {epochs}")
    sel = epochs.index(int(selected_epoch))
    n_clips = correct.shape[1]
    if not 1 <= n_val <= n_clips:
        raise ValueError(f"n_val={n_val} must lie in [1, {n_clips}] (test clips recorded)")
    rng = np.random.default_rng(seed)
    subsets = np.argsort(rng.random((int(n_draws), n_clips)), axis=1)[:, :n_val]  # [draws, n_val]
    per_epoch = correct[:, subsets].mean(axis=2)  # [epochs, draws]
    picked = per_epoch.max(axis=0)
    honest_subsets = per_epoch[sel]
    honest = float(correct[sel].mean())

    def stats(v: np.ndarray) -> dict[str, Any]:
        return {"mean": float(v.mean()), "median": float(np.median(v)), "p05": float(np.percentile(v, 5)),
                "p95": float(np.percentile(v, 95)), "draws": [float(x) for x in v]}

    result = {
        "n_val": int(n_val), "n_draws": int(n_draws), "threshold": float(threshold), "n_test_clips": int(n_clips),
        "epochs": epochs, "selected_epoch": int(selected_epoch),
        "honest_accuracy": honest,
        "honest_subsets": stats(honest_subsets),
        "picked": stats(picked),
        "inflation": float(picked.mean() - honest),
        "share_picked_at_least_0.9": float(np.mean(picked >= 0.9)),
    }
    folder = _save_dir(out_dir)
    if folder is not None:
        _write_json(folder / "epoch_picking.json", result)
    return result


def compare_protocols(
    study: Mapping[str, Any],
    run_metrics: Mapping[str, Any],
    epoch_picking: Mapping[str, Any] | None = None,
    *,
    out_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """The side-by-side table of notebook 04: the study's protocol against ours.

    ``study``: :func:`run_original_protocol`; ``run_metrics``: our run's ``metrics.json``;
    ``epoch_picking``: :func:`summarize_epoch_picking` (optional). Rows: the study protocol's
    reported accuracy (on its augmented validation clips); the same model on our clean test
    split; our protocol (validation-selected epoch, test scored once, accuracy at the validation
    EER threshold); the epoch picked on random test subsets, next to the honest accuracy of
    the selected epoch. Columns: protocol, n_clips, accuracy (+ _low/_high), eer (+), auc (+),
    interval, note. Writes ``protocol_comparison.csv``.
    """
    nan = float("nan")

    def ci(report: Mapping[str, Any], key: str) -> tuple[float, float]:
        c = (report.get("ci") or {}).get(key)
        return (float(c[0]), float(c[1])) if c else (nan, nan)

    def metric_row(name: str, report: Mapping[str, Any], note: str) -> dict[str, Any]:
        row: dict[str, Any] = {"protocol": name, "n_clips": int(report.get("n", 0))}
        for key in ("accuracy", "eer", "auc"):
            lo, hi = ci(report, key)
            row.update({key: float(report.get(key, nan)), f"{key}_low": lo, f"{key}_high": hi})
        row.update(interval="95% bootstrap over utterances", note=note)
        return row

    n_rep = len(study.get("val_labels", [])) or int(study.get("n_val", 0))
    lo, hi = study.get("reported_accuracy_ci", [nan, nan])
    rows = [
        {"protocol": "study protocol: reported accuracy", "n_clips": n_rep, "accuracy": float(study["reported_accuracy"]),
         "accuracy_low": float(lo), "accuracy_high": float(hi), "eer": nan, "eer_low": nan, "eer_high": nan,
         "auc": nan, "auc_low": nan, "auc_high": nan, "interval": "95% exact binomial",
         "note": f"{n_rep} clips augmented before the split; the epoch was picked on them"},
        metric_row("study-protocol model on our clean test set", study["clean_test"],
                   "same model, clean group-disjoint test split, accuracy at P(Real) = 0.5"),
        metric_row("our protocol (validation-selected, test scored once)", run_metrics["test"],
                   "accuracy at the validation EER threshold"),
    ]
    if epoch_picking is not None:
        p = epoch_picking["picked"]
        rows.append({"protocol": f"our run, epoch picked on {epoch_picking['n_val']} test clips", "n_clips": epoch_picking["n_val"],
                     "accuracy": p["mean"], "accuracy_low": p["p05"], "accuracy_high": p["p95"],
                     "eer": nan, "eer_low": nan, "eer_high": nan, "auc": nan, "auc_low": nan, "auc_high": nan,
                     "interval": f"5-95% over {epoch_picking['n_draws']} random subsets",
                     "note": (f"honest accuracy of the selected epoch {epoch_picking['selected_epoch']}: "
                              f"{100 * epoch_picking['honest_accuracy']:.1f}%; inflation {100 * epoch_picking['inflation']:+.1f} points")})
    table = pd.DataFrame(rows)
    folder = _save_dir(out_dir)
    if folder is not None:
        table.to_csv(folder / "protocol_comparison.csv", index=False)
    return table
