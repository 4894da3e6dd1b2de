"""Dynamic micro-batching: requests that arrive close together share one predictor call.

One ``MicroBatcher`` per model, generic over the work items: a request submits a list of items
(for the tagger, token lists of sentences; for the classifier, token lists of documents) and gets
one result per item back; the model's predict function takes a list of items and a batch size.

Requests wait in a bounded queue (``queue_size`` requests; a full
queue refuses with ``QueueFull``, which the API turns into 503 + Retry-After), so memory is bounded
by the queue size times the per-request caps. A single worker task takes the oldest request and
waits up to ``max_wait_ms`` for more while the batch holds fewer than ``max_batch_size`` sentences
and other requests are still being read (``Arrivals``); then it runs the predictor in a worker
thread, off the event loop. While one batch is being tagged the next one fills up, so under load
batches grow without any extra wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from serving.metrics import Metrics

log = logging.getLogger("serving.batcher")

Items = list[Any]
PredictFn = Callable[[Items, int], Sequence[Any]]
"""``predict(items, batch_size)``: one result per item, in order."""


class Arrivals:
    """Requests on their way to a batcher: being read and validated, not yet submitted.

    A batcher waits for batch-mates only while some request is on its way, so that a lone
    request on an idle server is tagged at once instead of waiting ``max_wait_ms`` for nobody.
    """

    def __init__(self) -> None:
        self.count = 0

    @contextlib.contextmanager
    def arriving(self) -> Iterator[None]:
        """Count the request in for the duration of the block."""
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1


class QueueFull(Exception):
    """The queue holds ``queue_size`` requests already."""


class BatcherClosed(Exception):
    """The batcher is shutting down or not started."""


@dataclass
class _Job:
    sentences: Items
    future: asyncio.Future[list[Any]]
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Collects requests into micro-batches for one model's predictor."""

    def __init__(
        self,
        name: str,
        predict: PredictFn,
        executor: Executor,
        *,
        max_batch_size: int,
        max_wait_ms: float,
        queue_size: int,
        metrics: Metrics | None = None,
        arrivals: Arrivals | None = None,
    ) -> None:
        self.name = name
        self._predict = predict
        self._executor = executor
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.queue_size = queue_size
        self._metrics = metrics
        self._arrivals = arrivals
        self._jobs: deque[_Job] = deque()
        self._queued_sentences = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def depth(self) -> int:
        """Requests waiting (not counting the batch being tagged)."""
        return len(self._jobs)

    def start(self) -> None:
        """Start the worker task on the running loop."""
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"batcher-{self.name}"
        )

    async def close(self) -> None:
        """Tag what is queued, then stop the worker."""
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def submit(self, sentences: Items) -> list[Any]:
        """Run ``sentences`` (work items) in some batch; one predictor result per item."""
        if not sentences:
            return []
        if self._task is None or self._closing or self._wakeup is None:
            raise BatcherClosed(f"model {self.name!r} is not accepting requests")
        if len(self._jobs) >= self.queue_size:
            if self._metrics is not None:
                self._metrics.rejected.labels(self.name, "queue_full").inc()
            raise QueueFull(f"{len(self._jobs)} requests are waiting for model {self.name!r}")
        job = _Job(sentences, asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self._queued_sentences += len(sentences)
        self._report_depth()
        self._wakeup.set()
        return await job.future

    def _report_depth(self) -> None:
        if self._metrics is not None:
            self._metrics.queue_depth.labels(self.name).set(len(self._jobs))

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            if not self._jobs:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._wait_for_mates()
            batch = self._take()
            if batch:
                await self._tag(batch)

    def _expecting(self) -> bool:
        return self._arrivals is None or self._arrivals.count > 0

    async def _wait_for_mates(self) -> None:
        """Wait up to max_wait for a full batch, while more requests are on their way."""
        assert self._wakeup is not None
        deadline = self._jobs[0].enqueued + self.max_wait_s
        while (
            self._queued_sentences < self.max_batch_size and not self._closing and self._expecting()
        ):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)

    def _take(self) -> list[_Job]:
        """Oldest requests up to max_batch_size sentences (always at least one request)."""
        batch: list[_Job] = []
        size = 0
        while self._jobs:
            job = self._jobs[0]
            if job.future.done():  # the client went away
                self._jobs.popleft()
                self._queued_sentences -= len(job.sentences)
                continue
            if batch and size + len(job.sentences) > self.max_batch_size:
                break
            self._jobs.popleft()
            self._queued_sentences -= len(job.sentences)
            batch.append(job)
            size += len(job.sentences)
        self._report_depth()
        return batch

    async def _tag(self, batch: list[_Job]) -> None:
        sentences = [s for job in batch for s in job.sentences]
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        try:
            results = await loop.run_in_executor(
                self._executor, self._predict, sentences, self.max_batch_size
            )
            if len(results) != len(sentences):
                raise RuntimeError(
                    f"predictor returned {len(results)} results for {len(sentences)}"
                )
        except Exception as exc:  # delivered to each waiting request, never kills the worker
            log.exception("inference failed for model %s", self.name)
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        seconds = time.perf_counter() - start
        if self._metrics is not None:
            tokens = sum(len(s) if isinstance(s, list | tuple) else 1 for s in sentences)
            self._metrics.observe_batch(self.name, len(batch), len(sentences), tokens, seconds)
        offset = 0
        for job in batch:
            n = len(job.sentences)
            if not job.future.done():
                job.future.set_result(list(results[offset : offset + n]))
            offset += n
