"""The LightningModule: a thin wrapper around ``ner.models.tagger.Tagger`` (held as ``self.model``).

It owns what Lightning needs and the library does not: the optimizer and its schedule, the
training loss logging, and entity F1 on the dev set every epoch with ``ner.metrics`` (the metric of
``ner eval``), decoded exactly as the exported bundle decodes (``ner.decode.viterbi`` over the
scheme-constrained transitions). The per-epoch history and the training time travel in the
checkpoint, so that plots and the model card survive a resume.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor

from ner.models.tagger import Tagger, TaggerConfig

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "rnn_ner"
"""Key of the module's extra checkpoint state (tagger config, history, training time, hardware)."""

Optimizer = Literal["sgd", "adam", "adamw"]


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    """Where training runs: CPU model and threads, GPU name and count."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    return info


class NerTagger(pl.LightningModule):
    """Trains a BiRNN(-CRF) tagger for named entities.

    Args:
        labels: Tag names in tag-id order (linked from the data; sets the number of tags).
        vocab_size: Word vocabulary size (linked from the data).
        num_chars: Character vocabulary size, 0 without character features (linked from the data).
        tag_scheme: Tag scheme of ``labels`` (linked from data.tag_scheme).
        word_input: Word representation: onehot (the seed notes' one-hot x<t> times W_ax),
            learned (an embedding table), or glove (frozen GloVe 6B 50d plus a trainable delta).
        word_dim: Size of the word vector (50 for GloVe 6B 50d).
        glove_finetune: With GloVe: learn a per-word delta over the training vocabulary.
        char_encoder: Character features: none, cnn (Ma & Hovy 2016) or lstm (Lample et al. 2016).
        char_dim: Size of the character embeddings.
        char_hidden: CNN filters, or char-LSTM hidden size per direction.
        casing_dim: Size of the casing-feature embedding; 0 = no casing features.
        cell: Recurrent cell: lstm, gru, rnn_tanh or rnn_relu.
        hidden_size: Hidden units per direction of the recurrent encoder.
        num_layers: Stacked recurrent layers.
        bidirectional: Run a backward RNN as well (a BiRNN).
        embed_dropout: Dropout on the concatenated input features.
        dropout: Dropout between recurrent layers and before the output layer.
        head: Output layer: crf (linear-chain CRF) or softmax (per-token).
        optimizer: sgd (with momentum, Ma & Hovy), adam or adamw.
        lr: Initial learning rate.
        momentum: SGD momentum.
        weight_decay: L2 penalty (decoupled for adamw).
        lr_decay: Learning-rate decay per epoch: lr_t = lr / (1 + lr_decay * t) (Ma & Hovy 2016);
            0 keeps the rate constant.
        init_from: Bundle directory to warm-start from (its architecture, weights and
            vocabularies); for fine-tuning. The architecture arguments above are then ignored.
    """

    def __init__(
        self,
        labels: list[str] | None = None,
        vocab_size: int = 2,
        num_chars: int = 0,
        tag_scheme: Literal["iob2", "bioes"] = "bioes",
        word_input: Literal["onehot", "learned", "glove"] = "glove",
        word_dim: int = 50,
        glove_finetune: bool = True,
        char_encoder: Literal["none", "cnn", "lstm"] = "cnn",
        char_dim: int = 30,
        char_hidden: int = 50,
        casing_dim: int = 8,
        cell: Literal["lstm", "gru", "rnn_tanh", "rnn_relu"] = "lstm",
        hidden_size: int = 200,
        num_layers: int = 1,
        bidirectional: bool = True,
        embed_dropout: float = 0.5,
        dropout: float = 0.5,
        head: Literal["crf", "softmax"] = "crf",
        optimizer: Optimizer = "sgd",
        lr: float = 0.015,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        lr_decay: float = 0.05,
        init_from: str | None = None,
    ) -> None:
        super().__init__()
        # Data-derived values travel in the datamodule's checkpoint state, not in hparams.
        self.save_hyperparameters(ignore=["labels", "vocab_size", "num_chars", "tag_scheme"])
        self.labels = list(labels or ["O"])
        self.tag_scheme = tag_scheme
        self.optimizer_name = optimizer
        self.lr, self.momentum, self.weight_decay, self.lr_decay = (
            lr,
            momentum,
            weight_decay,
            lr_decay,
        )
        if init_from:
            config, state = _bundle_weights(init_from, self.labels)
        else:
            config = TaggerConfig(
                num_tags=len(self.labels),
                vocab_size=vocab_size,
                num_chars=num_chars,
                word_input=word_input,
                word_dim=word_dim,
                glove_finetune=glove_finetune,
                char_encoder=char_encoder,
                char_dim=char_dim,
                char_hidden=char_hidden,
                casing_dim=casing_dim,
                cell=cell,
                hidden_size=hidden_size,
                num_layers=num_layers,
                bidirectional=bidirectional,
                embed_dropout=embed_dropout,
                dropout=dropout,
                head=head,
            )
            state = None
        self.model = build_tagger(config)
        if state is not None:
            self.model.load_state_dict(state)
            log.info("warm-started from %s", init_from)
        self.history: list[dict[str, Any]] = []
        self.train_seconds = 0.0
        self._epoch_start = 0.0
        self._epoch_running = False
        self._epoch_lr: float | None = None
        self._loss_sum = 0.0
        self._loss_count = 0
        self._gold: list[list[str]] = []
        self._pred: list[list[str]] = []
        self._val_loss: list[tuple[float, int]] = []

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

    def predict_tags(self, batch: dict[str, Tensor]) -> list[list[str]]:
        """Tag names (in ``tag_scheme``) for a batch, in batch order."""
        return self.decode(self(batch), batch["lengths"])

    # ---------------------------------------------------------------- training

    def on_train_epoch_start(self) -> None:
        self._epoch_running = True
        self._epoch_start = time.perf_counter()
        self._loss_sum, self._loss_count = 0.0, 0
        # The learning rate of this epoch (Lightning steps epoch schedulers before validation).
        optimizers = self.trainer.optimizers
        self._epoch_lr = optimizers[0].param_groups[0]["lr"] if optimizers else None

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        emissions = self(batch)
        loss = self.model.loss(emissions, batch["tags"], batch["lengths"])
        b = int(batch["lengths"].shape[0])
        self.log(
            "train_loss",
            loss,
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            batch_size=b,
            sync_dist=True,
        )
        self._loss_sum += float(loss.detach()) * b
        self._loss_count += b
        return loss

    def on_train_epoch_end(self) -> None:
        self.train_seconds += time.perf_counter() - self._epoch_start
        self._epoch_running = False

    def _seconds(self) -> float:
        """Training wall time so far, the running epoch included."""
        running = time.perf_counter() - self._epoch_start if self._epoch_running else 0.0
        return self.train_seconds + running

    # ---------------------------------------------------------------- validation (entity F1)

    def on_validation_epoch_start(self) -> None:
        self._gold, self._pred, self._val_loss = [], [], []

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def _eval_step(self, batch: dict[str, Tensor]) -> None:
        emissions = self(batch)
        lengths = batch["lengths"]
        loss = self.model.loss(emissions, batch["tags"], lengths)
        self._val_loss.append((float(loss), int(lengths.shape[0])))
        self._pred.extend(self.decode(emissions, lengths))
        tags = batch["tags"].cpu().numpy()
        for row, n in enumerate(lengths.tolist()):
            self._gold.append([self.labels[i] for i in tags[row, :n]])

    def _report(self, prefix: str) -> dict[str, float]:
        from ner.metrics import entity_scores

        report = entity_scores(self._gold, self._pred, scheme=self.tag_scheme)
        total = sum(n for _, n in self._val_loss) or 1
        metrics = {
            f"{prefix}_loss": sum(loss * n for loss, n in self._val_loss) / total,
            f"{prefix}_precision": report.micro.precision,
            f"{prefix}_recall": report.micro.recall,
        }
        for type_, prf in sorted(report.per_type.items()):
            metrics[f"{prefix}_f1_{type_}"] = prf.f1
        # Every rank scores the whole dev set, so the values agree and sync_dist is a no-op mean.
        self.log_dict(metrics, sync_dist=True)
        self.log(f"{prefix}_f1", report.micro.f1, prog_bar=True, sync_dist=True)
        return {f"{prefix}_f1": report.micro.f1, **metrics}

    def on_validation_epoch_end(self) -> None:
        if not self._gold:
            return
        metrics = self._report("val")
        if self.trainer.sanity_checking or self.trainer.state.fn != "fit":
            return
        row: dict[str, Any] = {"epoch": self.current_epoch, "step": self.global_step}
        if self._loss_count:
            row["train_loss"] = self._loss_sum / self._loss_count
        row["lr"] = self._epoch_lr
        row.update(metrics)
        row["train_seconds"] = self._seconds()
        self.history.append(row)

    def on_test_epoch_start(self) -> None:
        self.on_validation_epoch_start()

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def on_test_epoch_end(self) -> None:
        if self._gold:
            self._report("test")

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> list[tuple[int, list[str]]]:
        """(position in the split, tag names in ``tag_scheme``) per sentence of the batch."""
        emissions = self(batch)
        tags = self.decode(emissions, batch["lengths"])
        return list(zip(batch["index"].tolist(), tags, strict=True))

    # ---------------------------------------------------------------- optimizers

    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        if self.optimizer_name == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(
                params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
            )
        elif self.optimizer_name == "adam":
            opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        elif self.optimizer_name == "adamw":
            opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        else:
            raise ValueError(f"unknown optimizer {self.optimizer_name!r}")
        decay = self.lr_decay
        # Ma & Hovy (2016): lr_t = lr_0 / (1 + rho * t), t = epochs done.
        schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0 / (1.0 + decay * epoch))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}

    # ---------------------------------------------------------------- checkpoint state

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "tagger_config": self.model.config.to_dict(),
            "labels": self.labels,
            "tag_scheme": self.tag_scheme,
            "history": self.history,
            "train_seconds": self._seconds(),
            "hardware": {
                **hardware(),
                "accelerator": type(self.trainer.accelerator).__name__,
                "world_size": self.trainer.world_size,
                "precision": str(self.trainer.precision),
            },
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(CHECKPOINT_KEY, {})
        self.history = list(state.get("history", []))
        self.train_seconds = float(state.get("train_seconds", 0.0))
        saved = state.get("tagger_config")
        if saved is not None and saved != self.model.config.to_dict():
            raise ValueError(
                "the checkpoint's tagger differs from the configured one: "
                f"checkpoint {saved}, config {self.model.config.to_dict()}"
            )


def build_tagger(config: TaggerConfig) -> Tagger:
    """A ``Tagger`` for ``config``, with the installed GloVe table when it uses GloVe."""
    glove = None
    if config.word_input == "glove":
        from ner.data.glove import load_glove

        glove = load_glove().vectors
    return Tagger(config, glove)


def _bundle_weights(path: str, labels: list[str]) -> tuple[TaggerConfig, dict[str, Tensor]]:
    """TaggerConfig and full state_dict (word table included) of a bundle, for warm starts."""
    from ner.bundle import WEIGHTS, load_bundle

    bundle = load_bundle(path, backend="onnx")  # validates files and checksums; no torch model
    if list(bundle.labels) != labels:
        raise ValueError(
            f"{path}: bundle labels {list(bundle.labels)} differ from the data's {labels}"
        )
    config = TaggerConfig.from_dict(bundle.tagger_config)
    state = torch.load(Path(path) / WEIGHTS, map_location="cpu", weights_only=True)
    table = torch.from_numpy(np.asarray(bundle.tables.table, dtype=np.float32))  # (V, D)
    model = build_tagger(config)
    full = model.state_dict()
    full.update(state)
    if config.word_input == "onehot":
        full["words.onehot.W_ax"] = table.t().contiguous()
    elif "words.delta.weight" in full:
        full["words.delta.weight"] = table
    return config, full
