"""Per-epoch training curves as PNG files: loss, entity F1, and F1 per entity type.

The source is a CSV with an ``epoch`` column and metric columns (``train_loss``, ``val_loss``,
``val_f1``, ``val_f1_<TYPE>``): either Lightning's ``metrics.csv`` (one row per logging call, many
cells empty) or the ``history.csv`` that :class:`TrainingPlots` writes from the module's history,
which survives resuming from a checkpoint. Matplotlib runs on the Agg backend (no display).
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_only

HISTORY_CSV = "history.csv"
PLOT_FILES = ("loss.png", "f1.png", "f1_per_type.png")


def _atomic_path(path: Path) -> tuple[Path, Path]:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    return Path(tmp), path


def write_history_csv(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write per-epoch rows (dicts) as CSV, atomically; columns = union of keys, epoch first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = sorted({k for row in rows for k in row} - {"epoch"})
    tmp, final = _atomic_path(path)
    try:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["epoch", *keys])
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def read_epoch_metrics(path: str | os.PathLike[str]) -> dict[str, list[tuple[int, float]]]:
    """Metric name -> [(epoch, value)] sorted by epoch, the last value of each epoch kept."""
    series: dict[str, dict[int, float]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            epoch_cell = row.get("epoch") or ""
            if not epoch_cell:
                continue
            epoch = int(float(epoch_cell))
            for key, cell in row.items():
                if key in ("epoch", "step") or not cell:
                    continue
                try:
                    value = float(cell)
                except ValueError:
                    continue
                if math.isfinite(value):
                    series.setdefault(key, {})[epoch] = value
    return {k: sorted(v.items()) for k, v in series.items()}


def _loss_key(series: Mapping[str, Any], name: str) -> str | None:
    """``train_loss`` in history.csv is ``train_loss_epoch`` in Lightning's metrics.csv."""
    for key in (f"{name}_epoch", name):
        if key in series:
            return key
    return None


def _save(fig: Any, path: Path) -> Path:
    tmp, final = _atomic_path(path)
    try:
        fig.savefig(tmp, dpi=100, format="png")
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def _plot(
    out: Path, title: str, ylabel: str, lines: Iterable[tuple[str, list[tuple[int, float]]]]
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, points in lines:
        if points:
            # Epochs are 0-based in Lightning; plot them 1-based like a reader counts them.
            ax.plot([e + 1 for e, _ in points], [v for _, v in points], marker="o", label=label)
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    try:
        return _save(fig, out)
    finally:
        plt.close(fig)


def plot_metrics(
    csv_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], metric: str = "val_f1"
) -> list[Path]:
    """Write ``loss.png``, ``<metric>.png`` and, when the CSV has per-type columns
    (``<metric>_<TYPE>``), ``<metric>_per_type.png`` to ``out_dir``.

    With the default ``val_f1`` these are ``loss.png``, ``f1.png`` and ``f1_per_type.png``.
    Metrics in [0, 1] (F1, accuracy) are plotted as percentages.
    """
    series = read_epoch_metrics(csv_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    losses = [
        (name, series.get(_loss_key(series, name) or "", [])) for name in ("train_loss", "val_loss")
    ]
    short = metric.removeprefix("val_")
    ratio = all(0.0 <= v <= 1.0 for _, v in series.get(metric, []))
    scale = 100.0 if ratio and short in ("f1", "acc", "accuracy", "exact") else 1.0
    unit = f"{short} (%)" if scale == 100.0 else short
    scaled = {k: [(e, scale * v) for e, v in pts] for k, pts in series.items()}
    per_type = sorted(k for k in series if k.startswith(f"{metric}_"))
    paths = [
        _plot(out / "loss.png", "Loss per epoch", "loss", losses),
        _plot(
            out / f"{short}.png", f"Dev {short} per epoch", unit, [(metric, scaled.get(metric, []))]
        ),
    ]
    if per_type:
        paths.append(
            _plot(
                out / f"{short}_per_type.png",
                f"Dev {short} per type",
                unit,
                [(k.removeprefix(f"{metric}_"), scaled[k]) for k in per_type],
            )
        )
    return paths


class TrainingPlots(pl.Callback):
    """Writes ``history.csv`` and the PNG plots into the log folder (rank 0 only).

    Args:
        every_epoch: Refresh the plots after every validation epoch, not only at the end of fit
            (so that a killed run still has them).
        metric: The dev metric to plot besides the losses (the task's monitored metric; set by
            ``ner train``).
    """

    def __init__(self, every_epoch: bool = True, metric: str = "val_f1") -> None:
        self.every_epoch = every_epoch
        self.metric = metric

    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        history = getattr(pl_module, "history", None)
        log_dir = trainer.log_dir
        if history and log_dir:
            self._write_rank_zero(history, log_dir, self.metric)

    @staticmethod
    @rank_zero_only
    def _write_rank_zero(history: list[dict[str, Any]], log_dir: str, metric: str) -> None:
        csv_path = write_history_csv(history, Path(log_dir) / HISTORY_CSV)
        plot_metrics(csv_path, log_dir, metric)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.every_epoch and not trainer.sanity_checking and trainer.state.fn == "fit":
            self._write(trainer, pl_module)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write(trainer, pl_module)
