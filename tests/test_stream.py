"""Streaming over the ``/stream`` WebSocket: the same window scores as ``Detector.predict``,
bounded memory, and a close code with a reason for every kind of bad input."""

from __future__ import annotations

import asyncio
import io
import json

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from deepfake_lib.deploy import service  # noqa: E402
from deepfake_lib.deploy.stream_route import StreamLimits, _send  # noqa: E402
from deepfake_lib.deploy.streaming import (  # noqa: E402
    CLOSE_CODES,
    SampleBuffer,
    StreamError,
    StreamScorer,
    parse_control,
    parse_start,
)
from deepfake_lib.scoring import window_spans  # noqa: E402

SR = 16_000


def tone(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    f = 150 + 40 * np.sin(2 * np.pi * 0.7 * t)  # a wandering pitch: windows differ
    wave = 0.25 * np.sin(2 * np.pi * np.cumsum(f) / sr) + 0.03 * rng.standard_normal(t.size)
    return wave.astype(np.float32)


def wav_bytes(wave: np.ndarray, sr: int = SR, subtype: str = "FLOAT") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


class FakeDetector:
    """Window logits from the window's own samples (mean and energy): scores that differ per
    window and depend on exactly which samples a window holds."""

    def __init__(self, window_s: float = 1.0, hop_s: float = 0.5) -> None:
        self.window_samples, self.hop_samples = int(window_s * SR), int(hop_s * SR)
        self.window_s, self.hop_s = window_s, hop_s
        self.threshold, self.model_id = 0.0, "fake"
        self.calls = 0

    def window_logits(self, waves):
        self.calls += 1
        return np.array([[float(np.mean(w)) * 50, float(np.sqrt(np.mean(w**2))) * 10 - 1.5] for w in waves])


def stream_through(scorer: StreamScorer, data: bytes, sizes: list[int]) -> tuple[list[dict], object]:
    out, k, i = [], 0, 0
    while k < len(data):
        n = sizes[i % len(sizes)]
        out += scorer.push(data[k : k + n])
        k, i = k + n, i + 1
    tail, prediction = scorer.finish()
    return out + tail, prediction


# ---------------------------------------------------------------- the scorer, no model
@pytest.mark.parametrize("seconds", [0.5, 1.0, 2.75, 3.0, 7.3])
def test_stream_windows_match_the_whole_file_rule(seconds: float) -> None:
    det = FakeDetector()
    wave = tone(seconds)
    scorer = StreamScorer(det, SR, "float32", max_duration_s=60, max_message_bytes=64_000)
    # odd message sizes: samples split across messages must be joined
    messages, prediction = stream_through(scorer, wave.astype("<f4").tobytes(), [4001, 13, 2, 9998])
    spans = window_spans(wave.shape[0], det.window_samples, det.hop_samples)
    expected = det.window_logits([wave[a:b] for a, b in spans])
    got = sorted(messages, key=lambda m: m["start_s"])
    assert [(m["start_s"], m["end_s"]) for m in got] == [(a / SR, b / SR) for a, b in spans]
    assert [m["score"] for m in got] == pytest.approx(list(expected[:, 1] - expected[:, 0]), abs=1e-5)
    assert prediction.n_windows == len(spans)
    assert prediction.score == pytest.approx(float(np.mean(expected[:, 1] - expected[:, 0])), abs=1e-5)
    # the running clip score of the last window message is the clip score over all windows so far
    assert messages[-1]["clip_score"] == pytest.approx(prediction.score, abs=1e-5)
    assert [m["index"] for m in messages] == list(range(len(spans)))


def test_windows_arrive_as_soon_as_they_are_complete() -> None:
    det = FakeDetector()
    scorer = StreamScorer(det, SR, "float32", max_duration_s=60, max_message_bytes=64_000)
    wave = tone(2.0).astype("<f4")
    assert scorer.push(wave[:15_999].tobytes()) == []  # one sample short of the first window
    first = scorer.push(wave[15_999:16_000].tobytes())
    assert [(m["start_s"], m["end_s"]) for m in first] == [(0.0, 1.0)]
    assert len(scorer.push(wave[16_000:].tobytes())) == 2  # windows at 0.5 s and 1.0 s


def test_int16_and_other_rates_are_resampled_like_the_decoder() -> None:
    from deepfake_lib.audio.io import load_audio

    det = FakeDetector()
    wave44 = tone(3.3, sr=44_100)
    pcm = (np.clip(wave44, -1, 1) * 32767).astype("<i2")
    scorer = StreamScorer(det, 44_100, "int16", max_duration_s=60, max_message_bytes=64_000)
    messages, prediction = stream_through(scorer, pcm.tobytes(), [8820, 3, 30_000])
    decoded = load_audio(wav_bytes(pcm, 44_100, subtype="PCM_16"), target_sr=SR)  # what predict sees
    spans = window_spans(decoded.shape[0], det.window_samples, det.hop_samples)
    expected = det.window_logits([decoded[a:b] for a, b in spans])
    assert prediction.n_windows == len(spans)
    assert sorted(m["score"] for m in messages) == pytest.approx(
        sorted(expected[:, 1] - expected[:, 0]), abs=1e-4
    )


def test_memory_stays_bounded_on_a_long_stream() -> None:
    det = FakeDetector()
    scorer = StreamScorer(det, SR, "float32", max_duration_s=10_000, max_message_bytes=16_000)
    held = scorer.buffer_samples
    chunk = tone(0.25).astype("<f4").tobytes()
    for _ in range(4 * 60 * 5):  # five minutes of audio
        scorer.push(chunk)
    assert scorer.buffer_samples == held  # never reallocated
    assert held < 2 * det.window_samples + 16_000
    assert scorer.n_windows == 599


def test_sample_buffer_refuses_what_does_not_fit() -> None:
    buf = SampleBuffer(10)
    buf.append(np.arange(8, dtype=np.float32), keep_from=0)
    with pytest.raises(MemoryError):
        buf.append(np.zeros(5, np.float32), keep_from=0)  # nothing may be dropped
    buf.append(np.zeros(5, np.float32), keep_from=6)
    assert buf.view(6, 8).tolist() == [6.0, 7.0]
    with pytest.raises(IndexError):
        buf.view(0, 2)


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ("not json", 1007, "not JSON"),
        ("[1, 2]", 1007, "JSON object"),
        ('{"sample_rate": 44100.5}', 1007, "whole number"),
        ('{"sample_rate": 10}', 1007, "outside"),
        ('{"sample_rate": true}', 1007, "whole number"),
        ('{"sample_rate": 16000, "format": "mp3"}', 1003, "format"),
        ('{"sample_rate": 16000, "gain": 2}', 1003, "gain"),
    ],
)
def test_bad_start_messages_name_the_problem(text: str, code: int, words: str) -> None:
    with pytest.raises(StreamError) as err:
        parse_start(text)
    assert err.value.code == code and words in err.value.detail
    assert len(err.value.reason.encode()) <= 123


