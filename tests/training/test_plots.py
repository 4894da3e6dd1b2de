"""training.plots: per-epoch curves from Lightning's sparse metrics.csv and from history.csv."""

from __future__ import annotations

from pathlib import Path

from training.plots import PLOT_FILES, plot_metrics, read_epoch_metrics, write_history_csv


def test_reads_lightning_metrics_csv(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text(
        "epoch,lr-SGD,step,train_loss_epoch,train_loss_step,val_f1,val_f1_PER\n"
        ",0.015,0,,,,\n"
        "0,,9,,3.5,,\n"
        "0,,10,,,0.5,0.6\n"
        "0,,10,4.0,,,\n"
        "1,,20,,,0.7,0.8\n"
        "1,,20,2.0,,,\n",
        encoding="utf-8",
    )
    series = read_epoch_metrics(path)
    assert series["val_f1"] == [(0, 0.5), (1, 0.7)]
    assert series["train_loss_epoch"] == [(0, 4.0), (1, 2.0)]
    paths = plot_metrics(path, tmp_path / "plots")
    assert [p.name for p in paths] == list(PLOT_FILES)
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)


def test_history_csv_roundtrip(tmp_path: Path) -> None:
    rows = [
        {"epoch": 0, "train_loss": 3.0, "val_loss": 2.0, "val_f1": 0.4, "val_f1_LOC": 0.5},
        {"epoch": 1, "train_loss": 2.0, "val_loss": 1.5, "val_f1": 0.6, "val_f1_LOC": 0.7},
    ]
    path = write_history_csv(rows, tmp_path / "history.csv")
    series = read_epoch_metrics(path)
    assert series["val_f1_LOC"] == [(0, 0.5), (1, 0.7)]
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind
    assert len(plot_metrics(path, tmp_path)) == 3


def test_plots_follow_the_task_metric(tmp_path: Path) -> None:
    """Another task's metric (accuracy) gives acc.png; no per-type plot without such columns."""
    rows = [
        {"epoch": 0, "train_loss": 0.7, "val_loss": 0.6, "val_acc": 0.55},
        {"epoch": 1, "train_loss": 0.5, "val_loss": 0.5, "val_acc": 0.71},
    ]
    path = write_history_csv(rows, tmp_path / "history.csv")
    paths = plot_metrics(path, tmp_path / "plots", metric="val_acc")
    assert [p.name for p in paths] == ["loss.png", "acc.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)
