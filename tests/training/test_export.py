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
    checkpoint_task,
    export_checkpoint,
    load_checkpoint,
    main,
    model_card,
    model_from_checkpoint,
    resolve_checkpoint,
)
from training.module import NerTagger


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
    assert f"best checkpoint {best}" in captured.err and "(score 0." in captured.err
    assert "from the callback state" in captured.err
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


def test_checkpoint_task_and_card(tiny_run) -> None:
    """The task, its module class and the data state come from the checkpoint; the card holds
    the data files by name, path relative to the data folder and sha256, and no identity (the
    bundle writer puts name and version in config.json)."""
    _, tmp = tiny_run
    ckpt = load_checkpoint(_run_dir(tmp) / "checkpoints" / "last.ckpt")
    task, module_class, data = checkpoint_task(ckpt)
    assert (task, module_class) == ("ner", NerTagger)
    assert data["labels"] == ckpt["rnn_ner"]["labels"]
    card = model_card(ckpt, name="x", version="1.0.0", source="last.ckpt")
    assert "name" not in card and "version" not in card
    train = card["training_data"]["files"]["train"]
    assert train["name"] == "tiny_train.conll" and not Path(train["path"]).is_absolute()
    assert train["sha256"] == card["training_data"]["sha256"] and len(train["sha256"]) == 64
    assert card["training_data"]["license"] and card["training_data"]["input_scheme"] == "iob1"
    assert card["metrics"]["dev"]["epoch"] == ckpt["epoch"]
    assert set(card["training_config"]["model"]) >= {"arch", "optim"}
    model = model_from_checkpoint(ckpt)
    assert not model.training and model.config.num_tags == len(data["labels"])


def _rewrite(src: Path, dst: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    ckpt = torch.load(src, weights_only=True)
    edit(ckpt)
    torch.save(ckpt, dst)
    return dst


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.pop("rnn_ner"), "not a checkpoint of `ner train` (no 'rnn_ner' entry)"),
        (lambda c: c["rnn_ner"].update(task="parsing"), "unknown task 'parsing'"),
        (lambda c: c.pop("NerDataModule"), "no datamodule state"),
        (lambda c: c.pop("state_dict"), "not a Lightning checkpoint"),
    ],
)
def test_foreign_checkpoints_are_refused(
    tiny_run, tmp_path: Path, edit, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, tmp = tiny_run
    bad = _rewrite(_run_dir(tmp) / "checkpoints" / "last.ckpt", tmp_path / "bad.ckpt", edit)
    with pytest.raises(CheckpointError, match="bad.ckpt") as e:
        load_checkpoint(bad)
    assert message in str(e.value)
    assert main(["--ckpt", str(bad), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 2  # chosen file, then the error
    assert not (tmp_path / "b").exists()


def test_best_checkpoint_follows_the_task_mode(
    tiny_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task whose metric goes down (a loss) picks the lowest score, not the highest."""
    _, tmp = tiny_run
    ckpt = torch.load(_best_file(_run_dir(tmp)), weights_only=True)
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for name in ("epoch001-val_f10.3000.ckpt", "epoch002-val_f10.5000.ckpt"):
        torch.save({**ckpt, "callbacks": {}}, folder / name)
    assert best_checkpoint(folder)[0].name == "epoch002-val_f10.5000.ckpt"
    monkeypatch.setattr(NerTagger, "monitor_mode", "min")
    assert best_checkpoint(folder)[0].name == "epoch001-val_f10.3000.ckpt"


def test_checkpoint_from_before_task_modules_exports(tiny_run, tmp_path: Path) -> None:
    _, tmp = tiny_run

    def legacy(ckpt) -> None:  # type: ignore[no-untyped-def]
        cfg = ckpt["rnn_ner"].pop("config")
        ckpt["rnn_ner"]["tagger_config"] = {
            "num_tags": cfg["num_tags"],
            **{k: v for k, v in cfg["inputs"].items() if k != "dropout"},
            **{k: cfg["rnn"][k] for k in ("cell", "hidden_size", "num_layers", "bidirectional")},
            "embed_dropout": cfg["inputs"]["dropout"],
            "dropout": cfg["dropout"],
            "head": cfg["head"],
        }
        ckpt["state_dict"] = {
            k.replace("model.inputs.", "model."): v for k, v in ckpt["state_dict"].items()
        }

    last = _run_dir(tmp) / "checkpoints" / "last.ckpt"
    old = _rewrite(last, tmp_path / "old.ckpt", legacy)
    out = export_checkpoint(old, tmp_path / "bundle")
    from ner import tasks

    new = export_checkpoint(last, tmp_path / "new")
    sentences = [["Harry", "Potter", "visited", "London"]]
    a, b = tasks.load(out), tasks.load(new)
    assert a.predict_tokens(sentences) == b.predict_tokens(sentences)
