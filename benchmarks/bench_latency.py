"""Benchmark: inference latency per 4 s clip, real-time factor, parity and memory of every
deployment variant, side by side in one run, on this CPU with 2 threads.

Models: ``tiny`` (the offline default, random weights, or the trained model of ``--run-dir``),
``base`` (the wav2vec2-base architecture, ``Wav2Vec2Config()`` defaults with a 2-class head and
random weights, which cost the same as trained ones) and first-layers versions of it,
``base-6L``, ``base-4L``, ``base-2L`` (the first N of its 12 transformer layers, as
``load_model(keep_layers=N)`` builds them; ``--layers``).

Variants:

* ``fp32``: PyTorch eager;
* ``int8 torch.ao``: :func:`deepfake_lib.classifier.quantize_int8` (dynamic int8 Linear layers; the
  deprecated quantised-tensor kernels, see the README's "Fast CPU inference");
* ``int8 torchao`` (and ``+compile``, full runs only): when torchao is installed;
* ``bf16 autocast``: fp32 weights, CPU autocast to bfloat16 for the whole model;
* ``mixed``: :class:`deepfake_lib.deploy.cpu_runtime.MixedCpuClassifier` (bf16 convolutions where the
  CPU has native bf16, int8 transformer Linear layers, fp32 head);
* ``onnx fp32`` and ``onnx int8``: ONNX Runtime, 2 intra-op threads, int8 on MatMul/Gemm only
  (``tiny`` and ``base`` only: the export takes minutes on a shared host).

The variants of one model are built first and then timed in interleaved rounds (each round
times every variant once), so a host whose speed drifts slows them alike and the ratios to fp32
stay comparable. For each: median latency at batch 1 and batch 8 (ms per clip), real-time factor
(processing time / audio time), the ratio to fp32 of the same run, parity against fp32 (max
|logit difference|, label agreement at the threshold; the test split of ``--run-dir`` when given,
else synthetic clips) and the parity gate of :func:`deepfake_lib.deploy.cpu_runtime.check_gate`, and
memory (the largest RSS after a timed call of the variant, and its rise over the RSS before
it was built). A 0.3 s
fp32 matmul probe brackets every round; ``probe_normalised_ms`` rescales batch-1 latency to a
host at :data:`NOMINAL_PROBE_GFLOPS` (the unloaded 2-core machines), an estimate for loaded hosts.
The JSON also records which backend each command uses by default (``defaults``).

Usage: ``python benchmarks/bench_latency.py [--quick] [--run-dir runs/demo] [--repeats N]
[--models tiny,base] [--layers 6,4,2] [--no-compile]``. Prints a table and writes
``benchmarks/results/latency.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import importlib.util
import inspect
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch
from gauges import matmul_probe_gflops, results_path

from deepfake_lib import LABEL_NAMES, TARGET_SAMPLE_RATE
from deepfake_lib.classifier import OnnxClassifier, TorchClassifier, quantize_int8
from deepfake_lib.deploy.cpu_runtime import MixedCpuClassifier, check_gate, detect_bf16_support
from deepfake_lib.deploy.export import (
    check_parity,
    export_onnx,
    load_run_test_waves,
    make_parity_waves,
    quantize_onnx_int8,
)

CLIP_S = 4.0
BASE_GFLOP_PER_CLIP = 57.0  # wav2vec2-base, one 4 s clip (conv 19.6, linear 34.0, pos conv 1.9, attn 1.5)
THREADS = 2
BASE_PARITY_CLIPS = 6  # wav2vec2-base is ~100x the tiny model's cost: parity on the first 6 clips
NOMINAL_PROBE_GFLOPS = 190.0  # fp32 matmul probe of an unloaded 2-core CI machine (AVX512)
TARGET_DEFAULT_VS_FP32 = 0.40  # the default path for wav2vec2-base, as a ratio to fp32 in one run
TARGET_FIRST_LAYERS_MS = 100.0  # a first-layers wav2vec2-class model per 4 s clip on 2 cores


# ------------------------------------------------------------------------------ gauges
def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


# ------------------------------------------------------------------------------ models
def build_base(n_layers: int = 12) -> tuple[Any, Any]:
    """wav2vec2-base architecture (its first ``n_layers`` transformer layers) with a Fake/Real
    head, random weights, and its feature extractor."""
    from transformers import AutoModelForAudioClassification, Wav2Vec2Config, Wav2Vec2FeatureExtractor

    torch.manual_seed(0)
    cfg = Wav2Vec2Config(
        num_labels=2,
        id2label=dict(enumerate(LABEL_NAMES)),
        label2id={n: i for i, n in enumerate(LABEL_NAMES)},
        num_hidden_layers=n_layers,
    )
    model = AutoModelForAudioClassification.from_config(cfg).eval()
    return model, Wav2Vec2FeatureExtractor()  # wav2vec2-base: group norm, no attention mask


def build_tiny(run_dir: str | None) -> tuple[Any, Any, float, str]:
    from deepfake_lib.deploy.model_location import locate_model
    from deepfake_lib.modeling.frontends import build_tiny_model
    from deepfake_lib.modeling.models import load_model

    if run_dir:
        loc = locate_model(run_dir)
        loaded = load_model(loc.model_source, freeze_feature_encoder=False)
        return loaded.model.eval(), loaded.feature_extractor, loc.threshold, f"trained model of {run_dir}"
    loaded = build_tiny_model(seed=0)
    return loaded.model.eval(), loaded.feature_extractor, 0.0, "random weights"


def torchao_int8(model: Any) -> Any:
    return quantize_int8(model, method="torchao")


def command_defaults() -> dict[str, str]:
    """The backend each entry point uses when none is given, read from the code itself."""
    from deepfake_lib.cli.main import build_parser
    from deepfake_lib.deploy.detector import Detector
    from deepfake_lib.deploy.service import create_app

    parser = build_parser()
    return {
        "Detector.from_source": str(inspect.signature(Detector.from_source).parameters["backend"].default),
        "deepfake-detect": str(parser.parse_args(["detect", "MODEL", "PATH"]).backend),
        "deepfake-lib serve": str(parser.parse_args(["serve"]).backend),
        "serve.create_app": str(inspect.signature(create_app).parameters["backend"].default),
    }


# ------------------------------------------------------------------------------ timing
def wave_fn(classifier: Any, fe: Any) -> Callable[[np.ndarray], np.ndarray]:
    def fn(wave: np.ndarray) -> np.ndarray:
        mask_wanted = bool(getattr(fe, "return_attention_mask", False)) and classifier.accepts_attention_mask
        feats = fe(
            [wave], sampling_rate=TARGET_SAMPLE_RATE, return_tensors="np", return_attention_mask=mask_wanted
        )
        mask = np.asarray(feats["attention_mask"], dtype=np.int64) if mask_wanted else None
        return classifier(np.asarray(feats["input_values"], dtype=np.float32), mask)[0]

    return fn


def time_once(fn: Callable[[np.ndarray], Any], batch: np.ndarray) -> float:
    start = time.perf_counter()
    fn(batch)
    return time.perf_counter() - start


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
    big = name.startswith("base")
    clips = [w for w in waves if len(w) >= CLIP_S * TARGET_SAMPLE_RATE] or waves
    pool = [clips[i % len(clips)] for i in range(8)]
    batch8 = np.stack([np.resize(w, int(CLIP_S * TARGET_SAMPLE_RATE)) for w in pool]).astype(np.float32)
    batch8 = (batch8 - batch8.mean(1, keepdims=True)) / (batch8.std(1, keepdims=True) + 1e-7)
    batch1 = batch8[:1]
    masks = {1: np.ones(batch1.shape, np.int64), 8: np.ones(batch8.shape, np.int64)}
    rounds1, rounds8 = (args.repeats, args.repeats8) if big else (args.repeats * 4, args.repeats)
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

    def build_mixed() -> tuple[Any, dict[str, Any]]:
        start = time.perf_counter()
        clf = MixedCpuClassifier(model, accepts_attention_mask=uses_mask)
        return clf, {"build_s": time.perf_counter() - start, "runtime": clf.describe()}

    builders.append(("fp32", torch_variant(lambda: model)))
    builders.append(("int8 torch.ao", torch_variant(lambda: quantize_int8(model, method="torch.ao"))))
    has_torchao = importlib.util.find_spec("torchao") is not None
    if has_torchao:  # optional: `pip install torchao` to measure it side by side
        builders.append(("int8 torchao", torch_variant(lambda: torchao_int8(model))))
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
    builders.append(
        (
            "bf16 autocast",
            lambda: (
                TorchClassifier(model, accepts_attention_mask=uses_mask, precision="bf16"),
                {"build_s": 0.0},
            ),
        )
    )
    builders.append(("mixed", build_mixed))

    onnx_path, onnx_int8_path = workdir / f"{name}.onnx", workdir / f"{name}.int8.onnx"

    def build_onnx() -> tuple[Any, dict[str, Any]]:
        start = time.perf_counter()
        export_onnx(copy.deepcopy(model), onnx_path, with_attention_mask=uses_mask)
        return OnnxClassifier(onnx_path, threads=THREADS), {"build_s": time.perf_counter() - start}

    def build_onnx_int8() -> tuple[Any, dict[str, Any]]:
        start = time.perf_counter()
        quantize_onnx_int8(onnx_path, onnx_int8_path)
        return OnnxClassifier(onnx_int8_path, threads=THREADS), {"build_s": time.perf_counter() - start}

    if name in ("tiny", "base") and args.onnx:
        builders += [("onnx fp32", build_onnx), ("onnx int8", build_onnx_int8)]
    if name != "tiny" and name != "base":  # first-layers models: the three torch paths that matter
        builders = [(k, b) for k, b in builders if k in ("fp32", "int8 torch.ao", "mixed")]

    built: dict[str, tuple[Any, dict[str, Any], float]] = {}
    for label, build in builders:
        gc.collect()
        before = rss_mb()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            classifier, info = build()
        built[label] = (classifier, info, before)

    def call(c: Any) -> Callable[[np.ndarray], Any]:
        return lambda b: c(b, masks[len(b)] if c.accepts_attention_mask else None)

    for classifier, _, _ in built.values():  # warm-up: one call per shape
        call(classifier)(batch1)
        if not big:
            call(classifier)(batch8)
    t1: dict[str, list[float]] = {k: [] for k in built}
    t8: dict[str, list[float]] = {k: [] for k in built}
    peaks: dict[str, float] = {k: 0.0 for k in built}
    probes = [matmul_probe_gflops()]
    for batch, rounds, times in ((batch1, rounds1, t1), (batch8, rounds8, t8)):
        for _ in range(rounds):
            for label, (classifier, _, _) in built.items():
                times[label].append(time_once(call(classifier), batch))
                peaks[label] = max(peaks[label], rss_mb())  # after the call: weights plus cached activations
            probes.append(matmul_probe_gflops())
    probe = statistics.median(probes)
    results: dict[str, Any] = {}
    for label, (classifier, info, before) in built.items():
        parity = check_parity(reference, wave_fn(classifier, fe), waves, threshold=threshold)
        passed, why = check_gate(parity)
        ms1 = statistics.median(t1[label]) * 1000
        ms8 = statistics.median(t8[label]) * 1000 / len(batch8)
        results[label] = {
            "batch1_ms_per_clip": ms1,
            "batch8_ms_per_clip": ms8,
            "rtf_batch1": ms1 / 1000 / CLIP_S,
            "rtf_batch8": ms8 / 1000 / CLIP_S,
            "batch1_times_ms": [round(t * 1000, 2) for t in t1[label]],
            "batch8_times_ms": [round(t * 1000, 2) for t in t8[label]],
            "probe_gflops": [round(p, 1) for p in probes],
            "probe_normalised_ms": ms1 * probe / NOMINAL_PROBE_GFLOPS,
            "peak_rss_mb": peaks[label],
            "rss_rise_mb": peaks[label] - before,
            "parity": parity,
            "gate": {"passed": passed, "reason": why},
            **info,
        }
        print(
            f"  {name:<7} {label:<20} b1 {ms1:8.1f} ms  b8 {ms8:8.1f} ms/clip  "
            f"max|dlogit| {parity['max_abs_logit_diff']:.1e}  agree {parity['label_agreement']:.0%}",
            flush=True,
        )
    del built
    fp32 = results["fp32"]
    for r in results.values():
        r["vs_fp32_batch1"] = r["batch1_ms_per_clip"] / fp32["batch1_ms_per_clip"]
        r["vs_fp32_batch8"] = r["batch8_ms_per_clip"] / fp32["batch8_ms_per_clip"]
        if big:
            r["fp32_floor_ms"] = BASE_GFLOP_PER_CLIP / probe * 1000 if name == "base" else None
    return results


def print_table(all_results: dict[str, Any]) -> None:
    print()
    head = (
        f"{'model':<7} {'variant':<20} {'b1 ms':>8} {'b8 ms/clip':>10} {'RTF b1':>7} {'x fp32 b1':>9} "
        f"{'x fp32 b8':>9} {'norm ms':>8} {'max|dlogit|':>11} {'agree':>6} {'gate':>5} {'RSS rise':>9}"
    )
    print(head)
    print("-" * len(head))
    for model_name, res in all_results.items():
        for label, r in res.items():
            print(
                f"{model_name:<7} {label:<20} {r['batch1_ms_per_clip']:8.1f} {r['batch8_ms_per_clip']:10.1f} "
                f"{r['rtf_batch1']:7.3f} {r['vs_fp32_batch1']:9.2f} {r['vs_fp32_batch8']:9.2f} "
                f"{r['probe_normalised_ms']:8.0f} {r['parity']['max_abs_logit_diff']:11.1e} "
                f"{r['parity']['label_agreement']:6.0%} {'yes' if r['gate']['passed'] else 'no':>5} "
                f"{r['rss_rise_mb']:8.0f}M"
            )


def summarise_targets(all_results: dict[str, Any], defaults: dict[str, str]) -> dict[str, Any]:
    """The issue's two targets, as measured in this run (ratios side by side)."""
    out: dict[str, Any] = {}
    base = all_results.get("base")
    if base:
        chosen = next(
            (v for v in ("mixed", "int8 torch.ao") if v in base and base[v]["gate"]["passed"]), "fp32"
        )
        r = base[chosen]
        out["default_path_base"] = {
            "variant": chosen,
            "vs_fp32_batch1": r["vs_fp32_batch1"],
            "vs_fp32_batch8": r["vs_fp32_batch8"],
            "label_agreement": r["parity"]["label_agreement"],
            "target_vs_fp32": TARGET_DEFAULT_VS_FP32,
            "meets_target": bool(
                r["vs_fp32_batch1"] <= TARGET_DEFAULT_VS_FP32 and r["parity"]["label_agreement"] == 1.0
            ),
        }
    first = {k: v["mixed"] for k, v in all_results.items() if k.startswith("base-") and "mixed" in v}
    if first:
        best_name = min(first, key=lambda k: first[k]["batch1_ms_per_clip"])
        r = first[best_name]
        out["first_layers"] = {
            "model": best_name,
            "variant": "mixed",
            "batch1_ms_per_clip": r["batch1_ms_per_clip"],
            "probe_normalised_ms": r["probe_normalised_ms"],
            "target_ms": TARGET_FIRST_LAYERS_MS,
            "meets_target_measured": bool(r["batch1_ms_per_clip"] < TARGET_FIRST_LAYERS_MS),
            "meets_target_probe_normalised": bool(r["probe_normalised_ms"] < TARGET_FIRST_LAYERS_MS),
        }
    out["defaults"] = defaults
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: tiny model only, few repeats")
    parser.add_argument("--run-dir", help="trained run: its test split for parity, its model as 'tiny'")
    parser.add_argument(
        "--models", default=None, help="comma list of tiny,base (default both; tiny with --quick)"
    )
    parser.add_argument(
        "--layers",
        default="6,4,2",
        help="first-layers versions of base to add (comma list of N < 12; empty for none)",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed rounds at batch 1 for base (default 3)"
    )
    parser.add_argument(
        "--repeats8", type=int, default=None, help="timed rounds at batch 8 for base (default 1)"
    )
    parser.add_argument(
        "--parity-clips",
        type=int,
        default=1000,
        help=f"with --run-dir: test clips for parity (default all; base uses at most {BASE_PARITY_CLIPS})",
    )
    parser.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip the ONNX Runtime variants")
    parser.add_argument(
        "--no-compile", dest="compile", action="store_false", help="skip torchao + torch.compile"
    )
    parser.add_argument(
        "--out", default=None, help="results JSON (default results/latency.json; --quick: none)"
    )
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    models = (args.models or ("tiny" if args.quick else "tiny,base")).split(",")
    if "base" in models and args.layers and not args.quick:
        models += [f"base-{int(n)}L" for n in args.layers.split(",") if n.strip()]
    args.repeats = args.repeats or (2 if args.quick else 3)
    args.repeats8 = args.repeats8 or 1
    if args.quick:
        args.compile = False
    started = time.perf_counter()
    if args.run_dir:
        waves = load_run_test_waves(args.run_dir, max_clips=args.parity_clips if not args.quick else 4)
        wave_source = f"test split of {args.run_dir}"
    else:
        waves, wave_source = (
            make_parity_waves(8 if not args.quick else 3),
            "synthetic clips (deepfake_lib.corpora.embedded)",
        )
    bf16 = detect_bf16_support()
    print(
        f"parity clips: {len(waves)} ({wave_source}); threads {THREADS}; probe {matmul_probe_gflops():.0f} GFLOP/s; "
        f"bf16: {bf16.reason}"
    )
    all_results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench_latency_") as tmp:
        for name in models:
            if name == "tiny":
                model, fe, threshold, desc = build_tiny(args.run_dir)
            elif name.startswith("base"):
                n_layers = 12 if name == "base" else int(name.removeprefix("base-").removesuffix("L"))
                model, fe = build_base(n_layers)
                threshold, desc = (
                    0.0,
                    f"wav2vec2-base architecture, first {n_layers} of 12 layers, random weights",
                )
            else:
                raise SystemExit(f"unknown model {name!r}")
            print(f"{name}: {desc}, {sum(p.numel() for p in model.parameters()):,} parameters", flush=True)
            model_waves = waves if name == "tiny" else waves[:BASE_PARITY_CLIPS]
            all_results[name] = bench_model(name, model, fe, threshold, model_waves, args, Path(tmp))
            del model
            gc.collect()
    try:
        defaults = command_defaults()
    except Exception as exc:  # an entry point that does not import must not lose the measurements
        defaults = {"error": f"{type(exc).__name__}: {exc}"}
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
            "bf16": bf16.reason,
            "load_average_1min": os.getloadavg()[0],
        },
        "base_gflop_per_clip": BASE_GFLOP_PER_CLIP,
        "nominal_probe_gflops": NOMINAL_PROBE_GFLOPS,
        "int8_default": "torch.ao (deepfake_lib.classifier.INT8_METHOD)",
        "targets": summarise_targets(all_results, defaults),
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
    print(json.dumps(report["targets"], indent=2))
    print(
        f"\nsaved {out} ({report['wall_s']:.0f} s)"
        if out is not None
        else f"\n({report['wall_s']:.0f} s; quick run, not saved)"
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
