"""Prometheus metrics, one registry per app (so that several apps in one test process never clash).

HTTP: request counts and latency histograms by method, route template and status. Inference:
micro-batch sizes (sentences and requests), queue depth, tokens tagged and tokens per second,
inference time, and requests refused by back-pressure.

With several worker processes (``ner serve --workers N``), the parent points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh temporary folder before it starts the workers
(``multiprocess_dir``); each worker's collectors then write their values to files there, and
``/metrics`` of any worker reports the sum over all of them (prometheus_client's multiprocess
mode). The variable must be set before ``prometheus_client`` is imported, which is why only the
parent of fresh worker processes sets it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CLIENT_GONE = "ner.client_gone"
"""Scope key the request guard sets when the client left before its answer."""

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """The collectors of one app."""

    def __init__(self) -> None:
        self.multiprocess_dir: str | None = os.environ.get(MULTIPROC_ENV) or None
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
            "ner_queue_depth",
            "Requests waiting for inference (summed over live worker processes).",
            ["model"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.tokens = Counter("ner_tokens_total", "Tokens tagged.", ["model"], registry=r)
        self.tokens_per_second = Gauge(
            "ner_tokens_per_second",
            "Tokens per second of inference time, over the last predictor call.",
            ["model"],
            registry=r,
            multiprocess_mode="mostrecent",
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

    def exposition(self) -> bytes:
        """The Prometheus text format: this app's collectors, or every worker's in multiprocess."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        return generate_latest(registry)

    def close(self) -> None:
        """At shutdown: in multiprocess mode, drop this process's live gauges (queue depth)."""
        if self.multiprocess_dir is not None and os.path.isdir(self.multiprocess_dir):
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)


@contextmanager
def multiprocess_dir() -> Iterator[str]:
    """Set ``PROMETHEUS_MULTIPROC_DIR`` to a fresh temporary folder; restore and remove it after.

    For the parent of worker processes, before it starts them: the workers inherit the variable.
    """
    path = tempfile.mkdtemp(prefix="ner-metrics-")
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


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
            if scope.get(CLIENT_GONE):
                status = 499  # nginx's "client closed request": not a server error
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            method = method if method in _METHODS else "other"
            labels = (method, route, str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - start)
