"""Benchmark: building the real-speech corpus, and the classical baselines on it.

Figures, measured in one run:

* the build: wall seconds and the peak memory of the whole process tree (the builder, its worker
  processes and their TTS subprocesses, sampled every 0.2 s): the sum of RSS (counts shared
  libraries once per process), the sum of PSS (shares them out) and the largest single RSS of ``python -m deepfake_lib.corpora.real_speech --force``, and the
  per-method compute seconds the builder records (``build.json`` in the corpus folder);
* the shortcut control: per cue (duration, level, leading/trailing silence, sample rate,
  energy above 4 kHz) its EER on the whole corpus and the label-permutation null's 1% quantile;
* baselines, mean EER (and range) over several group splits under two protocols:
  ``prompt``-disjoint (every rendering and spoof of a prompt on one side; speakers are shared)
  and ``speaker``-disjoint (``deepfake_lib.corpora.sources.assign_splits`` over ``speaker_id``, as the
  notebooks split): LFCC + logistic regression, LFCC-GMM, cheap spectral features (band
  energies, centroid, roll-off) + LR, the cues + LR and the library's shortcut features + LR;
  EER per attack (bona fide test clips against that attack's test clips), the re-synthesis
  attacks alone (TTS clips dropped from training and test), and leave-one-method-out for
  LFCC + LR (trained without that method, scored on it) next to the seen-method figure.

The host is shared: compare timings only with a similar load (the JSON records the load average).

Usage: ``python benchmarks/bench_real_speech.py [--small] [--skip-build] [--splits 5]``.
Writes ``benchmarks/results/real_speech.json`` (``real_speech_small.json`` with ``--small``).
"""

from __future__ import annotations

import argparse
import itertools
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
import psutil

from deepfake_lib.config import resolve_path
from deepfake_lib.corpora import real_speech, real_speech_channel
from deepfake_lib.corpora.sources import assign_splits, load_example_native
from deepfake_lib.corpora.spoof_generators import RESYNTHESIS_METHODS
from deepfake_lib.evaluation.error_rates import compute_eer
from deepfake_lib.modeling import baselines, lfcc

RESULTS = Path(__file__).resolve().parent / "results"


def measure_build(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Run the builder in a subprocess; wall seconds and peak RSS (MB) of its process tree."""
    cmd = [
        sys.executable,
        "-m",
        "deepfake_lib.corpora.real_speech",
        "--out",
        str(out),
        "--force",
        "--workers",
        str(args.workers),
    ] + (["--small"] if args.small else [])
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


def cheap_spectral_features(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Band energies (8 bands 0-4 kHz, dB re total), centroid and 85% roll-off (mean, std; Hz): [12]."""
    import librosa

    power = np.abs(librosa.stft(wave, n_fft=512, hop_length=160)) ** 2
    freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=512)
    total = power.sum() + 1e-20
    edges = np.linspace(0, 4000, 9)
    bands = [
        10 * np.log10(power[(freqs >= lo) & (freqs < hi)].sum() / total + 1e-12)
        for lo, hi in itertools.pairwise(edges)
    ]
    centroid = librosa.feature.spectral_centroid(S=power, sr=sample_rate)[0]
    rolloff = librosa.feature.spectral_rolloff(S=power, sr=sample_rate)[0]
    return np.array([*bands, centroid.mean(), centroid.std(), rolloff.mean(), rolloff.std()])


def extract_all(folder: Path) -> dict[str, Any]:
    """Metadata, waves and every feature set of the corpus in ``folder``."""
    dd, _ = real_speech.load_corpus(folder)
    ds = dd["train"]
    meta = ds.select_columns(["clip_id", "label", "attack", "speaker_id", "utterance_id"]).to_pandas()
    meta["prompt_id"] = meta["utterance_id"].str.split(":", n=1).str[1]
    waves, feats = [], {"lfcc": [], "spectral": [], "cues": [], "trivial": []}
    cue_dicts = []
    for ex in ds:
        wave, sr = load_example_native(ex)
        waves.append(wave)
        cues = real_speech_channel.measure_clip_cues(wave, sr)
        cue_dicts.append(cues)
        feats["cues"].append([cues[k] for k in real_speech_channel.CUE_NAMES])
        feats["trivial"].append(baselines.extract_trivial_features(wave, sr))
        feats["lfcc"].append(lfcc.extract_lfcc_stats(wave, sr))
        feats["spectral"].append(cheap_spectral_features(wave, sr))
    return {
        "meta": meta,
        "waves": waves,
        "cue_dicts": cue_dicts,
        **{k: np.array(v) for k, v in feats.items()},
    }


