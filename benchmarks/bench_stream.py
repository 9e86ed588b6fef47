"""Benchmark: latency of the ``/stream`` WebSocket, from a chunk's arrival to its window's score.

Starts one service per model on 127.0.0.1 (free ports): the demo run (``--run-dir``, default
``runs/demo`` when it is finished, else a random-weight tiny model) and a wav2vec2-base-sized
random model (12 layers), both with the default CPU runtime (``--runtime auto``). Then, in
interleaved rounds (round r: demo x1, base x1, demo x8, base x8, so a host whose speed drifts
slows every variant alike), it streams ``--seconds`` of audio from 1 and from 8 concurrent
clients paced at real time (:func:`deepfake_lib.deploy.stream_client.stream_audio`,
``realtime=True``, 0.1 s messages). Per variant: window latency p50/p95 (ms, client side: from
sending the message that completed a window to receiving its score), lost windows (expected
minus received; before each variant the servers must have no stream open, since a server that
fell behind goes on scoring what it had queued), and, from one stream sent as fast as the server
takes it, the real-time factor (audio seconds scored per wall second; above 1 keeps up). Each window message carries the
server's model time for it (``inference_ms``), so the latency splits into model time and what the
stream path adds (``overhead_ms``: transport, queueing behind other windows, decoding). The target: p95 under the
hop with one stream, 0 lost windows. A 0.3 s matmul probe brackets every round.

Usage: ``python benchmarks/bench_stream.py [--quick] [--run-dir runs/demo] [--rounds 2]
[--seconds 20]``. Prints a table and writes ``benchmarks/results/stream.json``.
"""

from __future__ import annotations

import argparse
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
from gauges import matmul_probe_gflops, results_path

from deepfake_lib.deploy.stream_client import stream_audio
from deepfake_lib.scoring import window_spans

SR = 16_000
CONCURRENCY = (1, 8)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def voice_like(seconds: float, seed: int) -> np.ndarray:
    """A harmonic tone with a wandering pitch and noise, float32 ``[samples]`` at 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = rng.uniform(100, 220) * (1 + 0.1 * np.sin(2 * np.pi * 0.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    wave = sum(0.2 / k * np.sin(k * phase) for k in range(1, 5)) + 0.01 * rng.standard_normal(t.size)
    return wave.astype(np.float32)


def describe_models(models: dict[str, str], run_dir: str | None) -> dict[str, str]:
    """What each variant's model is, in words, for the results and the README row."""
    demo = (
        f"the demo run {run_dir}"
        if models["demo"] == run_dir
        else "tiny model, random weights (no finished demo run)"
    )
    return {"demo": demo, "base": "wav2vec2-base config, random weights"}


def save_models(tmp: Path, run_dir: str | None) -> dict[str, str]:
    """``{"demo": source, "base": source}``: the demo run (or a random tiny model) and a random
    wav2vec2-base-sized model saved with ``save_pretrained``."""
    from transformers import AutoModelForAudioClassification, Wav2Vec2Config, Wav2Vec2FeatureExtractor

    from deepfake_lib import LABEL_NAMES
    from deepfake_lib.modeling.frontends import build_tiny_model
    from deepfake_lib.modeling.models import save_model

    models = {}
    if run_dir and (Path(run_dir) / "metrics.json").is_file():
        models["demo"] = run_dir
    else:
        models["demo"] = str(save_model(build_tiny_model(seed=0), tmp / "tiny"))
    import torch

    torch.manual_seed(0)
    cfg = Wav2Vec2Config(
        num_labels=2,
        id2label=dict(enumerate(LABEL_NAMES)),
        label2id={n: i for i, n in enumerate(LABEL_NAMES)},
    )
    base = tmp / "base"
    AutoModelForAudioClassification.from_config(cfg).save_pretrained(base)
    Wav2Vec2FeatureExtractor().save_pretrained(base)
    models["base"] = str(base)
    return models


