"""Prometheus metrics of the service (``GET /metrics``), with ``prometheus_client``.

Each app gets its own :class:`ServiceMetrics` registry (several apps in one process do not
collide). What is exported, all prefixed ``deepfake_``:

* ``requests_total{route, method, status}`` and ``request_errors_total{route, status}``
  (status >= 400; a WebSocket stream counts under ``method="WEBSOCKET"`` with its close code);
  unmatched paths share ``route="<unmatched>"`` so scanners cannot blow up the label set;
* ``request_duration_seconds{route}`` (total), ``decode_seconds`` and
  ``inference_seconds{model, runtime}`` histograms;
* ``streams_open`` gauge, ``windows_scored_total{model, runtime, source}`` (source ``predict``
  or ``stream``);
* ``score{model, runtime, source}``: histogram of clip scores (log-odds of bona fide) and
  ``verdicts_total{model, runtime, label}`` with ``spoof_share_recent{model, runtime}``, the
  share of the last :data:`RECENT_VERDICTS` verdicts labelled Fake: the drift signals;
* ``model_info{model, runtime, device, window_s, hop_s, threshold}`` = 1.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "RECENT_VERDICTS", "SCORE_BUCKETS", "MetricsMiddleware", "ServiceMetrics"]

SCORE_BUCKETS: tuple[float, ...] = (-12, -8, -6, -4, -3, -2, -1, -0.5, 0, 0.5, 1, 2, 3, 4, 6, 8, 12)
"""Upper bounds of the score histogram (log-odds of bona fide)."""

LATENCY_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
"""Upper bounds of the latency histograms (s)."""

RECENT_VERDICTS = 200
"""Verdicts behind ``spoof_share_recent``."""

UNMATCHED = "<unmatched>"
"""``route`` label of requests no route matched."""


class ServiceMetrics:
    """The service's metrics in a registry of their own (see the module docstring)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "deepfake_requests",
            "Requests by route, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.errors = Counter(
            "deepfake_request_errors", "Requests answered with status >= 400", ["route", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "deepfake_request_duration_seconds",
            "Wall time per request (s)",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decode_seconds = Histogram(
            "deepfake_decode_seconds",
            "Decoding and resampling per upload (s)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            "deepfake_inference_seconds",
            "Model time per upload or streamed window (s)",
            ["model", "runtime"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.streams_open = Gauge("deepfake_streams_open", "WebSocket streams open now", registry=r)
        self.windows = Counter(
            "deepfake_windows_scored", "Windows scored", ["model", "runtime", "source"], registry=r
        )
        self.scores = Histogram(
            "deepfake_score",
            "Clip scores, log-odds of bona fide (a shift means the input or the model changed)",
            ["model", "runtime", "source"],
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.verdicts = Counter(
            "deepfake_verdicts", "Clip verdicts by label", ["model", "runtime", "label"], registry=r
        )
        self.spoof_share = Gauge(
            "deepfake_spoof_share_recent",
            f"Share of the last {RECENT_VERDICTS} verdicts labelled Fake",
            ["model", "runtime"],
            registry=r,
        )
        self.model_info = Gauge(
            "deepfake_model_info",
            "The model served (value 1)",
            ["model", "runtime", "device", "window_s", "hop_s", "threshold"],
            registry=r,
        )
        self._recent: collections.deque[bool] = collections.deque(maxlen=RECENT_VERDICTS)
        self._lock = threading.Lock()
        self._labels: dict[str, str] = {"model": "", "runtime": ""}

    def set_model(self, describe: dict[str, Any]) -> None:
        """Record the served model (a :meth:`Detector.describe` dict) for the model/runtime labels."""
        self._labels = {"model": str(describe.get("id", "")), "runtime": str(describe.get("runtime", ""))}
        self.model_info.labels(
            **self._labels,
            device=str(describe.get("device", "")),
            window_s=f"{describe.get('window_s', 0):g}",
            hop_s=f"{describe.get('hop_s', 0):g}",
            threshold=f"{describe.get('threshold', 0):g}",
        ).set(1)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request (``status``: HTTP status or WebSocket close code)."""
        self.requests.labels(route, method, str(status)).inc()
        if status >= 400 and not (method == "WEBSOCKET" and status == 1000):
            self.errors.labels(route, str(status)).inc()
        self.request_seconds.labels(route).observe(seconds)

    def observe_prediction(self, result: Any, source: str) -> None:
        """Count a clip verdict (a :class:`Prediction` or its dict): score, label, windows, timings."""
        get = result.get if isinstance(result, dict) else lambda k, d=None: getattr(result, k, d)
        labels = self._labels
        self.scores.labels(**labels, source=source).observe(float(get("score")))
        fake = get("label") == "Fake"
        self.verdicts.labels(**labels, label=str(get("label"))).inc()
        with self._lock:
            self._recent.append(fake)
            share = sum(self._recent) / len(self._recent)
        self.spoof_share.labels(**labels).set(share)
        if source == "predict":
            self.windows.labels(**labels, source=source).inc(len(get("windows") or []))
            self.decode_seconds.observe(float(get("decode_ms", 0.0) or 0.0) / 1000.0)
            self.inference_seconds.labels(**labels).observe(float(get("inference_ms", 0.0) or 0.0) / 1000.0)

    def observe_window(self, message: dict[str, Any]) -> None:
        """Count one streamed window message and its model time (``inference_ms``)."""
        self.windows.labels(**self._labels, source="stream").inc()
        self.inference_seconds.labels(**self._labels).observe(
            float(message.get("inference_ms", 0.0)) / 1000.0
        )

    def render(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """ASGI middleware counting requests and WebSocket sessions in :class:`ServiceMetrics`."""

    def __init__(
        self, app: Callable[..., Awaitable[None]], metrics: ServiceMetrics, known_paths: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.known_paths = frozenset(known_paths)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        seen = {"status": 500 if scope["type"] == "http" else 1006}

        async def spy(message: MutableMapping[str, Any]) -> None:
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                seen["status"] = int(message["status"])
            elif kind == "websocket.close":
                seen["status"] = int(message.get("code", 1000))
            await send(message)

        try:
            await self.app(scope, receive, spy)
        finally:
            name = getattr(scope.get("route"), "path", None)  # set by the router when a route matched
            if name is None:  # refused before routing (e.g. 401): a known path keeps its name
                name = scope.get("path") if scope.get("path") in self.known_paths else UNMATCHED
            method = scope.get("method", "WEBSOCKET") if scope["type"] == "http" else "WEBSOCKET"
            self.metrics.observe_request(name, method, seen["status"], time.perf_counter() - started)
