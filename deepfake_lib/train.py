"""Fine-tune a wav2vec2-style detector: a thin layer over :class:`transformers.Trainer`.

:func:`fine_tune` takes an :class:`~deepfake_lib.config.ExperimentConfig` and writes a run
folder that every later stage reads:

=========================  ===================================================================
``config.json``            the parameters of the run
``splits.csv``             clip id, group, label, attack and split of every clip
``model/``                 the best model (chosen on validation EER) as safetensors, and its
                           feature extractor
``history.csv``            per epoch: train loss, validation loss, EER, AUC, accuracy
``validation_scores.csv``  per clip: label, attack, score, P(bona fide) of the best model
``test_scores.csv``        the same for the test split (scored once, after selection)
``epoch_scores.csv``       test scores of every epoch, kept only so notebook 04 can show how
                           picking an epoch on the test clips flatters a model; never used to
                           choose anything
``metrics.json``           test and validation metrics with 95% bootstrap intervals, the
                           threshold (validation EER), the shortcut control, timings, memory
=========================  ===================================================================

The same call runs on a CPU with the tiny model, on a Colab T4 with fp16, and under
``torchrun --nproc_per_node N`` (DDP through the Trainer; only rank 0 writes the run folder).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import resource
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from deepfake_lib import LABEL_NAMES, TARGET_SAMPLE_RATE
from deepfake_lib.config import ExperimentConfig

log = logging.getLogger(__name__)

RUN_FILES: dict[str, str] = {
    "config": "config.json",
    "splits": "splits.csv",
    "model": "model",
    "checkpoints": "checkpoints",
    "history": "history.csv",
    "validation_scores": "validation_scores.csv",
    "test_scores": "test_scores.csv",
    "epoch_scores": "epoch_scores.csv",
    "metrics": "metrics.json",
}
"""File names inside a run folder (see the module docstring)."""

EMBEDDED_CAVEAT = (
    "Figures on the embedded corpus show that the pipeline works; they say nothing about how "
    "a detector does on real deepfakes."
)


# --------------------------------------------------------------------------------------
# reproducibility and devices
# --------------------------------------------------------------------------------------
def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) and ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def resolve_device(device: str = "auto") -> str:
    """``"cuda"`` when asked for or available (auto), else ``"cpu"``."""
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was requested but no CUDA device is available")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_precision(precision: str, device: str) -> str:
    """fp32 on CPU; on CUDA ``auto`` means bf16 where supported (Ampere+), else fp16 (T4)."""
    if device != "cuda":
        if precision in ("fp16",):
            raise ValueError("fp16 training needs a CUDA device; use precision='fp32' (or 'auto') on CPU")
        return "bf16" if precision == "bf16" else "fp32"
    if precision == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return precision


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --------------------------------------------------------------------------------------
# data preparation
# --------------------------------------------------------------------------------------
def corpus_config_for(cfg: ExperimentConfig) -> Any:
    """The :class:`~deepfake_lib.synthetic.CorpusConfig` that ``cfg`` asks for."""
    from deepfake_lib.synthetic import CorpusConfig

    return CorpusConfig(n_utterances=cfg.n_utterances, spoofs_per_utterance=cfg.spoofs_per_utterance,
                        difficulty=cfg.difficulty, seed=cfg.seed)


def prepare_data(cfg: ExperimentConfig) -> tuple[Any, Any]:
    """Load ``cfg.data_source`` and split it into train/validation/test by groups.

    Returns ``(DatasetDict, LoadReport)``. Deterministic given the config, so every notebook
    that calls it sees the same split.
    """
    from deepfake_lib.data import load_source, make_splits

    dd, report = load_source(cfg.data_source, corpus_config=corpus_config_for(cfg) if cfg.is_embedded else None,
                             skip_bad_audio=cfg.skip_bad_audio)
    splits = make_splits(dd, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction, seed=cfg.seed)
    return splits, report


class ClipDataset(torch.utils.data.Dataset):
    """Clips of one split as 16 kHz float32 waveforms ``[samples]`` with integer labels.

    Training datasets (``train=True``) crop each clip at random to ``max_samples`` and
    augment it, with fresh random draws every time an item is read (so every epoch differs,
    reproducibly: the draws depend on the seed, the item and how often it was read).
    Evaluation datasets return the whole clip, untouched. Decoded clips are cached in memory.
    """

    def __init__(
        self,
        ds: Any,
        *,
        train: bool,
        max_samples: int | None = None,
        augment: bool = False,
        seed: int = 0,
        cache: bool = True,
        augment_config: Any | None = None,
    ) -> None:
        if augment and not train:
            raise ValueError("augmentation is for training data only")
        self.ds = ds
        self.train = train
        self.max_samples = max_samples
        self.augment = augment
        self.seed = seed
        self.augment_config = augment_config
        self.labels = np.asarray(ds["label"], dtype=np.int64)
        self.clip_ids = list(ds["clip_id"])
        self._cache: dict[int, np.ndarray] | None = {} if cache else None
        self._reads = np.zeros(len(ds), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ds)

    def load(self, i: int) -> np.ndarray:
        """The clean 16 kHz waveform of item ``i`` (decoded once when caching)."""
        from deepfake_lib.data import load_example_audio

        if self._cache is not None and i in self._cache:
            return self._cache[i]
        wave = load_example_audio(self.ds[int(i)])
        if self._cache is not None:
            self._cache[i] = wave
        return wave

    def __getitem__(self, i: int) -> dict[str, Any]:
        wave = self.load(i)
        if self.train:
            from deepfake_lib.audio import crop_or_pad

            rng = np.random.default_rng([self.seed, int(i), int(self._reads[i])])
            self._reads[i] += 1
            if self.max_samples is not None and len(wave) > self.max_samples:
                wave = crop_or_pad(wave, self.max_samples, rng=rng)
            if self.augment:
                from deepfake_lib.augment import AugmentConfig, Augmenter

                augmenter = Augmenter(self.augment_config or AugmentConfig(), sample_rate=TARGET_SAMPLE_RATE,
                                      seed=int(rng.integers(2**31)))
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
            waves, sampling_rate=TARGET_SAMPLE_RATE, return_tensors="pt",
            return_attention_mask=bool(getattr(self.feature_extractor, "return_attention_mask", False)), **kwargs,
        )
        out = {"input_values": batch["input_values"]}
        if "attention_mask" in batch:
            out["attention_mask"] = batch["attention_mask"]
        if "labels" in features[0]:
            out["labels"] = torch.tensor([int(f["labels"]) for f in features], dtype=torch.long)
        return out


# --------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------
@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module,
    feature_extractor: Any,
    dataset: ClipDataset,
    *,
    batch_size: int = 16,
    window_s: float = 0.0,
    device: str | None = None,
    precision: str = "fp32",
) -> np.ndarray:
    """Logits ``[n_clips, 2]`` (Fake, Real) for every clip of an evaluation dataset.

    ``window_s = 0`` scores each whole clip; otherwise each clip is cut into windows of
    ``window_s`` seconds with 50% overlap and its logits are the mean over its windows.
    Clips are batched by length; when the model takes no attention mask, only clips of equal
    length share a batch, so padding never changes a score.
    """
    from deepfake_lib.audio import frame_windows

    device = device or next(model.parameters()).device.type
    was_training = model.training
    model.eval()
    collator = AudioCollator(feature_extractor)
    uses_mask = bool(getattr(feature_extractor, "return_attention_mask", False))
    # every scored unit: (clip index, waveform)
    units: list[tuple[int, np.ndarray]] = []
    for i in range(len(dataset)):
        wave = dataset.load(i)
        if window_s > 0:
            win = int(round(window_s * TARGET_SAMPLE_RATE))
            units.extend((i, w) for w in frame_windows(wave, win, max(1, win // 2)))
        else:
            units.append((i, wave))
    order = sorted(range(len(units)), key=lambda u: len(units[u][1]))
    batches: list[list[int]] = []
    for u in order:
        if batches and len(batches[-1]) < batch_size and (uses_mask or len(units[batches[-1][0]][1]) == len(units[u][1])):
            batches[-1].append(u)
        else:
            batches.append([u])
    sums = np.zeros((len(dataset), 2), dtype=np.float64)
    counts = np.zeros(len(dataset), dtype=np.int64)
    autocast = _autocast(device, precision)
    for b in batches:
        inputs = collator([{"input_values": units[u][1]} for u in b])
        inputs = {k: v.to(device) for k, v in inputs.items()}
        with autocast:
            logits = model(**inputs).logits.float().cpu().numpy()
        for u, row in zip(b, logits):
            sums[units[u][0]] += row
            counts[units[u][0]] += 1
    if was_training:
        model.train()
    return (sums / counts[:, None]).astype(np.float32)


def _autocast(device: str, precision: str) -> Any:
    if precision in ("fp16", "bf16") and device in ("cuda", "cpu"):
        if device == "cpu" and precision == "fp16":
            return torch.autocast("cpu", enabled=False)
        return torch.autocast(device, dtype=torch.float16 if precision == "fp16" else torch.bfloat16)
    return torch.autocast(device if device in ("cuda", "cpu") else "cpu", enabled=False)


def scores_table(ds: Any, logits: np.ndarray) -> pd.DataFrame:
    """Per-clip scores: clip id, group, label, attack, logits, score (log-odds of Real), P(Real)."""
    from deepfake_lib.metrics import score_from_logits, softmax_probability

    return pd.DataFrame({
        "clip_id": ds["clip_id"],
        "utterance_id": ds["utterance_id"],
        "label": ds["label"],
        "attack": ds["attack"],
        "logit_fake": logits[:, 0],
        "logit_real": logits[:, 1],
        "score": score_from_logits(logits),
        "prob_real": softmax_probability(logits),
    })


# --------------------------------------------------------------------------------------
# the Trainer layer
# --------------------------------------------------------------------------------------
SELECTION_METRIC = "selection"
"""The ``eval_`` metric that picks the checkpoint and drives early stopping
(:func:`deepfake_lib.metrics.selection_score`)."""


def _trainer_class() -> type:
    from transformers import Trainer

    class DetectorTrainer(Trainer):
        """Trainer with class-weighted loss and evaluation by EER on whole clips."""

        def __init__(self, *args: Any, class_weights: torch.Tensor | None = None, eval_window_s: float = 0.0,
                     eval_precision: str = "fp32", epoch_hook: Callable[[Any, dict[str, float]], None] | None = None,
                     **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.class_weights = class_weights
            self.eval_window_s = eval_window_s
            self.eval_precision = eval_precision
            self.epoch_hook = epoch_hook

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            weight = self.class_weights.to(outputs.logits.device) if self.class_weights is not None else None
            loss = torch.nn.functional.cross_entropy(outputs.logits.float(), labels, weight=weight)
            return (loss, outputs) if return_outputs else loss

        def evaluate(self, eval_dataset: Any = None, ignore_keys: Any = None, metric_key_prefix: str = "eval") -> dict[str, float]:
            from deepfake_lib.metrics import compute_metrics, selection_score

            ds = eval_dataset if eval_dataset is not None else self.eval_dataset
            start = time.perf_counter()
            model = self.accelerator.unwrap_model(self.model)
            logits = predict_logits(model, self.processing_class, ds, batch_size=self.args.per_device_eval_batch_size,
                                    window_s=self.eval_window_s, precision=self.eval_precision)
            labels = ds.labels
            loss = float(torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)))
            from deepfake_lib.metrics import score_from_logits

            m = compute_metrics(labels, score_from_logits(logits))
            metrics = {f"{metric_key_prefix}_loss": loss, f"{metric_key_prefix}_eer": m["eer"],
                       f"{metric_key_prefix}_auc": m["auc"], f"{metric_key_prefix}_accuracy": m["accuracy"],
                       f"{metric_key_prefix}_{SELECTION_METRIC}": selection_score(m["eer"], m["auc"]),
                       f"{metric_key_prefix}_runtime": time.perf_counter() - start}
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            if self.epoch_hook is not None:
                self.epoch_hook(self, metrics)
            return metrics

    return DetectorTrainer


def class_weights_for(labels: np.ndarray, *, threshold: float = 1.5) -> torch.Tensor | None:
    """Inverse-frequency class weights when one class outnumbers the other by ``threshold``."""
    counts = np.bincount(labels, minlength=len(LABEL_NAMES)).astype(float)
    if counts.min() == 0 or counts.max() / counts.min() < threshold:
        return None
    w = counts.sum() / (len(counts) * counts)
    return torch.tensor(w, dtype=torch.float32)


def history_table(log_history: list[dict[str, Any]]) -> pd.DataFrame:
    """Per-epoch table from the Trainer's log: epoch, train_loss, eval_loss, eval_eer, eval_auc, eval_accuracy."""
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


