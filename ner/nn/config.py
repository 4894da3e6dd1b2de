"""Configs of the shared network parts, as frozen dataclasses (no torch: bundles are read with
these on the ONNX path too)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

WordInput = Literal["onehot", "learned", "glove"]


Cell = Literal[
    "lstm",
    "gru",
    "rnn_tanh",
    "rnn_relu",
    # the seed notes' cells (ner.nn.cells.SeedRNN): slower than the fused kernels, same interface;
    # a _bptt suffix trains with the hand-written backward pass of ner.nn.bptt
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

CELLS_WITH_MEMORY: frozenset[str] = frozenset(
    {"lstm", "seed_lstm", "seed_lstm_peephole", "seed_lstm_bptt"}
)
"""Cells that carry a memory cell c<t> besides a<t> (their step state is a<t> and c<t>)."""


@dataclass(frozen=True)
class RNNConfig:
    """The recurrent stack, as a user configures it (the input size comes from the input stack).

    Attributes:
        cell: Recurrent cell: lstm, gru, rnn_tanh or rnn_relu (fused kernels), or one of the
            seed_* cells of ner.nn.cells (seed_lstm, seed_gru, ...).
        hidden_size: Hidden units per direction.
        num_layers: Stacked recurrent layers (a deep RNN).
        bidirectional: Run a backward RNN as well (a BiRNN).
        dropout: Dropout between stacked layers.
    """

    cell: Cell = "lstm"
    hidden_size: int = 200
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.0

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        return self.hidden_size * self.directions

    @property
    def state_size(self) -> int:
        """Width of one layer's step state: [a<t>, c<t>] for cells with memory, else a<t>."""
        return self.hidden_size * (2 if self.cell in CELLS_WITH_MEMORY else 1)


@dataclass(frozen=True)
class EncoderConfig(RNNConfig):
    """``RNNConfig`` plus the input size: everything that fixes an encoder's parameters."""

    input_size: int = 0

    @classmethod
    def of(cls, input_size: int, rnn: RNNConfig) -> EncoderConfig:
        return cls(
            cell=rnn.cell,
            hidden_size=rnn.hidden_size,
            num_layers=rnn.num_layers,
            bidirectional=rnn.bidirectional,
            dropout=rnn.dropout,
            input_size=input_size,
        )


@dataclass(frozen=True)
class CharConfig:
    num_chars: int
    kind: Literal["cnn", "lstm"] = "cnn"
    char_dim: int = 30
    hidden: int = 50  # CNN filters, or LSTM hidden size per direction
    kernel: int = 3

    @property
    def output_size(self) -> int:
        return self.hidden if self.kind == "cnn" else 2 * self.hidden


CharEncoder = Literal["none", "cnn", "lstm"]


@dataclass(frozen=True)
class InputConfig:
    """The input stack. ``vocab_size`` and ``num_chars`` come from the data (0 until linked).

    Attributes:
        vocab_size: Word (or, for character models, character) vocabulary size, PAD and UNK
            included; filled in from the data.
        num_chars: Character vocabulary size for character features; filled in from the data.
        word_input: onehot (x<t> times W_ax, the seed notes' input), learned (an embedding table)
            or glove (frozen GloVe 6B 50d plus a trainable delta).
        word_dim: Size of the word vector (50 for GloVe 6B 50d).
        glove_finetune: With GloVe: learn a per-word delta over the training vocabulary.
        char_encoder: Character features: none, cnn (Ma & Hovy 2016) or lstm (Lample et al. 2016).
        char_dim: Size of the character embeddings.
        char_hidden: CNN filters, or char-LSTM hidden size per direction.
        casing_dim: Size of the casing-feature embedding; 0 = no casing features.
        dropout: Dropout on the concatenated input features.
    """

    vocab_size: int = 0
    num_chars: int = 0
    word_input: WordInput = "glove"
    word_dim: int = 50
    glove_finetune: bool = True
    char_encoder: CharEncoder = "cnn"
    char_dim: int = 30
    char_hidden: int = 50
    casing_dim: int = 8
    dropout: float = 0.5

    @property
    def uses_chars(self) -> bool:
        return self.char_encoder != "none" and self.num_chars > 0

    @property
    def uses_glove(self) -> bool:
        return self.word_input == "glove"

    @property
    def char_config(self) -> CharConfig | None:
        if not self.uses_chars:
            return None
        kind: Literal["cnn", "lstm"] = "cnn" if self.char_encoder == "cnn" else "lstm"
        return CharConfig(self.num_chars, kind, self.char_dim, self.char_hidden)

    @property
    def output_size(self) -> int:
        """Width of x<t>: word vector, character features and casing features."""
        chars = self.char_config
        return self.word_dim + (chars.output_size if chars else 0) + self.casing_dim
