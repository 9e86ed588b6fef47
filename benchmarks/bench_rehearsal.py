"""Benchmark: the dress rehearsal of the Colab run (``params/rehearsal.yaml``) on this machine.

Builds the stand-ins (:mod:`deepfake_lib.notebook.rehearsal`) unless ``--skip-build``, then runs each
notebook of the series in its own process, one after the other, into one run folder, and
records per notebook:

* wall seconds of the papermill call (kernel start included);
* the kernel's peak resident memory, MB (``RUSAGE_CHILDREN`` of the process that ran it);

plus, from notebook 03's ``metrics.json``: training seconds, clips trained, epochs run,
device and precision, and the artefacts the run folder lacks (none when it is complete).

A short matmul probe before and after brackets the run (the hosts are shared).

Usage: ``python benchmarks/bench_rehearsal.py [--quick] [--skip-build] [--out PATH]``.
``--quick`` builds a 20-row dataset and runs notebooks 01 and 02 only (no training): a smoke
run of the stand-ins through the data notebooks. Writes JSON to
``benchmarks/results/rehearsal.json`` (``rehearsal_quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
QUICK_NOTEBOOKS = ("01_data_exploration.ipynb", "02_preprocessing_augmentation.ipynb")


def matmul_gflops(seconds: float = 0.5) -> float:
    """fp32 matmul throughput (GFLOP/s) over about ``seconds``: a probe of the host's speed."""
    import torch

    a, b = torch.randn(512, 512), torch.randn(512, 512)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * 512**3 * n / (time.perf_counter() - start) / 1e9


def quick_params(params: Path, standins: Path, out: Path) -> Path:
    """A copy of ``params`` whose two sources point into ``standins`` (for ``--quick``)."""
    import yaml

    values = yaml.safe_load(params.read_text())
    values.update(data_source=str(standins / "data"), model_source=str(standins / "model"))
    out.write_text(yaml.safe_dump(values, sort_keys=False))
    return out


def run_notebook(name: str, run_dir: Path, params: Path) -> dict[str, Any]:
    """Run one notebook in a fresh process; its seconds and kernel peak RSS (MB)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        started = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "deepfake_lib.notebook.rehearsal",
                "run",
                "--run-dir",
                str(run_dir),
                "--params",
                str(params),
                "--notebook",
                name,
                "--report",
                str(report),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            tail = (done.stdout + done.stderr)[-4000:]
            return {"name": name, "ok": False, "wall_seconds": round(wall, 1), "error_tail": tail}
        summary = json.loads(report.read_text())
    nb = summary["notebooks"][0]
    return {
        "name": name,
        "ok": True,
        "seconds": nb["seconds"],
        "wall_seconds": round(wall, 1),
        "kernel_peak_rss_mb": summary["kernel_peak_rss_mb"],
        "output": nb["output"],
        "parameters": summary["parameters"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20-row dataset, notebooks 01-02 only")
    parser.add_argument("--skip-build", action="store_true", help="reuse the stand-ins already built")
    parser.add_argument(
        "--run-dir", default=None, help="run folder (default runs/rehearsal, or runs/rehearsal_quick)"
    )
    parser.add_argument(
        "--params", default="params/rehearsal.yaml", help="params file (relative to the project root)"
    )
    parser.add_argument(
        "--out", default=None, help="results JSON (default benchmarks/results/rehearsal[_quick].json)"
    )
    args = parser.parse_args()

    from deepfake_lib.config import resolve_path
    from deepfake_lib.notebook.rehearsal import build_standins, missing_artefacts
    from deepfake_lib.notebook.series import NOTEBOOKS

    run_dir = resolve_path(args.run_dir or ("runs/rehearsal_quick" if args.quick else "runs/rehearsal"))
    params = resolve_path(args.params)
    out = (
        Path(args.out) if args.out else RESULTS / ("rehearsal_quick.json" if args.quick else "rehearsal.json")
    )
    notebooks = QUICK_NOTEBOOKS if args.quick else NOTEBOOKS
    run_dir.mkdir(parents=True, exist_ok=True)

    build_seconds = None
    if args.quick:
        standins = run_dir / "standins"
        started = time.perf_counter()
        build_standins(standins, n_rows=20)
        build_seconds = time.perf_counter() - started
        params = quick_params(params, standins, run_dir / "params.yaml")
    elif not args.skip_build:
        import yaml

        sources = yaml.safe_load(params.read_text())
        standins = resolve_path(sources["data_source"]).parent
        started = time.perf_counter()
        build_standins(standins)
        build_seconds = time.perf_counter() - started

    probe_before = matmul_gflops()
    rows = []
    for name in notebooks:
        row = run_notebook(name, run_dir, params)
        rows.append(row)
        shown = (
            f"{row['seconds']:.0f} s, kernel peak RSS {row['kernel_peak_rss_mb']:.0f} MB"
            if row["ok"]
            else "FAILED"
        )
        print(f"{name}: {shown}", flush=True)
        if not row["ok"]:
            print(row["error_tail"], file=sys.stderr)
            break
    probe_after = matmul_gflops()

    metrics_path = run_dir / "metrics.json"
    training = None
    if metrics_path.is_file() and "03_fine_tuning.ipynb" in [r["name"] for r in rows if r["ok"]]:
        m = json.loads(metrics_path.read_text())
        n_train = m["n_clips"]["train"]
        training = {
            "train_seconds": m["train_seconds"],
            "n_train_clips": n_train,
            "epochs_run": m["epochs_run"],
            "clips_per_s_incl_eval": round(n_train * m["epochs_run"] / m["train_seconds"], 3),
            "device": m["device"],
            "precision": m["precision"],
            "n_parameters": m["n_parameters"],
            "peak_rss_mb_in_training": m["peak_rss_mb"],
            "notes": m["notes"],
        }
    # one series.json for the whole run, as a single `series` call writes it
    if all(r["ok"] for r in rows) and rows:
        series = {
            "run_dir": str(run_dir),
            "parameters": rows[-1]["parameters"],
            "notebooks": [{"name": r["name"], "output": r["output"], "seconds": r["seconds"]} for r in rows],
        }
        (run_dir / "series.json").write_text(json.dumps(series, indent=2, default=str) + "\n")
    result = {
        "params_file": os.path.relpath(params, resolve_path(".")),
        "quick": args.quick,
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": _torch_threads(),
            "platform": platform.platform(),
            "matmul_gflops_before": round(probe_before, 1),
            "matmul_gflops_after": round(probe_after, 1),
        },
        "build_seconds": None if build_seconds is None else round(build_seconds, 1),
        "notebooks": [{k: v for k, v in r.items() if k not in ("output", "parameters")} for r in rows],
        "total_seconds": round(sum(r.get("seconds", 0.0) for r in rows), 1),
        "kernel_peak_rss_mb": max((r.get("kernel_peak_rss_mb", 0.0) for r in rows), default=None),
        "training": training,
        "missing_artefacts": None if args.quick else missing_artefacts(run_dir),
        "gpu": "not measured",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"total {result['total_seconds']:.0f} s; results in {out}")
    if not all(r["ok"] for r in rows):
        raise SystemExit(1)


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