@dataclasses.dataclass
class RunResult:
    """What a training run produced; everything is also on disk in ``run_dir``."""

    run_dir: Path
    history: pd.DataFrame
    metrics: dict[str, Any]
    test_scores: pd.DataFrame
    validation_scores: pd.DataFrame
    notes: list[str]

    @property
    def model_dir(self) -> Path:
        """Folder of the selected model (``save_pretrained`` format)."""
        return self.run_dir / RUN_FILES["model"]


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
        shortcut_control: fit the trivial-feature control on the same split and report it.

    Selection: the checkpoint with the best validation EER, ties broken by validation AUC
    (:func:`deepfake_lib.metrics.selection_score`; early stopping with ``cfg.patience`` on the same score); the
    test split is scored once, with that model, and its accuracy is
    taken at the validation EER threshold.
    """
    from transformers import EarlyStoppingCallback, TrainingArguments

    from deepfake_lib.metrics import compute_metrics, summarize_scores
    from deepfake_lib.models import count_parameters, load_model

    run = Path(run_dir) if run_dir is not None else cfg.run_path
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    set_seed(cfg.seed)
    started = time.perf_counter()

    args = TrainingArguments(
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
    is_main = args.process_index == 0
    with args.main_process_first(desc="prepare data"):
        splits = data if data is not None else prepare_data(cfg)[0]

    loaded = load_model(cfg.model_source, freeze_feature_encoder=cfg.freeze_feature_encoder,
                        freeze_base=cfg.freeze_base, use_weighted_layer_sum=cfg.use_weighted_layer_sum, seed=cfg.seed)
    max_samples = int(round(cfg.max_duration_s * TARGET_SAMPLE_RATE))
    train_ds = ClipDataset(splits["train"], train=True, max_samples=max_samples, augment=cfg.augment, seed=cfg.seed)
    val_ds = ClipDataset(splits["validation"], train=False)
    test_ds = ClipDataset(splits["test"], train=False)
    steps_per_epoch = math.ceil(len(train_ds) / (cfg.batch_size * cfg.gradient_accumulation_steps * max(1, args.world_size)))
    args.warmup_steps = int(cfg.warmup_fraction * steps_per_epoch * cfg.epochs)

    if is_main:
        run.mkdir(parents=True, exist_ok=True)
        cfg.to_json(run / RUN_FILES["config"])
        from deepfake_lib.data import split_table

        split_table(splits).to_csv(run / RUN_FILES["splits"], index=False)

    epoch_rows: list[pd.DataFrame] = []

    def epoch_hook(trainer: Any, metrics: dict[str, float]) -> None:
        epoch = int(round(trainer.state.epoch or 0))
        if record_epoch_scores and is_main:
            model = trainer.accelerator.unwrap_model(trainer.model)
            for name, ds in (("validation", val_ds), ("test", test_ds)):
                logits = predict_logits(model, loaded.feature_extractor, ds, batch_size=cfg.batch_size,
                                        window_s=cfg.eval_window_s, precision=precision)
                t = scores_table(ds.ds, logits)[["clip_id", "utterance_id", "label", "attack", "score"]]
                t.insert(0, "split", name)
                t.insert(0, "epoch", epoch)
                epoch_rows.append(t)
        if on_epoch is not None and is_main:
            on_epoch(history_table(trainer.state.log_history + [dict(metrics, epoch=epoch)]))

    trainer = _trainer_class()(
        model=loaded.model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        data_collator=AudioCollator(loaded.feature_extractor),
        processing_class=loaded.feature_extractor,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=cfg.patience)],
        class_weights=class_weights_for(train_ds.labels) if cfg.class_weighting else None,
        eval_window_s=cfg.eval_window_s,
        eval_precision=precision,
        epoch_hook=epoch_hook,
    )
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the history table and on_epoch report instead
    resume = cfg.resume and any((run / RUN_FILES["checkpoints"]).glob("checkpoint-*"))
    trainer.train(resume_from_checkpoint=True if resume else None)
    train_seconds = time.perf_counter() - started

    history = history_table(trainer.state.log_history)
    model = trainer.accelerator.unwrap_model(trainer.model)
    notes = list(loaded.notes)
    if not is_main:
        return RunResult(run, history, {}, pd.DataFrame(), pd.DataFrame(), notes)

    loaded.model = model
    from deepfake_lib.models import save_model

    save_model(loaded, run / RUN_FILES["model"])
    val_table = scores_table(splits["validation"], predict_logits(model, loaded.feature_extractor, val_ds,
                             batch_size=cfg.batch_size, window_s=cfg.eval_window_s, precision=precision))
    test_table = scores_table(splits["test"], predict_logits(model, loaded.feature_extractor, test_ds,
                              batch_size=cfg.batch_size, window_s=cfg.eval_window_s, precision=precision))
    val_metrics = compute_metrics(val_table["label"], val_table["score"])
    threshold = val_metrics["eer_threshold"]
    best_epoch = _best_epoch(trainer, history)
    metrics: dict[str, Any] = {
        "data_source": cfg.data_source,
        "model_source": cfg.model_source,
        "caveat": EMBEDDED_CAVEAT if cfg.is_embedded else "",
        "threshold": {"value": threshold, "chosen_on": "validation EER"},
        "test": summarize_scores(test_table["label"], test_table["score"], groups=test_table["utterance_id"],
                                 threshold=threshold, n_bootstrap=cfg.n_bootstrap, seed=cfg.seed),
        "validation": summarize_scores(val_table["label"], val_table["score"], groups=val_table["utterance_id"],
                                       threshold=threshold, n_bootstrap=cfg.n_bootstrap, seed=cfg.seed),
        "best_epoch": best_epoch,
        "epochs_run": int(history["epoch"].max()) if len(history) else 0,
        "train_seconds": round(train_seconds, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "device": device,
        "precision": precision,
        "n_parameters": count_parameters(model),
        "n_clips": {k: len(v) for k, v in splits.items()},
        "model_checksum": state_dict_checksum(model),
        "world_size": args.world_size,
        "notes": notes,
    }
    if shortcut_control:
        from deepfake_lib.analysis import evaluate_shortcut_control

        metrics["shortcut_control"] = evaluate_shortcut_control(splits, n_bootstrap=cfg.n_bootstrap, seed=cfg.seed)
    history.to_csv(run / RUN_FILES["history"], index=False)
    val_table.to_csv(run / RUN_FILES["validation_scores"], index=False)
    test_table.to_csv(run / RUN_FILES["test_scores"], index=False)
    if epoch_rows:
        pd.concat(epoch_rows, ignore_index=True).to_csv(run / RUN_FILES["epoch_scores"], index=False)
    write_json(run / RUN_FILES["metrics"], metrics)
    return RunResult(run, history, metrics, test_table, val_table, notes)


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


def state_dict_checksum(model: torch.nn.Module) -> str:
    """SHA-256 over the model's parameters and buffers (names and bytes), to compare copies."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write JSON atomically (temp file, then rename), so a crash never leaves half a file."""
    p = Path(path)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")
    os.replace(tmp, p)
    return p


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def load_run_config(folder: str | os.PathLike[str], **changes: Any) -> ExperimentConfig:
    """The configuration a run was trained with (its ``config.json``), with ``changes`` applied."""
    path = Path(folder) / RUN_FILES["config"]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; run notebook 03 / fine_tune into {folder} first")
    return ExperimentConfig.from_params(json.loads(path.read_text()), strict=True).replace(**changes)


