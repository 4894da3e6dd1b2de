"""The FastAPI app: ``create_app(settings)``.

Start-up (the lifespan) loads every model (of any task), builds each task route's request
schema for the loaded names, starts one micro-batcher per model and warms each model up; any
failure stops start-up (``StartupError``), so the server is never half-ready. ``/readyz`` turns
200 only after that, and back to 503 as soon as shutdown begins.

:data:`ROUTES` is the one list of route modules. A task route module has ``ENDPOINTS``
(``serving.requests.Endpoint``: path, task, request schema), ``batch_fn(predictor)``, the
micro-batcher's call for a model of its task, and optionally ``warmup()``, run at start-up when a
model of its task is loaded; everything else is shared.

Run it with ``ner serve`` (serving.cli) or ``uvicorn --factory serving.main:create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ner import __version__
from serving.batcher import Arrivals, MicroBatcher, PredictFn
from serving.errors import install_error_handlers
from serving.guard import Guards, RequestGuard
from serving.metrics import Metrics, MetricsMiddleware
from serving.registry import (
    ModelRegistry,
    ServedModel,
    StartupError,
    default_models,
    load_predictors,
)
from serving.requests import Endpoint, TaskRoutes, shedder
from serving.routes import classify, generate, health, metrics, models, tag, translate
from serving.settings import Settings, get_settings
from serving.shutdown import drain_on_signals

log = logging.getLogger("serving")

SWITCH_INTERVAL_S = 0.001
GC_YOUNG_THRESHOLD = 10_000

ROUTES: tuple[ModuleType, ...] = (tag, classify, generate, translate, models, health, metrics)
"""Every route module, in the order the API docs show them."""

DESCRIPTION = """Recurrent models (BiLSTM/GRU) on ONNX Runtime: named-entity tagging and more.

