"""Benchmark: audio decoding + resampling throughput, and the cost of training augmentation.

Measured side by side in one run (interleaved, median of several repeats):

* clips/s decoding Hemg-sized WAV clips (10 s, 44.1 kHz, 16-bit, made in code) and
  resampling them to 16 kHz

  - ``cached``: ``deepfake_lib.audio.io.load_audio`` (one cached Resample kernel per rate pair);
  - ``new_per_clip``: decode the same way, but build a new ``torchaudio.transforms.Resample``
    for every clip with the same kernel (isolates the cost of rebuilding);
  - ``study``: a new ``Resample`` per clip with torchaudio's default kernel, as the original
    Colab study did;

* ms per call of the default :class:`deepfake_lib.audio.augmentation.Augmenter` on 3 s and 4 s clips at
  16 kHz, and of each primitive on a 3 s clip.

A short matmul probe brackets the timed sections (the hosts are shared and can slow down).

Usage: ``python benchmarks/bench_audio.py [--quick] [--threads 2] [--out PATH]``. Prints a
table and writes JSON to ``benchmarks/results/audio.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio
from gauges import matmul_probe_gflops, results_path

from deepfake_lib.audio import augmentation as augment
from deepfake_lib.audio import io as audio
from deepfake_lib.audio import signal as audio_signal

CLIP_SECONDS = 10.0
CLIP_RATE = 44_100
TARGET_RATE = 16_000


def make_clip_bytes(n_clips: int, seed: int = 0) -> list[bytes]:
    """WAV PCM_16 bytes of speech-like 10 s clips at 44.1 kHz (harmonic voice, AM, noise)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(CLIP_SECONDS * CLIP_RATE)) / CLIP_RATE
    clips = []
    for _ in range(n_clips):
        f0 = rng.uniform(90, 220) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.2, 0.8) * t))
        phase = 2 * np.pi * np.cumsum(f0) / CLIP_RATE
        voice = sum(np.sin(k * phase) / k for k in range(1, 20))
        env = 0.5 * (1 - np.cos(2 * np.pi * rng.uniform(2.5, 5.0) * t))
        wave = voice * env + 0.02 * rng.standard_normal(t.size)
        wave = 0.6 * wave / np.max(np.abs(wave))
        buf = io.BytesIO()
        sf.write(buf, wave.astype(np.float32), CLIP_RATE, format="WAV", subtype="PCM_16")
        clips.append(buf.getvalue())
    return clips


def run_cached(clips: list[bytes]) -> None:
    for data in clips:
        audio.load_audio(data, target_sr=TARGET_RATE)


def _run_new_per_clip(clips: list[bytes], **kernel) -> None:
    for data in clips:
        wave, rate = audio.decode_audio(data)
        resampler = torchaudio.transforms.Resample(rate, TARGET_RATE, **kernel)
        with torch.inference_mode():
            resampler(torch.from_numpy(wave)).numpy()


def run_new_same_kernel(clips: list[bytes]) -> None:
    _run_new_per_clip(clips, **audio_signal.RESAMPLE_PARAMS)


def run_study(clips: list[bytes]) -> None:
    _run_new_per_clip(clips)


def run_decode_only(clips: list[bytes]) -> None:
    for data in clips:
        audio.decode_audio(data)


def bench_loading(clips: list[bytes], repeats: int) -> dict[str, dict[str, float]]:
    """Clips/s per method; methods interleaved in a rotating order within each repeat."""
    methods = {
        "cached": run_cached,
        "new_per_clip": run_new_same_kernel,
        "study": run_study,
        "decode_only": run_decode_only,
    }
    for fn in methods.values():  # warm-up: imports, kernel cache, allocator
        fn(clips[:1])
    times: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            start = time.perf_counter()
            methods[name](clips)
            times[name].append(time.perf_counter() - start)
    out = {}
    for name, ts in times.items():
        per_clip = [t / len(clips) for t in ts]
        out[name] = {
            "clips_per_s": 1.0 / statistics.median(per_clip),
            "ms_per_clip": 1e3 * statistics.median(per_clip),
            "ms_per_clip_min": 1e3 * min(per_clip),
        }
    return out


def bench_augmenter(seconds: float, n_calls: int, repeats: int) -> dict[str, float]:
    """ms per call of the default Augmenter on ``seconds``-long 16 kHz clips."""
    rng = np.random.default_rng(1)
    n = int(seconds * TARGET_RATE)
    t = np.arange(n) / TARGET_RATE
    clips = [
        (
            0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t) * (1 + np.sin(2 * np.pi * 4 * t))
            + 0.01 * rng.standard_normal(n)
        ).astype(np.float32)
        for _ in range(8)
    ]
    aug = augment.Augmenter(sample_rate=TARGET_RATE, seed=0)
    for clip in clips:
        aug(clip)
    per_call = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(n_calls):
            aug(clips[i % len(clips)])
        per_call.append((time.perf_counter() - start) / n_calls)
    return {
        "ms_per_call": 1e3 * statistics.median(per_call),
        "ms_per_call_min": 1e3 * min(per_call),
        "calls_per_s": 1.0 / statistics.median(per_call),
    }


