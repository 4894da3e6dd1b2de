"""The sequence tagger (Tx = Ty): inputs -> deep (bi)RNN -> per-token emissions -> CRF/softmax.

Architecture after Lample et al. (2016) and Ma & Hovy (2016): the shared input stack
(``ner.nn.inputs``: word vector, character and casing features, dropout), a stacked bidirectional
LSTM/GRU/RNN, dropout, a linear map to K tag scores, and a linear-chain CRF (or a per-token
softmax).

The part from word vectors to emissions (``emissions_from_vectors``) is what the bundle exports to
ONNX; the word-vector lookup and all decoding run in NumPy (``ner.features``, ``ner.decode``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch.nn.functional as F
from torch import Tensor, nn

from ner.models.config import TaggerConfig
from ner.nn.encoder import EncoderConfig, RNNEncoder
from ner.nn.inputs import InputStack, from_vectors_graph, installed_glove


class Tagger(nn.Module):
    """Word, char and casing ids -> emissions (B, T, K); CRF or softmax loss."""

    def __init__(self, config: TaggerConfig, glove_vectors: np.ndarray | None = None) -> None:
        super().__init__()
        if config.num_tags < 1:
            raise ValueError(f"TaggerConfig.num_tags must be >= 1, got {config.num_tags}")
        self.config = config
        self.inputs = InputStack(config.inputs, glove_vectors)
        self.encoder = RNNEncoder(EncoderConfig.of(config.inputs.output_size, config.rnn))
        self.dropout = nn.Dropout(config.dropout)
        self.proj = nn.Linear(config.rnn.output_size, config.num_tags)
        self.crf: nn.Module | None = None
        if config.head == "crf":
            from ner.nn.crf import CRF, CRFConfig

            self.crf = CRF(CRFConfig(config.num_tags))

    @classmethod
    def build(cls, config: TaggerConfig) -> Tagger:
        """A tagger with the installed GloVe table when it uses GloVe."""
        return cls(config, installed_glove(config.inputs))

    def emissions_from_vectors(
        self, word_vectors: Tensor, char_ids: Tensor, casing_ids: Tensor, lengths: Tensor
    ) -> Tensor:
        """word_vectors (B, T, D), char_ids (B, T, C), casing_ids (B, T), lengths (B,) -> (B, T, K).

        For the softmax head the emissions are log-probabilities, so that decoding with zero
        transitions (``ner.decode``) is exactly the per-token softmax under the constraints.
        """
        x = self.inputs.from_vectors(word_vectors, char_ids, casing_ids)  # (B, T, D_in)
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
        vectors = self.inputs.word_vectors(word_ids, glove_ids)
        return self.emissions_from_vectors(vectors, char_ids, casing_ids, lengths)

    def loss(self, emissions: Tensor, tags: Tensor, lengths: Tensor) -> Tensor:
        """Mean negative log-likelihood per sentence (CRF) or per token (softmax)."""
        if self.crf is not None:
            return self.crf.nll(emissions, tags, lengths).mean()
        mask = _mask(tags, lengths)
        return F.nll_loss(emissions[mask], tags[mask])

    def transitions(self) -> Any:
        """``ner.decode.Transitions`` of the head (all zeros for softmax)."""
        from ner.decode import Transitions

        if self.crf is not None:
            return self.crf.to_transitions()
        k = self.config.num_tags
        zeros = np.zeros(k, dtype=np.float32)
        return Transitions(np.zeros((k, k), dtype=np.float32), zeros, zeros.copy())

    def word_table(self) -> np.ndarray:
        """The trainable word table (V, D) float32, as the bundle stores it."""
        return self.inputs.word_table()


def _mask(tags: Tensor, lengths: Tensor) -> Tensor:
    steps = tags.new_tensor(range(tags.shape[1])) if tags.shape[1] else tags.new_zeros(0)
    return steps.unsqueeze(0) < lengths.to(tags.device).unsqueeze(1)


LEGACY_PREFIXES = ("words.", "chars.", "casing.")
"""State-dict prefixes of a format-1 tagger, now under ``inputs.``."""


def migrate_legacy_state(state: dict[str, Any]) -> dict[str, Any]:
    """A format-1 tagger state_dict -> this layout (the input modules moved under ``inputs``)."""
    return {("inputs." + k if k.startswith(LEGACY_PREFIXES) else k): v for k, v in state.items()}


_BATCH_TIME = {0: "batch", 1: "time"}


def emissions_graph(model: Tagger, tables: Any) -> Any:
    """The tagger's ONNX graph: word_vectors (B, T, D), char_ids (B, T, C), casing_ids (B, T),
    lengths (B,) -> emissions (B, T, K); batch, time and character axes are dynamic."""
    return from_vectors_graph(model, "emissions_from_vectors", tables, "emissions", _BATCH_TIME)
