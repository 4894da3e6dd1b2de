"""Recurrent cells written in the seed notes' notation, readable and trainable.

Two forms of each cell live here:

* a **step** module (``RNNCell``, ``SimpleGRUCell``, ``GRUCell``, ``LSTMCell``) that computes one
  time step exactly as the notes write it, for reading and for checking. ``from_torch`` copies a
  fused 1-layer ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` into the matching cell, so a test can show
  that the fused kernels compute the seed equations;
* a **layer**, ``SeedRNN``, that runs one of those cells over a whole sequence fast enough to train
  a tagger on a CPU, with ``nn.LSTM``'s calling convention, so ``ner.nn.encoder`` stacks it like the
  fused modules (``cell: seed_lstm`` in a config). It keeps the step module's parameters and only
  reorganises the arithmetic: the input half W_x x<t> of every gate, for every step, is one matrix
  product before the loop, and the loop over t (which has to be sequential) is a TorchScript
  function, so it runs without the Python interpreter and exports to ONNX as a ``Loop`` whose trip
  count is the sequence length (tracing a Python loop would freeze Tx).

Notation (seed notes, week 1): x<t> (B, n_x) is the input at step t = 1..Tx, a<t> (B, n_a) the
activation passed to the next step, c<t> a memory cell, c~<t> its candidate, and Γu, Γr, Γf, Γo the
update, relevance (reset), forget and output gates, each a sigmoid in (0, 1). W_c [a<t-1>, x<t>]
multiplies one matrix W_c (n_a, n_a + n_x) by the stacked vector [a<t-1>; x<t>], so
W_c = [W_ca | W_cx] (the notes' W_a = [W_aa | W_ax]). ``*`` is the elementwise product. Sizes:
D = n_x = input_size, H = n_a = hidden_size.

Every step cell has ``initial_state(x)`` (zeros, the notes' a<0> = 0) and
``forward(x_t, state) -> (a<t>, state)``; ``unroll`` runs a cell over t = 1..Tx (forward
propagation through time). Backpropagation through time is autograd over the unrolled graph, or
the hand-written recursion of ``ner.nn.bptt`` (``SeedRNNConfig.bptt = "manual"``).

References: the seed notes (Andrew Ng, Sequence Models, week 1); Cho et al. 2014, "Learning Phrase
Representations using RNN Encoder-Decoder for Statistical Machine Translation" (GRU); Hochreiter &
Schmidhuber 1997, "Long Short-Term Memory" (LSTM); Gers & Schmidhuber 2000, "Recurrent Nets that
Time and Count" (peephole connections).
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, get_args

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

    def blocks(self) -> tuple[Tensor, Tensor, Tensor]:
        """W_a = [W_aa | W_ax] split for the layer: W_aa (H, H), W_ax (H, D), b_a (H,)."""
        return self.W_aa, self.W_ax, self.b_a


def _split_blocks(cell: nn.Module, gates: str) -> tuple[Tensor, Tensor, Tensor]:
    """The gates' W_g = [W_ga | W_gx] stacked in ``gates`` order: (G*H, H), (G*H, D), (G*H,)."""
    h = cell.config.hidden_size
    weights = [getattr(cell, f"W_{g}") for g in gates]
    w_a = torch.cat([w[:, :h] for w in weights])
    w_x = torch.cat([w[:, h:] for w in weights])
    return w_a, w_x, torch.cat([getattr(cell, f"b_{g}") for g in gates])


# ---------------------------------------------------------------------------------- simplified GRU


@dataclass(frozen=True)
class SimpleGRUCellConfig:
    input_size: int  # n_x
    hidden_size: int  # n_a = n_c

    def __post_init__(self) -> None:
        _check_sizes(self.input_size, self.hidden_size)


