"""Deep (stacked) uni- or bidirectional RNN encoders with Tx = Ty.

Each layer runs a forward RNN over a<1>..a<Tx> and, when bidirectional, a second RNN over the
sequence reversed *within its own length*. Reversing per length keeps the padding at the end for the
backward pass too, so padding never leaks into a backward state: a sentence gives the same output
alone and inside a padded batch. Plain tensor ops (gather) are used instead of packed sequences so
the encoder exports to ONNX with dynamic batch and time axes.

The cells are PyTorch's fused ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``. In the seed notes' notation an
LSTM step is (Hochreiter & Schmidhuber 1997)::

    c~<t> = tanh(W_c [a<t-1>, x<t>] + b_c)
    Γu = σ(W_u [a<t-1>, x<t>] + b_u)     (update / input gate)
    Γf = σ(W_f [a<t-1>, x<t>] + b_f)     (forget gate)
    Γo = σ(W_o [a<t-1>, x<t>] + b_o)     (output gate)
    c<t> = Γu * c~<t> + Γf * c<t-1>
    a<t> = Γo * tanh(c<t>)

(the notes write a<t> = Γo * c<t>; PyTorch, like the original paper, squashes c<t> with tanh), and a
GRU step (Cho et al. 2014) is c~<t> = tanh(W_c [Γr * c<t-1>, x<t>] + b_c), c<t> = Γu * c~<t> +
(1 - Γu) * c<t-1> with Γu, Γr sigmoid gates. ``ner.nn.cells`` holds readable reference versions.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ner.nn.cells import SEED_CELLS, SeedRNN, SeedRNNConfig
from ner.nn.config import CELLS_WITH_MEMORY, Cell, EncoderConfig, RNNConfig

__all__ = [
    "CELLS_WITH_MEMORY",
    "Cell",
    "EncoderConfig",
    "RNNConfig",
    "RNNEncoder",
    "reverse_padded",
]


def _make_rnn(cell: str, input_size: int, hidden_size: int) -> nn.Module:
    """One single-layer, one-direction RNN with ``nn.LSTM``'s calling convention:
    ``rnn(x (B, T, D), hx) -> (a (B, T, H), hx_n)``, ``hx`` = (a, c) each (1, B, H) for cells with
    memory, else a (1, B, H)."""
    if cell == "lstm":
        return nn.LSTM(input_size, hidden_size, batch_first=True)
    if cell == "gru":
        return nn.GRU(input_size, hidden_size, batch_first=True)
    if cell in ("rnn_tanh", "rnn_relu"):
        nonlinearity = "tanh" if cell == "rnn_tanh" else "relu"
        return nn.RNN(input_size, hidden_size, nonlinearity=nonlinearity, batch_first=True)
    if cell in SEED_CELLS:
        return SeedRNN(SeedRNNConfig(cell, input_size, hidden_size))  # type: ignore[arg-type]
    raise ValueError(f"unknown cell {cell!r}")


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence within its length; padding stays where it is.

    x (B, T, D), lengths (B,) -> (B, T, D). The map is its own inverse.
    """
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, T)
    lens = lengths.to(x.device).unsqueeze(1)  # (B, 1)
    index = torch.where(steps < lens, lens - 1 - steps, steps)  # (B, T)
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))


def last_step(a: Tensor, lengths: Tensor) -> Tensor:
    """a (B, T, H), lengths (B,) -> a<T_b> (B, H), the output at each sequence's last real step
    (zeros for an empty sequence)."""
    index = (lengths.to(a.device) - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, a.shape[2])
    return a.gather(1, index).squeeze(1) * (lengths.to(a.device) > 0).unsqueeze(-1).to(a.dtype)


