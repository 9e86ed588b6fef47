"""What ``fine_tune`` does out of sight, made visible for notebook 03.

- :func:`label_mapping_table`: the dataset's label names against the checkpoint's ``id2label``,
  matched by name (never by position);
- :func:`batch_preparation_table`: what the feature extractor's normalisation and the batch
  padding do to clips, through the same collator training uses;
- :func:`parameter_table`: parameters per component, and how many train;
- :func:`training_arguments_table`: the ``TrainingArguments`` the run used (``training_args.json``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfake_lib import LABEL_NAMES, TARGET_SAMPLE_RATE
from deepfake_lib.labels import align_label_ids
from deepfake_lib.modeling.training import TRAINING_ARGS_FILE, AudioCollator

__all__ = [
    "TRAINING_ARGUMENTS_SHOWN",
    "batch_preparation_table",
    "dataset_label_names",
    "describe_label_mapping",
    "label_mapping_table",
    "parameter_table",
    "training_arguments_table",
]

TRAINING_ARGUMENTS_SHOWN: tuple[str, ...] = (
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "learning_rate",
    "weight_decay",
    "num_train_epochs",
    "warmup_steps",
    "lr_scheduler_type",
    "eval_strategy",
    "save_strategy",
    "load_best_model_at_end",
    "metric_for_best_model",
    "greater_is_better",
    "max_grad_norm",
    "fp16",
    "bf16",
    "use_cpu",
    "seed",
    "data_seed",
    "dataloader_num_workers",
)
"""The ``TrainingArguments`` fields notebook 03 shows (paths are left out)."""


def dataset_label_names(ds: Any) -> list[str]:
    """The label names of a split (its ``ClassLabel`` names; the project's names otherwise)."""
    feature = getattr(ds, "features", {}).get("label") if hasattr(ds, "features") else None
    names = getattr(feature, "names", None)
    return list(names) if names else list(LABEL_NAMES)


def label_mapping_table(dataset_names: Sequence[str], checkpoint_id2label: Mapping[int, str]) -> pd.DataFrame:
    """One row per dataset label: its id and name, the checkpoint output it is matched to by name,
    and that output's name in the checkpoint's ``id2label``. ``matched`` is False (and the output
    empty) when the names cannot be matched, in which case ``load_model`` re-initialises the head."""
    label2id = {str(name): int(i) for i, name in checkpoint_id2label.items()}
    mapping = align_label_ids(list(dataset_names), label2id)
    rows = []
    for i, name in enumerate(dataset_names):
        out = None if mapping is None else mapping[i]
        rows.append(
            {
                "dataset id": i,
                "dataset name": name,
                "checkpoint output": out if out is not None else "",
                "checkpoint id2label": checkpoint_id2label.get(out, "") if out is not None else "",
                "matched by name": mapping is not None,
            }
        )
    return pd.DataFrame(rows)


def describe_label_mapping(table: pd.DataFrame) -> str:
    """One sentence saying whether the labels line up by name, and whether the head is permuted."""
    if not bool(table["matched by name"].all()):
        return (
            "The checkpoint's label names do not match the dataset's by name: `load_model` re-initialises "
            "the classification head (its trained weights would answer another question)."
        )
    pairs = "; ".join(
        f"{r['dataset id']} = {r['dataset name']} -> output {r['checkpoint output']} ({r['checkpoint id2label']!r})"
        for _, r in table.iterrows()
    )
    same = all(int(r["dataset id"]) == int(r["checkpoint output"]) for _, r in table.iterrows())
    return f"Labels matched by name: {pairs}. " + (
        "Same order, so the head is kept as it is."
        if same
        else "The orders differ, so `load_model` permutes the head's rows (no retraining)."
    )


def parameter_table(model: Any) -> pd.DataFrame:
    """Parameters per top-level component of ``model`` (e.g. ``wav2vec2.feature_extractor``,
    ``wav2vec2.encoder``, ``classifier``) with how many train, and a total row."""
    rows: dict[str, list[int]] = {}
    for name, p in model.named_parameters():
        parts = name.split(".")
        key = (
            ".".join(parts[:2])
            if parts[0] in {"wav2vec2", "hubert", "wavlm"} and len(parts) > 2
            else parts[0]
        )
        total, trainable = rows.setdefault(key, [0, 0])
        rows[key] = [total + p.numel(), trainable + (p.numel() if p.requires_grad else 0)]
    table = pd.DataFrame([{"component": k, "parameters": v[0], "trainable": v[1]} for k, v in rows.items()])
    total = pd.DataFrame(
        [
            {
                "component": "total",
                "parameters": int(table["parameters"].sum()),
                "trainable": int(table["trainable"].sum()),
            }
        ]
    )
    return pd.concat([table, total], ignore_index=True)


def batch_preparation_table(
    feature_extractor: Any, waves: Sequence[np.ndarray], sample_rate: int = TARGET_SAMPLE_RATE
) -> pd.DataFrame:
    """What the training collator (:class:`~deepfake_lib.modeling.training.AudioCollator`) does to
    ``waves`` (float32 ``[samples]`` at 16 kHz) batched together: length, mean and standard
    deviation before and after, padded samples and the attention mask (if the model uses one)."""
    batch = AudioCollator(feature_extractor)([{"input_values": w} for w in waves])
    values = batch["input_values"].numpy()
    mask = batch.get("attention_mask")
    rows = []
    for k, wave in enumerate(waves):
        n = len(wave)
        out = values[k]
        rows.append(
            {
                "clip": k,
                "seconds": round(n / sample_rate, 2),
                "samples in": n,
                "mean in": float(np.mean(wave)),
                "std in": float(np.std(wave)),
                "samples out": int(out.shape[0]),
                "mean out (clip part)": float(np.mean(out[:n])),
                "std out (clip part)": float(np.std(out[:n])),
                "padded samples": int(out.shape[0] - n),
                "padding value": float(out[n]) if out.shape[0] > n else float("nan"),
                "attention mask (ones)": int(mask[k].sum()) if mask is not None else "no mask",
            }
        )
    return pd.DataFrame(rows)


def training_arguments_table(
    run_dir: str | os.PathLike[str], keys: Sequence[str] = TRAINING_ARGUMENTS_SHOWN
) -> pd.DataFrame:
    """The ``TrainingArguments`` a run used (from ``<run_dir>/training_args.json``), the fields in ``keys``."""
    args = json.loads((Path(run_dir) / TRAINING_ARGS_FILE).read_text())
    return pd.DataFrame([{"argument": k, "value": args.get(k)} for k in keys if k in args])
