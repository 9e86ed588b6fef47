"""Benchmark: building the real-speech corpus, and the classical baselines on it.

Figures, measured in one run:

* the build: wall seconds and the peak memory of the whole process tree (the builder, its worker
  processes and their TTS subprocesses, sampled every 0.2 s): the sum of RSS (counts shared
  libraries once per process), the sum of PSS (shares them out) and the largest single RSS of
  ``python -m deepfake_lib.corpora.real_speech``, and the per-method compute seconds the builder
  records (``build.json`` in the corpus folder). The benchmark builds only into a folder that does
  not exist yet (default a fresh ``data/real_speech_bench-<time>``): it never replaces a corpus;
* the shortcut audit: each of the 29 cheap cues (:mod:`deepfake_lib.audio.cues`) alone, pooled and
  per attack, against the label-permutation null;
* speaker-grouped cross-validation (one fold per bona fide speaker, with the spoofs made from its
  recordings; the text-to-speech voices spread over the folds): LFCC + logistic regression,
  LFCC-GMM, the library's shortcut control (29 cues + sample rate) and the 5 recording properties
  it replaced (duration, level, peak, rate, zero-crossing rate), pooled out-of-fold EER, all
  attacks and per attack, with a bootstrap interval over speakers and voices; per-fold EERs;
  the control's permutation null (the whole cross-validation on shuffled labels);
* leave-one-generator-out across the same folds (LFCC + LR and the control);
* prompt-grouped cross-validation (5 folds by prompt id), the secondary same-speaker figures.

The host is shared: compare timings only with a similar load (the JSON records the load average).

Usage: ``python benchmarks/bench_real_speech.py [--small] [--skip-build --out FOLDER] [--quick]``.
Writes ``benchmarks/results/real_speech.json`` (``real_speech_small.json`` with ``--small``);
``benchmarks/report.py --update README.md`` renders its tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

from deepfake_lib.audio import cues
from deepfake_lib.audio.signal import level_stats
from deepfake_lib.config import resolve_path
from deepfake_lib.corpora import real_speech
from deepfake_lib.corpora.sources import load_example_native
from deepfake_lib.evaluation import folds as folds_mod
from deepfake_lib.evaluation import shortcuts
from deepfake_lib.evaluation.error_rates import compute_eer
from deepfake_lib.modeling import baselines, lfcc
from deepfake_lib.studies import grouped_cv

RESULTS = Path(__file__).resolve().parent / "results"


def measure_build(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Run the builder in a subprocess; wall seconds and peak RSS (MB) of its process tree."""
    cmd = (
        [
            sys.executable,
            "-m",
            "deepfake_lib.corpora.real_speech",
            "--out",
            str(out),
            "--workers",
            str(args.workers),
        ]
        + (["--small"] if args.small else [])
        + (["--prompts", str(args.prompts)] if args.prompts else [])
    )
    peak = peak_pss = peak_one = 0.0
    done = threading.Event()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)

    def sample() -> None:
        nonlocal peak, peak_pss, peak_one
        parent = psutil.Process(proc.pid)
        while not done.is_set():
            rss, pss = [], []
            for p in [parent, *parent.children(recursive=True)]:
                try:
                    info = (
                        p.memory_full_info()
                    )  # pss: shared pages (torch, onnxruntime) split between processes
                    rss.append(info.rss)
                    pss.append(getattr(info, "pss", info.rss))
                except psutil.Error:
                    continue
            if rss:
                peak = max(peak, sum(rss) / 2**20)
                peak_pss = max(peak_pss, sum(pss) / 2**20)
                peak_one = max(peak_one, max(rss) / 2**20)
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    rc = proc.wait()
    done.set()
    thread.join()
    if rc != 0:
        raise SystemExit(f"build failed with exit code {rc}: {' '.join(cmd)}")
    build = json.loads((out / "build.json").read_text())
    shown = [c if c != str(out) else (args.out or out.name) for c in cmd[1:]]  # no machine paths in the JSON
    return {
        "command": " ".join(shown),
        "wall_s": round(time.perf_counter() - t0, 1),
        "peak_rss_tree_mb": round(peak),
        "peak_pss_tree_mb": round(peak_pss),
        "peak_rss_one_process_mb": round(peak_one),
        **build,
    }