def start_server(model: str, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "deepfake_lib.cli", "serve", "--model", model, "--port", str(port)]
    cmd += ["--max-streams", str(max(CONCURRENCY)), "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def wait_ready(port: int, server: subprocess.Popen, timeout_s: float = 300) -> dict[str, Any]:
    import httpx

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited: {server.stderr.read()[-2000:]}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/model", timeout=5).json()
        except httpx.HTTPError:
            time.sleep(1)
    raise TimeoutError(f"no service on port {port} within {timeout_s} s")


def run_streams(port: int, n: int, seconds: float, info: dict[str, Any]) -> dict[str, Any]:
    """``n`` concurrent real-time streams: latencies (s) and lost windows."""
    url = f"ws://127.0.0.1:{port}/stream"
    latencies: list[float] = []
    overheads: list[float] = []  # latency minus the window's model time (ms): what the stream path adds
    lost, errors = 0, []
    lock = threading.Lock()
    window = int(round(info["window_s"] * SR))
    hop = int(round(info["hop_s"] * SR))

    def one(k: int) -> None:
        nonlocal lost
        wave = voice_like(seconds, seed=k)
        expected = len(window_spans(wave.shape[0], window, hop))
        try:
            out = stream_audio(url, wave, sample_rate=SR, realtime=True, timeout_s=120)
            with lock:
                latencies.extend(w["latency_s"] for w in out.windows)
                overheads.extend(w["latency_s"] * 1000 - w["inference_ms"] for w in out.windows)
                lost += expected - len(out.windows)
        except Exception as exc:  # noqa: BLE001 - a failed stream is a result: all its windows lost
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")
                lost += expected

    threads = [threading.Thread(target=one, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds * 4 + 180)
    return {"latencies": latencies, "overheads": overheads, "lost": lost, "errors": errors}


def wait_idle(ports: list[int], timeout_s: float = 600) -> float:
    """Wait until no stream is open on any server (a server that fell behind still scores the
    messages it queued for clients that gave up); returns the seconds waited."""
    import httpx

    started = time.time()
    while time.time() - started < timeout_s:
        texts = [httpx.get(f"http://127.0.0.1:{p}/metrics", timeout=10).text for p in ports]
        if all("deepfake_streams_open 0.0" in t for t in texts):
            break
        time.sleep(1)
    return time.time() - started


def realtime_factor(port: int, seconds: float) -> float:
    out = stream_audio(
        f"ws://127.0.0.1:{port}/stream", voice_like(seconds, 99), sample_rate=SR, timeout_s=300
    )
    return out.realtime_factor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", default="runs/demo", help="the demo run (default runs/demo)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument("--seconds", type=float, default=20.0, help="audio per stream, seconds (default 20)")
    parser.add_argument("--quick", action="store_true", help="1 round of 8 s streams; writes no JSON")
    parser.add_argument("--out", help="JSON file to write (default benchmarks/results/stream.json)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds = 1, 8.0
    servers: dict[str, tuple[subprocess.Popen, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            models = save_models(Path(tmp), args.run_dir)
            described = describe_models(models, args.run_dir)
            for name, model in models.items():
                port = free_port()
                servers[name] = (start_server(model, port), port)
            infos = {name: wait_ready(port, server) for name, (server, port) in servers.items()}
            samples: dict[str, dict[str, Any]] = {
                f"{m} x{n}": {"latencies": [], "overheads": [], "lost": 0, "errors": []}
                for n in CONCURRENCY
                for m in models
            }
            for _, port in servers.values():  # warm-up: first calls build the runtime's kernels
                realtime_factor(port, 8.0)
            probes = [matmul_probe_gflops()]
            for r in range(args.rounds):
                for n in CONCURRENCY:
                    for name in models:
                        idle = wait_idle([port for _, port in servers.values()])
                        got = run_streams(servers[name][1], n, args.seconds, infos[name])
                        key = f"{name} x{n}"
                        samples[key]["latencies"] += got["latencies"]
                        samples[key]["lost"] += got["lost"]
                        samples[key]["overheads"] += got["overheads"]
                        samples[key]["errors"] += got["errors"]
                        samples[key].setdefault("idle_wait_s", []).append(round(idle, 1))
                        print(
                            f"round {r + 1}: {key}: {len(got['latencies'])} windows, {got['lost']} lost "
                            f"(waited {idle:.0f} s for idle servers first)",
                            flush=True,
                        )
                probes.append(matmul_probe_gflops())
            rtf = {name: realtime_factor(port, args.seconds) for name, (_, port) in servers.items()}
        finally:
            for server, _ in servers.values():
                server.terminate()
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
    results: dict[str, Any] = {}
    for key, s in samples.items():
        name = key.split()[0]
        lat = np.asarray(s["latencies"]) * 1000
        hop_ms = infos[name]["hop_s"] * 1000
        results[key] = {
            "model": described[name],
            "runtime": infos[name]["runtime"],
            "window_s": infos[name]["window_s"],
            "hop_s": infos[name]["hop_s"],
            "streams": int(key.split("x")[-1]),
            "windows": int(lat.size),
            "p50_ms": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
            "p95_ms": round(float(np.percentile(lat, 95)), 1) if lat.size else None,
            "model_ms_p50": round(float(np.percentile(lat - np.asarray(s["overheads"]), 50)), 1)
            if lat.size
            else None,
            "overhead_ms_p50": round(float(np.percentile(s["overheads"], 50)), 1) if lat.size else None,
            "overhead_ms_p95": round(float(np.percentile(s["overheads"], 95)), 1) if lat.size else None,
            "p95_under_hop": bool(lat.size and np.percentile(lat, 95) < hop_ms),
            "lost_windows": s["lost"],
            "errors": s["errors"][:5],
            "idle_wait_s": s.get("idle_wait_s", []),
            "realtime_factor": round(rtf[name], 2),
        }
    nan = float("nan")
    print(
        f"{'variant':<10} {'runtime':<7} {'hop ms':>7} {'p50 ms':>8} {'p95 ms':>8} {'model ms':>9} "
        f"{'added p50':>9} {'lost':>5} {'RTF':>6}"
    )
    for key, r in results.items():
        print(
            f"{key:<10} {r['runtime']:<7} {r['hop_s'] * 1000:>7.0f} {r['p50_ms'] or nan:>8.1f} "
            f"{r['p95_ms'] or nan:>8.1f} {r['model_ms_p50'] or nan:>9.1f} {r['overhead_ms_p50'] or nan:>9.1f} "
            f"{r['lost_windows']:>5} {r['realtime_factor']:>6.2f}"
        )
    record = {
        "benchmark": "stream",
        "command": "python benchmarks/bench_stream.py " + " ".join(sys.argv[1:]),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
            "probe_gflops": [round(p, 1) for p in probes],
        },
        "probe_gflops_median": round(statistics.median(probes), 1),
        "rounds": args.rounds,
        "seconds_per_stream": args.seconds,
        "results": results,
    }
    path = results_path("stream", args.out, args.quick)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
