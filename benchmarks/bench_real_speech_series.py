"""Benchmark: the notebook series on the real-speech corpus, timed, and cross-corpus both ways.

Figures, measured in one run:

* the series (``python -m deepfake_lib.cli series --params params/real_speech.yaml``): wall
  seconds per notebook (from the run's ``series.json``), the whole call's wall seconds, and the
  peak resident memory of the largest process it started (the notebook kernels; MB);
* from the finished run: the test EER of the fine-tuned model and the systems notebook 04 sets
  beside it (LFCC-GMM, LFCC + LR, the shortcut control; cheap spectral features are in
  ``bench_real_speech.py``), EER per attack,
  leave-one-generator-out with its same-budget seen-attack control, and the model trained on
  real speech scored on a fresh embedded corpus (``analysis/cross_source_embedded.json``);
* the reverse direction: the embedded default run (``--demo-run``, default ``runs/demo``, run
  by ``make demo``) scored on every clip of the real-speech corpus.

Needs the corpus (``make realdata``) and, for the reverse direction, a finished embedded run.
The host may be shared: the JSON records the load average and a matmul probe before and after.

Usage: ``python benchmarks/bench_real_speech_series.py [--quick] [--skip-series] [--demo-run runs/demo]``.
Writes ``benchmarks/results/real_speech_series.json``; ``--quick`` (one epoch, no robustness
sweep, into ``runs/real_speech_quick``) writes nothing unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
from gauges import matmul_probe_gflops

RESULTS = Path(__file__).resolve().parent / "results"


QUICK_SETTINGS = ("epochs=1", "loao_epochs=1", "run_robustness=false", "n_bootstrap=100")
"""``--quick``: a smoke run of the same series (one epoch, no robustness sweep, few resamples)."""


def run_series(run_dir: Path, params: Path, settings: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run the four notebooks in a child process; wall seconds and the largest process's peak RSS."""
    command = [sys.executable, "-m", "deepfake_lib.cli.main", "series", "--run-dir", str(run_dir)]
    command += ["--params", str(params)]
    for setting in settings:
        command += ["--set", setting]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write((done.stdout + done.stderr)[-4000:])
        raise SystemExit(f"the series failed after {wall:.0f} s (exit {done.returncode})")
    series = json.loads((run_dir / "series.json").read_text())
    return {
        "wall_seconds": round(wall, 1),
        "notebook_seconds": {Path(nb["output"]).name: round(nb["seconds"], 1) for nb in series["notebooks"]},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0, 1),
    }


def _eer(row: Any) -> dict[str, Any]:
    """EER with its interval (NaN bounds become None) from a summary row or a metrics report."""
    get = row.get
    ci = (get("ci") or {}).get("eer") if "ci" in row else (get("eer_low"), get("eer_high"))
    bounds = [None if v is None or pd.isna(v) else round(float(v), 4) for v in (ci or (None, None))]
    return {"eer": round(float(get("eer")), 4), "eer_ci95": None if None in bounds else bounds}


def run_figures(run_dir: Path) -> dict[str, Any]:
    """The headline figures of a finished real-speech run, read from its files."""
    analysis = run_dir / "analysis"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    out: dict[str, Any] = {
        "model": {
            **_eer(metrics["test"]),
            "auc": round(metrics["test"]["auc"], 4),
            "n": metrics["test"]["n"],
        },
        "n_clips": metrics["n_clips"],
        "model_source": metrics.get("model_source"),
    }
    out["too_few_groups"] = (metrics["test"].get("ci") or {}).get("too_few_groups")
    systems = analysis / "baselines.csv"
    if systems.is_file():
        out["systems"] = {r["system"]: _eer(r) for _, r in pd.read_csv(systems).iterrows()}
    per_attack = analysis / "per_attack.csv"
    if per_attack.is_file():
        out["per_attack"] = {r["attack"]: _eer(r) for _, r in pd.read_csv(per_attack).iterrows()}
    loao = analysis / "loao.csv"
    if loao.is_file():
        keep = ["attack", "unseen_eer", "seen_eer", "others_eer", "n_unseen_spoof", "n_train", "epochs"]
        out["leave_one_out"] = pd.read_csv(loao)[keep].round(4).to_dict(orient="records")
    cross = analysis / "cross_source_embedded.json"
    if cross.is_file():
        c = json.loads(cross.read_text())
        out["real_to_embedded"] = {**_eer(c["metrics"]), "n": c["n_clips"]}
    return out


