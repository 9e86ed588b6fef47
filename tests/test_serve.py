"""Web service: endpoints, upload limits and content checks, no temporary files, one model load,
and one end-to-end request against a real uvicorn process on the loopback interface."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
import soundfile as sf

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from deepfake_lib.deploy import service as serve  # noqa: E402
from deepfake_lib.deploy.detector import Detector  # noqa: E402

SR = 16_000


def wav_bytes(
    seconds: float, *, sr: int = SR, channels: int = 1, subtype: str = "PCM_16", seed: int = 0
) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    mono = 0.2 * np.sin(2 * np.pi * 180 * t) + 0.02 * rng.standard_normal(t.size)
    data = np.stack([mono] * channels, axis=1) if channels > 1 else mono
    buf = io.BytesIO()
    sf.write(buf, data.astype(np.float32), sr, format="WAV", subtype=subtype)
    return buf.getvalue()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from deepfake_lib.modeling.frontends import build_tiny_model
    from deepfake_lib.modeling.models import save_model

    return save_model(build_tiny_model(seed=7), tmp_path_factory.mktemp("serve") / "model")


@pytest.fixture(scope="module")
def client_and_log(model_dir, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("logs") / "predictions.jsonl"
    app = serve.create_app(str(model_dir), max_upload_mb=2, log_path=log_path, device="cpu")
    with TestClient(app) as client:
        yield client, log_path


def test_importing_the_module_builds_no_app_and_loads_no_model(tmp_path):
    # Package imports sit at module top (torch comes with them); what must not happen on import
    # is a side effect: no app, no Detector, no model read, even when DEEPFAKE_MODEL is broken.
    # With a model path that does not exist, any model loading at import would raise here.
    code = "import deepfake_lib.deploy.service as s; assert s._app is None"
    env = {**os.environ, "DEEPFAKE_MODEL": str(tmp_path / "no-such-model")}
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300, env=env)


def test_health_and_model(client_and_log, model_dir):
    client, _ = client_and_log
    assert client.get("/health").json() == {"status": "ok", "model_loaded": True}
    info = client.get("/model").json()
    assert info["id"] == str(model_dir) and info["labels"] == ["Fake", "Real"]
    assert info["threshold"] == 0.0 and info["sample_rate"] == SR
    assert info["window_s"] == 4.0
    choice = info["backend_choice"]  # the default "auto" says what it chose and why
    assert choice["requested"] == "auto" and choice["chosen"] == info["backend"]
    assert info["backend"] in ("mixed", "int8", "torch") and choice["reason"]
    assert info["metrics"] is None  # a bare model folder has no run metrics


def test_model_reports_run_metrics_with_meanings(tmp_path):
    from deepfake_lib.evaluation.metric_registry import metric_meanings
    from deepfake_lib.evaluation.metrics import summarize_scores
    from deepfake_lib.modeling.frontends import build_tiny_model
    from deepfake_lib.modeling.models import save_model
    from deepfake_lib.runs import mark_complete, write_json

    run = tmp_path / "run"
    save_model(build_tiny_model(seed=7), run / "model")
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(40, int), np.zeros(40, int)]
    scores = rng.normal(size=80) + 1.5 * labels
    test = summarize_scores(labels, scores, threshold=0.3, cllr_prior_real=0.5, n_bootstrap=50)
    write_json(
        run / "metrics.json",
        {"threshold": {"value": 0.3, "chosen_on": "validation EER"}, "data_source": "embedded", "test": test},
    )
    mark_complete(run, "run", writer="test fixture")
    app = serve.create_app(str(run), device="cpu")
    with TestClient(app) as client:
        info = client.get("/model").json()
    assert info["threshold"] == pytest.approx(0.3)
    block = info["metrics"]
    assert block["split"] == "test" and block["n"] == 80 and block["cllr_prior_real"] == 0.5
    for key in ("eer", "min_dcf", "act_dcf", "cllr", "min_cllr", "auc"):
        entry = block["values"][key]
        assert entry["value"] == pytest.approx(test[key])
        assert entry["meaning"] == metric_meanings()[key] and entry["meaning"]
        low, high = entry["ci"]
        assert low <= high
    assert block["values"]["far"]["ci"] == pytest.approx(list(test["ci"]["far"]))


def test_predict_happy_path_and_log(client_and_log):
    client, log_path = client_and_log
    before = len(log_path.read_text().splitlines()) if log_path.exists() else 0
    resp = client.post("/predict", files={"file": ("clip.wav", wav_bytes(6.0), "audio/wav")})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    for key in (
        "label",
        "prob_real",
        "score",
        "threshold",
        "windows",
        "suspicious_segments",
        "model_id",
        "processing_ms",
    ):
        assert key in body
    assert body["label"] == ("Real" if body["score"] >= body["threshold"] else "Fake")
    assert len(body["windows"]) == 2 and body["source"] == "upload 'clip.wav'"
    lines = log_path.read_text().splitlines()
    assert len(lines) == before + 1 and json.loads(lines[-1])["score"] == pytest.approx(body["score"])


def test_raw_audio_body_is_accepted(client_and_log):
    client, _ = client_and_log
    resp = client.post(
        "/predict?filename=raw.wav", content=wav_bytes(1.0), headers={"content-type": "audio/wav"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["source"] == "upload 'raw.wav'"


def test_upload_over_the_limit_is_413(client_and_log):
    client, _ = client_and_log
    big = b"\0" * 2_100_000
    resp = client.post("/predict", files={"file": ("big.wav", big, "audio/wav")})
    assert resp.status_code == 413 and "limit of 2 MB" in resp.json()["detail"]

    def chunks():  # no Content-Length: the limit must hold while streaming
        for _ in range(40):
            yield b"\0" * 65_536

    resp = client.post("/predict", content=chunks(), headers={"content-type": "audio/wav"})
    assert resp.status_code == 413


def test_limit_is_enforced_while_reading():
    import asyncio

    class FakeRequest:
        headers = {"content-type": "audio/wav"}
        query_params: dict = {}

        def __init__(self):
            self.chunks_read = 0

        async def stream(self):
            for _ in range(1000):
                self.chunks_read += 1
                yield b"\0" * 10_000

    request = FakeRequest()
    with pytest.raises(serve.UploadError) as info:
        asyncio.run(serve.read_upload(request, 50_000))
    assert info.value.status == 413
    assert request.chunks_read == 6  # stopped right after the limit, not after 10 MB


def test_non_audio_content_is_415_and_undecodable_audio_is_422(client_and_log):
    client, _ = client_and_log
    resp = client.post("/predict", files={"file": ("notes.txt", b"hello", "text/plain")})
    assert resp.status_code == 415 and "notes.txt" in resp.json()["detail"]
    resp = client.post("/predict", content=b"{}", headers={"content-type": "application/json"})
    assert resp.status_code == 415
    resp = client.post(
        "/predict", files={"file": ("garbage.wav", b"RIFF-not-really-a-wav" * 20, "audio/wav")}
    )
    assert resp.status_code == 422
    detail = resp.json()["detail"]
    assert "garbage.wav" in detail and "not a recognised audio format" in detail
    resp = client.post("/predict", data={"comment": "no file"}, files={"other": (None, b"x")})
    assert resp.status_code == 422 and "no file" in resp.json()["detail"]


def test_no_temporary_files_are_left(client_and_log):
    client, _ = client_and_log
    tmp = tempfile.gettempdir()
    before = set(os.listdir(tmp))
    payload = wav_bytes(
        4.0, sr=48_000, channels=2, subtype="FLOAT"
    )  # 1.5 MB: above Starlette's 1 MB spool size
    assert len(payload) > 1_000_000
    resp = client.post("/predict", files={"file": ("stereo.wav", payload, "audio/x-wav")})
    assert resp.status_code == 200, resp.text
    assert resp.json()["duration_s"] == pytest.approx(4.0, abs=1e-3)
    assert set(os.listdir(tmp)) - before == set()


def test_model_is_loaded_once(model_dir, monkeypatch):
    calls = []
    original = Detector.from_source.__func__

    def counting(cls, *args, **kwargs):
        calls.append(args)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Detector, "from_source", classmethod(counting))
    app = serve.create_app(str(model_dir), device="cpu")
    with TestClient(app) as client:
        assert len(calls) == 1  # loaded at start-up, before any request
        for _ in range(2):
            assert (
                client.post("/predict", files={"file": ("a.wav", wav_bytes(1.0), "audio/wav")}).status_code
                == 200
            )
        assert client.get("/model").status_code == 200
    assert len(calls) == 1


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_real_uvicorn_process(model_dir, tmp_path):
    import httpx

    port = free_loopback_port()
    env = dict(os.environ, DEEPFAKE_MODEL=str(model_dir), DEEPFAKE_LOG=str(tmp_path / "log.jsonl"))
    proc = subprocess.Popen(
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
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not answer /health in time"
            time.sleep(0.5)
        resp = httpx.post(
            f"{base}/predict", files={"file": ("clip.wav", wav_bytes(2.0), "audio/wav")}, timeout=60
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["label"] in ("Real", "Fake")
        assert (
            json.loads((tmp_path / "log.jsonl").read_text().splitlines()[0])["source"] == "upload 'clip.wav'"
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_openapi_declares_the_upload_and_its_errors(client_and_log):
    client, _ = client_and_log
    op = client.get("/openapi.json").json()["paths"]["/predict"]["post"]
    body = op["requestBody"]["content"]
    assert body["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"
    assert body["multipart/form-data"]["schema"]["required"] == ["file"]
    assert {"audio/*", "application/octet-stream"} <= set(body)
    assert {"200", "413", "415", "422"} <= set(op["responses"])
    for code in ("413", "415", "422"):
        assert op["responses"][code]["content"]["application/json"]["schema"]["required"] == ["detail"]


def test_bomb_and_forged_header_are_413_not_500(client_and_log):
    client, _ = client_and_log
    unknown_length = io.BytesIO()
    with sf.SoundFile(unknown_length, "w", 8_000, 1, format="FLAC", subtype="PCM_16") as f:
        for _ in range(5):  # 5 x 2^20 samples at 8 kHz: 655 s, over the default 600 s limit
            f.write(np.full(1 << 20, 0.1, dtype=np.float32))
    data = bytearray(unknown_length.getvalue())
    assert len(data) < 100_000
    field = int.from_bytes(data[18:26], "big")
    data[18:26] = (field & ~((1 << 36) - 1)).to_bytes(8, "big")  # header: length unknown
    resp = client.post("/predict", files={"file": ("bomb.flac", bytes(data), "audio/flac")})
    assert resp.status_code == 413 and "bomb.flac" in resp.json()["detail"]
    assert "decodes to more than 600 s" in resp.json()["detail"]
    data[18:26] = (field | ((1 << 36) - 1)).to_bytes(8, "big")  # header: 2^36 - 1 samples
    resp = client.post("/predict", files={"file": ("forged.flac", bytes(data), "audio/flac")})
    assert resp.status_code == 413 and "header declares 68719476735 samples" in resp.json()["detail"]
