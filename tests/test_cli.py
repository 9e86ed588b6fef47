"""Command line: deepfake-detect (recursion, CSV/JSONL, resume, errors, exit codes) and the
deepfake-lib subcommands' dispatch to the stage modules."""

from __future__ import annotations

import csv
import json
import shutil
import types

import numpy as np
import pytest
import soundfile as sf

from deepfake_lib.audio.io import SERVICE_MAX_DURATION_S
from deepfake_lib.cli import main as cli
from deepfake_lib.corpora import real_speech
from deepfake_lib.deploy.service import DEFAULT_MAX_CONCURRENT
from deepfake_lib.notebook import series
from deepfake_lib.runs import mark_complete

SR = 16_000


def tone(seconds: float, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.8 * t))).astype(np.float32)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from deepfake_lib.modeling.frontends import build_tiny_model
    from deepfake_lib.modeling.models import save_model

    run = tmp_path_factory.mktemp("cli_run") / "demo"
    save_model(build_tiny_model(seed=11), run / "model")
    (run / "metrics.json").write_text(
        json.dumps({"threshold": {"value": 0.01, "chosen_on": "validation EER"}})
    )
    mark_complete(run, "run", writer="test fixture")
    return run


@pytest.fixture()
def audio_tree(tmp_path):
    root = tmp_path / "audio"
    (root / "sub" / "deeper").mkdir(parents=True)
    sf.write(root / "a.wav", tone(1.5), SR)
    sf.write(root / "sub" / "b.flac", tone(5.0, 330), SR, format="FLAC")
    sf.write(root / "sub" / "deeper" / "C.WAV", tone(2.0, 440), 22_050)
    (root / "sub" / "notes.txt").write_text("not audio, not an audio extension")
    (root / "sub" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    return root


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_detect_csv_recursion_errors_and_exit_code(run_dir, audio_tree, tmp_path, capsys):
    out = tmp_path / "results.csv"
    rc = cli.main_detect([str(run_dir), str(audio_tree), "--out", str(out), "--no-progress"])
    assert rc == 1  # one bad file, the others scored
    rows = read_csv(out)
    names = sorted(r["path"].rsplit("/", 1)[-1] for r in rows)
    assert names == ["C.WAV", "a.wav", "b.flac", "broken.wav"]
    bad = next(r for r in rows if r["path"].endswith("broken.wav"))
    assert bad["error"] and "broken.wav" in bad["error"] and bad["label"] == ""
    good = [r for r in rows if not r["error"]]
    assert all(r["label"] in ("Real", "Fake") for r in good)
    assert all(float(r["threshold"]) == pytest.approx(0.01) for r in good)
    assert all((r["label"] == "Real") == (float(r["score"]) >= 0.01) for r in good)
    b = next(r for r in rows if r["path"].endswith("b.flac"))
    assert int(b["n_windows"]) == 2 and float(b["duration_s"]) == pytest.approx(5.0)
    err = capsys.readouterr().err
    assert "3 scored" in err and "1 errors" in err and "0 skipped" in err


def test_resume_skips_files_already_done(run_dir, audio_tree, tmp_path, capsys):
    out = tmp_path / "results.csv"
    args = [str(run_dir), str(audio_tree), "--out", str(out), "--no-progress"]
    cli.main_detect(args)
    capsys.readouterr()
    rc = cli.main_detect(args)
    assert rc == 0
    err = capsys.readouterr().err
    assert "0 scored" in err and "4 skipped" in err
    assert len(read_csv(out)) == 4
    # drop one row and cut the last line short, as an interrupted run would leave it
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:-1]) + lines[-1][:10])
    rc = cli.main_detect(args)
    err = capsys.readouterr().err
    rows = read_csv(out)
    assert len(rows) == 4 and len({r["path"] for r in rows}) == 4
    assert "3 skipped" in err and ("1 scored" in err or "1 errors" in err)


