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

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

Cell = Literal["lstm", "gru", "rnn_tanh", "rnn_relu"]


@dataclass(frozen=True)
class EncoderConfig:
    input_size: int
    hidden_size: int = 200
    num_layers: int = 1
    cell: Cell = "lstm"
    bidirectional: bool = True
    dropout: float = 0.0  # between stacked layers

    @property
    def output_size(self) -> int:
        return self.hidden_size * (2 if self.bidirectional else 1)


def _make_rnn(cell: Cell, input_size: int, hidden_size: int) -> nn.Module:
    if cell == "lstm":
        return nn.LSTM(input_size, hidden_size, batch_first=True)
    if cell == "gru":
        return nn.GRU(input_size, hidden_size, batch_first=True)
    nonlinearity = "tanh" if cell == "rnn_tanh" else "relu"
    return nn.RNN(input_size, hidden_size, nonlinearity=nonlinearity, batch_first=True)


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence within its length; padding stays where it is.

    x (B, T, D), lengths (B,) -> (B, T, D). The map is its own inverse.
    """
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, T)
    lens = lengths.to(x.device).unsqueeze(1)  # (B, 1)
    index = torch.where(steps < lens, lens - 1 - steps, steps)  # (B, T)
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))


class RNNEncoder(nn.Module):
    """Stacked (bi)directional RNN: x (B, Tx, D_in) -> a (B, Tx, H or 2H)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.forward_layers = nn.ModuleList()
        self.backward_layers = nn.ModuleList()
        size = config.input_size
        for _ in range(config.num_layers):
            self.forward_layers.append(_make_rnn(config.cell, size, config.hidden_size))
            if config.bidirectional:
                self.backward_layers.append(_make_rnn(config.cell, size, config.hidden_size))
            size = config.output_size
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x (B, T, D_in), lengths (B,) -> a (B, T, H * directions); padded steps are zero."""
        mask = (
            torch.arange(x.shape[1], device=x.device).unsqueeze(0)
            < lengths.to(x.device).unsqueeze(1)
        ).unsqueeze(-1)  # (B, T, 1)
        a = x
        for i, rnn in enumerate(self.forward_layers):
            if i > 0:
                a = self.dropout(a)
            a_fwd, _ = rnn(a)  # (B, T, H): causal, so trailing padding cannot reach real steps
            if self.config.bidirectional:
                a_bwd, _ = self.backward_layers[i](reverse_padded(a, lengths))  # (B, T, H)
                a_fwd = torch.cat([a_fwd, reverse_padded(a_bwd, lengths)], dim=-1)  # (B, T, 2H)
            a = a_fwd * mask
        return a
