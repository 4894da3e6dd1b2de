"""GET /metrics in the Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from serving.deps import app_metrics
from serving.metrics import Metrics

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(collectors: Metrics = Depends(app_metrics)) -> Response:
    """Request counts and latency by route and status, batch sizes, queue depth, tokens/s.

    With several worker processes, the counts of all of them, whichever one answers.
    """
    return Response(collectors.exposition(), media_type=CONTENT_TYPE_LATEST)
