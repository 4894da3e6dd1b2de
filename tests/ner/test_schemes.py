"""Tag schemes: chunking equals seqeval's default mode, conversions round-trip, repair."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.data.schemes import (
    BINARY_LABEL,
    Span,
    convert,
    is_valid,
    label_names,
    parse_tag,
    repair,
    spans_from_tags,
    tags_from_spans,
    to_binary,
)

TYPES = ["PER", "LOC", "creative-work"]
TYPED = ("iob1", "iob2", "bioes")

any_tag = st.one_of(
    st.just("O"), st.builds("{}-{}".format, st.sampled_from("BIES"), st.sampled_from(TYPES))
)
tag_lists = st.lists(any_tag, max_size=12)


@st.composite
def span_lists(draw, max_len: int = 12):
    """Non-overlapping spans (touching allowed) over a sentence of n tokens."""
    n = draw(st.integers(0, max_len))
    spans, i = [], 0
    while i < n:
        if draw(st.booleans()):
            length = draw(st.integers(1, n - i))
            spans.append(Span(draw(st.sampled_from(TYPES)), i, i + length))
            i += length
        else:
            i += draw(st.integers(1, n - i))
    return spans, n


# --- parse_tag ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "parsed"),
    [
        ("O", ("O", None)),
        ("B-PER", ("B", "PER")),
        ("I-creative-work", ("I", "creative-work")),
        ("E-LOC", ("E", "LOC")),
        ("S-LOC", ("S", "LOC")),
        ("L-LOC", ("E", "LOC")),  # BILOU aliases
        ("U-LOC", ("S", "LOC")),
    ],
)
def test_parse_tag(tag, parsed):
    assert parse_tag(tag) == parsed


@pytest.mark.parametrize(
    "tag", ["", "B", "B-", "PER", "X-PER", "o", "1", "BPER", "B-FOO-", "I--PER", "B-A B", "B--"]
)
def test_parse_tag_rejects(tag):
    with pytest.raises(ValueError, match="invalid tag"):
        parse_tag(tag)


# --- spans -------------------------------------------------------------------------------------


def test_iob1_conll_example():
    # "Harry Potter and Hermione Granger": both names I-PER in IOB1, split by the O.
    tags = ["I-PER", "I-PER", "O", "I-PER", "I-PER", "O"]
    assert spans_from_tags(tags, "iob1") == [Span("PER", 0, 2), Span("PER", 3, 5)]
    # Touching same-type entities need B- in IOB1.
    assert spans_from_tags(["I-MISC", "B-MISC", "I-MISC"], "iob1") == [
        Span("MISC", 0, 1),
        Span("MISC", 1, 3),
    ]


def test_conlleval_reading_of_invalid_input():
    # I-X after O or after another type starts a chunk; E/S end one.
    assert spans_from_tags(["O", "I-PER", "I-LOC", "E-LOC", "I-LOC"], "iob2") == [
        Span("PER", 1, 2),
        Span("LOC", 2, 4),
        Span("LOC", 4, 5),
    ]
    assert spans_from_tags(["B-PER", "E-PER", "S-PER", "U-LOC", "L-LOC"], "bioes") == [
        Span("PER", 0, 2),
        Span("PER", 2, 3),
        Span("LOC", 3, 4),
        Span("LOC", 4, 5),
    ]


def test_binary_spans():
    assert spans_from_tags(["0", "1", "1", "0", "1"], "binary") == [
        Span(BINARY_LABEL, 1, 3),
        Span(BINARY_LABEL, 4, 5),
    ]
    with pytest.raises(ValueError, match="binary"):
        spans_from_tags(["B-PER"], "binary")


def test_unknown_scheme():
    with pytest.raises(ValueError, match="unknown tag scheme"):
        spans_from_tags(["O"], "bilou")  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(tag_lists)
def test_spans_equal_seqeval_default_mode(tags):
    from seqeval.metrics.sequence_labeling import get_entities

    expected = [Span(t, s, e + 1) for t, s, e in get_entities(list(tags))]
    for scheme in TYPED:
        assert spans_from_tags(tags, scheme) == expected


@settings(max_examples=200, deadline=None)
@given(tag_lists)
def test_bilou_aliases_read_like_bioes(tags):
    bilou = [t.replace("E-", "L-").replace("S-", "U-") if t != "O" else t for t in tags]
    assert spans_from_tags(bilou, "bioes") == spans_from_tags(tags, "bioes")


# --- writing and conversions -------------------------------------------------------------------


def test_tags_from_spans_each_scheme():
    spans = [Span("PER", 0, 2), Span("PER", 2, 3), Span("LOC", 4, 7)]
    assert tags_from_spans(spans, 8, "iob1") == [
        "I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-LOC", "I-LOC", "O",
    ]  # fmt: skip
    assert tags_from_spans(spans, 8, "iob2") == [
        "B-PER", "I-PER", "B-PER", "O", "B-LOC", "I-LOC", "I-LOC", "O",
    ]  # fmt: skip
    assert tags_from_spans(spans, 8, "bioes") == [
        "B-PER", "E-PER", "S-PER", "O", "B-LOC", "I-LOC", "E-LOC", "O",
    ]  # fmt: skip
    assert tags_from_spans(spans, 8, "binary") == ["1", "1", "1", "0", "1", "1", "1", "0"]


@pytest.mark.parametrize(
    "spans",
    [[Span("A", 1, 1)], [Span("A", 0, 9)], [Span("A", -1, 1)], [Span("A", 0, 3), Span("B", 2, 4)]],
)
def test_tags_from_spans_rejects_bad_spans(spans):
    with pytest.raises(ValueError):
        tags_from_spans(spans, 5, "iob2")


@settings(max_examples=200, deadline=None)
@given(span_lists())
def test_spans_round_trip_through_every_typed_scheme(spans_n):
    spans, n = spans_n
    for scheme in TYPED:
        tags = tags_from_spans(spans, n, scheme)
        assert spans_from_tags(tags, scheme) == spans
        assert is_valid(tags, scheme)


@settings(max_examples=200, deadline=None)
@given(span_lists(), st.sampled_from(TYPED), st.sampled_from(TYPED))
def test_conversions_round_trip_exactly(spans_n, src, dst):
    spans, n = spans_n
    tags = tags_from_spans(spans, n, src)
    there = convert(tags, src, dst)
    assert there == tags_from_spans(spans, n, dst)
    assert convert(there, dst, src) == tags


@settings(max_examples=200, deadline=None)
@given(span_lists())
def test_binary_loses_types_and_boundaries_only(spans_n):
    spans, n = spans_n
    tags = tags_from_spans(spans, n, "iob2")
    binary = convert(tags, "iob2", "binary")
    assert [int(b) for b in binary] == to_binary(tags, "iob2")
    covered = {i for s in spans for i in range(s.start, s.end)}
    assert to_binary(tags, "iob2") == [int(i in covered) for i in range(n)]
    back = convert(binary, "binary", "iob2")  # typed NAME, touching spans merged
    assert to_binary(back, "iob2") == to_binary(tags, "iob2")
    assert convert(back, "iob2", "binary") == binary


# --- repair ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "scheme", "fixed"),
    [
        (["O", "I-PER", "I-PER"], "iob2", ["O", "B-PER", "I-PER"]),
        (["B-PER", "I-LOC"], "iob2", ["B-PER", "B-LOC"]),
        (["I-PER", "B-PER"], "iob1", ["I-PER", "B-PER"]),  # already valid IOB1
        (["O", "B-PER", "O"], "iob1", ["O", "I-PER", "O"]),  # B- only after the same type
        (["B-PER", "I-PER", "O"], "bioes", ["B-PER", "E-PER", "O"]),
        (["I-PER"], "bioes", ["S-PER"]),
        (["E-PER", "E-PER"], "bioes", ["S-PER", "S-PER"]),
        (["U-PER", "B-LOC", "L-LOC"], "bioes", ["S-PER", "B-LOC", "E-LOC"]),
        (["1", "O", "0"], "binary", ["1", "0", "0"]),
    ],
)
def test_repair_examples(tags, scheme, fixed):
    assert repair(tags, scheme) == fixed


@settings(max_examples=300, deadline=None)
@given(tag_lists, st.sampled_from(TYPED))
def test_repair_is_valid_idempotent_and_keeps_seqeval_entities(tags, scheme):
    from seqeval.metrics.sequence_labeling import get_entities

    fixed = repair(tags, scheme)
    assert len(fixed) == len(tags)
    assert is_valid(fixed, scheme)
    assert repair(fixed, scheme) == fixed
    assert get_entities(fixed) == get_entities(list(tags))


def test_is_valid():
    assert is_valid(["B-PER", "I-PER", "O"], "iob2")
    assert not is_valid(["I-PER"], "iob2")
    assert is_valid(["I-PER"], "iob1")
    assert not is_valid(["B-PER"], "iob1")
    assert not is_valid(["B-PER"], "bioes")
    assert not is_valid(["bogus"], "iob2")


# --- label names -------------------------------------------------------------------------------


def test_label_names():
    assert label_names(["PER", "LOC", "PER"], "iob2") == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert label_names(["PER"], "iob1") == ["O", "B-PER", "I-PER"]
    assert label_names(["PER"], "bioes") == ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
    assert label_names(["PER"], "binary") == ["0", "1"]
    assert label_names([], "iob2") == ["O"]
    with pytest.raises(ValueError):
        label_names([""], "iob2")
