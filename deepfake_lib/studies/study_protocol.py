"""The original study's protocol reproduced, and compared with ours: data augmented once before
a group-blind split, the epoch picked on the very clips that are reported, and how much that
flatters accuracy.

Conventions as in :mod:`deepfake_lib.evaluation.summaries`.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd
from scipy.stats import binomtest

from deepfake_lib import LABEL_NAMES, TARGET_SAMPLE_RATE
from deepfake_lib.audio.augmentation import add_noise, shift_time
from deepfake_lib.audio.io import encode_audio
from deepfake_lib.config import ExperimentConfig
from deepfake_lib.corpora.sources import _features, load_example_audio
from deepfake_lib.evaluation.error_rates import accuracy_at_threshold, selection_score
from deepfake_lib.evaluation.metrics import compute_metrics, summarize_scores
from deepfake_lib.evaluation.summaries import require_columns, save_dir, score_groups
from deepfake_lib.modeling.models import load_model
from deepfake_lib.modeling.training import fine_tune
from deepfake_lib.runs import RUN_FILES, write_json
from deepfake_lib.scoring import EvalClips, predict_logits, scores_table

__all__ = [
    "build_study_protocol_data",
    "compare_protocols",
    "run_original_protocol",
    "STUDY_MAX_SHIFT_S",
    "STUDY_NOISE_SNR_DB",
    "summarize_epoch_picking",
    "waves_to_dataset",
]

log = logging.getLogger(__name__)

STUDY_NOISE_SNR_DB: tuple[float, float] = (15.0, 30.0)
"""Range (dB) of the white-noise SNR drawn per clip when mimicking the study's augmentation."""
STUDY_MAX_SHIFT_S = 0.5
"""Largest circular time shift (s) drawn per clip when mimicking the study's augmentation."""


