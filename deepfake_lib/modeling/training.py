"""Fine-tune a wav2vec2-style detector: a thin layer over :class:`transformers.Trainer`.

:func:`fine_tune` takes an :class:`~deepfake_lib.config.ExperimentConfig` and writes a run
folder (its files: :mod:`deepfake_lib.runs`) that every later stage reads. Clips are scored
by :mod:`deepfake_lib.scoring`, the same path the deployed detector uses.

The same call runs on a CPU with the tiny model, on a Colab T4 with fp16, and under
``torchrun --nproc_per_node N`` (DDP through the Trainer; only rank 0 writes the run folder).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd
import torch
from transformers import (
    EarlyStoppingCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    Wav2Vec2FeatureExtractor,
)
from transformers.trainer_callback import PrinterCallback

from deepfake_lib import LABEL_NAMES, TARGET_SAMPLE_RATE
from deepfake_lib.audio.augmentation import AugmentConfig, Augmenter
from deepfake_lib.audio.signal import crop_or_pad, resample
from deepfake_lib.config import ExperimentConfig
from deepfake_lib.corpora.experiment_data import corpus_config_for, prepare_data
from deepfake_lib.corpora.sources import (
    assign_splits,
    group_column,
    iter_group_kfold,
    load_example_native,
    load_source,
    split_table,
)
from deepfake_lib.evaluation.error_rates import selection_score
from deepfake_lib.evaluation.metric_registry import metric_meanings
from deepfake_lib.evaluation.metrics import compute_metrics, summarize_scores
from deepfake_lib.evaluation.probability import score_from_logits
from deepfake_lib.modeling.baselines import evaluate_shortcut_control
from deepfake_lib.modeling.loaded_model import count_parameters
from deepfake_lib.modeling.models import load_model_for, save_model
from deepfake_lib.runs import (
    CHECKPOINT_STATE,
    EMBEDDED_CAVEAT,
    RUN_FILES,
    RunResult,
    clear_complete,
    find_complete_checkpoint,
    mark_complete,
    state_dict_checksum,
    write_json,
)
from deepfake_lib.scoring import EvalClips, predict_logits, scores_table
from deepfake_lib.torch_settings import peak_rss_mb, resolve_device, resolve_precision, set_seed

__all__ = [
    "AudioCollator",
    "class_weights_for",
    "ClipDataset",
    "cross_validate",
    "DetectorTrainer",
    "fine_tune",
    "history_table",
    "profile_preprocessing",
    "run_report",
    "RunStateCallback",
    "SELECTION_METRIC",
    "TRAINING_ARGS_FILE",
    "training_arguments",
]


TRAINING_ARGS_FILE = "training_args.json"
"""The ``TrainingArguments`` a run used, as JSON in its folder (notebook 03 shows them)."""

log = logging.getLogger(__name__)


class ClipDataset(torch.utils.data.Dataset):
    """Training clips of one split: 16 kHz float32 waveforms ``[samples]`` with integer labels.

    Each read crops the clip at random to ``max_samples`` and, with ``augment``, augments it
    (``augment_config``, default :class:`~deepfake_lib.audio.augmentation.AugmentConfig`), with fresh
    random draws every time an item is read (so every epoch differs, reproducibly: the draws
    depend on the seed, the item and how often it was read). Decoded clips are cached in memory.
    Evaluation data is an :class:`~deepfake_lib.scoring.EvalClips` (whole clips, untouched).
    """

    def __init__(
        self,
        ds: Any,
        *,
        max_samples: int | None = None,
        augment: bool = False,
        seed: int = 0,
        cache: bool = True,
        augment_config: AugmentConfig | None = None,
    ) -> None:
        self.clips = EvalClips.from_split(ds, cache=cache)
        self.ds = ds
        self.max_samples = max_samples
        self.augment = augment
        self.seed = seed
        self.augment_config = augment_config
        self.labels = self.clips.labels
        self.clip_ids = self.clips.clip_ids
        self._reads = np.zeros(len(ds), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.clips)

    def load(self, i: int) -> np.ndarray:
        """The clean 16 kHz waveform of item ``i`` (decoded once when caching)."""
        return self.clips.load(i)

    def __getitem__(self, i: int) -> dict[str, Any]:
        wave = self.load(i)
        rng = np.random.default_rng([self.seed, int(i), int(self._reads[i])])
        self._reads[i] += 1
        if self.max_samples is not None and len(wave) > self.max_samples:
            wave = crop_or_pad(wave, self.max_samples, rng=rng)
        if self.augment:
            augmenter = Augmenter(
                self.augment_config or AugmentConfig(),
                sample_rate=TARGET_SAMPLE_RATE,
                seed=int(rng.integers(2**31)),
            )
            wave = augmenter(wave)
        return {"input_values": wave, "labels": int(self.labels[i])}


@dataclasses.dataclass
class AudioCollator:
    """Pads a batch of waveforms with the model's feature extractor.

    Batches are padded to their longest clip (dynamic padding), or to ``pad_to_samples``
    when set (the fixed-length baseline the benchmarks compare against). The attention mask
    is returned only when the feature extractor's config asks for one (layer-norm wav2vec2
    variants); group-norm models such as wav2vec2-base are fed zero padding without a mask,
    as they were trained.
    """

    feature_extractor: Any
    pad_to_samples: int | None = None

    def __call__(self, features: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        waves = [np.asarray(f["input_values"], dtype=np.float32) for f in features]
        kwargs: dict[str, Any] = {"padding": "longest"}
        if self.pad_to_samples is not None:
            kwargs = {"padding": "max_length", "max_length": self.pad_to_samples, "truncation": True}
        batch = self.feature_extractor(
            waves,
            sampling_rate=TARGET_SAMPLE_RATE,
            return_tensors="pt",
            return_attention_mask=bool(getattr(self.feature_extractor, "return_attention_mask", False)),
            **kwargs,
        )
        out = {"input_values": batch["input_values"]}
        if "attention_mask" in batch:
            out["attention_mask"] = batch["attention_mask"]
        if "labels" in features[0]:
            out["labels"] = torch.tensor([int(f["labels"]) for f in features], dtype=torch.long)
        return out


# --------------------------------------------------------------------------------------
# the Trainer layer
# --------------------------------------------------------------------------------------
SELECTION_METRIC = "selection"
"""The ``eval_`` metric that picks the checkpoint and drives early stopping
(:func:`deepfake_lib.evaluation.metrics.selection_score`)."""


class DetectorTrainer(Trainer):
    """Trainer with class-weighted loss and evaluation by EER through :mod:`deepfake_lib.scoring`
    (whole clips, or windows of ``eval_window_s`` seconds)."""

    def __init__(
        self,
        *args: Any,
        class_weights: torch.Tensor | None = None,
        eval_window_s: float = 0.0,
        eval_precision: str = "fp32",
        epoch_hook: Callable[[Any, dict[str, float]], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.class_weights = class_weights
        self.eval_window_s = eval_window_s
        self.eval_precision = eval_precision
        self.epoch_hook = epoch_hook

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        weight = self.class_weights.to(outputs.logits.device) if self.class_weights is not None else None
        loss = torch.nn.functional.cross_entropy(outputs.logits.float(), labels, weight=weight)
        return (loss, outputs) if return_outputs else loss

    def evaluate(
        self, eval_dataset: Any = None, ignore_keys: Any = None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        ds = eval_dataset if eval_dataset is not None else self.eval_dataset
        start = time.perf_counter()
        model = self.accelerator.unwrap_model(self.model)
        logits = predict_logits(
            model,
            self.processing_class,
            ds,
            batch_size=self.args.per_device_eval_batch_size,
            window_s=self.eval_window_s,
            precision=self.eval_precision,
        )
        labels = ds.labels
        loss = float(torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)))
        m = compute_metrics(labels, score_from_logits(logits))
        metrics = {
            f"{metric_key_prefix}_loss": loss,
            f"{metric_key_prefix}_eer": m["eer"],
            f"{metric_key_prefix}_auc": m["auc"],
            f"{metric_key_prefix}_accuracy": m["accuracy"],
            f"{metric_key_prefix}_{SELECTION_METRIC}": selection_score(m["eer"], m["auc"]),
            f"{metric_key_prefix}_runtime": time.perf_counter() - start,
        }
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        if self.epoch_hook is not None:
            self.epoch_hook(self, metrics)
        return metrics


class RunStateCallback(TrainerCallback):
    """Calls ``save(folder)`` with each checkpoint folder right after the Trainer wrote it (rank 0),
    so the run's own state (epoch scores so far, elapsed time) travels with the checkpoint."""

    def __init__(self, save: Callable[[Path], None]) -> None:
        self.save = save

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.save(Path(args.output_dir) / f"checkpoint-{state.global_step}")