def load_run(run_dir: str | os.PathLike[str]) -> RunResult:
    """Read a finished run folder back (for analysis notebooks and the Detector)."""
    run = Path(run_dir)
    missing = [RUN_FILES[k] for k in ("metrics", "history", "test_scores") if not (run / RUN_FILES[k]).is_file()]
    if missing:
        raise FileNotFoundError(f"{run}: not a finished run folder (missing {', '.join(missing)}); run notebook 03 / fine_tune first")
    metrics = json.loads((run / RUN_FILES["metrics"]).read_text())
    return RunResult(
        run,
        pd.read_csv(run / RUN_FILES["history"]),
        metrics,
        pd.read_csv(run / RUN_FILES["test_scores"], dtype={"clip_id": str, "utterance_id": str}),
        pd.read_csv(run / RUN_FILES["validation_scores"], dtype={"clip_id": str, "utterance_id": str}),
        list(metrics.get("notes", [])),
    )


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
    import datasets

    from deepfake_lib.data import assign_splits, group_column, iter_group_kfold, load_source

    if data is None:
        dd, _ = load_source(cfg.data_source, corpus_config=corpus_config_for(cfg) if cfg.is_embedded else None,
                            skip_bad_audio=cfg.skip_bad_audio)
        data = datasets.concatenate_datasets(list(dd.values())) if len(dd) > 1 else next(iter(dd.values()))
    col = group_column(data)
    rows = []
    for k, (train_idx, test_idx) in enumerate(iter_group_kfold(data, n_folds=n_folds, seed=cfg.seed)):
        rest = data.select(train_idx)
        inner = assign_splits(rest[col], rest["label"], val_fraction=cfg.val_fraction / (1 - 1 / n_folds),
                              test_fraction=0.0, seed=cfg.seed + k)
        fold = datasets.DatasetDict({
            "train": rest.select(np.flatnonzero(inner == "train")),
            "validation": rest.select(np.flatnonzero(inner == "validation")),
            "test": data.select(test_idx),
        })
        result = fine_tune(cfg, data=fold, run_dir=cfg.run_path / "cv" / f"fold_{k}", record_epoch_scores=False,
                           shortcut_control=False)
        t = result.metrics["test"]
        rows.append({"fold": str(k), "n_test": t["n"], "eer": t["eer"], "auc": t["auc"], "accuracy": t["accuracy"],
                     "best_epoch": result.metrics["best_epoch"]})
    table = pd.DataFrame(rows)
    stats = table[["eer", "auc", "accuracy"]].agg(["mean", "std"])
    for name in ("mean", "std"):
        table.loc[len(table)] = {"fold": name, **stats.loc[name].to_dict()}
    out = cfg.run_path / "cv"
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "folds.csv", index=False)
    return table


