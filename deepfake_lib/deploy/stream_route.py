"""The ``/stream`` WebSocket session: limits, time-outs and close codes around :class:`StreamScorer`.

One session (:func:`serve_stream`) accepts the connection (echoing the ``deepfake-stream``
subprotocol when the client offers it), takes one of ``max_streams`` slots (else closes with
1013), reads the start message (within ``start_timeout_s``), then scores binary messages in a
worker thread as they arrive and sends each window's message back. It ends with the clip's
``result`` message and close code 1000 after the client's ``{"type": "end"}``, or with a close
code and reason (:data:`~deepfake_lib.deploy.streaming.CLOSE_CODES`) when:

* a message is malformed, too large, holds NaN samples or a wrong sample rate (1003/1007/1009);
* the stream passes ``max_duration_s`` of audio, or ``max_duration_s + start_timeout_s`` of wall
  time (a stream that never ends), or sends nothing for ``idle_timeout_s`` (1008);
* the client stops reading: a message not accepted within ``send_timeout_s`` (1008).

Every wait has a time-out and each message is scored before the next is read, so a slow or
vanished client holds no worker thread and its queued messages are bounded by the server's
WebSocket queue; the slot is released on every path.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

from deepfake_lib.audio.io import SERVICE_MAX_DURATION_S
from deepfake_lib.deploy.streaming import CLOSE_CODES, StreamError, StreamScorer, parse_control, parse_start

__all__ = ["STREAM_SUBPROTOCOL", "StreamLimits", "StreamSlots", "serve_stream"]

log = logging.getLogger(__name__)

STREAM_SUBPROTOCOL = "deepfake-stream"
"""WebSocket subprotocol of ``/stream``; echoed when the client offers it."""


@dataclasses.dataclass(frozen=True)
class StreamLimits:
    """Bounds of one stream: audio seconds, open streams, bytes per message and time-outs (s)."""

    max_duration_s: float = SERVICE_MAX_DURATION_S
    max_streams: int = 4
    max_message_bytes: int = 1_000_000
    start_timeout_s: float = 10.0
    idle_timeout_s: float = 30.0
    send_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("max_duration_s", "start_timeout_s", "idle_timeout_s", "send_timeout_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name}={value!r}: must be a positive number of seconds")
        if int(self.max_streams) < 1:
            raise ValueError(f"max_streams={self.max_streams!r}: must be at least 1")
        if int(self.max_message_bytes) < 16:
            raise ValueError(f"max_message_bytes={self.max_message_bytes!r}: must be at least 16")

    @property
    def max_wall_s(self) -> float:
        """Longest a stream may stay open (s): its audio limit plus the start time-out."""
        return self.max_duration_s + self.start_timeout_s


class StreamSlots:
    """Counts open streams (on one event loop) and refuses one over ``limit`` with 1013."""

    def __init__(self, limit: int, on_change: Callable[[int], None] | None = None) -> None:
        self.limit = int(limit)
        self.open = 0
        self._on_change = on_change

    @contextlib.contextmanager
    def take(self) -> Iterator[None]:
        """Hold one slot for the ``with`` block; raises :class:`StreamError` 1013 when all are taken."""
        if self.open >= self.limit:
            raise StreamError(
                CLOSE_CODES["busy"], f"too many streams open (limit {self.limit}); try again later"
            )
        self._change(+1)
        try:
            yield
        finally:
            self._change(-1)

    def _change(self, delta: int) -> None:
        self.open += delta
        if self._on_change is not None:
            self._on_change(self.open)


class _Gone(Exception):
    """The client disconnected."""


async def _receive(websocket: Any, timeout: float, what: str) -> dict[str, Any]:
    """The next ASGI message within ``timeout`` seconds (1008 ``what`` otherwise)."""
    try:
        message = await asyncio.wait_for(websocket.receive(), timeout=max(timeout, 0.001))
    except asyncio.TimeoutError:
        raise StreamError(CLOSE_CODES["policy"], what) from None
    if message["type"] == "websocket.disconnect":
        raise _Gone
    return message


async def _send(websocket: Any, payload: dict[str, Any], timeout: float) -> None:
    """Send one JSON message within ``timeout`` seconds (1008: the client is not reading)."""
    try:
        await asyncio.wait_for(websocket.send_json(payload), timeout=timeout)
    except asyncio.TimeoutError:
        raise StreamError(
            CLOSE_CODES["policy"], f"client not reading: a message waited over {timeout:g} s"
        ) from None


async def _close(websocket: Any, code: int, reason: str, detail: str | None, timeout: float) -> None:
    """Best effort: an ``error`` message with the full detail, then the close frame."""
    with contextlib.suppress(Exception):
        if detail is not None:
            await asyncio.wait_for(
                websocket.send_json({"type": "error", "code": code, "detail": detail}), timeout
            )
        await asyncio.wait_for(websocket.close(code=code, reason=reason), timeout)


async def _session(
    websocket: Any, detector: Any, limits: StreamLimits, run_sync: Callable[..., Any], observe: Any
) -> None:
    """Read, score and answer until the end message (see the module docstring)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.max_wall_s
    first = await _receive(
        websocket, limits.start_timeout_s, f"no start message within {limits.start_timeout_s:g} s"
    )
    if first.get("text") is None:
        raise StreamError(CLOSE_CODES["policy"], "the first message must be the JSON start message")
    rate, fmt = parse_start(first["text"])
    scorer = StreamScorer(
        detector,
        rate,
        fmt,
        max_duration_s=limits.max_duration_s,
        max_message_bytes=limits.max_message_bytes,
    )
    ready = {
        "type": "ready",
        "model_id": detector.model_id,
        "sample_rate": rate,
        "format": fmt,
        "window_s": detector.window_s,
        "hop_s": detector.hop_s,
        "threshold": detector.threshold,
        "max_duration_s": limits.max_duration_s,
        "max_message_bytes": limits.max_message_bytes,
    }
    await _send(websocket, ready, limits.send_timeout_s)
    while True:
        left = deadline - loop.time()
        if left <= 0:
            raise StreamError(CLOSE_CODES["policy"], f"stream open longer than {limits.max_wall_s:g} s")
        message = await _receive(
            websocket, min(limits.idle_timeout_s, left), f"no message for {limits.idle_timeout_s:g} s"
        )
        if message.get("bytes") is not None:
            for out in await run_sync(scorer.push, message["bytes"]):
                observe(out)
                await _send(websocket, out, limits.send_timeout_s)
        elif parse_control(message.get("text") or "") == "end":
            break
    windows, prediction = await run_sync(scorer.finish)
    for out in windows:
        observe(out)
        await _send(websocket, out, limits.send_timeout_s)
    observe(prediction)
    await _send(websocket, {"type": "result", **prediction.to_dict()}, limits.send_timeout_s)
    await _close(websocket, CLOSE_CODES["normal"], "done", None, limits.send_timeout_s)


