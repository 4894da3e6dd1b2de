"""POST /v1/tag, /v1/models, /healthz, /readyz, /metrics and the OpenAPI schema, in process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.main import create_app
from serving.registry import StartupError
from serving.schemas import BatchResponse, TagResponse
from serving.settings import Settings
from tests.serving.support import MODEL, SEED


def check_offsets(source: str, doc: dict[str, Any]) -> None:
    """Every token and entity text is the source sliced at its offsets."""
    for tok in doc["tokens"]:
        assert source[tok["start"] : tok["end"]] == tok["text"]
        assert tok["is_name"] == (tok["label"] != "O")
        assert 0.0 <= tok["score"] <= 1.0
    for ent in doc["entities"]:
        assert source[ent["start"] : ent["end"]] == ent["text"]
        assert doc["tokens"][ent["token_start"]]["start"] == ent["start"]
        assert doc["tokens"][ent["token_end"] - 1]["end"] == ent["end"]
        assert 0.0 <= ent["score"] <= 1.0


def library(predictor: Any, item: str | list[str], max_tokens: int = 256) -> dict[str, Any]:
    """What the library itself says for one input (same windows as the server)."""
    from ner.predict import Predictor

    doc = Predictor(predictor.bundle, max_tokens=max_tokens).predict([item])[0].to_dict()
    return doc


def same(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Equal tags and offsets, scores equal to float tolerance."""
    assert [(t["text"], t["start"], t["end"], t["label"]) for t in a["tokens"]] == [
        (t["text"], t["start"], t["end"], t["label"]) for t in b["tokens"]
    ]
    assert [(e["label"], e["start"], e["end"]) for e in a["entities"]] == [
        (e["label"], e["start"], e["end"]) for e in b["entities"]
    ]
    for x, y in zip(a["tokens"], b["tokens"], strict=True):
        assert x["score"] == pytest.approx(y["score"], abs=1e-5)


def test_seed_sentence(client: TestClient, predictor: Any) -> None:
    r = client.post("/v1/tag", json={"text": SEED})
    assert r.status_code == 200
    body = r.json()
    TagResponse.model_validate(body)
    assert body["model"] == {"name": MODEL, "version": predictor.version}
    assert set(body) == {"model", "tokens", "entities"}
    assert [t["text"] for t in body["tokens"]][:2] == ["Harry", "Potter"]
    check_offsets(SEED, body)
    same(body, library(predictor, SEED))
    for tok in body["tokens"]:
        assert set(tok) == {"text", "start", "end", "label", "is_name", "score"}
        assert tok["label"] == "O" or tok["label"][:2] in ("B-", "I-")


def test_multi_sentence_text_keeps_global_offsets(client: TestClient, predictor: Any) -> None:
    text = f"{SEED}  Then   John Smith flew to Paris.\n\nIt rained in London on Monday."
    body = client.post("/v1/tag", json={"text": text}).json()
    check_offsets(text, body)
    assert body["tokens"][-1]["end"] == len(text)
    same(body, library(predictor, text))


def test_long_sentence_is_tagged_in_windows(make_client: Any, predictor: Any) -> None:
    text = " ".join(["Smith", "visited", "Berlin", "and"] * 30)  # 120 tokens, no full stop
    with make_client(max_tokens=16) as client:
        body = client.post("/v1/tag", json={"text": text}).json()
    assert len(body["tokens"]) == 120
    check_offsets(text, body)
    same(body, library(predictor, text, max_tokens=16))


def test_tokens_input_indexes_joined_tokens(client: TestClient, predictor: Any) -> None:
    words = ["Harry", "Potter", "met", "Ron", "in", "London", "."]
    body = client.post("/v1/tag", json={"tokens": words}).json()
    assert [t["text"] for t in body["tokens"]] == words
    check_offsets(" ".join(words), body)
    same(body, library(predictor, words))


def test_unicode_offsets_are_code_points(client: TestClient) -> None:
    text = "Zoë met 🙂 Müller in Zürich."
    body = client.post("/v1/tag", json={"text": text}).json()
    check_offsets(text, body)


