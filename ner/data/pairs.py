"""Parallel sentence pairs: the Tatoeba English-French file, its split, and a retrieval baseline.

The file (``shared/data/fra-eng/eng-fra.txt``, CC-BY 2.0 FR) has ``English<TAB>French<TAB>
attribution`` lines. Many English sentences have several accepted French translations, so the
split is by English sentence (:func:`split_by_source`): the same English sentence is never in
two parts, and at test time all its translations are references.

Both sides are lowercased and tokenized by :func:`tokenize` (words, elided French articles such
as ``j'`` and ``l'`` kept with their apostrophe, punctuation as its own token); :func:`detokenize`
puts a translation back together with French spacing (a space before ``! ? ; :``).

The retrieval baseline (:class:`Retrieval`) answers with the French side of the most similar
English training sentence (TF-IDF cosine over words), the honest floor a 5,000-pair translation
model has to beat.
"""

from __future__ import annotations

import math
import os
import random
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Pair",
    "Retrieval",
    "detokenize",
    "normalize_text",
    "read_pairs",
    "split_by_source",
    "tokenize",
]

_SPACES = re.compile(r"[\s\u00a0\u202f]+")
_TOKEN = re.compile(r"\w+'|\w+(?:-\w+)*|[^\w\s]")
_NO_SPACE_BEFORE = {".", ",", ")", "…"}
_NO_SPACE_AFTER = {"(", "-"}


@dataclass(frozen=True)
class Pair:
    """One English sentence, one of its French translations, and the Tatoeba attribution."""

    source: str
    target: str
    attribution: str = ""


def normalize_text(text: str) -> str:
    """Lowercase, narrow and non-breaking spaces to plain spaces, typographic apostrophes to
    ``'``, whitespace runs collapsed, stripped."""
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    return _SPACES.sub(" ", text).strip().lower()


def tokenize(text: str) -> list[str]:
    """A sentence -> tokens: ``"J'ai faim !"`` -> ``["j'", "ai", "faim", "!"]``."""
    return _TOKEN.findall(normalize_text(text))


def detokenize(tokens: Sequence[str]) -> str:
    """The inverse of :func:`tokenize` up to spacing, with French spacing before ``! ? ; :``."""
    out = ""
    for i, tok in enumerate(tokens):
        if i and not (
            tok in _NO_SPACE_BEFORE or out.endswith("'") or tokens[i - 1] in _NO_SPACE_AFTER
        ):
            out += " "
        out += tok
    return out


def read_pairs(path: str | os.PathLike[str]) -> list[Pair]:
    """Read a tab-separated ``source<TAB>target[<TAB>attribution]`` file.

    Raises:
        ValueError: a line without a tab, or with an empty side (the message names the line).
    """
    pairs = []
    with Path(path).open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            cols = line.split("\t")
            if len(cols) < 2 or not cols[0].strip() or not cols[1].strip():
                raise ValueError(f"{path}:{n}: expected 'source<TAB>target[<TAB>attribution]'")
            pairs.append(Pair(cols[0].strip(), cols[1].strip(), cols[2] if len(cols) > 2 else ""))
    return pairs


def split_by_source(
    pairs: Sequence[Pair], dev: float = 0.1, test: float = 0.1, seed: int = 0
) -> tuple[list[Pair], list[Pair], list[Pair]]:
    """Split into (train, dev, test) by normalized source sentence: all translations of one
    English sentence land in the same part. ``dev`` and ``test`` are fractions of the distinct
    source sentences."""
    if not (0 <= dev < 1 and 0 <= test < 1 and dev + test < 1):
        raise ValueError(f"dev and test must be fractions with dev + test < 1, got {dev}, {test}")
    groups: dict[str, list[Pair]] = defaultdict(list)
    for pair in pairs:
        groups[normalize_text(pair.source)].append(pair)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    n_dev, n_test = round(len(keys) * dev), round(len(keys) * test)
    parts = (keys[n_dev + n_test :], keys[:n_dev], keys[n_dev : n_dev + n_test])
    train, dev_pairs, test_pairs = ([p for k in part for p in groups[k]] for part in parts)
    return train, dev_pairs, test_pairs


def references(pairs: Sequence[Pair]) -> tuple[list[str], list[list[str]]]:
    """Distinct normalized sources and, for each, all its normalized targets (in file order)."""
    refs: dict[str, list[str]] = {}
    for pair in pairs:
        refs.setdefault(normalize_text(pair.source), []).append(normalize_text(pair.target))
    return list(refs), list(refs.values())


class Retrieval:
    """Nearest-neighbour "translation": the target of the most similar training source.

    Similarity is the cosine of TF-IDF vectors over :func:`tokenize` words; ties go to the
    source seen first. A source with several targets answers with the first one.
    """

    def __init__(self, pairs: Sequence[Pair]) -> None:
        first: dict[str, str] = {}
        for pair in pairs:
            first.setdefault(normalize_text(pair.source), normalize_text(pair.target))
        self.sources = list(first)
        self.targets = [first[s] for s in self.sources]
        docs = [Counter(tokenize(s)) for s in self.sources]
        df = Counter(w for d in docs for w in d)
        n = len(docs)
        self.idf = {w: math.log((1 + n) / (1 + c)) + 1.0 for w, c in df.items()}
        self.vectors = [self._vector(d) for d in docs]
        self.index: dict[str, list[int]] = defaultdict(list)
        for i, d in enumerate(docs):
            for w in d:
                self.index[w].append(i)

    def _vector(self, counts: Counter[str]) -> dict[str, float]:
        vec = {w: c * self.idf.get(w, 0.0) for w, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {w: v / norm for w, v in vec.items()}

    def translate(self, source: str) -> str:
        """The target of the training source most similar to ``source``."""
        query = self._vector(Counter(tokenize(source)))
        scores: dict[int, float] = defaultdict(float)
        for w, q in query.items():
            for i in self.index.get(w, ()):
                scores[i] += q * self.vectors[i][w]
        if not scores:
            return self.targets[0]
        best = max(scores, key=lambda i: (scores[i], -i))
        return self.targets[best]
