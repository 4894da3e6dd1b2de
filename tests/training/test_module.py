"""training.module: optimizers and the Ma & Hovy learning-rate decay, decoding, warm start."""

from __future__ import annotations

import pytest
import torch

from ner.data.schemes import is_valid
from ner.models.config import TaggerConfig
from ner.nn.config import InputConfig, RNNConfig
from training.base import OptimConfig
from training.module import NerTagger

LABELS = ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
ARCH = TaggerConfig(
    inputs=InputConfig(word_input="learned", word_dim=8, char_dim=4, char_hidden=4, casing_dim=2),
    rnn=RNNConfig(hidden_size=8),
)


def _module(**optim) -> NerTagger:
    return NerTagger(
        labels=LABELS,
        vocab_size=20,
        num_chars=10,
        arch=ARCH,
        optim=OptimConfig(**optim) if optim else OptimConfig(),
    )


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
    assert model.hparams["arch"]["rnn"]["hidden_size"] == 8
    assert model.hparams["arch"]["inputs"]["vocab_size"] == 0  # as configured, not linked
    assert model.hparams["optim"] == {
        "optimizer": "adam", "lr": 0.001, "momentum": 0.9, "weight_decay": 0.0, "lr_decay": 0.0,
    }  # fmt: skip
    config = model.model.config
    assert config.num_tags == len(LABELS)
    assert (config.inputs.vocab_size, config.inputs.num_chars) == (20, 10)  # filled in from data
    assert ARCH.inputs.vocab_size == 0 and ARCH.num_tags == 0  # the given config is not changed


def test_with_sizes_fills_nested_fields_without_mutating() -> None:
    from training.base import with_sizes

    sized = with_sizes(ARCH, num_tags=7, **{"inputs.vocab_size": 30, "inputs.num_chars": 5})
    assert (sized.num_tags, sized.inputs.vocab_size, sized.inputs.num_chars) == (7, 30, 5)
    assert sized.rnn == ARCH.rnn and sized.inputs.word_dim == ARCH.inputs.word_dim
    assert (ARCH.num_tags, ARCH.inputs.vocab_size) == (0, 0)


def test_default_optimiser_is_ma_and_hovy() -> None:
    """Without an ``optim`` the NER module trains with SGD, lr 0.015, momentum 0.9, decay 0.05."""
    model = NerTagger(labels=LABELS, vocab_size=20, num_chars=10, arch=ARCH)
    assert (model.optim.optimizer, model.optim.lr, model.optim.lr_decay) == ("sgd", 0.015, 0.05)
