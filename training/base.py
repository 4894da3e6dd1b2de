"""What every task's LightningModule shares: ``TaskModule``.

A task module holds a plain ``nn.Module`` from ``ner.models`` as ``self.model`` (built from the
task's frozen config dataclass, written once in ``ner.models.config``) and implements four things:

- ``training_loss(batch)``: the loss of a training batch;
- ``evaluate_batch(batch)``: collect what the epoch's metrics need (and return the batch loss);
- ``epoch_metrics()``: the epoch's metrics, without the ``val_``/``test_`` prefix; the one named
  by the class's ``monitor`` picks the best checkpoint and stops early;
- ``export(out_dir, *, datamodule_state, name, version, card)``: write the bundle.

Everything else is here, once: the optimiser and its learning-rate schedule (SGD with Ma & Hovy's
decay, Adam, AdamW), loss logging, the per-epoch metric history (plots and the model card read it,
and it survives a resume because it travels in the checkpoint), training time, hardware, and the
checkpoint entry that ``ner export`` rebuilds the model from. Gradient clipping by norm is a
Trainer setting (``trainer.gradient_clip_val``), on by default in ``ner train``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import lightning.pytorch as pl
import torch
from torch import Tensor

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "rnn_ner"
"""Key of the module's checkpoint entry: task, model config, history, training time, hardware."""

Optimizer = Literal["sgd", "adam", "adamw"]


@dataclass(frozen=True)
class OptimConfig:
    """The optimiser and its schedule.

    Attributes:
        optimizer: sgd (with momentum, Ma & Hovy), adam or adamw.
        lr: Initial learning rate.
        momentum: SGD momentum.
        weight_decay: L2 penalty (decoupled for adamw).
        lr_decay: Learning-rate decay per epoch, lr_t = lr / (1 + lr_decay * t) (Ma & Hovy
            2016); 0 keeps the rate constant.
    """

    optimizer: Optimizer = "adam"
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_decay: float = 0.0


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


def with_sizes(config: Any, **sizes: Any) -> Any:
    """``config`` with the data-derived sizes filled in; nested configs by ``"inputs.vocab_size"``
    style keys. The given config is not changed (frozen dataclasses)."""
    nested: dict[str, dict[str, Any]] = {}
    flat: dict[str, Any] = {}
    for key, value in sizes.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[key] = value
    for head, values in nested.items():
        flat[head] = with_sizes(getattr(config, head), **values)
    return dataclasses.replace(config, **flat)


