"""Dynamic micro-batching: requests that arrive close together share one predictor call.

One ``MicroBatcher`` per model, generic over the work items: a request submits a list of items
(for the tagger, token lists of sentences; for the classifier, token lists of documents) and gets
one result per item back; the model's predict function takes a list of items and a batch size.

Admission is by work, not by request count (as TEI admits by a token budget): an item costs its
length in tokens, and a request is refused at once (``QueueFull``, which the API turns into 503 +
Retry-After) when the queued cost would pass ``max_queued_tokens``, or would take longer than
``max_queue_wait_s`` at the rate the last predictor calls ran at (as Triton and BentoML refuse
work they cannot finish in time: on a busy machine the rate drops and so does the budget), or
the queue holds ``queue_size`` requests. A request larger than the whole budget is still
admitted into an empty queue, so that every request within the caps can be served on an idle
server.

A single worker task takes the oldest items and waits up to ``max_wait_ms`` for more while the
batch is small and other requests are still being read (``Arrivals``); then it runs the predictor
in the inference thread, off the event loop. A batch holds at most ``max_batch_size`` items and
``max_batch_tokens`` tokens, so one call takes a bounded time: a large request is tagged over
several calls, and what is still queued of it is dropped when its client leaves (its future is
cancelled) or its deadline passes (``DeadlineExceeded``): no work is done for clients that are
gone. While one batch is tagged the next one fills up, so under load batches grow at no extra
wait.

Items need not be token lists: a request may pass each item's cost (``submit(costs=)``), as
``/v1/score`` and ``/v1/generate`` do for their items (a text and its class; a request's checked
sampling settings), so that texts scored or sampled for different clients share the language
model's passes. Work that is not a list of items to batch (a beam search) is queued as one
function (:meth:`MicroBatcher.call`) under the same admission, deadline and dropping, and runs
alone in its turn.
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


def item_cost(item: Any) -> int:
    """The work of one item: its tokens (at least 1)."""
    return max(1, len(item)) if isinstance(item, list | tuple) else 1


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
    """Admitting the request would pass ``queue_size`` requests or ``max_queued_tokens``."""

    def __init__(self, message: str, limit: tuple[str, int]) -> None:
        super().__init__(message)
        self.limit = limit


class BatcherClosed(Exception):
    """The batcher is shutting down or not started."""


class DeadlineExceeded(Exception):
    """The request's deadline passed while part of its work was still queued."""


@dataclass(eq=False)
class _Job:
    items: Items
    costs: list[int]
    future: asyncio.Future[list[Any]]
    deadline: float
    enqueued: float = field(default_factory=time.monotonic)
    taken: int = 0  # items handed to a batch so far
    done: int = 0  # items with results
    results: list[Any] = field(default_factory=list)
    call: bool = False  # one item, a function run alone (``MicroBatcher.call``)

    @property
    def gone(self) -> bool:
        return self.future.done()


