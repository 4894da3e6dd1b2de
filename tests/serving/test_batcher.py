"""Micro-batching, back-pressure and draining, with a fake predictor and over HTTP."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from serving.batcher import BatcherClosed, DeadlineExceeded, MicroBatcher, QueueFull
from serving.metrics import Metrics
from tests.serving.support import MODEL, SEED


class FakePredictor:
    """Records each call; returns one result per sentence (its tokens joined)."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.calls: list[list[list[str]]] = []
        self.threads: list[str] = []
        self.delay = delay
        self.fail = fail

    def __call__(self, sentences: list[list[str]], batch_size: int) -> list[str]:
        self.calls.append(sentences)
        self.threads.append(threading.current_thread().name)
        time.sleep(self.delay)
        if self.fail:
            raise ValueError("boom")
        return [" ".join(s) for s in sentences]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def make(predict: FakePredictor, **kwargs: Any) -> tuple[MicroBatcher, ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infer")
    options = {"max_batch_size": 8, "max_wait_ms": 20.0, "queue_size": 64, **kwargs}
    return MicroBatcher("m", predict, executor, metrics=Metrics(), **options), executor


def test_requests_arriving_together_share_one_call() -> None:
    fake = FakePredictor()

    async def main() -> list[list[Any]]:
        batcher, _ = make(fake, max_wait_ms=50.0)
        batcher.start()
        jobs = [batcher.submit([[f"w{i}"]]) for i in range(5)]
        results = await asyncio.gather(*jobs)
        await batcher.close()
        return results

    results = run(main())
    assert results == [[f"w{i}"] for i in range(5)]  # each request gets its own results back
    assert len(fake.calls) == 1 and len(fake.calls[0]) == 5
    assert fake.threads[0].startswith("infer")  # off the event loop's thread


def test_batches_never_exceed_max_batch_size() -> None:
    fake = FakePredictor(delay=0.01)

    async def main() -> list[list[Any]]:
        batcher, _ = make(fake, max_batch_size=4, max_wait_ms=5.0)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit([[f"a{i}"], [f"b{i}"]]) for i in range(10)))
        await batcher.close()
        return results

    results = run(main())
    assert results == [[f"a{i}", f"b{i}"] for i in range(10)]
    assert all(len(call) <= 4 for call in fake.calls)
    assert sum(len(call) for call in fake.calls) == 20


def test_one_big_request_is_split_into_bounded_calls_never_refused() -> None:
    fake = FakePredictor()

    async def main() -> list[Any]:
        batcher, _ = make(fake, max_batch_size=2, max_queued_tokens=3)
        batcher.start()
        out = await batcher.submit([[str(i)] for i in range(7)])  # over the budget: idle queue
        await batcher.close()
        return out

    assert run(main()) == [str(i) for i in range(7)]
    assert [len(call) for call in fake.calls] == [2, 2, 2, 1]


def test_batches_never_exceed_max_batch_tokens() -> None:
    fake = FakePredictor()

    async def main() -> list[Any]:
        batcher, _ = make(fake, max_batch_size=64, max_batch_tokens=5, max_wait_ms=50.0)
        batcher.start()
        sentences = [["a"] * 3, ["b"] * 2, ["c"] * 4, ["d"] * 9, ["e"]]
        out = await batcher.submit(sentences)
        await batcher.close()
        return out

    out = run(main())
    assert out == ["a a a", "b b", "c c c c", " ".join(["d"] * 9), "e"]
    # 5 tokens per call at most, except a single longer sentence, which goes alone
    assert [[len(s) for s in call] for call in fake.calls] == [[3, 2], [4], [9], [1]]


def test_work_budget_refuses_at_once() -> None:
    fake = FakePredictor(delay=0.3)

    async def main() -> None:
        batcher, _ = make(fake, max_batch_size=1, max_queued_tokens=10, max_wait_ms=0.0)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit([["a"] * 8]))  # taken at once
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(batcher.submit([["b"] * 8]))  # queued: 8 of 10
        await asyncio.sleep(0.01)
        assert batcher.queued_tokens == 8
        start = time.perf_counter()
        with pytest.raises(QueueFull, match="max_queued_tokens 10") as refused:
            await batcher.submit([["c"] * 3])
        assert time.perf_counter() - start < 0.05  # refused at once, not after waiting
        assert refused.value.limit == ("max_queued_tokens", 10)
        assert await batcher.submit([["d"] * 2]) == [" ".join(["d"] * 2)]  # fits: 10 of 10
        assert len(await first) == 1 and len(await second) == 1
        await batcher.close()

    run(main())


