"""POST /v1/classify beside /v1/tag: models of two tasks in one app, defaults per task."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.serving.support import CLASSIFIER, MODEL, SEED
from tests.serving.test_bad_input import CASES, JSON, LIMITS, assert_error

REVIEW = "A warm, funny and moving film -- I loved it!"


@pytest.fixture
def both(make_client: Any, predictor: Any, classifier: Any) -> Iterator[TestClient]:
    """An app serving the tiny tagger and the tiny classifier."""
    with make_client(predictors={MODEL: predictor, CLASSIFIER: classifier}) as client:
        yield client


@pytest.fixture(scope="module")
def limited(models_dir: Any, predictor: Any, classifier: Any) -> Iterator[TestClient]:
    from serving.main import create_app
    from serving.settings import Settings

    settings = Settings(models_dir=models_dir, **LIMITS)
    app = create_app(settings, predictors={MODEL: predictor, CLASSIFIER: classifier})
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_classify_one_text(both: TestClient, classifier: Any) -> None:
    r = both.post("/v1/classify", json={"text": REVIEW})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"model", "label", "probabilities"}
    assert body["model"] == {"name": CLASSIFIER, "version": classifier.version}
    assert set(body["probabilities"]) == set(classifier.labels)
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert body["label"] == max(body["probabilities"], key=body["probabilities"].get)
    # the server lowercases and tokenises with the model's tokenizer, then asks the library
    expected = classifier.classify([classifier.tokenize(REVIEW)])[0]
    assert body["label"] == expected.label
    for label, p in expected.probabilities.items():
        assert body["probabilities"][label] == pytest.approx(p, abs=1e-6)


def test_classify_documents_in_request_order(both: TestClient, classifier: Any) -> None:
    texts = [REVIEW, "Dull, lifeless and far too long.", "...", "It's a film."]
    r = both.post("/v1/classify", json={"documents": [{"text": t} for t in texts]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"model", "results"}
    expected = classifier.classify([classifier.tokenize(t) for t in texts])
    assert [x["label"] for x in body["results"]] == [e.label for e in expected]
    for got, want in zip(body["results"], expected, strict=True):
        for label, p in want.probabilities.items():
            assert got["probabilities"][label] == pytest.approx(p, abs=1e-6)


def test_models_lists_every_task_with_its_default(both: TestClient, classifier: Any) -> None:
    models = {m["name"]: m for m in both.get("/v1/models").json()["models"]}
    assert set(models) == {MODEL, CLASSIFIER}
    assert models[MODEL]["task"] == "ner" and models[MODEL]["default"] is True
    assert models[CLASSIFIER]["task"] == "classify" and models[CLASSIFIER]["default"] is True
    assert models[CLASSIFIER]["labels"] == list(classifier.labels)
    assert models[CLASSIFIER]["state"] == "ready"
    # a request without model goes to its own task's default
    assert both.post("/v1/tag", json={"text": SEED}).json()["model"]["name"] == MODEL
    assert both.post("/v1/classify", json={"text": SEED}).json()["model"]["name"] == CLASSIFIER


@pytest.mark.parametrize(
    ("path", "body", "task"),
    [
        ("/v1/tag", {"text": SEED, "model": CLASSIFIER}, "'classify'"),
        ("/v1/classify", {"text": SEED, "model": MODEL}, "'ner'"),
        ("/v1/classify", {"documents": [{"text": SEED}], "model": MODEL}, "'ner'"),
    ],
)
def test_a_model_of_another_task_is_refused(
    both: TestClient, path: str, body: dict[str, Any], task: str
) -> None:
    error = assert_error(both.post(path, json=body), 422, "wrong_task", task)
    assert error["field"] == "model"
    assert body["model"] in error["message"]


def test_without_a_model_of_its_task_the_route_is_404_and_unpublished(client: TestClient) -> None:
    r = client.post("/v1/classify", json={"text": REVIEW})
    assert_error(r, 404, "unknown_model", "no 'classify' model is loaded")
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/tag" in paths and "/v1/classify" not in paths


def test_openapi_publishes_classify_request(both: TestClient) -> None:
    spec = both.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    post = spec["paths"]["/v1/classify"]["post"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/ClassifyRequest"
    forms = {r["$ref"].rsplit("/", 1)[1] for r in schemas["ClassifyRequest"]["oneOf"]}
    assert forms == {"ClassifyTextRequest", "ClassifyDocumentsRequest"}
    model = schemas["ClassifyTextRequest"]["properties"]["model"]
    assert model.get("enum", [model.get("const")]) == [CLASSIFIER]  # this task's names only
    tag_model = schemas["TextRequest"]["properties"]["model"]
    assert tag_model.get("enum", [tag_model.get("const")]) == [MODEL]
    for name in ("ClassifyTextRequest", "ClassifyDocumentsRequest", "ClassifyDocument"):
        assert schemas[name]["additionalProperties"] is False
    assert set(post["responses"]) >= {"200", "400", "404", "413", "415", "422", "503"}


# Every bad body of /v1/tag that has no tokens form gets the same answer on /v1/classify.
CLASSIFY_CASES = [c for c in CASES if b"tokens" not in c[1] and c[0] != "no form"]


@pytest.mark.parametrize(
    ("body", "status", "kind", "fragment", "limit"),
    [case[1:] for case in CLASSIFY_CASES],
    ids=[case[0] for case in CLASSIFY_CASES],
)
def test_bad_request(
    limited: TestClient, body: bytes, status: int, kind: str, fragment: str, limit: str | None
) -> None:
    r = limited.post("/v1/classify", content=body, headers=JSON)
    error = assert_error(r, status, kind, fragment)
    if limit is not None:
        assert error["limit"] == {"name": limit, "value": LIMITS[limit]}


@pytest.mark.parametrize(
    ("body", "kind", "fragment"),
    [
        (b'{"model": "tiny-sst"}', "invalid_request", "needs one of text, documents"),
        (b'{"tokens": ["a"]}', "invalid_request", "needs one of text, documents"),
        (b'{"text": "a", "documents": []}', "invalid_request", "both"),
        (b'{"documents": [{"tokens": ["a"]}]}', "missing_field", "documents.0.text is required"),
        (b'{"documents": [{"text": "a"}, 3]}', "invalid_request", "documents.1 must be"),
    ],
)
def test_classify_forms(limited: TestClient, body: bytes, kind: str, fragment: str) -> None:
    assert_error(limited.post("/v1/classify", content=body, headers=JSON), 422, kind, fragment)


def test_limits_are_inclusive(limited: TestClient) -> None:
    for body in ({"text": "x" * 40}, {"documents": [{"text": "a"}, {"text": "b"}, {"text": "c"}]}):
        r = limited.post("/v1/classify", content=json.dumps(body).encode(), headers=JSON)
        assert r.status_code == 200, r.text
