"""The benchmark scripts stay runnable: each one imports and parses its arguments."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("bench_*.py"))


def test_every_benchmark_is_found():
    assert {p.stem for p in SCRIPTS} >= {
        "bench_audio",
        "bench_corpus",
        "bench_latency",
        "bench_service",
        "bench_training",
    }


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_benchmark_script_imports_and_shows_usage(script: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout and "--quick" in done.stdout


ROOT = Path(__file__).resolve().parents[1]


def _report_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "benchmarks" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_benchmark_table_is_the_rendered_results() -> None:
    """The README's table is generated from benchmarks/results/*.json, never typed by hand."""
    report = _report_module()
    text = (ROOT / "README.md").read_text()
    assert report.START in text and report.END in text
    block = text.split(report.START, 1)[1].split(report.END, 1)[0].strip()
    assert block == report.render().strip(), (
        "README table is stale: run `python benchmarks/report.py --update README.md`"
    )


def test_report_marks_missing_results_and_reads_saved_figures(tmp_path: Path) -> None:
    report = _report_module()
    assert report.render(tmp_path).count("not measured yet") == 9
    (tmp_path / "service.json").write_text(
        '{"clients": 20, "clip_s": 4.0, "requests_per_s": 12.34, "latency_ms": {"p50": 150.0, "p95": 420.0},'
        ' "errors": 0, "requests_ok": 200, "server_rss_growth_mb": 7.0}'
    )
    table = report.render(tmp_path)
    assert "12.3 requests/s" in table and "p95 420 ms" in table and table.count("not measured yet") == 8


def test_report_renders_the_stream_latency(tmp_path: Path) -> None:
    report = _report_module()
    row = {"runtime": "mixed", "window_s": 4.0, "hop_s": 2.0, "realtime_factor": 12.5}
    results = {
        f"{m} x{n}": {
            **row,
            "model": {"demo": "the demo run runs/demo", "base": "wav2vec2-base config, random weights"}[m],
            "p50_ms": 40.0 * n,
            "p95_ms": 90.0 * n,
            "model_ms_p50": 30.0 * n,
            "lost_windows": n - 1,
        }
        for m in ("demo", "base")
        for n in (1, 8)
    }
    host = {"cpus": 2, "load_average_1_5_15": [1.5, 1.0, 1.0]}
    (tmp_path / "stream.json").write_text(json.dumps({"results": results, "host": host}))
    rows = [r for r in report.render(tmp_path).splitlines() if "`/stream`" in r]
    assert len(rows) == 2 and "the demo run runs/demo" in rows[0] and "wav2vec2-base" in rows[1]
    assert (
        "p50 40.0 ms / 320 ms, p95 90.0 ms / 720 ms; of which the model 30.0 ms / 240 ms (p50); lost windows 0 / 7"
        in rows[0]
    )