def test_work_that_cannot_be_done_in_time_is_refused() -> None:
    fake = FakePredictor(delay=0.2)  # 10 tokens in 0.2 s: 50 tokens/s

    async def main() -> None:
        batcher, _ = make(fake, max_batch_size=1, max_queue_wait_s=1.0, max_wait_ms=0.0)
        batcher.start()
        assert await batcher.submit([["a"] * 10]) == [" ".join(["a"] * 10)]  # the rate: 50/s
        assert batcher.expected_wait_s(50) == pytest.approx(1.0, rel=0.2)
        first = asyncio.ensure_future(batcher.submit([["b"] * 10]))  # taken at once
        await asyncio.sleep(0.05)
        queued = asyncio.ensure_future(batcher.submit([["c"] * 30]))  # 0.6 s of work waiting
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFull, match="max_queue_wait_s 1"):
            await batcher.submit([["d"] * 30])  # 60 tokens ahead: 1.2 s > 1 s
        assert not batcher.refuses(0)  # the budget is not used up
        await first, await queued
        await batcher.close()

    run(main())


def test_queued_work_past_its_deadline_is_dropped() -> None:
    fake = FakePredictor(delay=0.3)

    async def main() -> None:
        batcher, _ = make(fake, max_batch_size=1, timeout_s=0.2, max_wait_ms=0.0)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit([["a"]]))
        await asyncio.sleep(0.01)
        late = asyncio.ensure_future(batcher.submit([["b"], ["c"]]))
        with pytest.raises(DeadlineExceeded):
            await late
        assert await first == ["a"]
        await batcher.close()

    run(main())
    assert fake.calls == [[["a"]]]  # b and c never reached the model


def test_work_of_a_cancelled_request_is_dropped_midway() -> None:
    fake = FakePredictor(delay=0.1)

    async def main() -> None:
        batcher, _ = make(fake, max_batch_size=1, max_wait_ms=0.0)
        batcher.start()
        big = asyncio.ensure_future(batcher.submit([[str(i)] for i in range(20)]))
        await asyncio.sleep(0.25)  # a few of its sentences are tagged
        big.cancel()  # the client went away
        assert await batcher.submit([["small"]]) == ["small"]
        await batcher.close()

    run(main())
    assert len(fake.calls) <= 5 and fake.calls[-1] == [["small"]]


def test_full_queue_refuses() -> None:
    fake = FakePredictor()

    async def main() -> None:
        batcher, _ = make(fake, queue_size=2, max_wait_ms=200.0, max_batch_size=64)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit([["a"]]))
        second = asyncio.ensure_future(batcher.submit([["b"]]))
        await asyncio.sleep(0.01)
        assert batcher.depth == 2
        with pytest.raises(QueueFull):
            await batcher.submit([["c"]])
        assert await first == ["a"] and await second == ["b"]
        await batcher.close()

    run(main())


def test_close_tags_what_is_queued_then_refuses() -> None:
    fake = FakePredictor(delay=0.02)

    async def main() -> None:
        batcher, _ = make(fake, max_wait_ms=500.0, max_batch_size=64)
        batcher.start()
        pending = [asyncio.ensure_future(batcher.submit([[str(i)]])) for i in range(3)]
        await asyncio.sleep(0.01)
        await batcher.close()
        assert [await p for p in pending] == [["0"], ["1"], ["2"]]
        with pytest.raises(BatcherClosed):
            await batcher.submit([["late"]])

    run(main())


def test_a_failing_batch_fails_its_requests_only() -> None:
    fake = FakePredictor(fail=True)

    async def main() -> None:
        batcher, _ = make(fake)
        batcher.start()
        with pytest.raises(ValueError, match="boom"):
            await batcher.submit([["a"]])
        fake.fail = False
        assert await batcher.submit([["b"]]) == ["b"]
        await batcher.close()

    run(main())


