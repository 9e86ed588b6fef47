"""Where a detector's model lives: a run folder, a model folder or an exported file, and the run's own evaluation window."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

from deepfake_lib.config import resolve_path
from deepfake_lib.runs import RUN_FILES, require_complete

__all__ = [
    "DEFAULT_THRESHOLD_NOTE",
    "EXPORT_MANIFEST",
    "locate_model",
    "ModelLocation",
    "run_window_s",
]

EXPORT_MANIFEST = "export.json"
"""File that marks a folder written by :func:`deepfake_lib.deploy.export.export_model`."""

DEFAULT_THRESHOLD_NOTE = "default 0.0 (argmax of the logits): no calibrated threshold is known for this model"


# --------------------------------------------------------------------------------------
# model location
# --------------------------------------------------------------------------------------
@dataclasses.dataclass
class ModelLocation:
    """Where a detector's files are: ``kind`` is ``"run"``, ``"export"``, ``"folder"`` or
    ``"hub"``; ``model_source`` what :func:`deepfake_lib.modeling.models.load_model` reads; ``folder``
    the run or export folder (else ``None``); ``threshold`` and ``threshold_source`` the
    calibrated decision threshold (log-odds) and where it came from; ``manifest`` the export
    manifest (export folders only)."""

    kind: str
    model_source: str
    folder: Path | None
    threshold: float
    threshold_source: str
    manifest: dict[str, Any] = dataclasses.field(default_factory=dict)


def locate_model(source: str | os.PathLike[str]) -> ModelLocation:
    """Classify ``source`` (run folder, export folder, model folder or Hub id) and find its
    model and threshold. Relative folders are looked up in the current directory first, then
    under the project root (:func:`deepfake_lib.config.resolve_path`). A run or export folder
    must be complete (its marker, :func:`deepfake_lib.runs.require_complete`): an unfinished
    one raises :class:`~deepfake_lib.runs.IncompleteFolderError` naming the folder and what is missing."""
    text = os.fspath(source)
    path = Path(text).expanduser()
    if not path.exists() and not path.is_absolute() and resolve_path(text).exists():
        path = resolve_path(text)
    if path.is_dir():
        manifest_file = path / EXPORT_MANIFEST
        if manifest_file.is_file():
            require_complete(path, "export")
            manifest = json.loads(manifest_file.read_text())
            return ModelLocation(
                "export",
                str(path / manifest.get("model_dir", "model")),
                path,
                float(manifest.get("threshold", 0.0)),
                str(manifest.get("threshold_source", DEFAULT_THRESHOLD_NOTE)),
                manifest,
            )
        metrics_file = path / RUN_FILES["metrics"]
        model_dir = path / RUN_FILES["model"]
        if model_dir.is_dir():
            require_complete(path, "run")
            if metrics_file.is_file():
                metrics = json.loads(metrics_file.read_text())
                value = (metrics.get("threshold") or {}).get("value")
                if value is not None and math.isfinite(float(value)):
                    chosen = metrics["threshold"].get("chosen_on", "validation EER")
                    return ModelLocation(
                        "run", str(model_dir), path, float(value), f"{chosen} threshold of run {path}"
                    )
                return ModelLocation(
                    "run",
                    str(model_dir),
                    path,
                    0.0,
                    f"{DEFAULT_THRESHOLD_NOTE} ({metrics_file} has no threshold)",
                )
            return ModelLocation(
                "run",
                str(model_dir),
                path,
                0.0,
                f"{DEFAULT_THRESHOLD_NOTE} (run folder without {RUN_FILES['metrics']}: unfinished?)",
            )
        if (path / "config.json").is_file():
            return ModelLocation("folder", str(path), None, 0.0, DEFAULT_THRESHOLD_NOTE)
        raise ValueError(
            f"{path}: not a run folder (model/, metrics.json), an export folder ({EXPORT_MANIFEST}) "
            "or a model folder (config.json)"
        )
    if path.exists():
        raise ValueError(f"{path}: is a file; expected a run, export or model folder, or a Hub id")
    return ModelLocation("hub", text, None, 0.0, DEFAULT_THRESHOLD_NOTE)


def run_window_s(loc: ModelLocation) -> float:
    """The evaluation window (s) of the run behind ``loc`` (its ``config.json`` ``eval_window_s``);
    0.0 for whole clips, for sources that are not run folders, and for runs without a config."""
    if loc.kind != "run" or loc.folder is None:
        return 0.0
    path = loc.folder / RUN_FILES["config"]
    if not path.is_file():
        return 0.0
    try:
        return float(json.loads(path.read_text()).get("eval_window_s") or 0.0)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: unreadable run config ({exc})") from exc