def test_start_and_control_messages() -> None:
    assert parse_start('{"sample_rate": 48000, "format": "int16"}') == (48_000, "int16")
    assert parse_start('{"sample_rate": 16000}') == (16_000, "float32")
    assert parse_control('{"type": "end"}') == "end"
    with pytest.raises(StreamError, match="only"):
        parse_control('{"type": "pause"}')


def test_nan_huge_and_endless_streams_are_refused() -> None:
    det = FakeDetector()
    scorer = StreamScorer(det, SR, "float32", max_duration_s=1.0, max_message_bytes=8_000)
    bad = np.zeros(100, "<f4")
    bad[17] = np.nan
    with pytest.raises(StreamError) as err:
        scorer.push(bad.tobytes())
    assert err.value.code == CLOSE_CODES["invalid"] and "NaN" in err.value.detail
    with pytest.raises(StreamError) as err:
        scorer.push(b"\0" * 8_004)
    assert err.value.code == CLOSE_CODES["too_big"]
    with pytest.raises(StreamError) as err:
        for _ in range(10):
            scorer.push(tone(0.12).astype("<f4").tobytes())
    assert err.value.code == CLOSE_CODES["policy"] and "limit of 1 s" in err.value.detail


def test_silent_or_too_short_streams_get_no_verdict() -> None:
    for wave, words in ((np.zeros(8000, "<f4"), "silence"), (tone(0.05), "too short")):
        scorer = StreamScorer(FakeDetector(), SR, "float32", max_duration_s=10, max_message_bytes=64_000)
        scorer.push(wave.astype("<f4").tobytes())
        with pytest.raises(StreamError, match=words):
            scorer.finish()


def test_a_client_that_stops_reading_is_closed_not_waited_for() -> None:
    class Stuck:
        async def send_json(self, payload):
            await asyncio.sleep(3600)

    with pytest.raises(StreamError) as err:
        asyncio.run(_send(Stuck(), {"type": "window"}, timeout=0.05))
    assert err.value.code == CLOSE_CODES["policy"] and "not reading" in err.value.detail


# ---------------------------------------------------------------- the WebSocket route
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from deepfake_lib.modeling.frontends import build_tiny_model
    from deepfake_lib.modeling.models import save_model

    return save_model(build_tiny_model(seed=7), tmp_path_factory.mktemp("stream") / "model")