def _rounded(result: dict[str, Any]) -> dict[str, Any]:
    """A result with every score rounded to 9 decimals."""
    return {
        key: [{**item, "score": round(item["score"], 9)} for item in items]
        for key, items in result.items()
    }


def test_documents_come_back_in_request_order(client: TestClient, predictor: Any) -> None:
    docs: list[dict[str, Any]] = [
        {"text": SEED},
        {"tokens": ["John", "lives", "in", "Paris"]},
        {"text": "Nothing to see here."},
        {"text": "Angela Merkel met Barack Obama in Berlin. They talked."},
    ]
    r = client.post("/v1/tag", json={"documents": docs, "model": MODEL})
    assert r.status_code == 200
    body = r.json()
    BatchResponse.model_validate(body)
    assert set(body) == {"model", "results"}
    assert len(body["results"]) == len(docs)
    for doc, result in zip(docs, body["results"], strict=True):
        single = client.post("/v1/tag", json=doc).json()
        # a batch is padded to its longest sentence: scores may differ in the last bits
        expected = {"tokens": single["tokens"], "entities": single["entities"]}
        assert _rounded(result) == _rounded(expected)
        source = doc.get("text") or " ".join(doc["tokens"])
        check_offsets(source, result)


def test_model_field_selects_loaded_model(client: TestClient) -> None:
    assert client.post("/v1/tag", json={"text": SEED, "model": MODEL}).status_code == 200
    r = client.post("/v1/tag", json={"text": SEED, "model": "../../etc/passwd"})
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "unknown_model"
    assert MODEL in r.json()["error"]["message"]


def test_models_endpoint(client: TestClient, predictor: Any) -> None:
    body = client.get("/v1/models").json()
    assert body == {
        "models": [
            {
                **predictor.describe(),
                "name": MODEL,
                "task": "ner",
                "version": predictor.version,
                "state": "ready",
                "default": True,
                "card": predictor.card,
            }
        ]
    }
    assert body["models"][0]["labels"] == list(predictor.labels)  # the task's own fields


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "models": {MODEL: "ready"}}


def test_not_ready_before_startup(models_dir: Path, predictor: Any) -> None:
    app = create_app(Settings(models_dir=models_dir), predictors={MODEL: predictor})
    client = TestClient(app)  # no `with`: the lifespan has not run
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    r = client.post("/v1/tag", json={"text": SEED})
    assert r.status_code == 503
    assert r.json()["error"]["type"] == "not_ready"
    assert "retry-after" in r.headers


def test_metrics(client: TestClient) -> None:
    client.post("/v1/tag", json={"text": SEED})
    client.post("/v1/tag", content=b"{", headers={"content-type": "application/json"})
    client.get("/no/such/path")
    text = client.get("/metrics").text
    assert 'ner_http_requests_total{method="POST",route="/v1/tag",status="200"} 1.0' in text
    assert 'ner_http_requests_total{method="POST",route="/v1/tag",status="400"} 1.0' in text
    assert 'route="unmatched",status="404"' in text
    assert 'ner_http_request_duration_seconds_bucket{le="0.1",method="POST",route="/v1/tag"' in text
    # the warm-up runs outside the batcher, so exactly the one tagged request is counted
    assert f'ner_batch_size_sentences_count{{model="{MODEL}"}} 1.0' in text
    assert f'ner_tokens_total{{model="{MODEL}"}} 10.0' in text
    assert f'ner_queue_depth{{model="{MODEL}"}} 0.0' in text
    assert "ner_tokens_per_second{" in text