class RNNEncoder(nn.Module):
    """Stacked (bi)directional RNN: x (B, Tx, D_in) -> a (B, Tx, H or 2H), plus final states."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        if config.input_size < 1:
            raise ValueError(f"EncoderConfig.input_size must be >= 1, got {config.input_size}")
        self.config = config
        self.forward_layers = nn.ModuleList()
        self.backward_layers = nn.ModuleList()
        size = config.input_size
        for _ in range(config.num_layers):
            self.forward_layers.append(_make_rnn(config.cell, size, config.hidden_size))
            if config.bidirectional:
                self.backward_layers.append(_make_rnn(config.cell, size, config.hidden_size))
            size = config.output_size

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x (B, T, D_in), lengths (B,) -> a (B, T, H * directions); padded steps are zero."""
        return self.encode(x, lengths)[0]

    def encode(
        self, x: Tensor, lengths: Tensor, state: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """x (B, T, D_in), lengths (B,) -> (a (B, T, H * dirs), final (L, B, H * dirs)).

        ``final[l]`` is layer l's a<T_b> at each sequence's own last step: for a BiRNN the forward
        direction's a<T_b> next to the backward direction's a<1> (what it reached after reading
        the whole sequence right to left). ``state`` (L, B, S), a unidirectional encoder's initial
        state (see :meth:`step`), starts every layer from a given a<0> (and c<0>).
        """
        config = self.config
        if state is not None and config.bidirectional:
            raise ValueError("an initial state needs a unidirectional encoder")
        mask = (
            torch.arange(x.shape[1], device=x.device).unsqueeze(0)
            < lengths.to(x.device).unsqueeze(1)
        ).unsqueeze(-1)  # (B, T, 1)
        a, finals = x, []
        for i, rnn in enumerate(self.forward_layers):
            if i > 0 and config.dropout > 0:
                a = nn.functional.dropout(a, config.dropout, self.training)
            hx = None if state is None else self._layer_hx(state[i])
            a_fwd, _ = rnn(a, hx)  # (B, T, H): causal, so trailing padding cannot reach real steps
            final = last_step(a_fwd, lengths)  # (B, H)
            if config.bidirectional:
                a_bwd = self.backward_layers[i](reverse_padded(a, lengths))[0]  # (B, T, H)
                final = torch.cat([final, last_step(a_bwd, lengths)], dim=-1)  # (B, 2H)
                a_fwd = torch.cat([a_fwd, reverse_padded(a_bwd, lengths)], dim=-1)  # (B, T, 2H)
            a = a_fwd * mask
            finals.append(final)
        return a, torch.stack(finals)  # (B, T, H*dirs), (L, B, H*dirs)

    # ---------------------------------------------------------------- stepping (unidirectional)

    def initial_state(self, like: Tensor, batch: int) -> Tensor:
        """Zeros (L, B, S): a<0> (and c<0>) of every layer, on ``like``'s device and dtype."""
        c = self.config
        return like.new_zeros(c.num_layers, batch, c.state_size)

    def _layer_hx(self, layer_state: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """(B, S) -> the layer's hx in nn.LSTM/nn.GRU form."""
        h = self.config.hidden_size
        s = layer_state.unsqueeze(0).contiguous()  # (1, B, S)
        if self.config.cell in CELLS_WITH_MEMORY:
            return s[..., :h].contiguous(), s[..., h:].contiguous()
        return s

    def step(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Run a unidirectional encoder on unpadded input from a given state.

        x (B, T, D_in), state (L, B, S) or None (zeros) -> (a (B, T, H), new state (L, B, S)),
        S = 2H ([a<t>, c<t>]) for cells with memory, else H. With T = 1 this is one time step of a
        language model or decoder; sequences in the batch must all have T real steps.
        """
        if self.config.bidirectional:
            raise ValueError("step() needs a unidirectional encoder")
        if state is None:
            state = self.initial_state(x, x.shape[0])
        a, new = x, []
        for i, rnn in enumerate(self.forward_layers):
            if i > 0 and self.config.dropout > 0:
                a = nn.functional.dropout(a, self.config.dropout, self.training)
            a, hx = rnn(a, self._layer_hx(state[i]))
            if isinstance(hx, tuple):
                new.append(torch.cat([hx[0][0], hx[1][0]], dim=-1))  # (B, 2H)
            else:
                new.append(hx[0])  # (B, H)
        return a, torch.stack(new)