@pytest.fixture(scope="module")
def client(model_dir):
    limits = StreamLimits(max_duration_s=20, max_streams=2, max_message_bytes=200_000, idle_timeout_s=2.0)
    app = service.create_app(
        str(model_dir), device="cpu", runtime="torch", window_s=1.0, hop_s=0.5, stream_limits=limits
    )
    with TestClient(app) as c:
        yield c


def run_stream(client, start: dict, chunks: list[bytes], end: bool = True) -> tuple[list[dict], dict]:
    messages = []
    with client.websocket_connect("/stream", subprotocols=["deepfake-stream"]) as ws:
        ws.send_text(json.dumps(start))
        messages.append(ws.receive_json())
        for c in chunks:
            ws.send_bytes(c)
        if end:
            ws.send_text(json.dumps({"type": "end"}))
        while True:
            try:
                messages.append(ws.receive_json())
            except WebSocketDisconnect as exc:
                return messages, {"code": exc.code, "reason": exc.reason}


@pytest.mark.parametrize(("sr", "fmt"), [(16_000, "float32"), (22_050, "int16")])
def test_streamed_file_scores_equal_detector_predict(client, sr: int, fmt: str) -> None:
    wave = tone(4.3, sr=sr, seed=3)
    if fmt == "int16":
        samples = (wave * 32767).astype("<i2")
        file_bytes = wav_bytes(samples, sr, subtype="PCM_16")
    else:
        samples = wave.astype("<f4")
        file_bytes = wav_bytes(samples, sr)
    data = samples.tobytes()
    chunks = [data[k : k + 7_001] for k in range(0, len(data), 7_001)]
    messages, closed = run_stream(client, {"sample_rate": sr, "format": fmt}, chunks)
    assert closed["code"] == 1000, closed
    ready, *windows, result = messages
    assert ready["type"] == "ready" and ready["window_s"] == 1.0 and ready["hop_s"] == 0.5
    whole = client.app.state.load_detector().predict(file_bytes)
    assert result["type"] == "result" and result["n_windows"] == whole.n_windows == len(windows)
    got = sorted(windows, key=lambda m: m["start_s"])
    for mine, ref in zip(got, whole.windows):
        assert (mine["start_s"], mine["end_s"]) == pytest.approx((ref["start_s"], ref["end_s"]))
        assert mine["score"] == pytest.approx(ref["score"], abs=1e-4)
    assert result["score"] == pytest.approx(whole.score, abs=1e-4)
    assert result["label"] == whole.label


@pytest.mark.parametrize(
    ("start", "chunks", "code", "words"),
    [
        ({"sample_rate": 123_456_789}, [], 1007, "sample_rate"),
        ({"sample_rate": 16_000}, [np.array([0.1, np.nan], "<f4").tobytes()], 1007, "NaN"),
        ({"sample_rate": 16_000}, [b"\0" * 200_004], 1009, "over the limit"),
        ({"sample_rate": 16_000}, [np.full(16_000 * 3, 0.1, "<f4").tobytes()] * 8, 1008, "limit of 20 s"),
    ],
)
def test_bad_streams_are_closed_with_a_reason(client, start, chunks, code, words) -> None:
    messages, closed = run_stream(client, start, chunks, end=False)
    assert closed["code"] == code and words in closed["reason"], closed
    assert messages[-1]["type"] == "error" and words in messages[-1]["detail"]


def test_binary_before_start_and_idle_streams_are_closed(client) -> None:
    with client.websocket_connect("/stream") as ws:
        ws.send_bytes(b"\0\0\0\0")
        assert ws.receive_json()["type"] == "error"
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
    assert exc.value.code == 1008 and "start message" in exc.value.reason
    with client.websocket_connect("/stream") as ws:
        ws.send_text(json.dumps({"sample_rate": 16_000}))
        ws.receive_json()
        assert ws.receive_json()["type"] == "error"  # nothing sent for idle_timeout_s
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
    assert exc.value.code == 1008 and "no message for 2 s" in exc.value.reason


def test_too_many_streams_and_a_vanished_client(client) -> None:
    start = json.dumps({"sample_rate": 16_000})
    with client.websocket_connect("/stream") as a, client.websocket_connect("/stream") as b:
        a.send_text(start), b.send_text(start)
        a.receive_json(), b.receive_json()
        with client.websocket_connect("/stream") as c:
            assert c.receive_json()["type"] == "error"
            with pytest.raises(WebSocketDisconnect) as exc:
                c.receive_json()
        assert exc.value.code == 1013 and "too many streams" in exc.value.reason
        a.send_bytes(tone(1.2).tobytes())
        a.receive_json()
    # a and b vanished without an end message: their slots are free again
    messages, closed = run_stream(client, {"sample_rate": 16_000}, [tone(1.0).tobytes()])
    assert closed["code"] == 1000 and messages[-1]["type"] == "result"
    assert "deepfake_streams_open 0.0" in client.get("/metrics").text
