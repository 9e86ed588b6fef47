"""The benchmark scripts stay runnable: each one imports and parses its arguments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("bench_*.py"))


def test_every_benchmark_is_found():
    assert {p.stem for p in SCRIPTS} >= {"bench_audio", "bench_corpus", "bench_latency", "bench_service", "bench_training"}


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_benchmark_script_imports_and_shows_usage(script: Path) -> None:
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout and "--quick" in done.stdout
