"""/v1/generate micro-batched across requests: the language model's batcher runs
``serving.routes.generate.batch_fn`` over the prepared requests of many clients (and texts to
score, in the same call) as one sampling loop, and every client gets exactly the samples the
library draws for its request alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ner import tasks
from serving.routes.generate import batch_fn, score_item
from tests.lm_helpers import build_tiny_lm
from tests.serving.support import free_port, running_server

CHAR, COND = "tiny-char-lm", "tiny-word-lm-conditional"
NAMES = ["rex", "tyrannosaurus", "raptor", "ceratops", "stegosaurus", "saurus"]


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("generate-batching")
    return {
        CHAR: build_tiny_lm(root / CHAR, "char", steps=30),
        COND: build_tiny_lm(root / COND, "word", conditioning="both", cell="gru", steps=30),
    }


@pytest.fixture(scope="module")
def lms(paths: dict[str, Path]) -> dict[str, Any]:
    return {name: tasks.load(path, "onnx", threads=1) for name, path in paths.items()}


@pytest.fixture(scope="module")
def server(paths: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Both models in one worker, waiting up to 50 ms for batch-mates, budgets out of the way."""
    log, port = tmp_path_factory.mktemp("generate-batching-server") / "server.log", free_port()
    args = [arg for path in paths.values() for arg in ("--model", str(path))]
    args += ["--workers", "1", "--max-wait-ms", "50", "--max-queue-wait", "1000"]
    args += ["--max-queued-tokens", "1000000", "--max-batch-tokens", "100000"]
    with running_server(args, port, log) as proc:
        proc.url, proc.log = f"http://127.0.0.1:{port}", log  # type: ignore[attr-defined]
        yield proc


def _generate_body(i: int) -> dict[str, Any]:
    """The i-th client's request: its own seed and settings, on one of the two models."""
    body: dict[str, Any] = {
        "n": 1 + i % 5,
        "seed": 1000 + i,
        "temperature": (0.5, 1.0, 1.4)[i % 3],
        "max_length": (20, 1, 8, 30)[i % 4],
    }
    if i % 4 == 1:
        body["top_k"] = 3
    if i % 5 == 2:
        body["top_p"] = 0.8
    if i % 3 == 0:
        body |= {"model": COND, "class": ("negative", "positive")[i % 2]}
        body["prefix"] = ("", "a great", "the film")[(i // 3) % 3]
    else:
        body["prefix"] = ("", "ty", "sau", "brachio")[i % 4]
    return body


def _library(lms: dict[str, Any], body: dict[str, Any]) -> list[str]:
    kwargs = {k: v for k, v in body.items() if k not in ("model", "class", "n")}
    predictor = lms[body.get("model", CHAR)]
    result: list[str] = predictor.generate(body["n"], class_=body.get("class"), **kwargs)
    return result


async def _storm(url: str, asks: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(asks))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as client:
        return await asyncio.gather(*(client.post(path, json=body) for path, body in asks))


def _batches(metrics: str, model: str) -> tuple[float, float]:
    """(predictor calls, requests in them) of ``model`` from /metrics."""
    out = []
    for part in ("count", "sum"):
        start = f'ner_batch_size_requests_{part}{{model="{model}"}}'
        lines = [line for line in metrics.splitlines() if line.startswith(start)]
        out.append(float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0)
    return out[0], out[1]


def test_concurrent_generates_share_steps_and_match_the_library(
    server: Any, lms: dict[str, Any]
) -> None:
    bodies = [_generate_body(i) for i in range(32)]
    before = httpx.get(f"{server.url}/metrics", timeout=5).text
    answers = asyncio.run(_storm(server.url, [("/v1/generate", b) for b in bodies]))
    for body, r in zip(bodies, answers, strict=True):
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["seed"] == body["seed"]
        assert got["model"]["name"] == body.get("model", CHAR)
        assert got["samples"] == _library(lms, body), body
    after = httpx.get(f"{server.url}/metrics", timeout=5).text
    for model in (CHAR, COND):
        sent = sum(1 for b in bodies if b.get("model", CHAR) == model)
        (calls, requests), (calls0, requests0) = _batches(after, model), _batches(before, model)
        calls, requests = calls - calls0, requests - requests0
        assert requests == sent  # each request run once
        assert calls < sent  # in shared loops, not one loop per request
    assert "Traceback" not in server.log.read_text()


def test_concurrent_scores_and_generates_are_answered_each_as_alone(
    server: Any, lms: dict[str, Any]
) -> None:
    asks: list[tuple[str, dict[str, Any]]] = []
    for i in range(24):
        if i % 2:
            asks.append(("/v1/score", {"text": NAMES[i % len(NAMES)][: 2 + i % 9]}))
        else:
            asks.append(("/v1/generate", {"n": 1 + i % 3, "seed": i, "prefix": "ra"[: i % 3]}))
    asks.append(("/v1/generate", {"prefix": "ty9"}))  # refused alone, never failing a batch
    asks.append(("/v1/score", {"text": "rex", "model": COND, "class": "positive"}))
    answers = asyncio.run(_storm(server.url, asks))
    for (path, body), r in zip(asks[:-2], answers[:-2], strict=True):
        assert r.status_code == 200, r.text
        if path == "/v1/score":
            want = lms[CHAR].score([body["text"]])[0]
            assert r.json()["log_prob"] == pytest.approx(want.log_prob, abs=1e-6)
        else:
            assert r.json()["samples"] == _library(lms, body)
    refused = answers[-2]
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "prefix"
    assert "'9'" in refused.json()["error"]["message"]
    scored = answers[-1]
    assert scored.status_code == 200, scored.text
    want = lms[COND].score(["rex"], class_="positive")[0].log_prob
    assert scored.json()["log_prob"] == pytest.approx(want, abs=1e-6)


def test_one_call_of_mixed_items_answers_each_in_its_place(lms: dict[str, Any]) -> None:
    predictor = lms[COND]
    run = batch_fn(predictor)
    items: list[Any] = [
        predictor.prepare_sample(3, seed=1, class_="positive", prefix="a great"),
        score_item(predictor, "A great film!", "positive"),
        score_item(predictor, "A dull film", 0),
        predictor.prepare_sample(2, seed=2, class_="negative", max_length=4),
        score_item(predictor, "Fine.", 1),
    ]
    results = run(items, 64)
    assert len(results) == len(items)
    assert results[0] == predictor.generate_tokens(3, seed=1, class_=1, prefix="a great")
    assert results[3] == predictor.generate_tokens(2, seed=2, class_=0, max_length=4)
    for i, (text, cls) in [(1, ("A great film!", 1)), (2, ("A dull film", 0)), (4, ("Fine.", 1))]:
        want = predictor.score([text], class_=cls)[0].log_prob
        assert results[i].log_prob == pytest.approx(want, abs=1e-6)
    only = run([items[1]], 64)  # one kind alone
    assert only[0].log_prob == pytest.approx(results[1].log_prob, abs=1e-6)
    assert run([items[0]], 64) == [results[0]]
