"""uvicorn's httptools HTTP/1.1 protocol with bounds on request heads, as nginx has.

uvicorn reads a request line and headers of any size, for as long as the client takes. This
protocol (``ner serve`` runs uvicorn with ``http="serving.protocol:BoundedHttpToolsProtocol"``)

- refuses a head (request line and headers) over ``max_header_bytes`` with 431 and closes the
  connection, before buffering more than one read past the limit;
- closes with 408 a connection that has not sent a whole head within ``header_timeout_s`` of
  connecting or of the head's first byte (idle keep-alive connections are uvicorn's
  ``timeout_keep_alive``).

It also answers 503 straight from the head, without running the app, a POST the app would refuse
unread because no model of its task has room in its work budget for the work the
``Content-Length`` suggests (``app.state.shed``): under a storm of heavy requests, each refusal
then costs the event loop a few microseconds instead of reading, parsing and validating a body.

Stalled bodies are the request guard's (``serving.guard``). The limits come from the app's
settings (``app.state.settings``), found through the middleware uvicorn wraps the app in.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from serving.guard import HEAD_HOLD
from serving.settings import Settings

log = logging.getLogger("serving")

_DEFAULTS = Settings.model_fields


def _app_state(app: Any) -> Any:
    """``app.state`` of the FastAPI app under uvicorn's wrappers, or None."""
    for _ in range(8):
        state = getattr(app, "state", None)
        if getattr(state, "settings", None) is not None:
            return state
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with a size cap and a read timeout on request heads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._state = _app_state(self.app)
        settings = getattr(self._state, "settings", None)
        self.max_header_bytes = int(
            getattr(settings, "max_header_bytes", _DEFAULTS["max_header_bytes"].default)
        )
        self.header_timeout_s = float(
            getattr(settings, "header_timeout_s", _DEFAULTS["header_timeout_s"].default)
        )
        self._head = bytearray()  # bytes of the head being read
        self._in_head = True  # between requests or reading a head
        self._head_timer: asyncio.TimerHandle | None = None
        self._shedding = False  # answered 503 from the head: skip this request's body
        self._body_here = 0  # bytes after the head in the read that completed it

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            # the head so far (at most one read past the cap): where does it end?
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            size = end + 4 if end >= 0 else len(self._head)
            if size > self.max_header_bytes:
                self._head.clear()
                self._in_head = False
                self._refuse(
                    431,
                    "header_too_large",
                    f"the request line and headers are over {self.max_header_bytes} bytes "
                    "(max_header_bytes)",
                )
                return
            if end >= 0:
                self._body_here = len(self._head) - size  # body bytes read with the head
                self._head.clear()  # the whole head is here: the parser takes it from now
        super().data_received(data)

    # parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        if self._head_timer is None:
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head.clear()
        self._cancel_head_timer()
        if self._shed():
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._shedding:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._shedding:
            self._shedding = False
            self.on_response_complete()  # keep-alive timer, next pipelined request
        else:
            super().on_message_complete()
        self._in_head = True  # the next bytes are the next request's head

    def _shed(self) -> bool:
        """Answer 503 at once, without the app, a POST the app would refuse unread.

        Only between responses (never ahead of an answer still being made) and only when the
        app says so (``app.state.shed``: no model of the route's task has room for the work
        the body's size suggests); the app counts it in /metrics. A request that has room and
        whose whole body came with its head holds that work until its route admits it
        (``serving.guard.HEAD_HOLD`` in its scope); one whose body is still coming holds
        nothing, so that clients who stall their bodies cannot tie up the budget.
        """
        shed = getattr(self._state, "shed", None)
        idle = self.cycle is None or self.cycle.response_complete
        if shed is None or not idle or self.parser.get_method() != b"POST":
            return False
        path = self.url.split(b"?", 1)[0].decode("latin-1")
        length = next((v for k, v in self.headers if k == b"content-length"), b"")
        size = int(length) if length.isdigit() else 0
        body_here, self._body_here = self._body_here, 0
        verdict = shed(path, size, 0 < size <= body_here)
        if verdict is None:
            return False
        if callable(verdict):  # admitted for now: the work it holds goes with the request
            self.scope[HEAD_HOLD] = verdict  # type: ignore[literal-required]
            return False
        self._shedding = True
        self.transport.write(verdict)
        return True

    # helpers

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        busy = self.cycle is not None and not self.cycle.response_complete
        if self._in_head and not busy and not self.transport.is_closing():
            if self._head or self.cycle is not None:
                message = (
                    f"the request line and headers did not arrive within "
                    f"{self.header_timeout_s:g} s (header_timeout_s)"
                )
                self._refuse(408, "request_timeout", message)
            else:
                self.transport.close()  # connected and silent: nothing to answer

    def _refuse(self, status: int, kind: str, message: str) -> None:
        body = json.dumps({"error": {"type": kind, "message": message}}).encode()
        reason = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}[status]
        head = [
            b"HTTP/1.1 %d %s\r\n" % (status, reason),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        log.info("refused a request head with %d: %s", status, message)
        self.transport.write(b"".join(head) + body)
        self.transport.close()
