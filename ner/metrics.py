"""Entity-level precision, recall and F1 (micro and per type) and token accuracy.

The numbers equal ``seqeval.metrics`` in its default mode, which is compatible with the CoNLL
``conlleval`` script: entities are read from the tags with conlleval's chunking rules
(:func:`ner.data.schemes.spans_from_tags`), so invalid sequences such as an ``I-X`` after ``O``
are read the way conlleval reads them (the ``I-X`` starts an entity). An entity counts as correct
only when its type, first and last token all match. seqeval chunks the concatenation of all
sentences with an ``O`` between two sentences; chunking each sentence on its own gives the same
entities, so that is what happens here.

Precision is 0 when nothing is predicted, recall is 0 when there is no gold entity, F1 is 0 when
both are 0 (seqeval's ``zero_division="warn"`` values, without the warning).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ner.data.schemes import Scheme, Span, spans_from_tags

__all__ = ["PRF", "EntityReport", "entity_scores", "format_report"]


@dataclass(frozen=True)
class PRF:
    """Precision, recall and F1 over entities, with the counts they come from.

    ``support`` is the number of gold entities (as in seqeval), ``predicted`` the number of
    predicted entities and ``correct`` the number of exact matches.
    """

    precision: float
    recall: float
    f1: float
    support: int
    predicted: int = 0
    correct: int = 0

    @classmethod
    def from_counts(cls, correct: int, predicted: int, support: int) -> PRF:
        """Scores computed exactly as seqeval does (same operations, so the same floats)."""
        precision = correct / predicted if predicted else 0.0
        recall = correct / support if support else 0.0
        denom = precision + recall
        f1 = 2.0 * precision * recall / denom if denom else 0.0
        return cls(precision, recall, f1, support, predicted, correct)


@dataclass(frozen=True)
class EntityReport:
    """Entity scores of a tagged corpus.

    ``per_type`` holds every type that occurs in the gold or the predicted tags, in sorted order
    (seqeval's ``classification_report`` rows). ``token_accuracy`` is the fraction of tokens whose
    predicted tag equals the gold tag (seqeval's ``accuracy_score``); 0 when there are no tokens.
    """

    micro: PRF
    per_type: dict[str, PRF] = field(default_factory=dict)
    token_accuracy: float = 0.0
    tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"micro": {...}, "per_type": {type: {...}}, ...}``."""
        return {
            "micro": asdict(self.micro),
            "per_type": {name: asdict(prf) for name, prf in self.per_type.items()},
            "token_accuracy": self.token_accuracy,
            "tokens": self.tokens,
        }


def _check_sentence(gold_tags: Sequence[str], pred_tags: Sequence[str], i: int) -> None:
    for what, tags in (("gold", gold_tags), ("pred", pred_tags)):
        if isinstance(tags, str):
            raise ValueError(
                f"{what} sentence {i} is a string ({tags!r}); expected a list of sentences, "
                "each a list of tags"
            )
    if len(gold_tags) != len(pred_tags):
        raise ValueError(
            f"sentence {i}: gold has {len(gold_tags)} tags but pred has {len(pred_tags)}"
        )


def _sentence_spans(tags: Sequence[str], scheme: Scheme, what: str, i: int) -> list[Span]:
    try:
        return spans_from_tags(tags, scheme)
    except ValueError as err:
        raise ValueError(f"{what} sentence {i}: {err}") from None


def entity_scores(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    scheme: Scheme = "iob2",
) -> EntityReport:
    """Compare predicted tags with gold tags, sentence by sentence.

    Args:
        gold: gold tags, one list per sentence.
        pred: predicted tags, same shape as ``gold``.
        scheme: tag scheme of both (``"iob1"``, ``"iob2"`` and ``"bioes"`` are all read with
            conlleval's rules; ``"binary"`` reads runs of ``"1"`` as untyped entities).

    Returns:
        The :class:`EntityReport`; equal to seqeval's default mode on IOB1/IOB2 tags.

    Raises:
        ValueError: the numbers of sentences or of tags in a sentence differ, or a tag is invalid.
    """
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} sentences but pred has {len(pred)}")
    gold_counts: Counter[str] = Counter()
    pred_counts: Counter[str] = Counter()
    correct_counts: Counter[str] = Counter()
    tokens = correct_tags = 0
    for i, (gold_tags, pred_tags) in enumerate(zip(gold, pred, strict=True)):
        _check_sentence(gold_tags, pred_tags, i)
        gold_spans = _sentence_spans(gold_tags, scheme, "gold", i)
        pred_spans = _sentence_spans(pred_tags, scheme, "pred", i)
        gold_counts.update(span.label for span in gold_spans)
        pred_counts.update(span.label for span in pred_spans)
        correct_counts.update(span.label for span in set(gold_spans) & set(pred_spans))
        tokens += len(gold_tags)
        correct_tags += sum(g == p for g, p in zip(gold_tags, pred_tags, strict=True))

    per_type = {
        name: PRF.from_counts(correct_counts[name], pred_counts[name], gold_counts[name])
        for name in sorted(gold_counts.keys() | pred_counts.keys())
    }
    micro = PRF.from_counts(
        sum(correct_counts.values()), sum(pred_counts.values()), sum(gold_counts.values())
    )
    accuracy = correct_tags / tokens if tokens else 0.0
    return EntityReport(micro=micro, per_type=per_type, token_accuracy=accuracy, tokens=tokens)


def format_report(report: EntityReport) -> str:
    """The report as conlleval prints it (percentages; the last column counts predictions)::

    processed 51362 tokens with 5942 phrases; found: 5918 phrases; correct: 5370.
    accuracy:  98.12%; precision:  90.74%; recall:  90.37%; FB1:  90.56
                  LOC: precision:  93.12%; recall:  94.12%; FB1:  93.62  1845
    """
    micro = report.micro
    lines = [
        f"processed {report.tokens} tokens with {micro.support} phrases; "
        f"found: {micro.predicted} phrases; correct: {micro.correct}.",
        f"accuracy: {100 * report.token_accuracy:6.2f}%; "
        f"precision: {100 * micro.precision:6.2f}%; recall: {100 * micro.recall:6.2f}%; "
        f"FB1: {100 * micro.f1:6.2f}",
    ]
    lines.extend(
        f"{name:>17}: precision: {100 * prf.precision:6.2f}%; recall: {100 * prf.recall:6.2f}%; "
        f"FB1: {100 * prf.f1:6.2f}  {prf.predicted}"
        for name, prf in report.per_type.items()
    )
    return "\n".join(lines) + "\n"
