"""The one place that knows the tasks.

A bundle's checksummed ``config.json`` names its ``task``; :func:`load` opens and verifies the
bundle, looks the task up here and hands it to that task's predictor class. Adding a task means
adding one line to :data:`TASKS` (and the task's model, predictor, training module, route and
config); nothing else in the library changes.

The predictor modules are imported lazily, so that loading a tagger never imports the code of
the other tasks (start-up time), and the ONNX path never imports torch.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

from ner.bundle import Backend, BundleError, open_bundle


@dataclass(frozen=True)
class TaskSpec:
    """A task: its name, what it does, and its predictor class (``module:Class`` in ``ner``)."""

    name: str
    summary: str
    predictor: str

    def predictor_class(self) -> Any:
        module, _, cls = self.predictor.partition(":")
        return getattr(importlib.import_module(module), cls)


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("ner", "sequence labelling, Tx = Ty (named entities)", "ner.predict:Predictor"),
        TaskSpec("classify", "many-to-one sentence classification", "ner.classify:Classifier"),
        TaskSpec("seq2seq", "encoder-decoder, Tx != Ty (translation)", "ner.translate:Translator"),
        TaskSpec(
            "language_model",
            "sentence probability and sampling",
            "ner.generate:LanguageModelPredictor",
        ),
        TaskSpec(
            "conditional_lm",
            "one-to-many: a class -> a sequence",
            "ner.generate:ConditionalLMPredictor",
        ),
    )
}
"""Task name -> spec. The library's layers above (training, serving) key their own parts on
these names."""


def task_spec(name: str) -> TaskSpec:
    """The spec of task ``name`` (``KeyError`` with the known names)."""
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


def load(
    path: str | os.PathLike[str],
    backend: Backend = "onnx",
    *,
    threads: int | None = None,
    task: str | None = None,
    **kwargs: Any,
) -> Any:
    """Open the bundle at ``path`` and return its task's predictor.

    Args:
        path: the bundle directory.
        backend: ``"onnx"`` (ONNX Runtime, never imports torch) or ``"torch"``.
        threads: ONNX Runtime intra-op threads (default ``$NER_ORT_THREADS`` or 1).
        task: when given, refuse a bundle of another task.
        kwargs: passed to the predictor class.

    Raises:
        BundleError: see :func:`ner.bundle.open_bundle`, an unknown task, a task other than
            ``task``, or any task-specific check of the bundle's parts.
    """
    if backend not in ("onnx", "torch"):
        raise ValueError(f"unknown backend {backend!r}: expected 'onnx' or 'torch'")
    bundle = open_bundle(path)
    if bundle.task not in TASKS:
        raise BundleError(
            bundle.config_path,
            f"unknown task {bundle.task!r}; this version knows {', '.join(TASKS)}",
        )
    if task is not None and bundle.task != task:
        raise BundleError(bundle.config_path, f"a {bundle.task!r} model, not a {task!r} model")
    cls = TASKS[bundle.task].predictor_class()
    return cls.from_bundle(bundle, backend, threads=threads, **kwargs)
