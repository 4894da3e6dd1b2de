"""training.module: optimizers and the Ma & Hovy learning-rate decay, decoding, warm start."""

from __future__ import annotations

import pytest
import torch

from ner.data.schemes import is_valid
from training.module import NerTagger

LABELS = ["O", "B-PER", "I-PER", "E-PER", "S-PER"]


def _module(**kwargs) -> NerTagger:
    args: dict = {
        "labels": LABELS, "vocab_size": 20, "num_chars": 10, "word_input": "learned",
        "word_dim": 8, "char_dim": 4, "char_hidden": 4, "casing_dim": 2, "hidden_size": 8,
    }  # fmt: skip
    args.update(kwargs)
    return NerTagger(**args)


@pytest.mark.parametrize(
    "name,cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)]
)
def test_optimizers(name: str, cls: type) -> None:
    conf = _module(optimizer=name, lr=0.1).configure_optimizers()
    assert isinstance(conf["optimizer"], cls)
    assert conf["optimizer"].param_groups[0]["lr"] == pytest.approx(0.1)


def test_lr_decay_follows_ma_and_hovy() -> None:
    conf = _module(optimizer="sgd", lr=0.015, lr_decay=0.05).configure_optimizers()
    opt, schedule = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert conf["lr_scheduler"]["interval"] == "epoch"
    assert opt.param_groups[0]["momentum"] == 0.9
    for epoch in range(5):
        assert opt.param_groups[0]["lr"] == pytest.approx(0.015 / (1 + 0.05 * epoch))
        opt.step()
        schedule.step()


def test_decode_respects_the_scheme() -> None:
    model = _module()
    emissions = torch.zeros(1, 3, len(LABELS))
    emissions[0, :, LABELS.index("I-PER")] = 10.0  # I-PER everywhere is invalid in BIOES
    tags = model.decode(emissions, torch.tensor([3]))[0]
    assert len(tags) == 3 and is_valid(tags, "bioes")
    assert tags == ["B-PER", "I-PER", "E-PER"]  # the best valid path through the I-PER scores


def test_hparams_leave_out_data_derived_values() -> None:
    model = _module()
    assert "labels" not in model.hparams and "vocab_size" not in model.hparams
    assert model.hparams["hidden_size"] == 8
    assert model.model.config.num_tags == len(LABELS)
