"""Completion markers of run and export folders, and the checkpoint check used on resume."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from deepfake_lib.runs import (
    COMPLETE_MARKER,
    IncompleteFolderError,
    checkpoint_problem,
    clear_complete,
    find_complete_checkpoint,
    load_run,
    mark_complete,
    require_complete,
)


def make_run(folder):
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "model.safetensors").write_bytes(b"x" * 100)
    (folder / "metrics.json").write_text(json.dumps({"threshold": {"value": 0.5}}))
    (folder / "history.csv").write_text("epoch\n1\n")
    (folder / "test_scores.csv").write_text("clip_id,score\na,1\n")
    (folder / "validation_scores.csv").write_text("clip_id,score\nb,1\n")
    (folder / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    return folder


def test_marker_lists_files_and_is_required(tmp_path):
    run = make_run(tmp_path / "run")
    with pytest.raises(IncompleteFolderError, match=r"no completion marker.*fine_tune") as info:
        require_complete(run, "run")
    assert str(run) in str(info.value)
    with pytest.raises(FileNotFoundError, match="complete"):
        load_run(run)
    marker_path = mark_complete(run, "run", writer="test")
    marker = json.loads(marker_path.read_text())
    assert marker["kind"] == "run" and marker["writer"] == "test" and marker["completed_utc"]
    assert marker["files"]["model/model.safetensors"] == 100
    assert not any(name.startswith("checkpoints") for name in marker["files"])
    assert not list(run.glob("*.tmp"))
    assert require_complete(run, "run")["files"] == marker["files"]
    assert load_run(run).metrics["threshold"]["value"] == 0.5
    with pytest.raises(IncompleteFolderError, match="expected kind .export."):
        require_complete(run, "export")


def test_changed_or_missing_files_and_cleared_marker_refuse(tmp_path):
    run = make_run(tmp_path / "run")
    mark_complete(run, "run")
    (run / "analysis").mkdir()
    (run / "analysis" / "later.json").write_text("{}")  # written after completion: ignored
    require_complete(run, "run")
    (run / "model" / "model.safetensors").write_bytes(b"x" * 10)  # truncated
    with pytest.raises(IncompleteFolderError, match="model/model.safetensors is 10 bytes, marker says 100"):
        require_complete(run, "run")
    (run / "history.csv").unlink()
    with pytest.raises(IncompleteFolderError, match="history.csv missing"):
        require_complete(run, "run")
    clear_complete(run)
    assert not (run / COMPLETE_MARKER).exists()
    (run / COMPLETE_MARKER).write_text("{not json")
    with pytest.raises(IncompleteFolderError, match="unreadable completion marker"):
        require_complete(run, "run")


def test_marking_needs_the_required_entries(tmp_path):
    (tmp_path / "exp").mkdir()
    with pytest.raises(IncompleteFolderError, match="missing model, export.json"):
        mark_complete(tmp_path / "exp", "export")
    with pytest.raises(IncompleteFolderError, match=r"missing model, export.json and its completion marker"):
        require_complete(tmp_path / "exp", "export")
    with pytest.raises(ValueError, match="kind"):
        mark_complete(tmp_path / "exp", "data")


def write_checkpoint(folder, *, state=True):
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 1}))
    save_file({"w": torch.zeros(64)}, str(folder / "model.safetensors"))
    torch.save({"state": {0: torch.zeros(64)}}, folder / "optimizer.pt")
    torch.save({"last_epoch": 1}, folder / "scheduler.pt")
    if state:
        (folder / "run_state.json").write_text("{}")
    return folder


def test_resume_skips_incomplete_checkpoints(tmp_path, caplog):
    ckpts = tmp_path / "checkpoints"
    good = write_checkpoint(ckpts / "checkpoint-4")
    assert checkpoint_problem(good) is None
    no_state = write_checkpoint(ckpts / "checkpoint-8")
    (no_state / "trainer_state.json").unlink()
    cut_opt = write_checkpoint(ckpts / "checkpoint-12")
    data = (cut_opt / "optimizer.pt").read_bytes()
    (cut_opt / "optimizer.pt").write_bytes(data[: len(data) // 2])
    cut_model = write_checkpoint(ckpts / "checkpoint-16")
    data = (cut_model / "model.safetensors").read_bytes()
    (cut_model / "model.safetensors").write_bytes(data[: len(data) - 20])
    write_checkpoint(ckpts / "checkpoint-20", state=False)
    with caplog.at_level("WARNING"):
        assert find_complete_checkpoint(ckpts) == good
    text = caplog.text
    for name, why in (
        ("checkpoint-8", "trainer_state.json"),
        ("checkpoint-12", "optimizer.pt"),
        ("checkpoint-16", "model.safetensors"),
        ("checkpoint-20", "run_state.json"),
    ):
        assert name in text and why in text
    assert find_complete_checkpoint(ckpts, need_state=False) == ckpts / "checkpoint-20"
    assert find_complete_checkpoint(tmp_path / "none") is None


def test_files_the_notebook_series_writes_later_do_not_void_a_run_marker(tmp_path):
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "model.safetensors").write_bytes(b"w" * 10)
    (run / "metrics.json").write_text("{}")
    (run / "notebooks").mkdir()
    (run / "notebooks" / "03_fine_tuning.ipynb").write_text("{}")  # papermill is still writing it
    mark_complete(run, "run")
    (run / "notebooks" / "03_fine_tuning.ipynb").write_text('{"cells": []}')
    (run / "figures").mkdir()
    (run / "figures" / "03_history.png").write_bytes(b"png")
    require_complete(run, "run")  # still complete
    (run / "metrics.json").write_text('{"changed": true}')
    with pytest.raises(IncompleteFolderError, match="metrics.json"):
        require_complete(run, "run")
