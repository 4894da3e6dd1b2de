"""Language-model data: tokenisers, vocabularies with <EOS>, the three corpora, batches, and the
count baselines (add-one character bigram, add-one word unigram).

Every sequence y<1>..y<Ty> ends with <EOS>; the inputs are x<1> = START (id 0) and x<t> = y<t-1>
(the seed notes' language model). Tokens outside the vocabulary become <UNK>.

Corpora (``/work/shared/data``; never committed):

- dinosaur names, one per line, lower-cased, character level; 10% of the names held out;
- tiny-shakespeare, one character stream: the first 90% train, the last 10% validation;
- SST-2 sentences (already lower-cased and PTB-tokenised), word level, with their labels.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ner.data.vocab import PAD, UNK, Casing, Vocab

__all__ = [
    "EOS",
    "EOS_ID",
    "START",
    "Tokenizer",
    "bigram_add_one",
    "detokenize",
    "lm_vocab",
    "pad_batch",
    "read_lines",
    "read_sst2",
    "read_stream",
    "split_holdout",
    "stream_windows",
    "tokenize",
    "unigram_add_one",
]

EOS = "<eos>"
EOS_ID = 2
START = 0
"""x<1>: the start input, the vocabulary's <pad> id (never a target)."""

Tokenizer = Literal["chars", "sst2"]


def tokenize(kind: Tokenizer, text: str) -> list[str]:
    """A text -> tokens: its characters, or the SST-2 lower-cased PTB-style words."""
    if kind == "chars":
        return list(text)
    if kind == "sst2":
        from ner.classify import tokenize as sst2_tokenize

        return sst2_tokenize(text)
    raise ValueError(f"unknown tokenizer {kind!r}: expected 'chars' or 'sst2'")


def detokenize(kind: Tokenizer, tokens: Sequence[str]) -> str:
    """Tokens -> text (characters joined; words joined by spaces)."""
    return "".join(tokens) if kind == "chars" else " ".join(tokens)


def lm_vocab(
    sequences: Iterable[Sequence[str]],
    *,
    casing: Casing = "keep",
    min_freq: int = 1,
    max_size: int | None = None,
) -> Vocab:
    """<pad> (the start input), <unk>, <eos>, then the tokens by decreasing count."""
    base = Vocab.build(
        (t for s in sequences for t in s), min_freq=min_freq, max_size=max_size, casing=casing
    )
    rest = [t for t in base.itos[2:] if t != EOS]
    return Vocab((PAD, UNK, EOS, *rest), casing=casing)


def encode(vocab: Vocab, tokens: Sequence[str]) -> tuple[list[int], list[int]]:
    """Tokens -> (x ids [START, y<1>..y<Ty-1>], y ids [y<1>..y<Ty-1>, EOS]), both Ty long."""
    ids = vocab.encode(tokens)
    return [START, *ids], [*ids, EOS_ID]


def pad_batch(pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> tuple[np.ndarray, ...]:
    """(x, y) id lists -> x (B, T), y (B, T), lengths (B,), int64, padded with 0."""
    b, t = len(pairs), max((len(x) for x, _ in pairs), default=1)
    x = np.zeros((b, t), dtype=np.int64)
    y = np.zeros((b, t), dtype=np.int64)
    lengths = np.zeros(b, dtype=np.int64)
    for i, (xi, yi) in enumerate(pairs):
        x[i, : len(xi)] = xi
        y[i, : len(yi)] = yi
        lengths[i] = len(xi)
    return x, y, lengths


# --------------------------------------------------------------------------------------------
# Corpora


def read_lines(path: str | Path) -> list[str]:
    """The non-empty lines of a text file (trailing whitespace stripped)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.rstrip() for line in lines if line.strip()]


def split_holdout(
    items: Sequence[str], fraction: float = 0.1, seed: int = 0
) -> tuple[list[str], list[str]]:
    """A random ``fraction`` of the items held out -> (train, held_out), each in file order."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    order = np.random.default_rng(seed).permutation(len(items))
    held = set(order[: round(len(items) * fraction)].tolist())
    train = [s for i, s in enumerate(items) if i not in held]
    return train, [s for i, s in enumerate(items) if i in held]


def read_stream(path: str | Path, start: float = 0.0, end: float = 1.0) -> str:
    """The characters of a file from fraction ``start`` to ``end`` (a contiguous cut)."""
    text = Path(path).read_text(encoding="utf-8")
    return text[round(len(text) * start) : round(len(text) * end)]


@dataclass(frozen=True)
class LabelledText:
    tokens: list[str]
    label: int


def read_sst2(path: str | Path) -> list[LabelledText]:
    """SST-2 ``sentence<TAB>label`` lines -> tokens (split on spaces) and 0/1 labels."""
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        text, sep, label = line.rpartition("\t")
        if not sep or label.strip() not in ("0", "1"):
            raise ValueError(f"{path}:{n}: expected 'sentence<TAB>0|1'")
        out.append(LabelledText(text.split(), int(label)))
    return out


def stream_windows(
    ids: np.ndarray, length: int, batch: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Random windows of a token stream: x (B, length) = [START, s<i>..], y (B, length) = s<i..>.

    Each window is a sequence that starts from START and a zero state, as the predictor does.
    """
    starts = rng.integers(0, len(ids) - length, size=batch)
    y = np.stack([ids[s : s + length] for s in starts])
    x = np.concatenate([np.zeros((batch, 1), dtype=ids.dtype), y[:, :-1]], axis=1)
    return x.astype(np.int64), y.astype(np.int64)


# --------------------------------------------------------------------------------------------
# Baselines


def bigram_add_one(
    train: Iterable[Sequence[int]], test: Iterable[Sequence[int]], vocab_size: int
) -> tuple[float, int]:
    """Add-one (Laplace) smoothed bigram model P(y<t> | y<t-1>) with y<0> = START.

    Sequences are the target ids (ending with EOS). Returns (total nats over ``test``, tokens);
    each next token has ``vocab_size - 1`` possible values (START is never a target).
    """
    k = vocab_size
    counts = np.zeros((k, k), dtype=np.float64)
    for seq in train:
        prev = START
        for tok in seq:
            counts[prev, tok] += 1
            prev = tok
    outcomes = k - 1
    nats, n = 0.0, 0
    for seq in test:
        prev = START
        for tok in seq:
            nats -= math.log((counts[prev, tok] + 1) / (counts[prev].sum() + outcomes))
            prev = tok
            n += 1
    return nats, n


def unigram_add_one(
    train: Iterable[Sequence[int]], test: Iterable[Sequence[int]], vocab_size: int
) -> tuple[float, int]:
    """Add-one smoothed unigram model over the ``vocab_size - 1`` target ids (<unk> and <eos>
    included). Returns (total nats over ``test``, tokens)."""
    counts = Counter(t for seq in train for t in seq)
    total = sum(counts.values()) + vocab_size - 1
    nats, n = 0.0, 0
    for seq in test:
        for tok in seq:
            nats -= math.log((counts.get(tok, 0) + 1) / total)
            n += 1
    return nats, n
