"""Score a live stream of PCM samples window by window, as :meth:`Detector.predict` scores a file.

The protocol, transport-free (the WebSocket route of :mod:`deepfake_lib.deploy.stream_route`
and the client of :mod:`deepfake_lib.deploy.stream_client` speak it):

1. the client opens with one JSON text message, :func:`parse_start` (``{"sample_rate": 16000,
   "format": "float32"}``; ``"format"`` is ``"float32"`` or ``"int16"``, little-endian, mono);
2. then binary messages of samples, of any size (a sample split across two messages is joined);
3. then ``{"type": "end"}``: the last window is scored and the clip's result follows.

:class:`StreamScorer` turns the samples into the messages the server sends back: one
``{"type": "window", ...}`` per window of the detector's ``window_s``/``hop_s`` (start and end in
seconds, score, P(bona fide), label, the running clip score over the windows so far, and the
model time it took in ms, shared among the windows of one call), and at
the end ``{"type": "result", ...}``, the :class:`~deepfake_lib.deploy.detector.Prediction` of the
whole stream. Audio at another rate is resampled to 16 kHz as it arrives by
:class:`~deepfake_lib.audio.signal.BlockResampler`, whose output equals resampling the whole signal,
and the windows follow :func:`deepfake_lib.scoring.window_spans`: windows every ``hop`` samples
as soon as they are complete, and at the end the last one moved back to end at the end of the
audio (audio shorter than a window scored whole). So a streamed file gets the window scores and
clip score that ``Detector.predict`` gives the same file (float rounding aside).

Memory is bounded whatever the stream's length: :class:`SampleBuffer` keeps only the samples a
future window can still need (at most one window plus one message), and the per-window logits
(16 bytes a window) are bounded by ``max_duration_s``. Bad input raises :class:`StreamError`
with a WebSocket close code and a short reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from deepfake_lib import LABEL_NAMES, TARGET_SAMPLE_RATE
from deepfake_lib.audio.io import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, SILENCE_PEAK
from deepfake_lib.audio.signal import BlockResampler
from deepfake_lib.deploy.detector import aggregate_windows
from deepfake_lib.deploy.prediction_log import Prediction
from deepfake_lib.evaluation.probability import score_from_logits, softmax_probability
from deepfake_lib.scoring import MIN_DURATION_S, window_spans

__all__ = [
    "CLOSE_CODES",
    "SAMPLE_FORMATS",
    "StreamError",
    "StreamScorer",
    "SampleBuffer",
    "WindowScorer",
    "parse_control",
    "parse_start",
]

SAMPLE_FORMATS: dict[str, np.dtype] = {"float32": np.dtype("<f4"), "int16": np.dtype("<i2")}
"""Sample formats of the binary messages: little-endian float32 in [-1, 1] or int16."""

CLOSE_CODES: dict[str, int] = {
    "normal": 1000,
    "unsupported": 1003,  # a format or message type the protocol does not have
    "invalid": 1007,  # malformed JSON, a wrong sample rate, NaN or infinite samples
    "policy": 1008,  # limits: duration, time-outs, no token, out-of-order messages
    "too_big": 1009,  # a message larger than the limit
    "internal": 1011,  # scoring failed on the server
    "busy": 1013,  # too many streams open: try again later
}
"""WebSocket close codes (RFC 6455) the stream uses, by cause."""

MAX_REASON_BYTES = 123
"""Longest close reason a WebSocket close frame can carry (UTF-8 bytes)."""

RESAMPLE_BLOCK_S = 0.05
"""Input block (s) after which the resampler releases output: bounds the added latency."""


class StreamError(Exception):
    """A stream refused or stopped: ``code`` is the WebSocket close code, ``reason`` a short text
    (cut to :data:`MAX_REASON_BYTES` bytes) and ``detail`` the full message."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = int(code)
        self.detail = detail
        self.reason = detail.encode("utf-8")[:MAX_REASON_BYTES].decode("utf-8", "ignore")


