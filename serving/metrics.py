"""Prometheus metrics, one registry per app (so that several apps in one test process never clash).

HTTP: request counts and latency histograms by method, route template and status. Inference:
micro-batch sizes (sentences and requests), queue depth, tokens tagged and tokens per second,
inference time, and requests refused by back-pressure.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """The collectors of one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        labels = ["method", "route", "status"]
        self.requests = Counter(
            "ner_http_requests_total", "HTTP requests by route and status.", labels, registry=r
        )
        self.latency = Histogram(
            "ner_http_request_duration_seconds",
            "HTTP request latency by route and status.",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_sentences = Histogram(
            "ner_batch_size_sentences",
            "Sentences per predictor call (micro-batch size).",
            ["model"],
            buckets=_SIZE_BUCKETS,
            registry=r,
        )
        self.batch_requests = Histogram(
            "ner_batch_size_requests",
            "Requests per predictor call.",
            ["model"],
            buckets=_SIZE_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "ner_queue_depth", "Requests waiting for inference.", ["model"], registry=r
        )
        self.tokens = Counter("ner_tokens_total", "Tokens tagged.", ["model"], registry=r)
        self.tokens_per_second = Gauge(
            "ner_tokens_per_second",
            "Tokens per second of inference time, over the last predictor call.",
            ["model"],
            registry=r,
        )
        self.inference = Histogram(
            "ner_inference_duration_seconds",
            "Time of one predictor call.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.rejected = Counter(
            "ner_rejected_total",
            "Requests refused with 503 (queue full or not ready).",
            ["model", "reason"],
            registry=r,
        )

    def observe_batch(self, model: str, requests: int, sentences: int, tokens: int, seconds: float):
        """Record one predictor call."""
        self.batch_sentences.labels(model).observe(sentences)
        self.batch_requests.labels(model).observe(requests)
        self.tokens.labels(model).inc(tokens)
        self.inference.labels(model).observe(seconds)
        if seconds > 0:
            self.tokens_per_second.labels(model).set(tokens / seconds)


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class MetricsMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request by its route template.

    Paths that match no route are labelled ``unmatched`` and odd methods ``other``, so that
    fuzzed URLs cannot grow the label sets (and memory) without bound.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_status(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            method = method if method in _METHODS else "other"
            labels = (method, route, str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - start)
