"""`ner train` for the classify task: a 2-epoch fit on tests/fixtures/tiny_sst.tsv, export, load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ner.classify import read_labelled, softmax
from ner.tasks import load

REPO = Path(__file__).resolve().parents[2]
TINY_SST = REPO / "tests" / "fixtures" / "tiny_sst.tsv"
SST2_CONFIG = REPO / "configs" / "sst2.yaml"


def _override(tmp: Path, **data: str) -> Path:
    """configs/sst2.yaml shrunk to the tiny fixture, outputs under ``tmp``."""
    loggers = [
        {
            "class_path": f"lightning.pytorch.loggers.{cls}",
            "init_args": {"save_dir": str(tmp / "runs"), "name": "tiny-sst"},
        }
        for cls in ("CSVLogger", "TensorBoardLogger")
    ]
    override = {
        "trainer": {
            "max_epochs": 2,
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
            "log_every_n_steps": 1,
            "logger": loggers,
        },
        "model": {
            "arch": {
                "inputs": {"word_input": "learned", "word_dim": 8, "dropout": 0.0},
                "rnn": {"cell": "gru", "hidden_size": 8, "num_layers": 2},
                "pooling": "attention",
                "attention_size": 4,
                "dropout": 0.0,
            },
            "optim": {"lr": 0.03},
        },
        "data": {
            "train_path": str(TINY_SST),
            "val_path": str(TINY_SST),
            "batch_size": 8,
            **data,
        },
    }
    path = tmp / "override.yaml"
    path.write_text(yaml.safe_dump(override), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_sst_run(tmp_path_factory: pytest.TempPathFactory):
    from training.cli import run

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("tiny_sst")
    cli = run(["fit", "-c", str(SST2_CONFIG), "-c", str(_override(tmp))])
    return cli, tmp


def test_fit_monitors_dev_accuracy_and_calibration(tiny_sst_run) -> None:
    cli, tmp = tiny_sst_run
    module = cli.model
    assert module.task == "classify"
    assert module.labels == ["negative", "positive"]
    assert module.model.config.num_classes == 2
    assert module.model.config.inputs.vocab_size == cli.datamodule.vocab_size
    shipped = yaml.safe_load(SST2_CONFIG.read_text(encoding="utf-8"))["model"]
    assert module.adversarial == shipped.get("adversarial", 0.0)  # the config's recipe trains
    assert len(module.history) == 2
    row = module.history[-1]
    for key in ("val_acc", "val_macro_f1", "val_ece", "val_ece_calibrated", "val_temperature"):
        assert key in row
    assert row["val_temperature"] > 0
    assert row["val_ece_calibrated"] <= row["val_ece"] + 0.05
    ckpts = sorted((tmp / "runs" / "tiny-sst" / "checkpoints").glob("*.ckpt"))
    assert any("val_acc" in c.name for c in ckpts)


def test_export_and_classify_matches_the_checkpoint(tiny_sst_run, tmp_path: Path) -> None:
    from training.export import load_checkpoint, model_from_checkpoint
    from training.export import main as export_main

    cli, tmp = tiny_sst_run
    folder = tmp / "runs" / "tiny-sst" / "checkpoints"
    out = tmp_path / "bundle"
    assert export_main(["--ckpt", str(folder), "--out", str(out), "--version", "0.0.1"]) == 0
    (best,) = folder.glob("epoch*.ckpt")  # save_top_k 1: the best dev accuracy
    ckpt = load_checkpoint(best)
    temperature = ckpt["rnn_ner"]["calibration"]["temperature"]
    row = next(h for h in cli.model.history if h["epoch"] == ckpt["epoch"])
    assert temperature == pytest.approx(row["val_temperature"])  # fitted on that epoch's dev
    onnx, torch_backend = load(out, "onnx"), load(out, "torch")
    assert onnx.task == "classify" and onnx.labels == ("negative", "positive")
    assert onnx.temperature == pytest.approx(temperature)
    card = onnx.card
    assert card["calibration"]["temperature"] == pytest.approx(temperature)
    assert card["metrics"]["dev"]["acc"] == pytest.approx(row["val_acc"])
    assert card["training_data"]["files"]["train"]["name"] == "tiny_sst.tsv"
    assert card["training_data"]["label_map"] == {"0": "negative", "1": "positive"}
    sentences = [list(s.tokens) for s in read_labelled(TINY_SST)]
    np.testing.assert_allclose(onnx.logits(sentences), torch_backend.logits(sentences), atol=1e-5)
    # the checkpoint's own model on the same sentences (float32 word table vs the bundle's fp16)
    model = model_from_checkpoint(ckpt).eval()
    batch = cli.datamodule.val_dataloader().collate_fn(list(range(len(sentences))))
    keys = ("word_ids", "glove_ids", "char_ids", "casing_ids", "lengths")
    with torch.no_grad():
        want = model(*(batch[k] for k in keys)).numpy()
    np.testing.assert_allclose(onnx.logits(sentences), want, atol=1e-3)
    probs = np.array([[r.probabilities[k] for k in onnx.labels] for r in onnx.classify(sentences)])
    np.testing.assert_allclose(probs, softmax(onnx.logits(sentences), temperature), atol=1e-9)


def test_several_checkpoints_export_one_calibrated_ensemble(
    tiny_sst_run, tmp_path: Path, capsys
) -> None:
    from ner.classify import ensemble_logits, fit_temperature
    from training.export import main as export_main

    _, tmp = tiny_sst_run
    folder = tmp / "runs" / "tiny-sst" / "checkpoints"
    (best,) = folder.glob("epoch*.ckpt")
    last = folder / "last.ckpt"  # another epoch's weights, same vocabulary
    singles = []
    for i, ckpt in enumerate((best, last)):
        assert export_main(["--ckpt", str(ckpt), "--out", str(tmp_path / f"s{i}")]) == 0
        singles.append(load(tmp_path / f"s{i}", "onnx"))
    out = tmp_path / "ensemble"
    args = ["--ckpt", str(best), str(last), "--out", str(out), "--calibrate", str(TINY_SST)]
    assert export_main(args) == 0
    ensemble = load(out, "onnx")
    assert ensemble.describe()["ensemble"] == 2
    data = read_labelled(TINY_SST)
    sentences = [list(s.tokens) for s in data]
    want = ensemble_logits([m.logits(sentences) for m in singles])
    np.testing.assert_allclose(ensemble.logits(sentences), want, atol=1e-5)
    gold = np.array(
        [ensemble.labels.index({"0": "negative", "1": "positive"}[s.label]) for s in data]
    )
    assert ensemble.temperature == pytest.approx(fit_temperature(want, gold), rel=1e-3)
    card = ensemble.card
    assert card["metrics"]["dev"]["acc"] == pytest.approx(float((want.argmax(-1) == gold).mean()))
    assert len(card["metrics"]["dev_members"]) == 2 and len(card["ensemble"]) == 2
    np.testing.assert_allclose(
        ensemble.logits(sentences), load(out, "torch").logits(sentences), atol=1e-5
    )
    capsys.readouterr()
    # An ensemble needs a calibration file, and the file's errors name their line.
    assert export_main(["--ckpt", str(best), str(last), "--out", str(tmp_path / "x")]) == 2
    assert "--calibrate" in capsys.readouterr().err
    bad = tmp_path / "bad.tsv"
    bad.write_text("a fine film\t1\na bad film\tneutral\n", encoding="utf-8")
    args = ["--ckpt", str(best), str(last), "--out", str(tmp_path / "x"), "--calibrate", str(bad)]
    assert export_main(args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and "bad.tsv:2" in err[0] and not (tmp_path / "x").exists()


def test_bad_label_names_the_file_and_line(tmp_path: Path, capsys) -> None:
    from training.cli import main

    bad = tmp_path / "bad.tsv"
    bad.write_text("a fine film\t1\na bad film\tneutral\n", encoding="utf-8")
    args = ["fit", "-c", str(SST2_CONFIG), "-c", str(_override(tmp_path, train_path=str(bad)))]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.tsv:2" in err[0] and "'neutral'" in err[0]


def test_negative_adversarial_epsilon_is_refused() -> None:
    from training.classify import ClassifyModule

    with pytest.raises(ValueError, match="adversarial"):
        ClassifyModule(adversarial=-1.0)
