"""ner.nn.cells: each cell against an independent NumPy version of the seed equations, the fused
nn.RNN / nn.GRU / nn.LSTM against the cells (after from_torch), and BPTT sanity (clipping)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ner.nn.cells import (
    GRUCell,
    GRUCellConfig,
    LSTMCell,
    LSTMCellConfig,
    RNNCell,
    RNNCellConfig,
    from_torch,
    unroll,
)
from ner.nn.encoder import EncoderConfig, RNNEncoder

torch.set_num_threads(1)

B, TX, D, H = 3, 5, 4, 6


def params(cell: nn.Module) -> dict[str, np.ndarray]:
    return {name: p.detach().numpy() for name, p in cell.named_parameters()}


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


# NumPy versions of the seed equations, one step each, with W_a and W_x kept as separate blocks
# (W [a, x] = W_a a + W_x x) so that they do not share the cells' concatenation code.


def np_rnn(p, x, a0, g):
    a, out = a0, []
    for t in range(x.shape[1]):
        a = g(a @ p["W_aa"].T + x[:, t] @ p["W_ax"].T + p["b_a"])
        out.append(a)
    return np.stack(out, axis=1)


def np_gru(p, x, c0, reset_after):
    h = c0.shape[1]
    split = {k: (p[k][:, :h], p[k][:, h:]) for k in ("W_u", "W_r", "W_c")}
    c, out = c0, []
    for t in range(x.shape[1]):
        xt = x[:, t]
        gate_u = sigmoid(c @ split["W_u"][0].T + xt @ split["W_u"][1].T + p["b_u"])
        gate_r = sigmoid(c @ split["W_r"][0].T + xt @ split["W_r"][1].T + p["b_r"])
        w_cc, w_cx = split["W_c"]
        if reset_after:
            c_tilde = np.tanh(gate_r * (c @ w_cc.T + p["b_cr"]) + xt @ w_cx.T + p["b_c"])
        else:
            c_tilde = np.tanh((gate_r * c) @ w_cc.T + xt @ w_cx.T + p["b_c"])
        c = gate_u * c_tilde + (1.0 - gate_u) * c
        out.append(c)
    return np.stack(out, axis=1)


def np_lstm(p, x, a0, c0, squash):
    h = a0.shape[1]
    a, c, out = a0, c0, []
    for t in range(x.shape[1]):
        xt = x[:, t]
        z = {g: a @ p[f"W_{g}"][:, :h].T + xt @ p[f"W_{g}"][:, h:].T + p[f"b_{g}"] for g in "cufo"}
        c = sigmoid(z["u"]) * np.tanh(z["c"]) + sigmoid(z["f"]) * c
        a = sigmoid(z["o"]) * (np.tanh(c) if squash else c)
        out.append(a)
    return np.stack(out, axis=1)


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(B, TX, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_rnn_cell_matches_numpy(x, activation):
    torch.manual_seed(1)
    cell = RNNCell(RNNCellConfig(D, H, activation=activation)).double()
    a0 = torch.randn(B, H, dtype=torch.float64)
    g = np.tanh if activation == "tanh" else (lambda z: np.maximum(z, 0.0))
    expected = np_rnn(params(cell), x.numpy(), a0.numpy(), g)
    np.testing.assert_allclose(unroll(cell, x, a0).detach().numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("reset_after", [False, True])
def test_gru_cell_matches_numpy(x, reset_after):
    torch.manual_seed(2)
    cell = GRUCell(GRUCellConfig(D, H, reset_after=reset_after)).double()
    c0 = torch.randn(B, H, dtype=torch.float64)
    expected = np_gru(params(cell), x.numpy(), c0.numpy(), reset_after)
    np.testing.assert_allclose(unroll(cell, x, c0).detach().numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("squash", [True, False])
def test_lstm_cell_matches_numpy(x, squash):
    torch.manual_seed(3)
    cell = LSTMCell(LSTMCellConfig(D, H, squash_output=squash)).double()
    a0, c0 = torch.randn(B, H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    expected = np_lstm(params(cell), x.numpy(), a0.numpy(), c0.numpy(), squash)
    got = unroll(cell, x, (a0, c0)).detach().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)
    # a lone a<0> means c<0> = 0
    zeros = np.zeros((B, H))
    np.testing.assert_allclose(
        unroll(cell, x, a0).detach().numpy(),
        np_lstm(params(cell), x.numpy(), a0.numpy(), zeros, squash),
        atol=1e-12,
    )


def test_unroll_defaults_and_empty_sequence():
    torch.manual_seed(4)
    for cell in (RNNCell(RNNCellConfig(D, H)), GRUCell(GRUCellConfig(D, H))):
        x = torch.randn(B, TX, D)
        zeros = torch.zeros(B, H)
        torch.testing.assert_close(unroll(cell, x), unroll(cell, x, zeros))
        assert unroll(cell, x[:, :0]).shape == (B, 0, H)
    lstm = LSTMCell(LSTMCellConfig(D, H))
    assert unroll(lstm, torch.randn(B, TX, D)).shape == (B, TX, H)


def test_rnn_readout_is_a_softmax():
    torch.manual_seed(5)
    cell = RNNCell(RNNCellConfig(D, H, output_size=7))
    y_hat = cell.readout(unroll(cell, torch.randn(B, TX, D)))  # (B, Tx, n_y)
    assert y_hat.shape == (B, TX, 7)
    assert bool((y_hat > 0).all())
    torch.testing.assert_close(y_hat.sum(-1), torch.ones(B, TX))
    with pytest.raises(ValueError, match="no readout"):
        RNNCell(RNNCellConfig(D, H)).readout(torch.zeros(B, H))


@pytest.mark.parametrize(
    "make",
    [
        lambda: RNNCellConfig(0, H),
        lambda: RNNCellConfig(D, H, "sigmoid"),
        lambda: GRUCellConfig(D, 0),
    ],
)
def test_bad_configs_are_rejected(make):
    with pytest.raises(ValueError):
        make()


# ------------------------------------------------- the fused PyTorch modules compute the same thing


FUSED = {
    "lstm": lambda **kw: nn.LSTM(D, H, batch_first=True, **kw),
    "gru": lambda **kw: nn.GRU(D, H, batch_first=True, **kw),
    "rnn_tanh": lambda **kw: nn.RNN(D, H, batch_first=True, **kw),
    "rnn_relu": lambda **kw: nn.RNN(D, H, nonlinearity="relu", batch_first=True, **kw),
}


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind", list(FUSED))
def test_fused_module_equals_reference_cell(kind, bias):
    torch.manual_seed(6)
    module = FUSED[kind](bias=bias)
    cell = from_torch(module)  # GRU: reset_after=True, PyTorch's variant
    x = torch.randn(B, TX, D)
    h0 = torch.randn(1, B, H)
    if kind == "lstm":
        c0 = torch.randn(1, B, H)
        expected, _ = module(x, (h0, c0))
        got = unroll(cell, x, (h0[0], c0[0]))
    else:
        expected, _ = module(x, h0)
        got = unroll(cell, x, h0[0])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_notes_gru_is_not_pytorch_gru():
    """Γr before the matmul (notes, Cho et al.) vs after it (PyTorch): different functions ..."""
    torch.manual_seed(7)
    module = nn.GRU(D, H, batch_first=True)
    x = 2 * torch.randn(B, TX, D)
    pytorch_variant = unroll(from_torch(module, reset_after=True), x)
    notes_variant = unroll(from_torch(module, reset_after=False), x)
    torch.testing.assert_close(pytorch_variant, module(x)[0], atol=1e-5, rtol=0)
    assert (pytorch_variant - notes_variant).abs().max() > 1e-3

    # ... which agree when the relevance gate is held open (Γr = 1): the gate's placement is the
    # only difference between them.
    with torch.no_grad():
        module.bias_hh_l0[:H] = 50.0  # r = σ(... + 50) = 1 in float32
    open_notes = unroll(from_torch(module, reset_after=False), x)
    torch.testing.assert_close(open_notes, module(x)[0], atol=1e-5, rtol=0)


def test_from_torch_rejects_what_a_cell_cannot_hold():
    for module in (
        nn.LSTM(D, H, num_layers=2),
        nn.GRU(D, H, bidirectional=True),
        nn.LSTM(D, H, proj_size=2),
    ):
        with pytest.raises(ValueError, match="1-layer"):
            from_torch(module)
    with pytest.raises(TypeError):
        from_torch(nn.Linear(D, H))


def test_from_torch_keeps_dtype():
    cell = from_torch(nn.LSTM(D, H).double())
    assert cell.W_c.dtype == torch.float64


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_encoder_directions_are_the_reference_cells(kind):
    """ner.nn.encoder's fused layers implement the seed equations, forward and backward."""
    torch.manual_seed(8)
    encoder = RNNEncoder(EncoderConfig(input_size=D, hidden_size=H, cell=kind)).eval()
    forward_rnn, backward_rnn = (m for m in encoder.modules() if isinstance(m, nn.RNNBase))
    x = torch.randn(B, TX, D)
    a = encoder(x, torch.full((B,), TX))  # (B, Tx, 2H), every sentence full length
    torch.testing.assert_close(a[..., :H], unroll(from_torch(forward_rnn), x), atol=1e-5, rtol=0)
    backward = unroll(from_torch(backward_rnn), x.flip(1)).flip(1)  # a<t> from x<Tx>..x<t>
    torch.testing.assert_close(a[..., H:], backward, atol=1e-5, rtol=0)


