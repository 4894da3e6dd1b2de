"""Server settings: ``NER_``-prefixed environment variables, overridden by ``ner serve`` flags.

``get_settings()`` is cached; tests either pass a ``Settings`` straight to ``create_app`` or
override the ``get_settings`` dependency.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

Backend = Literal["onnx", "torch"]


def default_workers() -> int:
    """``min(2, CPUs this process may run on)``: the default number of server processes."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(2, cpus))


class Settings(BaseSettings):
    """Everything the server reads at start-up. Limits are per request unless said otherwise."""

    model_config = SettingsConfigDict(env_prefix="NER_", extra="ignore", frozen=True)

    models: list[Path] = Field(
        default_factory=list,
        description="Bundle directories to serve, each named by its folder. "
        "Empty: every bundle directory under models_dir.",
    )
    models_dir: Path = Field(
        default=REPO_ROOT / "models", description="Where bundles are found when models is empty."
    )
    default_models: dict[str, str] = Field(
        default_factory=dict,
        description='Default model name per task, e.g. {"ner": "conll2003-en"}. '
        "A task without an entry defaults to its first model.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    backend: Backend = Field(default="onnx", description="onnx (never imports torch) or torch.")
    workers: int = Field(
        default_factory=default_workers,
        ge=1,
        le=64,
        description="Server processes (ner serve), each with its own copy of the models. "
        "Default: min(2, CPUs), since one process uses about one core (the event loop and "
        "inference share the GIL). With more than 1, /metrics adds up all of them.",
    )
    intra_op_threads: int = Field(default=1, ge=0, description="Inference threads; 0 = runtime.")
    worker_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="How much lower the OS priority (Linux nice) of the inference, preparation "
        "and answer threads is than the event loop's, so that /healthz and refusals are "
        "answered at once when the cores are busy. 0: the same priority (e.g. on a host "
        "shared with batch jobs that run at a higher nice value than the server's workers).",
    )

    max_batch_size: int = Field(
        default=64, ge=1, le=4096, description="Most sentences tagged in one predictor call."
    )
    max_wait_ms: float = Field(
        default=2.0, ge=0.0, le=1000.0, description="Longest a request waits for batch-mates."
    )
    queue_size: int = Field(
        default=256, ge=1, description="Requests that may wait for inference; beyond it, 503."
    )
    max_batch_tokens: int = Field(
        default=4096,
        ge=1,
        description="Most tokens in one predictor call, so that one call takes a bounded time "
        "(a large request is tagged over several calls).",
    )
    max_queued_tokens: int = Field(
        default=32_768,
        ge=1,
        description="Work budget per model: tokens that may wait for inference (about 2-3 s of "
        "work on one core). A request that would pass it gets 503 + Retry-After at once; one "
        "larger than the whole budget is admitted only into an empty queue.",
    )
    max_queue_wait_s: float = Field(
        default=2.0,
        gt=0.0,
        description="Work budget in time: a request whose queued work ahead (its own "
        "included) would take longer than this at the recent inference rate gets 503 + "
        "Retry-After at once. Adapts the budget to the machine's speed and load.",
    )
    request_timeout_s: float = Field(
        default=30.0,
        gt=0.0,
        description="Deadline of a request's queued work: what is still queued after this "
        "many seconds is dropped and the request gets 503 + Retry-After.",
    )
    retry_after_s: int = Field(default=1, ge=1, description="Retry-After sent with a 503.")

    max_chars: int = Field(default=10_000, ge=1, description="Characters per text.")
    max_tokens: int = Field(
        default=256,
        ge=1,
        description="Tokens per sentence: the cap on a tokens list; longer sentences of a text "
        "are tagged in windows of this many tokens.",
    )
    max_documents: int = Field(default=64, ge=1, description="Documents per batch request.")
    max_token_chars: int = Field(default=100, ge=1, description="Characters per given token.")
    max_body_bytes: int | None = Field(
        default=None,
        ge=1,
        description="Request body cap (413 beyond it). None: the largest body the other "
        "limits allow, with every character JSON-escaped.",
    )
    graceful_timeout_s: float = Field(
        default=30.0,
        ge=0.0,
        description="How long shutdown waits for in-flight requests; those not done by then "
        "get 503 + Retry-After.",
    )
    max_header_bytes: int = Field(
        default=65_536,
        ge=1024,
        description="Request line and headers, in bytes; beyond it, 431 and the connection "
        "is closed.",
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0.0,
        description="Time a connection may take to send a request's line and headers "
        "(from its first byte, or from connecting); beyond it, 408 and close.",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0.0,
        description="Time a client may take to send a request body after its headers; "
        "beyond it, 408 and close.",
    )
    warmup: bool = Field(default=True, description="Tag a sentence with each model before ready.")

    def body_limit(self) -> int:
        """The request-body cap in bytes (see ``max_body_bytes``)."""
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        # 12 bytes per code point: an astral character is two \\uXXXX escapes.
        text_doc = 12 * self.max_chars + 32
        tokens_doc = self.max_tokens * (12 * self.max_token_chars + 4) + 32
        return self.max_documents * (max(text_doc, tokens_doc) + 8) + 4096


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
