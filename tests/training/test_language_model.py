"""`ner train` for the language-model tasks: 2-epoch fits on the project's fixtures (names as
lines and as a character stream; labelled reviews for the conditional model), export, load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from ner.tasks import load
from tests.lm_helpers import TINY_NAMES, TINY_REVIEWS

REPO = Path(__file__).resolve().parents[2]


def _override(tmp: Path, name: str, model: dict, data: dict) -> Path:
    override = {
        "trainer": {
            "max_epochs": 2,
            "max_time": None,
            "val_check_interval": None,
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
            "log_every_n_steps": 1,
            "logger": [
                {
                    "class_path": "lightning.pytorch.loggers.CSVLogger",
                    "init_args": {"save_dir": str(tmp / "runs"), "name": name},
                }
            ],
        },
        "model": {
            **model,
            "arch": {
                "inputs": {"word_dim": 8, "dropout": 0.0},
                "rnn": {"hidden_size": 12, "num_layers": 1},
                "dropout": 0.0,
                **model.get("arch", {}),
            },
            "optim": {"lr": 0.03},
        },
        "data": {"batch_size": 8, "eval_batch_size": 8, **data},
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(override), encoding="utf-8")
    return path


def _fit(tmp: Path, config: str, name: str, model: dict, data: dict):
    from training.cli import run

    torch.set_num_threads(1)
    cfg = REPO / "configs" / config
    return run(["fit", "-c", str(cfg), "-c", str(_override(tmp, name, model, data))])


def _export(cli, tmp: Path) -> Path:
    from training.export import main as export_main

    ckpt = Path(cli.trainer.checkpoint_callback.best_model_path)
    out = tmp / "bundle"
    assert export_main(["--ckpt", str(ckpt), "--out", str(out), "--version", "0.0.1"]) == 0
    return out


def _module_log_prob(module, predictor, tokens, class_id=None) -> float:
    from ner.data import lm
    from ner.models.language_model import token_log_probs

    x, y = lm.encode(predictor.vocab, tokens)
    c = torch.tensor([class_id]) if class_id is not None else None
    model = module.model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([x]), torch.tensor([len(x)]), c)
        return float(token_log_probs(logits, torch.tensor([y]), torch.tensor([len(x)])).sum())


def test_dinos_config_fits_exports_and_scores(tmp_path: Path) -> None:
    cli = _fit(tmp_path, "dinos.yaml", "names", {}, {"train_path": str(TINY_NAMES)})
    module = cli.model
    assert module.task == "language_model" and len(module.history) == 2
    first, last = module.history
    assert last["val_nats_per_token"] < first["val_nats_per_token"]
    assert last["val_perplexity"] == pytest.approx(2.718281828 ** last["val_nats_per_token"])
    out = _export(cli, tmp_path)
    predictor = load(out)
    assert predictor.task == "language_model" and predictor.level == "char"
    got = predictor.score(["raptor"])[0].log_prob
    # the exported table is float16: the module's own table rounds the same way first
    with torch.no_grad():
        table = module.model.inputs.words.onehot.W_ax
        table.copy_(table.half().float())
    assert got == pytest.approx(_module_log_prob(module, predictor, list("raptor")), abs=1e-4)
    assert len(predictor.generate(4, seed=0)) == 4
    card = predictor.card
    assert card["metrics"] and card["architecture"]["onnx"]["step"]


def test_stream_corpus_trains_on_windows(tmp_path: Path) -> None:
    cli = _fit(
        tmp_path,
        "shakespeare.yaml",
        "stream",
        {},
        {"train_path": str(TINY_NAMES), "bptt": 16, "val_fraction": 0.2},
    )
    batch = next(iter(cli.datamodule.train_dataloader()))
    assert batch["x"].shape == (8, 16) and (batch["x"][:, 1:] == batch["y"][:, :-1]).all()
    assert cli.model.history[-1]["val_nats_per_token"] < 3.0


def test_conditional_config_fits_and_exports(tmp_path: Path) -> None:
    data = {"train_path": str(TINY_REVIEWS), "val_path": str(TINY_REVIEWS), "min_freq": 1}
    cli = _fit(tmp_path, "sst2-generator.yaml", "cond", {}, data)
    module = cli.model
    assert module.class_names == ["negative", "positive"]
    assert module.model.config.num_classes == 2
    predictor = load(_export(cli, tmp_path))
    assert predictor.task == "conditional_lm"
    assert predictor.classes == ("negative", "positive")
    tokens = ["a", "great", "film"]
    for c in (0, 1):
        got = predictor.score_tokens([tokens], class_=c)[0].log_prob
        assert got == pytest.approx(_module_log_prob(module, predictor, tokens, c), abs=1e-4)
