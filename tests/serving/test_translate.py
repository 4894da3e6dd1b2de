"""POST /v1/translate with real tiny seq2seq bundles (the reverse task), beside the tagger."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.serving.support import MODEL, REPO_ROOT, server_env

REVERSE = "reverse"


@pytest.fixture(scope="module")
def reverse_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.seq2seq_helpers import build_reverse_bundle

    root = tmp_path_factory.mktemp("serving-translate") / "models"
    build_reverse_bundle(root / REVERSE, epochs=4)
    return root


@pytest.fixture(scope="module")
def translator(reverse_dir: Path) -> Any:
    from ner import tasks

    return tasks.load(reverse_dir / REVERSE, "onnx", threads=1)


@pytest.fixture(scope="module")
def never_stops(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """An untrained model whose </s> is made impossible: it can only stop at the length cap."""
    import torch

    from ner import tasks
    from ner.translate import SourceSpec, export_seq2seq
    from tests.seq2seq_helpers import train_reverse

    model, source, target = train_reverse(epochs=0)
    with torch.no_grad():
        model.proj.bias[target.id("</s>")] = -1e4
    path = export_seq2seq(
        model,
        tmp_path_factory.mktemp("never") / "never",
        source_vocab=source,
        target=target,
        source=SourceSpec("char", True, ",", 12),
        max_output_len=9,
        name="never",
    )
    return tasks.load(path, "onnx", threads=1)


@pytest.fixture
def app(
    make_client: Any, predictor: Any, translator: Any, never_stops: Any
) -> Iterator[TestClient]:
    with make_client(
        predictors={MODEL: predictor, REVERSE: translator, "never": never_stops}
    ) as client:
        yield client


def test_greedy_translation_with_its_heat_map(app: TestClient, translator: Any) -> None:
    r = app.post("/v1/translate", json={"text": "ABcd"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == {"name": REVERSE, "version": translator.version}
    assert body["translation"] == "dcba"
    assert body["source_tokens"] == list("abcd")  # lowercased by the model
    assert body["output_tokens"] == [*"dcba", "</s>"]
    assert body["finished"] is True
    assert len(body["attention"]) == 5 and all(len(row) == 4 for row in body["attention"])
    (want,) = translator.translate(["abcd"])
    assert body["score"] == pytest.approx(want.score, abs=1e-5) and body["score"] < 0
    assert "alternatives" not in body


def test_beam_search_n_best(app: TestClient, translator: Any) -> None:
    r = app.post(
        "/v1/translate",
        json={"text": "abcde", "model": REVERSE, "beam_size": 4, "n_best": 3},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    (want,) = translator.translate(["abcde"], beam_size=4, n_best=3)
    assert body["translation"] == want.translation == "edcba"
    scores = [body["score"]] + [a["score"] for a in body["alternatives"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    assert [a["translation"] for a in body["alternatives"]] == [t for t, _ in want.alternatives]
    greedy = app.post("/v1/translate", json={"text": "abcde"}).json()
    assert body["score"] >= greedy["score"] - 1e-6


def test_a_model_that_never_stops_still_answers(app: TestClient) -> None:
    for beam in (1, 3):
        r = app.post("/v1/translate", json={"text": "abc", "model": "never", "beam_size": beam})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["finished"] is False
        assert len(body["output_tokens"]) == 9 and "</s>" not in body["output_tokens"]


@pytest.mark.parametrize(
    ("payload", "status", "kind", "field", "needle"),
    [
        ({"text": ""}, 422, "empty", "text", "empty"),
        ({"text": "   "}, 422, "blank_text", "text", "white space"),
        ({"text": ",,,", "model": REVERSE}, 422, "invalid_text", "text", "','"),
        ({"text": ", ,", "model": "never"}, 422, "invalid_text", "text", "empty"),
        ({"text": "abcdefghabcdefgh"}, 422, "limit_exceeded", "text", "at most 12"),
        ({"text": "abz!"}, 422, "invalid_text", "text", "'z', '!'"),
        ({"text": "abc", "beam_size": 0}, 422, "invalid_request", "beam_size", "greater"),
        ({"text": "abc", "beam_size": 17}, 422, "invalid_request", "beam_size", "less"),
        ({"text": "abc", "beam_size": "2"}, 422, "invalid_request", "beam_size", "integer"),
        ({"text": "abc", "n_best": 0}, 422, "invalid_request", "n_best", "greater"),
        ({"text": "abc", "beam_size": 2, "n_best": 3}, 422, "invalid_request", "n_best", "exceed"),
        ({"text": "abc", "length_penalty": 5}, 422, "invalid_request", "length_penalty", "less"),
        ({"text": "abc", "extra": 1}, 422, "unexpected_field", "extra", "unexpected"),
        ({"tokens": ["abc"]}, 422, "missing_field", "text", "required"),
        ({"text": "abc", "model": MODEL}, 422, "wrong_task", "model", "'ner' model"),
        ({"text": "abc", "model": "nope"}, 404, "unknown_model", "model", "no model named"),
    ],
)
def test_bad_input_is_a_4xx_with_a_message(
    app: TestClient, payload: dict[str, Any], status: int, kind: str, field: str, needle: str
) -> None:
    r = app.post("/v1/translate", json=payload)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["type"] == kind, error
    assert error.get("field") == field
    assert needle in error["message"]


def test_models_lists_the_translator(app: TestClient) -> None:
    models = {m["name"]: m for m in app.get("/v1/models").json()["models"]}
    info = models[REVERSE]
    assert info["task"] == "seq2seq"
    assert info["attention"] == "additive" and info["max_chars"] == 12
    schema = app.get("/openapi.json").json()
    assert "/v1/translate" in schema["paths"]
    assert "TranslateRequest" in schema["components"]["schemas"]


def test_serving_a_translator_never_imports_torch(reverse_dir: Path) -> None:
    script = """
import json, sys
from fastapi.testclient import TestClient
import serving.main
from serving.settings import Settings

app = serving.main.create_app(Settings(models_dir=sys.argv[1]))
with TestClient(app) as client:
    r = client.post("/v1/translate", json={"text": "abcd", "beam_size": 3, "n_best": 2})
    assert r.status_code == 200, r.text
HEAVY = ("torch", "lightning", "pytorch_lightning", "training")
print(json.dumps({"translation": r.json()["translation"],
                  "heavy": sorted(m for m in HEAVY if m in sys.modules)}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script, str(reverse_dir)],
        cwd=REPO_ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "translation": "dcba",
        "heavy": [],
    }