def test_report_renders_the_real_speech_series_and_the_rehearsal(tmp_path: Path) -> None:
    report = _report_module()
    series = {
        "params_file": "params/real_speech.yaml",
        "quick": False,
        "series": {
            "wall_seconds": 600.0,
            "peak_rss_mb": 2100.0,
            "notebook_seconds": {
                "01_a.ipynb": 20.0,
                "02_b.ipynb": 30.0,
                "03_c.ipynb": 250.0,
                "04_d.ipynb": 300.0,
            },
        },
        "run": {
            "model": {"eer": 0.4, "eer_ci95": None, "auc": 0.63, "n": 150},
            "too_few_groups": {"bonafide": 1, "spoof": 3, "needed": 5},
            "systems": {"LFCC + LR": {"eer": 0.282, "eer_ci95": None}},
            "per_attack": {"flite": {"eer": 0.025, "eer_ci95": None}},
            "real_to_embedded": {"eer": 0.45, "eer_ci95": [0.4, 0.5], "n": 600},
        },
        "embedded_to_real": {"eer": 0.48, "eer_ci95": None, "n": 1000},
    }
    (tmp_path / "real_speech_series.json").write_text(json.dumps(series))
    rehearsal = {
        "params_file": "params/rehearsal.yaml",
        "quick": False,
        "notebooks": [
            {"name": "01_a.ipynb", "ok": True, "seconds": 14.0, "kernel_peak_rss_mb": 1600.0},
            {"name": "04_d.ipynb", "ok": False, "wall_seconds": 9.0},
        ],
        "total_seconds": 14.0,
        "training": None,
    }
    (tmp_path / "rehearsal.json").write_text(json.dumps(rehearsal))
    table = report.render(tmp_path)
    assert "10.0 min (01 20 s, 02 30 s, 03 250 s, 04 300 s), peak RSS 2100 MB" in table
    assert "model 40.0%, AUC 0.63; LFCC + LR 28.2%; no intervals: 1 bona fide test speaker(s)" in table
    assert "embedded -> real 48.0% on 1000 clips; real -> embedded 45.0% (40.0% to 50.0%) on 600" in table
    assert "01 14 s / 1600 MB; **failed: 04**" in table
    series["quick"] = True  # a smoke run is never shown as the measurement
    (tmp_path / "real_speech_series.json").write_text(json.dumps(series))
    assert "bench_real_speech_series.py` | | |" in report.render(tmp_path)


def test_report_update_refuses_a_readme_without_markers(tmp_path: Path) -> None:
    report = _report_module()
    readme = tmp_path / "README.md"
    readme.write_text("# no markers here\n")
    with pytest.raises(ValueError, match="README.md"):
        report.update(readme, tmp_path)
    assert readme.read_text() == "# no markers here\n"  # nothing lost


@pytest.mark.slow
def test_latency_quick_run_saves_results_that_the_report_renders(tmp_path: Path) -> None:
    """A smoke run end to end: the script measures, saves its JSON, and the README table reads it."""
    out = tmp_path / "latency.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_latency.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    import json

    saved = json.loads(out.read_text())
    fp32 = saved["models"]["tiny"]["fp32"]
    assert fp32["batch1_ms_per_clip"] > 0 and fp32["parity"]["label_agreement"] == 1.0
    rows = _report_module().latency_rows(saved)
    assert any("tiny default, fp32" in r for r in rows) and any("int8" in r for r in rows)


def test_latency_ratio_pairs_rounds_so_a_busy_spell_cannot_make_it() -> None:
    # two of fp32's three rounds fell in a busy spell, and one of the variant's; run from the
    # benchmarks folder, where the script finds its sibling gauges.py
    code = "import bench_latency as b; print(b.paired_ratio([560.0, 160.0, 160.0], [1447.0, 1447.0, 400.0]))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT / "benchmarks", capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout) == pytest.approx(560 / 1447)  # the ratio of the medians says 160/1447 = 0.11


def test_real_speech_benchmark_refuses_to_build_over_an_existing_folder(tmp_path: Path) -> None:
    corpus = tmp_path / "real_speech"
    corpus.mkdir()
    (corpus / "someone_elses.txt").write_text("keep me")
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_real_speech.py"), "--small", "--out", str(corpus)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "never replaces a corpus" in done.stderr
    assert [p.name for p in corpus.iterdir()] == ["someone_elses.txt"]