def test_openapi_states_every_rule(make_client: Any) -> None:
    with make_client(max_chars=123, max_tokens=45, max_documents=6, max_token_chars=7) as client:
        spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    post = spec["paths"]["/v1/tag"]["post"]
    body_ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body_ref == "#/components/schemas/TagRequest"
    assert {r["$ref"].rsplit("/", 1)[1] for r in schemas["TagRequest"]["oneOf"]} == {
        "TextRequest",
        "TokensRequest",
        "DocumentsRequest",
    }
    for name in ("TextRequest", "TokensRequest", "DocumentsRequest", "TextDocument"):
        assert schemas[name]["additionalProperties"] is False
    text = schemas["TextRequest"]["properties"]["text"]
    assert (text["minLength"], text["maxLength"]) == (1, 123)
    assert "\\u0000-\\u0008" in text["pattern"]
    tokens = schemas["TokensRequest"]["properties"]["tokens"]
    assert (tokens["minItems"], tokens["maxItems"]) == (1, 45)
    assert (tokens["items"]["minLength"], tokens["items"]["maxLength"]) == (1, 7)
    assert "pattern" in tokens["items"]
    documents = schemas["DocumentsRequest"]["properties"]["documents"]
    assert (documents["minItems"], documents["maxItems"]) == (1, 6)
    model = schemas["TextRequest"]["properties"]["model"]
    assert model.get("enum", [model.get("const")]) == [MODEL]
    assert set(post["responses"]) >= {"200", "400", "404", "413", "415", "422", "503"}
    assert "Retry-After" in post["responses"]["503"]["headers"]
    for code in ("400", "413", "422", "503"):
        ref = post["responses"][code]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorBody")
    assert "/readyz" in spec["paths"] and "/metrics" in spec["paths"]


def test_docs_page(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    assert "swagger" in r.text.lower()


def test_loads_bundles_from_models_dir(models_dir: Path) -> None:
    with TestClient(create_app(Settings(models_dir=models_dir))) as client:
        assert [m["name"] for m in client.get("/v1/models").json()["models"]] == [MODEL]
        assert client.post("/v1/tag", json={"text": SEED}).status_code == 200


def test_bad_bundle_stops_startup(models_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "models" / "broken"
    broken.mkdir(parents=True)
    for f in (models_dir / MODEL).iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "decoder.json").write_text("{not json", encoding="utf-8")
    app = create_app(Settings(models_dir=tmp_path / "models"))
    with pytest.raises(StartupError, match=r"broken.*decoder\.json"), TestClient(app):
        pass


def test_bundle_without_config_stops_startup(models_dir: Path, tmp_path: Path) -> None:
    """A bundle that lost config.json is not silently skipped beside a good one."""
    root = tmp_path / "models"
    for name in (MODEL, "headless"):
        (root / name).mkdir(parents=True)
        for f in (models_dir / MODEL).iterdir():
            (root / name / f.name).write_bytes(f.read_bytes())
    (root / "headless" / "config.json").unlink()
    app = create_app(Settings(models_dir=root))
    with pytest.raises(StartupError, match=r"headless.*config\.json"), TestClient(app):
        pass


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"models_dir": "/nonexistent/models"}, "no such models directory"),
        ({"models": ["/nonexistent/bundle"]}, "not a directory"),
        ({"default_models": {"ner": "nope"}}, "default model 'nope'"),
    ],
)
def test_startup_errors(models_dir: Path, settings: dict[str, Any], message: str) -> None:
    merged = {"models_dir": models_dir, **settings}
    with pytest.raises(StartupError, match=message), TestClient(create_app(Settings(**merged))):
        pass


def test_empty_models_dir_stops_startup(tmp_path: Path) -> None:
    with (
        pytest.raises(StartupError, match="no bundle directories"),
        TestClient(create_app(Settings(models_dir=tmp_path))),
    ):
        pass


def test_error_bodies_are_uniform(client: TestClient) -> None:
    for method, path in [("GET", "/nope"), ("DELETE", "/v1/tag"), ("GET", "/v1/tag")]:
        r = client.request(method, path)
        assert r.status_code in (404, 405)
        error = r.json()["error"]
        assert set(error) >= {"type", "message"}
    r = client.request("PUT", "/v1/tag")
    assert "POST" in r.headers["allow"]
    json.dumps(r.json())