def test_detect_jsonl_and_explicit_files(run_dir, audio_tree, tmp_path):
    out = tmp_path / "results.jsonl"
    rc = cli.main(
        [
            "detect",
            str(run_dir),
            str(audio_tree / "a.wav"),
            str(audio_tree / "sub" / "b.flac"),
            "--out",
            str(out),
            "--no-progress",
            "--threshold",
            "-100",
            "--window-s",
            "2",
        ]
    )
    assert rc == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["path"].rsplit("/", 1)[-1] for r in rows] == ["a.wav", "b.flac"]
    assert set(rows[0]) == set(cli.RESULT_COLUMNS)
    assert all(r["label"] == "Real" and r["threshold"] == -100 and r["error"] == "" for r in rows)
    assert rows[1]["n_windows"] == 4 and rows[1]["suspicious_segments"] == []


def test_csv_to_stdout_and_prediction_log(run_dir, audio_tree, tmp_path, capsys):
    log = tmp_path / "pred.jsonl"
    rc = cli.main_detect([str(run_dir), str(audio_tree / "a.wav"), "--no-progress", "--log", str(log)])
    assert rc == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ",".join(cli.RESULT_COLUMNS) and len(out) == 2
    assert json.loads(log.read_text())["source"].endswith("a.wav")


