"""`ner export --ckpt DIR|best`: the checkpoint with the highest val F1 of a run is exported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from training.export import (
    CheckpointError,
    best_checkpoint,
    checkpoint_score,
    main,
    resolve_checkpoint,
)


def _run_dir(tmp: Path) -> Path:
    return tmp / "runs" / "tiny"


def _best_file(run_dir: Path) -> Path:
    (best,) = (run_dir / "checkpoints").glob("epoch*.ckpt")
    return best


def test_best_of_the_tiny_run_from_the_callback_state(tiny_run) -> None:
    _, tmp = tiny_run
    run_dir = _run_dir(tmp)
    best = _best_file(run_dir)
    state = torch.load(best, weights_only=True)["callbacks"]
    (mc,) = [v for k, v in state.items() if k.startswith("ModelCheckpoint")]
    expected = float(mc["best_model_score"])
    assert checkpoint_score(best) == (pytest.approx(expected), "callback state")
    assert checkpoint_score(run_dir / "checkpoints" / "last.ckpt") is None  # not recorded
    for folder in (run_dir, run_dir / "checkpoints"):
        path, score, source = best_checkpoint(folder)
        assert path == best and score == pytest.approx(expected) and source == "callback state"
    assert resolve_checkpoint("best", run_dir)[0] == best
    assert resolve_checkpoint(None, run_dir)[0] == best
    assert resolve_checkpoint(str(run_dir / "checkpoints"))[0] == best
    assert resolve_checkpoint(best) == (best, None, None)  # an explicit file, as given


def test_state_wins_over_the_filename_and_the_filename_is_the_fallback(
    tiny_run, tmp_path: Path
) -> None:
    _, tmp = tiny_run
    src = _best_file(_run_dir(tmp))
    ckpt = torch.load(src, weights_only=True)
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    # The name claims 0.9, the ModelCheckpoint state that saved the file says 0.1.
    lying = folder / "epoch005-val_f10.9000.ckpt"
    for key, value in ckpt["callbacks"].items():
        if key.startswith("ModelCheckpoint"):
            value["best_k_models"] = {str(lying): torch.tensor(0.1)}
    torch.save(ckpt, lying)
    # No callback state at all: the filename's 0.5 counts.
    named = folder / "epoch003-val_f10.5000.ckpt"
    torch.save({**ckpt, "callbacks": {}}, named)
    shutil.copyfile(src, folder / "last.ckpt")  # never scored
    assert checkpoint_score(lying) == (pytest.approx(0.1), "callback state")
    assert checkpoint_score(named) == (pytest.approx(0.5), "filename")
    assert best_checkpoint(tmp_path) == (named, pytest.approx(0.5), "filename")


def test_export_a_run_folder_prints_the_chosen_checkpoint(
    tiny_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, tmp = tiny_run
    run_dir = _run_dir(tmp)
    best = _best_file(run_dir)
    out = tmp_path / "bundle"
    assert main(["--ckpt", str(run_dir / "checkpoints"), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"best checkpoint {best}" in captured.err and "val_f1 0." in captured.err
    assert captured.out.strip() == str(out)
    card = json.loads((out / "model_card.json").read_text())
    assert card["training"]["checkpoint"] == best.name
    assert card["metrics"]["dev"]["epoch"] == card["training"]["checkpoint_epoch"]


def test_folder_errors_are_one_line(
    tiny_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, tmp = tiny_run
    out = str(tmp_path / "b")
    cases = [
        (["--ckpt", "best"], "--ckpt best needs --run"),
        (["--run", str(tmp_path / "nope")], "no such run or checkpoints folder"),
        (["--ckpt", str(tmp_path)], "no .ckpt file"),
        (["--ckpt", str(tmp / "x.ckpt"), "--run", str(tmp)], "goes with --ckpt best"),
    ]
    only_last = tmp_path / "only_last" / "checkpoints"
    only_last.mkdir(parents=True)
    shutil.copyfile(_run_dir(tmp) / "checkpoints" / "last.ckpt", only_last / "last.ckpt")
    cases.append((["--ckpt", str(only_last.parent)], "no checkpoint records its val_f1"))
    for args, message in cases:
        assert main([*args, "--out", out]) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (args, err)
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()
    with pytest.raises(CheckpointError, match="needs --run"):
        resolve_checkpoint(None)
