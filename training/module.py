"""The NER task's LightningModule: ``NerTagger`` holds a ``ner.models.tagger.Tagger``.

What is specific to tagging: the CRF/softmax loss, entity F1 on the dev set every epoch with
``ner.metrics`` (the metric of ``ner eval``), decoded exactly as the exported bundle decodes
(``ner.decode.viterbi`` over the scheme-constrained transitions), and the export to a ``ner``
bundle. Everything else (optimiser, schedule, history, checkpoints) is ``training.base``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor

from ner.models.config import TaggerConfig
from ner.models.tagger import Tagger
from training.base import CHECKPOINT_KEY, OptimConfig, TaskModule, hardware, with_sizes
from training.predictions import ConllPredictionWriter

__all__ = ["CHECKPOINT_KEY", "NerTagger", "hardware"]

log = logging.getLogger(__name__)

NER_OPTIM = OptimConfig(optimizer="sgd", lr=0.015, momentum=0.9, lr_decay=0.05)
"""Ma & Hovy (2016): SGD with momentum 0.9, lr 0.015, decay 0.05 per epoch."""


def _use_glove(word_input: str) -> bool:
    return word_input == "glove"


def _use_chars(char_encoder: str) -> bool:
    return char_encoder != "none"


class NerTagger(TaskModule):
    """Trains a BiRNN(-CRF) tagger for named entities.

    Args:
        labels: Tag names in tag-id order (linked from the data; sets the number of tags).
        vocab_size: Word vocabulary size (linked from the data).
        num_chars: Character vocabulary size, 0 without character features (linked from the data).
        tag_scheme: Tag scheme of ``labels`` (linked from data.tag_scheme).
        arch: The tagger: input stack, RNN, dropout, head (``ner.models.config.TaggerConfig``;
            the data-derived sizes in it are filled in from the data).
        optim: The optimiser and its learning-rate schedule.
        init_from: Bundle directory to warm-start from (its architecture, weights and
            vocabularies); for fine-tuning. ``arch`` is then ignored.
    """

    task = "ner"
    monitor = "f1"
    monitor_mode = "max"
    cli_callbacks: ClassVar[tuple[tuple[Any, str], ...]] = (
        (ConllPredictionWriter, "prediction_writer"),
    )
    cli_links: ClassVar[tuple[tuple[Any, ...], ...]] = (
        ("data.labels", "model.labels", "instantiate"),
        ("data.vocab_size", "model.vocab_size", "instantiate"),
        ("data.num_chars", "model.num_chars", "instantiate"),
        ("data.tag_scheme", "model.tag_scheme", "parse"),
        ("model.arch.inputs.word_input", "data.use_glove", "parse", _use_glove),
        ("model.arch.inputs.char_encoder", "data.use_chars", "parse", _use_chars),
        ("model.init_from", "data.init_from", "parse"),
    )

    def __init__(
        self,
        labels: list[str] | None = None,
        vocab_size: int = 2,
        num_chars: int = 0,
        tag_scheme: Literal["iob2", "bioes"] = "bioes",
        arch: TaggerConfig = TaggerConfig(),  # noqa: B008 (frozen)
        optim: OptimConfig = NER_OPTIM,
        init_from: str | None = None,
    ) -> None:
        super().__init__(optim)
        # Data-derived values travel in the datamodule's checkpoint state, not in hparams; the
        # configs are stored as plain dicts so that checkpoints load with weights_only=True.
        self.save_hyperparameters(
            ignore=["labels", "vocab_size", "num_chars", "tag_scheme", "arch", "optim"]
        )
        self.hparams.update(arch=dataclasses.asdict(arch), optim=dataclasses.asdict(optim))
        self.labels = list(labels or ["O"])
        self.tag_scheme = tag_scheme
        if init_from:
            config, state = _bundle_weights(init_from, self.labels)
        else:
            config = with_sizes(
                arch,
                num_tags=len(self.labels),
                **{"inputs.vocab_size": vocab_size, "inputs.num_chars": num_chars},
            )
            state = None
        self.model = Tagger.build(config)
        if state is not None:
            self.model.load_state_dict(state)
            log.info("warm-started from %s", init_from)
        self._gold: list[list[str]] = []
        self._pred: list[list[str]] = []

    # ---------------------------------------------------------------- forward and decoding

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """A batch from ``training.data.Collate`` -> emissions (B, T, K)."""
        return self.model(
            batch["word_ids"],
            batch["glove_ids"],
            batch["char_ids"],
            batch["casing_ids"],
            batch["lengths"],
        )

    def decode(self, emissions: Tensor, lengths: Tensor) -> list[list[str]]:
        """Emissions (B, T, K) -> tag names per sentence, by the bundle's decoder (NumPy Viterbi
        over transitions constrained to ``tag_scheme``)."""
        from ner.decode import constrain, viterbi

        # Rebuilt per batch (K x K, microseconds) so it always follows the current weights.
        trans = constrain(self.model.transitions(), self.labels, self.tag_scheme)
        paths = viterbi(emissions.detach().float().cpu().numpy(), lengths.cpu().numpy(), trans)
        return [[self.labels[i] for i in path.tolist()] for path in paths]

    # ---------------------------------------------------------------- the task's parts

    def training_loss(self, batch: dict[str, Tensor]) -> Tensor:
        return self.model.loss(self(batch), batch["tags"], batch["lengths"])

    def reset_metrics(self) -> None:
        self._gold, self._pred = [], []

    def evaluate_batch(self, batch: dict[str, Tensor]) -> Tensor:
        emissions = self(batch)
        lengths = batch["lengths"]
        loss = self.model.loss(emissions, batch["tags"], lengths)
        self._pred.extend(self.decode(emissions, lengths))
        tags = batch["tags"].cpu().numpy()
        for row, n in enumerate(lengths.tolist()):
            self._gold.append([self.labels[i] for i in tags[row, :n]])
        return loss

    def epoch_metrics(self) -> dict[str, float]:
        from ner.metrics import entity_scores

        report = entity_scores(self._gold, self._pred, scheme=self.tag_scheme)
        metrics = {
            "f1": report.micro.f1,
            "precision": report.micro.precision,
            "recall": report.micro.recall,
        }
        for type_, prf in sorted(report.per_type.items()):
            metrics[f"f1_{type_}"] = prf.f1
        return metrics

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> list[tuple[int, list[str]]]:
        """(position in the split, tag names in ``tag_scheme``) per sentence of the batch."""
        tags = self.decode(self(batch), batch["lengths"])
        return list(zip(batch["index"].tolist(), tags, strict=True))

    def checkpoint_state(self) -> dict[str, Any]:
        return {"labels": self.labels, "tag_scheme": self.tag_scheme}

    @classmethod
    def rebuild(cls, entry: dict[str, Any]) -> Tagger:
        if "config" in entry:
            config = TaggerConfig.from_dict(entry["config"])
        else:  # checkpoints written before task modules: a flat tagger config
            config = TaggerConfig.from_legacy(entry["tagger_config"])
        return Tagger.build(config)

    @classmethod
    def upgrade_state(cls, entry: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
        if "config" in entry:
            return state
        from ner.models.tagger import migrate_legacy_state

        return migrate_legacy_state(state)  # before task modules: inputs at the top level

    @classmethod
    def export(
        cls,
        model: torch.nn.Module,
        out_dir: str | os.PathLike[str],
        *,
        entry: dict[str, Any],
        data: dict[str, Any],
        name: str,
        version: str,
        card: dict[str, Any],
    ) -> Path:
        from ner.predict import export_tagger
        from training.data import featurizer_from_state

        return export_tagger(
            model,
            out_dir,
            featurizer=featurizer_from_state(data),
            labels=entry["labels"],
            tag_scheme=entry["tag_scheme"],
            name=name,
            version=version,
            card=card,
        )


def _bundle_weights(path: str, labels: list[str]) -> tuple[TaggerConfig, dict[str, Tensor]]:
    """TaggerConfig and full state_dict (word table included) of a bundle, for warm starts."""
    from ner.nn.inputs import load_word_table
    from ner.predict import Predictor

    predictor = Predictor.from_path(path)  # validates files and checksums; no torch model
    if list(predictor.labels) != labels:
        raise ValueError(
            f"{path}: bundle labels {list(predictor.labels)} differ from the data's {labels}"
        )
    config = predictor.config
    model = Tagger.build(config)
    full = model.state_dict()
    full.update(predictor.bundle.weights())
    table = torch.from_numpy(np.asarray(predictor.inputs.tables.table, dtype=np.float32))  # (V, D)
    full.update({f"inputs.{k}": v for k, v in load_word_table(model.inputs, table).items()})
    return config, full
