"""Finding, loading and naming the served models.

With no explicit model list, every bundle directory (one holding ``config.json``) under
``models_dir`` is served, named by its folder. Loading is all or nothing: any bad bundle raises
``StartupError`` whose message names the model and the offending file, so the server never starts
half-ready.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from serving.batcher import MicroBatcher
from serving.settings import Settings

log = logging.getLogger("serving")

ModelState = Literal["loading", "ready", "stopped"]
BUNDLE_MARKERS = ("model.onnx", "weights.pt", "model_card.json", "labels.json", "vocab.json")
"""Files that mark a directory under ``models_dir`` as a bundle, even without its config.json."""
T = TypeVar("T")


class StartupError(Exception):
    """The server cannot start: no bundles, a bad bundle, or bad default-model settings."""


def discover(settings: Settings) -> list[tuple[str, Path]]:
    """(name, directory) of each model to serve, in a stable order."""
    if settings.models:
        found = [(Path(p).name or str(p), Path(p)) for p in settings.models]
    else:
        root = settings.models_dir
        if not root.is_dir():
            raise StartupError(f"{root}: no such models directory; pass --model DIR")
        dirs = [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")]
        for d in dirs:  # a bundle that lost its config.json is a bad bundle, not "no bundle"
            if not (d / "config.json").is_file() and any((d / f).is_file() for f in BUNDLE_MARKERS):
                raise StartupError(
                    f"model {d.name!r}: {d / 'config.json'}: missing file "
                    "(the bundle is incomplete)"
                )
        found = [(d.name, d) for d in dirs if (d / "config.json").is_file()]
        if not found:
            raise StartupError(f"{root}: no bundle directories (with config.json) in it")
    names = [name for name, _ in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise StartupError(f"two models share the folder name {duplicates[0]!r}; rename one")
    return found


def load_predictors(settings: Settings) -> dict[str, Any]:
    """Load every model named by ``discover`` (any task); ``StartupError`` on the first bad one."""
    from ner import tasks
    from ner.bundle import BundleError

    predictors: dict[str, Any] = {}
    threads = settings.intra_op_threads or None
    for name, path in discover(settings):
        if not path.is_dir():
            raise StartupError(f"model {name!r}: {path}: not a directory")
        try:
            predictors[name] = tasks.load(path, settings.backend, threads=threads)
        except BundleError as e:
            raise StartupError(f"model {name!r}: {e}") from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise StartupError(f"model {name!r}: {path}: cannot load the bundle ({e})") from None
        log.info(
            "loaded %s model %s from %s (%s backend)",
            predictors[name].task,
            name,
            path,
            settings.backend,
        )
    return predictors


def default_models(settings: Settings, predictors: Mapping[str, Any]) -> dict[str, str]:
    """Task -> default model name: the one the settings name, or the task's first model."""
    defaults: dict[str, str] = {}
    for name, predictor in predictors.items():
        defaults.setdefault(predictor.task, name)
    for task, name in settings.default_models.items():
        if name not in predictors:
            raise StartupError(
                f"default model {name!r} for task {task!r} is not loaded "
                f"(loaded: {', '.join(predictors)})"
            )
        if predictors[name].task != task:
            raise StartupError(f"default model {name!r} is a {predictors[name].task!r} model")
        defaults[task] = name
    return defaults


@dataclass
class ServedModel:
    """One loaded model, its micro-batcher, and the executor all inference runs in.

    Work that is not a list of items for the batcher (e.g. generating text step by step) goes
    through :meth:`run`, in the same single inference thread, so that the runtime is never
    called from two threads at once.
    """

    name: str
    predictor: Any
    batcher: MicroBatcher
    executor: Executor
    state: ModelState = "loading"

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the inference thread, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def describe(self, default: bool) -> dict[str, Any]:
        """What ``/v1/models`` shows: the predictor's own description, state, default, card."""
        info = dict(self.predictor.describe())
        info.update(
            name=self.name, task=self.task, version=self.version, state=self.state, default=default
        )
        info["card"] = dict(self.predictor.card)
        return info

    @property
    def version(self) -> str:
        return str(self.predictor.version)

    @property
    def task(self) -> str:
        return str(self.predictor.task)


@dataclass
class ModelRegistry:
    """The loaded models by name, and the default model per task."""

    models: dict[str, ServedModel]
    defaults: dict[str, str]
    accepting: bool = field(default=False)

    @property
    def ready(self) -> bool:
        """Every model loaded and warmed, and not shutting down."""
        return self.accepting and all(m.state == "ready" for m in self.models.values())

    def names(self, task: str) -> tuple[str, ...]:
        """Loaded model names of one task."""
        return tuple(n for n, m in self.models.items() if m.task == task)

    def tasks(self) -> tuple[str, ...]:
        """The tasks of the loaded models."""
        return tuple(dict.fromkeys(m.task for m in self.models.values()))

    def select(self, name: str | None, task: str) -> ServedModel:
        """The named model, or the task's default; ``KeyError`` for a name not loaded."""
        if name is None:
            name = self.defaults.get(task)
            if name is None:
                raise KeyError(task)
        model = self.models.get(name)
        if model is None or model.task != task:
            raise KeyError(name)
        return model