class SimpleGRUCell(nn.Module):
    """The notes' simplified GRU, with the update gate Γu only::

        c~<t> = tanh(W_c [c<t-1>, x<t>] + b_c)        candidate
        Γu   = σ(W_u [c<t-1>, x<t>] + b_u)            update gate
        c<t> = Γu * c~<t> + (1 - Γu) * c<t-1>
        a<t> = c<t>

    When Γu ≈ 0 the cell copies c<t-1> forward unchanged (∂c<t>/∂c<t-1> ≈ I), which is how a GRU
    carries "the cat was singular" across many steps without the gradient vanishing.
    """

    GATES = "uc"  # the layer's gate block order

    def __init__(self, config: SimpleGRUCellConfig) -> None:
        super().__init__()
        self.config = config
        d, h = config.input_size, config.hidden_size
        self.W_u, self.b_u = _param(h, h, h + d), _param(h, h)
        self.W_c, self.b_c = _param(h, h, h + d), _param(h, h)

    def initial_state(self, x: Tensor) -> Tensor:
        """c<0> = 0: x (B, ...) -> (B, H)."""
        return self.W_c.new_zeros(x.shape[0], self.config.hidden_size)

    def forward(self, x_t: Tensor, c_prev: Tensor) -> tuple[Tensor, Tensor]:
        """x<t> (B, D), c<t-1> (B, H) -> (a<t>, c<t>), both (B, H) and equal."""
        c_tilde = torch.tanh(_affine(self.W_c, self.b_c, c_prev, x_t))  # (B, H)
        gamma_u = torch.sigmoid(_affine(self.W_u, self.b_u, c_prev, x_t))  # (B, H)
        c_t = gamma_u * c_tilde + (1 - gamma_u) * c_prev
        return c_t, c_t

    def blocks(self) -> tuple[Tensor, Tensor, Tensor]:
        """[W_u; W_c] split into the c<t-1> and x<t> columns: (2H, H), (2H, D), (2H,)."""
        return _split_blocks(self, self.GATES)


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

    Why the notes' placement costs more: Γr * c<t-1> must be known before W_cc can multiply it, so
    a step needs two dependent matrix products (one for Γu and Γr, one for c~<t>), where cuDNN's
    variant does all three gates' W_·c c<t-1> in one product. ``bench/gru_variants.py`` measures
    whether the two functions differ in quality on CoNLL-2003 (docs/benchmarks.md: they do not,
    within noise).
    """

    GATES = "urc"  # the layer's gate block order

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

    def blocks(self) -> tuple[Tensor, Tensor, Tensor]:
        """[W_u; W_r; W_c] split into the c<t-1> and x<t> columns: (3H, H), (3H, D), (3H,)."""
        if self.config.reset_after:
            raise ValueError("SeedRNN runs the notes' GRU (reset_after=False) only")
        return _split_blocks(self, self.GATES)


# -------------------------------------------------------------------------------------------- LSTM


@dataclass(frozen=True)
class LSTMCellConfig:
    input_size: int  # n_x
    hidden_size: int  # n_a = n_c
    # True: a<t> = Γo * tanh(c<t>) (Hochreiter & Schmidhuber 1997, PyTorch, the slides);
    # False: a<t> = Γo * c<t> as one seed file writes it.
    squash_output: bool = True
    # True: every gate also sees c<t-1> through a diagonal weight (peephole connections).
    peephole: bool = False

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

    W_* (H, H + D), b_* (H,). Which LSTM this is: the seed files disagree. The lecture slides (and
    Hochreiter & Schmidhuber, and PyTorch) feed a<t-1> to the candidate and squash the output,
    a<t> = Γo * tanh(c<t>); one set of notes writes c~<t> = tanh(W_c [c<t-1>, x<t>] + b_c) and
    a<t> = Γo * c<t>. The first is implemented: c<t-1> in the candidate is a copying slip from the
    GRU (where a<t> = c<t>, so the two coincide), and without the tanh a<t> is unbounded, because
    c<t> can grow by up to 1 per step, so activations and gradients scale with Tx. The unsquashed
    output stays available as ``squash_output=False`` to show that difference; ``SeedRNN`` always
    squashes, so that ``seed_lstm`` and ``nn.LSTM`` are the same function.

    With ``peephole=True`` (the notes' "peephole connection", Gers & Schmidhuber 2000) every gate
    also sees the previous memory cell through a diagonal weight p_g (H,), so the k-th element of
    c<t-1> affects only the k-th element of each gate::

        Γu = σ(W_u [a<t-1>, x<t>] + p_u * c<t-1> + b_u)     (likewise Γf with p_f, Γo with p_o)

    Gers & Schmidhuber let the output gate see c<t> instead; the notes, followed here, use c<t-1>
    for all three, which keeps the three gates one matrix product. Unlike the GRU, the LSTM carries
    two vectors: the state is (a<t>, c<t>). Gate map to ``nn.LSTM`` (weight rows in the order
    i, f, g, o)::

        notes    Γu   Γf   c~   Γo   c<t>   a<t>
        PyTorch  i    f    g    o    c      h
    """

    GATES = "cufo"  # the layer's gate block order

    def __init__(self, config: LSTMCellConfig) -> None:
        super().__init__()
        self.config = config
        d, h = config.input_size, config.hidden_size
        self.W_c, self.b_c = _param(h, h, h + d), _param(h, h)
        self.W_u, self.b_u = _param(h, h, h + d), _param(h, h)
        self.W_f, self.b_f = _param(h, h, h + d), _param(h, h)
        self.W_o, self.b_o = _param(h, h, h + d), _param(h, h)
        if config.peephole:
            self.p_u, self.p_f, self.p_o = _param(h, h), _param(h, h), _param(h, h)

    def initial_state(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(a<0>, c<0>) = (0, 0): x (B, ...) -> two (B, H) tensors."""
        zeros = self.W_c.new_zeros(x.shape[0], self.config.hidden_size)
        return zeros, zeros

    def forward(
        self, x_t: Tensor, state: tuple[Tensor, Tensor]
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """x<t> (B, D), (a<t-1>, c<t-1>) (B, H) each -> (a<t>, (a<t>, c<t>))."""
        a_prev, c_prev = state
        z_u = _affine(self.W_u, self.b_u, a_prev, x_t)  # (B, H)
        z_f = _affine(self.W_f, self.b_f, a_prev, x_t)
        z_o = _affine(self.W_o, self.b_o, a_prev, x_t)
        if self.config.peephole:
            z_u, z_f, z_o = (
                z_u + self.p_u * c_prev,
                z_f + self.p_f * c_prev,
                z_o + self.p_o * c_prev,
            )
        c_tilde = torch.tanh(_affine(self.W_c, self.b_c, a_prev, x_t))  # (B, H)
        gamma_u, gamma_f, gamma_o = torch.sigmoid(z_u), torch.sigmoid(z_f), torch.sigmoid(z_o)
        c_t = gamma_u * c_tilde + gamma_f * c_prev
        a_t = gamma_o * (torch.tanh(c_t) if self.config.squash_output else c_t)
        return a_t, (a_t, c_t)

    def blocks(self) -> tuple[Tensor, Tensor, Tensor]:
        """[W_c; W_u; W_f; W_o] split into the a<t-1> and x<t> columns: (4H, H), (4H, D), (4H,)."""
        if not self.config.squash_output:
            raise ValueError("SeedRNN runs the squashed LSTM, a<t> = Γo * tanh(c<t>), only")
        return _split_blocks(self, self.GATES)

    def peepholes(self) -> Tensor:
        """[p_u; p_f; p_o] (3H,), the diagonal peephole weights in gate order."""
        return torch.cat([self.p_u, self.p_f, self.p_o])


Cell: TypeAlias = RNNCell | SimpleGRUCell | GRUCell | LSTMCell


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


# ------------------------------------------------------------------------- the trainable layer
#
# The loops below take zx (Tx, B, G*H), the input half W_gx x<t> + b_g of every gate block at
# every step (one matrix product for the whole sequence, done by the caller), and the recurrent
# half W_ga (G*H, H). They are compiled with TorchScript on first use (``_script``): a scripted
# loop runs without the Python interpreter and is exported to ONNX as a Loop over a dynamic Tx.


def _rnn_loop(zx: Tensor, w_a: Tensor, a0: Tensor, relu: bool) -> Tensor:
    """a<t> = g(W_aa a<t-1> + [W_ax x<t> + b_a]): zx (Tx, B, H), w_a (H, H), a0 (B, H) -> a."""
    a = a0
    steps: list[Tensor] = []
    for t in range(zx.shape[0]):
        z = zx[t] + a @ w_a.t()
        a = torch.relu(z) if relu else torch.tanh(z)
        steps.append(a)
    if len(steps) == 0:
        return zx.new_zeros(0, a0.shape[0], a0.shape[1])
    return torch.stack(steps)


def _gru_simple_loop(zx: Tensor, w_a: Tensor, c0: Tensor) -> Tensor:
    """Γu, c~<t> from one product with c<t-1>: zx (Tx, B, 2H) [u, c], w_a (2H, H) -> (Tx, B, H)."""
    h = c0.shape[1]
    c = c0
    steps: list[Tensor] = []
    for t in range(zx.shape[0]):
        z = zx[t] + c @ w_a.t()  # (B, 2H)
        gamma_u = torch.sigmoid(z[:, :h])
        c_tilde = torch.tanh(z[:, h:])
        c = gamma_u * c_tilde + (1 - gamma_u) * c
        steps.append(c)
    if len(steps) == 0:
        return zx.new_zeros(0, c0.shape[0], h)
    return torch.stack(steps)


def _gru_loop(zx: Tensor, w_a: Tensor, c0: Tensor) -> Tensor:
    """The notes' full GRU: zx (Tx, B, 3H) [u, r, c], w_a (3H, H), c0 (B, H) -> (Tx, B, H).

    Γr multiplies c<t-1> *before* W_cc does, so each step needs a second, dependent product.
    """
    h = c0.shape[1]
    w_gates, w_cc = w_a[: 2 * h].t(), w_a[2 * h :].t()  # (H, 2H), (H, H)
    c = c0
    steps: list[Tensor] = []
    for t in range(zx.shape[0]):
        z = zx[t]
        gates = torch.sigmoid(z[:, : 2 * h] + c @ w_gates)  # (B, 2H): Γu, Γr
        gamma_u, gamma_r = gates[:, :h], gates[:, h:]
        c_tilde = torch.tanh(z[:, 2 * h :] + (gamma_r * c) @ w_cc)  # W_c [Γr * c<t-1>, x<t>]
        c = gamma_u * c_tilde + (1 - gamma_u) * c
        steps.append(c)
    if len(steps) == 0:
        return zx.new_zeros(0, c0.shape[0], h)
    return torch.stack(steps)


def _lstm_loop(
    zx: Tensor, w_a: Tensor, a0: Tensor, c0: Tensor, peep: Tensor
) -> tuple[Tensor, Tensor]:
    """zx (Tx, B, 4H) [c, u, f, o], w_a (4H, H), a0, c0 (B, H), peep (3H,) or (0,) -> (a, c<Tx>).

    ``peep`` holds [p_u; p_f; p_o] for the peephole LSTM; empty for the plain one.
    """
    h = a0.shape[1]
    peephole = peep.shape[0] > 0
    a, c = a0, c0
    steps: list[Tensor] = []
    for t in range(zx.shape[0]):
        z = zx[t] + a @ w_a.t()  # (B, 4H)
        c_tilde = torch.tanh(z[:, :h])
        z_gates = z[:, h:]  # (B, 3H): Γu, Γf, Γo before the sigmoid
        if peephole:
            z_gates = z_gates + peep * c.repeat(1, 3)
        gates = torch.sigmoid(z_gates)
        c = gates[:, :h] * c_tilde + gates[:, h : 2 * h] * c  # Γu * c~<t> + Γf * c<t-1>
        a = gates[:, 2 * h :] * torch.tanh(c)  # Γo * tanh(c<t>)
        steps.append(a)
    if len(steps) == 0:
        return zx.new_zeros(0, a0.shape[0], h), c
    return torch.stack(steps), c


_LOOPS = {"rnn": _rnn_loop, "gru_simple": _gru_simple_loop, "gru": _gru_loop, "lstm": _lstm_loop}


@functools.cache
def _script(name: str) -> Any:
    """The TorchScript version of ``_LOOPS[name]``, compiled once, on first use."""
    return script(_LOOPS[name])


def script(fn: Any) -> Any:
    """``torch.jit.script(fn)``, without its deprecation warning.

    TorchScript is deprecated in favour of torch.compile / torch.export, but it is what the legacy
    ONNX exporter (the one the bundles use, ``dynamo=False``) turns into an ONNX ``Loop`` with a
    dynamic trip count (a traced Python loop would be unrolled for the example's Tx).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
        return torch.jit.script(fn)


SeedCell: TypeAlias = Literal[
    "seed_rnn_tanh",
    "seed_rnn_relu",
    "seed_gru_simple",
    "seed_gru",
    "seed_lstm",
    "seed_lstm_peephole",
    "seed_rnn_tanh_bptt",
    "seed_rnn_relu_bptt",
    "seed_lstm_bptt",
]
"""The cells ``ner.nn.encoder`` can build from this module. ``_bptt`` names train with the
hand-written backward pass of ``ner.nn.bptt`` (same function, same parameters)."""

SEED_CELLS: tuple[str, ...] = get_args(SeedCell)
SEED_CELLS_WITH_MEMORY: frozenset[str] = frozenset(
    {"seed_lstm", "seed_lstm_peephole", "seed_lstm_bptt"}
)
"""Seed cells whose state is (a<t>, c<t>); a GRU's c<t> is its a<t>, so it carries one vector."""


@dataclass(frozen=True)
class SeedRNNConfig:
    """One layer, one direction, of a seed cell.

    Attributes:
        cell: which cell (``SeedCell``); a ``_bptt`` suffix is the same as ``bptt="manual"``.
        input_size: D = n_x.
        hidden_size: H = n_a.
        bptt: "autograd" (differentiate the scripted loop) or "manual" (``ner.nn.bptt``'s
            right-to-left recursion; basic RNN and LSTM only).
    """

    cell: SeedCell
    input_size: int
    hidden_size: int
    bptt: Literal["autograd", "manual"] = "autograd"

    def __post_init__(self) -> None:
        _check_sizes(self.input_size, self.hidden_size)
        if self.cell not in SEED_CELLS:
            raise ValueError(f"unknown seed cell {self.cell!r}; expected one of {SEED_CELLS}")
        if self.bptt not in ("autograd", "manual"):
            raise ValueError(f"bptt must be 'autograd' or 'manual', got {self.bptt!r}")
        if self.hand_bptt and self.base not in ("seed_rnn_tanh", "seed_rnn_relu", "seed_lstm"):
            raise ValueError(
                f"hand-written BPTT exists for the basic RNN and LSTM, not {self.cell}"
            )

    @property
    def base(self) -> str:
        """The cell without its ``_bptt`` suffix."""
        return self.cell.removesuffix("_bptt")

    @property
    def hand_bptt(self) -> bool:
        return self.bptt == "manual" or self.cell.endswith("_bptt")

    @property
    def has_memory(self) -> bool:
        return self.cell in SEED_CELLS_WITH_MEMORY


def make_cell(config: SeedRNNConfig) -> Cell:
    """The step module that holds a seed layer's parameters."""
    d, h = config.input_size, config.hidden_size
    base = config.base
    if base.startswith("seed_rnn_"):
        return RNNCell(RNNCellConfig(d, h, activation="relu" if base.endswith("relu") else "tanh"))
    if base == "seed_gru_simple":
        return SimpleGRUCell(SimpleGRUCellConfig(d, h))
    if base == "seed_gru":
        return GRUCell(GRUCellConfig(d, h))
    return LSTMCell(LSTMCellConfig(d, h, peephole=base == "seed_lstm_peephole"))


class SeedRNN(nn.Module):
    """A seed cell run over x<1>..x<Tx>, with ``nn.LSTM(batch_first=True)``'s calling convention.

    ``rnn(x, hx) -> (a, hx_n)``: x (B, Tx, D) -> a (B, Tx, H) = a<1>..a<Tx>. ``hx`` is None (zeros)
    or the initial state: (a<0>, c<0>) each (1, B, H) for the LSTMs, a<0> (1, B, H) otherwise;
    ``hx_n`` is the state after step Tx in the same form. ``self.cell`` is the step module whose
    parameters this layer trains, so ``unroll(rnn.cell, x)`` computes the same a, step by step.
    """

    def __init__(self, config: SeedRNNConfig) -> None:
        super().__init__()
        self.config = config
        self.cell = make_cell(config)

    def forward(self, x: Tensor, hx: State | None = None) -> tuple[Tensor, State]:
        """x (B, Tx, D), hx -> (a (B, Tx, H), hx_n)."""
        h = self.config.hidden_size
        if hx is None:
            a0 = x.new_zeros(x.shape[0], h)
            c0 = a0
        elif isinstance(hx, tuple):
            a0, c0 = hx[0][0], hx[1][0]
        else:
            a0, c0 = hx[0], hx[0]
        w_a, w_x, b = self.cell.blocks()
        x_t = x.transpose(0, 1)  # (Tx, B, D): the loop indexes time first
        if self._hand_bptt():
            from ner.nn import bptt

            if isinstance(self.cell, LSTMCell):
                a, c = bptt.lstm(x_t, w_x, w_a, b, a0, c0)
            else:
                a, c = bptt.rnn(x_t, w_x, w_a, b, a0, self.cell.config.activation), a0
        else:
            a, c = self._loop(x_t @ w_x.t() + b, w_a, a0, c0)  # zx (Tx, B, G*H)
        a_n = a[-1] if a.shape[0] > 0 else a0  # (B, H)
        if not isinstance(self.cell, LSTMCell):
            return a.transpose(0, 1), a_n.unsqueeze(0)
        return a.transpose(0, 1), (a_n.unsqueeze(0), c.unsqueeze(0))

    def _loop(self, zx: Tensor, w_a: Tensor, a0: Tensor, c0: Tensor) -> tuple[Tensor, Tensor]:
        """zx (Tx, B, G*H) -> (a (Tx, B, H), c<Tx> (B, H); c0 for cells without memory)."""
        cell = self.cell
        if isinstance(cell, RNNCell):
            return _script("rnn")(zx, w_a, a0, cell.config.activation == "relu"), c0
        if isinstance(cell, SimpleGRUCell):
            return _script("gru_simple")(zx, w_a, a0), c0
        if isinstance(cell, GRUCell):
            return _script("gru")(zx, w_a, a0), c0
        peep = cell.peepholes() if cell.config.peephole else zx.new_zeros(0)
        return _script("lstm")(zx, w_a, a0, c0, peep)

    def _hand_bptt(self) -> bool:
        # The hand-written backward pass is an autograd.Function: used to train, never traced.
        tracing = torch.jit.is_tracing() or torch.jit.is_scripting()
        return self.config.hand_bptt and torch.is_grad_enabled() and not tracing
