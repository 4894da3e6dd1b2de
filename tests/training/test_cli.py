"""`ner train` (LightningCLI): fit, --print_config, --help, resume, export + predict, DDP."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ner.data.conll import read_conll
from ner.data.schemes import convert
from training.cli import main, run
from training.plots import HISTORY_CSV, PLOT_FILES

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


def _run_dir(tmp: Path) -> Path:
    return tmp / "runs" / "tiny"


def test_fit_writes_checkpoints_metrics_and_plots(tiny_run) -> None:
    cli, tmp = tiny_run
    root = _run_dir(tmp)
    assert (root / "checkpoints" / "last.ckpt").is_file()
    best = list((root / "checkpoints").glob("epoch*.ckpt"))
    assert len(best) == 1
    log_dir = Path(cli.trainer.log_dir)
    assert log_dir.parent == root
    metrics = list(csv.DictReader((log_dir / "metrics.csv").open()))
    assert any(row.get("val_f1") for row in metrics)
    assert any(row.get("train_loss_epoch") for row in metrics)
    assert list(log_dir.glob("events.out.tfevents.*")), "TensorBoard logs share the version folder"
    history = list(csv.DictReader((log_dir / HISTORY_CSV).open()))
    assert [int(r["epoch"]) for r in history] == [0, 1]
    assert float(history[-1]["train_loss"]) < float(history[0]["train_loss"])
    for name in PLOT_FILES:
        data = (log_dir / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 1000
    assert (log_dir / "config.yaml").is_file()


def test_sizes_are_linked_from_the_data(tiny_run) -> None:
    cli, _ = tiny_run
    data, model = cli.datamodule, cli.model
    config = model.model.config
    assert config.inputs.vocab_size == len(data.featurizer.words)
    assert config.inputs.num_chars == len(data.featurizer.chars)
    assert config.num_tags == len(data.labels) == 17  # O + BIOES x 4 types
    assert model.tag_scheme == data.tag_scheme == "bioes"
    assert data.use_glove is False and data.use_chars is True  # linked from model.word_input


def test_checkpoint_holds_vocab_and_loads_without_pickle(tiny_run) -> None:
    _, tmp = tiny_run
    ckpt = torch.load(_run_dir(tmp) / "checkpoints" / "last.ckpt", weights_only=True)
    state = ckpt["NerDataModule"]
    assert state["labels"][0] == "O" and state["words"]["itos"][:2] == ["<pad>", "<unk>"]
    assert len(state["files"]["train"]["sha256"]) == 64
    entry = ckpt["rnn_ner"]
    assert entry["task"] == "ner" and entry["config"]["rnn"]["hidden_size"] == 16
    assert entry["labels"] == state["labels"] and entry["tag_scheme"] == "bioes"
    assert "labels" not in ckpt["hyper_parameters"]  # data-derived: in the data state only


def test_print_config(tiny_args, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run(tiny_args(tmp_path, "--print_config"))
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "hidden_size: 16" in out and "tag_scheme: bioes" in out
    assert "gradient_clip_val: 5.0" in out and "gradient_clip_algorithm: norm" in out
    assert "monitor: val_f1" in out and "save_last: true" in out
    assert "task: ner" in out
    # Linked (data-derived) values are never typed in a config: the module's own arguments are
    # linked from the data, and the sizes inside ``arch`` stay 0 placeholders that
    # ``with_sizes`` fills in from the data when the model is built.
    config = yaml.safe_load(out)
    model = config["model"]
    assert set(model) == {"arch", "optim", "init_from"}
    assert model["arch"]["num_tags"] == 0
    assert (model["arch"]["inputs"]["vocab_size"], model["arch"]["inputs"]["num_chars"]) == (0, 0)
    assert model["optim"]["optimizer"] == "adam" and model["optim"]["lr"] == 0.05
    assert "labels" not in config["data"] and "labels:" not in out


def test_help_shows_argument_docstrings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run(["fit", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in (
        "Hidden units per direction",
        "Learning-rate decay per epoch",
        "sorted by length within a chunk",
        "Bundle directory to warm-start from",
        "Tag scheme the model is trained in",
    ):
        assert text in out, text


def test_resume_from_last_checkpoint(tiny_run, tiny_args, tmp_path: Path) -> None:
    _, tmp = tiny_run
    # Resume a copy of the run, so the other tests keep theirs.
    import shutil

    shutil.copytree(tmp / "runs", tmp_path / "runs")
    cli = run(tiny_args(tmp_path, "--ckpt_path", "last", "--trainer.max_epochs", "3"))
    history = cli.model.history
    assert [row["epoch"] for row in history] == [0, 1, 2]  # epochs 0-1 came from the checkpoint
    assert cli.trainer.current_epoch == 3
    steps = [row["step"] for row in history]
    assert steps[2] > steps[1] > steps[0]
    log_dir = Path(cli.trainer.log_dir)
    assert log_dir.name == "version_1"
    rows = list(csv.DictReader((log_dir / HISTORY_CSV).open()))
    assert len(rows) == 3  # the plots cover the whole run, not only the resumed part


def _module_predictions(cli) -> list[list[str]]:
    """The LightningModule's own tags for the dev file, in file order (training scheme)."""
    model, data = cli.model.eval(), cli.datamodule
    out: dict[int, list[str]] = {}
    with torch.no_grad():
        for batch in data.val_dataloader():
            for index, tags in model.predict_step(batch, 0):
                out[index] = tags
    return [out[i] for i in range(len(out))]


