"""The ``classify`` task for ``ner train``: a ``TaskModule`` holding a
``ner.models.classifier.Classifier`` and a DataModule over ``sentence<TAB>label`` files (SST-2).

What is specific to classification: cross-entropy with word dropout, dev accuracy (the monitored
metric), macro F1, and the dev temperature (``ner.classify.fit_temperature``) with the expected
calibration error before and after it, every epoch; the checkpoint carries its epoch's
temperature, which ``ner export`` stores in the bundle. Everything else (optimiser, schedule,
history, checkpoints) is ``training.base``.

    ner train fit -c configs/sst2.yaml
    ner export --ckpt runs/sst2/checkpoints --out models/sst2-en --version 1.0.0
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from ner.classify import read_labelled, score_logits
from ner.data.vocab import Casing, Vocab, char_vocab
from ner.features import Featurizer
from ner.models.classifier import Classifier
from ner.models.config import ClassifierConfig
from training.base import OptimConfig, TaskModule, with_sizes
from training.data import (
    DATA_STATE_FORMAT,
    DataError,
    WordDataModule,
    bucketed_loader,
    data_license,
    data_record,
    featurizer_from_state,
    file_sha256,
    resolve_data_path,
)

__all__ = ["ClassifyDataModule", "ClassifyModule", "LabelCollate"]

log = logging.getLogger(__name__)

SST2_LABELS = {"0": "negative", "1": "positive"}
CLASSIFY_OPTIM = OptimConfig(optimizer="adam", lr=0.002)


def _use_glove(word_input: str) -> bool:
    return word_input == "glove"


def _use_chars(char_encoder: str) -> bool:
    return char_encoder != "none"


class LabelCollate:
    """Rows -> a padded batch: ``word_ids, glove_ids (B, T)``, ``char_ids (B, T, C)``,
    ``casing_ids (B, T)``, ``lengths (B,)``, ``labels (B,)`` and ``index (B,)``."""

    def __init__(
        self, featurizer: Featurizer, tokens: Sequence[Sequence[str]], labels: Sequence[int]
    ) -> None:
        self.featurizer = featurizer
        self.tokens = tokens
        self.labels = labels

    def __call__(self, indices: Sequence[int]) -> dict[str, Tensor]:
        f = self.featurizer.encode([self.tokens[i] for i in indices])
        arrays = {
            "word_ids": f.word_ids,
            "glove_ids": f.glove_ids,
            "char_ids": f.char_ids,
            "casing_ids": f.casing_ids,
            "lengths": f.lengths,
            "labels": np.asarray([self.labels[i] for i in indices], dtype=np.int64),
            "index": np.asarray(indices, dtype=np.int64),
        }
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}


@dataclasses.dataclass
class LabelledSplit:
    path: Path
    sha256: str
    tokens: list[list[str]]
    labels: list[int]


class ClassifyDataModule(WordDataModule):
    """``sentence<TAB>label`` files (space-tokenised sentences) for a sentence classifier.

    Args:
        train_path: Training file. A relative path is tried from the working directory, then
            from the data folder ($NER_DATA_DIR). Default: sst2/train.tsv.
        val_path: Dev file; accuracy on it picks the best checkpoint. Default: sst2/dev.tsv.
        test_path: Test file for the ``test`` subcommand (optional).
        label_names: File label -> class name (default SST-2's 0 -> negative, 1 -> positive);
            classes are ordered as listed. Empty: the file labels themselves, sorted.
        casing: Word vocabulary casing policy: keep, lower, or lower_digits.
        min_freq: Minimum count of a training word to enter the vocabulary.
        max_vocab: Keep at most this many words (most frequent first); null = no limit.
        use_chars: Build character ids (linked from the model's char_encoder by the CLI).
        use_glove: Look up GloVe ids (linked from the model's word_input by the CLI).
        max_word_len: Characters kept per word for the character encoder.
        batch_size: Training sentences per batch.
        eval_batch_size: Sentences per batch for validation and test.
        bucket_batches: Training batches per length bucket (see BucketBatchSampler).
        num_workers: DataLoader worker processes.
        seed: Seed of the batch shuffling (the epoch is added to it).
        license: The data's licence for the model card; default: the README beside the file.
    """

    def __init__(
        self,
        train_path: str | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        label_names: dict[str, str] | None = None,
        casing: Casing = "lower",
        min_freq: int = 1,
        max_vocab: int | None = None,
        use_chars: bool = False,
        use_glove: bool = True,
        max_word_len: int = 20,
        batch_size: int = 32,
        eval_batch_size: int = 256,
        bucket_batches: int = 50,
        num_workers: int = 0,
        seed: int = 0,
        license: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.train_path = train_path or "sst2/train.tsv"
        self.val_path = val_path or "sst2/dev.tsv"
        self.test_path = test_path
        self.label_names = dict(SST2_LABELS if label_names is None else label_names)
        self.casing = casing
        self.min_freq = min_freq
        self.max_vocab = max_vocab
        self.use_chars = use_chars
        self.use_glove = use_glove
        self.max_word_len = max_word_len
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.bucket_batches = bucket_batches
        self.num_workers = num_workers
        self.seed = seed
        self.license = license
        self._featurizer = None
        self._labels = None
        self._splits: dict[str, LabelledSplit] = {}
        self._raw: dict[str, list[Any]] = {}

    # ---------------------------------------------------------------- vocabularies (linked)

    def _read(self, path: str) -> tuple[Path, list[Any]]:
        p = resolve_data_path(path)
        if not p.is_file():
            raise FileNotFoundError(f"data file not found: {p}")
        if str(p) not in self._raw:
            try:
                rows = read_labelled(p)
            except ValueError as e:
                raise DataError(str(e)) from None
            if not rows:
                raise DataError(f"{p}: no sentences")
            self._raw[str(p)] = rows
        return p, self._raw[str(p)]

    def _build_vocab(self) -> None:
        path, rows = self._read(self.train_path)
        if self.label_names:
            labels = list(dict.fromkeys(self.label_names.values()))
        else:
            labels = sorted({r.label for r in rows})
        if len(labels) < 2:
            raise DataError(f"{path}: a classifier needs at least 2 classes, found {labels}")
        flat = [w for r in rows for w in r.tokens]
        words = Vocab.build(
            flat, min_freq=self.min_freq, max_size=self.max_vocab, casing=self.casing
        )
        chars = char_vocab(flat) if self.use_chars else None
        self._featurizer = Featurizer(words, chars, self.use_glove, self.max_word_len)
        self._labels = labels
        log.info("vocabulary: %d words, %d classes from %s", len(words), len(labels), path)

    # ---------------------------------------------------------------- splits

    def split(self, name: str) -> LabelledSplit:
        """The split ``train``, ``val`` or ``test``, loaded on first use."""
        if name not in self._splits:
            path = {"train": self.train_path, "val": self.val_path, "test": self.test_path}[name]
            if path is None:
                raise DataError(f"no {name} file: set --data.{name}_path")
            p, rows = self._read(path)
            index = {label: i for i, label in enumerate(self.labels)}
            ids = []
            for r in rows:
                name_ = self.label_names.get(r.label, r.label) if self.label_names else r.label
                if name_ not in index:
                    raise DataError(
                        f"{p}:{r.line}: label {r.label!r} is not one of "
                        f"{sorted(self.label_names) if self.label_names else self.labels}"
                    )
                ids.append(index[name_])
            self._splits[name] = LabelledSplit(
                p, file_sha256(p), [list(r.tokens) for r in rows], ids
            )
        return self._splits[name]

    def setup(self, stage: str) -> None:
        needed = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}
        for name in needed.get(stage, ("val",)):
            self.split(name)

    def _loader(self, name: str, batch_size: int, *, shuffle: bool) -> DataLoader:
        split = self.split(name)
        return bucketed_loader(
            self,
            [len(t) for t in split.tokens],
            batch_size,
            LabelCollate(self.featurizer, split.tokens, split.labels),
            shuffle=shuffle,
            bucket_batches=self.bucket_batches,
            seed=self.seed,
            num_workers=self.num_workers,
        )

    # ---------------------------------------------------------------- checkpoint state

    def state_dict(self) -> dict[str, Any]:
        """Vocabularies, labels and data identity (JSON-like), saved in every checkpoint."""
        f = self.featurizer
        files = {n: data_record(s.path, s.sha256) for n, s in self._splits.items()}
        return {
            "format": DATA_STATE_FORMAT,
            "words": f.words.to_dict(),
            "chars": None if f.chars is None else f.chars.to_dict(),
            "use_glove": f.use_glove,
            "max_word_len": f.max_word_len,
            "labels": self.labels,
            "label_names": self.label_names,
            "files": files,
            "license": self.license or data_license(resolve_data_path(self.train_path)),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = featurizer_from_state(state)
        if saved != self.featurizer or list(state["labels"]) != self.labels:
            raise DataError(
                "the checkpoint's vocabularies or labels differ from those built from "
                f"{self.train_path}: was the training file or a vocabulary setting changed?"
            )


class ClassifyModule(TaskModule):
    """Trains a many-to-one BiRNN sentence classifier.

    Args:
        labels: Class names in class-id order (linked from the data).
        vocab_size: Word vocabulary size (linked from the data).
        num_chars: Character vocabulary size, 0 without character features (linked).
        arch: The classifier: input stack, RNN, pooling, dropout
            (``ner.models.config.ClassifierConfig``; data-derived sizes are filled in).
        optim: The optimiser and its learning-rate schedule.
        word_dropout: Probability of replacing a training word by UNK (no GloVe vector either).
        label_smoothing: Cross-entropy label smoothing.
        adversarial: Adversarial training on the word vectors: the L2 norm epsilon of the
            per-sentence move along the loss gradient (0: off; see
            ``ner.models.classifier.Classifier.training_loss``).
    """

    task = "classify"
    monitor = "acc"
    monitor_mode = "max"
    cli_links: ClassVar[tuple[tuple[Any, ...], ...]] = (
        ("data.labels", "model.labels", "instantiate"),
        ("data.vocab_size", "model.vocab_size", "instantiate"),
        ("data.num_chars", "model.num_chars", "instantiate"),
        ("model.arch.inputs.word_input", "data.use_glove", "parse", _use_glove),
        ("model.arch.inputs.char_encoder", "data.use_chars", "parse", _use_chars),
    )

    def __init__(
        self,
        labels: list[str] | None = None,
        vocab_size: int = 2,
        num_chars: int = 0,
        arch: ClassifierConfig = ClassifierConfig(),  # noqa: B008 (frozen)
        optim: OptimConfig = CLASSIFY_OPTIM,
        word_dropout: float = 0.1,
        label_smoothing: float = 0.0,
        adversarial: float = 0.0,
    ) -> None:
        super().__init__(optim)
        if adversarial < 0:
            raise ValueError(f"adversarial must be >= 0, got {adversarial}")
        self.save_hyperparameters(ignore=["labels", "vocab_size", "num_chars", "arch", "optim"])
        self.hparams.update(arch=dataclasses.asdict(arch), optim=dataclasses.asdict(optim))
        self.labels = list(labels or ["negative", "positive"])
        config = with_sizes(
            arch,
            num_classes=len(self.labels),
            **{"inputs.vocab_size": vocab_size, "inputs.num_chars": num_chars},
        )
        self.model = Classifier.build(config)
        self.word_dropout = word_dropout
        self.label_smoothing = label_smoothing
        self.adversarial = adversarial
        self.calibration: dict[str, float] = {"temperature": 1.0}
        self._logits: list[np.ndarray] = []
        self._gold: list[np.ndarray] = []

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """A batch from ``LabelCollate`` -> logits (B, K)."""
        return self.model(
            batch["word_ids"],
            batch["glove_ids"],
            batch["char_ids"],
            batch["casing_ids"],
            batch["lengths"],
        )

    def training_loss(self, batch: dict[str, Tensor]) -> Tensor:
        if self.word_dropout > 0:
            word_ids = batch["word_ids"]
            drop = (torch.rand(word_ids.shape, device=word_ids.device) < self.word_dropout) & (
                word_ids > 0
            )
            batch = {
                **batch,
                "word_ids": word_ids.masked_fill(drop, 1),  # UNK
                "glove_ids": batch["glove_ids"].masked_fill(drop, 0),  # no GloVe vector
            }
        return self.model.training_loss(  # each ensemble head learns on its own loss
            batch["word_ids"],
            batch["glove_ids"],
            batch["char_ids"],
            batch["casing_ids"],
            batch["lengths"],
            batch["labels"],
            label_smoothing=self.label_smoothing,
            adversarial=self.adversarial,
        )

    def reset_metrics(self) -> None:
        self._logits, self._gold = [], []

    def evaluate_batch(self, batch: dict[str, Tensor]) -> Tensor:
        logits = self(batch)
        self._logits.append(logits.detach().float().cpu().numpy())
        self._gold.append(batch["labels"].cpu().numpy())
        return self.model.loss(logits, batch["labels"])

    def epoch_metrics(self) -> dict[str, float]:
        dev = score_logits(np.concatenate(self._logits), np.concatenate(self._gold), self.labels)
        self.calibration = {
            "temperature": dev.temperature,
            "dev_ece_before": dev.ece,
            "dev_ece_after": dev.ece_calibrated,
        }
        return {
            "acc": dev.report["accuracy"],
            "macro_f1": dev.report["macro_f1"],
            "ece": dev.ece,
            "ece_calibrated": dev.ece_calibrated,
            "temperature": dev.temperature,
        }

    def checkpoint_state(self) -> dict[str, Any]:
        return {"labels": self.labels, "calibration": dict(self.calibration)}

    @classmethod
    def rebuild(cls, entry: dict[str, Any]) -> Classifier:
        return Classifier.build(ClassifierConfig.from_dict(entry["config"]))

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
        from ner.classify import export_classifier

        calibration = dict(entry.get("calibration") or {"temperature": 1.0})
        card = {
            **card,
            "calibration": {
                "method": "temperature scaling (Guo et al. 2017): one T minimising dev NLL",
                **calibration,
            },
        }
        if data.get("label_names"):
            card["training_data"] = {**card["training_data"], "label_map": data["label_names"]}
        return export_classifier(
            model,
            out_dir,
            featurizer=featurizer_from_state(data),
            labels=entry["labels"],
            temperature=float(calibration["temperature"]),
            name=name,
            version=version,
            card=card,
        )

    @classmethod
    def export_ensemble(
        cls,
        models: Sequence[torch.nn.Module],
        out_dir: str | os.PathLike[str],
        *,
        entries: Sequence[dict[str, Any]],
        datas: Sequence[dict[str, Any]],
        name: str,
        version: str,
        cards: Sequence[dict[str, Any]],
        calibrate: Path,
    ) -> Path:
        """Several checkpoints of one vocabulary -> one ensemble bundle (mean log-probability),
        its temperature fitted on the labelled file ``calibrate`` (the dev file).

        Raises:
            ValueError: the members differ in vocabulary, labels or config, or the file is bad
                (the message names the file and line).
        """
        from ner.classify import ensemble_logits, export_classifier

        featurizers = [featurizer_from_state(d) for d in datas]
        first = featurizers[0]
        for f in featurizers[1:]:
            if (
                f.settings() != first.settings()
                or f.words.itos != first.words.itos
                or (
                    (f.chars.itos if f.chars else None)
                    != (first.chars.itos if first.chars else None)
                )
            ):
                raise ValueError("the checkpoints were trained on different vocabularies")
        labels = list(entries[0]["labels"])
        if any(list(e["labels"]) != labels for e in entries):
            raise ValueError("the checkpoints have different labels")
        names = dict(datas[0].get("label_names") or {})
        data = read_labelled(calibrate)
        gold = np.empty(len(data), dtype=np.int64)
        for i, s in enumerate(data):
            label = names.get(s.label, s.label)
            if label not in labels:
                raise ValueError(
                    f"{calibrate}:{i + 1}: unknown label {s.label!r} (labels {labels})"
                )
            gold[i] = labels.index(label)
        member_logits = [_logits(model, first, [list(s.tokens) for s in data]) for model in models]
        dev = score_logits(ensemble_logits(member_logits), gold, labels)
        temperature = dev.temperature
        card = {
            "training_data": cards[0]["training_data"],
            "metrics": {
                "dev": {
                    "acc": dev.report["accuracy"],
                    "macro_f1": dev.report["macro_f1"],
                    "ece": dev.ece,
                    "ece_calibrated": dev.ece_calibrated,
                    "temperature": temperature,
                    "file": calibrate.name,
                },
                "dev_members": [float((m.argmax(-1) == gold).mean()) for m in member_logits],
            },
            "calibration": {
                "method": "temperature scaling (Guo et al. 2017): one T minimising the NLL of "
                "the ensemble's mean log-probabilities on the calibration file",
                "temperature": temperature,
                "file": calibrate.name,
                "ece_before": dev.ece,
                "ece_after": dev.ece_calibrated,
            },
            "ensemble": [
                {"checkpoint": c["training"].get("checkpoint"), "training": c["training"]}
                for c in cards
            ],
        }
        if names:
            card["training_data"] = {**card["training_data"], "label_map": names}
        return export_classifier(
            list(models),
            out_dir,
            featurizer=first,
            labels=labels,
            temperature=temperature,
            name=name,
            version=version,
            card=card,
        )


def _logits(
    model: torch.nn.Module, featurizer: Featurizer, sentences: list[list[str]]
) -> np.ndarray:
    """A classifier's logits (N, K) for tokenised sentences, in batches of 256 (eval mode)."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(sentences), 256):
            f = featurizer.encode(sentences[i : i + 256])
            ids = (f.word_ids, f.glove_ids, f.char_ids, f.casing_ids, f.lengths)
            out.append(model(*(torch.from_numpy(a) for a in ids)).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)
