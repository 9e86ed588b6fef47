"""Notebook 04's speaker-grouped comparison: read from the saved benchmark results of the same
corpus only, and described only as far as the intervals allow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepfake_lib.notebook.speaker_cv import describe_speaker_cv, speaker_cv_table


def _entry(eer: float, low: float, high: float, name: str | None = None) -> dict:
    out = {
        "pooled": {"all": {"eer": eer, "eer_low": low, "eer_high": high}},
        "per_fold": {"mean": eer, "min": low, "max": high, "n_folds": 7},
    }
    if name:
        out["name"] = name
    return out


def _write(root: Path, corpus: str, *, rawnet: tuple[float, float, float]) -> None:
    results = root / "benchmarks" / "results"
    results.mkdir(parents=True)
    classical = {
        "corpus": {"folder": corpus},
        "speaker_cv": {
            "lfcc_lr": _entry(0.30, 0.25, 0.36),
            "cheap_cues_lr": _entry(0.35, 0.30, 0.40),
            "lfcc_gmm": _entry(0.33, 0.27, 0.39),
        },
    }
    nets = {"corpus": {"folder": corpus}, "systems": {"rawnet": _entry(*rawnet, name="RawNet2-style")}}
    (results / "real_speech.json").write_text(json.dumps(classical))
    (results / "real_speech_nets.json").write_text(json.dumps(nets))


def test_overlapping_intervals_rank_nothing_and_say_the_control_is_not_beaten(tmp_path):
    _write(tmp_path, "real_speech", rawnet=(0.28, 0.20, 0.37))
    (tmp_path / "real_speech").mkdir()
    table = speaker_cv_table(str(tmp_path / "real_speech"), root=tmp_path)
    assert table["system"].tolist()[0] == "RawNet2-style" and len(table) == 4
    text = describe_speaker_cv(table)
    assert "lower (better)" not in text and "the intervals overlap" in text
    assert "cannot tell any detector here from cheap cues" in text


def test_separated_intervals_are_stated(tmp_path):
    _write(tmp_path, "real_speech", rawnet=(0.05, 0.02, 0.09))
    (tmp_path / "real_speech").mkdir()
    text = describe_speaker_cv(speaker_cv_table(str(tmp_path / "real_speech"), root=tmp_path))
    assert "is lower (better) than that of cheap-cue control" in text
    assert "below the cheap-cue control with intervals apart" in text


def test_results_of_another_corpus_or_source_are_not_shown(tmp_path):
    _write(tmp_path, "real_speech_other", rawnet=(0.05, 0.02, 0.09))
    (tmp_path / "real_speech").mkdir()
    assert speaker_cv_table(str(tmp_path / "real_speech"), root=tmp_path) is None
    assert speaker_cv_table("embedded", root=tmp_path) is None
    with pytest.raises(ValueError):
        describe_speaker_cv(
            speaker_cv_table(str(tmp_path / "real_speech"), root=tmp_path) or __import__("pandas").DataFrame()
        )