`POST /v1/tag` takes `{"text"}`, `{"tokens"}` or `{"documents": [...]}`; `POST /v1/classify`
takes `{"text"}` or `{"documents": [...]}`. `GET /v1/models` lists the loaded models with their
task; a request without `model` is answered by its task's default model. Every rule the server
applies to a request is stated in the schema; every error has the body
`{"error": {"type", "message", "field"?, "limit"?}}`.
"""


def endpoints() -> tuple[Endpoint, ...]:
    """The task endpoints of :data:`ROUTES`."""
    return tuple(e for module in ROUTES for e in getattr(module, "ENDPOINTS", ()))


def batch_fns() -> dict[str, Any]:
    """Task -> ``batch_fn(predictor)`` of the route module serving it."""
    found: dict[str, Any] = {}
    for module in ROUTES:
        batch_fn = getattr(module, "batch_fn", None)
        for endpoint in getattr(module, "ENDPOINTS", ()):
            for task in endpoint.tasks if batch_fn is not None else ():
                found.setdefault(task, batch_fn)
    return found


def _lower_priority(nice: int) -> None:
    """Run the calling thread ``nice`` lower in OS priority: when the cores are busy (with this
    process's own inference or anything else), the kernel runs the event loop first, so that
    /healthz and refusals are answered at once; the workers use whatever CPU is left."""
    if nice <= 0:
        return
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


def _worker_pool(name: str, nice: int) -> ThreadPoolExecutor:
    """One thread for one kind of work off the event loop, ``nice`` lower in OS priority."""
    return ThreadPoolExecutor(
        1, thread_name_prefix=name, initializer=_lower_priority, initargs=(nice,)
    )


def _batcher(app: FastAPI, name: str, predict: PredictFn) -> MicroBatcher:
    settings: Settings = app.state.settings
    return MicroBatcher(
        name,
        predict,
        app.state.executor,
        max_batch_size=settings.max_batch_size,
        max_wait_ms=settings.max_wait_ms,
        queue_size=settings.queue_size,
        max_batch_tokens=settings.max_batch_tokens,
        max_queued_tokens=settings.max_queued_tokens,
        max_queue_wait_s=settings.max_queue_wait_s,
        timeout_s=settings.request_timeout_s,
        metrics=app.state.metrics,
        arrivals=app.state.arrivals,
    )


async def _start(app: FastAPI, preloaded: Mapping[str, Any] | None) -> ModelRegistry:
    """Load (unless preloaded), start batchers, warm up; raises StartupError."""
    settings: Settings = app.state.settings
    if preloaded is not None:
        predictors = dict(preloaded)
    else:
        predictors = await asyncio.to_thread(load_predictors, settings)
    if not predictors:
        raise StartupError("no models to serve")
    registry = ModelRegistry(models={}, defaults=default_models(settings, predictors))
    served = batch_fns()
    for name, predictor in predictors.items():
        if predictor.task not in served:
            raise StartupError(
                f"model {name!r}: no route serves {predictor.task!r} models "
                f"(served tasks: {', '.join(served)})"
            )
        batcher = _batcher(app, name, served[predictor.task](predictor))
        registry.models[name] = ServedModel(name, predictor, batcher, app.state.executor)
    app.state.registry = registry
    app.state.schemas = {e.path: e.build_schema(settings, e.names(registry)) for e in endpoints()}
    app.state.shed = shedder(app, endpoints())  # serving.protocol refuses with it early
    app.openapi_schema = None
    if settings.warmup:
        for module in ROUTES:
            tasks = {e.task for e in getattr(module, "ENDPOINTS", ())}
            if hasattr(module, "warmup") and tasks & set(registry.tasks()):
                await asyncio.to_thread(module.warmup)
    for model in registry.models.values():
        model.batcher.start()
        if settings.warmup:
            try:
                await model.run(model.predictor.warmup)
            except Exception as e:
                raise StartupError(f"model {model.name!r}: warm-up failed ({e})") from e
        model.state = "ready"
    registry.accepting = True
    return registry


async def _stop(app: FastAPI) -> None:
    registry: ModelRegistry | None = app.state.registry
    if registry is not None:
        registry.accepting = False
        for model in registry.models.values():
            await model.batcher.close()
            model.state = "stopped"


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus each task route's request schema for the loaded models and caps.

    Once started, the paths of tasks with no loaded model are left out (they answer 404).
    """
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    registry: ModelRegistry | None = app.state.registry
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for endpoint in endpoints():
        request_schema = app.state.schemas.get(endpoint.path)
        if request_schema is None:  # not started: model names unknown yet
            request_schema = endpoint.build_schema(app.state.settings, ())
        elif registry is not None and not endpoint.names(registry):
            schema["paths"].pop(endpoint.path, None)
            continue
        top, defs = request_schema.json_schema()
        components.update(defs)
        components[endpoint.schema_name] = {"title": endpoint.schema_name, **top}
    if registry is not None:
        app.openapi_schema = schema
    return schema


def create_app(
    settings: Settings | None = None, *, predictors: Mapping[str, Any] | None = None
) -> FastAPI:
    """The app. ``predictors`` (name -> a ``ner.tasks`` predictor) skips loading from settings."""
    settings = settings if settings is not None else get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The event loop shares the GIL with the inference and preparation threads; a waiting
        # thread takes the GIL after this interval (default 5 ms), so a shorter one keeps
        # /healthz and small requests answered while large ones are prepared.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        nice = settings.worker_nice
        app.state.executor = _worker_pool("ner-infer", nice)
        # Python-heavy work of large requests, off the event loop: one thread prepares them
        # (splits texts into sentences), another builds answers, so that an answer never
        # waits behind the preparation of requests that came later
        app.state.prep_executor = _worker_pool("ner-prep", nice)
        app.state.answer_executor = _worker_pool("ner-answer", nice)
        try:
            try:
                await _start(app, predictors)
            except StartupError as e:
                log.error("start-up failed: %s", e)
                raise
            # What start-up made (models, routes, schemas, imported modules) lives as long as
            # the process: out of the collector's sight, a full collection no longer walks it
            # (these took 50-95 ms each under an overload, holding up /healthz).
            gc.collect()
            gc.freeze()
            # Each request leaves a few hundred container objects for the young generation;
            # collecting it every 700 (Python's default) took ~8% of the event loop's time under
            # load, every 10,000 (the same objects, scanned less often) ~7% less server CPU
            # per /v1/tag request in all.
            gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
            undo_signals = drain_on_signals(app, settings.graceful_timeout_s)
            try:
                yield
            finally:
                undo_signals()
        finally:
            await _stop(app)
            app.state.executor.shutdown(wait=True)
            app.state.prep_executor.shutdown(wait=True)
            app.state.answer_executor.shutdown(wait=True)
            app.state.metrics.close()

    app = FastAPI(
        title="rnn-ner",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.arrivals = Arrivals()
    app.state.registry = None
    app.state.schemas = {}
    app.state.draining = False
    app.state.guards = Guards(settings.body_timeout_s, settings.retry_after_s)
    install_error_handlers(app)
    # the last added is the outermost: metrics see the status the guard settles on
    task_routes = [route for module in ROUTES for route in module.router.routes]
    app.add_middleware(TaskRoutes, fastapi_app=app, routes=task_routes)
    app.add_middleware(RequestGuard, guards=app.state.guards)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    for module in ROUTES:
        app.include_router(module.router)
    if importlib.util.find_spec("serving.routes.demo") is not None:
        from serving.routes import demo

        app.include_router(demo.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app