def class_weights_for(labels: np.ndarray, *, threshold: float = 1.5) -> torch.Tensor | None:
    """Inverse-frequency class weights when one class outnumbers the other by ``threshold``."""
    counts = np.bincount(labels, minlength=len(LABEL_NAMES)).astype(float)
    if counts.min() == 0 or counts.max() / counts.min() < threshold:
        return None
    w = counts.sum() / (len(counts) * counts)
    return torch.tensor(w, dtype=torch.float32)


def history_table(log_history: list[dict[str, Any]]) -> pd.DataFrame:
    """Per-epoch table from the Trainer's log: epoch, train_loss, eval_loss, eval_eer, eval_auc,
    eval_accuracy."""
    rows: dict[int, dict[str, float]] = {}
    for entry in log_history:
        if "epoch" not in entry:
            continue
        ep = int(round(entry["epoch"]))
        row = rows.setdefault(ep, {"epoch": ep})
        if "loss" in entry:
            row["train_loss"] = entry["loss"]
            row["learning_rate"] = entry.get("learning_rate", float("nan"))
        for k in ("eval_loss", "eval_eer", "eval_auc", "eval_accuracy"):
            if k in entry:
                row[k] = entry[k]
    cols = ["epoch", "train_loss", "eval_loss", "eval_eer", "eval_auc", "eval_accuracy", "learning_rate"]
    return pd.DataFrame(sorted(rows.values(), key=lambda r: r["epoch"])).reindex(columns=cols)


