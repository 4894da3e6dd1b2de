"""Tag schemes: IOB1 (CoNLL-2003), IOB2/BIO, BIOES/BILOU and binary "part of a name".

Every conversion goes through entity spans. Reading tags into spans follows conlleval, exactly as
``seqeval.metrics.sequence_labeling.get_entities`` does in seqeval's default mode: the chunking
rules do not depend on the scheme, so an ``I-X`` after ``O`` (or after a chunk of another type)
starts a new chunk, ``B-X`` always starts one, and ``E-X`` / ``S-X`` end one. BILOU tags are read as
aliases, ``L-X`` = ``E-X`` and ``U-X`` = ``S-X``.

Writing spans back as tags gives a valid sequence of the target scheme, so
``convert(tags, s, s)`` (:func:`repair`) turns invalid input into the valid sequence that
conlleval would have read. IOB1, IOB2 and BIOES convert into one another without loss; the binary
scheme (``"1"`` inside any entity, ``"0"`` outside) loses the types and the boundary between
touching entities.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "BINARY_LABEL",
    "SCHEMES",
    "Scheme",
    "Span",
    "convert",
    "is_valid",
    "label_names",
    "parse_tag",
    "repair",
    "spans_from_tags",
    "tags_from_spans",
    "to_binary",
]

Scheme = Literal["iob1", "iob2", "bioes", "binary"]
SCHEMES: tuple[str, ...] = get_args(Scheme)

#: The type given to spans read from binary tags (which carry no type).
BINARY_LABEL = "NAME"

_PREFIX_ALIASES = {"B": "B", "I": "I", "E": "E", "S": "S", "L": "E", "U": "S"}


@dataclass(frozen=True, order=True)
class Span:
    """An entity: ``label`` over tokens ``start`` (inclusive) to ``end`` (exclusive)."""

    label: str
    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {SCHEMES}")


def parse_tag(tag: str) -> tuple[str, str | None]:
    """Split a typed tag: ``"B-PER" -> ("B", "PER")``, ``"O" -> ("O", None)``.

    ``L-``/``U-`` (BILOU) come back as ``E``/``S``. The type is everything after the first ``-``
    (``"B-creative-work" -> ("B", "creative-work")``).

    Raises:
        ValueError: ``tag`` is not ``O`` nor ``<B|I|E|S|L|U>-<type>``, or the type begins or ends
            with ``-`` (``B-FOO-``) or holds white space.
    """
    if tag == "O":
        return "O", None
    prefix = _PREFIX_ALIASES.get(tag[:1])
    if prefix is None or len(tag) < 3 or tag[1] != "-":
        raise ValueError(f"invalid tag {tag!r}: expected O or B-/I-/E-/S-/L-/U- followed by a type")
    kind = tag[2:]
    if kind[0] == "-" or kind[-1] == "-" or any(c.isspace() for c in kind):
        raise ValueError(
            f"invalid tag {tag!r}: the type {kind!r} must not begin or end with '-' "
            "or contain white space"
        )
    return prefix, kind


def _binary_flag(tag: str | int) -> int:
    if tag in ("1", 1):
        return 1
    if tag in ("0", 0, "O"):
        return 0
    raise ValueError(f"invalid binary tag {tag!r}: expected '1' or '0'")


def spans_from_tags(tags: Sequence[str], scheme: Scheme = "iob2") -> list[Span]:
    """Entity spans of one sentence, read the way conlleval / seqeval's default mode reads them.

    Args:
        tags: one tag per token.
        scheme: ``"iob1"``, ``"iob2"`` and ``"bioes"`` share the same (lenient) reading, so any
            mix of ``B/I/E/S/L/U`` prefixes is accepted; ``"binary"`` reads maximal runs of
            ``"1"`` as spans labelled :data:`BINARY_LABEL`.

    Returns:
        Non-overlapping spans in order.
    """
    _check_scheme(scheme)
    if scheme == "binary":
        return _binary_spans([_binary_flag(t) for t in tags])
    spans: list[Span] = []
    prev_prefix, prev_type = "O", None
    start = 0
    for i, tag in enumerate(tags):
        prefix, type_ = parse_tag(tag)
        if _ends_chunk(prev_prefix, prefix, prev_type, type_):
            spans.append(Span(prev_type, start, i))  # type: ignore[arg-type]
        if _starts_chunk(prev_prefix, prefix, prev_type, type_):
            start = i
        prev_prefix, prev_type = prefix, type_
    if prev_prefix != "O":
        spans.append(Span(prev_type, start, len(tags)))  # type: ignore[arg-type]
    return spans


def _ends_chunk(prev: str, cur: str, prev_type: str | None, cur_type: str | None) -> bool:
    """conlleval ``endOfChunk``: does a chunk end just before the current tag?"""
    if prev in ("E", "S"):
        return True
    if prev in ("B", "I") and cur in ("B", "S", "O"):
        return True
    return prev != "O" and prev_type != cur_type


def _starts_chunk(prev: str, cur: str, prev_type: str | None, cur_type: str | None) -> bool:
    """conlleval ``startOfChunk``: does a chunk start at the current tag?"""
    if cur in ("B", "S"):
        return True
    if prev in ("E", "S", "O") and cur in ("E", "I"):
        return True
    return cur != "O" and prev_type != cur_type


def _binary_spans(flags: Sequence[int]) -> list[Span]:
    spans: list[Span] = []
    start = None
    for i, flag in enumerate([*flags, 0]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            spans.append(Span(BINARY_LABEL, start, i))
            start = None
    return spans


def tags_from_spans(spans: Iterable[Span], n: int, scheme: Scheme = "iob2") -> list[str]:
    """The valid tag sequence of ``scheme`` for ``n`` tokens holding ``spans``.

    IOB1 uses ``B-`` only where an entity directly follows one of the same type; binary writes
    ``"1"`` inside any span.

    Raises:
        ValueError: a span is empty, out of ``[0, n)`` or overlaps another.
    """
    _check_scheme(scheme)
    tags = ["0" if scheme == "binary" else "O"] * n
    prev_end, prev_label = -1, None
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        if not 0 <= span.start < span.end <= n:
            raise ValueError(f"span {span} is empty or outside a sentence of {n} tokens")
        if span.start < prev_end:
            raise ValueError(f"span {span} overlaps the span ending at {prev_end}")
        _write_span(
            tags, span, scheme, touches_same=prev_end == span.start and prev_label == span.label
        )
        prev_end, prev_label = span.end, span.label
    return tags


def _write_span(tags: list[str], span: Span, scheme: str, *, touches_same: bool) -> None:
    start, end, label = span.start, span.end, span.label
    if scheme == "binary":
        tags[start:end] = ["1"] * (end - start)
    elif scheme == "iob1":
        tags[start:end] = [f"I-{label}"] * (end - start)
        if touches_same:
            tags[start] = f"B-{label}"
    elif scheme == "iob2":
        tags[start:end] = [f"B-{label}"] + [f"I-{label}"] * (end - start - 1)
    elif end - start == 1:  # bioes
        tags[start] = f"S-{label}"
    else:
        tags[start:end] = [f"B-{label}"] + [f"I-{label}"] * (end - start - 2) + [f"E-{label}"]


def convert(tags: Sequence[str], src: Scheme, dst: Scheme) -> list[str]:
    """Tags of scheme ``src`` rewritten in scheme ``dst`` (via spans; invalid input is repaired).

    Converting to ``"binary"`` drops the types; converting from it types every span
    :data:`BINARY_LABEL`.
    """
    _check_scheme(dst)
    return tags_from_spans(spans_from_tags(tags, src), len(tags), dst)


def repair(tags: Sequence[str], scheme: Scheme) -> list[str]:
    """The valid ``scheme`` sequence that conlleval reads from ``tags``.

    For example in IOB2 ``["O", "I-PER", "I-LOC"] -> ["O", "B-PER", "B-LOC"]``.
    """
    return convert(tags, scheme, scheme)


def is_valid(tags: Sequence[str], scheme: Scheme) -> bool:
    """Whether ``tags`` is a well-formed sequence of ``scheme`` (``repair`` leaves it unchanged)."""
    try:
        return repair(tags, scheme) == list(tags)
    except ValueError:
        return False


def to_binary(tags: Sequence[str], scheme: Scheme = "iob2") -> list[int]:
    """1 for every token inside any entity, else 0 (the seed example's "part of a name")."""
    flags = [0] * len(tags)
    for span in spans_from_tags(tags, scheme):
        flags[span.start : span.end] = [1] * len(span)
    return flags


def label_names(types: Iterable[str], scheme: Scheme = "iob2") -> list[str]:
    """All labels of ``scheme`` over entity ``types``: ``"O"`` first, then per type (sorted).

    ``label_names(["PER", "LOC"], "iob2") == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]``;
    BIOES gives ``B, I, E, S`` per type; binary gives ``["0", "1"]``.
    """
    _check_scheme(scheme)
    if scheme == "binary":
        return ["0", "1"]
    prefixes = ("B", "I", "E", "S") if scheme == "bioes" else ("B", "I")
    names = ["O"]
    for type_ in sorted(set(types)):
        if not type_ or type_ == "O":
            raise ValueError(f"invalid entity type {type_!r}")
        names.extend(f"{p}-{type_}" for p in prefixes)
    return names
