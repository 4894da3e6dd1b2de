"""GET /v1/models: what is loaded."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from serving.deps import ready_registry
from serving.errors import ApiError
from serving.registry import ModelRegistry
from serving.schemas import ErrorBody, ModelsResponse

router = APIRouter(tags=["models"])


@router.get(
    "/v1/models",
    response_model=ModelsResponse,
    summary="Loaded models",
    responses={
        503: {
            "model": ErrorBody,
            "description": "Not ready (starting or stopping).",
            "headers": {
                "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
            },
        }
    },
)
async def list_models(models: ModelRegistry = Depends(ready_registry)) -> dict[str, Any]:
    """Every loaded model, of every task: what its predictor describes (name, task, version and
    the task's own fields, e.g. a tagger's labels), its state, whether it is its task's default
    (the model that answers a request without ``model``), and its card."""
    if not models.models:  # pragma: no cover - start-up refuses an empty registry
        raise ApiError(503, "not_ready", "no models loaded")
    return {
        "models": [
            m.describe(default=models.defaults.get(m.task) == name)
            for name, m in models.models.items()
        ]
    }
