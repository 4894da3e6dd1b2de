"""ner.nn.cells: each cell against an independent NumPy version of the seed equations, the fused
nn.RNN / nn.GRU / nn.LSTM against the cells (after from_torch), the trainable SeedRNN layer against
both, and BPTT sanity (clipping)."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest
import torch
from torch import nn

from ner.nn.cells import (
    SEED_CELLS,
    SEED_CELLS_WITH_MEMORY,
    GRUCell,
    GRUCellConfig,
    LSTMCell,
    LSTMCellConfig,
    RNNCell,
    RNNCellConfig,
    SeedRNN,
    SeedRNNConfig,
    SimpleGRUCell,
    SimpleGRUCellConfig,
    from_torch,
    unroll,
)
from ner.nn.config import CELLS_WITH_MEMORY, Cell
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


def np_gru_simple(p, x, c0):
    h = c0.shape[1]
    c, out = c0, []
    for t in range(x.shape[1]):
        xt = x[:, t]
        gate_u = sigmoid(c @ p["W_u"][:, :h].T + xt @ p["W_u"][:, h:].T + p["b_u"])
        c_tilde = np.tanh(c @ p["W_c"][:, :h].T + xt @ p["W_c"][:, h:].T + p["b_c"])
        c = gate_u * c_tilde + (1.0 - gate_u) * c
        out.append(c)
    return np.stack(out, axis=1)


def np_lstm(p, x, a0, c0, squash, peephole=False):
    h = a0.shape[1]
    a, c, out = a0, c0, []
    for t in range(x.shape[1]):
        xt = x[:, t]
        z = {g: a @ p[f"W_{g}"][:, :h].T + xt @ p[f"W_{g}"][:, h:].T + p[f"b_{g}"] for g in "cufo"}
        if peephole:  # the gates also see c<t-1>, elementwise
            z = {g: z[g] + (p[f"p_{g}"] * c if g != "c" else 0.0) for g in "cufo"}
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


def test_simple_gru_cell_matches_numpy(x):
    torch.manual_seed(11)
    cell = SimpleGRUCell(SimpleGRUCellConfig(D, H)).double()
    c0 = torch.randn(B, H, dtype=torch.float64)
    expected = np_gru_simple(params(cell), x.numpy(), c0.numpy())
    np.testing.assert_allclose(unroll(cell, x, c0).detach().numpy(), expected, atol=1e-12)


def test_peephole_lstm_cell_matches_numpy(x):
    torch.manual_seed(12)
    cell = LSTMCell(LSTMCellConfig(D, H, peephole=True)).double()
    a0, c0 = torch.randn(B, H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    p = params(cell)
    expected = np_lstm(p, x.numpy(), a0.numpy(), c0.numpy(), True, peephole=True)
    got = unroll(cell, x, (a0, c0)).detach().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)
    # the peepholes matter: without them the output differs
    plain = np_lstm(p, x.numpy(), a0.numpy(), c0.numpy(), True, peephole=False)
    assert np.abs(plain - expected).max() > 1e-3


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


# ------------------------------------------------------- the trainable layer, ner.nn.cells.SeedRNN


def numpy_layer(layer: SeedRNN, x: np.ndarray, a0: np.ndarray, c0: np.ndarray) -> np.ndarray:
    """The NumPy equations of the layer's cell, from its parameters."""
    p = {name.removeprefix("cell."): v for name, v in params(layer).items()}
    base = layer.config.base
    if base.startswith("seed_rnn_"):
        g = np.tanh if base.endswith("tanh") else (lambda z: np.maximum(z, 0.0))
        return np_rnn(p, x, a0, g)
    if base == "seed_gru_simple":
        return np_gru_simple(p, x, a0)
    if base == "seed_gru":
        return np_gru(p, x, a0, reset_after=False)
    return np_lstm(p, x, a0, c0, True, peephole=base == "seed_lstm_peephole")


