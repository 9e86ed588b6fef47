"""Score audio with a trained detector: windows, aggregation, thresholds and a monitoring log.

:class:`Detector` is the one object the command line (:mod:`deepfake_lib.cli.main`), the web
service (:mod:`deepfake_lib.deploy.service`) and the notebooks use to score audio::

    det = Detector.from_source("runs/demo")          # a run folder: its validation threshold
    pred = det.predict("clip.wav")                   # or bytes, or an array plus sample_rate
    pred.label, pred.prob_real, pred.suspicious_segments

Sources (:func:`locate_model`): a run folder (``model/`` and ``metrics.json``; the threshold
is the run's validation-EER threshold), a folder written by
:func:`deepfake_lib.deploy.export.export_model` (``export.json``; needed for the ONNX backends), a
local model folder saved with ``save_pretrained``, or a Hub id. Plain model folders and Hub
ids carry no calibrated threshold: 0.0 is used (the argmax of the two logits) and
:attr:`Detector.threshold_source` says so.

Scoring (the same convention as :mod:`deepfake_lib.evaluation.metrics`):

* the audio is decoded and resampled to 16 kHz by :func:`deepfake_lib.audio.io.load_audio`;
* windows, their logits and the clip's logits follow :mod:`deepfake_lib.scoring`, the path the
  run's own evaluation used: windows of ``window_s`` seconds every ``hop_s`` seconds (default
  half a window), the last one moved back to end at the end of the audio (no padding), audio
  shorter than a window scored whole; the clip's logits are the mean of its window logits.
  A run folder's detector uses the run's ``eval_window_s`` when it set one;
* each window's score is the log-odds of bona fide ``logit_real - logit_fake`` and its
  ``prob_real`` the softmax probability of Real; the clip score is the log-odds of the mean
  logits (for two classes, equal to the mean of the window scores). The label is ``"Real"``
  when ``score >= threshold``, else ``"Fake"``;
* ``max_fake_prob`` is the largest ``1 - prob_real`` over the windows, and
  ``suspicious_segments`` are the windows whose score is below the threshold, merged where
  they overlap or touch, with start and end times in seconds: where to listen first.

Memory stays bounded on long files: windows are views into the decoded waveform, created
one at a time and scored ``batch_size`` at a time; no ``[n_windows, window]`` array is built.
:meth:`Detector.predict_many` batches windows across files (equal-length windows only,
unless the model takes an attention mask, so padding never changes a score).

Monitoring: with ``log_path`` every prediction (and every failure) appends one JSON line
(:class:`PredictionLogger`) with the UTC time, the SHA-256 of the input bytes or array, the
source name, score, label, ``prob_real``, threshold and model id.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
from transformers import AutoFeatureExtractor

from deepfake_lib import LABEL_NAMES, TARGET_SAMPLE_RATE
from deepfake_lib.audio.errors import AudioError
from deepfake_lib.audio.io import load_audio
from deepfake_lib.classifier import Classifier, OnnxClassifier, TorchClassifier, quantize_int8
from deepfake_lib.deploy.cpu_runtime import MixedCpuClassifier, check_gate, make_gate_waves, measure_parity
from deepfake_lib.deploy.model_location import (
    DEFAULT_THRESHOLD_NOTE,
    ModelLocation,
    locate_model,
    run_window_s,
)
from deepfake_lib.deploy.prediction_log import Prediction, PredictionError, PredictionLogger
from deepfake_lib.evaluation.probability import score_from_logits, softmax_probability
from deepfake_lib.modeling.models import load_model
from deepfake_lib.scoring import (
    MIN_DURATION_S,
    classify_waves,
    mean_logits,
    uses_attention_mask,
    window_spans,
)
from deepfake_lib.torch_settings import resolve_device

__all__ = [
    "aggregate_windows",
    "AUTO_CANDIDATES",
    "BACKENDS",
    "check_head",
    "choose_backend",
    "DEFAULT_WINDOW_S",
    "Detector",
    "hash_input",
]

log = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("auto", "torch", "int8", "mixed", "onnx", "onnx-int8")
"""Inference backends: ``auto`` (the fastest CPU path whose parity gate passes, see
:func:`choose_backend`), fp32 PyTorch, PyTorch with int8 Linear layers (CPU), the mixed-precision
CPU runtime (:mod:`deepfake_lib.deploy.cpu_runtime`: bf16 convolutions, int8 transformer), ONNX Runtime
fp32 and ONNX Runtime with int8 MatMul/Gemm (both need an export folder)."""

AUTO_CANDIDATES: tuple[str, ...] = ("mixed", "int8")
"""CPU backends ``auto`` tries, fastest first, before falling back to fp32 ``torch``."""


DEFAULT_WINDOW_S = 4.0
"""Window length (s) of a detector whose source does not fix one."""


# --------------------------------------------------------------------------------------
# the detector
# --------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Job:
    """One input in flight through :meth:`Detector.predict_many`."""

    source: str
    started: float
    sha256: str = ""
    wave: np.ndarray | None = None
    spans: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    logits: np.ndarray | None = None
    remaining: int = 0
    error: BaseException | None = None


class Detector:
    """Scores audio with a classifier, a feature extractor and a decision threshold.

    Build it with :meth:`from_source`. ``window_s`` and ``hop_s`` are seconds (``hop_s``
    ``None`` = half a window); ``batch_size`` windows are scored per model call;
    ``threshold`` is on the score (log-odds) scale. Thread-safe: model calls are serialised
    by a lock, decoding is not. See the module docstring for the aggregation rules.
    """

    def __init__(
        self,
        classifier: Classifier,
        feature_extractor: Any,
        *,
        threshold: float = 0.0,
        threshold_source: str = DEFAULT_THRESHOLD_NOTE,
        model_id: str = "model",
        backend: str = "torch",
        device: str = "cpu",
        window_s: float = 4.0,
        hop_s: float | None = None,
        batch_size: int = 8,
        log_path: str | os.PathLike[str] | None = None,
        notes: list[str] | None = None,
        backend_choice: dict[str, Any] | None = None,
    ) -> None:
        if not (math.isfinite(window_s) and window_s >= MIN_DURATION_S):
            raise ValueError(f"window_s={window_s!r}: must be at least {MIN_DURATION_S} s")
        hop = window_s / 2 if hop_s is None else hop_s
        if not (math.isfinite(hop) and 0 < hop <= window_s):
            raise ValueError(f"hop_s={hop_s!r}: must lie in (0, window_s={window_s}] seconds")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size={batch_size!r}: must be at least 1")
        if not math.isfinite(float(threshold)):
            raise ValueError(f"threshold={threshold!r}: must be a finite log-odds value")
        self.classifier = classifier
        self.feature_extractor = feature_extractor
        self.threshold = float(threshold)
        self.threshold_source = threshold_source
        self.model_id = model_id
        self.backend = backend
        self.device = device
        self.window_s = float(window_s)
        self.hop_s = float(hop)
        self.batch_size = int(batch_size)
        self.window_samples = int(round(self.window_s * TARGET_SAMPLE_RATE))
        self.hop_samples = max(1, int(round(self.hop_s * TARGET_SAMPLE_RATE)))
        self.min_samples = int(round(MIN_DURATION_S * TARGET_SAMPLE_RATE))
        self.uses_attention_mask = uses_attention_mask(classifier, feature_extractor)
        self.logger = PredictionLogger(log_path) if log_path is not None else None
        self.notes = list(notes or [])
        self.backend_choice = dict(
            backend_choice
            or {"requested": backend, "chosen": backend, "reason": "backend given by the caller"}
        )
        self._lock = threading.Lock()

    # construction ---------------------------------------------------------------------
    @classmethod
    def from_source(
        cls,
        source: str | os.PathLike[str],
        *,
        threshold: float | None = None,
        device: str = "auto",
        backend: str = "auto",
        window_s: float | None = None,
        hop_s: float | None = None,
        batch_size: int = 8,
        log_path: str | os.PathLike[str] | None = None,
    ) -> Detector:
        """Load a detector from a run folder, an export folder, a model folder or a Hub id.

        ``threshold`` overrides the source's threshold (log-odds). ``device``: ``"auto"``
        (CUDA when available), ``"cpu"`` or ``"cuda"``. ``backend``: ``"torch"`` (fp32),
        ``"int8"`` (dynamic int8 Linear layers, CPU only; see
        :func:`deepfake_lib.classifier.quantize_int8`), ``"mixed"`` (bf16 convolutions and int8
        transformer layers, CPU only; :mod:`deepfake_lib.deploy.cpu_runtime`), ``"onnx"`` or
        ``"onnx-int8"`` (ONNX Runtime; the source must be an export folder), or ``"auto"``
        (default): on the CPU the first of :data:`AUTO_CANDIDATES` whose parity gate passes,
        else fp32 ``torch`` (:func:`choose_backend`); on CUDA ``torch``. The choice and its
        reason are in :meth:`describe` (``backend_choice``). Raises ``ValueError`` when the
        source cannot be loaded or its head has no Fake/Real labels. ``window_s`` (s): default
        the run's ``eval_window_s`` when the source is a run folder that set one (so the
        detector scores as the run's evaluation did), else :data:`DEFAULT_WINDOW_S`.
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r}; expected one of {', '.join(BACKENDS)}")
        loc = locate_model(source)
        if window_s is None:
            window_s = run_window_s(loc) or DEFAULT_WINDOW_S
        resolved = resolve_device(device)
        if backend in ("int8", "mixed") and resolved != "cpu":
            if device != "auto":
                raise ValueError(
                    f"backend={backend!r} (int8 / mixed precision) runs on the CPU only; use device='cpu'"
                )
            resolved = "cpu"
        if threshold is not None:
            thr, thr_source = float(threshold), "given by the caller"
        else:
            thr, thr_source = loc.threshold, loc.threshold_source
        notes: list[str] = []
        choice: dict[str, Any] | None = None
        if backend in ("onnx", "onnx-int8"):
            classifier, feature_extractor, resolved = _load_onnx(loc, backend, resolved)
        else:
            loaded = load_model(loc.model_source, freeze_feature_encoder=False)
            check_head(loaded.notes, loc.model_source)
            model = loaded.model.eval()
            feature_extractor = loaded.feature_extractor
            if backend == "auto":
                classifier, choice = choose_backend(
                    model, feature_extractor, loc, threshold=thr, device=resolved
                )
                backend = choice["chosen"]
                log.info("backend auto -> %s: %s", backend, choice["reason"])
            else:
                classifier = _torch_backend(model, backend, loc, resolved)
            notes = list(loaded.notes)
        model_id = (
            str(loc.manifest.get("model_id", os.fspath(source)))
            if loc.kind == "export"
            else os.fspath(source)
        )
        return cls(
            classifier,
            feature_extractor,
            threshold=thr,
            threshold_source=thr_source,
            model_id=model_id,
            backend=backend,
            device=resolved,
            window_s=window_s,
            hop_s=hop_s,
            batch_size=batch_size,
            log_path=log_path,
            notes=notes,
            backend_choice=choice,
        )

    # description ----------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """What the detector is: id, labels, threshold (and its source), sample rate (Hz),
        backend and why it was chosen (``backend_choice``: requested, chosen, reason, gate
        figures), precision per stage for the mixed runtime, device, window and hop (s), batch size."""
        runtime = getattr(self.classifier, "describe", None)
        return {
            "id": self.model_id,
            "labels": list(LABEL_NAMES),
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "sample_rate": TARGET_SAMPLE_RATE,
            "backend": self.backend,
            "backend_choice": self.backend_choice,
            **({"runtime": runtime()} if callable(runtime) else {}),
            "device": self.device,
            "window_s": self.window_s,
            "hop_s": self.hop_s,
            "batch_size": self.batch_size,
            "uses_attention_mask": self.uses_attention_mask,
        }

    def window_spans(self, n_samples: int) -> list[tuple[int, int]]:
        """``(start, end)`` sample indices of the windows over ``n_samples`` samples at 16 kHz
        (:func:`deepfake_lib.scoring.window_spans`: the last window ends at ``n_samples``;
        audio shorter than a window is one span)."""
        return window_spans(n_samples, self.window_samples, self.hop_samples)

    # scoring --------------------------------------------------------------------------
    def predict(
        self,
        audio: str | os.PathLike[str] | bytes | np.ndarray | Mapping[str, Any],
        sample_rate: int | None = None,
        *,
        source: str | None = None,
    ) -> Prediction:
        """Score one input: a file path, encoded bytes, a waveform ``[samples]`` (with
        ``sample_rate`` in Hz) or a ``datasets`` audio dict. ``source`` names it in results
        and errors. Raises :class:`~deepfake_lib.audio.io.AudioError` (naming the source) for
        bad audio."""
        item = (audio, sample_rate, source)
        result = next(iter(self.predict_many([item])))
        if isinstance(result, PredictionError):
            raise result.exception
        return result

    def predict_many(
        self,
        items: Iterable[Any],
        *,
        sample_rate: int | None = None,
    ) -> Iterator[Prediction | PredictionError]:
        """Score many inputs, batching windows across them; yields one result per item, in order.

        An item is a path, bytes, an array, a ``datasets`` audio dict, or a tuple
        ``(audio, sample_rate)`` or ``(audio, sample_rate, source)``; ``sample_rate`` (Hz)
        applies to items that give none. A bad item yields a :class:`PredictionError` and
        the rest go on. At most ``batch_size`` windows are held at any time (plus the
        decoded waveforms they belong to).
        """
        pending: collections.deque[_Job] = collections.deque()
        batch: list[tuple[_Job, int, np.ndarray]] = []
        for item in items:
            job = self._open(item, sample_rate)
            pending.append(job)
            if job.error is None:
                wave = job.wave
                for k, (a, b) in enumerate(job.spans):
                    batch.append((job, k, wave[a:b]))
                    if len(batch) >= self.batch_size:
                        self._score(batch)
                        batch = []
                        yield from self._drain(pending)
                job.wave = None  # the windows still queued keep their own views alive
            yield from self._drain(pending)
        if batch:
            self._score(batch)
        yield from self._drain(pending)

    # internals ------------------------------------------------------------------------
    def _open(self, item: Any, default_rate: int | None) -> _Job:
        audio, rate, source = item, default_rate, None
        if isinstance(item, tuple):
            if not 1 <= len(item) <= 3:
                raise ValueError("a tuple item must be (audio, sample_rate) or (audio, sample_rate, source)")
            audio = item[0]
            rate = item[1] if len(item) > 1 and item[1] is not None else default_rate
            source = item[2] if len(item) > 2 else None
        name = source if source is not None else _source_name(audio)
        job = _Job(source=name, started=time.perf_counter())
        try:
            if hasattr(audio, "read") and not isinstance(audio, (str, os.PathLike)):
                audio = audio.read()  # a binary file object: score its bytes
            job.sha256 = hash_input(audio)
            if isinstance(audio, (bytes, bytearray, memoryview, str, os.PathLike, np.ndarray, Mapping)):
                wave = load_audio(audio, rate, target_sr=TARGET_SAMPLE_RATE, source=name)
            else:
                raise AudioError(name, f"cannot score an object of type {type(audio).__name__}")
            if wave.shape[0] < self.min_samples:
                raise AudioError(
                    name,
                    f"too short: {wave.shape[0] / TARGET_SAMPLE_RATE:.3f} s "
                    f"(the detector needs at least {MIN_DURATION_S} s)",
                )
            job.wave = wave
            job.spans = self.window_spans(wave.shape[0])
            job.logits = np.zeros((len(job.spans), len(LABEL_NAMES)), dtype=np.float64)
            job.remaining = len(job.spans)
        except (AudioError, OSError) as exc:
            job.error = exc
        return job

    def _score(self, batch: list[tuple[_Job, int, np.ndarray]]) -> None:
        """Run the classifier on queued windows (:func:`deepfake_lib.scoring.classify_waves`)."""
        with self._lock:
            logits = classify_waves(self.classifier, self.feature_extractor, [w for _, _, w in batch])
        for (job, k, _), row in zip(batch, logits):
            job.logits[k] = row
            job.remaining -= 1

    def _drain(self, pending: collections.deque[_Job]) -> Iterator[Prediction | PredictionError]:
        while pending and (
            pending[0].error is not None or (pending[0].remaining == 0 and pending[0].wave is None)
        ):
            job = pending.popleft()
            result = self._finish(job)
            if self.logger is not None:
                self.logger.log(result, backend=self.backend, model_id=self.model_id)
            yield result

    def _finish(self, job: _Job) -> Prediction | PredictionError:
        if job.error is not None:
            return PredictionError(
                job.source, str(job.error), type(job.error).__name__, job.error, job.sha256
            )
        return aggregate_windows(
            job.logits,
            job.spans,
            threshold=self.threshold,
            source=job.source,
            model_id=self.model_id,
            duration_s=job.spans[-1][1] / TARGET_SAMPLE_RATE if job.spans else 0.0,
            processing_ms=(time.perf_counter() - job.started) * 1000.0,
            sha256=job.sha256,
        )


def aggregate_windows(
    logits: np.ndarray,
    spans: list[tuple[int, int]],
    *,
    threshold: float,
    source: str = "",
    model_id: str = "",
    duration_s: float | None = None,
    processing_ms: float = 0.0,
    sha256: str = "",
    sample_rate: int = TARGET_SAMPLE_RATE,
) -> Prediction:
    """Combine window logits ``[n_windows, 2]`` (``[Fake, Real]``) over ``spans`` (sample
    indices at ``sample_rate`` Hz) into a :class:`Prediction` (rules in the module docstring)."""
    arr = np.asarray(logits, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != len(spans) or arr.shape[0] == 0:
        raise ValueError(f"logits of shape {arr.shape} do not match {len(spans)} window spans")
    mean = mean_logits(arr)[None, :]
    score = float(score_from_logits(mean)[0])
    prob_real = float(softmax_probability(mean)[0])
    w_scores = score_from_logits(arr)
    w_probs = softmax_probability(arr)
    windows = [
        {"start_s": a / sample_rate, "end_s": b / sample_rate, "score": float(s), "prob_real": float(p)}
        for (a, b), s, p in zip(spans, w_scores, w_probs)
    ]
    segments: list[dict[str, float]] = []
    for w in windows:
        if w["score"] >= threshold:
            continue
        if segments and w["start_s"] <= segments[-1]["end_s"]:
            seg = segments[-1]
            seg["end_s"] = max(seg["end_s"], w["end_s"])
            seg["n_windows"] += 1
            seg["min_score"] = min(seg["min_score"], w["score"])
        else:
            segments.append(
                {"start_s": w["start_s"], "end_s": w["end_s"], "n_windows": 1, "min_score": w["score"]}
            )
    return Prediction(
        source=source,
        label=LABEL_NAMES[1] if score >= threshold else LABEL_NAMES[0],
        prob_real=prob_real,
        score=score,
        threshold=float(threshold),
        windows=windows,
        suspicious_segments=segments,
        max_fake_prob=float(np.max(1.0 - w_probs)),
        duration_s=float(duration_s if duration_s is not None else spans[-1][1] / sample_rate),
        model_id=model_id,
        processing_ms=float(processing_ms),
        sha256=sha256,
    )


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def check_head(notes: Iterable[str], source: str) -> None:
    """Raise ``ValueError`` when loading re-initialised the classification head (its labels
    did not match Fake/Real): such a model's verdicts would be random."""
    for note in notes:
        if note.startswith("head re-initialised"):
            raise ValueError(
                f"{source}: cannot be used for detection: {note}. "
                "Fine-tune it first (deepfake-lib train) or pass a checkpoint with Fake/Real labels."
            )