def test_export_then_predict_matches_the_module(tiny_run, tiny_export, tmp_path: Path) -> None:
    from ner.predict import Predictor
    from ner_cli import main as ner_main

    cli, tmp = tiny_run
    ckpt = _run_dir(tmp) / "checkpoints" / "last.ckpt"
    bundle = tiny_export
    card = __import__("json").loads((bundle / "model_card.json").read_text())
    assert card["version"] == "0.0.1" and card["name"] == "bundle"
    assert "f1" in card["metrics"]["dev"] and card["training"]["seconds"] > 0
    assert len(card["training_data"]["sha256"]) == 64 and card["training_data"]["license"]
    assert card["training"]["hardware"]["cpu_count"] >= 1

    # The module's predictions on the dev file (reloading the same checkpoint).
    cli.model.load_state_dict(torch.load(ckpt, weights_only=True)["state_dict"])
    expected = _module_predictions(cli)
    assert any(tag != "O" for tags in expected for tag in tags), "the tiny model predicts entities"

    # `ner predict` (ONNX bundle) writes `token gold predicted` in the scheme asked for.
    out = tmp_path / "pred.conll"
    dev = FIXTURES / "tiny_dev.conll"
    args = ["predict", "--model", str(bundle), "--input", str(dev), "--output", str(out)]
    assert ner_main([*args, "--scheme", "bioes"]) == 0
    predicted = [list(s.labels) for s in read_conll(out)]
    assert predicted == expected

    # The Python API gives the same labels (IOB2), with an unknown word and an empty sentence.
    sentences = [list(s.tokens) for s in read_conll(dev)]
    docs = Predictor.from_path(bundle).predict([*sentences, ["Zyxwvut", "visited", "Qqqq"]])
    got = [[t.label for t in doc.tokens] for doc in docs[: len(sentences)]]
    assert got == [convert(tags, "bioes", "iob2") for tags in expected]
    assert len(docs[-1].tokens) == 3


def _assert_same_emissions(ckpt_path: Path, bundle: Path) -> None:
    """The checkpoint's model and the exported bundle give the same emissions on the dev file,
    on both backends (the model's word table rounded to float16, as the bundle stores it)."""
    from ner import tasks
    from training.export import load_checkpoint, model_from_checkpoint

    model = model_from_checkpoint(load_checkpoint(ckpt_path))
    state = model.state_dict()
    words = [k for k in state if k.startswith("inputs.words.")]
    assert words
    model.load_state_dict({k: v.half().float() if k in words else v for k, v in state.items()})
    sentences = [list(s.tokens) for s in read_conll(FIXTURES / "tiny_dev.conll")]
    sentences.append(["Zyxwvut", "visited", "Qqqq"])  # unknown words
    for backend in ("onnx", "torch"):
        predictor = tasks.load(bundle, backend)
        assert predictor.config == model.config
        features = predictor.featurizer.encode(sentences)
        with torch.no_grad():
            want = model(
                *(torch.from_numpy(a) for a in (features.word_ids, features.glove_ids,
                  features.char_ids, features.casing_ids, features.lengths))
            ).numpy()  # fmt: skip
        got = predictor.emissions(features)
        mask = np.arange(want.shape[1])[None, :] < features.lengths[:, None]
        np.testing.assert_allclose(got[mask], want[mask], atol=1e-5, err_msg=backend)


