"""Results of a deployed detector and their monitoring log: one prediction or error per input, one JSON line per prediction."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import threading
from pathlib import Path
from typing import Any

__all__ = [
    "Prediction",
    "PredictionError",
    "PredictionLogger",
]


# --------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------
@dataclasses.dataclass
class Prediction:
    """The verdict on one input.

    ``score`` is the clip's log-odds of bona fide (higher = more bona fide), ``prob_real``
    its probability, ``label`` ``"Real"`` when ``score >= threshold``. ``windows`` lists
    ``{start_s, end_s, score, prob_real}`` per window (seconds); ``suspicious_segments``
    lists ``{start_s, end_s, n_windows, min_score}`` for merged windows scored below the
    threshold. ``duration_s`` is the audio's length (s), ``processing_ms`` the wall time from
    reading the input to the verdict (ms), ``sha256`` the hash of the input bytes or array,
    ``decode_ms`` the time spent decoding and resampling and ``inference_ms`` in model calls (ms; a
    batch's model time is shared among its windows).
    """

    source: str
    label: str
    prob_real: float
    score: float
    threshold: float
    windows: list[dict[str, float]]
    suspicious_segments: list[dict[str, float]]
    max_fake_prob: float
    duration_s: float
    model_id: str
    processing_ms: float
    sha256: str
    decode_ms: float = 0.0
    inference_ms: float = 0.0
    ok: bool = dataclasses.field(default=True, init=False)

    @property
    def n_windows(self) -> int:
        """Number of windows the clip score averages."""
        return len(self.windows)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (floats, strings, lists) of every field, plus ``n_windows``."""
        out = dataclasses.asdict(self)
        out.pop("ok")
        out["n_windows"] = self.n_windows
        return out


@dataclasses.dataclass
class PredictionError:
    """An input that could not be scored (bad audio, unreadable file...), in place of a
    :class:`Prediction` in :meth:`Detector.predict_many`'s output."""

    source: str
    error: str
    error_type: str
    exception: BaseException = dataclasses.field(repr=False, compare=False)
    sha256: str = ""
    ok: bool = dataclasses.field(default=False, init=False)

    def to_dict(self) -> dict[str, Any]:
        """``{"source", "error", "error_type"}`` (JSON-serialisable)."""
        return {"source": self.source, "error": self.error, "error_type": self.error_type}


# --------------------------------------------------------------------------------------
# monitoring
# --------------------------------------------------------------------------------------
class PredictionLogger:
    """Appends one JSON line per prediction to ``path`` (thread-safe; flushed per line).

    Fields: ``time`` (UTC, ISO 8601), ``sha256`` (of the input bytes or array), ``source``,
    ``score``, ``label``, ``prob_real``, ``threshold``, ``model_id``, ``runtime``,
    ``duration_s``, ``n_windows``, ``processing_ms``; a failed input is logged with ``error``
    and null score/label. The file is opened in append mode for each line, so several
    processes can share it and nothing is lost when one stops.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def log(
        self, result: Prediction | PredictionError, *, runtime: str = "", model_id: str = ""
    ) -> dict[str, Any]:
        """Append the line for ``result`` and return it as a dict."""
        record: dict[str, Any] = {
            "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
            "sha256": result.sha256,
            "source": result.source,
        }
        if isinstance(result, Prediction):
            record.update(
                score=result.score,
                label=result.label,
                prob_real=result.prob_real,
                threshold=result.threshold,
                model_id=result.model_id,
                runtime=runtime,
                duration_s=result.duration_s,
                n_windows=result.n_windows,
                processing_ms=result.processing_ms,
            )
        else:
            record.update(
                score=None,
                label=None,
                prob_real=None,
                threshold=None,
                model_id=model_id,
                runtime=runtime,
                error=result.error,
            )
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
        return record