class WindowScorer(Protocol):
    """What :class:`StreamScorer` needs of a detector (a :class:`~deepfake_lib.deploy.detector.Detector`)."""

    window_samples: int
    hop_samples: int
    threshold: float
    model_id: str

    def window_logits(self, waves: Sequence[np.ndarray]) -> np.ndarray: ...


def _load_json(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise StreamError(CLOSE_CODES["invalid"], f"{what} is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(value, dict):
        raise StreamError(CLOSE_CODES["invalid"], f"{what} must be a JSON object")
    return value


def parse_start(text: str) -> tuple[int, str]:
    """``(sample_rate, format)`` from the stream's first message, a JSON object such as
    ``{"sample_rate": 16000, "format": "float32"}`` (``format`` defaults to float32).

    Raises :class:`StreamError`: 1007 for malformed JSON or a sample rate that is not a whole
    number of Hz in [1000, 384000], 1003 for an unknown format or key."""
    start = _load_json(text, "start message")
    unknown = sorted(set(start) - {"sample_rate", "format", "type"})
    if unknown or start.get("type", "start") != "start":
        raise StreamError(
            CLOSE_CODES["unsupported"],
            f"start message: unknown key(s) {', '.join(unknown) or 'type'}; send sample_rate and format",
        )
    rate = start.get("sample_rate")
    if (
        isinstance(rate, bool)
        or not isinstance(rate, (int, float))
        or not math.isfinite(rate)
        or rate != int(rate)
    ):
        raise StreamError(CLOSE_CODES["invalid"], f"sample_rate={rate!r}: must be a whole number of Hz")
    if not MIN_SAMPLE_RATE <= int(rate) <= MAX_SAMPLE_RATE:
        raise StreamError(
            CLOSE_CODES["invalid"],
            f"sample_rate={int(rate)} Hz is outside [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] Hz",
        )
    fmt = start.get("format", "float32")
    if fmt not in SAMPLE_FORMATS:
        raise StreamError(
            CLOSE_CODES["unsupported"], f"format={fmt!r}: expected one of {', '.join(SAMPLE_FORMATS)}"
        )
    return int(rate), str(fmt)


def parse_control(text: str) -> str:
    """The ``type`` of a text message after the start one; only ``"end"`` exists (1003 otherwise)."""
    kind = _load_json(text, "control message").get("type")
    if kind != "end":
        raise StreamError(CLOSE_CODES["unsupported"], f'control message type {kind!r}: only "end" is known')
    return "end"


class SampleBuffer:
    """A fixed-capacity buffer of the newest 16 kHz samples, addressed by absolute position.

    ``capacity`` samples are allocated once; :meth:`append` drops samples before ``keep_from``
    (moving the rest to the front) when space runs out, and raises ``MemoryError`` when the kept
    samples and the new ones still do not fit: memory never grows with the stream's length.
    """

    def __init__(self, capacity: int) -> None:
        self._data = np.zeros(int(capacity), dtype=np.float32)
        self._offset = 0  # absolute position of _data[0]
        self._length = 0

    @property
    def capacity(self) -> int:
        """Samples allocated (fixed for the buffer's life)."""
        return int(self._data.shape[0])

    @property
    def end(self) -> int:
        """Absolute position one past the newest sample (= samples appended so far)."""
        return self._offset + self._length

    def append(self, samples: np.ndarray, keep_from: int) -> None:
        """Add ``samples [n]``; samples before absolute position ``keep_from`` may be dropped."""
        n = int(samples.shape[0])
        if self._length + n > self._data.shape[0]:
            drop = max(0, min(int(keep_from), self.end) - self._offset)
            self._data[: self._length - drop] = self._data[drop : self._length]
            self._offset += drop
            self._length -= drop
        if self._length + n > self._data.shape[0]:
            raise MemoryError(f"stream buffer of {self._data.shape[0]} samples is full")
        self._data[self._length : self._length + n] = samples
        self._length += n

    def view(self, start: int, end: int) -> np.ndarray:
        """A copy of the samples at absolute positions ``[start, end)`` (they must still be held)."""
        if start < self._offset or end > self.end or start > end:
            raise IndexError(f"samples [{start}, {end}) are not held (held: [{self._offset}, {self.end}))")
        return self._data[start - self._offset : end - self._offset].copy()


class StreamScorer:
    """Scores one stream: :meth:`push` binary messages, then :meth:`finish`. Not thread-safe;
    one per stream. ``detector`` gives the window, hop, threshold and the model call;
    ``sample_rate`` (Hz) and ``fmt`` come from :func:`parse_start`; ``max_duration_s`` (s) and
    ``max_message_bytes`` bound the stream."""

    def __init__(
        self,
        detector: WindowScorer,
        sample_rate: int,
        fmt: str,
        *,
        max_duration_s: float,
        max_message_bytes: int,
    ) -> None:
        self.detector = detector
        self.sample_rate = int(sample_rate)
        self.dtype = SAMPLE_FORMATS[fmt]
        self.max_duration_s = float(max_duration_s)
        self.max_message_bytes = int(max_message_bytes)
        self.window = int(detector.window_samples)
        self.hop = int(detector.hop_samples)
        self._resampler = BlockResampler(
            self.sample_rate,
            TARGET_SAMPLE_RATE,
            block_frames=max(1, int(self.sample_rate * RESAMPLE_BLOCK_S)),
        )
        ratio = TARGET_SAMPLE_RATE / self.sample_rate
        per_message = math.ceil((self.max_message_bytes // self.dtype.itemsize) * ratio)
        slack = math.ceil(self.sample_rate * ratio) + 64  # resampler block and context (< 1 s of input)
        self._buffer = SampleBuffer(self.window + per_message + slack)
        self._carry = b""  # bytes of a sample split across messages
        self._next_start = 0  # start of the next regular window
        self._spans: list[tuple[int, int]] = []
        self._logits: list[np.ndarray] = []
        self._sum = np.zeros(len(LABEL_NAMES), dtype=np.float64)
        self._n_in = 0
        self._peak = 0.0
        self._hash = hashlib.sha256()
        self._started = time.perf_counter()

    @property
    def duration_s(self) -> float:
        """Audio received so far (s, at the client's rate)."""
        return self._n_in / self.sample_rate

    @property
    def n_windows(self) -> int:
        """Windows scored so far."""
        return len(self._spans)

    @property
    def buffer_samples(self) -> int:
        """16 kHz samples the stream's buffer holds at most (one window plus one message and slack)."""
        return self._buffer.capacity

    def decode(self, data: bytes) -> np.ndarray:
        """float32 ``[frames]`` in [-1, 1] from one binary message (partial samples carried over).
        Raises :class:`StreamError` 1009 for a message over the limit, 1007 for NaN/inf samples,
        1008 when the stream passes ``max_duration_s``."""
        if len(data) > self.max_message_bytes:
            raise StreamError(
                CLOSE_CODES["too_big"],
                f"message of {len(data)} bytes is over the limit of {self.max_message_bytes} bytes",
            )
        self._hash.update(data)
        raw = self._carry + bytes(data)
        usable = len(raw) - len(raw) % self.dtype.itemsize
        self._carry = raw[usable:]
        samples = np.frombuffer(raw[:usable], dtype=self.dtype)
        if self.dtype.kind == "i":
            out = samples.astype(np.float32) / 32768.0
        else:
            out = samples.astype(np.float32)
            if not np.isfinite(out).all():
                bad = int(out.size - np.count_nonzero(np.isfinite(out)))
                raise StreamError(
                    CLOSE_CODES["invalid"],
                    f"{bad} NaN or infinite samples at {self.duration_s:.2f} s into the stream",
                )
        if (self._n_in + out.shape[0]) / self.sample_rate > self.max_duration_s:
            raise StreamError(
                CLOSE_CODES["policy"], f"stream longer than the limit of {self.max_duration_s:g} s"
            )
        self._n_in += out.shape[0]
        if out.size:
            self._peak = max(self._peak, float(np.max(np.abs(out))))
        return out

    def push(self, data: bytes) -> list[dict[str, Any]]:
        """Add one binary message; returns the ``window`` messages of the windows it completed."""
        resampled = self._resampler.push(self.decode(data))
        return self._take(resampled, final=False)

    def finish(self) -> tuple[list[dict[str, Any]], Prediction]:
        """End of stream: the remaining ``window`` messages and the clip's :class:`Prediction`.
        Raises :class:`StreamError` 1007 for a stream too short or digitally silent."""
        if self._carry:
            raise StreamError(
                CLOSE_CODES["invalid"], f"stream ends inside a sample ({len(self._carry)} bytes left)"
            )
        tail = self._resampler.finish()
        n = self._buffer.end + tail.shape[0]
        if n < int(round(MIN_DURATION_S * TARGET_SAMPLE_RATE)):
            raise StreamError(
                CLOSE_CODES["invalid"],
                f"too short: {n / TARGET_SAMPLE_RATE:.3f} s (the detector needs at least {MIN_DURATION_S} s)",
            )
        if self._peak < SILENCE_PEAK:
            raise StreamError(CLOSE_CODES["invalid"], f"digital silence (peak {self._peak:.1e})")
        messages = self._take(tail, final=True)
        order = sorted(range(len(self._spans)), key=lambda k: self._spans[k])
        prediction = aggregate_windows(
            np.stack([self._logits[k] for k in order]),
            [self._spans[k] for k in order],
            threshold=self.detector.threshold,
            source="stream",
            model_id=self.detector.model_id,
            duration_s=n / TARGET_SAMPLE_RATE,
            processing_ms=(time.perf_counter() - self._started) * 1000.0,
            sha256=self._hash.hexdigest(),
        )
        return messages, prediction

    # internals ------------------------------------------------------------------------
    def _take(self, samples: np.ndarray, *, final: bool) -> list[dict[str, Any]]:
        """Append 16 kHz ``samples`` and score every window they complete (all the rest when final)."""
        end = self._buffer.end + samples.shape[0]
        self._buffer.append(samples, keep_from=min(self._next_start, max(0, end - self.window)))
        todo: list[tuple[int, int]] = []
        while self._next_start + self.window <= end:
            todo.append((self._next_start, self._next_start + self.window))
            self._next_start += self.hop
        if final:
            done = set(self._spans) | set(todo)
            todo.extend(s for s in window_spans(end, self.window, self.hop) if s not in done)
        if not todo:
            return []
        model_start = time.perf_counter()
        logits = np.asarray(
            self.detector.window_logits([self._buffer.view(a, b) for a, b in todo]), dtype=np.float64
        )
        share_ms = (time.perf_counter() - model_start) * 1000.0 / len(todo)
        return [self._record(span, row, share_ms) for span, row in zip(todo, logits)]

    def _record(self, span: tuple[int, int], row: np.ndarray, inference_ms: float) -> dict[str, Any]:
        self._spans.append(span)
        self._logits.append(row)
        self._sum += row
        both = np.stack([row, self._sum / len(self._spans)])
        scores, probs = score_from_logits(both), softmax_probability(both)
        thr = self.detector.threshold
        return {
            "type": "window",
            "index": len(self._spans) - 1,
            "start_s": span[0] / TARGET_SAMPLE_RATE,
            "end_s": span[1] / TARGET_SAMPLE_RATE,
            "score": float(scores[0]),
            "prob_real": float(probs[0]),
            "label": LABEL_NAMES[1] if scores[0] >= thr else LABEL_NAMES[0],
            "clip_score": float(scores[1]),
            "clip_prob_real": float(probs[1]),
            "clip_label": LABEL_NAMES[1] if scores[1] >= thr else LABEL_NAMES[0],
            "n_windows": len(self._spans),
            "inference_ms": inference_ms,
        }
