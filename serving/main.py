"""The FastAPI app: ``create_app(settings)``.

Start-up (the lifespan) loads every model, builds the request schema for the loaded names,
starts one micro-batcher per model and tags a warm-up sentence with each; any failure stops
start-up (``StartupError``), so the server is never half-ready. ``/readyz`` turns 200 only after
that, and back to 503 as soon as shutdown begins.

Run it with ``ner serve`` (serving.cli) or ``uvicorn --factory serving.main:create_app``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ner import __version__
from serving.batcher import Arrivals, MicroBatcher
from serving.errors import install_error_handlers
from serving.metrics import Metrics, MetricsMiddleware
from serving.registry import (
    WARMUP_SENTENCE,
    ModelRegistry,
    ServedModel,
    StartupError,
    default_models,
    load_predictors,
)
from serving.routes import health, metrics, models, tag
from serving.schemas import RequestLimits, RequestSchema, build_request_schema
from serving.settings import Settings, get_settings

log = logging.getLogger("serving")

DESCRIPTION = """Named-entity recognition with recurrent taggers (BiLSTM/GRU + CRF) on ONNX Runtime.

`POST /v1/tag` takes `{"text"}`, `{"tokens"}` or `{"documents": [...]}`. Every rule the server
applies to a request is stated in the schema; every error has the body
`{"error": {"type", "message", "field"?, "limit"?}}`.
"""


def _limits(settings: Settings) -> RequestLimits:
    return RequestLimits(
        max_chars=settings.max_chars,
        max_tokens=settings.max_tokens,
        max_documents=settings.max_documents,
        max_token_chars=settings.max_token_chars,
    )


def _predict_fn(predictor: Any) -> Any:
    def predict(sentences: list[list[str]], batch_size: int) -> list[Any]:
        return predictor.predict(sentences, batch_size=batch_size)

    return predict


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
    executor: ThreadPoolExecutor = app.state.executor
    for name, predictor in predictors.items():
        batcher = MicroBatcher(
            name,
            _predict_fn(predictor),
            executor,
            max_batch_size=settings.max_batch_size,
            max_wait_ms=settings.max_wait_ms,
            queue_size=settings.queue_size,
            metrics=app.state.metrics,
            arrivals=app.state.arrivals,
        )
        registry.models[name] = ServedModel(name, predictor, batcher)
    app.state.registry = registry
    app.state.request_schema = build_request_schema(_limits(settings), registry.names("ner"))
    app.openapi_schema = None
    loop = asyncio.get_running_loop()
    for model in registry.models.values():
        model.batcher.start()
        if settings.warmup:
            try:
                await loop.run_in_executor(
                    executor, _predict_fn(model.predictor), [WARMUP_SENTENCE], 1
                )
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
    """FastAPI's schema plus the request schema built for the loaded models and caps."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    request_schema: RequestSchema | None = app.state.request_schema
    if request_schema is None:  # not started: model names unknown yet
        request_schema = build_request_schema(_limits(app.state.settings), ())
    top, defs = request_schema.json_schema()
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(defs)
    components["TagRequest"] = {"title": "TagRequest", **top}
    if app.state.request_schema is not None:
        app.openapi_schema = schema
    return schema


def create_app(
    settings: Settings | None = None, *, predictors: Mapping[str, Any] | None = None
) -> FastAPI:
    """The app. ``predictors`` (name -> ner.predict.Predictor) skips loading from settings."""
    settings = settings if settings is not None else get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ner-infer")
        try:
            try:
                await _start(app, predictors)
            except StartupError as e:
                log.error("start-up failed: %s", e)
                raise
            yield
        finally:
            await _stop(app)
            app.state.executor.shutdown(wait=True)
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
    app.state.request_schema = None
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    for module in (tag, models, health, metrics):
        app.include_router(module.router)
    if importlib.util.find_spec("serving.routes.demo") is not None:
        from serving.routes import demo

        app.include_router(demo.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app