@pytest.mark.parametrize("name", SEED_CELLS)
def test_seed_layer_matches_numpy(x, name):
    torch.manual_seed(13)
    layer = SeedRNN(SeedRNNConfig(name, D, H)).double()
    a0, c0 = torch.randn(1, B, H, dtype=torch.float64), torch.randn(1, B, H, dtype=torch.float64)
    hx = (a0, c0) if name in SEED_CELLS_WITH_MEMORY else a0
    a, hx_n = layer(x, hx)
    expected = numpy_layer(layer, x.numpy(), a0[0].numpy(), c0[0].numpy())
    assert a.shape == (B, TX, H)
    np.testing.assert_allclose(a.detach().numpy(), expected, atol=1e-12)
    final = hx_n[0] if isinstance(hx_n, tuple) else hx_n
    np.testing.assert_allclose(final[0].detach().numpy(), expected[:, -1], atol=1e-12)
    # the layer is its step cell run over time, gradients included
    x_grad = x.clone().requires_grad_(True)
    layer(x_grad, hx)[0].square().sum().backward()
    grad_layer = x_grad.grad
    x_grad.grad = None
    start = (a0[0], c0[0]) if name in SEED_CELLS_WITH_MEMORY else a0[0]
    unroll(layer.cell, x_grad, start).square().sum().backward()
    torch.testing.assert_close(grad_layer, x_grad.grad, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", SEED_CELLS)
def test_seed_layer_defaults_and_empty_sequence(name):
    layer = SeedRNN(SeedRNNConfig(name, D, H))
    x = torch.randn(B, TX, D)
    a, hx_n = layer(x)
    zeros = torch.zeros(1, B, H)
    torch.testing.assert_close(a, layer(x, (zeros, zeros) if isinstance(hx_n, tuple) else zeros)[0])
    empty, hx_0 = layer(x[:, :0])
    assert empty.shape == (B, 0, H)
    torch.testing.assert_close(hx_0[0] if isinstance(hx_0, tuple) else hx_0, zeros)


def torch_into_seed(module: nn.RNNBase, name: str) -> SeedRNN:
    """A SeedRNN holding the weights of a fused 1-layer module (via from_torch)."""
    layer = SeedRNN(SeedRNNConfig(name, module.input_size, module.hidden_size)).to(
        module.weight_ih_l0
    )
    layer.cell.load_state_dict(from_torch(module).state_dict())
    return layer


def test_seed_lstm_equals_torch_lstm_in_float64():
    torch.manual_seed(14)
    module = nn.LSTM(D, H, batch_first=True).double()
    layer = torch_into_seed(module, "seed_lstm")
    x = torch.randn(B, 9, D, dtype=torch.float64)
    hx = (torch.randn(1, B, H, dtype=torch.float64), torch.randn(1, B, H, dtype=torch.float64))
    want, (h_n, c_n) = module(x, hx)
    got, (a_n, c_got) = layer(x, hx)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    torch.testing.assert_close(a_n, h_n, atol=1e-6, rtol=0)
    torch.testing.assert_close(c_got, c_n, atol=1e-6, rtol=0)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_seed_rnn_equals_torch_rnn_in_float64(nonlinearity):
    torch.manual_seed(15)
    module = nn.RNN(D, H, nonlinearity=nonlinearity, batch_first=True).double()
    layer = torch_into_seed(module, f"seed_rnn_{nonlinearity}")
    x = torch.randn(B, 9, D, dtype=torch.float64)
    h0 = torch.randn(1, B, H, dtype=torch.float64)
    want, h_n = module(x, h0)
    got, a_n = layer(x, h0)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    torch.testing.assert_close(a_n, h_n, atol=1e-6, rtol=0)


def test_seed_gru_is_the_notes_variant_not_cudnn():
    """seed_gru gates c<t-1> before W_cc: it equals nn.GRU only with the relevance gate open."""
    torch.manual_seed(16)
    module = nn.GRU(D, H, batch_first=True).double()
    layer = SeedRNN(SeedRNNConfig("seed_gru", D, H)).double()
    layer.cell.load_state_dict(from_torch(module, reset_after=False).state_dict())
    x = 2 * torch.randn(B, TX, D, dtype=torch.float64)
    assert (layer(x)[0] - module(x)[0]).abs().max() > 1e-3
    with torch.no_grad():
        module.bias_hh_l0[:H] = 80.0  # Γr = 1
    layer.cell.load_state_dict(from_torch(module, reset_after=False).state_dict())
    torch.testing.assert_close(layer(x)[0], module(x)[0], atol=1e-10, rtol=0)


def test_seed_cell_names_agree_with_the_encoder_config():
    assert set(SEED_CELLS) <= set(get_args(Cell))
    assert {c for c in SEED_CELLS if c in CELLS_WITH_MEMORY} == SEED_CELLS_WITH_MEMORY


def test_seed_config_rejects_what_it_cannot_build():
    with pytest.raises(ValueError, match="unknown seed cell"):
        SeedRNNConfig("lstm", D, H)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hand-written BPTT"):
        SeedRNNConfig("seed_gru", D, H, bptt="manual")
    with pytest.raises(ValueError):
        SeedRNNConfig("seed_lstm", 0, H)
