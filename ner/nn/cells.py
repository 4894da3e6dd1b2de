"""Readable reference recurrent cells, written in the seed notes' notation.

These are for reading and for checking, not for training speed: ``ner.nn.encoder`` runs PyTorch's
fused ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``. ``from_torch`` copies a fused 1-layer module's weights
into the matching cell here, so a test can show that the fused kernels compute the seed equations.

Notation (seed notes, week 1): x<t> (B, n_x) is the input at step t = 1..Tx, a<t> (B, n_a) the
activation passed to the next step, c<t> a memory cell, c~<t> its candidate, and Γu, Γr, Γf, Γo the
update, relevance (reset), forget and output gates, each a sigmoid in (0, 1). W_c [a<t-1>, x<t>]
multiplies one matrix W_c (n_a, n_a + n_x) by the stacked vector [a<t-1>; x<t>]. ``*`` is the
elementwise product. Sizes: D = n_x = input_size, H = n_a = hidden_size.

Every cell has ``initial_state(x)`` (zeros, the notes' a<0> = 0) and
``forward(x_t, state) -> (a<t>, state)``; ``unroll`` runs a cell over t = 1..Tx (forward
propagation through time). Backpropagation through time is then just autograd over the unrolled
graph.

References: the seed notes (Andrew Ng, Sequence Models, week 1); Cho et al. 2014, "Learning Phrase
Representations using RNN Encoder-Decoder for Statistical Machine Translation" (GRU); Hochreiter &
Schmidhuber 1997, "Long Short-Term Memory" (LSTM).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, TypeAlias

import torch
from torch import Tensor, nn

Activation: TypeAlias = Literal["tanh", "relu"]
State: TypeAlias = Tensor | tuple[Tensor, Tensor]  # a<t> (B, H), or (a<t>, c<t>) for the LSTM


def _check_sizes(input_size: int, hidden_size: int) -> None:
    if input_size < 1 or hidden_size < 1:
        raise ValueError(
            f"input_size and hidden_size must be >= 1, got {input_size} and {hidden_size}"
        )


def _param(hidden_size: int, *shape: int) -> nn.Parameter:
    # PyTorch's default for its RNN modules: U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias.
    bound = 1.0 / math.sqrt(hidden_size)
    return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))


def _affine(w: Tensor, b: Tensor, a_prev: Tensor, x_t: Tensor) -> Tensor:
    """W [a<t-1>, x<t>] + b: w (H, H + D), b (H,), a_prev (B, H), x_t (B, D) -> (B, H)."""
    return torch.cat([a_prev, x_t], dim=-1) @ w.T + b


# --------------------------------------------------------------------------------------------- RNN


@dataclass(frozen=True)
class RNNCellConfig:
    input_size: int  # n_x
    hidden_size: int  # n_a
    activation: Activation = "tanh"  # g
    output_size: int = 0  # n_y of the optional readout ŷ<t>; 0 = no readout

    def __post_init__(self) -> None:
        _check_sizes(self.input_size, self.hidden_size)
        if self.activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be 'tanh' or 'relu', got {self.activation!r}")
        if self.output_size < 0:
            raise ValueError(f"output_size must be >= 0, got {self.output_size}")


class RNNCell(nn.Module):
    """The basic RNN unit of the seed notes::

        a<t> = g(W_aa a<t-1> + W_ax x<t> + b_a)       g = tanh or relu
        ŷ<t> = softmax(W_ya a<t> + b_y)               (optional readout, see ``readout``)

    W_aa (H, H), W_ax (H, D), b_a (H,), W_ya (n_y, H), b_y (n_y,). The same weights are shared by
    every time step. PyTorch's ``nn.RNN`` has W_aa = weight_hh, W_ax = weight_ih and two biases
    whose sum is b_a.
    """

    def __init__(self, config: RNNCellConfig) -> None:
        super().__init__()
        self.config = config
        d, h = config.input_size, config.hidden_size
        self.W_aa = _param(h, h, h)
        self.W_ax = _param(h, h, d)
        self.b_a = _param(h, h)
        self.g = torch.tanh if config.activation == "tanh" else torch.relu
        if config.output_size:
            self.W_ya = _param(h, config.output_size, h)
            self.b_y = _param(h, config.output_size)

    def initial_state(self, x: Tensor) -> Tensor:
        """a<0> = 0: x (B, ...) -> (B, H)."""
        return self.W_aa.new_zeros(x.shape[0], self.config.hidden_size)

    def forward(self, x_t: Tensor, a_prev: Tensor) -> tuple[Tensor, Tensor]:
        """x<t> (B, D), a<t-1> (B, H) -> (a<t>, a<t>), both (B, H)."""
        a_t = self.g(a_prev @ self.W_aa.T + x_t @ self.W_ax.T + self.b_a)
        return a_t, a_t

    def readout(self, a: Tensor) -> Tensor:
        """ŷ = softmax(W_ya a + b_y): a (..., H) -> probabilities (..., n_y).

        Works on one step (B, H) or on ``unroll``'s output (B, Tx, H). For a training loss use
        ``log_softmax`` of the same logits instead (numerically safer than log of the softmax).
        """
        if not self.config.output_size:
            raise ValueError("this RNNCell has no readout: build it with output_size > 0")
        return torch.softmax(a @ self.W_ya.T + self.b_y, dim=-1)


# --------------------------------------------------------------------------------------------- GRU


@dataclass(frozen=True)
class GRUCellConfig:
    input_size: int  # n_x
    hidden_size: int  # n_a (= n_c: for the GRU a<t> = c<t>)
    # False: the notes / Cho et al. 2014, gate c<t-1> before the matmul, W_c [Γr * c<t-1>, x<t>].
    # True: PyTorch / cuDNN, gate after it, Γr * (W_cc c<t-1> + b_cr) (an extra bias b_cr).
    reset_after: bool = False

    def __post_init__(self) -> None:
        _check_sizes(self.input_size, self.hidden_size)


class GRUCell(nn.Module):
    """The full GRU of the seed notes (Cho et al. 2014)::

        Γu   = σ(W_u [c<t-1>, x<t>] + b_u)                 update gate
        Γr   = σ(W_r [c<t-1>, x<t>] + b_r)                 relevance (reset) gate
        c~<t> = tanh(W_c [Γr * c<t-1>, x<t>] + b_c)        candidate
        c<t> = Γu * c~<t> + (1 - Γu) * c<t-1>
        a<t> = c<t>

    W_u, W_r, W_c (H, H + D); b_u, b_r, b_c (H,). Writing W_c = [W_cc | W_cx] (the columns that
    meet c<t-1> and x<t>), ``reset_after=True`` computes PyTorch's candidate instead::

        c~<t> = tanh(Γr * (W_cc c<t-1> + b_cr) + W_cx x<t> + b_c)

    which is a different function (the gate scales the bias b_cr and acts after the matmul); the
    two agree only when Γr = 1. Gate map to ``nn.GRU`` (weight rows in the order r, z, n)::

        notes    Γr   Γu      c~   c<t> = a<t>
        PyTorch  r    1 - z   n    h

    PyTorch's z is the *keep* gate, h' = (1 - z) * n + z * h, so ``from_torch`` copies -W_z and
    -b_z into W_u, b_u: σ(-s) = 1 - σ(s).
    """

    def __init__(self, config: GRUCellConfig) -> None:
        super().__init__()
        self.config = config
        d, h = config.input_size, config.hidden_size
        self.W_u, self.b_u = _param(h, h, h + d), _param(h, h)
        self.W_r, self.b_r = _param(h, h, h + d), _param(h, h)
        self.W_c, self.b_c = _param(h, h, h + d), _param(h, h)
        if config.reset_after:
            self.b_cr = _param(h, h)

    def initial_state(self, x: Tensor) -> Tensor:
        """c<0> = 0: x (B, ...) -> (B, H)."""
        return self.W_c.new_zeros(x.shape[0], self.config.hidden_size)

    def forward(self, x_t: Tensor, c_prev: Tensor) -> tuple[Tensor, Tensor]:
        """x<t> (B, D), c<t-1> (B, H) -> (a<t>, c<t>), both (B, H) and equal."""
        gamma_u = torch.sigmoid(_affine(self.W_u, self.b_u, c_prev, x_t))  # (B, H)
        gamma_r = torch.sigmoid(_affine(self.W_r, self.b_r, c_prev, x_t))  # (B, H)
        if self.config.reset_after:
            h = self.config.hidden_size
            w_cc, w_cx = self.W_c[:, :h], self.W_c[:, h:]
            recurrent = c_prev @ w_cc.T + self.b_cr  # (B, H)
            c_tilde = torch.tanh(gamma_r * recurrent + x_t @ w_cx.T + self.b_c)
        else:
            c_tilde = torch.tanh(_affine(self.W_c, self.b_c, gamma_r * c_prev, x_t))
        c_t = gamma_u * c_tilde + (1 - gamma_u) * c_prev
        return c_t, c_t


# -------------------------------------------------------------------------------------------- LSTM


@dataclass(frozen=True)
class LSTMCellConfig:
    input_size: int  # n_x
    hidden_size: int  # n_a = n_c
    # True: a<t> = Γo * tanh(c<t>) (Hochreiter & Schmidhuber 1997, PyTorch);
    # False: a<t> = Γo * c<t> as the seed notes' slide writes it.
    squash_output: bool = True

    def __post_init__(self) -> None:
        _check_sizes(self.input_size, self.hidden_size)


class LSTMCell(nn.Module):
    """The LSTM of the seed notes (Hochreiter & Schmidhuber 1997)::

        c~<t> = tanh(W_c [a<t-1>, x<t>] + b_c)          candidate
        Γu   = σ(W_u [a<t-1>, x<t>] + b_u)              update (input) gate
        Γf   = σ(W_f [a<t-1>, x<t>] + b_f)              forget gate
        Γo   = σ(W_o [a<t-1>, x<t>] + b_o)              output gate
        c<t> = Γu * c~<t> + Γf * c<t-1>
        a<t> = Γo * tanh(c<t>)

    W_* (H, H + D), b_* (H,). The notes' slide writes a<t> = Γo * c<t>; PyTorch, like the original
    paper, squashes c<t> with tanh first. ``squash_output`` chooses (default True, PyTorch's).
    Unlike the GRU, the LSTM carries two vectors: the state is (a<t>, c<t>). Gate map to
    ``nn.LSTM`` (weight rows in the order i, f, g, o)::

        notes    Γu   Γf   c~   Γo   c<t>   a<t>
        PyTorch  i    f    g    o    c      h
    """

    def __init__(self, config: LSTMCellConfig) -> None:
        super().__init__()
        self.config = config
        d, h = config.input_size, config.hidden_size
        self.W_c, self.b_c = _param(h, h, h + d), _param(h, h)
        self.W_u, self.b_u = _param(h, h, h + d), _param(h, h)
        self.W_f, self.b_f = _param(h, h, h + d), _param(h, h)
        self.W_o, self.b_o = _param(h, h, h + d), _param(h, h)

    def initial_state(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(a<0>, c<0>) = (0, 0): x (B, ...) -> two (B, H) tensors."""
        zeros = self.W_c.new_zeros(x.shape[0], self.config.hidden_size)
        return zeros, zeros

    def forward(
        self, x_t: Tensor, state: tuple[Tensor, Tensor]
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """x<t> (B, D), (a<t-1>, c<t-1>) (B, H) each -> (a<t>, (a<t>, c<t>))."""
        a_prev, c_prev = state
        c_tilde = torch.tanh(_affine(self.W_c, self.b_c, a_prev, x_t))  # (B, H)
        gamma_u = torch.sigmoid(_affine(self.W_u, self.b_u, a_prev, x_t))
        gamma_f = torch.sigmoid(_affine(self.W_f, self.b_f, a_prev, x_t))
        gamma_o = torch.sigmoid(_affine(self.W_o, self.b_o, a_prev, x_t))
        c_t = gamma_u * c_tilde + gamma_f * c_prev
        a_t = gamma_o * (torch.tanh(c_t) if self.config.squash_output else c_t)
        return a_t, (a_t, c_t)


Cell: TypeAlias = RNNCell | GRUCell | LSTMCell


# ---------------------------------------------------------------------------------------- unroll


def unroll(cell: Cell, x: Tensor, a0: State | None = None) -> Tensor:
    """Forward propagation through time: a<t> for t = 1..Tx.

    x (B, Tx, D) -> a (B, Tx, H). ``a0`` is the initial state: a<0> (B, H), or for the LSTM
    (a<0>, c<0>) or just a<0> (then c<0> = 0); None means zeros. Gradients flow back through every
    step (BPTT) because this is an ordinary autograd graph.
    """
    state = cell.initial_state(x) if a0 is None else a0
    if isinstance(cell, LSTMCell) and isinstance(state, Tensor):
        state = (state, torch.zeros_like(state))
    steps = []
    for t in range(x.shape[1]):
        a_t, state = cell(x[:, t], state)  # (B, H)
        steps.append(a_t)
    if not steps:
        return x.new_zeros(x.shape[0], 0, cell.config.hidden_size)
    return torch.stack(steps, dim=1)


# ------------------------------------------------------------------------------------ from_torch


def _torch_parts(module: nn.RNNBase) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """weight_ih (G*H, D), weight_hh (G*H, H), b_ih, b_hh (G*H,) of a 1-layer, 1-way module."""
    if module.num_layers != 1 or module.bidirectional or module.proj_size:
        raise ValueError(
            "from_torch needs a 1-layer, unidirectional module without projection, got "
            f"num_layers={module.num_layers}, bidirectional={module.bidirectional}, "
            f"proj_size={module.proj_size}"
        )
    w_ih, w_hh = (module.get_parameter(f"weight_{k}_l0").detach() for k in ("ih", "hh"))
    if module.bias:
        b_ih, b_hh = (module.get_parameter(f"bias_{k}_l0").detach() for k in ("ih", "hh"))
        return w_ih, w_hh, b_ih, b_hh
    zeros = w_ih.new_zeros(w_ih.shape[0])
    return w_ih, w_hh, zeros, zeros


def _copy(cell: nn.Module, values: dict[str, Tensor]) -> None:
    with torch.no_grad():
        for name, value in values.items():
            getattr(cell, name).copy_(value)


def from_torch(module: nn.RNN | nn.GRU | nn.LSTM, *, reset_after: bool = True) -> Cell:
    """A reference cell with the weights of a fused 1-layer ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM``.

    ``unroll(from_torch(m), x)`` equals ``m(x)[0]`` (batch_first) when ``m`` is an RNN or LSTM,
    and when ``m`` is a GRU and ``reset_after`` is True (PyTorch's variant). With
    ``reset_after=False`` a GRU's weights go into the notes' GRU (b_c = b_in + b_hn), which is a
    different function; ``reset_after`` is ignored for the other modules. The cell gets the
    module's dtype and device.
    """
    if not isinstance(module, nn.RNN | nn.GRU | nn.LSTM):
        raise TypeError(f"from_torch takes nn.RNN, nn.GRU or nn.LSTM, got {type(module).__name__}")
    w_ih, w_hh, b_ih, b_hh = _torch_parts(module)
    d, h = module.input_size, module.hidden_size

    def stacked(i: int) -> Tensor:  # gate i's W [a<t-1>, x<t>] (H, H + D)
        return torch.cat([w_hh[i * h : (i + 1) * h], w_ih[i * h : (i + 1) * h]], dim=1)

    def bias(i: int) -> Tensor:
        return b_ih[i * h : (i + 1) * h] + b_hh[i * h : (i + 1) * h]

    if isinstance(module, nn.LSTM):  # rows i, f, g, o
        cell: Cell = LSTMCell(LSTMCellConfig(d, h)).to(w_ih)  # dtype and device
        _copy(cell, {"W_u": stacked(0), "b_u": bias(0), "W_f": stacked(1), "b_f": bias(1)})
        _copy(cell, {"W_c": stacked(2), "b_c": bias(2), "W_o": stacked(3), "b_o": bias(3)})
    elif isinstance(module, nn.GRU):  # rows r, z, n; Γu = 1 - z = σ(-(W_z [h, x] + b_z))
        cell = GRUCell(GRUCellConfig(d, h, reset_after=reset_after)).to(w_ih)  # dtype and device
        _copy(cell, {"W_r": stacked(0), "b_r": bias(0), "W_u": -stacked(1), "b_u": -bias(1)})
        _copy(cell, {"W_c": stacked(2)})
        b_in, b_hn = b_ih[2 * h :], b_hh[2 * h :]
        if reset_after:
            _copy(cell, {"b_c": b_in, "b_cr": b_hn})
        else:
            _copy(cell, {"b_c": b_in + b_hn})
    else:
        activation: Activation = "tanh" if module.nonlinearity == "tanh" else "relu"
        cell = RNNCell(RNNCellConfig(d, h, activation=activation)).to(w_ih)  # dtype and device
        _copy(cell, {"W_aa": w_hh, "W_ax": w_ih, "b_a": b_ih + b_hh})
    return cell