def split_masks(meta: Any, protocol: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train mask, test mask): validation joins training (no model selection here)."""
    groups = meta["prompt_id"] if protocol == "prompt" else meta["speaker_id"]
    names = assign_splits(
        groups.to_numpy(), meta["label"].to_numpy(), val_fraction=0.15, test_fraction=0.2, seed=seed
    )
    return names != "test", names == "test"


def _eer(labels: np.ndarray, scores: np.ndarray) -> float | None:
    if len(set(labels.tolist())) < 2:
        return None
    return float(compute_eer(labels, scores).eer)


def evaluate(
    data: dict[str, Any], protocol: str, seeds: list[int], *, resynthesis_only: bool = False, gmm: bool = True
) -> dict[str, Any]:
    """Mean/min/max EER over ``seeds`` per system, overall and per attack."""
    meta = data["meta"]
    keep = (
        meta["attack"].isin(["bonafide", *RESYNTHESIS_METHODS]).to_numpy()
        if resynthesis_only
        else np.ones(len(meta), bool)
    )
    y = meta["label"].to_numpy()
    attacks = sorted(a for a in meta.loc[keep, "attack"].unique() if a != "bonafide")
    systems = ["lfcc_lr", "spectral_lr", "cues_lr", "trivial_lr"] + (["lfcc_gmm"] if gmm else [])
    runs: dict[str, dict[str, list[float]]] = {s: {} for s in systems}
    loo: dict[str, list[float]] = {}
    for seed in seeds:
        train, test = split_masks(meta, protocol, seed)
        train, test = train & keep, test & keep
        if len(set(y[train])) < 2 or len(set(y[test])) < 2:
            continue
        scores = {}
        for name, key in (
            ("lfcc_lr", "lfcc"),
            ("spectral_lr", "spectral"),
            ("cues_lr", "cues"),
            ("trivial_lr", "trivial"),
        ):
            model = baselines.fit_logistic_baseline(data[key][train], y[train], seed=seed)
            scores[name] = baselines.score_baseline(model, data[key])
        if gmm:
            idx = np.flatnonzero(train)
            model = baselines.fit_lfcc_gmm(
                [data["waves"][i] for i in idx], y[idx], n_components=16, seed=seed
            )
            scores["lfcc_gmm"] = np.full(len(y), np.nan)
            tidx = np.flatnonzero(test)
            scores["lfcc_gmm"][tidx] = model.score([data["waves"][i] for i in tidx])
        for name, s in scores.items():
            runs[name].setdefault("all", []).append(_eer(y[test], s[test]))
            for attack in attacks:
                sel = test & ((meta["attack"] == attack).to_numpy() | (y == 1))
                if (sel & (y == 0)).any():
                    runs[name].setdefault(attack, []).append(_eer(y[sel], s[sel]))
        for attack in attacks:  # leave-one-method-out, LFCC + LR
            tr = train & (meta["attack"] != attack).to_numpy()
            sel = test & ((meta["attack"] == attack).to_numpy() | (y == 1))
            if (sel & (y == 0)).any():
                model = baselines.fit_logistic_baseline(data["lfcc"][tr], y[tr], seed=seed)
                loo.setdefault(attack, []).append(
                    _eer(y[sel], baselines.score_baseline(model, data["lfcc"][sel]))
                )

    def summary(values: list[float | None]) -> dict[str, Any]:
        v = [x for x in values if x is not None]
        if not v:
            return {"mean": None, "min": None, "max": None, "n_splits": 0}
        return {
            "mean": round(float(np.mean(v)), 4),
            "min": round(min(v), 4),
            "max": round(max(v), 4),
            "n_splits": len(v),
        }

    return {
        "systems": {s: {k: summary(v) for k, v in r.items()} for s, r in runs.items()},
        "lfcc_lr_left_out": {a: summary(v) for a, v in loo.items()},
    }


def print_table(title: str, result: dict[str, Any]) -> None:
    """Mean EER (%) per system and attack."""
    systems = result["systems"]
    cols = sorted({k for r in systems.values() for k in r} - {"all"})
    print(f"\n{title}\n{'system':<14}{'all':>8}" + "".join(f"{c:>13}" for c in cols))
    for name, r in systems.items():
        if "all" not in r:
            print(f"{name:<14} no split had both classes in test")
            continue
        print(
            f"{name:<14}{100 * r['all']['mean']:>7.1f}%"
            + "".join(
                f"{100 * r[c]['mean']:>12.1f}%" if r.get(c, {}).get("mean") is not None else f"{'-':>13}"
                for c in cols
            )
        )
    loo = result["lfcc_lr_left_out"]
    print(
        f"{'lfcc_lr held out':<22}"
        + "".join(
            f"{c}: {100 * loo[c]['mean']:.1f}%  " for c in cols if loo.get(c, {}).get("mean") is not None
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="the small slice the tests build")
    parser.add_argument("--out", default=None, help="corpus folder (default data/real_speech[_small])")
    parser.add_argument(
        "--skip-build", action="store_true", help="measure the baselines on an existing corpus"
    )
    parser.add_argument("--splits", type=int, default=5, help="group splits per protocol")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--results", default=None, help="JSON path (default benchmarks/results/real_speech[_small].json)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: the small slice, 2 splits; writes no results file unless --results is given",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.small, args.splits = True, min(args.splits, 2)
    out = resolve_path(args.out or ("data/real_speech_small" if args.small else "data/real_speech"))
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_start": [round(x, 2) for x in os.getloadavg()],
        }
    }
    if not args.skip_build:
        report["build"] = measure_build(args, out)
        b = report["build"]
        print(
            f"build: {b['wall_s']} s; process tree peak RSS sum {b['peak_rss_tree_mb']} MB, "
            f"PSS sum {b['peak_pss_tree_mb']} MB, largest process {b['peak_rss_one_process_mb']} MB"
        )
    t0 = time.perf_counter()
    data = extract_all(out)
    meta = data["meta"]
    report["corpus"] = {
        "folder": out.name,
        "clips": len(meta),
        "by_attack": meta["attack"].value_counts().to_dict(),
        "speakers": sorted(meta.loc[meta["label"] == 1, "speaker_id"].unique().tolist()),
    }
    report["shortcut_cues"] = real_speech_channel.shortcut_eers(meta["label"].to_numpy(), data["cue_dicts"])
    print("\nshortcut cues (EER, permutation-null 1% quantile):")
    for k, v in report["shortcut_cues"].items():
        print(f"  {k:<22} {100 * v['eer']:5.1f}%  (null q01 {100 * v['null_q01']:.1f}%)")
    seeds = list(range(args.splits))
    report["prompt_disjoint"] = evaluate(data, "prompt", seeds)
    print_table("prompt-disjoint splits (speakers shared), mean EER", report["prompt_disjoint"])
    report["speaker_disjoint"] = evaluate(data, "speaker", seeds)
    print_table("speaker-disjoint splits (as make_splits), mean EER", report["speaker_disjoint"])
    report["resynthesis_only_prompt_disjoint"] = evaluate(data, "prompt", seeds, resynthesis_only=True)
    print_table(
        "re-synthesis attacks only (same speaker, same words), prompt-disjoint",
        report["resynthesis_only_prompt_disjoint"],
    )
    report["baselines_wall_s"] = round(time.perf_counter() - t0, 1)
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