def waves_to_dataset(
    waves: Sequence[np.ndarray], rows: pd.DataFrame, *, sample_rate: int = TARGET_SAMPLE_RATE
) -> Any:
    """A :class:`datasets.Dataset` in the project's common schema from in-memory waves.

    ``waves``: float32 ``[samples]`` at ``sample_rate`` Hz, stored as float WAV bytes in
    ``audio``; ``rows``: one row per wave with ``label``, ``clip_id`` and optionally
    ``utterance_id``, ``speaker_id``, ``attack``. ``sample_rate`` and ``duration`` (s) are set
    from the waves. Built from a plain struct and cast to ``Audio(decode=False)`` at the Arrow
    level (``Audio.encode_example`` would need torchcodec).
    """
    if len(waves) != len(rows):
        raise ValueError(f"waves_to_dataset: {len(waves)} waves but {len(rows)} rows")
    require_columns(rows, ("label", "clip_id"), "rows")
    n = len(waves)
    clip_ids = rows["clip_id"].astype(str).tolist()
    data = {
        "audio": [
            {
                "bytes": encode_audio(np.asarray(w, dtype=np.float32), sample_rate, "WAV", "FLOAT"),
                "path": f"{c}.wav",
            }
            for w, c in zip(waves, clip_ids)
        ],
        "label": [int(v) for v in rows["label"]],
        "clip_id": clip_ids,
        "utterance_id": rows["utterance_id"].astype(str).tolist() if "utterance_id" in rows else clip_ids,
        "speaker_id": rows["speaker_id"].astype(str).tolist() if "speaker_id" in rows else [""] * n,
        "attack": rows["attack"].astype(str).tolist()
        if "attack" in rows
        else ["bonafide" if int(v) == 1 else "unknown" for v in rows["label"]],
        "sample_rate": [int(sample_rate)] * n,
        "duration": [len(w) / sample_rate for w in waves],
    }
    target = _features()
    struct = datasets.Features(
        {**target, "audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}}
    )
    return datasets.Dataset.from_dict(data, features=struct).cast_column(
        "audio", datasets.Audio(decode=False)
    )


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
    :mod:`deepfake_lib.audio.augmentation`); then splits at random, ignoring utterance groups, into
    ``n_clips - n_val`` train and ``n_val`` "validation" clips (redrawn until both classes are
    in validation). Returns ``(DatasetDict(train, validation, test = the same n_val clips),
    info)``; ``info`` lists the clip ids, the augmentation drawn per clip, and how many
    validation clips share an utterance with a training clip (the leak a group-blind split lets in).
    """
    pool = datasets.concatenate_datasets([splits["train"], splits["validation"]])
    labels = np.asarray(pool["label"], dtype=np.int64)
    rng = np.random.default_rng([int(seed), 20_240])
    picked: list[int] = []
    for cls, want in ((1, n_clips // 2), (0, n_clips - n_clips // 2)):
        idx = np.flatnonzero(labels == cls)
        if len(idx) < want:
            log.warning(
                "study protocol: only %d clips of class %s available, wanted %d",
                len(idx),
                LABEL_NAMES[cls],
                want,
            )
        picked.extend(rng.choice(idx, min(want, len(idx)), replace=False).tolist())
    picked = sorted(picked)
    if not 2 <= n_val < len(picked):
        raise ValueError(
            f"study protocol: n_val={n_val} must be at least 2 and below the {len(picked)} clips selected"
        )
    subset = pool.select(picked)
    meta = subset.select_columns(["clip_id", "utterance_id", "speaker_id", "label", "attack"]).to_pandas()
    waves, augments = [], []
    for i in range(len(subset)):
        clean = load_example_audio(subset[i])
        clip_rng = np.random.default_rng([int(seed), 20_241, i])
        snr = float(clip_rng.uniform(*snr_db_range))
        shift = int(
            clip_rng.integers(
                -int(max_shift_s * TARGET_SAMPLE_RATE), int(max_shift_s * TARGET_SAMPLE_RATE) + 1
            )
        )
        waves.append(shift_time(add_noise(clean, snr, clip_rng, kind="white"), shift, mode="roll"))
        augments.append(
            {
                "clip_id": meta["clip_id"][i],
                "snr_db": round(snr, 2),
                "shift_s": round(shift / TARGET_SAMPLE_RATE, 4),
            }
        )
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
        "augmentation_rule": (
            f"once per clip before splitting: white noise at {snr_db_range[0]:g}-{snr_db_range[1]:g} dB SNR "
            f"and a circular shift of up to {max_shift_s:g} s"
        ),
        "val_utterances_also_in_train": len(leaked),
    }
    return datasets.DatasetDict({"train": train, "validation": val, "test": val}), info


def run_original_protocol(
    cfg: ExperimentConfig,
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
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data, info = build_study_protocol_data(splits, n_clips=n_clips, n_val=n_val, seed=cfg.seed)
    n_epochs = int(epochs) if epochs is not None else cfg.epochs
    run_dir = out / "study_protocol"
    started = time.perf_counter()
    result = fine_tune(
        cfg.replace(epochs=n_epochs, augment_training=False, run_dir=str(run_dir)),
        data=data,
        run_dir=run_dir,
        record_epoch_scores=False,
        shortcut_control=False,
    )
    shutil.rmtree(run_dir / RUN_FILES["checkpoints"], ignore_errors=True)
    val = result.validation_scores
    val_labels = val["label"].to_numpy(np.int64)
    reported = accuracy_at_threshold(val_labels, val["score"], 0.0)
    k = int(round(reported * len(val_labels)))
    ci = binomtest(k, len(val_labels)).proportion_ci(confidence_level=0.95, method="exact")
    loaded = load_model(str(result.model_dir))
    test_clips = EvalClips.from_split(splits["test"])
    test_logits = predict_logits(
        loaded.model,
        loaded.feature_extractor,
        test_clips,
        batch_size=cfg.batch_size,
        window_s=cfg.eval_window_s,
    )
    test = scores_table(test_clips, test_logits)
    n_boot = cfg.n_bootstrap if n_bootstrap is None else n_bootstrap
    clean = summarize_scores(
        test["label"],
        test["score"],
        groups=score_groups(test),
        threshold=0.0,
        n_bootstrap=n_boot,
        seed=cfg.seed,
    )
    report = {
        "reported_accuracy": reported,
        "reported_accuracy_ci": [float(ci.low), float(ci.high)],
        "reported_on": f"{len(val_labels)} augmented clips that also picked the epoch (study protocol)",
        "clean_test": clean,
        "clean_test_note": (
            "the same selected model on our clean, group-disjoint test split, accuracy at score 0"
        ),
        "epochs": n_epochs,
        "epochs_run": result.metrics.get("epochs_run"),
        "best_epoch": result.metrics.get("best_epoch"),
        "run_dir": str(run_dir),
        "seconds": round(time.perf_counter() - started, 1),
        **info,
    }
    write_json(out / "study_protocol.json", report)
    test.to_csv(out / "study_protocol_clean_test_scores.csv", index=False)
    return report


def summarize_epoch_picking(
    epoch_scores: pd.DataFrame,
    *,
    n_val: int = 10,
    n_draws: int = 1000,
    seed: int = 0,
    selected_epoch: int | None = None,
    threshold: float | str = 0.0,
    out_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """How much picking the epoch on the clips you report flatters accuracy.

    ``epoch_scores``: ``epoch_scores.csv`` of a run (columns epoch, split, clip_id, label,
    score; test scores of every epoch). For each of ``n_draws`` random subsets of ``n_val``
    test clips, the best accuracy over epochs on that subset is what the study's protocol would
    report ("picked"); the honest figure is the accuracy of the validation-selected epoch
    (``selected_epoch``, e.g. ``metrics["best_epoch"]``; default: the epoch with the lowest
    validation EER in ``epoch_scores``, ties broken by AUC as in training) on the whole test split.
    Accuracy is at ``threshold`` for both: a score (0 = P(Real) 0.5, as the study used), or
    ``"validation_eer"``, each epoch's own validation EER threshold (as the run's test accuracy). Returns ``picked`` and
    ``honest_subsets`` (the same subsets without picking) as {mean, median, p05, p95, draws},
    ``honest_accuracy``, ``inflation`` (picked mean - honest), and the epochs. Writes
    ``epoch_picking.json``.
    """
    require_columns(epoch_scores, ("epoch", "split", "clip_id", "label", "score"), "epoch_scores")
    test = epoch_scores[epoch_scores["split"] == "test"]
    if test.empty:
        raise ValueError(
            "epoch_scores has no test rows (split == 'test'); was the run made with record_epoch_scores=True?"
        )
    wide = test.pivot_table(index="clip_id", columns="epoch", values="score", aggfunc="first")
    labels = test.groupby("clip_id")["label"].first().reindex(wide.index).to_numpy(np.int64)
    epochs = [int(e) for e in wide.columns]
    if threshold == "validation_eer":  # each epoch's own validation EER threshold, as the run's accuracy
        val_rows = epoch_scores[epoch_scores["split"] == "validation"]
        per_epoch = {
            int(e): compute_metrics(g["label"], g["score"])["eer_threshold"]
            for e, g in val_rows.groupby("epoch")
        }
        cuts = np.asarray([per_epoch[e] for e in epochs], dtype=float)[:, None]
    else:
        cuts = np.full((len(epochs), 1), float(threshold))
    correct = (wide.to_numpy(float).T >= cuts).astype(np.int64) == labels[None, :]  # [epochs, clips]
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
        return {
            "mean": float(v.mean()),
            "median": float(np.median(v)),
            "p05": float(np.percentile(v, 5)),
            "p95": float(np.percentile(v, 95)),
            "draws": [float(x) for x in v],
        }

    result = {
        "n_val": int(n_val),
        "n_draws": int(n_draws),
        "threshold": threshold if isinstance(threshold, str) else float(threshold),
        "n_test_clips": int(n_clips),
        "epochs": epochs,
        "selected_epoch": int(selected_epoch),
        "honest_accuracy": honest,
        "honest_subsets": stats(honest_subsets),
        "picked": stats(picked),
        "inflation": float(picked.mean() - honest),
        "share_picked_at_least_0.9": float(np.mean(picked >= 0.9)),
    }
    folder = save_dir(out_dir)
    if folder is not None:
        write_json(folder / "epoch_picking.json", result)
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
        {
            "protocol": "study protocol: reported accuracy",
            "n_clips": n_rep,
            "accuracy": float(study["reported_accuracy"]),
            "accuracy_low": float(lo),
            "accuracy_high": float(hi),
            "eer": nan,
            "eer_low": nan,
            "eer_high": nan,
            "auc": nan,
            "auc_low": nan,
            "auc_high": nan,
            "interval": "95% exact binomial",
            "note": f"{n_rep} clips augmented before the split; the epoch was picked on them",
        },
        metric_row(
            "study-protocol model on our clean test set",
            study["clean_test"],
            "same model, clean group-disjoint test split, accuracy at P(Real) = 0.5",
        ),
        metric_row(
            "our protocol (validation-selected, test scored once)",
            run_metrics["test"],
            "accuracy at the validation EER threshold",
        ),
    ]
    if epoch_picking is not None:
        p = epoch_picking["picked"]
        rows.append(
            {
                "protocol": f"our run, epoch picked on {epoch_picking['n_val']} test clips",
                "n_clips": epoch_picking["n_val"],
                "accuracy": p["mean"],
                "accuracy_low": p["p05"],
                "accuracy_high": p["p95"],
                "eer": nan,
                "eer_low": nan,
                "eer_high": nan,
                "auc": nan,
                "auc_low": nan,
                "auc_high": nan,
                "interval": f"5-95% over {epoch_picking['n_draws']} random subsets",
                "note": (
                    f"honest accuracy of the selected epoch {epoch_picking['selected_epoch']}: "
                    f"{100 * epoch_picking['honest_accuracy']:.1f}%; "
                    f"inflation {100 * epoch_picking['inflation']:+.1f} points"
                ),
            }
        )
    table = pd.DataFrame(rows)
    folder = save_dir(out_dir)
    if folder is not None:
        table.to_csv(folder / "protocol_comparison.csv", index=False)
    return table
