"""``MicroBatcher.call``: work that is one function (sampling, scoring with a class, a beam
search) under the same admission, deadline and dropping as batched items (issue 16)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from serving.batcher import DeadlineExceeded, MicroBatcher, QueueFull
from serving.metrics import Metrics


def make(**kwargs: Any) -> MicroBatcher:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infer")
    options = {"max_batch_size": 8, "max_wait_ms": 0.0, "queue_size": 64, **kwargs}
    return MicroBatcher("m", lambda items, size: items, executor, metrics=Metrics(), **options)


class Gate:
    """A function for ``call`` that blocks the inference thread until opened."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.opened = threading.Event()

    def __call__(self) -> str:
        self.started.set()
        self.opened.wait(10)
        return "gate"


async def _started(gate: Gate) -> None:
    while not gate.started.is_set():
        await asyncio.sleep(0.005)


def test_calls_are_admitted_by_their_cost_and_run_in_order() -> None:
    ran: list[str] = []

    async def main() -> None:
        batcher = make(max_queued_tokens=100, max_queue_wait_s=None)
        batcher.start()
        gate = Gate()
        first = asyncio.ensure_future(batcher.call(gate, 500))  # alone: admitted, then running
        await _started(gate)
        queued = asyncio.ensure_future(batcher.call(lambda: ran.append("queued") or 1, 60))
        tagged = asyncio.ensure_future(batcher.submit([["a"] * 30]))  # 60 + 30 <= 100
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFull, match="max_queued_tokens 100"):
            await batcher.call(lambda: 2, 20)  # 90 queued + 20 > 100
        assert batcher.refuses(20) and not batcher.refuses(10)
        gate.opened.set()
        assert await first == "gate"
        assert await queued == 1 and await tagged == [["a"] * 30]
        await batcher.close()

    asyncio.run(main())
    assert ran == ["queued"]


def test_a_call_whose_caller_left_is_dropped_unrun() -> None:
    ran: list[str] = []

    async def main() -> None:
        batcher = make(max_queued_tokens=1000)
        batcher.start()
        gate = Gate()
        first = asyncio.ensure_future(batcher.call(gate, 10))
        await _started(gate)
        left = asyncio.ensure_future(batcher.call(lambda: ran.append("left"), 50))
        await asyncio.sleep(0.01)
        assert batcher.queued_tokens == 50
        left.cancel()  # what the request guard does when the client goes away
        await asyncio.sleep(0.01)
        assert batcher.queued_tokens == 0  # no longer counted against the budget
        gate.opened.set()
        await first
        await batcher.close()

    asyncio.run(main())
    assert ran == []


def test_a_queued_call_past_its_deadline_is_dropped() -> None:
    ran: list[str] = []

    async def main() -> None:
        batcher = make(timeout_s=0.1)
        batcher.start()
        gate = Gate()
        first = asyncio.ensure_future(batcher.call(gate, 10))
        await _started(gate)
        late = asyncio.ensure_future(batcher.call(lambda: ran.append("late"), 10))
        await asyncio.sleep(0.2)
        gate.opened.set()
        with pytest.raises(DeadlineExceeded):
            await late
        await first
        await batcher.close()

    asyncio.run(main())
    assert ran == []


def test_an_exception_of_a_call_reaches_its_caller_only() -> None:
    def bad() -> None:
        raise ValueError("a bad class")

    async def main() -> None:
        batcher = make()
        batcher.start()
        failing = asyncio.ensure_future(batcher.call(bad, 5))
        other = asyncio.ensure_future(batcher.submit([["x"]]))
        with pytest.raises(ValueError, match="a bad class"):
            await failing
        assert await other == [["x"]]
        assert await batcher.call(lambda: time.sleep(0) or "ok", 1) == "ok"  # worker lives on
        await batcher.close()

    asyncio.run(main())
