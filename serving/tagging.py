"""Requests to sentences, and tagged sentences back to documents with global offsets.

The server splits texts into sentences itself (``ner.data.tokenize.split_sentences``), so that
the batcher can pack sentences from many requests into one predictor call, and so that a sentence
longer than the token cap is tagged in windows instead of padding a whole batch to its length.
Each window goes to the predictor (``Predictor.tag``) as a token list, which it takes as it is:
texts are tokenised once, here. Its token and entity indices are mapped back to the document's
own tokens, whose offsets index the submitted text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ner.data.tokenize import Token, split_sentences, tokens_from_words


@dataclass(frozen=True)
class DocumentPlan:
    """One document: the string offsets index, its tokens, and windows of token indices."""

    text: str
    tokens: tuple[Token, ...]
    windows: tuple[tuple[int, int], ...]  # [start, end) token indices, each <= max_tokens long

    def sentences(self) -> list[list[str]]:
        """The token strings of each window, in order."""
        return [[t.text for t in self.tokens[a:b]] for a, b in self.windows]


def plan_text(text: str, max_tokens: int) -> DocumentPlan:
    """Split ``text`` into sentences, and sentences longer than ``max_tokens`` into windows."""
    tokens: list[Token] = []
    windows: list[tuple[int, int]] = []
    for sentence in split_sentences(text):
        first = len(tokens)
        tokens.extend(sentence)
        for a in range(first, len(tokens), max_tokens):
            windows.append((a, min(a + max_tokens, len(tokens))))
    return DocumentPlan(text=text, tokens=tuple(tokens), windows=tuple(windows))


def plan_tokens(words: Sequence[str]) -> DocumentPlan:
    """A tokenised sentence: offsets index the words joined by single spaces."""
    text, tokens = tokens_from_words(list(words))
    windows = ((0, len(tokens)),) if tokens else ()
    return DocumentPlan(text=text, tokens=tuple(tokens), windows=windows)


def _probability(value: Any) -> float:
    p = float(value)
    if math.isnan(p):
        return 0.0
    return min(1.0, max(0.0, p))


def assemble(plan: DocumentPlan, tagged: Sequence[Any]) -> dict[str, Any]:
    """``{"tokens", "entities"}`` of a document from ``Predictor.tag``'s result per window."""
    if len(tagged) != len(plan.windows):
        raise RuntimeError(f"expected {len(plan.windows)} tagged windows, got {len(tagged)}")
    tokens: list[dict[str, Any]] = []
    entities: list[dict[str, Any]] = []
    for (a, b), sentence in zip(plan.windows, tagged, strict=True):
        if len(sentence.labels) != b - a:
            raise RuntimeError(f"the predictor returned {len(sentence.labels)} tags for {b - a}")
        for tok, label, score in zip(
            plan.tokens[a:b], sentence.labels, sentence.scores, strict=True
        ):
            tokens.append(
                {
                    "text": tok.text,
                    "start": tok.start,
                    "end": tok.end,
                    "label": label,
                    "is_name": 0 if label == "O" else 1,
                    "score": _probability(score),
                }
            )
        for label, token_start, token_end, score in sentence.entities:
            first, last = a + token_start, a + token_end
            start, end = plan.tokens[first].start, plan.tokens[last - 1].end
            entities.append(
                {
                    "text": plan.text[start:end],
                    "label": label,
                    "start": start,
                    "end": end,
                    "token_start": first,
                    "token_end": last,
                    "score": _probability(score),
                }
            )
    return {"tokens": tokens, "entities": entities}
