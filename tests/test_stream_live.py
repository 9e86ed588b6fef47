"""``deepfake-lib serve`` as a real process on 127.0.0.1 with a token: the streaming client and
``deepfake-lib stream`` against it, an oversized message stopped by the server's WebSocket layer,
and a client that vanishes mid-stream costing nothing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")
pytest.importorskip("websockets")

from deepfake_lib.deploy.stream_client import StreamClosed, stream_audio  # noqa: E402

TOKEN = "live-test-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """``(port, model folder)`` of a running ``deepfake-lib serve`` with 1 s windows, a 0.5 s hop,
    a token and a 64 kB message limit; stopped after the module."""
    import httpx

    from deepfake_lib.modeling.frontends import build_tiny_model
    from deepfake_lib.modeling.models import save_model

    model = save_model(build_tiny_model(seed=7), tmp_path_factory.mktemp("live") / "model")
    port = free_port()
    cmd = [sys.executable, "-m", "deepfake_lib.cli", "serve", "--model", str(model), "--port", str(port)]
    cmd += ["--window-s", "1", "--hop-s", "0.5", "--runtime", "torch", "--device", "cpu"]
    cmd += ["--max-message-bytes", "64000", "--max-streams", "2"]
    proc = subprocess.Popen(
        cmd, env={**os.environ, "DEEPFAKE_TOKEN": TOKEN}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not answer /health in time"
            time.sleep(0.5)
        yield port, model
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def clip(path, seconds: float = 3.2, sr: int = 22_050) -> None:
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * sr)) / sr
    wave = 0.3 * np.sin(2 * np.pi * (140 + 30 * t) * t) + 0.02 * rng.standard_normal(t.size)
    sf.write(path, wave.astype(np.float32), sr, subtype="PCM_16")


@pytest.mark.slow
def test_client_and_command_stream_a_file_with_the_token(live, tmp_path, capsys) -> None:
    from deepfake_lib.cli import main as cli
    from deepfake_lib.deploy.detector import Detector

    port, model = live
    path = tmp_path / "clip.wav"
    clip(path)
    url = f"ws://127.0.0.1:{port}/stream"
    whole = Detector.from_source(model, runtime="torch", device="cpu", window_s=1.0, hop_s=0.5).predict(path)
    out = stream_audio(url, path, token=TOKEN, chunk_s=0.13, timeout_s=60)
    assert out.ready["window_s"] == 1.0 and out.ready["hop_s"] == 0.5  # serve's scoring flags
    assert [w["score"] for w in out.windows] == pytest.approx([w["score"] for w in whole.windows], abs=1e-4)
    assert out.result["score"] == pytest.approx(whole.score, abs=1e-4)
    assert all(w["latency_s"] >= 0 for w in out.windows) and out.realtime_factor > 0
    with pytest.raises(Exception, match="401"):
        stream_audio(url, path, token="wrong-token-0123456789", timeout_s=30)

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    assert cli.main(["stream", str(path), "--url", url, "--token-file", str(token_file)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [m["type"] for m in lines] == ["window"] * whole.n_windows + ["result"]
    assert lines[-1]["score"] == pytest.approx(whole.score, abs=1e-4)


@pytest.mark.slow
def test_oversized_message_and_vanished_client_cost_nothing(live) -> None:
    import httpx
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    port, _ = live
    url = f"ws://127.0.0.1:{port}/stream?token={TOKEN}"
    start = json.dumps({"sample_rate": 16_000, "format": "float32"})
    # over 4x the 64 kB limit: the WebSocket layer closes with 1009 before the app sees it
    with connect(url, max_size=None, close_timeout=5) as ws:
        ws.send(start)
        ws.recv(timeout=30)
        with pytest.raises(ConnectionClosed) as closed:
            ws.send(b"\0" * 1_000_000)
            ws.recv(timeout=30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    # between the limit and 4x it: the app closes with its own reason
    with pytest.raises(StreamClosed) as early:
        stream_audio(url, np.full(40_000, 0.1, np.float32), sample_rate=16_000, chunk_s=2.0, timeout_s=30)
    assert early.value.code == 1009 and "over the limit of 64000 bytes" in early.value.reason
    # two clients vanish mid-stream (no end message, no close frame); both slots come back
    for _ in range(2):
        with connect(url, close_timeout=0.1) as ws:
            ws.send(start)
            ws.recv(timeout=30)
            ws.send(np.full(8_000, 0.1, "<f4").tobytes())
            ws.socket.shutdown(socket.SHUT_RDWR)  # gone: no end message, no close frame
    deadline = time.monotonic() + 30
    metrics = ""
    while time.monotonic() < deadline:
        metrics = httpx.get(
            f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
        ).text
        if "deepfake_streams_open 0.0" in metrics:
            break
        time.sleep(0.2)
    assert "deepfake_streams_open 0.0" in metrics
    out = stream_audio(url, np.full(20_000, 0.1, np.float32), sample_rate=16_000, timeout_s=30)
    assert out.result["n_windows"] == 2
