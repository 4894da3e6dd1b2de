"""Word and character inputs x<t> for the taggers.

- ``OneHotInput``: the seed notes' input. x<t> is a one-hot vector of size V and the first layer
  multiplies it by W_ax. Multiplying a one-hot vector by a matrix selects one column, so the product
  is computed as a column lookup (``F.embedding``), never as a (B, T, V) dense tensor.
- ``WordEmbedding``: a learned table, or frozen GloVe plus an optional trainable delta over the
  training vocabulary (GloVe-initialised fine-tuning that still reaches all 400k GloVe words).
- ``CharCNN`` (Ma & Hovy 2016) and ``CharLSTM`` (Lample et al. 2016) word features from characters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ner.nn.config import CharConfig, EncoderConfig, WordInput
from ner.nn.encoder import RNNEncoder


class OneHotInput(nn.Module):
    """x<t> one-hot in R^V times W_ax (D, V): ids (B, T) -> W_ax x<t> (B, T, D)."""

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.W_ax = nn.Parameter(torch.empty(dim, vocab_size))
        nn.init.uniform_(self.W_ax, -((3.0 / dim) ** 0.5), (3.0 / dim) ** 0.5)
        with torch.no_grad():
            self.W_ax[:, 0] = 0.0  # PAD

    def forward(self, ids: Tensor) -> Tensor:
        """ids (B, T) -> (B, T, D): column ids of W_ax, equal to W_ax @ one_hot(ids)."""
        return F.embedding(ids, self.W_ax.t())

    def explicit(self, ids: Tensor) -> Tensor:
        """The literal one-hot matmul, for tests: one_hot(ids) (B, T, V) @ W_ax^T -> (B, T, D)."""
        x = F.one_hot(ids, num_classes=self.W_ax.shape[1]).to(self.W_ax.dtype)
        return x @ self.W_ax.t()

    def table(self) -> Tensor:
        """(V, D): the lookup table equivalent to W_ax."""
        return self.W_ax.t()


@dataclass(frozen=True)
class WordEmbeddingConfig:
    vocab_size: int
    dim: int = 50
    kind: WordInput = "glove"
    glove_finetune: bool = True


class WordEmbedding(nn.Module):
    """Word ids and GloVe ids -> word vectors (B, T, D).

    For ``kind="glove"`` the vector is GloVe(lower(w)) (frozen, row 0 = absent -> zeros) plus a
    trainable delta indexed by the training vocabulary, initialised at zero. The GloVe table is a
    non-persistent buffer: checkpoints and bundles refer to the installed package instead.
    """

    def __init__(
        self, config: WordEmbeddingConfig, glove_vectors: np.ndarray | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.onehot: OneHotInput | None = None
        self.delta: nn.Embedding | None = None
        if config.kind == "onehot":
            self.onehot = OneHotInput(config.vocab_size, config.dim)
        elif config.kind == "learned":
            self.delta = nn.Embedding(config.vocab_size, config.dim, padding_idx=0)
        else:
            if config.glove_finetune:
                self.delta = nn.Embedding(config.vocab_size, config.dim, padding_idx=0)
                nn.init.zeros_(self.delta.weight)
            if glove_vectors is not None:
                if glove_vectors.shape[1] != config.dim:
                    raise ValueError(f"GloVe dim {glove_vectors.shape[1]} != word_dim {config.dim}")
                table = torch.zeros(glove_vectors.shape[0] + 1, config.dim)
                table[1:] = torch.from_numpy(np.array(glove_vectors, dtype=np.float32))
                self.register_buffer("glove", table, persistent=False)
            else:
                self.glove = None

    def forward(self, word_ids: Tensor, glove_ids: Tensor) -> Tensor:
        """word_ids (B, T), glove_ids (B, T) -> word vectors (B, T, D)."""
        if self.onehot is not None:
            return self.onehot(word_ids)
        out = None
        if self.config.kind == "glove":
            if self.glove is None:
                raise RuntimeError("this model was built without GloVe vectors; pass glove_vectors")
            out = F.embedding(glove_ids, self.glove)  # (B, T, D)
        if self.delta is not None:
            d = self.delta(word_ids)
            out = d if out is None else out + d
        assert out is not None
        return out

    def table(self) -> np.ndarray:
        """The trainable (V, D) table as float32 NumPy (zeros when GloVe is frozen)."""
        if self.onehot is not None:
            t = self.onehot.table()
        elif self.delta is not None:
            t = self.delta.weight
        else:
            return np.zeros((self.config.vocab_size, self.config.dim), dtype=np.float32)
        return t.detach().cpu().float().numpy()


class CharCNN(nn.Module):
    """Character CNN with max-over-time pooling (Ma & Hovy 2016): (B, T, C) -> (B, T, F)."""

    def __init__(self, config: CharConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.num_chars, config.char_dim, padding_idx=0)
        self.conv = nn.Conv1d(
            config.char_dim, config.hidden, config.kernel, padding=config.kernel // 2
        )

    def forward(self, char_ids: Tensor) -> Tensor:
        """char_ids (B, T, C) -> char features (B, T, F); padded words give zeros."""
        b, t, c = char_ids.shape
        x = self.embed(char_ids.reshape(b * t, c)).transpose(1, 2)  # (B*T, E, C)
        h = self.conv(x).transpose(1, 2)  # (B*T, C, F)
        pad = (char_ids.reshape(b * t, c) == 0).unsqueeze(-1)  # (B*T, C, 1)
        h = h.masked_fill(pad, -1e4).max(dim=1).values  # (B*T, F)
        has_chars = (~pad).any(dim=1)  # (B*T, 1)
        return (h * has_chars).reshape(b, t, -1)


class CharLSTM(nn.Module):
    """Character BiLSTM (Lample et al. 2016): last forward and first backward states, (B, T, 2H)."""

    def __init__(self, config: CharConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.num_chars, config.char_dim, padding_idx=0)
        self.rnn = RNNEncoder(
            EncoderConfig(cell="lstm", hidden_size=config.hidden, input_size=config.char_dim)
        )

    def forward(self, char_ids: Tensor) -> Tensor:
        """char_ids (B, T, C) -> char features (B, T, 2H); padded words give zeros."""
        b, t, c = char_ids.shape
        flat = char_ids.reshape(b * t, c)
        lengths = (flat != 0).sum(dim=1)  # (B*T,)
        a = self.rnn(self.embed(flat), lengths)  # (B*T, C, 2H)
        h = self.config.hidden
        last = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, h)
        fwd = a[:, :, :h].gather(1, last).squeeze(1)  # a<Tc> of the forward pass
        bwd = a[:, 0, h:]  # a<1> of the backward pass
        out = torch.cat([fwd, bwd], dim=-1) * (lengths > 0).unsqueeze(-1)
        return out.reshape(b, t, -1)
