"""Benchmark: generating and writing the embedded corpus.

Figures, measured in one run:

* total seconds and clips/s of :func:`deepfake_lib.corpora.embedded.write_corpus` for the default
  corpus (300 utterances x (1 bona fide + 1 spoof) = 600 clips), and the parquet size;
* peak memory: the growth of the process's peak RSS during the write, and the peak of
  Python-level allocations (``tracemalloc``) during a second, untimed generation of a tenth
  of the corpus (tracemalloc slows the code down, so it is kept out of the timed run);
* a per-stage breakdown in ms per clip (bona fide synthesis, each attack, the channel, WAV
  encoding) over the first utterances, timing the public functions one by one.

A short matmul probe brackets the timed section (the hosts are shared and can slow down;
compare figures only with a similar probe).

Usage: ``python benchmarks/bench_corpus.py [--quick] [--out PATH]``. ``--quick`` uses 40
utterances. Prints a table and writes JSON to ``benchmarks/results/corpus.json``
(``--quick`` writes only to ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from gauges import matmul_probe_gflops, peak_rss_mb, results_path

from deepfake_lib.audio.io import encode_audio
from deepfake_lib.corpora import embedded as synthetic


def time_write(config: synthetic.CorpusConfig) -> dict[str, float]:
    """Seconds, clips/s, file size and peak-RSS growth of one ``write_corpus`` call."""
    n_clips = config.n_utterances * (1 + config.spoofs_per_utterance)
    with tempfile.TemporaryDirectory() as folder:
        rss_before = peak_rss_mb()
        start = time.perf_counter()
        path = synthetic.write_corpus(Path(folder) / synthetic.corpus_filename(config), config)
        seconds = time.perf_counter() - start
        size_mb = path.stat().st_size / 1e6
    return {
        "n_clips": n_clips,
        "seconds": seconds,
        "clips_per_s": n_clips / seconds,
        "file_mb": size_mb,
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_growth_mb": peak_rss_mb() - rss_before,
    }


def python_peak_mb(config: synthetic.CorpusConfig) -> float:
    """Peak Python-level allocation (MB) while generating ``config`` as a table."""
    tracemalloc.start()
    synthetic.generate_corpus(config)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def stage_breakdown(n_utterances: int, difficulty: float) -> dict[str, dict[str, float]]:
    """Median ms per clip of each stage over the first ``n_utterances`` (all attacks each)."""
    times: dict[str, list[float]] = defaultdict(list)
    config = synthetic.CorpusConfig(n_utterances=n_utterances, difficulty=difficulty)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as generate_utterance does
    for i in range(n_utterances):
        rng = np.random.default_rng([config.seed, i])
        sr = synthetic.SAMPLE_RATES[i % len(synthetic.SAMPLE_RATES)]
        duration = rng.uniform(config.min_duration_s, config.max_duration_s)
        start = time.perf_counter()
        clean = synthetic.synthesize_bonafide(rng, sr, duration)
        times["synthesize_bonafide"].append(time.perf_counter() - start)
        for attack in synthetic.ATTACKS:
            start = time.perf_counter()
            synthetic.spoof_utterance(clean, sr, attack, difficulty, rng)
            times[f"spoof {attack}"].append(time.perf_counter() - start)
        start = time.perf_counter()
        wave = synthetic.apply_channel(clean, sr, rng)
        times["apply_channel"].append(time.perf_counter() - start)
        start = time.perf_counter()
        encode_audio(wave, sr, "WAV", "PCM_16")
        times["encode WAV"].append(time.perf_counter() - start)
    torch.set_num_threads(threads)
    return {
        k: {"ms_median": 1e3 * float(np.median(v)), "ms_max": 1e3 * float(np.max(v))}
        for k, v in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 utterances instead of 300")
    parser.add_argument("--out", type=Path, default=None, help="JSON output path")
    args = parser.parse_args()

    config = synthetic.CorpusConfig(n_utterances=40) if args.quick else synthetic.CorpusConfig()
    out = results_path("corpus", args.out, args.quick)
    synthetic.generate_utterance(config, 0)  # warm up caches (filters, resampling kernels)

    probe_before = matmul_probe_gflops(seconds=0.5, size=512)
    write = time_write(config)
    probe_after = matmul_probe_gflops(seconds=0.5, size=512)
    py_peak = python_peak_mb(synthetic.CorpusConfig(n_utterances=max(4, config.n_utterances // 10)))
    stages = stage_breakdown(6 if args.quick else 12, config.difficulty)

    result = {
        "config": {
            k: getattr(config, k)
            for k in (
                "n_utterances",
                "spoofs_per_utterance",
                "difficulty",
                "seed",
                "min_duration_s",
                "max_duration_s",
            )
        },
        "generator_version": synthetic.GENERATOR_VERSION,
        "write": write,
        "python_peak_mb_tenth_of_corpus": py_peak,
        "stages_ms_per_clip": stages,
        "matmul_gflops_before_after": [probe_before, probe_after],
        "host": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "machine": platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        },
    }

    print(
        f"embedded corpus: {write['n_clips']} clips (n_utterances={config.n_utterances}, "
        f"difficulty={config.difficulty}), generator v{synthetic.GENERATOR_VERSION}"
    )
    print(f"{'figure':<34} {'value':>12}")
    for name, value, unit in [
        ("generate + write", write["seconds"], "s"),
        ("throughput", write["clips_per_s"], "clips/s"),
        ("parquet size", write["file_mb"], "MB"),
        ("peak RSS (process)", write["peak_rss_mb"], "MB"),
        ("peak RSS growth during write", write["peak_rss_growth_mb"], "MB"),
        ("Python peak, 1/10 of the corpus", py_peak, "MB"),
        ("matmul probe before / after", probe_before, "GFLOP/s"),
        ("", probe_after, "GFLOP/s"),
    ]:
        print(f"{name:<34} {value:>12.1f} {unit}")
    print(f"\n{'stage (ms per clip)':<34} {'median':>12} {'max':>8}")
    for name, figs in stages.items():
        print(f"{name:<34} {figs['ms_median']:>12.1f} {figs['ms_max']:>8.1f}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nsaved {out}")


if __name__ == "__main__":
    main()