async def serve_stream(
    websocket: Any,
    load_detector: Callable[[], Any],
    limits: StreamLimits,
    slots: StreamSlots,
    *,
    observe: Callable[[Any], None] | None = None,
) -> int:
    """Run one ``/stream`` session on a Starlette ``websocket``; returns the close code (1000 on
    success, 1006 when the client vanished). ``load_detector`` returns the shared detector;
    ``observe`` is called with each window message and the final :class:`Prediction` (metrics)."""
    from starlette.concurrency import run_in_threadpool
    from starlette.websockets import WebSocketDisconnect

    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol=STREAM_SUBPROTOCOL if STREAM_SUBPROTOCOL in offered else None)
    try:
        with slots.take():
            detector = await run_in_threadpool(load_detector)
            await _session(websocket, detector, limits, run_in_threadpool, observe or (lambda _: None))
        return CLOSE_CODES["normal"]
    except StreamError as exc:
        await _close(websocket, exc.code, exc.reason, exc.detail, limits.send_timeout_s)
        return exc.code
    except (_Gone, WebSocketDisconnect, OSError) as exc:  # the client vanished mid-stream
        log.info("stream client gone: %s", type(exc).__name__)
        return 1006
    except Exception:  # noqa: BLE001 - scoring failed: say so and free the slot
        log.exception("stream failed")
        await _close(
            websocket, CLOSE_CODES["internal"], "internal error while scoring", None, limits.send_timeout_s
        )
        return CLOSE_CODES["internal"]
