"""Prometheus metrics at ``/metrics``: requests and errors by route and status, latency
histograms, streams open, windows scored, the score histogram and the share labelled spoof,
with the model and runtime as labels."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")
from fastapi.testclient import TestClient  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from deepfake_lib.deploy import service  # noqa: E402
from deepfake_lib.deploy.monitoring import RECENT_VERDICTS, ServiceMetrics  # noqa: E402


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted labels): value}`` of a text exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict, name: str, **labels: str) -> float:
    matches = [v for (n, ls), v in found.items() if n == name and set(labels.items()) <= set(ls)]
    assert matches, f"no sample {name} {labels}"
    return sum(matches)


def wav(seconds: float, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16_000)) / 16_000
    buf = io.BytesIO()
    sf.write(
        buf,
        (0.2 * np.sin(2 * np.pi * 200 * t) + 0.02 * rng.standard_normal(t.size)).astype(np.float32),
        16_000,
        format="WAV",
    )
    return buf.getvalue()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from deepfake_lib.modeling.frontends import build_tiny_model
    from deepfake_lib.modeling.models import save_model

    model = save_model(build_tiny_model(seed=7), tmp_path_factory.mktemp("metrics") / "model")
    app = service.create_app(str(model), device="cpu", runtime="torch", window_s=1.0, hop_s=0.5)
    with TestClient(app) as c:
        yield c


def test_requests_scores_and_windows_are_counted(client) -> None:
    before = samples(client.get("/metrics").text)
    body = client.post("/predict", files={"file": ("a.wav", wav(3.0), "audio/wav")}).json()
    client.post("/predict", files={"file": ("bad.wav", b"not audio at all", "audio/wav")})
    client.get("/no-such-page-1"), client.get("/no-such-page-2")
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    after = samples(response.text)
    model = {"model": body["model_id"], "runtime": "torch"}

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - (
            value(before, name, **labels)
            if any(n == name and set(labels.items()) <= set(ls) for n, ls in before)
            else 0.0
        )

    assert delta("deepfake_requests_total", route="/predict", status="200") == 1
    assert delta("deepfake_requests_total", route="/predict", status="422") == 1
    assert delta("deepfake_request_errors_total", route="/predict", status="422") == 1
    assert delta("deepfake_requests_total", route="<unmatched>", status="404") == 2  # no label per path
    assert delta("deepfake_windows_scored_total", source="predict", **model) == body["n_windows"] == 5
    assert delta("deepfake_score_count", source="predict", **model) == 1
    le = "+Inf"
    assert delta("deepfake_score_bucket", source="predict", le=le, **model) == 1
    assert delta("deepfake_verdicts_total", label=body["label"], **model) == 1
    assert value(after, "deepfake_decode_seconds_count") >= 1
    assert value(after, "deepfake_inference_seconds_count", **model) >= 1
    assert value(after, "deepfake_request_duration_seconds_count", route="/predict") >= 2
    assert value(after, "deepfake_model_info", window_s="1", hop_s="0.5", **model) == 1


def test_streams_are_counted_while_open_and_their_windows_scored(client) -> None:
    def open_streams() -> float:
        return value(samples(client.get("/metrics").text), "deepfake_streams_open")

    assert open_streams() == 0
    with client.websocket_connect("/stream") as ws:
        ws.send_text(json.dumps({"sample_rate": 16_000}))
        ws.receive_json()
        assert open_streams() == 1
        ws.send_bytes(np.frombuffer(wav(2.0)[44:], "<i2").astype("<f4").tobytes())
        ws.send_text(json.dumps({"type": "end"}))
        while ws.receive_json()["type"] != "result":
            pass
    found = samples(client.get("/metrics").text)
    assert open_streams() == 0
    assert value(found, "deepfake_windows_scored_total", source="stream") == 3
    assert value(found, "deepfake_inference_seconds_count") >= 4  # the upload's call and 3 windows
    assert value(found, "deepfake_score_count", source="stream") == 1
    assert value(found, "deepfake_requests_total", route="/stream", method="WEBSOCKET", status="1000") >= 1


def test_spoof_share_follows_the_recent_verdicts() -> None:
    metrics = ServiceMetrics()
    metrics.set_model(
        {"id": "m", "runtime": "torch", "device": "cpu", "window_s": 4, "hop_s": 2, "threshold": 0}
    )
    for label in ["Fake"] * 30 + ["Real"] * 10:
        metrics.observe_prediction(
            {"score": -1.0 if label == "Fake" else 1.0, "label": label, "windows": []}, "stream"
        )
    found = samples(metrics.render().decode())
    assert value(found, "deepfake_spoof_share_recent", model="m", runtime="torch") == pytest.approx(0.75)
    for _ in range(RECENT_VERDICTS):
        metrics.observe_prediction({"score": 2.0, "label": "Real", "windows": []}, "stream")
    found = samples(metrics.render().decode())
    assert (
        value(found, "deepfake_spoof_share_recent", model="m", runtime="torch") == 0.0
    )  # only the last N count
    assert value(found, "deepfake_verdicts_total", model="m", label="Fake") == 30
