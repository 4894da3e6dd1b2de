"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from serving.deps import app_settings, registry
from serving.registry import ModelRegistry
from serving.schemas import HealthResponse, ReadyResponse
from serving.settings import Settings

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse, summary="Liveness")
async def healthz() -> dict[str, str]:
    """200 while the process serves HTTP at all."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    summary="Readiness",
    responses={
        503: {
            "model": ReadyResponse,
            "description": "Some model is not loaded and warmed yet, or the server is stopping.",
            "headers": {
                "Retry-After": {
                    "description": "Seconds to wait before asking again.",
                    "schema": {"type": "integer"},
                }
            },
        }
    },
)
async def readyz(
    models: ModelRegistry | None = Depends(registry),
    settings: Settings = Depends(app_settings),
) -> JSONResponse:
    """200 only when every model is loaded and warmed (a warm-up sentence tagged), else 503."""
    states = {} if models is None else {n: m.state for n, m in models.models.items()}
    if models is not None and models.ready:
        return JSONResponse({"status": "ready", "models": states})
    return JSONResponse(
        {"status": "not ready", "models": states},
        status_code=503,
        headers={"Retry-After": str(settings.retry_after_s)},
    )
