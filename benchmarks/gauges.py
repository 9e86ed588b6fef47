"""Gauges shared by the benchmark scripts: host speed, memory, and where results go.

The hosts are shared and their speed drifts, so every benchmark brackets its timed sections
with :func:`matmul_probe_gflops`; memory is the process's peak resident set
(:func:`deepfake_lib.torch_settings.peak_rss_mb`, the figure training runs report too).
:func:`results_path` decides where a run's JSON goes: full runs write
``benchmarks/results/<name>.json``; ``--quick`` smoke runs write nothing unless ``--out``
names a file, so a smoke run never replaces a measured result.

Imported by the scripts in this folder as ``from gauges import ...`` (Python puts a script's
own folder first on ``sys.path``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from deepfake_lib.torch_settings import peak_rss_mb

__all__ = ["RESULTS_DIR", "matmul_probe_gflops", "peak_rss_mb", "results_path"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
"""Where full benchmark runs save their JSON (rendered into the README by ``report.py``)."""


def matmul_probe_gflops(seconds: float = 0.3, size: int = 1024) -> float:
    """fp32 ``size x size`` matmul rate (GFLOP/s) over about ``seconds`` s: how fast the
    shared host runs right now (one warm-up product first)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * size**3 * n / (time.perf_counter() - start) / 1e9


def results_path(name: str, out: str | os.PathLike[str] | None, quick: bool) -> Path | None:
    """The JSON file a benchmark writes: ``out`` when given, else ``RESULTS_DIR/<name>.json``
    for a full run and ``None`` (write nothing) for a ``--quick`` smoke run."""
    if out is not None:
        return Path(out)
    return None if quick else RESULTS_DIR / f"{name}.json"
