"""Entity spans of many sentences at once, read from tag ids and written as labels, in NumPy.

``ner.data.schemes`` reads tags into spans and writes spans back as tags one sentence at a time,
in Python. The predictor holds the Viterbi tag ids of whole batches (sentences end to end,
``ner.decode.viterbi_flat``); :class:`SpanReader` does the same reading and writing for all of
them with a few array operations.

conlleval's chunk rules (``spans_from_tags``) decide whether a chunk starts at a token, or ends
just before it, from that token's tag and the previous one only. So two tables over pairs of tags,
``starts[prev, cur]`` and ``ends[prev, cur]`` (with an ``O`` before the first and after the last
token of each sentence), hold the whole reading; they are filled by running ``spans_from_tags``
itself on one- and two-tag sequences, and the tests compare every sequence of up to four tags
with ``ner.data.schemes.convert``. A chunk's type is the type of its tags (a change of type ends
a chunk). Writing follows ``tags_from_spans``: IOB1 ``B-`` only where an entity directly follows
one of the same type in the same sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ner.data.schemes import Scheme, spans_from_tags

__all__ = ["SpanReader", "Spans"]

_B, _I, _E, _S = range(4)  # prefix slots of each type in SpanReader.names
_PREFIXES = ("B", "I", "E", "S")


@dataclass(frozen=True)
class Spans:
    """Entity spans over sentences laid end to end: rows ``start .. end - 1``, in order.

    Attributes:
        start: ``(S,)`` first row of each span.
        end: ``(S,)`` row after its last token (exclusive).
        type_ids: ``(S,)`` index of each span's type in :attr:`SpanReader.types`.
        sentence: ``(S,)`` the sentence each span lies in.
    """

    start: np.ndarray
    end: np.ndarray
    type_ids: np.ndarray
    sentence: np.ndarray


class SpanReader:
    """Reads the spans of tag-id sequences in the model's ``scheme`` and writes labels.

    Args:
        labels: the ``K`` tag names in tag-id order.
        scheme: the scheme the tags are read in (``"iob1"``, ``"iob2"``, ``"bioes"``,
            ``"binary"``), as ``spans_from_tags`` reads them.
    """

    def __init__(self, labels: Sequence[str], scheme: Scheme) -> None:
        k = len(labels)
        seqs = [[label] for label in labels] + [[]]  # index k: outside the sentence, read as O
        kinds: list[str | None] = [None] * k
        for j, label in enumerate(labels):
            alone = spans_from_tags([label], scheme)
            kinds[j] = alone[0].label if alone else None
        self.types: tuple[str, ...] = tuple(sorted({t for t in kinds if t is not None}))
        type_of = {t: i for i, t in enumerate(self.types)}
        self._type = np.array([-1 if t is None else type_of[t] for t in kinds], dtype=np.int64)
        # starts[prev, cur]: a chunk starts at cur; ends[prev, cur]: a chunk ends before cur.
        self._starts = np.zeros((k + 1, k + 1), dtype=bool)
        self._ends = np.zeros((k + 1, k + 1), dtype=bool)
        for i, prev in enumerate(seqs):
            for j, cur in enumerate(seqs):
                n = len(prev)
                for span in spans_from_tags(prev + cur, scheme):
                    self._starts[i, j] |= bool(cur) and span.start == n
                    self._ends[i, j] |= bool(prev) and span.end == n
        self.num_tags = k

    def names(self, scheme: Scheme) -> list[str]:
        """The labels :meth:`label_ids` indexes: ``O`` (``0`` in binary), then B, I, E, S per
        type (binary: ``1``)."""
        if scheme == "binary":
            return ["0", "1"]
        return ["O"] + [f"{p}-{t}" for t in self.types for p in _PREFIXES]

    def spans(self, tag_ids: np.ndarray, lengths: np.ndarray) -> Spans:
        """The spans of every sentence: ``tag_ids (N,)`` of sentences of ``lengths (B,)``."""
        ids = np.asarray(tag_ids, dtype=np.int64)
        lens = np.asarray(lengths, dtype=np.int64)
        ends = np.cumsum(lens)
        firsts = (ends - lens)[lens > 0]  # the first row of each non-empty sentence
        outside = self.num_tags
        prev = np.empty_like(ids)
        prev[1:] = ids[:-1]
        prev[firsts] = outside
        nxt = np.empty_like(ids)
        nxt[:-1] = ids[1:]
        nxt[ends[lens > 0] - 1] = outside
        start = np.flatnonzero(self._starts[prev, ids])
        end = np.flatnonzero(self._ends[ids, nxt]) + 1
        sentence = np.searchsorted(ends, start, side="right")
        return Spans(start, end, self._type[ids[start]], sentence)

    def label_ids(self, spans: Spans, lengths: np.ndarray, scheme: Scheme) -> np.ndarray:
        """``(N,)`` index into :meth:`names` of each token's label in ``scheme``."""
        n = int(np.sum(lengths))
        out = np.zeros(n, dtype=np.int64)
        sizes = spans.end - spans.start
        first = np.cumsum(sizes) - sizes  # position of each span's first token in ``rows``
        rows = np.repeat(spans.start - first, sizes) + np.arange(int(sizes.sum()))
        if scheme == "binary":
            out[rows] = 1
            return out
        prefix = np.full(len(rows), _I)
        if scheme == "iob1":  # B- where the previous span of the sentence ends here, same type
            touches = np.zeros(len(sizes), dtype=bool)
            touches[1:] = (
                (spans.start[1:] == spans.end[:-1])
                & (spans.type_ids[1:] == spans.type_ids[:-1])
                & (spans.sentence[1:] == spans.sentence[:-1])
            )
            prefix[first[touches]] = _B
        else:
            prefix[first] = _B
            if scheme == "bioes":
                prefix[first + sizes - 1] = _E
                prefix[first[sizes == 1]] = _S
        out[rows] = 1 + 4 * np.repeat(spans.type_ids, sizes) + prefix
        return out

    def labels(self, spans: Spans, lengths: np.ndarray, scheme: Scheme) -> list[str]:
        """The label in ``scheme`` of every token, as ``convert(tags, model scheme, scheme)``
        gives them sentence by sentence (``spans`` from :meth:`spans`)."""
        ids = self.label_ids(spans, lengths, scheme)
        return np.asarray(self.names(scheme), dtype=object)[ids].tolist()
