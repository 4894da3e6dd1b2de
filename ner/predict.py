"""Tag raw texts or tokenised sentences with a loaded bundle.

``Predictor.predict`` takes raw texts (tokenised and split into sentences by
``ner.data.tokenize``; offsets are code-point offsets into the text) or sentences already tokenised
(lists of words; offsets then refer to the words joined by single spaces). Sentences are sorted by
length and batched so that padding stays small; emissions come from the bundle's backend (ONNX
Runtime or torch) and all decoding runs in NumPy (``ner.decode``), whatever the backend.

Per token the predictor reports the label as an IOB2 typed tag (``B-PER``, ``I-PER``, ``O``),
whatever scheme the model was trained in, ``is_name`` (1 inside any entity) and ``score``: the
CRF marginal probability ``P(y_t = k | x)`` of the tag the decoder chose at that token, in the
model's own scheme (for the softmax head: the constrained softmax probability).

Per entity it reports ``score``: the exact CRF probability that the entity's tokens carry exactly
the decoded tags of the span, ``P(y_s..y_{e-1} | x)`` (see ``ner.decode``); it is never larger
than the smallest token score of the entity. ``token_end`` and ``end`` are exclusive.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ner.bundle import Backend, Bundle, load_bundle
from ner.data.schemes import convert, spans_from_tags, tags_from_spans
from ner.data.tokenize import Token, split_sentences, tokens_from_words
from ner.decode import Decoded, decode_batch, viterbi

__all__ = ["Document", "EntityResult", "Predictor", "TokenResult"]

Input = str | Sequence[str]


@dataclass(frozen=True)
class TokenResult:
    """One token: its text and code-point offsets, IOB2 label, 0/1 name flag and confidence."""

    text: str
    start: int
    end: int
    label: str
    is_name: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "label": self.label,
            "is_name": self.is_name,
            "score": self.score,
        }


@dataclass(frozen=True)
class EntityResult:
    """One entity: text, type, code-point offsets, token indices (end exclusive), span score."""

    text: str
    label: str
    start: int
    end: int
    token_start: int
    token_end: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "label": self.label,
            "start": self.start,
            "end": self.end,
            "token_start": self.token_start,
            "token_end": self.token_end,
            "score": self.score,
        }


@dataclass(frozen=True)
class Document:
    """The prediction for one input: tokens (document-wide indices) and entities."""

    text: str
    tokens: list[TokenResult]
    entities: list[EntityResult]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokens": [t.to_dict() for t in self.tokens],
            "entities": [e.to_dict() for e in self.entities],
        }


class Predictor:
    """Batched prediction over a loaded :class:`~ner.bundle.Bundle`.

    Args:
        bundle: the loaded bundle.
        max_tokens: raw-text sentences longer than this are cut into pieces of this many tokens
            (bounds latency and memory on text without sentence punctuation; offsets stay global).
    """

    def __init__(self, bundle: Bundle, *, max_tokens: int = 512) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        self.bundle = bundle
        self.max_tokens = max_tokens

    @classmethod
    def from_path(
        cls, path: str | os.PathLike[str], backend: Backend = "onnx", **kwargs: Any
    ) -> Predictor:
        """Load the bundle at ``path`` (see :func:`ner.bundle.load_bundle`) and wrap it."""
        threads = kwargs.pop("threads", None)
        return cls(load_bundle(path, backend, threads=threads), **kwargs)

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def version(self) -> str:
        return self.bundle.version

    @property
    def task(self) -> str:
        return self.bundle.task

    @property
    def card(self) -> dict[str, Any]:
        return self.bundle.card

    @property
    def labels(self) -> tuple[str, ...]:
        return self.bundle.labels

    # ----------------------------------------------------------------------------------------

    def predict(self, inputs: Sequence[Input], batch_size: int = 64) -> list[Document]:
        """Tag raw texts and/or tokenised sentences.

        Args:
            inputs: each item is a raw text (``str``) or one sentence as a list of words.
            batch_size: sentences per forward pass.

        Raises:
            TypeError: an input is neither a str nor a list of str.
            ValueError: a word of a tokenised input is empty or contains whitespace.

        Returns:
            One :class:`Document` per input, in input order.
        """
        if isinstance(inputs, str):
            raise TypeError("predict() takes a list of inputs; wrap a single text as [text]")
        prepared = [self._prepare(item) for item in inputs]
        sentences = [
            (d, piece) for d, (_, sents) in enumerate(prepared) for piece in sents if piece
        ]
        decoded = self._decode([[t.text for t in piece] for _, piece in sentences], batch_size)
        per_doc: list[list[tuple[list[Token], Decoded]]] = [[] for _ in prepared]
        for (d, piece), dec in zip(sentences, decoded, strict=True):
            per_doc[d].append((piece, dec))
        return [
            self._document(text, parts) for (text, _), parts in zip(prepared, per_doc, strict=True)
        ]

    def predict_tokens(
        self, sentences: Sequence[Sequence[str]], scheme: str = "iob2", batch_size: int = 64
    ) -> list[list[str]]:
        """Fast path for evaluation: Viterbi labels only, converted to ``scheme``.

        Args:
            sentences: tokenised sentences (taken as they are; an empty one gives ``[]``).
            scheme: ``"iob1"``, ``"iob2"``, ``"bioes"`` or ``"binary"``.
            batch_size: sentences per forward pass.

        Returns:
            One list of labels per sentence.
        """
        src = self.bundle.tag_scheme
        labels = self.bundle.labels
        out = []
        for ids in self._decode(sentences, batch_size, full=False):
            tags = [labels[i] for i in ids]
            out.append(tags if not tags else convert(tags, src, scheme))  # type: ignore[arg-type]
        return out

    # ----------------------------------------------------------------------------------------

    def _prepare(self, item: Input) -> tuple[str, list[list[Token]]]:
        """An input -> (its text, its sentences as tokens with global offsets)."""
        if isinstance(item, str):
            return item, split_sentences(item, max_tokens=self.max_tokens)
        if isinstance(item, Sequence) and all(isinstance(w, str) for w in item):
            text, tokens = tokens_from_words(list(item))
            return text, [tokens] if tokens else []
        raise TypeError(f"an input must be a str or a list of str, got {type(item).__name__}")

    def _batches(self, sentences: Sequence[Sequence[str]], batch_size: int) -> Iterator[list[int]]:
        """Indices of non-empty sentences, sorted by length and cut into batches."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        order = sorted(
            (i for i, s in enumerate(sentences) if len(s)), key=lambda i: len(sentences[i])
        )
        for k in range(0, len(order), batch_size):
            yield order[k : k + batch_size]

    def _decode(
        self, sentences: Sequence[Sequence[str]], batch_size: int, *, full: bool = True
    ) -> list[Any]:
        """Decoded (``full``) or Viterbi tag ids per sentence, in input order."""
        bundle = self.bundle
        results: list[Any] = [None] * len(sentences)
        for batch in self._batches(sentences, batch_size):
            features = bundle.featurizer.encode([list(sentences[i]) for i in batch])
            emissions = bundle.emissions(features)
            if full:
                out = decode_batch(emissions, features.lengths, bundle.transitions)
            else:
                out = viterbi(emissions, features.lengths, bundle.transitions)
            for i, item in zip(batch, out, strict=True):
                results[i] = item
        for i, item in enumerate(results):
            if item is None:  # an empty sentence
                results[i] = _empty_decoded(bundle) if full else np.zeros(0, dtype=np.int64)
        return results

    def _document(self, text: str, parts: list[tuple[list[Token], Decoded]]) -> Document:
        labels = self.bundle.labels
        scheme = self.bundle.tag_scheme
        tokens: list[TokenResult] = []
        entities: list[EntityResult] = []
        for piece, dec in parts:
            offset = len(tokens)
            tags = [labels[i] for i in dec.tag_ids.tolist()]
            spans = spans_from_tags(tags, scheme)  # type: ignore[arg-type]
            iob2 = tags_from_spans(spans, len(tags), "iob2")
            scores = dec.tag_scores.tolist()  # Python floats, converted in one call
            tokens.extend(
                TokenResult(tok.text, tok.start, tok.end, label, int(label != "O"), score)
                for tok, label, score in zip(piece, iob2, scores, strict=True)
            )
            for span in spans:
                start, end = piece[span.start].start, piece[span.end - 1].end
                entities.append(
                    EntityResult(
                        text=text[start:end],
                        label=span.label,
                        start=start,
                        end=end,
                        token_start=offset + span.start,
                        token_end=offset + span.end,
                        score=dec.span_score(span.start, span.end),
                    )
                )
        return Document(text, tokens, entities)


def _empty_decoded(bundle: Bundle) -> Decoded:
    k = bundle.num_tags
    return decode_batch(
        np.zeros((1, 0, k), dtype=np.float32), np.zeros(1, dtype=np.int64), bundle.transitions
    )[0]
