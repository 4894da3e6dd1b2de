"""/v1/score's texts micro-batched across requests: the language model's batcher runs
``serving.routes.generate.batch_fn`` over the checked texts of several requests at once, each
row with its own class, and every request gets what it would have got alone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ner import tasks
from serving.batcher import MicroBatcher
from serving.metrics import Metrics
from serving.routes.generate import ScoreItem, batch_fn, score_item
from tests.lm_helpers import build_tiny_lm

TEXTS = ["rex", "tyrannosaurus", "raptor", "ceratops", "saurus", "a", "stegosaurus", "oraptor"]


@pytest.fixture(scope="module")
def lms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("score-batching")
    dirs: dict[str, Path] = {
        "char": build_tiny_lm(root / "char", "char", steps=30),
        "cond": build_tiny_lm(root / "cond", "word", conditioning="both", cell="gru", steps=30),
    }
    return {name: tasks.load(path, "onnx", threads=1) for name, path in dirs.items()}


class Counting:
    """``batch_fn(predictor)``, recording each call's items; blocks while ``gate`` is shut."""

    def __init__(self, predictor: Any) -> None:
        self.fn = batch_fn(predictor)
        self.calls: list[list[ScoreItem]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()

    def __call__(self, items: list[ScoreItem], batch_size: int) -> Sequence[Any]:
        self.calls.append(list(items))
        self.started.set()
        self.gate.wait(10)
        return self.fn(items, batch_size)


def make(fn: Counting, **kwargs: Any) -> MicroBatcher:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infer")
    options = {"max_batch_size": 64, "max_wait_ms": 50.0, "queue_size": 256, **kwargs}
    return MicroBatcher("lm", fn, executor, metrics=Metrics(), **options)


async def _score(batcher: MicroBatcher, predictor: Any, text: str, class_: Any = None) -> Any:
    item = score_item(predictor, text, class_)
    (result,) = await batcher.submit([item], costs=[len(text) + 1])
    return result


def test_requests_arriving_together_share_one_pass_with_the_results_of_each_alone(
    lms: dict[str, Any],
) -> None:
    predictor = lms["char"]
    fn = Counting(predictor)

    async def main() -> list[Any]:
        batcher = make(fn)
        batcher.start()
        results = await asyncio.gather(*(_score(batcher, predictor, t) for t in TEXTS))
        await batcher.close()
        return results

    results = asyncio.run(main())
    assert len(fn.calls) == 1 and len(fn.calls[0]) == len(TEXTS)  # one padded batch
    for text, got in zip(TEXTS, results, strict=True):
        alone = predictor.score([text])[0]
        assert got.log_prob == pytest.approx(alone.log_prob, abs=1e-6)
        assert [t.text for t in got.tokens] == [t.text for t in alone.tokens]
        for g, a in zip(got.tokens, alone.tokens, strict=True):
            assert g.log_prob == pytest.approx(a.log_prob, abs=1e-6)


def test_rows_of_one_batch_keep_their_own_class(lms: dict[str, Any]) -> None:
    predictor = lms["cond"]
    fn = Counting(predictor)
    asks = [("A great film!", "positive"), ("A great film!", "negative"), ("Dull.", 1)]
    asks += [("A dull , great film", 0)]

    async def main() -> list[Any]:
        batcher = make(fn)
        batcher.start()
        results = await asyncio.gather(*(_score(batcher, predictor, t, c) for t, c in asks))
        await batcher.close()
        return results

    results = asyncio.run(main())
    assert len(fn.calls) == 1 and len(fn.calls[0]) == len(asks)
    for (text, cls), got in zip(asks, results, strict=True):
        want = predictor.score([text], class_=cls)[0].log_prob
        assert got.log_prob == pytest.approx(want, abs=1e-6)
    assert results[0].log_prob != results[1].log_prob  # the class reached its row


def test_a_left_clients_text_never_reaches_the_model(lms: dict[str, Any]) -> None:
    predictor = lms["char"]
    fn = Counting(predictor)

    async def main() -> tuple[Any, Any]:
        batcher = make(fn, max_wait_ms=0.0)
        batcher.start()
        fn.gate.clear()
        first = asyncio.ensure_future(_score(batcher, predictor, "rex"))
        while not fn.started.is_set():  # "rex" is being scored: the next ones wait
            await asyncio.sleep(0.005)
        left = asyncio.ensure_future(_score(batcher, predictor, "tyrannosaurus"))
        stays = asyncio.ensure_future(_score(batcher, predictor, "raptor"))
        await asyncio.sleep(0.02)
        assert batcher.queued_tokens == len("tyrannosaurus") + 1 + len("raptor") + 1
        left.cancel()  # what the request guard does when the client goes away
        await asyncio.sleep(0.02)
        assert batcher.queued_tokens == len("raptor") + 1  # off the budget at once
        fn.gate.set()
        results = await first, await stays
        await batcher.close()
        return results

    first, stays = asyncio.run(main())
    scored = [tokens for call in fn.calls for tokens, _ in call]
    assert scored == [list("rex"), list("raptor")]
    assert stays.log_prob == pytest.approx(predictor.score(["raptor"])[0].log_prob, abs=1e-6)


def test_bad_texts_are_refused_before_they_can_fail_a_shared_batch(lms: dict[str, Any]) -> None:
    from ner.generate import GenerationError

    with pytest.raises(GenerationError, match="nothing to score"):
        score_item(lms["cond"], "...", 1)
    with pytest.raises(GenerationError, match="class") as e:
        score_item(lms["cond"], "...", None)  # the class is checked first, as score does
    assert e.value.field == "class"
    with pytest.raises(GenerationError, match="never seen"):
        score_item(lms["char"], "rex\u00e9", None)