SYSTEMS: dict[str, str] = {
    "lfcc_lr": "LFCC + LR",
    "lfcc_gmm": "LFCC-GMM (16 components)",
    "cheap_cues_lr": "cheap-cue control: 29 cues + LR",
    "trivial_lr": "the 5 recording properties + LR (the notebooks' control until it became the cues)",
}
"""System key -> name shown in the tables."""


def _recording_properties(wave: np.ndarray, sr: int) -> np.ndarray:
    """Duration (s), RMS and peak level (dBFS), sample rate (Hz), zero-crossing rate: [5]."""
    stats = {**level_stats(wave, sr), "sample_rate": float(sr)}
    return np.array(
        [stats[k] for k in ("duration_s", "rms_dbfs", "peak_dbfs", "sample_rate", "zero_crossing_rate")]
    )


def _clip_features(item: tuple[bytes, int]) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Cheap cues, LFCC statistics and the 5 recording properties of one clip (in a worker process)."""
    import io

    import soundfile as sf

    wave, sr = sf.read(io.BytesIO(item[0]), dtype="float32")
    return (
        cues.extract_cheap_cues(wave, sr),
        lfcc.extract_lfcc_stats(wave, sr),
        _recording_properties(wave, sr),
    )


def extract_all(folder: Path, *, workers: int = 2) -> dict[str, Any]:
    """Metadata, 16 kHz waves and every feature set of the corpus in ``folder``."""
    import concurrent.futures as cf

    dd, _ = real_speech.load_corpus(folder)
    ds = dd["train"]
    meta = ds.select_columns(["clip_id", "label", "attack", "speaker_id", "utterance_id"]).to_pandas()
    meta["prompt_id"] = meta["utterance_id"].str.split(":", n=1).str[1]
    items = [(ex["audio"]["bytes"], int(ex["sample_rate"])) for ex in ds]
    waves = [load_example_native(ex)[0] for ex in ds]
    with cf.ProcessPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(_clip_features, items, chunksize=8))
    return {
        "meta": meta,
        "waves": waves,
        "cues": pd.DataFrame([r[0] for r in rows])[list(cues.CHEAP_CUE_NAMES)],
        "lfcc_lr": np.stack([r[1] for r in rows]),
        "cheap_cues_lr": np.array([[r[0][k] for k in cues.CHEAP_CUE_NAMES] for r in rows]),
        "trivial_lr": np.stack([r[2] for r in rows]),
    }


def make_systems(data: dict[str, Any], seed: int = 0) -> dict[str, tuple[Any, Any]]:
    """System key -> (fit(train index), score(model, test index)) on the corpus's features."""
    y = data["meta"]["label"].to_numpy()
    systems: dict[str, tuple[Any, Any]] = {}
    for key in ("lfcc_lr", "cheap_cues_lr", "trivial_lr"):
        x = data[key]
        systems[key] = (
            lambda idx, x=x: baselines.fit_logistic_baseline(x[idx], y[idx], seed=seed),
            lambda m, idx, x=x: baselines.score_baseline(m, x[idx]),
        )
    frames = [lfcc.extract_lfcc_frames(w) for w in data["waves"]]
    systems["lfcc_gmm"] = (
        lambda idx: _fit_gmm_frames([frames[i] for i in idx], y[idx], seed),
        lambda m, idx: m.score_frames([frames[i] for i in idx]),
    )
    return systems


