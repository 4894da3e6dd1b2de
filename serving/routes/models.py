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
    """Every loaded model with its task, version, whether it is its task's default, and card."""
    if not models.models:  # pragma: no cover - start-up refuses an empty registry
        raise ApiError(503, "not_ready", "no models loaded")
    return {
        "models": [
            {
                "name": name,
                "task": m.task,
                "version": m.version,
                "default": models.defaults.get(m.task) == name,
                "card": dict(m.predictor.card),
            }
            for name, m in models.models.items()
        ]
    }