@dataclass(frozen=True)
class _Part:
    job: _Job
    start: int
    end: int


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
        max_batch_tokens: int | None = None,
        max_queued_tokens: int | None = None,
        max_queue_wait_s: float | None = None,
        timeout_s: float | None = None,
        metrics: Metrics | None = None,
        arrivals: Arrivals | None = None,
    ) -> None:
        self.name = name
        self._predict = predict
        self._executor = executor
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_ms / 1000.0
        self.queue_size = queue_size
        self.max_queued_tokens = max_queued_tokens
        self.max_wait_queue_s = max_queue_wait_s
        self.timeout_s = timeout_s
        # (tokens, seconds) of the last predictor calls: the rate the queue drains at now,
        # whatever else runs on the machine
        self._recent: deque[tuple[int, float]] = deque(maxlen=16)
        self._metrics = metrics
        self._arrivals = arrivals
        self._jobs: deque[_Job] = deque()
        self._queued_cost = 0
        self._queued_items = 0
        self._reserved = 0  # estimated work of admitted requests still being prepared
        self._reservations = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def depth(self) -> int:
        """Requests waiting (not counting the batch being tagged)."""
        return len(self._jobs)

    @property
    def queued_tokens(self) -> int:
        """The cost of the items waiting, and the reserved cost of requests being prepared."""
        return self._queued_cost + self._reserved

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

    def refuses(self, cost: int) -> bool:
        """Whether a request of about ``cost`` tokens would be refused now (no side effects).

        With ``cost`` 0: whether the budget is used up already, so that any request would be.
        """
        if len(self._jobs) >= self.queue_size:
            return True
        busy = bool(self._jobs) or self._reservations > 0
        if not busy:
            return False
        waiting = self._queued_cost + self._reserved
        limit = self.max_wait_queue_s
        if limit is not None and self.expected_wait_s(waiting + cost) >= limit:
            return True
        budget = self.max_queued_tokens
        return budget is not None and waiting + cost >= budget + (1 if cost else 0)

    def _rate(self) -> float:
        tokens = sum(t for t, _ in self._recent)
        seconds = sum(s for _, s in self._recent)
        return tokens / seconds if seconds > 0 else 0.0

    def expected_wait_s(self, tokens: int) -> float:
        """Seconds to get through ``tokens`` at the recent inference rate (0 before any)."""
        rate = self._rate()
        return tokens / rate if rate > 0 else 0.0

    def refuse_early(self, cost: int = 0) -> QueueFull:
        """The error for a request refused before it was read (:meth:`refuses` said so)."""
        if len(self._jobs) >= self.queue_size:
            return self._queue_full()
        self._refuse("work_budget")
        budget = self.max_queued_tokens or 0
        adds = f" and this request adds about {cost}" if cost else ""
        return QueueFull(
            f"{self._queued_cost + self._reserved} tokens of work are queued for model "
            f"{self.name!r}{adds} (max_queued_tokens {budget}); retry shortly",
            ("max_queued_tokens", budget),
        )

    def reserve(self, cost: int) -> int:
        """Admit a request by an estimate of its work before it is prepared; returns ``cost``.

        The reserved work counts against ``max_queued_tokens`` until it is submitted (pass
        the result as ``submit(..., reserved=)``) or released with :meth:`release`, so that
        requests being prepared at the same time cannot all pass an empty queue.

        Raises:
            QueueFull: admitting it would pass ``queue_size`` or ``max_queued_tokens``.
        """
        self._admit(cost)
        return self.hold(cost)

    def hold(self, cost: int) -> int:
        """Reserve ``cost`` without the admission check (the caller made it); returns it."""
        self._reserved += cost
        self._reservations += 1
        return cost

    def release(self, reserved: int) -> None:
        """Give back a reservation that will not be submitted."""
        self._reserved -= reserved
        self._reservations -= 1

    async def submit(
        self, items: Items, reserved: int | None = None, costs: Sequence[int] | None = None
    ) -> list[Any]:
        """Run ``items`` (work items) in some batches; one predictor result per item.

        ``reserved``: what :meth:`reserve` returned for this request (it was admitted then).
        ``costs``: each item's work in tokens, where :func:`item_cost` cannot tell it (an item
        that is not a token list, e.g. a text to score with its class); at least 1 each.

        Raises:
            QueueFull: admitting it would pass ``queue_size`` or ``max_queued_tokens``.
            BatcherClosed: not started, or closing.
            DeadlineExceeded: ``timeout_s`` passed with part of it still queued.
        """
        if not items:
            if reserved is not None:
                self.release(reserved)
            return []
        if costs is None:
            return await self._enqueue(list(items), [item_cost(i) for i in items], reserved)
        if len(costs) != len(items):
            raise ValueError(f"{len(costs)} costs for {len(items)} items")
        return await self._enqueue(list(items), [max(1, c) for c in costs], reserved)

    async def call(self, fn: Callable[[], Any], cost: int, reserved: int | None = None) -> Any:
        """``fn()`` in the inference thread, alone, in its turn among the queued work.

        For work that is not a list of items to batch (a beam search): admitted by ``cost``
        (its tokens) against the same budget, dropped unrun when its client leaves or its
        deadline passes, like a request's items. An exception of ``fn`` goes to this caller
        only, and is not logged here.

        Raises:
            QueueFull, BatcherClosed, DeadlineExceeded: as :meth:`submit`.
        """
        (result,) = await self._enqueue([fn], [max(1, cost)], reserved, call=True)
        return result

    async def _enqueue(
        self, items: Items, costs: list[int], reserved: int | None, call: bool = False
    ) -> list[Any]:
        if reserved is not None:
            self.release(reserved)
        if self._task is None or self._closing or self._wakeup is None:
            raise BatcherClosed(f"model {self.name!r} is not accepting requests")
        if reserved is None:
            self._admit(sum(costs))
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + self.timeout_s if self.timeout_s else float("inf")
        job = _Job(items, costs, loop.create_future(), deadline, call=call)
        job.results = [None] * len(items)
        self._jobs.append(job)
        self._queued_cost += sum(costs)
        self._queued_items += len(items)
        self._report_depth()
        self._wakeup.set()
        try:
            return await job.future
        finally:
            if job.future.cancelled() or not job.future.done():
                # the caller was cancelled (the client went away): its queued work stops
                # counting against the budget now, not when the worker next looks
                job.future.cancel()
                self._discard(job)

    def _discard(self, job: _Job) -> None:
        """Take what is still queued of a cancelled job out of the queue."""
        self._unqueue(job, len(job.items))
        if job in self._jobs:
            self._jobs.remove(job)
            self._report_depth()
        if self._wakeup is not None:
            self._wakeup.set()

    def _admit(self, cost: int) -> None:
        if len(self._jobs) >= self.queue_size:
            raise self._queue_full()
        budget = self.max_queued_tokens
        waiting = self._queued_cost + self._reserved
        busy = bool(self._jobs) or self._reservations > 0
        wait = self.expected_wait_s(waiting + cost)
        if busy and self.max_wait_queue_s is not None and wait > self.max_wait_queue_s:
            self._refuse("work_budget")
            raise QueueFull(
                f"{waiting} tokens of work are queued for model {self.name!r}: about "
                f"{wait:.1f} s at the recent {self._rate():.0f} tokens/s, more than "
                f"max_queue_wait_s {self.max_wait_queue_s:g}; retry shortly",
                ("max_queued_tokens", budget or 0),
            )
        if budget is not None and busy and waiting + cost > budget:
            self._refuse("work_budget")
            raise QueueFull(
                f"{waiting} tokens of work are queued for model {self.name!r} and this "
                f"request adds about {cost} (max_queued_tokens {budget}); retry shortly",
                ("max_queued_tokens", budget),
            )

    def _queue_full(self) -> QueueFull:
        self._refuse("queue_full")
        return QueueFull(
            f"{len(self._jobs)} requests are waiting for model {self.name!r} "
            f"(queue_size {self.queue_size}); retry shortly",
            ("queue_size", self.queue_size),
        )

    def _refuse(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.rejected.labels(self.name, reason).inc()

    def _report_depth(self) -> None:
        if self._metrics is not None:
            self._metrics.queue_depth.labels(self.name).set(len(self._jobs))

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            self._drop_dead()
            if not self._jobs:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if not self._jobs[0].call:
                await self._wait_for_mates()
            batch = self._take()
            if batch and batch[0].job.call:
                await self._call(batch[0].job)
            elif batch:
                await self._tag(batch)

    def _expecting(self) -> bool:
        return self._arrivals is None or self._arrivals.count > 0

    def _full(self) -> bool:
        if self._queued_items >= self.max_batch_size:
            return True
        return self.max_batch_tokens is not None and self._queued_cost >= self.max_batch_tokens

    async def _wait_for_mates(self) -> None:
        """Wait up to max_wait for a full batch, while more requests are on their way."""
        assert self._wakeup is not None
        deadline = self._jobs[0].enqueued + self.max_wait_s
        while not self._full() and not self._closing and self._expecting():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)

    def _unqueue(self, job: _Job, upto: int) -> None:
        """Count items ``job.taken:upto`` out of the queue."""
        self._queued_cost -= sum(job.costs[job.taken : upto])
        self._queued_items -= upto - job.taken
        job.taken = upto

    def _drop_dead(self) -> None:
        """Drop the queued work of requests whose client left or whose deadline passed."""
        now = time.monotonic()
        kept: deque[_Job] = deque()
        for job in self._jobs:
            if not job.gone and job.deadline <= now:
                job.future.set_exception(
                    DeadlineExceeded(f"not done within {self.timeout_s:g} s (timeout_s)")
                )
                self._refuse("deadline")
            if job.gone:
                self._unqueue(job, len(job.items))
                continue
            kept.append(job)
        if len(kept) != len(self._jobs):
            self._jobs = kept
            self._report_depth()

    def _take(self) -> list[_Part]:
        """The oldest queued items, up to max_batch_size items and max_batch_tokens tokens.

        A batch always holds at least one item; a request's items may span several batches.
        """
        self._drop_dead()
        parts: list[_Part] = []
        count = tokens = 0
        token_cap = self.max_batch_tokens
        while self._jobs and count < self.max_batch_size:
            job = self._jobs[0]
            if job.call:  # a function runs alone: it ends the batch, or is the batch
                if not parts:
                    parts.append(_Part(job, 0, 1))
                    self._unqueue(job, 1)
                    self._jobs.popleft()
                break
            end = job.taken
            while end < len(job.items) and count < self.max_batch_size:
                cost = job.costs[end]
                if count and token_cap is not None and tokens + cost > token_cap:
                    break
                end += 1
                count += 1
                tokens += cost
            if end > job.taken:
                parts.append(_Part(job, job.taken, end))
                self._unqueue(job, end)
            if job.taken < len(job.items):
                break  # the batch is full
            self._jobs.popleft()
        self._report_depth()
        return parts

    async def _call(self, job: _Job) -> None:
        """Run a :meth:`call` job's function; its result or exception goes to its caller."""
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        try:
            result = await loop.run_in_executor(self._executor, job.items[0])
        except Exception as exc:  # the caller's to report (e.g. a 422), never the worker's
            if not job.gone:
                job.future.set_exception(exc)
            return
        seconds = time.perf_counter() - start
        self._recent.append((job.costs[0], seconds))
        if self._metrics is not None:
            self._metrics.observe_batch(self.name, 1, 1, job.costs[0], seconds)
        if not job.gone:
            job.future.set_result([result])

    async def _tag(self, parts: list[_Part]) -> None:
        items = [item for p in parts for item in p.job.items[p.start : p.end]]
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        try:
            results = await loop.run_in_executor(
                self._executor, self._predict, items, self.max_batch_size
            )
            if len(results) != len(items):
                raise RuntimeError(f"predictor returned {len(results)} results for {len(items)}")
        except Exception as exc:  # delivered to each waiting request, never kills the worker
            log.exception("inference failed for model %s", self.name)
            for p in parts:
                if not p.job.gone:
                    p.job.future.set_exception(exc)
            return
        seconds = time.perf_counter() - start
        tokens = sum(sum(p.job.costs[p.start : p.end]) for p in parts)
        self._recent.append((tokens, seconds))
        if self._metrics is not None:
            jobs = len({id(p.job) for p in parts})
            self._metrics.observe_batch(self.name, jobs, len(items), tokens, seconds)
        offset = 0
        for p in parts:
            n = p.end - p.start
            job = p.job
            job.results[p.start : p.end] = results[offset : offset + n]
            job.done += n
            offset += n
            if job.done == len(job.items) and not job.gone:
                job.future.set_result(job.results)