def _fit_gmm_frames(frames: list[np.ndarray], labels: np.ndarray, seed: int) -> baselines.LfccGmm:
    """One diagonal GMM (16 components) per class on precomputed LFCC frames (at most 30000 each)."""
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(seed)
    gmms = {}
    for cls in (0, 1):
        data = np.concatenate([f for f, lab in zip(frames, labels, strict=True) if lab == cls])
        if data.shape[0] > 30000:
            data = data[rng.choice(data.shape[0], 30000, replace=False)]
        gmms[cls] = GaussianMixture(
            n_components=16, covariance_type="diag", max_iter=100, reg_covar=1e-3, random_state=seed
        ).fit(data)
    return baselines.LfccGmm(real=gmms[1], fake=gmms[0])


def _per_fold(labels: np.ndarray, scores: np.ndarray, folds: np.ndarray) -> dict[str, Any]:
    """EER of each fold's own clips: mean, min, max over the folds."""
    eers = []
    for k in np.unique(folds):
        sel = (folds == k) & np.isfinite(scores)
        if len(set(labels[sel].tolist())) == 2:
            eers.append(float(compute_eer(labels[sel], scores[sel]).eer))
    return {
        "mean": float(np.mean(eers)) if eers else None,
        "min": min(eers) if eers else None,
        "max": max(eers) if eers else None,
        "n_folds": len(eers),
    }


