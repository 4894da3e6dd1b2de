"""Per-request guard (pure ASGI middleware): clients that leave, stalled bodies, shutdown.

Each HTTP request runs under a :class:`RequestGuard` that

- reads the body with a deadline (``body_timeout_s`` from the end of the headers): a client
  that stalls gets 408 and the connection is closed;
- once the body is read, watches the connection: when the client goes away before the answer,
  the request's task is cancelled (so its queued work is dropped before it reaches the model),
  one line is logged, and ``/metrics`` counts it as status 499 (nginx's "client closed
  request"), not as a server error;
- at shutdown, answers every request that has not started its response with 503 + Retry-After
  (:meth:`Guards.abort`, called by ``serving.shutdown`` before the graceful timeout ends, and
  also when uvicorn itself cancels the request at that timeout), never with a 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from serving.metrics import CLIENT_GONE

log = logging.getLogger("serving")

HEAD_HOLD = "ner.head_hold"
"""Scope key: the release of the work a request was provisionally admitted with from its head
(``serving.protocol``), until the route admits it by its real estimate (or it ends)."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTimeout(Exception):
    """The client did not send its whole body within ``body_timeout_s``."""


class Guards:
    """The guarded requests in flight in one app, so that shutdown can answer them."""

    def __init__(self, body_timeout_s: float, retry_after_s: int) -> None:
        self.body_timeout_s = body_timeout_s
        self.retry_after_s = retry_after_s
        self.active: set[_Guarded] = set()

    def abort(self, reason: str) -> int:
        """Answer 503 to every request that has not started its response; how many."""
        pending = [g for g in self.active if not g.started]
        for guarded in pending:
            guarded.abort(reason)
        return len(pending)


class _Guarded:
    """One request: its task, what it has received and sent, and why it was stopped."""

    def __init__(self, guards: Guards, scope: Scope, receive: Receive, send: Send) -> None:
        self.guards = guards
        self.scope = scope
        self._receive = receive
        self._send = send
        self.task = asyncio.current_task()
        self.body_deadline = time.monotonic() + guards.body_timeout_s
        self.body_done = False
        self.started = False
        self.stopped: str | None = None  # "gone" or the shutdown reason
        self.watcher: asyncio.Task[None] | None = None

    async def receive(self) -> Message:
        if self.body_done:
            return await self._receive()
        remaining = self.body_deadline - time.monotonic()
        try:
            async with asyncio.timeout(max(remaining, 0.0)):
                message = await self._receive()
        except TimeoutError:
            raise BodyTimeout(
                f"the body did not arrive within {self.guards.body_timeout_s:g} s (body_timeout_s)"
            ) from None
        if message["type"] == "http.disconnect":
            self.client_left()
        elif not message.get("more_body", False):
            self.body_done = True
            self.watcher = asyncio.get_running_loop().create_task(self._watch())
        return message

    async def send(self, message: Message) -> None:
        if self.stopped is not None:
            return  # answered already (503), or nobody left to answer
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

    async def _watch(self) -> None:
        """After the body: the next message is a disconnect (or the response's completion)."""
        message = await self._receive()
        if message["type"] == "http.disconnect" and not self.started:
            self.client_left()
            if self.task is not None:
                self.task.cancel()

    def client_left(self) -> None:
        if self.stopped is None:
            self.stopped = "gone"
            self.scope[CLIENT_GONE] = True

    def abort(self, reason: str) -> None:
        if self.stopped is None and not self.started:
            self.stopped = reason
            if self.task is not None:
                self.task.cancel()

    async def answer_503(self) -> None:
        body = json.dumps(
            {
                "error": {
                    "type": "not_ready",
                    "message": "the server is shutting down; retry shortly",
                }
            }
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(self.guards.retry_after_s).encode()),
            (b"connection", b"close"),
        ]
        self.started = True
        await self._send({"type": "http.response.start", "status": 503, "headers": headers})
        await self._send({"type": "http.response.body", "body": body})


class RequestGuard:
    """The ASGI middleware: runs each HTTP request under a :class:`_Guarded`."""

    def __init__(self, app: Callable[..., Awaitable[None]], guards: Guards) -> None:
        self.app = app
        self.guards = guards

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        guarded = _Guarded(self.guards, scope, receive, send)
        self.guards.active.add(guarded)
        start = time.monotonic()
        try:
            await self.app(scope, guarded.receive, guarded.send)
        except asyncio.CancelledError:
            # by the guard (client gone, shutdown) or by uvicorn (graceful timeout exceeded)
            if guarded.started and guarded.stopped is None:
                raise  # mid-response: nothing sensible left to send
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if guarded.stopped != "gone":
                guarded.stopped = guarded.stopped or "shutdown"
                log.warning(
                    "answered 503 at shutdown: %s after %.2f s", _where(scope), _since(start)
                )
                await guarded.answer_503()
        finally:
            self.guards.active.discard(guarded)
            if guarded.watcher is not None:
                guarded.watcher.cancel()
            release_head_hold(scope)
        if guarded.stopped == "gone":
            log.info(
                "client went away before its answer: %s after %.2f s", _where(scope), _since(start)
            )


def release_head_hold(scope: Scope) -> None:
    """Give back the work held for the request since its head (once; a no-op after)."""
    release = scope.pop(HEAD_HOLD, None)
    if release is not None:
        release()


def _where(scope: Scope) -> str:
    return f"{scope.get('method')} {scope.get('path')}"


def _since(start: float) -> float:
    return time.monotonic() - start
