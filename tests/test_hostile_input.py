"""Hostile and broken input (tests/hostile_corpus.py) through the loader, deepfake-detect and
the web service: every item is scored or rejected with a clear error, nothing crashes, memory
stays bounded; and deepfake-detect killed mid-batch resumes with every file exactly once."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Self

import numpy as np
import psutil
import pytest
import soundfile as sf

from deepfake_lib.audio.errors import AudioError
from deepfake_lib.corpora.sources import load_source
from tests.hostile_corpus import SR, HostileItem, build_corpus, encode, tone, write_corpus

MB = 1 << 20
LOADER_GROWTH_LIMIT_MB = 300
"""Peak RSS growth allowed while the loader checks the whole corpus (bombs included)."""
SERVICE_GROWTH_LIMIT_MB = 300
"""Peak RSS growth allowed while the service answers every corpus item."""
CLI_GROWTH_LIMIT_MB = 300
"""Peak RSS growth allowed while deepfake-detect scores the corpus (model load included)."""
CLI_MAX_DURATION_S = 600


class PeakRSS:
    """Samples a process's resident memory every few ms in a thread; ``peak`` and
    ``baseline`` are bytes (the baseline is the RSS when sampling starts)."""

    def __init__(self, pid: int | None = None, interval_s: float = 0.005) -> None:
        self.process = psutil.Process(pid or os.getpid())
        self.interval_s = interval_s
        self.baseline = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:  # the process ended
                return
            time.sleep(self.interval_s)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        """Peak minus baseline, MiB."""
        return (self.peak - self.baseline) / MB


@pytest.fixture(scope="module")
def corpus() -> list[HostileItem]:
    return build_corpus()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deepfake_lib.modeling.frontends import build_tiny_model
    from deepfake_lib.modeling.models import save_model

    return save_model(build_tiny_model(seed=5), tmp_path_factory.mktemp("hostile") / "model")


def test_corpus_covers_at_least_25_kinds(corpus, tmp_path):
    written = write_corpus(tmp_path / "c", corpus)
    kinds = {i.kind for i in written.items.values()} | {f"link {p.name}" for p in written.links}
    assert len(kinds) >= 25 + 10, sorted(kinds)
    assert sum(i.expect == "reject" for i in corpus) >= 15


# ------------------------------------------------------------------------------ loader
def test_loader_keeps_good_rows_and_names_each_bad_one(corpus, tmp_path):
    import datasets

    items = {f"row{k:02d}_{it.kind}": it for k, it in enumerate(corpus)}
    struct = datasets.Features(
        {
            "audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
            "label": datasets.ClassLabel(names=["Fake", "Real"]),
            "clip_id": datasets.Value("string"),
        }
    )
    rows = {
        "audio": [{"bytes": it.data, "path": it.filename} for it in items.values()],
        "label": [k % 2 for k in range(len(items))],
        "clip_id": list(items),
    }
    path = tmp_path / "hostile.parquet"
    datasets.Dataset.from_dict(rows, features=struct).cast_column("audio", datasets.Audio()).to_parquet(
        str(path)
    )

    with pytest.raises(AudioError, match=r"hostile\.parquet \[train row \d+: row\d\d_"):
        load_source(str(path))  # the default checks every row too, and stops at the first bad one
    with PeakRSS() as mem:
        dd, report = load_source(str(path), skip_bad_audio=True)
    kept = set(dd["train"]["clip_id"])
    assert kept == {c for c, it in items.items() if it.loader_outcome == "score"}
    reasons = {re.search(r"row\d\d_\w+", name).group(0): why for name, why in report.skipped}
    assert set(reasons) == {c for c, it in items.items() if it.loader_outcome == "reject"}
    for clip, why in reasons.items():
        assert re.search(items[clip].problem + "|too short for the model", why), (clip, why)
    assert all(0 < d < 2 for d in dd["train"]["duration"])
    assert mem.growth_mb < LOADER_GROWTH_LIMIT_MB, (
        f"peak RSS grew {mem.growth_mb:.0f} MiB while loading the corpus (bound {LOADER_GROWTH_LIMIT_MB} MiB)"
    )


def test_audiofolder_reports_broken_and_looping_links(corpus, tmp_path):
    root = tmp_path / "af"
    written = write_corpus(root / "fake", [i for i in corpus if i.kind in ("wav_pcm16_16k", "silence")])
    (root / "real").mkdir()
    sf.write(root / "real" / "ok.wav", tone(1.0), SR)
    dd, report = load_source(str(root), skip_bad_audio=True)
    skipped = dict(report.skipped)
    for link, problem in written.links.items():
        match = [why for name, why in skipped.items() if f"fake/{link.stem}]" in name]
        assert match and re.search(problem, match[0]), (link.name, skipped)
    assert any("digital silence" in why for why in skipped.values())
    assert len(dd["train"]) == 1 + sum(it.expect == "score" for it in written.items.values())


# ------------------------------------------------------------------------------ CLI
def _run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, float]:
    """Run ``deepfake-lib detect`` in this process: (exit code, stderr, peak RSS growth in MiB)."""
    from deepfake_lib.cli import main as cli

    capsys.readouterr()
    with PeakRSS() as mem:
        code = cli.main(["detect", *args, "--no-progress"])
    return code, capsys.readouterr().err, mem.growth_mb


def _read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture()
def killed_and_resumed(model_dir, tmp_path, capsys):
    """deepfake-detect on 24 ordinary clips in a child process, SIGKILLed after a few rows,
    then the same command again (in this process)."""
    files = []
    for k in range(24):
        path = tmp_path / "clips" / f"clip{k:02d}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, tone(1.0, freq=150 + 10 * k), SR)
        files.append(path)
    out = tmp_path / "results.csv"
    args = [
        str(model_dir),
        str(tmp_path / "clips"),
        "--out",
        str(out),
        "--batch-size",
        "1",
        "--device",
        "cpu",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepfake_lib.cli", "detect", *args, "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 5:  # header + 4 rows
            break
        time.sleep(0.01)
    killed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rows_at_kill = len(_read_rows(out))
    code, stderr, growth_mb = _run_cli(args, capsys)
    return {
        "files": files,
        "out": out,
        "killed": killed,
        "rows_at_kill": rows_at_kill,
        "code": code,
        "stderr": stderr,
        "growth_mb": growth_mb,
    }


def test_sigkill_during_batch_scoring_then_resume_scores_every_file_once(killed_and_resumed):
    run = killed_and_resumed
    assert run["killed"], "the batch finished before it could be killed"
    assert 4 <= run["rows_at_kill"] < len(run["files"])
    assert run["code"] == 0, run["stderr"]
    assert f"{run['rows_at_kill']} skipped" in run["stderr"]
    paths = [r["path"] for r in _read_rows(run["out"])]
    assert sorted(paths) == sorted(str(f) for f in run["files"])  # every file exactly once
    assert all(r["label"] in ("Fake", "Real") for r in _read_rows(run["out"]))


def test_cli_scores_or_rejects_every_hostile_file_and_resumes_exactly(corpus, model_dir, tmp_path, capsys):
    written = write_corpus(tmp_path / "corpus", corpus)
    out = tmp_path / "results.csv"
    args = [
        str(model_dir),
        str(written.root),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--max-duration-s",
        str(CLI_MAX_DURATION_S),
    ]
    code, stderr, growth_mb = _run_cli(args, capsys)
    assert code == 1, stderr  # some files failed, the others were scored
    rows = _read_rows(out)
    by_path = {r["path"]: r for r in rows}
    assert len(by_path) == len(rows), "a file was reported twice"
    expected = {str(p): it for p, it in written.items.items()}
    assert set(by_path) == set(expected) | {str(p) for p in written.links}
    for path, item in expected.items():
        row = by_path[path]
        if item.expect == "score":
            assert row["label"] in ("Fake", "Real") and not row["error"], (item.kind, row["error"])
        else:
            assert not row["label"] and re.search(item.problem, row["error"]), (item.kind, row["error"])
            assert "pipe" not in row["error"]
    for link, problem in written.links.items():
        assert re.search(problem, by_path[str(link)]["error"]), by_path[str(link)]
    assert growth_mb < CLI_GROWTH_LIMIT_MB, (
        f"peak RSS grew {growth_mb:.0f} MiB while deepfake-detect scored the corpus (bound {CLI_GROWTH_LIMIT_MB} MiB)"
    )

    before = out.read_bytes()
    code, stderr, _ = _run_cli(args, capsys)
    assert code == 0 and out.read_bytes() == before, stderr  # odd names included: nothing re-scored
    assert f"0 scored (0 Fake, 0 Real), 0 errors, {len(rows) - len(written.links)} skipped" in stderr


# ------------------------------------------------------------------------------ service
def test_service_answers_every_item_with_200_or_a_clear_4xx(corpus, model_dir):
    from fastapi.testclient import TestClient

    from deepfake_lib.deploy import service as serve

    app = serve.create_app(str(model_dir), device="cpu", max_upload_mb=20)
    with TestClient(app) as client, PeakRSS() as mem:
        for item in corpus:
            resp = client.post("/predict", files={"file": (item.filename, item.data, "audio/wav")})
            assert resp.status_code == item.http_status, (item.kind, resp.status_code, resp.text)
            if resp.status_code != 200:
                detail = resp.json()["detail"]
                assert item.filename in detail and re.search(item.problem, detail), (item.kind, detail)
    assert mem.growth_mb < SERVICE_GROWTH_LIMIT_MB, (
        f"peak RSS grew {mem.growth_mb:.0f} MiB while the service answered the corpus "
        f"(bound {SERVICE_GROWTH_LIMIT_MB} MiB)"
    )


def test_service_bounds_concurrent_decode_and_score(model_dir):
    from fastapi.testclient import TestClient

    from deepfake_lib.deploy import service as serve

    app = serve.create_app(str(model_dir), device="cpu", max_concurrent=2)
    state = {"now": 0, "most": 0}
    lock = threading.Lock()
    with TestClient(app) as client:
        detector = app.state.load_detector()
        real_predict = detector.predict

        def counting_predict(*args, **kwargs):
            with lock:
                state["now"] += 1
                state["most"] = max(state["most"], state["now"])
            try:
                time.sleep(0.2)  # hold the slot so that the other requests pile up
                return real_predict(*args, **kwargs)
            finally:
                with lock:
                    state["now"] -= 1

        detector.predict = counting_predict
        data = encode(tone(0.5), SR)
        codes: list[int] = []

        def post() -> None:
            codes.append(client.post("/predict", files={"file": ("c.wav", data, "audio/wav")}).status_code)

        threads = [threading.Thread(target=post) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert codes == [200] * 6
    assert 1 <= state["most"] <= 2, state


def test_duration_limit_of_the_service_is_configurable(model_dir):
    from fastapi.testclient import TestClient

    from deepfake_lib.deploy import service as serve

    app = serve.create_app(str(model_dir), device="cpu", max_duration_s=1.0)
    data = encode(np.concatenate([tone(1.0), tone(1.0)]), SR)
    with TestClient(app) as client:
        resp = client.post("/predict", files={"file": ("two_seconds.wav", data, "audio/wav")})
    assert resp.status_code == 413
    assert "two_seconds.wav" in resp.json()["detail"] and "limit of 1 s" in resp.json()["detail"]
