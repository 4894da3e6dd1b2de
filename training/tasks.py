"""Task name -> its LightningModule and DataModule (the training layer's part of ``ner.tasks``).

``ner train fit -c configs/X.yaml`` reads the config's ``task:`` key (default ``ner``) and builds
the LightningCLI over that task's two classes; ``ner export`` reads the task from the checkpoint.
The classes are imported lazily so that one task's training never imports another's code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainingTask:
    """Where a task's ``TaskModule`` and ``LightningDataModule`` live (``module:Class``)."""

    name: str
    module: str
    datamodule: str

    @staticmethod
    def _load(path: str) -> Any:
        module, _, cls = path.partition(":")
        return getattr(importlib.import_module(module), cls)

    def module_class(self) -> Any:
        return self._load(self.module)

    def datamodule_class(self) -> Any:
        return self._load(self.datamodule)


_LM_DATA = "training.language_model:LanguageModelDataModule"

TRAINING: dict[str, TrainingTask] = {
    t.name: t
    for t in (
        TrainingTask("ner", "training.module:NerTagger", "training.data:NerDataModule"),
        TrainingTask(
            "classify", "training.classify:ClassifyModule", "training.classify:ClassifyDataModule"
        ),
        TrainingTask(
            "seq2seq", "training.seq2seq:Seq2SeqModule", "training.seq2seq:Seq2SeqDataModule"
        ),
        *(
            TrainingTask(t, "training.language_model:LanguageModelModule", _LM_DATA)
            for t in ("language_model", "conditional_lm")
        ),
    )
}


def training_task(name: str) -> TrainingTask:
    """The training classes of task ``name`` (``KeyError`` naming the known tasks)."""
    try:
        return TRAINING[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(TRAINING)}") from None
