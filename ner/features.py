"""Tokens -> padded id arrays, and word ids -> word vectors, in NumPy (no torch).

Training (``training/``), the torch backend and the ONNX backend all featurize through this
module, so the model sees exactly the same inputs everywhere.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ner.data.vocab import Vocab, casing_id

CACHED_WORD_CHARS = 64
"""Longest word the featurizer caches (so the cache holds at most ``cache_size`` short keys)."""
_PREFETCH_CHUNK = 16_384  # words per lookup step of Featurizer.prefetch (bounds its arrays)


@dataclass(frozen=True)
class Features:
    """A padded batch; every array is int64 and padded with 0."""

    word_ids: np.ndarray  # (B, T)
    glove_ids: np.ndarray  # (B, T) GloVe row + 1, 0 when absent
    char_ids: np.ndarray  # (B, T, C)
    casing_ids: np.ndarray  # (B, T)
    lengths: np.ndarray  # (B,)


class _WordRows:
    """Per-word ids, one row per distinct word seen, in growable arrays (the featurizer's cache).

    ``rows[word]`` is the word's row; ``ids[row] = (word id, GloVe id + 1, casing id, number of
    characters)`` and ``chars[row, :n]`` its first ``max_word_len`` character ids. Encoding a
    batch then gathers whole arrays instead of filling one token at a time. The lock keeps a
    clear (when full) from racing a gather in another thread; pickling drops the contents.
    """

    def __init__(self, max_word_len: int) -> None:
        self.max_word_len = max_word_len
        self.lock = threading.Lock()
        self.rows: dict[str, int] = {}
        self.ids = np.zeros((0, 4), dtype=np.int64)
        self.chars = np.zeros((0, max_word_len), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict[str, Any]:
        return {"max_word_len": self.max_word_len}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["max_word_len"])  # type: ignore[misc]

    def clear(self) -> None:
        self.rows.clear()

    def add(
        self, words: list[str], ids: np.ndarray, chars: np.ndarray, keep: int
    ) -> dict[str, int]:
        """Store rows for the new, distinct ``words`` (ids ``(N, 4)``, chars ``(N, W)``); returns
        word -> row. Only the first ``keep`` words are cached; the rest get scratch rows that the
        next ``add`` overwrites (gather them before releasing the lock)."""
        n, need = len(self.rows), len(self.rows) + len(words)
        if need > self.ids.shape[0]:
            cap = max(need, 2 * self.ids.shape[0], 1024)
            self.ids = _grown(self.ids, cap, n)
            self.chars = _grown(self.chars, cap, n)
        self.ids[n:need] = ids
        self.chars[n:need] = chars
        placed = dict(zip(words, range(n, need), strict=True))
        self.rows.update(zip(words[:keep], range(n, n + keep), strict=True))
        return placed


def _grown(a: np.ndarray, rows: int, keep: int) -> np.ndarray:
    out = np.zeros((rows, *a.shape[1:]), dtype=a.dtype)
    out[:keep] = a[:keep]
    return out


@dataclass(frozen=True)
class Featurizer:
    """Maps sentences (lists of token strings) to ``Features``."""

    words: Vocab
    chars: Vocab | None = None
    use_glove: bool = False
    max_word_len: int = 20
    # word -> (word id, GloVe id + 1, casing id, char ids) (``_WordRows``): words repeat (Zipf), so
    # tagging looks each one up once. Bounded: cleared when full, and words longer than
    # CACHED_WORD_CHARS are never cached (they are rare in text, and unique long "words" would
    # otherwise fill it with up to cache_size long keys). Not part of the featurizer's identity.
    _cache: _WordRows = field(init=False, repr=False, compare=False)
    cache_size: int = field(default=200_000, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cache", _WordRows(self.max_word_len))

    def settings(self) -> dict[str, Any]:
        """What the bundle's config.json stores (vocabularies live in their own files)."""
        return {"use_glove": self.use_glove, "max_word_len": self.max_word_len}

    def _glove_index(self) -> Any:
        from ner.data.glove import load_glove

        return load_glove()

    def _lookup(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Ids ``(N, 4)`` and char ids ``(N, max_word_len)`` of distinct ``words`` (uncached)."""
        n, width = len(words), self.max_word_len
        ids = np.zeros((n, 4), dtype=np.int64)
        chars = np.zeros((n, width), dtype=np.int64)
        ids[:, 0] = self.words.encode(words)
        if self.use_glove:
            ids[:, 1] = self._glove_index().ids(words) + 1
        ids[:, 2] = [casing_id(w) for w in words]
        if self.chars is not None and n:
            # Each distinct character is encoded once: code points -> unique -> ids.
            clipped = [w[:width] for w in words]
            ids[:, 3] = [len(w) for w in clipped]
            text = "".join(clipped).encode("utf-32-le", "surrogatepass")  # lone surrogates too
            points = np.frombuffer(text, dtype=np.uint32)
            distinct, inverse = np.unique(points, return_inverse=True)
            table = np.asarray(self.chars.encode([chr(c) for c in distinct.tolist()]), np.int64)
            chars[np.arange(width) < ids[:, 3:4]] = table[inverse.reshape(-1)]
        return ids, chars

    def _rows(self, tokens: list[str]) -> np.ndarray:
        """Cache rows ``(N,)`` of ``tokens``, looking up the words not cached yet (lock held)."""
        cache = self._cache
        rows: list[int | None] = list(map(cache.rows.get, tokens))
        if None in rows:
            missing: Sequence[int] = [i for i, r in enumerate(rows) if r is None]
            new = list(dict.fromkeys(tokens[i] for i in missing))
            short = [w for w in new if len(w) <= CACHED_WORD_CHARS]
            if len(cache) + len(short) > self.cache_size:
                cache.clear()
                missing = range(len(tokens))
                new = list(dict.fromkeys(tokens))
                short = [w for w in new if len(w) <= CACHED_WORD_CHARS]
            if len(short) < len(new):  # cached words first, then the long ones (scratch rows)
                new = short + [w for w in new if len(w) > CACHED_WORD_CHARS]
            keep = max(0, min(len(short), self.cache_size - len(cache)))  # batch > cache_size
            placed = cache.add(new, *self._lookup(new), keep=keep)
            for i in missing:
                rows[i] = placed[tokens[i]]
        return np.fromiter(rows, dtype=np.int64, count=len(rows))

    def prefetch(self, sentences: Iterable[Sequence[str]]) -> None:
        """Look the distinct words of ``sentences`` up now, in a few large steps, so that
        ``encode`` of their batches only gathers (each lookup step has a fixed cost in NumPy
        calls). At most ``cache_size`` words; the cache's bounds hold as in ``encode``."""
        words = list(dict.fromkeys(itertools.chain.from_iterable(sentences)))[: self.cache_size]
        for k in range(0, len(words), _PREFETCH_CHUNK):
            with self._cache.lock:
                self._rows(words[k : k + _PREFETCH_CHUNK])

    def encode(self, sentences: Sequence[Sequence[str]]) -> Features:
        """sentences: B lists of tokens -> Features with T = longest sentence (at least 1)."""
        b = len(sentences)
        lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=b)
        t = max(int(lengths.max(initial=0)), 1)
        tokens = list(itertools.chain.from_iterable(sentences))
        mask = np.arange(t) < lengths[:, None]  # (B, T), row-major order = order of ``tokens``
        with self._cache.lock:
            rows = self._rows(tokens)
            ids = self._cache.ids[rows]  # (N, 4)
            c = max(int(ids[:, 3].max(initial=0)), 1) if self.chars is not None else 1
            flat_chars = self._cache.chars[rows, :c]  # (N, C)
        word_ids, glove_ids, casing_ids = (np.zeros((b, t), dtype=np.int64) for _ in range(3))
        word_ids[mask] = ids[:, 0]
        glove_ids[mask] = ids[:, 1]
        casing_ids[mask] = ids[:, 2]
        char_ids = np.zeros((b, t, c), dtype=np.int64)
        char_ids[mask] = flat_chars
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