def profile_preprocessing(ds: Any, *, n_clips: int = 40, max_duration_s: float = 3.0, seed: int = 0) -> pd.DataFrame:
    """Cost of each preprocessing stage, milliseconds per clip, over the first ``n_clips`` clips.

    Stages, in the order training applies them: decode (native rate), resample to 16 kHz
    (cached kernel), random crop to ``max_duration_s``, augmentation (default
    :class:`~deepfake_lib.augment.AugmentConfig`), and normalisation by a wav2vec2 feature
    extractor. Returns one row per stage with mean and median ms, and a ``total`` row.
    """
    from transformers import Wav2Vec2FeatureExtractor

    from deepfake_lib.audio import crop_or_pad, resample
    from deepfake_lib.augment import AugmentConfig, Augmenter
    from deepfake_lib.data import load_example_native

    fe = Wav2Vec2FeatureExtractor(sampling_rate=TARGET_SAMPLE_RATE, return_attention_mask=True)
    augmenter = Augmenter(AugmentConfig(), sample_rate=TARGET_SAMPLE_RATE, seed=seed)
    rng = np.random.default_rng(seed)
    n = int(round(max_duration_s * TARGET_SAMPLE_RATE))
    times: dict[str, list[float]] = {k: [] for k in ("decode", "resample to 16 kHz", "crop", "augment", "normalise")}
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
    table = pd.DataFrame({"stage": list(times), "ms_mean": [np.mean(v) for v in times.values()],
                          "ms_median": [np.median(v) for v in times.values()]})
    total = np.sum(list(times.values()), axis=0)
    table.loc[len(table)] = {"stage": "total", "ms_mean": float(np.mean(total)), "ms_median": float(np.median(total))}
    return table
