"""Tokens -> padded id arrays, and word ids -> word vectors, in NumPy (no torch).

Training (``training/``), the torch backend and the ONNX backend all featurize through this
module, so the model sees exactly the same inputs everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ner.data.vocab import Vocab, casing_id

CACHED_WORD_CHARS = 64
"""Longest word the featurizer caches (so the cache holds at most ``cache_size`` short keys)."""


@dataclass(frozen=True)
class Features:
    """A padded batch; every array is int64 and padded with 0."""

    word_ids: np.ndarray  # (B, T)
    glove_ids: np.ndarray  # (B, T) GloVe row + 1, 0 when absent
    char_ids: np.ndarray  # (B, T, C)
    casing_ids: np.ndarray  # (B, T)
    lengths: np.ndarray  # (B,)


@dataclass(frozen=True)
class Featurizer:
    """Maps sentences (lists of token strings) to ``Features``."""

    words: Vocab
    chars: Vocab | None = None
    use_glove: bool = False
    max_word_len: int = 20
    # word -> (word id, GloVe id + 1, casing id, char ids): words repeat (Zipf), so tagging looks
    # each one up once. Bounded: cleared when full, and words longer than CACHED_WORD_CHARS are
    # never cached (they are rare in text, and unique long "words" would otherwise fill it with
    # up to cache_size long keys). Not part of the featurizer's identity.
    _cache: dict[str, tuple[int, int, int, tuple[int, ...]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    cache_size: int = field(default=200_000, repr=False, compare=False)

    def settings(self) -> dict[str, Any]:
        """What the bundle's config.json stores (vocabularies live in their own files)."""
        return {"use_glove": self.use_glove, "max_word_len": self.max_word_len}

    def _glove_index(self) -> Any:
        from ner.data.glove import load_glove

        return load_glove()

    def _word(self, word: str) -> tuple[int, int, int, tuple[int, ...]]:
        """The ids of one word, cached."""
        hit = self._cache.get(word)
        if hit is not None:
            return hit
        glove = self._glove_index() if self.use_glove else None
        chars: tuple[int, ...] = ()
        if self.chars is not None:
            chars = tuple(self.chars.encode(list(word[: self.max_word_len])))
        ids = (
            self.words.id(word),
            glove.id(word) + 1 if glove is not None else 0,
            casing_id(word),
            chars,
        )
        if len(word) > CACHED_WORD_CHARS:
            return ids
        if len(self._cache) >= self.cache_size:
            self._cache.clear()
        self._cache[word] = ids
        return ids

    def encode(self, sentences: Sequence[Sequence[str]]) -> Features:
        """sentences: B lists of tokens -> Features with T = longest sentence (at least 1)."""
        b = len(sentences)
        t = max((len(s) for s in sentences), default=0)
        t = max(t, 1)
        c = 1
        if self.chars is not None:
            c = max((min(len(w), self.max_word_len) for s in sentences for w in s), default=1)
            c = max(c, 1)
        word_ids = np.zeros((b, t), dtype=np.int64)
        glove_ids = np.zeros((b, t), dtype=np.int64)
        char_ids = np.zeros((b, t, c), dtype=np.int64)
        casing_ids = np.zeros((b, t), dtype=np.int64)
        lengths = np.zeros(b, dtype=np.int64)
        for i, sentence in enumerate(sentences):
            n = len(sentence)
            lengths[i] = n
            for j, word in enumerate(sentence):
                w, g, cas, chars = self._word(word)
                word_ids[i, j] = w
                glove_ids[i, j] = g
                casing_ids[i, j] = cas
                if chars:
                    char_ids[i, j, : len(chars)] = chars
        return Features(word_ids, glove_ids, char_ids, casing_ids, lengths)


@dataclass(frozen=True)
class WordTables:
    """The word-vector tables: a trainable (V, D) table and, optionally, frozen GloVe (G, D)."""

    table: np.ndarray  # (V, D), float16 or float32
    glove: np.ndarray | None = None  # (G, D) float32, usually a read-only memmap


def word_vectors(tables: WordTables, word_ids: np.ndarray, glove_ids: np.ndarray) -> np.ndarray:
    """NumPy twin of ``Tagger.word_vectors``: (B, T) ids -> (B, T, D) float32 vectors."""
    out = tables.table[word_ids].astype(np.float32)
    if tables.glove is not None:
        present = glove_ids > 0
        rows = np.asarray(tables.glove[np.where(present, glove_ids - 1, 0)], dtype=np.float32)
        out += rows * present[..., None]
    return out
