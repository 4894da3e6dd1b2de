"""ner.nn.bptt: the hand-written backward pass through time against finite differences
(torch.autograd.gradcheck, float64) and against autograd over the same forward pass."""

from __future__ import annotations

import pytest
import torch

from ner.nn import bptt
from ner.nn.cells import SeedRNN, SeedRNNConfig

torch.set_num_threads(1)

TX, B, D, H = 5, 2, 3, 4


def f64(*shape: int, scale: float = 0.5) -> torch.Tensor:
    return (scale * torch.randn(*shape, dtype=torch.float64)).requires_grad_(True)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_rnn_bptt_gradcheck(activation):
    torch.manual_seed(0)
    # relu is not differentiable at 0; random inputs keep every pre-activation away from it
    inputs = (f64(TX, B, D), f64(H, D), f64(H, H), f64(H), f64(B, H))
    assert torch.autograd.gradcheck(lambda *t: bptt.rnn(*t, activation), inputs)


def test_lstm_bptt_gradcheck():
    torch.manual_seed(1)
    inputs = (f64(TX, B, D), f64(4 * H, D), f64(4 * H, H), f64(4 * H), f64(B, H), f64(B, H))
    assert torch.autograd.gradcheck(bptt.lstm, inputs)  # both outputs: a (Tx, B, H) and c<Tx>


@pytest.mark.parametrize("name", ["seed_rnn_tanh", "seed_rnn_relu", "seed_lstm"])
def test_hand_bptt_equals_autograd_through_the_layer(name):
    """Same layer, same loss: parameter and input gradients by hand = by autograd."""
    torch.manual_seed(2)
    auto = SeedRNN(SeedRNNConfig(name, D, H)).double()
    hand = SeedRNN(SeedRNNConfig(name, D, H, bptt="manual")).double()
    hand.load_state_dict(auto.state_dict())
    x = torch.randn(B, 7, D, dtype=torch.float64)
    grads = []
    for layer in (auto, hand):
        xg = x.clone().requires_grad_(True)
        a, hx_n = layer(xg)
        final = hx_n[1] if isinstance(hx_n, tuple) else hx_n  # c<Tx> for the LSTM
        loss = a.pow(2).sum() + a[:, 3].sum() + final.sin().sum()
        loss.backward()
        grads.append([xg.grad] + [p.grad for p in layer.parameters()])
    for g_auto, g_hand in zip(*grads, strict=True):
        torch.testing.assert_close(g_hand, g_auto, atol=1e-10, rtol=0)


def test_hand_bptt_is_used_only_when_training_with_grad():
    layer = SeedRNN(SeedRNNConfig("seed_lstm_bptt", D, H))
    x = torch.randn(B, 4, D, requires_grad=True)
    a, _ = layer(x)
    assert type(a.grad_fn).__name__ == "TransposeBackward0"
    assert "LSTMBPTT" in type(a.grad_fn.next_functions[0][0]).__name__
    with torch.no_grad():
        torch.testing.assert_close(layer(x)[0], a.detach())


def test_hand_bptt_on_an_empty_sequence():
    for cell in ("seed_rnn_tanh", "seed_lstm"):
        layer = SeedRNN(SeedRNNConfig(cell, D, H, bptt="manual"))
        x = torch.randn(B, 0, D, requires_grad=True)
        a, _ = layer(x)
        assert a.shape == (B, 0, H)
        (a.sum() + layer(x)[1][0].sum() if cell == "seed_lstm" else a.sum()).backward()
        assert x.grad is not None and x.grad.shape == x.shape and not x.grad.any()
