"""serving.requests.TaskRoutes: task POSTs go straight to their endpoints, with the same
answers, errors, metrics labels and routing as through the whole stack."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from serving.main import create_app
from serving.requests import TaskRoutes
from serving.settings import Settings
from tests.serving.support import MODEL

TEXT = "Angela Merkel met Barack Obama in Washington ."


def _count(metrics: str, labels: str) -> float:
    prefix = f"ner_http_requests_total{{{labels}}} "
    return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(prefix))


def _task_routes(app: Any) -> TaskRoutes:
    layer = app.middleware_stack
    while not isinstance(layer, TaskRoutes):
        layer = layer.app
    return layer


def test_only_task_posts_take_the_short_way(models_dir: Any, predictor: Any) -> None:
    """The layers below TaskRoutes (router, FastAPI's wrappers) see every request but the
    task POSTs: what is the point of it."""
    app = create_app(Settings(models_dir=models_dir), predictors={MODEL: predictor})
    with TestClient(app, raise_server_exceptions=False) as client:
        below, seen = _task_routes(app), []
        down = below.app

        async def recorder(scope: Any, receive: Any, send: Any) -> None:
            seen.append((scope["method"], scope["path"]))
            await down(scope, receive, send)

        below.app = recorder
        assert client.post("/v1/tag", json={"text": TEXT}).status_code == 200
        assert client.post("/v1/tag", json={"text": ""}).status_code == 422
        assert client.post("/v1/classify", json={"text": TEXT}).status_code == 404  # no model
        assert client.get("/v1/tag").status_code == 405
        assert client.post("/v1/models").status_code == 405
    assert seen == [("GET", "/v1/tag"), ("POST", "/v1/models")]


def test_task_posts_are_answered_and_labelled(make_client: Callable[..., Any]) -> None:
    with make_client() as client:
        ok = client.post("/v1/tag", json={"text": TEXT})
        assert ok.status_code == 200 and ok.json()["tokens"][0]["text"] == "Angela"
        bad = client.post("/v1/tag", json={"text": ""})  # the endpoint's ApiError -> handler
        assert bad.status_code == 422 and bad.json()["error"]["type"] == "empty"
        unknown = client.post("/v1/tag", json={"text": TEXT, "model": "nope"})
        assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "model"
        not_json = client.post("/v1/tag", content=b"x", headers={"content-type": "text/plain"})
        assert not_json.status_code == 415
        metrics = client.get("/metrics").text
    route = 'method="POST",route="/v1/tag"'
    assert _count(metrics, f'{route},status="200"') == 1
    assert _count(metrics, f'{route},status="422"') == 1
    assert _count(metrics, f'{route},status="404"') == 1
    assert _count(metrics, f'{route},status="415"') == 1


def test_other_methods_and_paths_go_down_the_stack(make_client: Callable[..., Any]) -> None:
    with make_client() as client:
        get = client.get("/v1/tag")
        assert get.status_code == 405 and get.json()["error"]["type"] == "method_not_allowed"
        slash = client.post("/v1/tag/", json={"text": TEXT}, follow_redirects=False)
        assert slash.status_code in (307, 404)  # the router's answer, never the endpoint's
        assert client.post("/v1/nothing", json={}).status_code == 404
        assert client.post("/healthz").status_code == 405
        metrics = client.get("/metrics").text
    assert _count(metrics, 'method="POST",route="unmatched",status="404"') == 1


def test_under_a_root_path(models_dir: Any, predictor: Any) -> None:
    """Behind a proxy that mounts the app at /api (uvicorn --root-path /api)."""
    settings = Settings(models_dir=models_dir)
    app = create_app(settings, predictors={MODEL: predictor})
    with TestClient(app, root_path="/api", raise_server_exceptions=False) as client:
        r = client.post("/api/v1/tag", json={"text": TEXT})
        assert r.status_code == 200, r.text
        assert [t["text"] for t in r.json()["tokens"]] == TEXT.split()
        metrics = client.get("/api/metrics").text
    assert _count(metrics, 'method="POST",route="/v1/tag",status="200"') == 1
