"""Benchmark: inference latency per 4 s clip, real-time factor, parity and memory of every
deployment variant, side by side in one run, on this CPU with 2 threads.

Models: ``tiny`` (the offline default, random weights, or the trained model of ``--run-dir``)
and ``base`` (the wav2vec2-base architecture, ``Wav2Vec2Config()`` defaults with a 2-class
head and random weights, which cost the same as trained ones).

Variants:

* ``fp32``: PyTorch eager;
* ``int8 torch.ao``: :func:`deepfake_lib.backends.quantize_int8` (the default; deprecated tool);
* ``int8 torchao``: torchao ``Int8DynamicActivationInt8WeightConfig``, eager;
* ``int8 torchao+compile``: the same under ``torch.compile`` (full runs only; compile time
  reported separately);
* ``bf16 autocast``: fp32 weights, CPU autocast to bfloat16 (for reference);
* ``onnx fp32`` and ``onnx int8``: ONNX Runtime, 2 intra-op threads, int8 on MatMul/Gemm only.

For each: median latency at batch 1 and batch 8 (ms per clip), real-time factor (processing
time / audio time), parity against fp32 (max |logit difference|, label agreement at the
threshold; the test split of ``--run-dir`` when given, else synthetic clips), and memory
(peak RSS of the process sampled every 5 ms while the variant runs, and its rise over the
RSS before the variant was built; the table shows the rise, which covers the variant's
weights and its batch-8 activations). A 0.3 s fp32 matmul probe brackets every timed section; the probe rate
gives the fp32 floor of wav2vec2-base (57 GFLOP per 4 s clip / GFLOP/s), and the table says
whether each int8 variant meets ``latency <= 0.8 x floor`` and ``latency <= 0.8 x fp32``.

Usage: ``python benchmarks/bench_latency.py [--quick] [--run-dir runs/demo] [--repeats N]
[--models tiny,base] [--no-compile]``. Prints a table and writes
``benchmarks/results/latency.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import contextlib
import copy
import gc
import json
import os
import platform
import statistics
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import psutil
import torch

from deepfake_lib import LABEL_NAMES, TARGET_SAMPLE_RATE
from deepfake_lib.backends import OnnxClassifier, TorchClassifier, quantize_int8
from deepfake_lib.export import (
    check_parity,
    export_onnx,
    load_run_test_waves,
    make_parity_waves,
    quantize_onnx_int8,
)
from gauges import matmul_probe_gflops, results_path

CLIP_S = 4.0
BASE_GFLOP_PER_CLIP = 57.0  # wav2vec2-base, one 4 s clip (conv 19.6, linear 34.0, pos conv 1.9, attn 1.5)
THREADS = 2
BASE_PARITY_CLIPS = 16  # wav2vec2-base is ~100x the tiny model's cost: parity on the first 16 clips


# ------------------------------------------------------------------------------ gauges
class RssSampler:
    """Peak resident memory (MB) of this process, sampled every ``interval`` seconds."""

    def __init__(self, interval: float = 0.005) -> None:
        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self.peak = self.proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


# ------------------------------------------------------------------------------ models
def build_base() -> Any:
    """wav2vec2-base architecture with a Fake/Real head, random weights, and its feature extractor."""
    from transformers import AutoModelForAudioClassification, Wav2Vec2Config, Wav2Vec2FeatureExtractor

    torch.manual_seed(0)
    cfg = Wav2Vec2Config(
        num_labels=2,
        id2label=dict(enumerate(LABEL_NAMES)),
        label2id={n: i for i, n in enumerate(LABEL_NAMES)},
    )
    model = AutoModelForAudioClassification.from_config(cfg).eval()
    return model, Wav2Vec2FeatureExtractor()  # wav2vec2-base: group norm, no attention mask


def build_tiny(run_dir: str | None) -> tuple[Any, Any, float, str]:
    from deepfake_lib.infer import locate_model
    from deepfake_lib.models import build_tiny_model, load_model

    if run_dir:
        loc = locate_model(run_dir)
        loaded = load_model(loc.model_source, freeze_feature_encoder=False)
        return loaded.model.eval(), loaded.feature_extractor, loc.threshold, f"trained model of {run_dir}"
    loaded = build_tiny_model(seed=0)
    return loaded.model.eval(), loaded.feature_extractor, 0.0, "random weights"


class Autocast:
    """fp32 model called under CPU bf16 autocast, behind the Classifier call."""

    def __init__(self, model: Any, accepts_attention_mask: bool) -> None:
        self.inner = TorchClassifier(model, accepts_attention_mask=accepts_attention_mask)
        self.accepts_attention_mask = accepts_attention_mask

    def __call__(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.inner(x, mask)


def torchao_int8(model: Any) -> Any:
    return quantize_int8(model, method="torchao")


# ------------------------------------------------------------------------------ timing
def time_batches(
    fn: Callable[[np.ndarray], np.ndarray], batch: np.ndarray, repeats: int, warmup: int
) -> list[float]:
    for _ in range(warmup):
        fn(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(batch)
        times.append(time.perf_counter() - start)
    return times


def wave_fn(classifier: Any, fe: Any) -> Callable[[np.ndarray], np.ndarray]:
    def fn(wave: np.ndarray) -> np.ndarray:
        mask_wanted = bool(getattr(fe, "return_attention_mask", False)) and classifier.accepts_attention_mask
        feats = fe(
            [wave], sampling_rate=TARGET_SAMPLE_RATE, return_tensors="np", return_attention_mask=mask_wanted
        )
        mask = np.asarray(feats["attention_mask"], dtype=np.int64) if mask_wanted else None
        return classifier(np.asarray(feats["input_values"], dtype=np.float32), mask)[0]

    return fn


def bench_model(
    name: str,
    model: Any,
    fe: Any,
    threshold: float,
    waves: list[np.ndarray],
    args: argparse.Namespace,
    workdir: Path,
) -> dict[str, Any]:
    uses_mask = bool(getattr(fe, "return_attention_mask", False))
    rng = np.random.default_rng(0)
    clips = [w for w in waves if len(w) >= CLIP_S * TARGET_SAMPLE_RATE] or waves
    pool = [clips[i % len(clips)] for i in range(8)]
    batch8 = np.stack([np.resize(w, int(CLIP_S * TARGET_SAMPLE_RATE)) for w in pool]).astype(np.float32)
    batch8 = (batch8 - batch8.mean(1, keepdims=True)) / (batch8.std(1, keepdims=True) + 1e-7)
    batch1 = batch8[:1]
    masks = {1: np.ones(batch1.shape, np.int64), 8: np.ones(batch8.shape, np.int64)}
    reps1, reps8 = (
        (args.repeats, max(2, args.repeats // 3)) if name == "base" else (args.repeats * 4, args.repeats)
    )
    ref_fn = wave_fn(TorchClassifier(model, accepts_attention_mask=uses_mask), fe)
    ref_logits = {id(w): ref_fn(w) for w in waves}  # fp32 reference, computed once for all variants

    def reference(wave: np.ndarray) -> np.ndarray:
        return ref_logits[id(wave)]

    builders: list[tuple[str, Callable[[], tuple[Any, dict[str, Any]]]]] = []

    def torch_variant(make: Callable[[], Any]) -> Callable[[], tuple[Any, dict[str, Any]]]:
        def build() -> tuple[Any, dict[str, Any]]:
            start = time.perf_counter()
            m = make()
            return TorchClassifier(m, accepts_attention_mask=uses_mask), {
                "build_s": time.perf_counter() - start
            }

        return build

    builders.append(("fp32", torch_variant(lambda: model)))
    builders.append(("int8 torch.ao", torch_variant(lambda: quantize_int8(model, method="torch.ao"))))
    has_torchao = importlib.util.find_spec("torchao") is not None
    if has_torchao:  # optional: `pip install torchao` to measure it side by side
        builders.append(("int8 torchao", torch_variant(lambda: torchao_int8(model))))
    else:
        print(
            "torchao is not installed: skipping the torchao int8 variants (pip install torchao to include them)"
        )
    if args.compile and has_torchao:

        def build_compiled() -> tuple[Any, dict[str, Any]]:
            start = time.perf_counter()
            compiled = torch.compile(torchao_int8(model))
            clf = TorchClassifier(compiled, accepts_attention_mask=uses_mask)
            for b in (batch1, batch8):  # compile for both shapes before timing
                clf(b, masks[len(b)])
            return clf, {
                "build_s": time.perf_counter() - start,
                "note": "build_s includes torch.compile for 2 shapes",
            }

        builders.append(("int8 torchao+compile", build_compiled))
    builders.append(("bf16 autocast", lambda: (Autocast(model, uses_mask), {"build_s": 0.0})))

    onnx_path, onnx_int8_path = workdir / f"{name}.onnx", workdir / f"{name}.int8.onnx"

    def build_onnx() -> tuple[Any, dict[str, Any]]:
        start = time.perf_counter()
        export_onnx(copy.deepcopy(model), onnx_path, with_attention_mask=uses_mask)
        return OnnxClassifier(onnx_path, threads=THREADS), {"build_s": time.perf_counter() - start}

    def build_onnx_int8() -> tuple[Any, dict[str, Any]]:
        start = time.perf_counter()
        quantize_onnx_int8(onnx_path, onnx_int8_path)
        return OnnxClassifier(onnx_int8_path, threads=THREADS), {"build_s": time.perf_counter() - start}

    builders += [("onnx fp32", build_onnx), ("onnx int8", build_onnx_int8)]

    results: dict[str, Any] = {}
    for label, build in builders:
        gc.collect()
        rss_before = rss_mb()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            classifier, info = build()
        probes = [matmul_probe_gflops()]
        with RssSampler() as sampler:
            fn = lambda b, c=classifier: c(b, masks[len(b)] if c.accepts_attention_mask else None)
            t1 = time_batches(fn, batch1, reps1, warmup=1 if name == "base" else 3)
            probes.append(matmul_probe_gflops())
            t8 = time_batches(fn, batch8, reps8, warmup=1)
            probes.append(matmul_probe_gflops())
            parity = check_parity(reference, wave_fn(classifier, fe), waves, threshold=threshold)
        ms1 = statistics.median(t1) * 1000
        ms8 = statistics.median(t8) * 1000 / len(batch8)
        results[label] = {
            "batch1_ms_per_clip": ms1,
            "batch8_ms_per_clip": ms8,
            "rtf_batch1": ms1 / 1000 / CLIP_S,
            "rtf_batch8": ms8 / 1000 / CLIP_S,
            "batch1_times_ms": [round(t * 1000, 2) for t in t1],
            "batch8_times_ms": [round(t * 1000, 2) for t in t8],
            "probe_gflops": [round(p, 1) for p in probes],
            "peak_rss_mb": sampler.peak_mb,
            "rss_rise_mb": sampler.peak_mb - rss_before,
            "parity": parity,
            **info,
        }
        print(
            f"  {name:<5} {label:<22} b1 {ms1:8.1f} ms  b8 {ms8:8.1f} ms/clip  "
            f"max|dlogit| {parity['max_abs_logit_diff']:.1e}  agree {parity['label_agreement']:.0%}  "
            f"probe {statistics.mean(probes):.0f} GF/s",
            flush=True,
        )
        del classifier
    fp32 = results["fp32"]
    for label, r in results.items():
        r["vs_fp32_batch1"] = r["batch1_ms_per_clip"] / fp32["batch1_ms_per_clip"]
        r["vs_fp32_batch8"] = r["batch8_ms_per_clip"] / fp32["batch8_ms_per_clip"]
        if label.startswith(("int8", "onnx int8")):
            r["meets_0.8x_fp32"] = bool(r["vs_fp32_batch1"] <= 0.8 and r["parity"]["label_agreement"] == 1.0)
        if name == "base":
            floor_ms = BASE_GFLOP_PER_CLIP / statistics.mean(r["probe_gflops"]) * 1000
            r["fp32_floor_ms"] = floor_ms
            if label.startswith(("int8", "onnx int8")):
                r["meets_0.8x_floor"] = bool(r["batch1_ms_per_clip"] <= 0.8 * floor_ms)
    return results


def print_table(all_results: dict[str, Any]) -> None:
    print()
    head = (
        f"{'model':<5} {'variant':<22} {'b1 ms':>8} {'b8 ms/clip':>10} {'RTF b1':>7} {'x fp32':>7} "
        f"{'max|dlogit|':>11} {'agree':>6} {'RSS rise':>9} {'floor ms':>9} {'<=.8fp32':>8} {'<=.8floor':>9}"
    )
    print(head)
    print("-" * len(head))
    for model_name, res in all_results.items():
        for label, r in res.items():
            floor = f"{r['fp32_floor_ms']:9.0f}" if "fp32_floor_ms" in r else f"{'':>9}"
            m1 = {True: "yes", False: "no"}.get(r.get("meets_0.8x_fp32"), "")
            m2 = {True: "yes", False: "no"}.get(r.get("meets_0.8x_floor"), "")
            print(
                f"{model_name:<5} {label:<22} {r['batch1_ms_per_clip']:8.1f} {r['batch8_ms_per_clip']:10.1f} "
                f"{r['rtf_batch1']:7.3f} {r['vs_fp32_batch1']:7.2f} {r['parity']['max_abs_logit_diff']:11.1e} "
                f"{r['parity']['label_agreement']:6.0%} {r['rss_rise_mb']:8.0f}M {floor} {m1:>8} {m2:>9}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: tiny model only, few repeats")
    parser.add_argument("--run-dir", help="trained run: its test split for parity, its model as 'tiny'")
    parser.add_argument(
        "--models", default=None, help="comma list of tiny,base (default both; tiny with --quick)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed repeats at batch 1 for base (default 7)"
    )
    parser.add_argument(
        "--parity-clips",
        type=int,
        default=1000,
        help="with --run-dir: test clips for parity (default all; base uses at most 16)",
    )
    parser.add_argument(
        "--no-compile", dest="compile", action="store_false", help="skip torchao + torch.compile"
    )
    parser.add_argument(
        "--out", default=None, help="results JSON (default results/latency.json; --quick: none)"
    )
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    models = (args.models or ("tiny" if args.quick else "tiny,base")).split(",")
    args.repeats = args.repeats or (2 if args.quick else 7)
    if args.quick:
        args.compile = False
    started = time.perf_counter()
    if args.run_dir:
        waves = load_run_test_waves(args.run_dir, max_clips=args.parity_clips if not args.quick else 4)
        wave_source = f"test split of {args.run_dir}"
    else:
        waves, wave_source = (
            make_parity_waves(8 if not args.quick else 3),
            "synthetic clips (deepfake_lib.synthetic)",
        )
    print(
        f"parity clips: {len(waves)} ({wave_source}); threads {THREADS}; probe {matmul_probe_gflops():.0f} GFLOP/s"
    )
    all_results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench_latency_") as tmp:
        for name in models:
            if name == "tiny":
                model, fe, threshold, desc = build_tiny(args.run_dir)
            elif name == "base":
                model, fe = build_base()
                threshold, desc = 0.0, "wav2vec2-base architecture, random weights"
            else:
                raise SystemExit(f"unknown model {name!r}")
            print(f"{name}: {desc}, {sum(p.numel() for p in model.parameters()):,} parameters", flush=True)
            model_waves = waves if name == "tiny" else waves[:BASE_PARITY_CLIPS]
            all_results[name] = bench_model(name, model, fe, threshold, model_waves, args, Path(tmp))
            del model
            gc.collect()
    report = {
        "benchmark": "latency",
        "clip_s": CLIP_S,
        "threads": THREADS,
        "quick": bool(args.quick),
        "parity_clips": {
            "n": len(waves),
            "n_base": min(len(waves), BASE_PARITY_CLIPS),
            "source": wave_source,
        },
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        },
        "base_gflop_per_clip": BASE_GFLOP_PER_CLIP,
        "int8_default": "torch.ao (deepfake_lib.export.INT8_METHOD)",
        "models": all_results,
        "wall_s": time.perf_counter() - started,
    }
    out = results_path("latency", args.out, args.quick)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps(report, indent=2) + "\n"
        )  # saved before printing: a table bug loses nothing
    print_table(all_results)
    print(
        f"\nsaved {out} ({report['wall_s']:.0f} s)"
        if out is not None
        else f"\n({report['wall_s']:.0f} s; quick run, not saved)"
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
