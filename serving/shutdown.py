"""Shutdown as Kubernetes expects it: readiness off at once, in-flight work finished or 503.

uvicorn reacts to SIGTERM on its next tick: it stops accepting connections, waits up to the
graceful timeout for open ones, then cancels what is left (which would be a 500) and runs the
app's lifespan shutdown. :func:`drain_on_signals` chains a handler before uvicorn's, so that at
the signal itself

- ``/readyz`` turns 503 and requests that arrive on open connections get 503 + Retry-After
  (``ModelRegistry.accepting`` is cleared);
- shortly before the graceful timeout ends, every request that has not started its answer gets
  503 + Retry-After (``Guards.abort``), so none is left for uvicorn to cancel.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("serving")

SIGNALS = (signal.SIGTERM, signal.SIGINT)
ABORT_MARGIN_S = 0.5
"""How long before the graceful timeout the requests still waiting are answered 503."""


def drain_on_signals(app: Any, grace_s: float) -> Callable[[], None]:
    """Chain the drain before the current SIGTERM/SIGINT handlers; returns the undo.

    Call it from the event loop's thread once the app is ready (a no-op in other threads,
    e.g. under a TestClient, where no signals come).
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}

    def handler(sig: int, frame: Any) -> None:
        # A signal handler may interrupt any bytecode: set a flag, defer the rest to the loop.
        registry = app.state.registry
        if registry is not None:
            registry.accepting = False
        loop.call_soon_threadsafe(_begin_drain, app, grace_s)
        chained = previous.get(signal.Signals(sig))
        if callable(chained):
            chained(sig, frame)

    for sig in SIGNALS:
        signal.signal(sig, handler)

    def undo() -> None:
        for sig, old in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, old)

    return undo


def _begin_drain(app: Any, grace_s: float) -> None:
    if getattr(app.state, "draining", False):
        return
    app.state.draining = True
    delay = max(0.0, grace_s - ABORT_MARGIN_S)
    log.info("shutting down: not ready; requests still waiting in %.1f s get 503", delay)
    asyncio.get_running_loop().call_later(delay, _abort, app)


def _abort(app: Any) -> None:
    answered = app.state.guards.abort("shutdown")
    if answered:
        log.warning("graceful timeout: %d request(s) not done get 503", answered)