def test_no_inputs_and_bad_model_exit_2(run_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    assert cli.main_detect([str(run_dir), str(empty), "--no-progress"]) == 2
    assert "no input files" in capsys.readouterr().err
    assert cli.main_detect([str(run_dir), str(tmp_path / "missing.wav"), "--no-progress"]) == 2
    clip = tmp_path / "x.wav"
    sf.write(clip, tone(1.0), SR)
    assert cli.main_detect([str(tmp_path / "no_model_here"), str(clip), "--no-progress"]) == 2
    assert "cannot load model" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main_detect([str(run_dir)])  # no PATH
    assert info.value.code == 2


def test_missing_path_among_files_is_an_error_row(run_dir, audio_tree, tmp_path):
    out = tmp_path / "r.csv"
    rc = cli.main_detect(
        [
            str(run_dir),
            str(audio_tree / "a.wav"),
            str(tmp_path / "gone.wav"),
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 1
    rows = read_csv(out)
    assert (
        len(rows) == 2 and "no such file" in next(r for r in rows if r["path"].endswith("gone.wav"))["error"]
    )


def test_foreign_out_file_is_not_appended_to(run_dir, audio_tree, tmp_path):
    out = tmp_path / "other.csv"
    out.write_text("name,value\nx,1\n")
    assert cli.main_detect([str(run_dir), str(audio_tree), "--out", str(out), "--no-progress"]) == 2
    assert out.read_text() == "name,value\nx,1\n"


ODD_NAMES = ("cr\rname.wav", "lf\nname.wav", "ls\u2028name.wav", "nel\u0085name.wav", 'comma, "q".wav')


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_resume_is_exact_for_odd_file_names(run_dir, tmp_path, capsys, suffix):
    folder = tmp_path / "odd"
    folder.mkdir()
    for name in ODD_NAMES:
        sf.write(folder / name, tone(0.5), SR)
    out = tmp_path / f"results{suffix}"
    args = [str(run_dir), str(folder), "--out", str(out), "--no-progress"]
    assert cli.main_detect(args) == 0
    assert cli.read_done_paths(out, cli.results_format(out, None)) == {str(folder / n) for n in ODD_NAMES}
    before = out.read_bytes()
    capsys.readouterr()
    assert cli.main_detect(args) == 0
    assert out.read_bytes() == before and f"{len(ODD_NAMES)} skipped" in capsys.readouterr().err


def test_cut_last_csv_row_inside_quotes_is_dropped_and_rescored(run_dir, tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    for name in ("a.wav", "two\nlines.wav"):
        sf.write(folder / name, tone(0.5), SR)
    out = tmp_path / "results.csv"
    args = [str(run_dir), str(folder), "--out", str(out), "--no-progress"]
    cli.main_detect(args)
    text = out.read_text()
    out.write_text(text[: text.index("two\n") + 4])  # cut inside the quoted name, just after its newline
    assert cli.read_done_paths(out, "csv") == {str(folder / "a.wav")}
    assert cli.main_detect(args) == 0
    assert sorted(r["path"] for r in read_csv(out)) == sorted(
        str(folder / n) for n in ("a.wav", "two\nlines.wav")
    )


def test_broken_and_looping_links_are_reported_not_fatal(run_dir, audio_tree, tmp_path, capsys):
    (audio_tree / "dangling.wav").symlink_to(tmp_path / "nowhere.wav")
    (audio_tree / "loop.flac").symlink_to("loop.flac")
    named_loop = tmp_path / "named_loop.wav"
    named_loop.symlink_to(named_loop.name)
    _, problems = cli.collect_audio_files([audio_tree, named_loop])
    assert {p.name: why for p, why in problems} == {
        "dangling.wav": "broken link (its target does not exist)",
        "loop.flac": "symbolic link loop",
        "named_loop.wav": "symbolic link loop",
    }
    out = tmp_path / "r.csv"
    assert (
        cli.main_detect([str(run_dir), str(audio_tree), str(named_loop), "--out", str(out), "--no-progress"])
        == 1
    )
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in read_csv(out)}
    assert (
        "symbolic link loop" in rows["named_loop.wav"]["error"]
        and "broken link" in rows["dangling.wav"]["error"]
    )
    assert len(rows) == 4 + 3
    assert "named_loop.wav: symbolic link loop" in capsys.readouterr().err


def test_a_batch_that_raises_falls_back_to_one_file_at_a_time(tmp_path):
    class ExplodingDetector:
        def predict_many(self, items):
            items = list(items)
            if len(items) > 1:
                yield types.SimpleNamespace(ok=True, path=items[0])
                raise MemoryError("batch too large")
            if items[0].name == "bad.wav":
                raise RuntimeError("kernel died")
            yield types.SimpleNamespace(ok=True, path=items[0])

    files = [tmp_path / n for n in ("a.wav", "b.wav", "bad.wav", "c.wav")]
    results = list(cli.score_files(ExplodingDetector(), files))
    assert [p.name for p, _ in results] == ["a.wav", "b.wav", "bad.wav", "c.wav"]
    assert [r.ok for _, r in results] == [True, True, False, True]
    assert "kernel died" in results[2][1].error and "bad.wav" in results[2][1].error


def test_too_long_files_get_an_error_row(run_dir, tmp_path):
    clip = tmp_path / "three_seconds.wav"
    sf.write(clip, tone(3.0), SR)
    out = tmp_path / "r.jsonl"
    assert (
        cli.main_detect(
            [str(run_dir), str(clip), "--out", str(out), "--max-duration-s", "2", "--no-progress"]
        )
        == 1
    )
    row = json.loads(out.read_text())
    assert row["label"] is None and "over the limit of 2 s" in row["error"]


# ---------------------------------------------------------------------- subcommands
def test_train_dispatch_types_and_unknown_keys(tmp_path, monkeypatch, capsys):
    from deepfake_lib.modeling import training as train

    seen = {}

    def fake_fine_tune(cfg):
        seen["cfg"] = cfg
        return types.SimpleNamespace(run_dir=tmp_path / "run", metrics={})

    monkeypatch.setattr(train, "fine_tune", fake_fine_tune)
    params = tmp_path / "p.yaml"
    params.write_text("epochs: 2\nrun_dir: runs/x\n")
    rc = cli.main(
        [
            "train",
            "--params",
            str(params),
            "--set",
            "epochs=3",
            "--set",
            "learning_rate=1e-3",
            "--set",
            "augment_training=false",
            "--set",
            "freeze_feature_encoder=null",
        ]
    )
    assert rc == 0
    cfg = seen["cfg"]
    assert cfg.epochs == 3 and cfg.learning_rate == 0.001 and cfg.augment_training is False
    assert cfg.freeze_feature_encoder is None and cfg.run_dir == "runs/x"
    assert cli.main(["train", "--set", "epoch=3"]) == 2  # typo: strict parameters
    assert "unknown parameter" in capsys.readouterr().err
    assert cli.main(["train", "--set", "epochs"]) == 2


def test_corpus_series_and_notebook_dispatch(tmp_path, monkeypatch):
    from deepfake_lib.corpora import embedded as synthetic

    calls = {}
    monkeypatch.setattr(
        synthetic, "write_corpus", lambda path, config: calls.setdefault("corpus", (path, config))
    )
    assert (
        cli.main(
            [
                "corpus",
                "--out",
                str(tmp_path / "c.parquet"),
                "--n-utterances",
                "12",
                "--difficulty",
                "0.3",
                "--seed",
                "4",
            ]
        )
        == 0
    )
    path, config = calls["corpus"]
    assert path == str(tmp_path / "c.parquet")
    assert (config.n_utterances, config.difficulty, config.seed) == (12, 0.3, 4)

    monkeypatch.setattr(series, "run_series", lambda **kw: calls.setdefault("series", kw))
    monkeypatch.setattr(series, "refresh_notebooks", lambda: calls.setdefault("refresh", True))
    assert cli.main(["series", "--run-dir", "runs/x", "--params", "p.yaml"]) == 0
    assert calls["series"] == {"run_dir": "runs/x", "params_file": "p.yaml", "parameters": {}}
    calls.clear()
    assert (
        cli.main(["series", "--run-dir", "runs/x", "--set", "epochs=2", "--set", "data_source=data/c"]) == 0
    )
    assert calls["series"]["parameters"] == {"epochs": 2, "data_source": "data/c"}
    assert cli.main(["refresh-notebooks"]) == 0 and calls["refresh"] is True


def test_serve_dispatch(run_dir, monkeypatch):
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    assert cli.main(["serve", "--model", str(run_dir), "--port", "8123", "--max-upload-mb", "5"]) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123
    assert seen["app"].state.max_upload_bytes == 5_000_000
    assert seen["app"].state.max_duration_s == SERVICE_MAX_DURATION_S
    assert seen["app"].state.max_concurrent == DEFAULT_MAX_CONCURRENT
    assert (
        cli.main(["serve", "--model", str(run_dir), "--max-duration-s", "30", "--max-concurrent", "3"]) == 0
    )
    assert (seen["app"].state.max_duration_s, seen["app"].state.max_concurrent) == (30.0, 3)
    assert cli.main(["serve", "--model", str(run_dir), "--max-concurrent", "0"]) == 2


def test_build_corpus_real_speech_dispatch(monkeypatch):
    seen = []
    monkeypatch.setattr(real_speech, "main", lambda argv: seen.append(argv) or 0)
    assert cli.main(["build-corpus", "real-speech", "--small", "--out", "x", "--seed", "3"]) == 0
    assert cli.main(["build-corpus", "real-speech", "--help"]) == 0
    assert seen == [["--small", "--out", "x", "--seed", "3"], ["--help"]]
    monkeypatch.setattr(real_speech, "main", lambda argv: 2)
    assert cli.main(["build-corpus", "real-speech", "--check"]) == 2


def test_unfinished_run_or_export_folder_is_refused(run_dir, tmp_path, capsys):
    run = tmp_path / "killed"
    shutil.copytree(run_dir, run)
    (run / "complete.json").unlink()  # killed before the marker: not trusted, whatever it holds
    sf.write(tmp_path / "a.wav", tone(1.0), SR)
    assert cli.main_detect([str(run), str(tmp_path / "a.wav"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(run) in err and "incomplete run folder" in err and "Traceback" not in err
    export = tmp_path / "export"
    shutil.copytree(run_dir / "model", export / "model")
    (export / "export.json").write_text(json.dumps({"model_dir": "model", "threshold": 0.0}))
    assert cli.main_detect([str(export), str(tmp_path / "a.wav"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(export) in err and "incomplete export folder" in err and "re-export" in err


@pytest.mark.slow
def test_export_subcommand_int8(run_dir, tmp_path, capsys):
    out = tmp_path / "exp"
    assert cli.main(["export", "--model", str(run_dir), "--out", str(out), "--int8"]) == 0
    manifest = json.loads((out / "export.json").read_text())
    assert (
        set(manifest["parity"]) <= {"int8", "mixed"}
        and "int8" in manifest["parity"]
        and manifest["threshold"] == pytest.approx(0.01)
    )
    assert "int8" in capsys.readouterr().out
    assert cli.main(["export", "--model", str(tmp_path / "nothing"), "--out", str(tmp_path / "e2")]) == 2
