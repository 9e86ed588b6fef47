"""Run folders and the process settings every stage shares.

A training run (:func:`deepfake_lib.modeling.training.fine_tune`) writes one folder that every later stage
reads (analysis, export, the :class:`~deepfake_lib.deploy.detector.Detector`):

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
``analysis/``              what :func:`deepfake_lib.studies.analysis.analyze_run` writes
``complete.json``          the completion marker, written last (:func:`mark_complete`)
=========================  ===================================================================

A run folder or an export folder counts as complete only when its completion marker says so:
:func:`mark_complete` writes it atomically as the last step of the stage that fills the folder
(what wrote it, when, and every file with its size in bytes), and :func:`require_complete`,
which every reader calls, raises :class:`IncompleteFolderError` for a folder without one, or
whose listed files are missing or changed size (a killed or half-copied folder is never trusted).

This module holds the file names (:data:`RUN_FILES`), the run record (:class:`RunResult`),
reading and writing (:func:`load_run`, :func:`load_run_config`, :func:`write_json`), the completion
marker (:func:`mark_complete`, :func:`require_complete`), the checkpoint check
(:func:`find_complete_checkpoint`) and the
seed, device, precision, memory and thread-count helpers. It imports no other stage.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import os
import re
import socket
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors import safe_open

from deepfake_lib.config import ExperimentConfig

__all__ = [
    "checkpoint_problem",
    "CHECKPOINT_STATE",
    "clear_complete",
    "COMPLETE_MARKER",
    "EMBEDDED_CAVEAT",
    "find_complete_checkpoint",
    "FOLDER_KINDS",
    "IncompleteFolderError",
    "load_run",
    "load_run_config",
    "mark_complete",
    "MARKER_FORMAT",
    "require_complete",
    "RUN_FILES",
    "RunResult",
    "state_dict_checksum",
    "write_json",
]


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
    "analysis": "analysis",
    "complete": "complete.json",
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
    """Read a finished run folder back (for analysis notebooks and the Detector); raises
    ``FileNotFoundError`` (:class:`IncompleteFolderError` when files are there but the
    completion marker is not) for an unfinished one."""
    run = Path(run_dir)
    missing = [
        RUN_FILES[k] for k in ("metrics", "history", "test_scores") if not (run / RUN_FILES[k]).is_file()
    ]
    if missing:
        raise FileNotFoundError(
            f"{run}: not a finished run folder (missing {', '.join(missing)}); "
            "run notebook 03 / fine_tune first"
        )
    require_complete(run, "run")
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
# completion markers
# --------------------------------------------------------------------------------------
COMPLETE_MARKER = RUN_FILES["complete"]
"""Name of the completion marker in a run or export folder."""

FOLDER_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # notebooks/, figures/ and series.json belong to the notebook series around the training
    # (papermill is still writing notebook 03 when fine_tune marks the run), so they are not listed
    "run": (("model", "metrics.json"), ("checkpoints", "analysis", "notebooks", "figures", "series.json")),
    "export": (("model", "export.json"), ()),
}
"""Per folder kind: the entries that must exist before it can be marked complete, and the
sub-folders left out of the marker's file list (written before or after, or deleted)."""

MARKER_FORMAT = 1


class IncompleteFolderError(FileNotFoundError):
    """A run or export folder without a valid completion marker (unfinished, killed, or written
    before markers existed). A ``FileNotFoundError``; the message names the folder, what is
    missing and how to finish or regenerate it."""


def _listed_files(folder: Path, skip: tuple[str, ...]) -> dict[str, int]:
    """Relative POSIX path -> size (bytes) of every regular file under ``folder``, sorted,
    without the marker, temp files and the top-level folders in ``skip``."""
    files: dict[str, int] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if rel.parts[0] in skip or rel.name == COMPLETE_MARKER or rel.name.endswith(".tmp"):
            continue
        if path.is_file() and not path.is_symlink():
            files[rel.as_posix()] = path.stat().st_size
    return files