def test_checkpoint_round_trips_through_export(tiny_run, tiny_export) -> None:
    _, tmp = tiny_run
    _assert_same_emissions(_run_dir(tmp) / "checkpoints" / "last.ckpt", tiny_export)


def test_train_and_export_from_the_command_line(tiny_args, tmp_path: Path) -> None:
    """``python -m ner_cli train fit -c configs/tiny.yaml`` then ``python -m ner_cli export``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("NER_RUN_VERSION", None)
    ner = [sys.executable, "-m", "ner_cli"]
    fit = [*ner, "train", "fit", *tiny_args(tmp_path)[1:], "--trainer.max_epochs", "1"]
    proc = subprocess.run(fit, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = _run_dir(tmp_path)
    (best,) = (run_dir / "checkpoints").glob("epoch*.ckpt")
    bundle = tmp_path / "bundle"
    export = [*ner, "export", "--run", str(run_dir), "--out", str(bundle), "--version", "1.2.3"]
    proc = subprocess.run(export, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == str(bundle)
    assert f"best checkpoint {best}" in proc.stderr
    card = __import__("json").loads((bundle / "model_card.json").read_text())
    assert (card["name"], card["version"], card["task"]) == ("bundle", "1.2.3", "ner")
    assert card["training"]["checkpoint"] == best.name
    _assert_same_emissions(best, bundle)


def test_warm_start_from_a_bundle(tiny_run, tiny_export, tiny_args, tmp_path: Path) -> None:
    from ner import tasks

    cli, tmp = tiny_run
    trained = torch.load(_run_dir(tmp) / "checkpoints" / "last.ckpt", weights_only=True)
    warm = run(tiny_args(tmp_path, "--model.init_from", str(tiny_export), subcommand="validate"))
    predictor = tasks.load(tiny_export)
    assert warm.datamodule.featurizer == predictor.featurizer  # linked: the bundle's vocabularies
    assert warm.model.labels == list(predictor.labels)
    assert warm.model.model.config == predictor.config  # the bundle's architecture
    state = warm.model.state_dict()
    for key, value in trained["state_dict"].items():
        # The bundle stores the word table in float16.
        torch.testing.assert_close(state[key], value, atol=2e-3, rtol=1e-2, msg=key)
    f1 = warm.trainer.callback_metrics["val_f1"].item()
    assert f1 == pytest.approx(trained["rnn_ner"]["history"][-1]["val_f1"], abs=0.05)


def test_export_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.export import main as export_main

    assert (
        export_main(["--ckpt", str(tmp_path / "missing.ckpt"), "--out", str(tmp_path / "b")]) == 2
    )
    assert "checkpoint not found" in capsys.readouterr().err
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    assert export_main(["--ckpt", str(bad), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "corrupt or unreadable checkpoint" in err and "Traceback" not in err
    assert not (tmp_path / "b").exists()


def test_missing_data_file_is_a_clear_error(
    tiny_args, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = tiny_args(tmp_path, "--data.train_path", str(tmp_path / "nope.txt"))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "nope.txt" in err and "not found" in err


def test_ddp_two_cpu_processes(tiny_args, tmp_path: Path) -> None:
    """DDP through the CLI in a subprocess: 2 CPU processes (gloo), one epoch."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("NER_RUN_VERSION", None)
    cmd = [
        sys.executable, "-m", "ner_cli", "train", "fit",
        *tiny_args(tmp_path)[1:],
        "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu",
        "--trainer.max_epochs", "1",
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = _run_dir(tmp_path)
    assert (root / "checkpoints" / "last.ckpt").is_file()
    assert [p.name for p in root.iterdir() if p.name.startswith("version_")] == ["version_0"]
    ckpt = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] > 0
    # Each rank ran half of the batches: 11 batches of 4 -> 6 steps per rank.
    assert ckpt["global_step"] == 6, ckpt["global_step"]
    assert time.perf_counter() - start < 300
    np.testing.assert_equal(len(ckpt["rnn_ner"]["history"]), 1)
