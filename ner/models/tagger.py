"""The sequence tagger (Tx = Ty): word inputs -> deep (bi)RNN -> per-token emissions -> CRF/softmax.

Architecture after Lample et al. (2016) and Ma & Hovy (2016): a word vector (one-hot x W_ax, a
learned table, or GloVe with a trainable delta) concatenated with character features (CNN or
BiLSTM) and casing features, dropout, a stacked bidirectional LSTM/GRU/RNN, dropout, a linear map
to K tag scores, and a linear-chain CRF (or a per-token softmax).

The part from word vectors to emissions (``emissions_from_vectors``) is what the bundle exports to
ONNX; the word-vector lookup and all decoding run in NumPy (``ner.features``, ``ner.decode``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ner.data.vocab import CASING_NAMES
from ner.nn.embeddings import (
    CharCNN,
    CharConfig,
    CharLSTM,
    WordEmbedding,
    WordEmbeddingConfig,
    WordInput,
)
from ner.nn.encoder import Cell, EncoderConfig, RNNEncoder


@dataclass(frozen=True)
class TaggerConfig:
    """Everything that defines a tagger's shape. Sizes that come from the data come first."""

    num_tags: int
    vocab_size: int
    num_chars: int = 0
    word_input: WordInput = "glove"
    word_dim: int = 50
    glove_finetune: bool = True
    char_encoder: Literal["none", "cnn", "lstm"] = "cnn"
    char_dim: int = 30
    char_hidden: int = 50
    casing_dim: int = 8
    cell: Cell = "lstm"
    hidden_size: int = 200
    num_layers: int = 1
    bidirectional: bool = True
    embed_dropout: float = 0.5
    dropout: float = 0.5
    head: Literal["crf", "softmax"] = "crf"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaggerConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown TaggerConfig fields: {sorted(unknown)}")
        return cls(**data)

    @property
    def uses_chars(self) -> bool:
        return self.char_encoder != "none" and self.num_chars > 0


class Tagger(nn.Module):
    """Word, char and casing ids -> emissions (B, T, K); CRF or softmax loss."""

    def __init__(self, config: TaggerConfig, glove_vectors: np.ndarray | None = None) -> None:
        super().__init__()
        self.config = config
        self.words = WordEmbedding(
            WordEmbeddingConfig(
                config.vocab_size, config.word_dim, config.word_input, config.glove_finetune
            ),
            glove_vectors,
        )
        size = config.word_dim
        self.chars: nn.Module | None = None
        if config.uses_chars:
            char_config = CharConfig(
                config.num_chars, config.char_encoder, config.char_dim, config.char_hidden
            )
            self.chars = CharCNN(char_config) if config.char_encoder == "cnn" else CharLSTM(char_config)
            size += char_config.output_size
        self.casing: nn.Embedding | None = None
        if config.casing_dim > 0:
            self.casing = nn.Embedding(len(CASING_NAMES), config.casing_dim, padding_idx=0)
            size += config.casing_dim
        self.embed_dropout = nn.Dropout(config.embed_dropout)
        self.encoder = RNNEncoder(
            EncoderConfig(
                size,
                config.hidden_size,
                config.num_layers,
                config.cell,
                config.bidirectional,
                config.dropout,
            )
        )
        self.dropout = nn.Dropout(config.dropout)
        self.proj = nn.Linear(self.encoder.config.output_size, config.num_tags)
        self.crf: nn.Module | None = None
        if config.head == "crf":
            from ner.nn.crf import CRF, CRFConfig

            self.crf = CRF(CRFConfig(config.num_tags))

    def word_vectors(self, word_ids: Tensor, glove_ids: Tensor) -> Tensor:
        """word_ids (B, T), glove_ids (B, T) -> word vectors (B, T, D)."""
        return self.words(word_ids, glove_ids)

    def emissions_from_vectors(
        self, word_vectors: Tensor, char_ids: Tensor, casing_ids: Tensor, lengths: Tensor
    ) -> Tensor:
        """word_vectors (B, T, D), char_ids (B, T, C), casing_ids (B, T), lengths (B,) -> (B, T, K).

        For the softmax head the emissions are log-probabilities, so that decoding with zero
        transitions (``ner.decode``) is exactly the per-token softmax under the constraints.
        """
        parts = [word_vectors]
        if self.chars is not None:
            parts.append(self.chars(char_ids))  # (B, T, F)
        if self.casing is not None:
            parts.append(self.casing(casing_ids))  # (B, T, 8)
        x = self.embed_dropout(torch.cat(parts, dim=-1))  # (B, T, D_in)
        a = self.dropout(self.encoder(x, lengths))  # (B, T, 2H)
        scores = self.proj(a)  # (B, T, K)
        if self.crf is None:
            scores = F.log_softmax(scores, dim=-1)
        return scores

    def forward(
        self,
        word_ids: Tensor,
        glove_ids: Tensor,
        char_ids: Tensor,
        casing_ids: Tensor,
        lengths: Tensor,
    ) -> Tensor:
        """Ids (B, T) / (B, T, C), lengths (B,) -> emissions (B, T, K)."""
        vectors = self.word_vectors(word_ids, glove_ids)
        return self.emissions_from_vectors(vectors, char_ids, casing_ids, lengths)

    def loss(self, emissions: Tensor, tags: Tensor, lengths: Tensor) -> Tensor:
        """Mean negative log-likelihood per sentence (CRF) or per token (softmax)."""
        if self.crf is not None:
            return self.crf.nll(emissions, tags, lengths).mean()
        mask = torch.arange(tags.shape[1], device=tags.device).unsqueeze(0) < lengths.to(
            tags.device
        ).unsqueeze(1)
        return F.nll_loss(emissions[mask], tags[mask])

    def transitions(self) -> Any:
        """``ner.decode.Transitions`` of the head (all zeros for softmax)."""
        from ner.decode import Transitions

        if self.crf is not None:
            return self.crf.to_transitions()
        k = self.config.num_tags
        return Transitions(
            np.zeros((k, k), dtype=np.float32),
            np.zeros(k, dtype=np.float32),
            np.zeros(k, dtype=np.float32),
        )

    def word_table(self) -> np.ndarray:
        """The trainable word table (V, D) float32, as the bundle stores it."""
        return self.words.table()

    def word_tables(self, glove: np.ndarray | None = None) -> Any:
        """``ner.features.WordTables`` for NumPy lookup; pass the GloVe matrix for GloVe models."""
        from ner.features import WordTables

        return WordTables(self.word_table(), glove if self.config.word_input == "glove" else None)
