"""``ner serve``: start the HTTP service under uvicorn.

::

    ner serve [--model DIR ...] [--host H] [--port P] [--backend onnx|torch] [...]

Flags override ``NER_``-prefixed environment variables (see ``serving.settings``). Models are
loaded before uvicorn starts, so a bad bundle ends the command with one clear line naming the
file (exit status 2) instead of a server that is half up. On SIGTERM or Ctrl-C uvicorn stops
accepting connections, lets in-flight requests finish (up to ``graceful_timeout_s``), then the
app drains its batchers. Readiness turns 503 at the signal itself, and requests not done
shortly before the graceful timeout get 503 + Retry-After (``serving.shutdown``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

HTTP_PROTOCOL = "serving.protocol:BoundedHttpToolsProtocol"
"""uvicorn's httptools protocol with a cap and a timeout on request heads (serving.protocol)."""


def build_parser() -> argparse.ArgumentParser:
    """The ``ner serve`` arguments; each default is None so that unset flags keep env values."""
    p = argparse.ArgumentParser(
        prog="ner serve",
        description="Serve model bundles over HTTP: a route per task (POST /v1/tag, "
        "/v1/classify, ...), GET /v1/models, /healthz, /readyz, /metrics.",
    )
    add = p.add_argument
    add(
        "--model",
        dest="models",
        action="append",
        metavar="DIR",
        help="bundle directory to serve, named by its folder (repeatable); "
        "default: every bundle under models/",
    )
    add("--models-dir", metavar="DIR", help="where to look for bundles when no --model is given")
    add(
        "--default-model",
        action="append",
        metavar="[TASK=]NAME",
        help="the model that answers its task's requests without a model name "
        "(NAME alone: the ner task); repeatable, one per task",
    )
    add("--host", help="interface to bind (default 127.0.0.1)")
    add("--port", type=int, help="port to bind (default 8000)")
    add("--backend", choices=["onnx", "torch"], help="inference backend (default onnx)")
    add(
        "--workers",
        type=int,
        metavar="N",
        help="server processes, each with its own copy of the models (default min(2, CPUs))",
    )
    add(
        "--threads",
        dest="intra_op_threads",
        type=int,
        metavar="N",
        help="inference threads (default 1)",
    )
    add(
        "--worker-nice",
        type=int,
        metavar="N",
        help="OS priority of the inference threads below the event loop's (default 10; 0: same)",
    )
    add("--max-batch-size", type=int, metavar="N", help="sentences per micro-batch (default 64)")
    add(
        "--max-wait-ms",
        type=float,
        metavar="MS",
        help="longest wait for batch-mates (default 2; 0 with --max-batch-size 1: no batching)",
    )
    add("--queue-size", type=int, metavar="N", help="waiting requests before 503 (default 256)")
    add(
        "--max-queued-tokens",
        type=int,
        metavar="N",
        help="tokens of queued work per model before 503 (default 32768)",
    )
    add(
        "--max-queue-wait",
        dest="max_queue_wait_s",
        type=float,
        metavar="S",
        help="queued work per model, in seconds at the recent rate, before 503 (default 2)",
    )
    add("--max-batch-tokens", type=int, metavar="N", help="tokens per micro-batch (default 4096)")
    add(
        "--request-timeout",
        dest="request_timeout_s",
        type=float,
        metavar="S",
        help="queued work older than this is dropped with 503 (default 30)",
    )
    add("--max-chars", type=int, metavar="N", help="characters per text (default 10000)")
    add("--max-tokens", type=int, metavar="N", help="tokens per sentence (default 256)")
    add("--max-documents", type=int, metavar="N", help="documents per request (default 64)")
    add(
        "--graceful-timeout",
        dest="graceful_timeout_s",
        type=float,
        metavar="S",
        help="how long shutdown waits for in-flight requests, then 503 (default 30)",
    )
    add(
        "--max-header-bytes",
        type=int,
        metavar="N",
        help="request line and headers, in bytes; beyond it 431 (default 65536)",
    )
    add(
        "--header-timeout",
        dest="header_timeout_s",
        type=float,
        metavar="S",
        help="time to send a request's headers; beyond it 408 (default 10)",
    )
    add(
        "--body-timeout",
        dest="body_timeout_s",
        type=float,
        metavar="S",
        help="time to send a request's body; beyond it 408 (default 30)",
    )
    add("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    add("--access-log", action="store_true", help="log every request (off by default)")
    return p


def _settings(ns: argparse.Namespace) -> Any:
    from serving.settings import Settings

    skip = {"log_level", "access_log", "default_model"}
    overrides = {k: v for k, v in vars(ns).items() if v is not None and k not in skip}
    if ns.default_model is not None:
        pairs = (item.rpartition("=") for item in ns.default_model)
        overrides["default_models"] = {task or "ner": name for task, _, name in pairs}
    return Settings(**overrides)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ner serve``; returns the exit status (2: bad settings or a bad bundle)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"]:
        args = args[1:]
    ns = build_parser().parse_args(args)
    logging.basicConfig(level=ns.log_level.upper(), format="%(levelname)s: %(name)s: %(message)s")
    try:
        settings = _settings(ns)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        print(f"ner serve: error: bad settings: {problems}", file=sys.stderr)
        return 2

    import uvicorn

    from serving.main import create_app
    from serving.metrics import multiprocess_dir
    from serving.registry import StartupError, load_predictors

    try:
        predictors = load_predictors(settings)
    except StartupError as e:
        print(f"ner serve: error: {e}", file=sys.stderr)
        return 2
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "lifespan": "on",
        "log_level": ns.log_level,
        "access_log": ns.access_log,
        "timeout_graceful_shutdown": math.ceil(settings.graceful_timeout_s),
        "http": HTTP_PROTOCOL,
    }
    if settings.workers > 1:
        # Each worker process builds its own app from the environment; the bundles were
        # checked above, so a bad one never gets this far.
        # The workers share a fresh metrics folder, so that /metrics counts all of them.
        del predictors
        os.environ.update(settings_environment(settings))
        with multiprocess_dir():
            config = uvicorn.Config(
                "serving.main:create_app", factory=True, workers=settings.workers, **options
            )
            supervisor = _supervisor_class()(config, sockets=[config.bind_socket()])
            supervisor.run()
        return 0
    server = uvicorn.Server(uvicorn.Config(create_app(settings, predictors=predictors), **options))
    server.run()
    return 0 if server.started else 3


def _supervisor_class() -> Any:
    """uvicorn's worker supervisor, closing the listening socket at SIGTERM or SIGINT.

    uvicorn's own notices a signal only on its next half-second poll and keeps its copy of the
    listening socket open until every worker has exited: connections made meanwhile wait in the
    backlog until they are reset. Here the parent closes its copy at once and stops the workers,
    which close theirs on their next tick; a connection made later is refused.
    """
    import signal

    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._stop_now)

        def _stop_now(self, sig: int, frame: Any) -> None:
            for sock in self.sockets:
                sock.close()
            self.signal_queue.append(sig)
            self.should_exit.set()

    return Supervisor


def settings_environment(settings: Any) -> dict[str, str]:
    """``NER_*`` variables that rebuild ``settings`` in another process (None: left unset)."""
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            env[f"NER_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env