def evaluate_protocol(
    data: dict[str, Any],
    folds: np.ndarray,
    groups: np.ndarray,
    *,
    systems: dict[str, tuple[Any, Any]],
    n_bootstrap: int,
    leave_out: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Per system: pooled out-of-fold EER (all and per attack) with a grouped interval, the
    per-fold EERs, and for the systems in ``leave_out`` the leave-one-generator-out rows."""
    meta = data["meta"]
    y = meta["label"].to_numpy()
    attacks = meta["attack"].to_numpy()
    out: dict[str, Any] = {}
    for key, (fit, score) in systems.items():
        t0 = time.perf_counter()
        s = grouped_cv.cross_validate(y, folds, fit, score)
        out[key] = {
            "pooled": grouped_cv.summarize_pooled(y, s, groups, attacks, n_bootstrap=n_bootstrap),
            "per_fold": _per_fold(y, s, folds),
        }
        if key in leave_out:
            out[key]["left_out"] = grouped_cv.leave_one_attack_out(
                y, folds, attacks, groups, fit, score, n_bootstrap=n_bootstrap
            )
        out[key]["seconds"] = round(time.perf_counter() - t0, 1)
        print(f"  {SYSTEMS[key]}: pooled EER {100 * out[key]['pooled']['all']['eer']:.1f}%")
    return out


def evaluate_corpus(folder: Path, *, n_bootstrap: int = 1000, n_permutations: int = 20) -> dict[str, Any]:
    """Every figure of the benchmark on the corpus in ``folder`` (see the module docstring)."""
    t0 = time.perf_counter()
    data = extract_all(folder)
    meta = data["meta"]
    y = meta["label"].to_numpy()
    attacks = meta["attack"].to_numpy()
    speakers = meta["speaker_id"].to_numpy()
    report: dict[str, Any] = {
        "corpus": {
            "folder": folder.name,
            "clips": len(meta),
            "by_attack": meta["attack"].value_counts().to_dict(),
            "bonafide_speakers": sorted(meta.loc[meta["label"] == 1, "speaker_id"].unique().tolist()),
            "spoof_voices": sorted(meta.loc[meta["label"] == 0, "speaker_id"].unique().tolist()),
        },
        "features_s": round(time.perf_counter() - t0, 1),
    }
    audit = shortcuts.audit_single_cues(data["cues"], y, attacks, n_permutations=100)
    report["single_cues"] = audit.to_dict(orient="records")
    flagged = audit[audit["beats_null"]].sort_values("eer")
    print("\nsingle cues that beat the permutation null (EER < its 1% quantile):")
    for r in flagged.itertuples():
        print(f"  {r.attack:<12} {r.cue:<22} {100 * r.eer:5.1f}%  (null q01 {100 * r.null_q01:.1f}%)")
    systems = make_systems(data)
    speaker_folds = folds_mod.assign_speaker_folds(speakers, y)
    report["speaker_folds"] = {
        str(k): sorted(set(speakers[speaker_folds == k])) for k in np.unique(speaker_folds)
    }
    print(f"\nspeaker-grouped cross-validation, {len(report['speaker_folds'])} folds")
    report["speaker_cv"] = evaluate_protocol(
        data,
        speaker_folds,
        speakers,
        systems=systems,
        n_bootstrap=n_bootstrap,
        leave_out=("lfcc_lr", "cheap_cues_lr"),
    )
    fit, score = systems["cheap_cues_lr"]
    report["speaker_cv"]["cheap_cues_lr"]["permutation_null"] = grouped_cv.permutation_null(
        y, speaker_folds, attacks, fit, score, n_permutations=n_permutations
    )
    prompt_folds = folds_mod.assign_group_folds(meta["prompt_id"].to_numpy(), n_folds=5, seed=0)
    print("\nprompt-grouped cross-validation (same speakers and voices in training), 5 folds")
    report["prompt_cv"] = evaluate_protocol(
        data, prompt_folds, meta["prompt_id"].to_numpy(), systems=systems, n_bootstrap=n_bootstrap
    )
    report["evaluation_wall_s"] = round(time.perf_counter() - t0, 1)
    return report


def default_out(small: bool) -> Path:
    """A fresh folder for the benchmark's own build: ``data/real_speech_bench[_small]-<time>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return resolve_path(f"data/real_speech_bench{'_small' if small else ''}-{stamp}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="the small slice the tests build")
    parser.add_argument(
        "--out",
        default=None,
        help="corpus folder: with --skip-build the corpus to measure (default data/real_speech[_small]); "
        "otherwise a folder that must not exist yet (default a fresh data/real_speech_bench-<time>)",
    )
    parser.add_argument(
        "--skip-build", action="store_true", help="measure the baselines on an existing corpus"
    )
    parser.add_argument("--build-only", action="store_true", help="build and measure the build only")
    parser.add_argument(
        "--build-from",
        default=None,
        help="with --skip-build: a results JSON of a --build-only run that built this same folder; "
        "its build figures are carried into this run's results",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--prompts", type=int, default=None, help="prompt ids to build (the builder's default otherwise)"
    )
    parser.add_argument(
        "--results", default=None, help="JSON path (default benchmarks/results/real_speech[_small].json)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: the small slice, fewer bootstrap draws; writes no results file unless --results is given",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.small = True
    if args.skip_build:
        out = resolve_path(args.out or ("data/real_speech_small" if args.small else "data/real_speech"))
    else:
        out = resolve_path(args.out) if args.out else default_out(args.small)
        if out.exists():
            print(
                f"error: {out} exists; the benchmark builds only into a new folder and never replaces a "
                "corpus (measure an existing one with --skip-build)",
                file=sys.stderr,
            )
            return 2
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_start": [round(x, 2) for x in os.getloadavg()],
        }
    }
    if args.skip_build and args.build_from:
        earlier = json.loads(Path(args.build_from).read_text())
        built = earlier.get("build") or {}
        if out.name not in {Path(token).name for token in built.get("command", "").split()}:
            print(f"error: {args.build_from} did not build {out.name}", file=sys.stderr)
            return 2
        report["build"] = built
    if not args.skip_build:
        report["build"] = measure_build(args, out)
        b = report["build"]
        print(
            f"build: {b['wall_s']} s; process tree peak RSS sum {b['peak_rss_tree_mb']} MB, "
            f"PSS sum {b['peak_pss_tree_mb']} MB, largest process {b['peak_rss_one_process_mb']} MB"
        )
    if not args.build_only:
        report.update(evaluate_corpus(out, n_bootstrap=200 if args.quick else 1000))
    report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.quick and not args.results:
        print("\n--quick: no results file written (pass --results PATH to keep one)")
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = (
        Path(args.results)
        if args.results
        else RESULTS / ("real_speech_small.json" if args.small else "real_speech.json")
    )
    path.write_text(json.dumps(report, indent=1, default=float))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
