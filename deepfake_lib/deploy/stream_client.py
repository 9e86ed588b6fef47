"""A small client of the service's ``/stream`` WebSocket, for scripts and benchmarks.

::

    from deepfake_lib.deploy.stream_client import stream_audio
    out = stream_audio("ws://127.0.0.1:8000/stream", "clip.wav", realtime=True)
    out.result["label"], [w["score"] for w in out.windows]

The audio is decoded and resampled to 16 kHz here (:func:`deepfake_lib.audio.io.load_audio`, as
``Detector.predict`` does), then sent as float32 messages of ``chunk_s`` seconds, paced at real
time when ``realtime`` (as a microphone would), else as fast as the server takes them. Each
received window is stamped with its latency: the time from sending the message that completed it
to receiving its score. The command line is ``deepfake-lib stream FILE --url ...``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from deepfake_lib import TARGET_SAMPLE_RATE
from deepfake_lib.audio.io import load_audio
from deepfake_lib.deploy.stream_route import STREAM_SUBPROTOCOL

__all__ = ["StreamClosed", "StreamOutcome", "stream_audio"]


class StreamClosed(Exception):
    """The server closed the stream before its result: ``code`` and ``reason`` of the close frame,
    ``detail`` of its ``error`` message when it sent one."""

    def __init__(self, code: int | None, reason: str, detail: str = "") -> None:
        super().__init__(f"stream closed ({code}): {detail or reason}")
        self.code = code
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass
class StreamOutcome:
    """What a stream returned: ``ready`` (the server's first message), ``windows`` (one dict per
    window, with ``latency_s`` added), ``result`` (the clip's prediction dict), ``audio_s`` (s of
    audio sent) and ``wall_s`` (s from the first message sent to the result)."""

    ready: dict[str, Any]
    windows: list[dict[str, Any]]
    result: dict[str, Any]
    audio_s: float
    wall_s: float

    @property
    def realtime_factor(self) -> float:
        """Audio seconds scored per wall-clock second (above 1: faster than real time)."""
        return self.audio_s / self.wall_s if self.wall_s > 0 else float("inf")


def stream_audio(
    url: str,
    audio: str | os.PathLike[str] | bytes | np.ndarray,
    *,
    sample_rate: int | None = None,
    token: str | None = None,
    chunk_s: float = 0.1,
    realtime: bool = False,
    timeout_s: float = 60.0,
    on_window: Callable[[dict[str, Any]], None] | None = None,
) -> StreamOutcome:
    """Stream ``audio`` (a file, encoded bytes, or a waveform ``[samples]`` with ``sample_rate``
    Hz) to ``url`` (``ws://host:port/stream``) and return the :class:`StreamOutcome`.

    ``token`` is sent as a bearer header. ``chunk_s`` is the audio per message (s); every wait is
    bounded by ``timeout_s`` seconds. Raises :class:`StreamClosed` when the server closes early,
    ``TimeoutError`` when it stops answering."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    if not chunk_s > 0:
        raise ValueError(f"chunk_s={chunk_s!r}: must be positive")
    wave = load_audio(audio, sample_rate, target_sr=TARGET_SAMPLE_RATE)
    step = max(1, int(round(chunk_s * TARGET_SAMPLE_RATE)))
    headers = {"Authorization": f"Bearer {token}"} if token else None
    windows: list[dict[str, Any]] = []
    sent_at: list[tuple[int, float]] = []  # (end sample of a message, time it was sent)
    state: dict[str, Any] = {"result": None, "error": ""}

    def handle(text: str | bytes) -> None:
        message = json.loads(text)
        if message.get("type") == "window":
            end = int(round(message["end_s"] * TARGET_SAMPLE_RATE))
            sent = next(
                (t for e, t in sent_at if e >= end), sent_at[-1][1] if sent_at else time.perf_counter()
            )
            message["latency_s"] = time.perf_counter() - sent
            windows.append(message)
            if on_window is not None:
                on_window(message)
        elif message.get("type") == "result":
            state["result"] = message
            state["finished"] = time.perf_counter()
        elif message.get("type") == "error":
            state["error"] = str(message.get("detail", ""))

    def drain(ws: Any, wait: float) -> None:
        """Handle messages until none arrives within ``wait`` seconds."""
        while True:
            try:
                handle(ws.recv(timeout=max(wait, 0.0)))
            except TimeoutError:
                return
            wait = 0.0

    with connect(
        url,
        subprotocols=[STREAM_SUBPROTOCOL],
        additional_headers=headers,
        open_timeout=timeout_s,
        close_timeout=5,
        ping_interval=None,  # every wait below has its own time-out; a server busy scoring a backlog
        # cannot answer pings in time, and that must not end a stream that is still being scored
    ) as ws:
        # small messages at once, not held back for the previous one's (delayed) ACK
        ws.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            ws.send(json.dumps({"sample_rate": TARGET_SAMPLE_RATE, "format": "float32"}))
            ready = json.loads(ws.recv(timeout=timeout_s))
            started = time.perf_counter()
            for a in range(0, wave.shape[0], step):
                if realtime:  # the message is due when its last sample would have been recorded
                    due = started + min(a + step, wave.shape[0]) / TARGET_SAMPLE_RATE
                    drain(ws, due - time.perf_counter())
                    while time.perf_counter() < due:
                        time.sleep(due - time.perf_counter())
                piece = np.ascontiguousarray(wave[a : a + step], dtype="<f4")
                ws.send(piece.tobytes())
                sent_at.append((a + piece.shape[0], time.perf_counter()))
                drain(ws, 0.0)
            ws.send(json.dumps({"type": "end"}))
            deadline = time.perf_counter() + timeout_s
            while state["result"] is None:
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"no result within {timeout_s:g} s after the end of the stream")
                drain(ws, min(1.0, deadline - time.perf_counter()))
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            if state["result"] is None or rcvd is None or rcvd.code != 1000:
                raise StreamClosed(
                    rcvd.code if rcvd else None, rcvd.reason if rcvd else "", state["error"]
                ) from None
    return StreamOutcome(
        ready=ready,
        windows=windows,
        result=state["result"],
        audio_s=wave.shape[0] / TARGET_SAMPLE_RATE,
        wall_s=state["finished"] - started,
    )