def fine_tune(
    cfg: ExperimentConfig,
    *,
    data: Any | None = None,
    run_dir: str | os.PathLike[str] | None = None,
    on_epoch: Callable[[pd.DataFrame], None] | None = None,
    record_epoch_scores: bool = True,
    shortcut_control: bool = True,
) -> RunResult:
    """Train ``cfg.model_source`` on ``cfg.data_source`` and write the run folder.

    Args:
        cfg: the run's parameters.
        data: an already split ``DatasetDict`` (train/validation/test); default
            :func:`prepare_data` of ``cfg``.
        run_dir: override ``cfg.run_path`` (e.g. a sub-folder for cross-validation folds).
        on_epoch: called with the history table after every validation (live plots).
        record_epoch_scores: also score the test split every epoch into ``epoch_scores.csv``
            (for notebook 04's protocol comparison only; selection never sees it).
        shortcut_control: fit the cheap-cue shortcut control on the same split and report it.

    Selection: the checkpoint with the best validation EER, ties broken by validation AUC
    (:func:`deepfake_lib.evaluation.metrics.selection_score`; early stopping with ``cfg.patience`` on the same
    score); the
    test split is scored once, with that model, and its accuracy is
    taken at the validation EER threshold.

    Completion and resume: the run folder's completion marker (:func:`deepfake_lib.runs.mark_complete`)
    is removed first and written last, so readers refuse a run that did not finish. With
    ``cfg.resume`` training continues from the newest checkpoint that is complete
    (:func:`deepfake_lib.runs.find_complete_checkpoint`: newer, broken ones are skipped with a
    warning), and every checkpoint carries the epoch scores so far and the elapsed time
    (:data:`deepfake_lib.runs.CHECKPOINT_STATE`), so ``epoch_scores.csv`` holds every epoch and
    ``train_seconds`` counts the whole run (up to the checkpoint resumed from) after a kill.

    Long because the Trainer's two hooks (per-epoch scores, checkpoint state) close over the
    run's own state (epoch scores so far, start time, rank), which keeps kill-safety and resume
    in one place; the arguments, the resume state and the report are helpers of their own.
    """
    run = Path(run_dir) if run_dir is not None else cfg.run_path
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    set_seed(cfg.seed)
    started = time.perf_counter()

    args = training_arguments(cfg, run, device=device, precision=precision)
    is_main = args.process_index == 0
    with args.main_process_first(desc="prepare data"):
        splits = data if data is not None else prepare_data(cfg)[0]

    loaded = load_model_for(cfg)
    max_samples = int(round(cfg.train_crop_s * TARGET_SAMPLE_RATE))
    train_ds = ClipDataset(
        splits["train"], max_samples=max_samples, augment=cfg.augment_training, seed=cfg.seed
    )
    val_ds = EvalClips.from_split(splits["validation"])
    test_ds = EvalClips.from_split(splits["test"])
    steps_per_epoch = math.ceil(
        len(train_ds) / (cfg.batch_size * cfg.gradient_accumulation_steps * max(1, args.world_size))
    )
    args.warmup_steps = int(cfg.warmup_fraction * steps_per_epoch * cfg.epochs)

    if is_main:
        run.mkdir(parents=True, exist_ok=True)
        clear_complete(run)
        cfg.to_json(run / RUN_FILES["config"])
        split_table(splits).to_csv(run / RUN_FILES["splits"], index=False)
        (run / TRAINING_ARGS_FILE).write_text(args.to_json_string() + "\n")  # what the Trainer was given

    resume_from, prior_seconds, epoch_rows = _resume_state(run, cfg)

    def save_run_state(folder: Path) -> None:
        """The run's state at checkpoint ``folder``; :data:`CHECKPOINT_STATE` last (it marks the rest)."""
        if epoch_rows:
            tmp = folder / (RUN_FILES["epoch_scores"] + ".tmp")
            pd.concat(epoch_rows, ignore_index=True).to_csv(tmp, index=False)
            os.replace(tmp, folder / RUN_FILES["epoch_scores"])
        write_json(
            folder / CHECKPOINT_STATE, {"train_seconds": prior_seconds + time.perf_counter() - started}
        )

    def epoch_hook(trainer: Any, metrics: dict[str, float]) -> None:
        epoch = int(round(trainer.state.epoch or 0))
        if record_epoch_scores and is_main:
            model = trainer.accelerator.unwrap_model(trainer.model)
            for name, ds in (("validation", val_ds), ("test", test_ds)):
                scored = _score_split(model, loaded.feature_extractor, ds, cfg, precision)
                t = scored[["clip_id", "utterance_id", "label", "attack", "score"]]
                t.insert(0, "split", name)
                t.insert(0, "epoch", epoch)
                epoch_rows.append(t)
        if on_epoch is not None and is_main:
            on_epoch(history_table(trainer.state.log_history + [dict(metrics, epoch=epoch)]))

    trainer = DetectorTrainer(
        model=loaded.model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        data_collator=AudioCollator(loaded.feature_extractor),
        processing_class=loaded.feature_extractor,
        callbacks=[
            EarlyStoppingCallback(early_stopping_patience=cfg.patience),
            RunStateCallback(save_run_state),
        ],
        class_weights=class_weights_for(train_ds.labels) if cfg.class_weighting else None,
        eval_window_s=cfg.eval_window_s,
        eval_precision=precision,
        epoch_hook=epoch_hook,
    )
    trainer.remove_callback(PrinterCallback)  # the history table and on_epoch report instead
    if resume_from is not None:
        log.info("resuming from %s", resume_from)
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from is not None else None)
    train_seconds = prior_seconds + time.perf_counter() - started

    history = history_table(trainer.state.log_history)
    model = trainer.accelerator.unwrap_model(trainer.model)
    notes = list(loaded.notes)
    if not is_main:
        return RunResult(run, history, {}, pd.DataFrame(), pd.DataFrame(), notes)

    loaded.model = model
    save_model(loaded, run / RUN_FILES["model"])
    tables = {
        name: _score_split(model, loaded.feature_extractor, ds, cfg, precision)
        for name, ds in (("validation", val_ds), ("test", test_ds))
    }
    weighted = cfg.class_weighting and class_weights_for(train_ds.labels) is not None
    metrics = run_report(
        cfg,
        splits,
        tables,
        # Cllr is of likelihood ratios: remove the bona fide prior the classifier was trained with
        # (0.5 when inverse-frequency class weights balanced the loss).
        prior_real=0.5 if weighted else float(np.mean(train_ds.labels)),
        extra={
            "best_epoch": _best_epoch(trainer, history),
            "epochs_run": int(history["epoch"].max()) if len(history) else 0,
            "train_seconds": round(train_seconds, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "device": device,
            "precision": precision,
            "n_parameters": count_parameters(model),
            "model_checksum": state_dict_checksum(model),
            "world_size": args.world_size,
            "notes": notes,
        },
        shortcut_control=shortcut_control,
    )
    val_table, test_table = tables["validation"], tables["test"]
    history.to_csv(run / RUN_FILES["history"], index=False)
    val_table.to_csv(run / RUN_FILES["validation_scores"], index=False)
    test_table.to_csv(run / RUN_FILES["test_scores"], index=False)
    if epoch_rows:
        pd.concat(epoch_rows, ignore_index=True).to_csv(run / RUN_FILES["epoch_scores"], index=False)
    write_json(run / RUN_FILES["metrics"], metrics)
    mark_complete(run, "run", writer="deepfake_lib.modeling.training.fine_tune")
    return RunResult(run, history, metrics, test_table, val_table, notes)


def _score_split(
    model: Any, feature_extractor: Any, ds: EvalClips, cfg: ExperimentConfig, precision: str
) -> pd.DataFrame:
    """Per-clip scores of one evaluation split by the one scoring path (windows as ``cfg`` says)."""
    logits = predict_logits(
        model,
        feature_extractor,
        ds,
        batch_size=cfg.batch_size,
        window_s=cfg.eval_window_s,
        precision=precision,
    )
    return scores_table(ds, logits)


def training_arguments(cfg: ExperimentConfig, run: Path, *, device: str, precision: str) -> TrainingArguments:
    """The ``transformers.TrainingArguments`` of a run: per-epoch evaluation and checkpoints in
    ``run/checkpoints``, the best validation EER kept (ties broken by AUC), fp16/bf16 as
    ``precision`` says, no progress bars. Warm-up steps are set once the training set is known."""
    return TrainingArguments(
        output_dir=str(run / RUN_FILES["checkpoints"]),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        num_train_epochs=cfg.epochs,
        lr_scheduler_type="linear",
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model=SELECTION_METRIC,  # validation EER, ties broken by AUC
        greater_is_better=False,
        save_total_limit=2,
        seed=cfg.seed,
        data_seed=cfg.seed,
        fp16=precision == "fp16",
        bf16=precision == "bf16",
        use_cpu=device == "cpu",
        dataloader_num_workers=cfg.num_workers,
        remove_unused_columns=False,
        report_to="none",
        disable_tqdm=True,
        max_grad_norm=1.0,
        ddp_find_unused_parameters=True,
    )


def _resume_state(run: Path, cfg: ExperimentConfig) -> tuple[Path | None, float, list[pd.DataFrame]]:
    """With ``cfg.resume``: the newest complete checkpoint, the training seconds it recorded and
    the epoch scores so far; otherwise ``(None, 0.0, [])``."""
    resume_from = find_complete_checkpoint(run / RUN_FILES["checkpoints"]) if cfg.resume else None
    if resume_from is None:
        return None, 0.0, []
    state = json.loads((resume_from / CHECKPOINT_STATE).read_text())
    epoch_rows = []
    if (resume_from / RUN_FILES["epoch_scores"]).is_file():
        epoch_rows.append(
            pd.read_csv(resume_from / RUN_FILES["epoch_scores"], dtype={"clip_id": str, "utterance_id": str})
        )
    return resume_from, float(state.get("train_seconds", 0.0)), epoch_rows


def run_report(
    cfg: ExperimentConfig,
    splits: Any,
    tables: dict[str, pd.DataFrame],
    *,
    prior_real: float,
    extra: dict[str, Any],
    shortcut_control: bool = True,
) -> dict[str, Any]:
    """The content of ``metrics.json``: the threshold chosen on validation (its EER threshold),
    :func:`~deepfake_lib.evaluation.metrics.summarize_scores` of the test and validation score
    tables at that threshold (grouped intervals), every metric's meaning, ``extra`` (timings,
    memory, parameters ...) and the cheap-cue shortcut control on the same split."""
    val_table, test_table = tables["validation"], tables["test"]
    threshold = compute_metrics(val_table["label"], val_table["score"])["eer_threshold"]
    metrics: dict[str, Any] = {
        "data_source": cfg.data_source,
        "model_source": cfg.model_source,
        "backend": cfg.backend,
        "caveat": EMBEDDED_CAVEAT if cfg.is_embedded else "",
        "threshold": {"value": threshold, "chosen_on": "validation EER"},
        **{
            split: summarize_scores(
                table["label"],
                table["score"],
                groups=table[group_column(splits[split])].astype(str),
                threshold=threshold,
                cllr_prior_real=prior_real,
                n_bootstrap=cfg.n_bootstrap,
                seed=cfg.seed,
            )
            for split, table in (("test", test_table), ("validation", val_table))
        },
        "metric_meanings": metric_meanings(),
        "n_clips": {k: len(v) for k, v in splits.items()},
        **extra,
    }
    if shortcut_control:
        metrics["shortcut_control"] = evaluate_shortcut_control(
            splits, n_bootstrap=cfg.n_bootstrap, seed=cfg.seed
        )
    return metrics


def _best_epoch(trainer: Any, history: pd.DataFrame) -> int | None:
    ckpt = trainer.state.best_model_checkpoint
    if ckpt:
        step = int(Path(ckpt).name.split("-")[-1])
        for entry in trainer.state.log_history:
            if entry.get("step") == step and "eval_eer" in entry:
                return int(round(entry["epoch"]))
    if len(history) and history["eval_eer"].notna().any():
        return int(history.loc[history["eval_eer"].idxmin(), "epoch"])
    return None


# --------------------------------------------------------------------------------------
# cross-validation
# --------------------------------------------------------------------------------------
def cross_validate(cfg: ExperimentConfig, *, n_folds: int = 5, data: Any | None = None) -> pd.DataFrame:
    """k-fold evaluation over groups for tiny datasets (e.g. Hemg's 100 clips).

    Every clip is tested exactly once. In each fold the remaining groups are split again into
    train and validation (for early stopping and the threshold). Each fold writes a run
    folder ``<run_dir>/cv/fold_<k>``; the returned table has one row per fold plus ``mean``
    and ``std`` rows for test EER, AUC and accuracy, and is saved as ``<run_dir>/cv/folds.csv``.
    """
    if data is None:
        dd, _ = load_source(
            cfg.data_source,
            corpus_config=corpus_config_for(cfg) if cfg.is_embedded else None,
            skip_bad_audio=cfg.skip_bad_audio,
        )
        data = datasets.concatenate_datasets(list(dd.values())) if len(dd) > 1 else next(iter(dd.values()))
    col = group_column(data)
    rows = []
    for k, (train_idx, test_idx) in enumerate(iter_group_kfold(data, n_folds=n_folds, seed=cfg.seed)):
        rest = data.select(train_idx)
        inner = assign_splits(
            rest[col],
            rest["label"],
            val_fraction=cfg.val_fraction / (1 - 1 / n_folds),
            test_fraction=0.0,
            seed=cfg.seed + k,
        )
        fold = datasets.DatasetDict(
            {
                "train": rest.select(np.flatnonzero(inner == "train")),
                "validation": rest.select(np.flatnonzero(inner == "validation")),
                "test": data.select(test_idx),
            }
        )
        result = fine_tune(
            cfg,
            data=fold,
            run_dir=cfg.run_path / "cv" / f"fold_{k}",
            record_epoch_scores=False,
            shortcut_control=False,
        )
        t = result.metrics["test"]
        rows.append(
            {
                "fold": str(k),
                "n_test": t["n"],
                "eer": t["eer"],
                "auc": t["auc"],
                "accuracy": t["accuracy"],
                "best_epoch": result.metrics["best_epoch"],
            }
        )
    table = pd.DataFrame(rows)
    stats = table[["eer", "auc", "accuracy"]].agg(["mean", "std"])
    for name in ("mean", "std"):
        table.loc[len(table)] = {"fold": name, **stats.loc[name].to_dict()}
    out = cfg.run_path / "cv"
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "folds.csv", index=False)
    return table