# ------------------------------------------------------------------ backpropagation through time


def exploding_rnn() -> RNNCell:
    torch.manual_seed(9)
    cell = RNNCell(RNNCellConfig(D, H, activation="relu")).double()
    with torch.no_grad():
        cell.W_aa.copy_(3.0 * torch.eye(H, dtype=torch.float64))  # |da<t>/da<t-1>| = 3 per step
        cell.b_a.fill_(1.0)
    return cell


def test_bptt_gradient_reaches_x1_and_clipping_caps_the_norm():
    cell = exploding_rnn()
    tx = 30
    x = torch.rand(2, tx, D, dtype=torch.float64, requires_grad=True)
    loss = unroll(cell, x)[:, -1].sum()  # a loss at step Tx only (linear: nothing saturates)
    loss.backward()
    grad_x1 = x.grad[:, 0]
    assert bool(torch.isfinite(grad_x1).all())
    assert grad_x1.abs().max() > 0  # x<1> influences ŷ<Tx>

    # the seed notes' cure for exploding gradients: rescale when the norm passes a threshold
    total = nn.utils.clip_grad_norm_(cell.parameters(), max_norm=1.0)
    assert total > 1e6  # it really exploded (3^29 growth from step 1 to Tx)
    clipped = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in cell.parameters()]))
    assert clipped <= 1.0 + 1e-6


def test_vanishing_gradient_in_a_contracting_tanh_rnn():
    """The notes' 'local influences': with small W_aa, ŷ<Tx> barely depends on x<1>."""
    torch.manual_seed(10)
    cell = RNNCell(RNNCellConfig(D, H)).double()
    with torch.no_grad():
        cell.W_aa.mul_(0.3)
    x = torch.randn(1, 20, D, dtype=torch.float64, requires_grad=True)
    unroll(cell, x)[:, -1].sum().backward()
    first, last = x.grad[0, 0].norm(), x.grad[0, -1].norm()
    assert last > 0 and first < 1e-6 * last