def embedded_to_real(demo_run: Path, corpus: str, n_bootstrap: int) -> dict[str, Any] | None:
    """The embedded default run's model scored on every real-speech clip (None without the run)."""
    from deepfake_lib.runs import load_run_config, require_complete
    from deepfake_lib.studies.cross_source import evaluate_cross_source

    try:
        require_complete(demo_run, "run")
    except FileNotFoundError as error:  # IncompleteFolderError too: missing or unfinished run
        print(f"embedded -> real skipped: {error}", file=sys.stderr)
        return None
    window_s = load_run_config(demo_run).eval_window_s  # score as the run scored its own clips
    result = evaluate_cross_source(demo_run, corpus, n_bootstrap=n_bootstrap, window_s=window_s)
    return {**_eer(result["metrics"]), "auc": round(result["metrics"]["auc"], 4), "n": result["n_clips"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params/real_speech.yaml")
    parser.add_argument("--run-dir", default=None, help="default runs/real_speech (runs/real_speech_quick)")
    parser.add_argument("--quick", action="store_true", help="smoke run: " + ", ".join(QUICK_SETTINGS))
    parser.add_argument("--demo-run", default="runs/demo", help="finished embedded run for embedded -> real")
    parser.add_argument(
        "--skip-series",
        action="store_true",
        help="read a finished run instead of running it (keeps the series timing already saved)",
    )
    parser.add_argument("--out", default=None, help="results JSON (default results/real_speech_series.json)")
    args = parser.parse_args()

    import yaml

    from deepfake_lib.config import resolve_path
    from deepfake_lib.corpora import real_speech

    params = resolve_path(args.params)
    run_dir = resolve_path(args.run_dir or ("runs/real_speech_quick" if args.quick else "runs/real_speech"))
    out = args.out or (None if args.quick else str(RESULTS / "real_speech_series.json"))
    values = yaml.safe_load(params.read_text())
    probe_before, load_before = matmul_probe_gflops(), os.getloadavg()[0]
    if args.skip_series:  # keep the timing of the run that made the folder, when this file has it
        previous = json.loads(Path(out).read_text()) if out and Path(out).is_file() else {}
        series = previous.get("series")
    else:
        series = run_series(run_dir, params, QUICK_SETTINGS if args.quick else ())
    if series:
        print(f"series: {series['wall_seconds']:.0f} s, peak RSS {series['peak_rss_mb']:.0f} MB", flush=True)
    probe_after, load_after = matmul_probe_gflops(), os.getloadavg()[0]
    result = {
        "params_file": args.params,
        "quick": args.quick,
        "corpus_build_version": real_speech.BUILD_VERSION,
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_average_before_after": [round(load_before, 2), round(load_after, 2)],
            "matmul_gflops_before_after": [round(probe_before, 1), round(probe_after, 1)],
        },
        "series": series,
        "run": run_figures(run_dir),
        "embedded_to_real": embedded_to_real(
            resolve_path(args.demo_run),
            str(resolve_path(values["data_source"])),
            int(values.get("n_bootstrap", 1000)),
        ),
    }
    try:
        import torch

        result["machine"]["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except Exception:  # noqa: BLE001 - optional detail
        pass
    print(json.dumps({k: result[k] for k in ("series", "embedded_to_real")}, indent=2))
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
