"""``ner train``: a LightningCLI over the task's ``TaskModule`` and its ``LightningDataModule``.

The task comes from the config's ``task:`` key (or ``--task``; default ``ner``) and picks the two
classes from ``training.tasks``; the checkpoint and early-stopping monitor is the task's metric
(``val_f1`` for tagging, ``val_acc`` for classification, ...).

    ner train fit -c configs/conll2003-fast.yaml
    ner train fit -c configs/sst2.yaml                                 # task: classify
    ner train fit -c configs/conll2003-fast.yaml --ckpt_path last      # resume after a kill
    ner train fit -c configs/conll2003.yaml --trainer.accelerator gpu --trainer.devices 4 \\
        --trainer.strategy ddp --trainer.precision bf16-mixed
    ner train validate -c configs/conll2003-fast.yaml \\
        --ckpt_path runs/conll2003-fast/checkpoints/last.ckpt
    ner train fit -c configs/conll2003.yaml --print_config

Sizes that come from the data (labels, vocabulary, characters) are linked from the datamodule into
the model at instantiation; the data's input features (GloVe ids, character ids) and the warm-start
bundle are linked from the model's arguments at parse time, so nothing is typed twice.

Run layout (``<save_dir>/<name>`` from the first logger, ``runs/ner`` by default)::

    runs/<name>/checkpoints/  best (by dev F1) and last.ckpt; fixed, so ``--ckpt_path last`` works
    runs/<name>/version_N/    CSV + TensorBoard logs, config.yaml, history.csv, *.png plots

The CLI never touches ``sys.argv``: arguments are passed explicitly, so DDP's re-launch of the
same command line (Lightning's subprocess launcher, torchrun, SLURM) sees the original command.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import Namespace
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import (
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    ProgressBar,
    RichProgressBar,
)
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from training.data import DataError
from training.plots import TrainingPlots
from training.tasks import training_task

RUN_VERSION_ENV = "NER_RUN_VERSION"
"""Set by the launching process so that DDP workers log into the same ``version_N`` folder."""

DEFAULT_SAVE_DIR = "runs"
DEFAULT_NAME = "ner"

TRAINER_DEFAULTS: dict[str, Any] = {
    "max_epochs": 50,
    # Gradient clipping by norm: the seed notes' cure for exploding gradients (Ma & Hovy use 5).
    "gradient_clip_val": 5.0,
    "gradient_clip_algorithm": "norm",
    # The datamodule shards its length-bucketed batches across DDP ranks itself.
    "use_distributed_sampler": False,
    "log_every_n_steps": 50,
    "logger": [
        {
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            "init_args": {"save_dir": DEFAULT_SAVE_DIR, "name": DEFAULT_NAME},
        },
        {
            "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
            "init_args": {"save_dir": DEFAULT_SAVE_DIR, "name": DEFAULT_NAME},
        },
    ],
}


def next_version(root: Path) -> str:
    """``version_N`` with N one more than the largest existing under ``root`` (0 if none)."""
    numbers = [
        int(m.group(1))
        for p in (root.iterdir() if root.is_dir() else [])
        if p.is_dir() and (m := re.fullmatch(r"version_(\d+)", p.name))
    ]
    return f"version_{max(numbers, default=-1) + 1}"


class TaskCLI(LightningCLI):
    """LightningCLI with the project's callbacks, links and run layout, for one task."""

    task = "ner"

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        spec = training_task(self.task)
        module = spec.module_class()
        parser.add_argument(
            "--task", default=self.task, help="The task (picks the model and data classes)."
        )
        monitor, mode = f"val_{module.monitor}", module.monitor_mode
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": monitor,
                "checkpoint.mode": mode,
                "checkpoint.save_top_k": 1,
                "checkpoint.save_last": True,
                "checkpoint.filename": f"epoch{{epoch:03d}}-{monitor}{{{monitor}:.4f}}",
                "checkpoint.auto_insert_metric_name": False,
                # A new run of the same name replaces last.ckpt instead of writing last-v1.ckpt.
                "checkpoint.enable_version_counter": False,
            }
        )
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        parser.set_defaults(
            {
                "early_stopping.monitor": monitor,
                "early_stopping.mode": mode,
                "early_stopping.patience": 10,
            }
        )
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.set_defaults({"lr_monitor.logging_interval": "epoch"})
        parser.add_lightning_class_args(TrainingPlots, "plots")
        parser.set_defaults({"plots.metric": monitor})
        for callback in getattr(module, "cli_callbacks", ()):
            parser.add_lightning_class_args(*callback)
        for link in getattr(module, "cli_links", ()):
            source, target, apply_on, *compute = link
            parser.link_arguments(
                source, target, compute_fn=compute[0] if compute else None, apply_on=apply_on
            )

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        _prepare_run_layout(config)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The Trainer, with a RichProgressBar unless the bar is disabled or another is given."""
        extra = [
            self._get(self.config_init, c) for c in self._parser(self.subcommand).callback_keys
        ]
        config = {**self._get(self.config_init, "trainer", default={}), **kwargs}
        given = config.get("callbacks") or []
        given = given if isinstance(given, list) else [given]
        if config.get("enable_progress_bar") is not False and not any(
            isinstance(c, ProgressBar) for c in given
        ):
            extra.append(RichProgressBar())
        return self._instantiate_trainer(config, extra)


def _prepare_run_layout(config: Namespace) -> None:
    """Give all loggers one ``version_N``; checkpoints go to ``<save_dir>/<name>/checkpoints``."""
    loggers = config.trainer.get("logger")
    if isinstance(loggers, Namespace):
        loggers = [loggers]
    if not isinstance(loggers, list) or not loggers:
        return
    args = [lg.get("init_args") or Namespace() for lg in loggers if isinstance(lg, Namespace)]
    if not args:
        return
    save_dir = Path(str(args[0].get("save_dir") or DEFAULT_SAVE_DIR))
    name = args[0].get("name") or ""
    root = save_dir / name
    if all(a.get("version") is None for a in args):
        version = os.environ.get(RUN_VERSION_ENV) or next_version(root)
        os.environ[RUN_VERSION_ENV] = version  # inherited by DDP worker processes
        for a in args:
            if "version" in a:
                a["version"] = version
    checkpoint = config.get("checkpoint")
    if checkpoint is not None and checkpoint.get("dirpath") is None:
        checkpoint["dirpath"] = str(root / "checkpoints")


def task_of(argv: Sequence[str]) -> str:
    """The task named by ``--task`` or by the ``task:`` key of the ``-c``/``--config`` files
    (the last one wins), ``ner`` by default."""
    task = "ner"
    args = list(argv)
    for i, arg in enumerate(args):
        value = None
        if arg in ("-c", "--config") and i + 1 < len(args):
            path = Path(args[i + 1])
            if path.is_file():
                try:
                    data = yaml.safe_load(path.read_text(encoding="utf-8"))
                except (yaml.YAMLError, UnicodeDecodeError):
                    data = None  # the CLI's own parser reports it with the file name
                if isinstance(data, dict) and isinstance(data.get("task"), str):
                    value = data["task"]
        elif arg.startswith("--config="):
            return task_of(["--config", arg.split("=", 1)[1], *args[i + 1 :]])
        elif arg == "--task" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--task="):
            value = arg.split("=", 1)[1]
        if value is not None:
            task = value
    return task


def run(argv: Sequence[str] | None = None, **kwargs: Any) -> TaskCLI:
    """Build and run the CLI; returns it (``cli.model``, ``cli.datamodule``, ``cli.trainer``)."""
    had_version = RUN_VERSION_ENV in os.environ
    args = list(sys.argv[1:] if argv is None else argv)
    task = task_of(args)
    try:
        spec = training_task(task)
    except KeyError as e:
        raise DataError(e.args[0]) from None
    cli_class = type(f"{task.title().replace('_', '')}CLI", (TaskCLI,), {"task": task})
    # `ner train ARGS` passes ARGS explicitly while sys.argv still holds the whole command line.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
    try:
        return cli_class(
            spec.module_class(),
            spec.datamodule_class(),
            args=args,
            seed_everything_default=42,
            auto_configure_optimizers=False,
            trainer_defaults=TRAINER_DEFAULTS,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={
                "prog": "ner train",
                "description": f"Train a recurrent model for the task {task!r}.",
            },
            **kwargs,
        )
    finally:
        if not had_version:
            os.environ.pop(RUN_VERSION_ENV, None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ner train``; returns the exit status. User errors print one line."""
    from ner.bundle import BundleError
    from ner.data.conll import ConllFormatError

    try:
        run(argv)
    except (FileNotFoundError, IsADirectoryError, ConllFormatError, BundleError, DataError) as e:
        print(f"ner train: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
