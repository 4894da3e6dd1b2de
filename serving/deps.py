"""FastAPI dependencies: the app's settings, models and metrics (set up by ``create_app``).

All ``async``: FastAPI would run a plain ``def`` dependency in a worker thread, a thread hop per
dependency per request.
"""

from __future__ import annotations

from fastapi import Request

from serving.errors import ApiError
from serving.metrics import Metrics
from serving.registry import ModelRegistry
from serving.settings import Settings


async def app_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


async def app_metrics(request: Request) -> Metrics:
    """The app's Prometheus collectors."""
    return request.app.state.metrics


async def registry(request: Request) -> ModelRegistry | None:
    """The loaded models, ``None`` before start-up finished."""
    return request.app.state.registry


async def ready_registry(request: Request) -> ModelRegistry:
    """The loaded models; 503 with Retry-After unless every model is ready."""
    models: ModelRegistry | None = request.app.state.registry
    if models is None or not models.ready:
        settings: Settings = request.app.state.settings
        request.app.state.metrics.rejected.labels("*", "not_ready").inc()
        raise ApiError(
            503,
            "not_ready",
            "the server is starting or shutting down; retry shortly",
            headers={"Retry-After": str(settings.retry_after_s)},
        )
    return models
