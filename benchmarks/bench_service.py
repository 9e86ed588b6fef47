"""Benchmark: the web service under concurrent load, on the loopback interface.

Starts ``uvicorn deepfake_lib.deploy.service:app`` on 127.0.0.1 (a free port) with a model (default:
a random-weight tiny model saved to a temporary folder; ``--model`` for a run or export
folder), waits for ``/health``, then runs 20 client threads (one ``httpx.Client`` each) that
POST 4 s WAV clips to ``/predict`` until a bounded number of requests (200; 40 with
``--quick``) is done or the time limit passes. Reports requests/s, latency percentiles
(p50/p95/p99, ms, client side), the server's own ``processing_ms`` median, the number of
errors (must be 0), and the server's RSS after warm-up, halfway and at the end (memory must
stay steady). The server is stopped in every case.

Usage: ``python benchmarks/bench_service.py [--quick] [--model PATH] [--backend torch]
[--clients 20] [--requests 200] [--time-limit 300]``. Prints a table and writes
``benchmarks/results/service.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import soundfile as sf
from gauges import results_path

SR = 16_000


def _cpu_capability() -> str:
    """torch's CPU instruction-set level (AVX2, AVX512, ...); imported late to keep the load client light."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_clips(n: int, seconds: float = 4.0, seed: int = 0) -> list[bytes]:
    """WAV PCM_16 clips at 16 kHz: harmonic voice-like tones with noise, distinct per seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    out = []
    for _ in range(n):
        f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.2, 0.8) * t))
        phase = 2 * np.pi * np.cumsum(f0) / SR
        wave = sum(np.sin(k * phase) / k for k in range(1, 8)) * 0.1 + 0.01 * rng.standard_normal(t.size)
        buf = io.BytesIO()
        sf.write(buf, wave.astype(np.float32), SR, format="WAV", subtype="PCM_16")
        out.append(buf.getvalue())
    return out


def server_rss_mb(pid: int) -> float:
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def main() -> None:
    import httpx

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: 40 requests")
    parser.add_argument(
        "--model", help="run/export/model folder (default: a random tiny model in a temp folder)"
    )
    parser.add_argument("--backend", default="torch", choices=("torch", "int8", "onnx", "onnx-int8"))
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument(
        "--requests", type=int, default=None, help="total requests (default 200; 40 with --quick)"
    )
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds for the load phase")
    parser.add_argument(
        "--out", default=None, help="results JSON (default results/service.json; --quick: none)"
    )
    args = parser.parse_args()
    n_requests = args.requests or (40 if args.quick else 200)

    with tempfile.TemporaryDirectory(prefix="bench_service_") as tmp:
        model = args.model
        if model is None:
            from transformers.utils import logging as hf_logging

            from deepfake_lib.modeling.frontends import build_tiny_model
            from deepfake_lib.modeling.models import save_model

            hf_logging.disable_progress_bar()

            model = str(save_model(build_tiny_model(seed=0), Path(tmp) / "tiny"))
        port = free_loopback_port()
        base = f"http://127.0.0.1:{port}"
        env = dict(
            os.environ,
            DEEPFAKE_MODEL=model,
            DEEPFAKE_BACKEND=args.backend,
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
        )
        log_file = open(Path(tmp) / "server.log", "w+")
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "deepfake_lib.deploy.service:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            started = time.monotonic()
            while True:
                if server.poll() is not None:
                    log_file.seek(0)
                    raise SystemExit(f"server exited early:\n{log_file.read()}")
                try:
                    if httpx.get(f"{base}/health", timeout=2).json().get("model_loaded"):
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() - started > 180:
                    raise SystemExit("server did not become healthy within 180 s")
                time.sleep(0.5)
            startup_s = time.monotonic() - started
            model_info = httpx.get(f"{base}/model", timeout=10).json()
            clips = make_clips(16)
            with httpx.Client(timeout=120) as c:  # warm-up: first requests pay lazy initialisation
                for clip in clips[:3]:
                    c.post(
                        f"{base}/predict", files={"file": ("warm.wav", clip, "audio/wav")}
                    ).raise_for_status()
            rss = {"after_warmup": server_rss_mb(server.pid)}

            lock = threading.Lock()
            counter = {"next": 0}
            latencies: list[float] = []
            server_ms: list[float] = []
            errors: list[str] = []
            deadline = time.monotonic() + args.time_limit

            def client(worker: int) -> None:
                with httpx.Client(timeout=120) as c:
                    while time.monotonic() < deadline:
                        with lock:
                            i = counter["next"]
                            if i >= n_requests:
                                return
                            counter["next"] += 1
                            if i == n_requests // 2:
                                rss["halfway"] = server_rss_mb(server.pid)
                        clip = clips[i % len(clips)]
                        t0 = time.perf_counter()
                        try:
                            r = c.post(f"{base}/predict", files={"file": (f"c{i}.wav", clip, "audio/wav")})
                            elapsed = time.perf_counter() - t0
                            with lock:
                                if r.status_code == 200:
                                    latencies.append(elapsed)
                                    server_ms.append(r.json()["processing_ms"])
                                else:
                                    errors.append(f"{r.status_code}: {r.text[:200]}")
                        except httpx.HTTPError as exc:
                            with lock:
                                errors.append(f"{type(exc).__name__}: {exc}")

            t_start = time.perf_counter()
            threads = [threading.Thread(target=client, args=(w,)) for w in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=args.time_limit + 180)
            wall = time.perf_counter() - t_start
            rss["end"] = server_rss_mb(server.pid)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
            log_file.close()

    done = len(latencies)
    lat_ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    report: dict[str, Any] = {
        "benchmark": "service",
        "quick": bool(args.quick),
        "model": model_info,
        "clients": args.clients,
        "requests_planned": n_requests,
        "requests_ok": done,
        "errors": len(errors),
        "error_samples": errors[:5],
        "time_limited": done + len(errors) < n_requests,
        "clip_s": 4.0,
        "startup_s": startup_s,
        "wall_s": wall,
        "requests_per_s": done / wall if wall > 0 else 0.0,
        "latency_ms": {
            "p50": float(np.percentile(lat_ms, 50)),
            "p95": float(np.percentile(lat_ms, 95)),
            "p99": float(np.percentile(lat_ms, 99)),
            "max": float(np.max(lat_ms)),
        },
        "server_processing_ms_median": statistics.median(server_ms) if server_ms else None,
        "server_rss_mb": rss,
        "server_rss_growth_mb": rss["end"] - rss["after_warmup"],
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "cpu_capability": _cpu_capability(),
        },
    }
    print(
        f"{'clients':>7} {'requests':>8} {'errors':>6} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'server ms':>9} {'RSS warm':>9} {'RSS half':>9} {'RSS end':>8}"
    )
    print(
        f"{args.clients:>7} {done:>8} {len(errors):>6} {report['requests_per_s']:>7.2f} "
        f"{report['latency_ms']['p50']:>8.0f} {report['latency_ms']['p95']:>8.0f} {report['latency_ms']['p99']:>8.0f} "
        f"{report['server_processing_ms_median'] or float('nan'):>9.0f} {rss['after_warmup']:>8.0f}M "
        f"{rss.get('halfway', float('nan')):>8.0f}M {rss['end']:>7.0f}M"
    )
    if errors:
        print("errors:", *errors[:5], sep="\n  ")
    out = results_path("service", args.out, args.quick)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"saved {out}")
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