def hash_input(audio: Any) -> str:
    """SHA-256 (hex) of an input's bytes: a file's contents, encoded bytes, or an array's
    raw samples; ``""`` when the input cannot be read (the decoder then reports why)."""
    h = hashlib.sha256()
    try:
        if isinstance(audio, (bytes, bytearray, memoryview)):
            h.update(audio)
        elif isinstance(audio, np.ndarray):
            h.update(np.ascontiguousarray(audio).data)
        elif isinstance(audio, (str, os.PathLike)):
            with open(audio, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        elif isinstance(audio, Mapping):
            payload = audio.get("bytes") if audio.get("bytes") is not None else audio.get("array")
            if payload is None and audio.get("path"):
                return hash_input(audio["path"])
            if payload is None:
                return ""
            return hash_input(np.asarray(payload) if not isinstance(payload, (bytes, bytearray)) else payload)
        else:
            return ""
    except (OSError, ValueError, TypeError):
        return ""
    return h.hexdigest()


def _source_name(audio: Any) -> str:
    if isinstance(audio, (str, os.PathLike)):
        return os.fspath(audio)
    if isinstance(audio, (bytes, bytearray, memoryview)):
        return "bytes"
    if isinstance(audio, np.ndarray):
        return "array"
    if isinstance(audio, Mapping):
        return str(audio.get("path") or "audio dict")
    return type(audio).__name__


def _torch_backend(model: Any, backend: str, loc: ModelLocation, device: str) -> Classifier:
    """The PyTorch classifier for ``backend`` (``torch``, ``int8`` or ``mixed``), using an export
    folder's int8 recipe where it has one."""
    method = (loc.manifest.get("int8") or {}).get("method") if loc.kind == "export" else None
    if backend == "int8":
        quantized = quantize_int8(model, method=method) if method else quantize_int8(model)
        return TorchClassifier(quantized, device=device)
    if backend == "mixed":
        return MixedCpuClassifier(model, int8_method=method) if method else MixedCpuClassifier(model)
    return TorchClassifier(model, device=device)


def choose_backend(
    model: Any,
    feature_extractor: Any,
    loc: ModelLocation,
    *,
    threshold: float,
    device: str = "cpu",
    candidates: Iterable[str] = AUTO_CANDIDATES,
) -> tuple[Classifier, dict[str, Any]]:
    """The ``auto`` backend: on the CPU, the first of ``candidates`` whose parity gate
    (:func:`deepfake_lib.deploy.cpu_runtime.check_gate`) passes against fp32 at ``threshold``, else fp32.

    The gate reads the parity an export folder recorded (``export.json["parity"]``, measured on
    the clips given at export time, e.g. a run's test split); other sources are measured now on
    :func:`deepfake_lib.deploy.cpu_runtime.make_gate_waves` clips (a few seconds for wav2vec2-base).
    Returns the classifier and ``{"requested": "auto", "chosen", "reason", "gates"}``.
    """
    if device != "cpu":
        return TorchClassifier(model, device=device), {
            "requested": "auto",
            "chosen": "torch",
            "gates": {},
            "reason": f"device {device}: the int8 and mixed CPU runtimes do not apply; fp32 PyTorch",
        }
    recorded = (loc.manifest.get("parity") or {}) if loc.kind == "export" else {}
    reference = TorchClassifier(model, device="cpu")
    waves: list[np.ndarray] = []
    gates: dict[str, Any] = {}
    for name in candidates:
        try:
            candidate = _torch_backend(model, name, loc, "cpu")
        except (ValueError, RuntimeError) as exc:  # e.g. not a wav2vec2-class model
            gates[name] = {"passed": False, "reason": f"cannot build: {exc}"}
            continue
        if name in recorded:
            parity, where = recorded[name], "export parity"
        else:
            waves = waves or make_gate_waves()
            parity = measure_parity(reference, candidate, feature_extractor, waves, threshold=threshold)
            where = "load-time gate on synthetic clips"
        passed, why = check_gate(parity)
        gates[name] = {"passed": passed, "reason": f"{where}: {why}", "parity": parity}
        if passed:
            choice = {"requested": "auto", "chosen": name, "gates": gates, "reason": f"{where} {why}"}
            return candidate, choice
        del candidate
    failed = "; ".join(f"{k} {v['reason']}" for k, v in gates.items()) or "no candidates"
    return reference, {
        "requested": "auto",
        "chosen": "torch",
        "gates": gates,
        "reason": f"fp32 PyTorch: no faster path passed its gate ({failed})",
    }


def _load_onnx(loc: ModelLocation, backend: str, device: str) -> tuple[Any, Any, str]:
    if loc.kind != "export":
        raise ValueError(
            f"{loc.model_source}: backend={backend!r} needs an export folder; create one with "
            f"`deepfake-lib export --model {loc.folder or loc.model_source} --out DIR`"
        )
    key = "onnx_int8" if backend == "onnx-int8" else "onnx"
    name = (loc.manifest.get("files") or {}).get(key)
    if not name or not (loc.folder / name).is_file():
        raise ValueError(
            f"{loc.folder}: this export has no {key} model (re-export with --{key.replace('_', '-')})"
        )
    classifier = OnnxClassifier(loc.folder / name, device=device)
    fe = AutoFeatureExtractor.from_pretrained(loc.model_source)
    return classifier, fe, classifier.device
