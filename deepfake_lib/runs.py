"""Run folders and the process settings every stage shares.

A training run (:func:`deepfake_lib.train.fine_tune`) writes one folder that every later stage
reads (analysis, export, the :class:`~deepfake_lib.infer.Detector`):

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
``analysis/``              what :func:`deepfake_lib.analysis.analyze_run` writes
=========================  ===================================================================

This module holds the file names (:data:`RUN_FILES`), the run record (:class:`RunResult`),
reading and writing (:func:`load_run`, :func:`load_run_config`, :func:`write_json`) and the
seed, device, precision, memory and thread-count helpers. It imports no other stage.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import random
import resource
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from deepfake_lib.config import ExperimentConfig

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
    "analysis": "analysis",
}
"""File names inside a run folder (see the module docstring)."""

EMBEDDED_CAVEAT = (
    "Figures on the embedded corpus show that the pipeline works; they say nothing about how "
    "a detector does on real deepfakes."
)


# --------------------------------------------------------------------------------------
# the run record
# --------------------------------------------------------------------------------------
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
    missing = [
        RUN_FILES[k] for k in ("metrics", "history", "test_scores") if not (run / RUN_FILES[k]).is_file()
    ]
    if missing:
        raise FileNotFoundError(
            f"{run}: not a finished run folder (missing {', '.join(missing)}); "
            "run notebook 03 / fine_tune first"
        )
    metrics = json.loads((run / RUN_FILES["metrics"]).read_text())
    return RunResult(
        run,
        pd.read_csv(run / RUN_FILES["history"]),
        metrics,
        pd.read_csv(run / RUN_FILES["test_scores"], dtype={"clip_id": str, "utterance_id": str}),
        pd.read_csv(run / RUN_FILES["validation_scores"], dtype={"clip_id": str, "utterance_id": str}),
        list(metrics.get("notes", [])),
    )


def state_dict_checksum(model: torch.nn.Module) -> str:
    """SHA-256 over the model's parameters and buffers (names and bytes), to compare copies."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------------------
# reproducibility, devices, memory, threads
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
    """Peak resident memory of this process so far, MB (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads, restoring the previous count afterwards.

    Small torch ops (STFTs, LFCCs of a few seconds of audio) spend longer synchronising than
    computing with more threads, most of all on a busy machine; wrap them in ``torch_threads(1)``.
    """
    previous = torch.get_num_threads()
    if previous == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
