"""The ``language_model`` and ``conditional_lm`` tasks for ``ner train``: a ``TaskModule``
holding a ``ner.models.language_model.LanguageModel`` and a DataModule over three corpus forms.

- ``lines``: one sequence per line, character level (dinosaur names); without a val file a
  seeded fraction of the lines is held out;
- ``sst2``: ``sentence<TAB>label`` files of space-tokenised words; the labels condition the
  one-to-many model (``model.conditional: true``);
- ``stream``: one text as a character stream (tiny-shakespeare): the first ``1 - val_fraction``
  trains, the rest validates; the training windows of ``bptt`` characters are cut afresh every
  epoch at a random offset, and each window is read from x<1> = START and a zero state.

What is specific: the seed notes' loss (softmax cross-entropy summed over the time steps,
averaged over sequences) and the monitored dev nats per token (<EOS> included). Everything
else (optimiser, schedule, history, checkpoints) is ``training.base``.

    ner train fit -c configs/dinos.yaml
    ner export --ckpt runs/dinos/checkpoints --out models/dinos-char --version 1.0.0
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from ner.data import lm
from ner.data.vocab import Casing
from ner.features import Featurizer
from ner.models.config import LanguageModelConfig
from ner.models.language_model import LanguageModel, sequence_loss, token_log_probs
from training.base import OptimConfig, TaskModule, with_sizes
from training.data import (
    DATA_STATE_FORMAT,
    DataError,
    data_license,
    data_record,
    featurizer_from_state,
    file_sha256,
    resolve_data_path,
)

__all__ = ["LanguageModelDataModule", "LanguageModelModule"]

log = logging.getLogger(__name__)

Corpus = Literal["lines", "sst2", "stream"]
SST2_LABELS = {"0": "negative", "1": "positive"}
LM_OPTIM = OptimConfig(optimizer="adam", lr=0.003)


def _use_glove(word_input: str) -> bool:
    return word_input == "glove"


@dataclasses.dataclass
class _Split:
    path: Path
    sha256: str
    sequences: list[list[str]]
    labels: list[int]


class SequenceCollate:
    """Sequence indices -> ``x, y, glove_ids (B, T)``, ``lengths (B,)``, ``class_ids (B,)``."""

    def __init__(self, featurizer: Featurizer, split: _Split) -> None:
        self.featurizer = featurizer
        self.split = split

    def __call__(self, indices: list[int]) -> dict[str, Tensor]:
        seqs = [self.split.sequences[i] for i in indices]
        x, y, lengths = lm.pad_batch([lm.encode(self.featurizer.words, s) for s in seqs])
        glove = np.zeros_like(x)
        if self.featurizer.use_glove:
            g = self.featurizer.encode(seqs).glove_ids
            glove[:, 1 : 1 + g.shape[1]] = g[:, : x.shape[1] - 1]
        labels = self.split.labels
        classes = np.asarray([labels[i] if labels else 0 for i in indices], dtype=np.int64)
        arrays = {"x": x, "y": y, "lengths": lengths, "glove_ids": glove, "class_ids": classes}
        return {k: torch.from_numpy(v) for k, v in arrays.items()}


class WindowCollate:
    """Window starts -> ``x, y (B, bptt)`` of a token stream, every length ``bptt``."""

    def __init__(self, ids: np.ndarray, bptt: int) -> None:
        self.ids, self.bptt = ids, bptt

    def __call__(self, starts: list[int]) -> dict[str, Tensor]:
        y = np.stack([self.ids[s : s + self.bptt] for s in starts]).astype(np.int64)
        x = np.concatenate([np.zeros((len(starts), 1), np.int64), y[:, :-1]], axis=1)
        lengths = np.full(len(starts), self.bptt, dtype=np.int64)
        zeros = np.zeros_like(x)
        arrays = {"x": x, "y": y, "lengths": lengths, "glove_ids": zeros, "class_ids": lengths * 0}
        return {k: torch.from_numpy(v) for k, v in arrays.items()}


class LanguageModelDataModule(pl.LightningDataModule):
    """Text for a (conditional) language model.

    Args:
        corpus: lines (one sequence per line, characters), sst2 (sentence<TAB>label, words) or
            stream (one text, characters).
        train_path: Training file (relative: working directory, then $NER_DATA_DIR).
        val_path: Dev file (lines, sst2); lines without one hold out ``holdout`` of the lines.
        holdout: Fraction of the lines held out when there is no val file.
        val_fraction: stream: the last fraction of the text validates.
        labels: Read the sst2 labels as classes (linked from the model's ``conditional``).
        label_names: File label -> class name, in class-id order (default SST-2's).
        casing: Vocabulary casing: keep, lower (dinosaur names, SST-2) or lower_digits.
        min_freq: Minimum count of a training token to enter the vocabulary (else <unk>).
        max_vocab: Keep at most this many tokens (most frequent first); null = no limit.
        use_glove: Look up GloVe ids (linked from the model's word_input).
        max_length: The bundle's default most sampled tokens.
        batch_size: Training sequences (windows) per batch.
        eval_batch_size: Sequences per batch for validation.
        bptt: stream: characters per training and validation window.
        seed: Seed of the holdout split and the shuffling.
        license: The data's licence for the model card; default: the README beside the file.
    """

    def __init__(
        self,
        corpus: Corpus = "lines",
        train_path: str = "dinos/dinos.txt",
        val_path: str | None = None,
        holdout: float = 0.1,
        val_fraction: float = 0.1,
        labels: bool = False,
        label_names: dict[str, str] | None = None,
        casing: Casing = "lower",
        min_freq: int = 1,
        max_vocab: int | None = None,
        use_glove: bool = False,
        max_length: int = 40,
        batch_size: int = 32,
        eval_batch_size: int = 128,
        bptt: int = 128,
        seed: int = 0,
        license: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.corpus = corpus
        self.train_path, self.val_path = train_path, val_path
        self.holdout, self.val_fraction = holdout, val_fraction
        self.use_labels = labels and corpus == "sst2"
        self.label_names = dict(SST2_LABELS if label_names is None else label_names)
        self.casing, self.min_freq, self.max_vocab = casing, min_freq, max_vocab
        self.use_glove, self.max_length = use_glove, max_length
        self.batch_size, self.eval_batch_size, self.bptt = batch_size, eval_batch_size, bptt
        self.seed, self.license = seed, license
        self._splits: dict[str, _Split] | None = None
        self._featurizer: Featurizer | None = None

    @property
    def tokenizer(self) -> str:
        return "sst2" if self.corpus == "sst2" else "chars"

    # ---------------------------------------------------------------- reading

    def _file(self, path: str) -> Path:
        p = resolve_data_path(path)
        if not p.is_file():
            raise FileNotFoundError(f"data file not found: {p}")
        return p

    def _labelled(self, path: Path) -> tuple[list[list[str]], list[int]]:
        try:
            rows = lm.read_sst2(path)
        except ValueError as e:
            raise DataError(str(e)) from None
        names = list(dict.fromkeys(self.label_names.values()))
        labels = [names.index(self.label_names[str(r.label)]) for r in rows]
        return [r.tokens for r in rows], labels if self.use_labels else []

    def _read(self) -> dict[str, _Split]:
        if self._splits is not None:
            return self._splits
        train = self._file(self.train_path)
        digest = file_sha256(train)
        if self.corpus == "stream":
            text = train.read_text(encoding="utf-8")
            cut = round(len(text) * (1 - self.val_fraction))
            splits = {
                "train": _Split(train, digest, [list(text[:cut])], []),
                "val": _Split(train, digest, [list(text[cut:])], []),
            }
        elif self.corpus == "sst2":
            seqs, labels = self._labelled(train)
            val_path = self._file(self.val_path or "sst2/dev.tsv")
            vseqs, vlabels = self._labelled(val_path)
            splits = {
                "train": _Split(train, digest, seqs, labels),
                "val": _Split(val_path, file_sha256(val_path), vseqs, vlabels),
            }
        else:
            lines = [
                line.lower() if self.casing != "keep" else line for line in lm.read_lines(train)
            ]
            if self.val_path:
                val_path = self._file(self.val_path)
                held = lm.read_lines(val_path)
                splits = {
                    "train": _Split(train, digest, [list(s) for s in lines], []),
                    "val": _Split(val_path, file_sha256(val_path), [list(s) for s in held], []),
                }
            else:
                kept, held = lm.split_holdout(lines, self.holdout, self.seed)
                splits = {
                    "train": _Split(train, digest, [list(s) for s in kept], []),
                    "val": _Split(train, digest, [list(s) for s in held], []),
                }
        if not splits["train"].sequences or not splits["val"].sequences:
            raise DataError(f"{train}: no training or no validation sequences")
        self._splits = splits
        return splits

    @property
    def featurizer(self) -> Featurizer:
        if self._featurizer is None:
            splits = self._read()
            vocab = lm.lm_vocab(
                splits["train"].sequences,
                casing=self.casing,
                min_freq=self.min_freq,
                max_size=self.max_vocab,
            )
            self._featurizer = Featurizer(vocab, None, self.use_glove)
            log.info("vocabulary: %d tokens from %s", len(vocab), self.train_path)
        return self._featurizer

    @property
    def vocab_size(self) -> int:
        return len(self.featurizer.words)

    @property
    def class_names(self) -> list[str]:
        """Class names in id order (empty unless the labels condition the model)."""
        return list(dict.fromkeys(self.label_names.values())) if self.use_labels else []

    # ---------------------------------------------------------------- loaders

    def _stream_ids(self, name: str) -> np.ndarray:
        seq = self._read()[name].sequences[0]
        return np.asarray(self.featurizer.words.encode(seq), dtype=np.int64)

    def train_dataloader(self) -> DataLoader:
        if self.corpus == "stream":
            ids = self._stream_ids("train")
            epoch = self.trainer.current_epoch if self.trainer is not None else 0
            offset = int(np.random.default_rng(self.seed + epoch).integers(self.bptt))
            starts = list(range(offset, len(ids) - self.bptt, self.bptt))
            return DataLoader(
                starts, self.batch_size, shuffle=True, collate_fn=WindowCollate(ids, self.bptt)
            )
        split = self._read()["train"]
        return DataLoader(
            list(range(len(split.sequences))),
            self.batch_size,
            shuffle=True,
            collate_fn=SequenceCollate(self.featurizer, split),
        )

    def val_dataloader(self) -> DataLoader:
        if self.corpus == "stream":
            ids = self._stream_ids("val")
            starts = list(range(0, len(ids) - self.bptt + 1, self.bptt))
            return DataLoader(
                starts, self.eval_batch_size, collate_fn=WindowCollate(ids, self.bptt)
            )
        split = self._read()["val"]
        return DataLoader(
            list(range(len(split.sequences))),
            self.eval_batch_size,
            collate_fn=SequenceCollate(self.featurizer, split),
        )

    # ---------------------------------------------------------------- checkpoint state

    def state_dict(self) -> dict[str, Any]:
        """Vocabulary, tokenizer and data identity (JSON-like), saved in every checkpoint."""
        f = self.featurizer
        splits = self._read()
        return {
            "format": DATA_STATE_FORMAT,
            "words": f.words.to_dict(),
            "chars": None,
            "use_glove": f.use_glove,
            "max_word_len": f.max_word_len,
            "tokenizer": self.tokenizer,
            "max_length": self.max_length,
            "classes": self.class_names,
            "files": {n: data_record(s.path, s.sha256) for n, s in splits.items()},
            "license": self.license or data_license(resolve_data_path(self.train_path)),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if featurizer_from_state(state) != self.featurizer:
            raise DataError(
                "the checkpoint's vocabulary differs from the one built from "
                f"{self.train_path}: was the training file or a vocabulary setting changed?"
            )


class LanguageModelModule(TaskModule):
    """Trains a (conditional) RNN language model.

    Args:
        vocab_size: Vocabulary size, <pad>, <unk> and <eos> included (linked from the data).
        class_names: The classes of a conditional model (linked from the data).
        conditional: Condition on the class (task conditional_lm; needs sst2 labels).
        arch: The model: input stack, unidirectional RNN, dropout, class conditioning
            (``ner.models.config.LanguageModelConfig``; data-derived sizes are filled in).
        optim: The optimiser and its learning-rate schedule.
    """

    task = "language_model"
    monitor = "nats_per_token"
    monitor_mode = "min"
    cli_links: ClassVar[tuple[tuple[Any, ...], ...]] = (
        ("data.vocab_size", "model.vocab_size", "instantiate"),
        ("data.class_names", "model.class_names", "instantiate"),
        ("model.conditional", "data.labels", "parse"),
        ("model.arch.inputs.word_input", "data.use_glove", "parse", _use_glove),
    )

    def __init__(
        self,
        vocab_size: int = 3,
        class_names: list[str] | None = None,
        conditional: bool = False,
        arch: LanguageModelConfig = LanguageModelConfig(),  # noqa: B008 (frozen)
        optim: OptimConfig = LM_OPTIM,
    ) -> None:
        super().__init__(optim)
        self.save_hyperparameters(ignore=["vocab_size", "class_names", "arch", "optim"])
        self.hparams.update(arch=dataclasses.asdict(arch), optim=dataclasses.asdict(optim))
        self.class_names = list(class_names or []) if conditional else []
        if conditional and not self.class_names:
            raise ValueError("a conditional language model needs classes (corpus: sst2)")
        config = with_sizes(
            arch, num_classes=len(self.class_names), **{"inputs.vocab_size": vocab_size}
        )
        self.model = LanguageModel.build(config)
        self._nats = 0.0
        self._tokens = 0

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """A batch of a collate -> logits (B, T, V)."""
        classes = batch["class_ids"] if self.class_names else None
        return self.model(batch["x"], batch["lengths"], classes, batch["glove_ids"])

    def training_loss(self, batch: dict[str, Tensor]) -> Tensor:
        return sequence_loss(self(batch), batch["y"], batch["lengths"])

    def reset_metrics(self) -> None:
        self._nats, self._tokens = 0.0, 0

    def evaluate_batch(self, batch: dict[str, Tensor]) -> Tensor:
        logp = token_log_probs(self(batch), batch["y"], batch["lengths"])
        self._nats -= float(logp.sum())
        self._tokens += int(batch["lengths"].sum())
        return -logp.sum(1).mean()

    def epoch_metrics(self) -> dict[str, float]:
        nats = self._nats / max(self._tokens, 1)
        return {
            "nats_per_token": nats,
            "bits_per_token": nats / math.log(2),
            "perplexity": math.exp(min(nats, 50.0)),
        }

    def checkpoint_state(self) -> dict[str, Any]:
        return {"classes": self.class_names}

    @classmethod
    def rebuild(cls, entry: dict[str, Any]) -> LanguageModel:
        return LanguageModel.build(LanguageModelConfig.from_dict(entry["config"]))

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
        from ner.generate import export_language_model

        return export_language_model(
            model,
            out_dir,
            featurizer=featurizer_from_state(data),
            tokenizer=data["tokenizer"],
            max_length=int(data["max_length"]),
            classes=entry.get("classes") or [],
            name=name,
            version=version,
            card={**card, "level": "char" if data["tokenizer"] == "chars" else "word"},
        )
