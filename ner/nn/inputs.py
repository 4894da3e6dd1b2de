"""The shared input stack: token ids -> the vectors x<t> that every task's RNN reads.

A word vector (one-hot x<t> times W_ax as in the seed notes, a learned table, or GloVe with a
trainable delta), optionally concatenated with character features (CNN or BiLSTM over the word's
characters) and casing features, then dropout. The tagger, the classifier, the language models and
the encoder-decoder all build their inputs from this module, so a feature added here reaches
every task.

For a character-level model the "words" are characters: ``word_input`` onehot or learned over the
character vocabulary, with ``char_encoder: none`` and ``casing_dim: 0``.

The part after the word lookup (``from_vectors``) is what the bundles export to ONNX; the word
lookup itself runs in NumPy at serving time (``ner.features.word_vectors``), so GloVe's 400k rows
never enter a graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ner.data.vocab import CASING_NAMES
from ner.nn.config import InputConfig
from ner.nn.embeddings import CharCNN, CharLSTM, WordEmbedding, WordEmbeddingConfig


class InputStack(nn.Module):
    """Ids -> x<t> (B, T, D_in). ``glove_vectors`` is the installed GloVe table (GloVe models)."""

    def __init__(self, config: InputConfig, glove_vectors: np.ndarray | None = None) -> None:
        super().__init__()
        if config.vocab_size < 1:
            raise ValueError(f"InputConfig.vocab_size must be >= 1, got {config.vocab_size}")
        self.config = config
        self.words = WordEmbedding(
            WordEmbeddingConfig(
                config.vocab_size, config.word_dim, config.word_input, config.glove_finetune
            ),
            glove_vectors,
        )
        chars = config.char_config
        self.chars: nn.Module | None = None
        if chars is not None:
            self.chars = CharCNN(chars) if chars.kind == "cnn" else CharLSTM(chars)
        self.casing: nn.Embedding | None = None
        if config.casing_dim > 0:
            self.casing = nn.Embedding(len(CASING_NAMES), config.casing_dim, padding_idx=0)
        self.dropout = nn.Dropout(config.dropout)

    def word_vectors(self, word_ids: Tensor, glove_ids: Tensor) -> Tensor:
        """word_ids (B, T), glove_ids (B, T) -> word vectors (B, T, D)."""
        return self.words(word_ids, glove_ids)

    def from_vectors(self, word_vectors: Tensor, char_ids: Tensor, casing_ids: Tensor) -> Tensor:
        """word_vectors (B, T, D), char_ids (B, T, C), casing_ids (B, T) -> x (B, T, D_in)."""
        parts = [word_vectors]
        if self.chars is not None:
            parts.append(self.chars(char_ids))  # (B, T, F)
        if self.casing is not None:
            parts.append(self.casing(casing_ids))  # (B, T, casing_dim)
        x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
        return self.dropout(x)

    def forward(
        self, word_ids: Tensor, glove_ids: Tensor, char_ids: Tensor, casing_ids: Tensor
    ) -> Tensor:
        """Ids (B, T) and char ids (B, T, C) -> x (B, T, D_in)."""
        return self.from_vectors(self.word_vectors(word_ids, glove_ids), char_ids, casing_ids)

    def word_table(self) -> np.ndarray:
        """The trainable word table (V, D) float32, as bundles store it."""
        return self.words.table()


class FromVectors(nn.Module):
    """Wraps ``model.<method>(word_vectors, char_ids, casing_ids, lengths)`` as the module of an
    ONNX graph that starts at word vectors (the word lookup runs in NumPy at serving time)."""

    def __init__(self, model: nn.Module, method: str) -> None:
        super().__init__()
        self.model = model
        self.method = method

    def forward(
        self, word_vectors: Tensor, char_ids: Tensor, casing_ids: Tensor, lengths: Tensor
    ) -> Tensor:
        """word_vectors (B, T, D), char_ids (B, T, C), casing_ids (B, T), lengths (B,) -> the
        method's output (emissions (B, T, K) for the tagger, logits (B, K) for the classifier)."""
        return getattr(self.model, self.method)(word_vectors, char_ids, casing_ids, lengths)


def from_vectors_graph(
    model: nn.Module,
    method: str,
    tables: Any,
    output: str,
    output_axes: dict[int, str],
    atol: float = 1e-4,
) -> Any:
    """The ``ner.bundle.Graph`` of ``model.<method>`` over the input stack's inputs
    (word_vectors, char_ids, casing_ids, lengths -> ``output``); batch, time and character axes
    are dynamic. Shared by every task whose graph reads words."""
    from ner.bundle import Graph
    from ner.tasks.inputs import example_inputs, input_axes

    config: InputConfig = model.config.inputs  # type: ignore[union-attr,assignment]

    def example(rng: np.random.Generator, variant: int) -> dict[str, np.ndarray]:
        lengths = [4, 2] if variant == 0 else [9, 1, 5, 3]
        return example_inputs(config, tables, rng, lengths)

    return Graph(
        module=FromVectors(model, method),
        inputs=("word_vectors", "char_ids", "casing_ids", "lengths"),
        outputs=(output,),
        dynamic_axes={**input_axes(), "lengths": {0: "batch"}, output: output_axes},
        example=example,
        atol=atol,
    )


def load_word_table(inputs: InputStack, table: Tensor) -> dict[str, Tensor]:
    """State-dict entries (relative to the input stack) that put ``table`` (V, D) back: the
    inverse of ``InputStack.word_table`` for warm starts from a bundle."""
    words = inputs.words
    if words.onehot is not None:
        return {"words.onehot.W_ax": table.t().contiguous()}
    if words.delta is not None:
        return {"words.delta.weight": table}
    return {}


def installed_glove(config: InputConfig) -> np.ndarray | None:
    """The installed GloVe table when ``config`` uses GloVe, else ``None``."""
    if not config.uses_glove:
        return None
    from ner.data.glove import load_glove

    return load_glove().vectors