class TaskModule(pl.LightningModule):
    """Base of every task's LightningModule (see the module docstring).

    Args:
        optim: The optimiser and its learning-rate schedule.
    """

    task: ClassVar[str] = ""
    monitor: ClassVar[str] = "loss"
    """Metric (without prefix) that picks the best checkpoint; ``val_<monitor>`` is logged."""
    monitor_mode: ClassVar[Literal["min", "max"]] = "min"

    model: torch.nn.Module

    def __init__(self, optim: OptimConfig | None = None) -> None:
        super().__init__()
        self.optim = optim or OptimConfig()
        self.history: list[dict[str, Any]] = []
        self.train_seconds = 0.0
        self._epoch_start = 0.0
        self._epoch_running = False
        self._epoch_lr: float | None = None
        self._loss_sum = 0.0
        self._loss_count = 0
        self._eval_loss: list[tuple[float, int]] = []

    # ---------------------------------------------------------------- what a task implements

    def training_loss(self, batch: dict[str, Tensor]) -> Tensor:
        """The loss to minimise on a training batch."""
        raise NotImplementedError

    def reset_metrics(self) -> None:
        """Forget what ``evaluate_batch`` collected (called at the start of each eval epoch)."""

    def evaluate_batch(self, batch: dict[str, Tensor]) -> Tensor:
        """Collect what ``epoch_metrics`` needs from a dev/test batch; return its mean loss."""
        raise NotImplementedError

    def epoch_metrics(self) -> dict[str, float]:
        """The eval epoch's metrics, without prefix (must include ``monitor``)."""
        raise NotImplementedError

    def checkpoint_state(self) -> dict[str, Any]:
        """Task-specific entries for the checkpoint (labels, tag scheme...)."""
        return {}

    @classmethod
    def rebuild(cls, entry: dict[str, Any]) -> torch.nn.Module:
        """The model (untrained) from the checkpoint entry's ``config``; ``ner export`` loads the
        weights into it."""
        raise NotImplementedError

    @classmethod
    def upgrade_state(cls, entry: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
        """The model's state_dict from a checkpoint, in the current layout (for checkpoints
        written by earlier versions); the default keeps it as it is."""
        return state

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
        """Write ``model`` as a bundle; ``entry`` is this module's checkpoint entry, ``data`` the
        datamodule's state (vocabularies), ``card`` the card fields ``ner export`` gathered."""
        raise NotImplementedError

    @staticmethod
    def batch_size(batch: dict[str, Tensor]) -> int:
        return int(batch["lengths"].shape[0])

    # ---------------------------------------------------------------- training

    def on_train_epoch_start(self) -> None:
        self._epoch_running = True
        self._epoch_start = time.perf_counter()
        self._loss_sum, self._loss_count = 0.0, 0
        # The learning rate of this epoch (Lightning steps epoch schedulers before validation).
        optimizers = self.trainer.optimizers
        self._epoch_lr = optimizers[0].param_groups[0]["lr"] if optimizers else None

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.training_loss(batch)
        b = self.batch_size(batch)
        self.log(
            "train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=b,
            sync_dist=True,
        )  # fmt: skip
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

    # ---------------------------------------------------------------- validation and test

    def on_validation_epoch_start(self) -> None:
        self._eval_loss = []
        self.reset_metrics()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def _eval_step(self, batch: dict[str, Tensor]) -> None:
        loss = self.evaluate_batch(batch)
        self._eval_loss.append((float(loss), self.batch_size(batch)))

    def _report(self, prefix: str) -> dict[str, float]:
        total = sum(n for _, n in self._eval_loss) or 1
        metrics = {"loss": sum(loss * n for loss, n in self._eval_loss) / total}
        metrics.update(self.epoch_metrics())
        out = {f"{prefix}_{k}": float(v) for k, v in metrics.items()}
        # Every rank scores the whole dev set, so the values agree and sync_dist is a no-op mean.
        main = f"{prefix}_{self.monitor}"
        self.log_dict({k: v for k, v in out.items() if k != main}, sync_dist=True)
        self.log(main, out[main], prog_bar=True, sync_dist=True)
        return out

    def on_validation_epoch_end(self) -> None:
        if not self._eval_loss:
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
        if self._eval_loss:
            self._report("test")

    # ---------------------------------------------------------------- optimizers

    def configure_optimizers(self) -> Any:
        o = self.optim
        params = [p for p in self.parameters() if p.requires_grad]
        if o.optimizer == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(
                params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay
            )
        elif o.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
        elif o.optimizer == "adamw":
            opt = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
        else:
            raise ValueError(f"unknown optimizer {o.optimizer!r}")
        decay = o.lr_decay
        # Ma & Hovy (2016): lr_t = lr_0 / (1 + rho * t), t = epochs done.
        schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0 / (1.0 + decay * epoch))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}

    # ---------------------------------------------------------------- checkpoint state

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "task": self.task,
            "config": self.model.config.to_dict(),  # type: ignore[operator]
            "history": self.history,
            "train_seconds": self._seconds(),
            "hardware": {
                **hardware(),
                "accelerator": type(self.trainer.accelerator).__name__,
                "world_size": self.trainer.world_size,
                "precision": str(self.trainer.precision),
            },
            **self.checkpoint_state(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(CHECKPOINT_KEY, {})
        self.history = list(state.get("history", []))
        self.train_seconds = float(state.get("train_seconds", 0.0))
        saved = state.get("config")
        mine = self.model.config.to_dict()  # type: ignore[operator]
        if saved is not None and saved != mine:
            raise ValueError(
                f"the checkpoint's model differs from the configured one: checkpoint {saved}, "
                f"config {mine}"
            )