def _kind_spec(kind: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if kind not in FOLDER_KINDS:
        raise ValueError(f"kind={kind!r}; expected one of {', '.join(FOLDER_KINDS)}")
    return FOLDER_KINDS[kind]


def _remedy(kind: str) -> str:
    if kind == "run":
        return "finish or regenerate it with fine_tune / `deepfake-lib train` (resume=true continues a killed run)"
    return "re-export it with export_model / `deepfake-lib export`"


def mark_complete(folder: str | os.PathLike[str], kind: str, *, writer: str | None = None) -> Path:
    """Write ``folder``'s completion marker (:data:`COMPLETE_MARKER`), atomically; call it last.

    ``kind`` is ``"run"`` or ``"export"``; its required entries (:data:`FOLDER_KINDS`) must
    exist. The marker records the kind, ``writer`` (default: the calling stage is unknown, so
    ``"deepfake_lib"``), the UTC time, the host and process id, and every file with its size in
    bytes. Returns the marker's path; raises :class:`IncompleteFolderError` when a required entry
    is missing.
    """
    path = Path(folder)
    required, skip = _kind_spec(kind)
    missing = [name for name in required if not (path / name).exists()]
    if missing:
        raise IncompleteFolderError(
            f"{path}: cannot mark this {kind} folder complete: missing {', '.join(missing)}"
        )
    marker = {
        "format": MARKER_FORMAT,
        "kind": kind,
        "writer": writer or "deepfake_lib",
        "completed_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "files": _listed_files(path, skip),
    }
    return write_json(path / COMPLETE_MARKER, marker)


def clear_complete(folder: str | os.PathLike[str]) -> None:
    """Remove ``folder``'s completion marker (first step of a stage that rewrites the folder)."""
    (Path(folder) / COMPLETE_MARKER).unlink(missing_ok=True)


def require_complete(folder: str | os.PathLike[str], kind: str) -> dict[str, Any]:
    """The completion marker of ``folder``, checked; raises :class:`IncompleteFolderError`.

    Raised when the marker is missing or unreadable, records another kind, or when a file it
    lists is missing or has another size (truncated or replaced since). The message names the
    folder, what is missing and how to finish or regenerate the folder.
    """
    path = Path(folder)
    _kind_spec(kind)
    marker_path = path / COMPLETE_MARKER
    if not marker_path.is_file():
        required, _ = _kind_spec(kind)
        absent = [name for name in required if not (path / name).exists()]
        what = f"missing {', '.join(absent)} and its completion marker" if absent else "no completion marker"
        raise IncompleteFolderError(
            f"{path}: incomplete {kind} folder ({what} {COMPLETE_MARKER}, written last when the "
            f"{kind} finishes): it was interrupted, is still being written, or predates markers; {_remedy(kind)}"
        )
    try:
        marker = json.loads(marker_path.read_text())
        files = dict(marker["files"])
        marked_kind = marker["kind"]
    except (ValueError, KeyError, TypeError) as exc:
        raise IncompleteFolderError(
            f"{marker_path}: unreadable completion marker ({exc}); {_remedy(kind)}"
        ) from None
    if marked_kind != kind:
        raise IncompleteFolderError(
            f"{path}: marked complete as a {marked_kind} folder; expected kind {kind!r}"
        )
    problems = []
    for name, size in files.items():
        f = path / name
        if not f.is_file():
            problems.append(f"{name} missing")
        elif f.stat().st_size != size:
            problems.append(f"{name} is {f.stat().st_size} bytes, marker says {size}")
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise IncompleteFolderError(
            f"{path}: {kind} folder changed since it was marked complete ({shown}); {_remedy(kind)}"
        )
    return marker


# --------------------------------------------------------------------------------------
# training checkpoints
# --------------------------------------------------------------------------------------
CHECKPOINT_STATE = "run_state.json"
"""File in a checkpoint folder with the run's history so far (elapsed seconds); written by
:func:`deepfake_lib.modeling.training.fine_tune` after each checkpoint."""

_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_problem(folder: str | os.PathLike[str], *, need_state: bool = True) -> str | None:
    """Why the Trainer checkpoint ``folder`` cannot be resumed from, or None when it can.

    Checks ``trainer_state.json`` (parseable), the model weights (a safetensors file whose header
    and length agree), ``optimizer.pt`` and ``scheduler.pt`` (zip archives whose directory reads,
    which a truncated file fails) and, with ``need_state``, :data:`CHECKPOINT_STATE`. Reads only
    headers: no tensor is loaded.
    """
    path = Path(folder)
    try:
        json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError) as exc:
        return f"trainer_state.json unreadable ({type(exc).__name__})"
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        return "no model weights (*.safetensors)"
    for w in weights:
        try:
            with safe_open(str(w), framework="pt") as fh:
                fh.keys()
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            return f"{w.name} unreadable ({type(exc).__name__}: {exc})"
    for name in ("optimizer.pt", "scheduler.pt"):
        f = path / name
        if not f.is_file():
            return f"{name} missing"
        try:
            with zipfile.ZipFile(f) as zf:
                zf.infolist()
        except (OSError, zipfile.BadZipFile) as exc:
            return f"{name} truncated or unreadable ({exc})"
    if need_state and not (path / CHECKPOINT_STATE).is_file():
        return f"{CHECKPOINT_STATE} missing"
    return None


def find_complete_checkpoint(
    checkpoints_dir: str | os.PathLike[str], *, need_state: bool = True
) -> Path | None:
    """The newest ``checkpoint-N`` folder in ``checkpoints_dir`` that :func:`checkpoint_problem`
    accepts, or None; every newer one is skipped with a warning naming it and why."""
    folder = Path(checkpoints_dir)
    if not folder.is_dir():
        return None
    found = []
    for p in folder.iterdir():
        m = _CHECKPOINT_RE.match(p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    for _, p in sorted(found, reverse=True):
        problem = checkpoint_problem(p, need_state=need_state)
        if problem is None:
            return p
        log.warning("skipping incomplete checkpoint %s: %s", p, problem)
    return None


def state_dict_checksum(model: torch.nn.Module) -> str:
    """SHA-256 over the model's parameters and buffers (names and bytes), to compare copies."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()
