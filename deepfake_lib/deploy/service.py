"""HTTP service: score uploaded audio with one shared :class:`~deepfake_lib.deploy.detector.Detector`.

Run it with any of::

    deepfake-lib serve --model runs/demo --host 127.0.0.1 --port 8000
    DEEPFAKE_MODEL=runs/demo uvicorn deepfake_lib.deploy.service:app --host 127.0.0.1 --port 8000
    DEEPFAKE_MODEL=runs/demo uvicorn --factory deepfake_lib.deploy.service:create_app_from_env

``$DEEPFAKE_MODEL`` is a run folder, export folder, model folder or Hub id (default: the
demo run ``runs/demo`` under the project root); ``$DEEPFAKE_BACKEND`` (``torch``, ``int8``,
``onnx``, ``onnx-int8``), ``$DEEPFAKE_LOG`` (JSON-lines prediction log) and
``$DEEPFAKE_MAX_UPLOAD_MB``, ``$DEEPFAKE_MAX_DURATION_S`` and ``$DEEPFAKE_MAX_CONCURRENT`` are
optional. Importing this module loads nothing: ``app`` is
built on first access, and the model is loaded once, at start-up, then shared by all requests.

Endpoints:

* ``POST /predict``: a ``multipart/form-data`` upload with the audio in the field ``file``
  (or a raw body with an ``audio/*`` or ``application/octet-stream`` content type). Returns
  the :class:`~deepfake_lib.deploy.detector.Prediction` as JSON (label, prob_real, score, threshold,
  windows, suspicious_segments, model_id, processing_ms...). Errors: 413 when the upload is
  larger than ``max_upload_mb`` (checked while the body streams in, before it is all
  read), or when the audio is longer than ``max_duration_s`` seconds (by its header, or
  while it decodes: a decompression bomb stops at the limit); 415 for a content type that
  is not audio; 422 for data that does not decode as audio (the message names the
  upload's file name and the problem). Every error body is ``{"detail": "..."}``.
* ``GET /health``: ``{"status": "ok", "model_loaded": ...}``.
* ``GET /model``: id, labels, threshold and its source, sample rate (Hz), backend, device,
  window and hop (s), and ``metrics``: the run's test metrics (EER, minDCF, actDCF, Cllr,
  minCllr, AUC, accuracy, FAR, FRR), each with its 95% interval and its meaning in one line
  (:func:`deepfake_lib.evaluation.metric_registry.metric_meanings`), when the source is a run folder (or an export
  of one) with a ``metrics.json``; ``null`` otherwise (:func:`run_metrics`).

Uploads are decoded from memory (no temporary files) and scored in a worker thread, so the
event loop keeps serving other requests; at most ``max_concurrent`` uploads are decoded and
scored at once (the others wait their turn), and model calls are serialised by the detector.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations
# (``request: Request``) at definition time, and ``Request`` is imported inside create_app.
import asyncio
import contextlib
import io
import logging
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

from deepfake_lib.audio.errors import AudioError, AudioTooLongError
from deepfake_lib.audio.io import SERVICE_MAX_DURATION_S, duration_limit
from deepfake_lib.deploy.detector import Detector

__all__ = [
    "AUDIO_CONTENT_TYPES",
    "create_app",
    "create_app_from_env",
    "DEFAULT_MAX_CONCURRENT",
    "DEFAULT_MAX_UPLOAD_MB",
    "DEFAULT_MODEL",
    "FILE_FIELD",
    "is_audio_content_type",
    "MODEL_ENV",
    "MULTIPART_OVERHEAD",
    "PREDICT_REQUEST_BODY",
    "PREDICT_RESPONSES",
    "read_upload",
    "run_metrics",
    "UploadError",
]

log = logging.getLogger(__name__)

MODEL_ENV = "DEEPFAKE_MODEL"
"""Environment variable naming the model source of :func:`create_app_from_env`."""

DEFAULT_MODEL = "runs/demo"
"""Model source when ``$DEEPFAKE_MODEL`` is not set (resolved under the project root)."""

FILE_FIELD = "file"
"""Name of the multipart field that carries the audio."""

MULTIPART_OVERHEAD = 64 * 1024
"""Bytes of multipart framing and small form fields allowed on top of the upload limit."""

AUDIO_CONTENT_TYPES = ("application/octet-stream", "application/ogg", "application/x-flac")
"""Non-``audio/*`` content types accepted for the uploaded file."""

DEFAULT_MAX_UPLOAD_MB = 20.0
"""Largest accepted upload (MB, 10^6 bytes) unless configured."""

DEFAULT_MAX_CONCURRENT = 2
"""Uploads decoded and scored at the same time unless configured; later ones wait."""

_ERROR_BODY = {
    "application/json": {
        "schema": {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
    }
}
PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {
        "description": "Upload larger than max_upload_mb, or audio longer than max_duration_s "
        "(declared by its header or found while decoding)",
        "content": _ERROR_BODY,
    },
    415: {
        "description": "Content type is not audio (nor multipart/form-data with an audio file)",
        "content": _ERROR_BODY,
    },
    422: {
        "description": "Not decodable audio (corrupt, truncated, empty, silent, NaN/inf, too short) "
        "or a malformed multipart body",
        "content": _ERROR_BODY,
    },
}
"""Error responses of ``POST /predict`` as declared in the OpenAPI schema."""

PREDICT_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {
                        FILE_FIELD: {"type": "string", "format": "binary", "description": "the audio file"}
                    },
                }
            },
            "audio/*": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
"""OpenAPI request body of ``POST /predict`` (the endpoint reads the body itself)."""


class UploadError(Exception):
    """An upload rejected with an HTTP ``status`` and a message for the client."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def is_audio_content_type(content_type: str | None) -> bool:
    """True for ``audio/*``, the generic binary types and a missing type (left to the decoder)."""
    if not content_type:
        return True
    base = content_type.split(";", 1)[0].strip().lower()
    return base.startswith("audio/") or base in AUDIO_CONTENT_TYPES


async def read_upload(request: Any, max_bytes: int) -> tuple[str, bytes]:
    """``(filename, data)`` of the audio in ``request``, read into memory in chunks.

    Raises :class:`UploadError`: 413 as soon as more than ``max_bytes`` of audio (or the
    ``Content-Length`` header says so) arrive, 415 for a non-audio content type, 422 for a
    multipart body without a ``file`` part.

    Long because it drives python-multipart's streaming parser by hand, kept for a reason:
    ``request.form()`` reads the whole body (spooling files to disk) before the handler can
    look at its size, so an upload that lies about its length would be read in full; this one
    counts the file's bytes as they arrive and stops at the limit.
    """
    from python_multipart.multipart import MultipartParser, parse_options_header

    limit_mb = max_bytes / 1e6
    too_big = UploadError(413, f"upload larger than the limit of {limit_mb:g} MB")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + MULTIPART_OVERHEAD:
        raise too_big
    ctype = request.headers.get("content-type", "")
    base, params = parse_options_header(ctype)
    base_s = base.decode("latin-1").lower()

    if base_s != "multipart/form-data":
        if not ctype or not is_audio_content_type(ctype):
            raise UploadError(
                415,
                f"content type {ctype or '(none)'!r} is not accepted: send multipart/form-data with "
                f"the audio in the field {FILE_FIELD!r}, or an audio/* body",
            )
        body = io.BytesIO()
        async for chunk in request.stream():
            body.write(chunk)
            if body.tell() > max_bytes:
                raise too_big
        return request.query_params.get("filename", "upload"), body.getvalue()

    boundary = params.get(b"boundary")
    if not boundary:
        raise UploadError(422, "multipart/form-data without a boundary")
    state: dict[str, Any] = {"parts": [], "current": None, "field": b"", "value": b"", "file_bytes": 0}

    def on_part_begin() -> None:
        state["current"] = {"headers": {}, "data": io.BytesIO(), "is_file": False}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["current"]["headers"][state["field"].decode("latin-1").lower()] = state["value"].decode(
            "latin-1"
        )
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        part = state["current"]
        _, disp = parse_options_header(part["headers"].get("content-disposition", ""))
        part["name"] = disp.get(b"name", b"").decode("utf-8", "replace")
        part["filename"] = (
            disp.get(b"filename", b"").decode("utf-8", "replace") if b"filename" in disp else None
        )
        part["is_file"] = part["name"] == FILE_FIELD or part["filename"] is not None

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = state["current"]
        part["data"].write(data[start:end])
        if part["is_file"]:
            state["file_bytes"] += end - start

    def on_part_end() -> None:
        state["parts"].append(state["current"])

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes + MULTIPART_OVERHEAD:
            raise too_big
        try:
            parser.write(chunk)
        except Exception as exc:  # python-multipart raises its own error types for malformed bodies
            raise UploadError(422, f"malformed multipart body ({exc})") from None
        if state["file_bytes"] > max_bytes:
            raise too_big
    parser.finalize()
    files = [p for p in state["parts"] if p.get("is_file")]
    if not files:
        raise UploadError(422, f"no file in the upload: send the audio in the multipart field {FILE_FIELD!r}")
    part = next((p for p in files if p["name"] == FILE_FIELD), files[0])
    filename = part["filename"] or "upload"
    part_type = part["headers"].get("content-type")
    if not is_audio_content_type(part_type):
        raise UploadError(
            415,
            f"upload {filename!r} has content type {part_type!r}, which is not audio; "
            "send an audio file (audio/*)",
        )
    return filename, part["data"].getvalue()


def run_metrics(model_source: str, *, split: str = "test") -> dict[str, Any] | None:
    """The ``metrics`` block of ``GET /model``: ``{"split", "n", "threshold", "data_source",
    "costs", "cllr_prior_real", "values": {key: {"value", "ci", "meaning"}}}`` for the keys of
    :func:`~deepfake_lib.evaluation.metric_registry.served_keys` present in the run's ``metrics.json[split]`` (``ci``: the 95% interval
    as ``[low, high]``, or None); None when ``model_source`` is not a run folder, nor an export
    folder whose manifest ``source`` is one, or the run has no such metrics."""
    import json
    import math
    from pathlib import Path

    from deepfake_lib.deploy.model_location import locate_model
    from deepfake_lib.evaluation.metric_registry import metric_meanings, served_keys
    from deepfake_lib.runs import RUN_FILES

    try:
        loc = locate_model(model_source)
    except (ValueError, OSError):  # not a model source, or an unfinished run (no completion marker)
        return None
    folder = loc.folder if loc.kind == "run" else None
    if loc.kind == "export" and loc.manifest.get("source"):
        candidate = Path(str(loc.manifest["source"]))
        folder = candidate if (candidate / RUN_FILES["metrics"]).is_file() else None
    if folder is None or not (folder / RUN_FILES["metrics"]).is_file():
        return None
    try:
        metrics = json.loads((folder / RUN_FILES["metrics"]).read_text())
    except (OSError, ValueError):
        return None
    report = metrics.get(split)
    if not isinstance(report, dict):
        return None
    intervals = report.get("ci") or {}
    values = {}
    meanings = metric_meanings()
    for key in served_keys():
        value = report.get(key)
        if not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            continue
        interval = intervals.get(key)
        values[key] = {
            "value": float(value),
            "ci": [float(interval[0]), float(interval[1])] if interval is not None else None,
            "meaning": meanings.get(key, ""),
        }
    return {
        "split": split,
        "run_dir": str(folder),
        "n": report.get("n"),
        "threshold": (metrics.get("threshold") or {}).get("value"),
        "data_source": metrics.get("data_source"),
        "costs": report.get("costs"),
        "cllr_prior_real": report.get("cllr_prior_real"),
        "values": values,
    }


def create_app(
    model_source: str,
    *,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    max_duration_s: float = SERVICE_MAX_DURATION_S,
    max_concurrent: int = DEFAULT_MAX_CONCURRENT,
    log_path: str | os.PathLike[str] | None = None,
    backend: str = "auto",
    threshold: float | None = None,
    device: str = "auto",
    window_s: float = 4.0,
) -> Any:
    """A FastAPI app that serves ``model_source`` (run, export or model folder, or Hub id).

    The detector is built once by the app's lifespan (or, without one, by the first request
    that needs it) with :meth:`Detector.from_source` and the given ``backend``,
    ``threshold``, ``device``, ``window_s`` (s) and ``log_path`` (JSON-lines monitoring log).
    Uploads above ``max_upload_mb`` (MB, 10^6 bytes) or audio longer than ``max_duration_s``
    (seconds) are refused with 413; at most ``max_concurrent`` uploads are decoded and scored at once.
    """
    from fastapi import FastAPI, HTTPException, Request
    from starlette.concurrency import run_in_threadpool

    if not max_upload_mb > 0:
        raise ValueError(f"max_upload_mb={max_upload_mb!r}: must be positive")
    if not max_duration_s > 0:
        raise ValueError(f"max_duration_s={max_duration_s!r}: must be positive")
    if int(max_concurrent) < 1:
        raise ValueError(f"max_concurrent={max_concurrent!r}: must be at least 1")
    max_bytes = int(max_upload_mb * 1_000_000)
    work_slots = asyncio.Semaphore(int(max_concurrent))
    lock = threading.Lock()
    holder: dict[str, Detector] = {}

    def load_detector() -> Detector:
        with lock:
            if "detector" not in holder:
                log.info("loading model %s (backend %s)", model_source, backend)
                holder["detector"] = Detector.from_source(
                    model_source,
                    threshold=threshold,
                    device=device,
                    backend=backend,
                    window_s=window_s,
                    log_path=log_path,
                )
            return holder["detector"]

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(load_detector)
        yield

    app = FastAPI(
        title="deepfake_lib detector",
        version="1",
        lifespan=lifespan,
        description="Audio deepfake detection: POST an audio file to /predict.",
    )
    app.state.load_detector = load_detector
    app.state.max_upload_bytes = max_bytes
    app.state.max_duration_s = float(max_duration_s)
    app.state.max_concurrent = int(max_concurrent)

    def score_upload(detector: Detector, data: bytes, filename: str) -> dict[str, Any]:
        """Decode (bounded by ``max_duration_s``) and score one upload, in a worker thread."""
        with duration_limit(max_duration_s):
            return detector.predict(data, None, source=f"upload {filename!r}").to_dict()

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model_loaded": "detector" in holder}

    @app.get("/model")
    async def model_info() -> dict[str, Any]:
        detector = await run_in_threadpool(load_detector)
        return {**detector.describe(), "metrics": await run_in_threadpool(run_metrics, model_source)}

    @app.post("/predict", responses=PREDICT_RESPONSES, openapi_extra=PREDICT_REQUEST_BODY)
    async def predict(request: Request) -> dict[str, Any]:
        try:
            filename, data = await read_upload(request, max_bytes)
        except UploadError as exc:
            raise HTTPException(status_code=exc.status, detail=exc.detail) from None
        detector = await run_in_threadpool(load_detector)
        async with work_slots:
            try:
                return await run_in_threadpool(score_upload, detector, data, filename)
            except AudioTooLongError as exc:
                raise HTTPException(status_code=413, detail=str(exc)) from None
            except AudioError as exc:
                raise HTTPException(status_code=422, detail=str(exc)) from None
            except MemoryError:
                raise HTTPException(
                    status_code=413, detail=f"upload {filename!r}: too large to decode"
                ) from None

    return app


def create_app_from_env() -> Any:
    """The app for ``$DEEPFAKE_MODEL`` (default :data:`DEFAULT_MODEL` under the project root),
    with ``$DEEPFAKE_BACKEND``, ``$DEEPFAKE_LOG``, ``$DEEPFAKE_MAX_UPLOAD_MB``,
    ``$DEEPFAKE_MAX_DURATION_S`` and ``$DEEPFAKE_MAX_CONCURRENT`` when set."""
    from deepfake_lib.config import resolve_path

    source = os.environ.get(MODEL_ENV) or str(resolve_path(DEFAULT_MODEL))
    return create_app(
        source,
        backend=os.environ.get("DEEPFAKE_BACKEND", "auto"),
        log_path=os.environ.get("DEEPFAKE_LOG") or None,
        max_upload_mb=float(os.environ.get("DEEPFAKE_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB)),
        max_duration_s=float(os.environ.get("DEEPFAKE_MAX_DURATION_S", SERVICE_MAX_DURATION_S)),
        max_concurrent=int(os.environ.get("DEEPFAKE_MAX_CONCURRENT", DEFAULT_MAX_CONCURRENT)),
    )


_app: Any = None


def __getattr__(name: str) -> Any:
    """Build ``app`` (for ``uvicorn deepfake_lib.deploy.service:app``) on first access, not at import."""
    global _app
    if name == "app":
        if _app is None:
            _app = create_app_from_env()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