def profile_preprocessing(ds: Any, *, n_clips: int = 40, crop_s: float = 3.0, seed: int = 0) -> pd.DataFrame:
    """Cost of each preprocessing stage, milliseconds per clip, over the first ``n_clips`` clips.

    Stages, in the order training applies them: decode (native rate), resample to 16 kHz
    (cached kernel), random crop to ``crop_s``, augmentation (default
    :class:`~deepfake_lib.audio.augmentation.AugmentConfig`), and normalisation by a wav2vec2 feature
    extractor. Returns one row per stage with mean and median ms, and a ``total`` row.
    """
    fe = Wav2Vec2FeatureExtractor(sampling_rate=TARGET_SAMPLE_RATE, return_attention_mask=True)
    augmenter = Augmenter(AugmentConfig(), sample_rate=TARGET_SAMPLE_RATE, seed=seed)
    rng = np.random.default_rng(seed)
    n = int(round(crop_s * TARGET_SAMPLE_RATE))
    times: dict[str, list[float]] = {
        k: [] for k in ("decode", "resample to 16 kHz", "crop", "augment", "normalise")
    }
    for i in range(min(n_clips, len(ds))):
        ex = ds[i]
        t0 = time.perf_counter()
        wave, sr = load_example_native(ex)
        t1 = time.perf_counter()
        wave = resample(wave, sr, TARGET_SAMPLE_RATE)
        t2 = time.perf_counter()
        wave = crop_or_pad(wave, n, rng=rng) if len(wave) > n else wave
        t3 = time.perf_counter()
        wave = augmenter(wave)
        t4 = time.perf_counter()
        fe(wave, sampling_rate=TARGET_SAMPLE_RATE, return_tensors="np")
        t5 = time.perf_counter()
        for key, (a, b) in zip(times, ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5))):
            times[key].append((b - a) * 1000.0)
    table = pd.DataFrame(
        {
            "stage": list(times),
            "ms_mean": [np.mean(v) for v in times.values()],
            "ms_median": [np.median(v) for v in times.values()],
        }
    )
    total = np.sum(list(times.values()), axis=0)
    table.loc[len(table)] = {
        "stage": "total",
        "ms_mean": float(np.mean(total)),
        "ms_median": float(np.median(total)),
    }
    return table
