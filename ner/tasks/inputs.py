"""The input stack's part of a bundle, shared by every task that reads words.

A bundle stores the word vocabulary (``vocabs.words``), the character vocabulary when the model
has character features (``vocabs.chars``), the trainable word table once (``arrays.word_table``,
float16) and, for GloVe models, a reference to the installed GloVe package. The graphs start at
word vectors (``word_vectors, char_ids, casing_ids``): the lookup runs in NumPy
(``ner.features.word_vectors``), so GloVe's 400k rows never enter a graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ner.bundle import Bundle, BundleError, BundleWriter, require
from ner.data.vocab import CASING_NAMES
from ner.features import Features, Featurizer, WordTables, word_vectors
from ner.nn.config import InputConfig

INPUT_NAMES = ("word_vectors", "char_ids", "casing_ids")
WORD_TABLE = "word_table"
WORD_TABLE_PREFIX = "inputs.words."
"""State-dict prefix of the word table, which the bundle stores once, in ``arrays.word_table``."""


def input_axes(prefix: str = "") -> dict[str, dict[int, str]]:
    """Dynamic axes of the input-stack inputs (batch, time, characters)."""
    return {
        f"{prefix}word_vectors": {0: "batch", 1: "time"},
        f"{prefix}char_ids": {0: "batch", 1: "time", 2: "chars"},
        f"{prefix}casing_ids": {0: "batch", 1: "time"},
    }


@dataclass(frozen=True)
class InputParts:
    """What a predictor needs to turn tokens into graph inputs."""

    featurizer: Featurizer
    tables: WordTables

    def arrays(self, features: Features) -> dict[str, np.ndarray]:
        """A padded batch -> the graph inputs ``word_vectors, char_ids, casing_ids, lengths``."""
        return {
            "word_vectors": word_vectors(self.tables, features.word_ids, features.glove_ids),
            "char_ids": features.char_ids.astype(np.int64, copy=False),
            "casing_ids": features.casing_ids.astype(np.int64, copy=False),
            "lengths": features.lengths.astype(np.int64, copy=False),
        }

    def encode(self, sentences: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
        return self.arrays(self.featurizer.encode(sentences))

    def with_table(self, table: np.ndarray) -> InputParts:
        """The same vocabularies and GloVe with another word table (an ensemble member's)."""
        return replace(self, tables=WordTables(table, self.tables.glove))


def member_key(key: str, member: int) -> str:
    """The bundle key of ensemble member ``member``'s ``key`` (member 0 keeps the plain key)."""
    return key if member == 0 else f"{key}.{member}"


def write_table(writer: BundleWriter, table: np.ndarray, member: int = 0) -> None:
    """Store a word table (float16), ``embeddings.npy`` or member ``i``'s ``embeddings.i.npy``."""
    filename = "embeddings.npy" if member == 0 else f"embeddings.{member}.npy"
    writer.write_array(
        member_key(WORD_TABLE, member), np.asarray(table, dtype=np.float16), filename
    )


def read_table(bundle: Bundle, config: InputConfig, member: int = 0) -> np.ndarray:
    """A word table of the bundle (member ``member``'s), checked against the model config."""
    key = member_key(WORD_TABLE, member)
    table = bundle.array(key, ndim=2)
    if table.shape != (config.vocab_size, config.word_dim):
        raise BundleError(
            bundle.file(bundle.config["arrays"][key]),
            f"table shape {table.shape} does not fit vocab size {config.vocab_size}, "
            f"dim {config.word_dim}",
        )
    return table


def write_inputs(writer: BundleWriter, table: np.ndarray, featurizer: Featurizer) -> dict[str, Any]:
    """Store the vocabularies, the word table (float16) and the GloVe reference.

    Returns the ``featurizer`` settings for the bundle's ``meta``.
    """
    writer.write_vocab("words", featurizer.words, "vocab.json")
    if featurizer.chars is not None:
        writer.write_vocab("chars", featurizer.chars, "chars.json")
    write_table(writer, table)
    if featurizer.use_glove:
        writer.use_glove()
    return {**featurizer.settings(), "chars": featurizer.chars is not None}


def read_inputs(bundle: Bundle, config: InputConfig) -> InputParts:
    """The featurizer and word tables of a bundle, checked against the model config."""
    cfg_path = bundle.config_path
    settings = require(bundle.meta, "featurizer", cfg_path, dict)
    use_glove = require(settings, "use_glove", cfg_path, bool)
    max_word_len = require(settings, "max_word_len", cfg_path, int)
    if max_word_len < 1:
        raise BundleError(
            cfg_path, f"featurizer.max_word_len must be a positive integer, got {max_word_len!r}"
        )
    words = bundle.vocab("words")
    chars = bundle.vocab("chars") if settings.get("chars") else None
    if len(words) != config.vocab_size:
        raise BundleError(
            bundle.file(bundle.config["vocabs"]["words"]),
            f"{len(words)} words, the model has vocab_size {config.vocab_size}",
        )
    if config.uses_chars and (chars is None or len(chars) != config.num_chars):
        raise BundleError(cfg_path, f"the model needs {config.num_chars} characters")
    table = read_table(bundle, config)
    glove = bundle.glove if use_glove else None
    featurizer = Featurizer(words, chars, use_glove, max_word_len)
    return InputParts(featurizer, WordTables(table, glove))


def example_inputs(
    config: InputConfig, tables: WordTables, rng: np.random.Generator, lengths: Sequence[int]
) -> dict[str, np.ndarray]:
    """A random padded batch of input-stack inputs (word vectors from the bundle's tables)."""
    b, t = len(lengths), max(max(lengths), 1)
    lens = np.asarray(lengths, dtype=np.int64)
    mask = np.arange(t)[None, :] < lens[:, None]
    word_ids = rng.integers(1, max(config.vocab_size, 2), size=(b, t)) * mask
    glove_ids = np.zeros((b, t), dtype=np.int64)
    if tables.glove is not None:
        glove_ids = rng.integers(1, tables.glove.shape[0] + 1, size=(b, t)) * mask
    c = 3 + len(lengths)
    char_ids = rng.integers(1, max(config.num_chars, 2), size=(b, t, c)) * mask[..., None]
    char_ids[..., c - 1 :: 2] = 0  # words of different lengths
    casing_ids = rng.integers(1, len(CASING_NAMES), size=(b, t)) * mask
    return {
        "word_vectors": word_vectors(tables, word_ids.astype(np.int64), glove_ids.astype(np.int64)),
        "char_ids": char_ids.astype(np.int64),
        "casing_ids": casing_ids.astype(np.int64),
        "lengths": lens,
    }
