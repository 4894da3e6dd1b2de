"""What every task's predictor shares: the bundle, its identity, and how a runtime is attached."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from ner.bundle import Backend, Bundle, BundleError, Graph


class TaskPredictor:
    """Base of the task predictors (``ner.tasks.TASKS``).

    A subclass sets ``task``, reads its parts from the bundle in ``__init__`` (raising
    ``BundleError`` for anything wrong), and builds its graphs as torch modules in
    :meth:`torch_graphs` for the torch backend; the ONNX backend runs the exported graphs.
    """

    task: ClassVar[str] = ""
    graphs: ClassVar[tuple[str, ...]] = ()
    """The graphs the predictor runs; a bundle whose config.json lacks one is refused."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        for key in self.graphs:
            if key not in bundle.config["graphs"]:
                raise BundleError(bundle.config_path, f"no graph {key!r} in 'graphs'")

    @classmethod
    def from_bundle(
        cls, bundle: Bundle, backend: Backend = "onnx", *, threads: int | None = None, **kwargs: Any
    ) -> Any:
        """Check the bundle's parts, attach the runtime, return the predictor."""
        predictor = cls(bundle, **kwargs)
        bundle.attach(backend, lambda: predictor.torch_graphs(), threads)
        return predictor

    @classmethod
    def from_path(
        cls, path: str | os.PathLike[str], backend: Backend = "onnx", **kwargs: Any
    ) -> Any:
        """Load the bundle at ``path``, which must be of this class's task."""
        from ner.tasks import load

        return load(path, backend, task=cls.task, **kwargs)

    def torch_graphs(self) -> Mapping[str, Graph]:
        """The bundle's graphs as torch modules (the torch backend)."""
        raise NotImplementedError

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def version(self) -> str:
        return self.bundle.version

    @property
    def card(self) -> dict[str, Any]:
        return self.bundle.card

    @property
    def backend(self) -> Backend:
        return self.bundle.backend

    def describe(self) -> dict[str, Any]:
        """What ``/v1/models`` and ``ner info`` show about the model (tasks add their own)."""
        return {"name": self.name, "version": self.version, "task": self.task}

    def warmup(self) -> None:
        """Run the model once on a tiny input (serving calls this before it reports ready)."""
        raise NotImplementedError
