"""The tagger's inputs and encoder: one-hot == explicit matmul, and padding invariance."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ner.models.config import TaggerConfig
from ner.models.tagger import Tagger
from ner.nn.config import InputConfig, RNNConfig
from ner.nn.embeddings import OneHotInput


def test_onehot_equals_explicit_matmul() -> None:
    torch.manual_seed(0)
    layer = OneHotInput(vocab_size=11, dim=5)
    ids = torch.tensor([[2, 3, 10, 0], [1, 1, 4, 0]])  # (B, T), 0 = PAD
    explicit = F.one_hot(ids, num_classes=11).float() @ layer.W_ax.t()  # x<t> (V) times W_ax
    assert torch.allclose(layer(ids), explicit, atol=0, rtol=0)
    assert torch.allclose(layer(ids), layer.explicit(ids))
    # Same gradient for W_ax as the literal matmul.
    layer(ids).sum().backward()
    fast = layer.W_ax.grad.clone()
    layer.W_ax.grad = None
    (F.one_hot(ids, num_classes=11).float() @ layer.W_ax.t()).sum().backward()
    assert torch.allclose(fast, layer.W_ax.grad)


@pytest.mark.parametrize(
    ("cell", "bidirectional", "layers", "chars", "head"),
    [
        ("lstm", True, 1, "cnn", "crf"),
        ("gru", True, 2, "lstm", "softmax"),
        ("rnn_tanh", False, 1, "none", "crf"),
        ("rnn_relu", True, 2, "cnn", "softmax"),
    ],
)
def test_padding_invariance(cell: str, bidirectional: bool, layers: int, chars: str, head: str):
    """A sentence gives the same emissions alone and inside a padded batch."""
    torch.manual_seed(0)
    config = TaggerConfig(
        num_tags=5,
        inputs=InputConfig(
            vocab_size=20,
            num_chars=15,
            word_input="onehot",
            word_dim=6,
            char_encoder=chars,  # type: ignore[arg-type]
            char_dim=4,
            char_hidden=3,
            casing_dim=2,
        ),
        rnn=RNNConfig(
            cell=cell,  # type: ignore[arg-type]
            hidden_size=7,
            num_layers=layers,
            bidirectional=bidirectional,
        ),
        head=head,  # type: ignore[arg-type]
    )
    model = Tagger(config).eval()
    b, t, c = 3, 9, 6
    lengths = torch.tensor([4, 9, 1])
    word_ids = torch.randint(1, 20, (b, t))
    char_ids = torch.randint(1, 15, (b, t, c))
    casing_ids = torch.randint(1, 8, (b, t))
    steps = torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)
    word_ids, casing_ids = word_ids * steps, casing_ids * steps
    char_ids = char_ids * steps.unsqueeze(-1)
    glove_ids = torch.zeros_like(word_ids)
    with torch.no_grad():
        batch = model(word_ids, glove_ids, char_ids, casing_ids, lengths)
        for i, n in enumerate(lengths.tolist()):
            alone = model(
                word_ids[i : i + 1, :n],
                glove_ids[i : i + 1, :n],
                char_ids[i : i + 1, :n],
                casing_ids[i : i + 1, :n],
                lengths[i : i + 1],
            )
            assert torch.allclose(alone[0], batch[i, :n], atol=1e-5), (cell, i)