def test_cancelled_requests_are_skipped() -> None:
    fake = FakePredictor()

    async def main() -> None:
        batcher, _ = make(fake, max_wait_ms=100.0, max_batch_size=64)
        batcher.start()
        gone = asyncio.ensure_future(batcher.submit([["gone"]]))
        kept = asyncio.ensure_future(batcher.submit([["kept"]]))
        await asyncio.sleep(0.01)
        gone.cancel()
        assert await kept == ["kept"]
        await batcher.close()

    run(main())
    assert fake.calls == [[["kept"]]]


class SlowPredictor:
    """A real predictor whose every call takes ``delay`` seconds longer."""

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner, self.delay = inner, delay
        self.name, self.version, self.task = inner.name, inner.version, inner.task
        self.card = inner.card

    def predict(self, inputs: Any, batch_size: int = 64) -> Any:
        time.sleep(self.delay)
        return self.inner.predict(inputs, batch_size=batch_size)

    def tag(self, sentences: Any, batch_size: int = 64) -> Any:  # what /v1/tag's batcher calls
        time.sleep(self.delay)
        return self.inner.tag(sentences, batch_size=batch_size)


def test_queue_full_over_http_is_503_with_retry_after(models_dir: Any, predictor: Any) -> None:
    from serving.main import create_app
    from serving.settings import Settings

    settings = Settings(models_dir=models_dir, queue_size=1, retry_after_s=3, warmup=False)
    app = create_app(settings, predictors={MODEL: SlowPredictor(predictor, 1.0)})

    async def main() -> tuple[httpx.Response, ...]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                tagging = asyncio.ensure_future(client.post("/v1/tag", json={"text": SEED}))
                await asyncio.sleep(0.2)  # the first request is being tagged (for 1 s)
                waiting = asyncio.ensure_future(client.post("/v1/tag", json={"text": SEED}))
                await asyncio.sleep(0.2)  # the second one waits in the queue, which is full
                refused = await client.post("/v1/tag", json={"text": SEED})
                metrics = await client.get("/metrics")
                return await tagging, await waiting, refused, metrics

    tagging, waiting, refused, metrics = asyncio.run(main())
    assert tagging.status_code == 200 and waiting.status_code == 200
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "3"
    error = refused.json()["error"]
    assert error["type"] == "overloaded"
    assert error["limit"] == {"name": "queue_size", "value": 1}
    assert f'ner_rejected_total{{model="{MODEL}",reason="queue_full"}} 1.0' in metrics.text
    assert f'ner_queue_depth{{model="{MODEL}"}} 1.0' in metrics.text


def test_lone_request_does_not_wait_for_batch_mates(make_client: Any) -> None:
    with make_client(max_wait_ms=1000) as client:
        client.post("/v1/tag", json={"text": SEED})
        start = time.perf_counter()
        assert client.post("/v1/tag", json={"text": SEED}).status_code == 200
        assert time.perf_counter() - start < 0.5


def test_requests_arriving_during_inference_are_batched(models_dir: Any, predictor: Any) -> None:
    from serving.main import create_app
    from serving.settings import Settings

    settings = Settings(models_dir=models_dir, warmup=False)
    app = create_app(settings, predictors={MODEL: SlowPredictor(predictor, 0.5)})
    texts = [f"{name} lives in Paris." for name in ("John", "Mary", "Angela", "Barack", "Ron")]

    async def main() -> tuple[list[httpx.Response], str]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                first = asyncio.ensure_future(client.post("/v1/tag", json={"text": texts[0]}))
                await asyncio.sleep(0.1)  # the first is being tagged; the others queue up
                rest = asyncio.gather(
                    *(client.post("/v1/tag", json={"text": t}) for t in texts[1:])
                )
                answers = [await first, *await rest]
                return answers, (await client.get("/metrics")).text

    answers, metrics = asyncio.run(main())
    for text, r in zip(texts, answers, strict=True):
        assert r.status_code == 200
        assert r.json()["tokens"][0]["text"] == text.split()[0]  # each got its own result
    # two predictor calls: the first request alone, then the four that queued meanwhile
    assert f'ner_batch_size_requests_count{{model="{MODEL}"}} 2.0' in metrics
    assert f'ner_batch_size_requests_sum{{model="{MODEL}"}} 5.0' in metrics
    assert f'ner_batch_size_requests_bucket{{le="2.0",model="{MODEL}"}} 1.0' in metrics