def bench_primitives(n_calls: int) -> dict[str, float]:
    """Median ms per call of each primitive on one 3 s, 16 kHz clip."""
    rng = np.random.default_rng(2)
    n = 3 * TARGET_RATE
    t = np.arange(n) / TARGET_RATE
    x = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    calls = {
        "noise white": lambda: augment.add_noise(x, 15, rng, kind="white"),
        "noise pink": lambda: augment.add_noise(x, 15, rng, kind="pink"),
        "noise speech_shaped": lambda: augment.add_noise(x, 15, rng, kind="speech_shaped"),
        "noise babble": lambda: augment.add_noise(x, 15, rng, kind="babble"),
        "shift": lambda: augment.shift_time(x, 4000),
        "gain": lambda: augment.apply_gain(x, 3.0),
        "band_limit": lambda: augment.band_limit(x, TARGET_RATE),
        "telephone": lambda: augment.simulate_telephone(x, TARGET_RATE),
        "mu_law": lambda: augment.apply_mu_law(x),
        "reverb rt60 0.5 s": lambda: augment.add_reverb(x, TARGET_RATE, 0.5, rng),
    }
    for codec in augment.available_codecs():
        calls[f"codec {codec}"] = lambda c=codec: augment.roundtrip_codec(x, TARGET_RATE, c)
    out = {}
    for name, fn in calls.items():
        fn()
        ts = []
        for _ in range(n_calls):
            start = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - start)
        out[name] = 1e3 * statistics.median(ts)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few clips and repeats (smoke test)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON output path",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    n_clips, repeats, aug_calls, aug_repeats, prim_calls = (
        (2, 3, 10, 3, 3) if args.quick else (8, 7, 50, 5, 15)
    )
    clips = make_clip_bytes(n_clips)
    probe_before = matmul_probe_gflops(size=512)
    loading = bench_loading(clips, repeats)
    augmenter = {f"{s:g}s": bench_augmenter(s, aug_calls, aug_repeats) for s in (3.0, 4.0)}
    primitives = bench_primitives(prim_calls)
    probe_after = matmul_probe_gflops(size=512)

    ratios = {
        "cached_vs_new_per_clip": loading["cached"]["clips_per_s"] / loading["new_per_clip"]["clips_per_s"],
        "cached_vs_study": loading["cached"]["clips_per_s"] / loading["study"]["clips_per_s"],
    }
    result = {
        "config": {
            "quick": args.quick,
            "torch_threads": torch.get_num_threads(),
            "clip_seconds": CLIP_SECONDS,
            "clip_rate_hz": CLIP_RATE,
            "target_rate_hz": TARGET_RATE,
            "n_clips": n_clips,
            "repeats": repeats,
            "resample_params": audio_signal.RESAMPLE_PARAMS,
        },
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchaudio": torchaudio.__version__,
            "numpy": np.__version__,
            "soundfile": sf.__version__,
            "libsndfile": sf.__libsndfile_version__,
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "supported_formats": audio.supported_formats(),
        },
        "matmul_probe_gflops": {"before": probe_before, "after": probe_after},
        "loading": loading,
        "ratios": ratios,
        "augmenter": augmenter,
        "primitives_ms_3s": primitives,
    }

    print(
        f"matmul probe: {probe_before:.0f} GFLOP/s before, {probe_after:.0f} after "
        f"(torch threads {torch.get_num_threads()})"
    )
    print(
        f"\nDecode + resample, {CLIP_SECONDS:g} s WAV clips at {CLIP_RATE} Hz -> {TARGET_RATE} Hz "
        f"({n_clips} clips x {repeats} repeats, median)"
    )
    print(f"{'method':<34}{'clips/s':>10}{'ms/clip':>10}")
    labels = {
        "cached": "load_audio (cached kernel)",
        "new_per_clip": "new Resample per clip (same kernel)",
        "study": "new Resample per clip (default, study)",
        "decode_only": "decode only (no resampling)",
    }
    for name, row in loading.items():
        print(f"{labels[name]:<34}{row['clips_per_s']:>10.1f}{row['ms_per_clip']:>10.2f}")
    print(f"ratio cached / new-per-clip (same kernel): {ratios['cached_vs_new_per_clip']:.2f}x")
    print(f"ratio cached / study (default kernel):     {ratios['cached_vs_study']:.2f}x")
    print("\nDefault Augmenter, 16 kHz")
    print(f"{'clip':<10}{'ms/call':>10}{'calls/s':>10}")
    for name, row in augmenter.items():
        print(f"{name:<10}{row['ms_per_call']:>10.2f}{row['calls_per_s']:>10.0f}")
    print("\nPrimitives on a 3 s clip (median ms)")
    for name, ms in primitives.items():
        print(f"  {name:<24}{ms:>8.2f}")

    out = results_path("audio", args.out, args.quick)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {out}")
    return result


if __name__ == "__main__":
    main()