def test_report_renders_the_real_speech_tables(tmp_path: Path) -> None:
    report = _report_module()
    row = {"eer": 0.2, "eer_low": 0.1, "eer_high": 0.3, "no_interval": ""}
    pooled = {"all": row, "piper": {**row, "eer": 0.05}, "world": row}
    system = {"pooled": pooled, "per_fold": {"mean": 0.25, "min": 0.1, "max": 0.4, "n_folds": 7}}
    results = {
        "speaker_folds": {str(k): [f"s{k}"] for k in range(7)},
        "speaker_cv": {
            "lfcc_lr": {**system, "left_out": {"piper": {**row, "eer": 0.45}, "world": row}},
            "cheap_cues_lr": {**system, "permutation_null": {"all": {"q05": 0.41, "n": 20}}},
        },
        "prompt_cv": {"lfcc_lr": system},
        "single_cues": [
            {"attack": "piper", "cue": "f0_median_hz", "eer": 0.08, "beats_null": True},
            {"attack": "world", "cue": "kurtosis", "eer": 0.4, "beats_null": True},
        ],
    }
    (tmp_path / "real_speech.json").write_text(json.dumps(results))
    table = report.real_speech_table(report.load("real_speech", tmp_path))
    assert (
        "**Speaker-disjoint** (7 folds" in table
        and "| LFCC + LR | 20.0% [10.0-30.0] | 5.0% [10.0-30.0] |" in table
    )
    assert "| LFCC + LR | 45.0% [10.0-30.0] | 20.0% [10.0-30.0] |" in table  # generator-disjoint row
    assert "f0_median_hz 8.0%" in table and "none below 20%" in table  # world's 40% cue is not listed
    assert "5% quantile of 20 runs | 41.0%" in table and "same-speaker figures" in table
    assert report.real_speech_table(None).startswith("Not measured yet")


def test_report_adds_the_trained_networks_of_the_same_corpus_and_folds_only(tmp_path: Path) -> None:
    report = _report_module()
    row = {"eer": 0.2, "eer_low": 0.1, "eer_high": 0.3, "no_interval": ""}
    system = {"pooled": {"all": row}, "per_fold": {"mean": 0.25, "min": 0.1, "max": 0.4, "n_folds": 7}}
    folds = {str(k): [f"s{k}"] for k in range(7)}
    classical = {
        "corpus": {"folder": "real_speech"},
        "speaker_folds": folds,
        "speaker_cv": {"lfcc_lr": system},
    }
    net = {"name": "RawNet2-style", "pooled": {"all": {**row, "eer": 0.12}}, "per_fold": system["per_fold"]}
    nets = {"corpus": {"folder": "real_speech"}, "speaker_folds": folds, "recipe": {"epochs": 10}}
    nets["systems"] = {"rawnet": net}
    table = report.real_speech_table(classical, nets)
    assert "| RawNet2-style (10 epochs max, `params/real_speech.yaml`) | 12.0% [10.0-30.0] |" in table
    other = {**nets, "speaker_folds": {"0": ["someone else"]}}
    assert "RawNet2-style" not in report.real_speech_table(classical, other)
    assert "RawNet2-style" not in report.real_speech_table(classical, {**nets, "corpus": {"folder": "x"}})


def test_nets_benchmark_folds_hold_the_test_speaker_out_and_validate_on_other_prompts() -> None:
    import importlib.util

    import numpy as np
    import pandas as pd

    spec = importlib.util.spec_from_file_location(
        "bench_nets", ROOT / "benchmarks" / "bench_real_speech_nets.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(0)
    meta = pd.DataFrame(
        {
            "speaker_id": rng.choice([f"s{i}" for i in range(7)], 400),
            "prompt_id": rng.choice([f"p{i}" for i in range(30)], 400),
        }
    )
    folds = pd.factorize(meta["speaker_id"])[0]
    for k in np.unique(folds):
        split = module.fold_splits(meta, folds, int(k), seed=0)
        assert sorted(np.concatenate(list(split.values())).tolist()) == list(range(400))
        test_speakers = set(meta["speaker_id"].to_numpy()[split["test"]])
        assert test_speakers.isdisjoint(meta["speaker_id"].to_numpy()[split["train"]])
        assert test_speakers.isdisjoint(meta["speaker_id"].to_numpy()[split["validation"]])
        prompts = meta["prompt_id"].to_numpy()
        assert set(prompts[split["validation"]]).isdisjoint(prompts[split["train"]])
        assert 0.05 < len(split["validation"]) / (400 - len(split["test"])) < 0.3
