"""ner.spans (spans and labels of many sentences at once) against ner.data.schemes, exhaustively."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ner.data.schemes import convert, label_names, spans_from_tags
from ner.spans import SpanReader

MODEL_LABELS = {
    "iob1": label_names(["LOC", "PER"], "iob2"),
    "iob2": label_names(["LOC", "PER"], "iob2"),
    "bioes": label_names(["LOC", "PER"], "bioes"),
    "binary": ["0", "1", "O"],
}


def all_sequences(k: int, max_len: int) -> list[tuple[int, ...]]:
    return [s for n in range(max_len + 1) for s in itertools.product(range(k), repeat=n)]


@pytest.mark.parametrize("src", sorted(MODEL_LABELS))
def test_every_short_sequence_reads_and_converts_like_schemes(src: str) -> None:
    """Every tag sequence of up to 4 tags (3 for BIOES' 9 tags), laid end to end with empty
    sentences among them, so that no span or IOB1 ``B-`` may leak across a sentence boundary."""
    labels = MODEL_LABELS[src]
    reader = SpanReader(labels, src)  # type: ignore[arg-type]
    seqs = all_sequences(len(labels), 3 if len(labels) > 5 else 4)
    seqs = [s for seq in seqs for s in (seq, ())]  # an empty sentence after each
    lengths = np.array([len(s) for s in seqs])
    ids = np.array([i for s in seqs for i in s], dtype=np.int64)
    spans = reader.spans(ids, lengths)
    converted = {
        dst: reader.labels(spans, lengths, dst) for dst in ("iob1", "iob2", "bioes", "binary")
    }
    a = 0
    for b, seq in enumerate(seqs):
        tags = [labels[i] for i in seq]
        mine = spans.sentence == b
        expected = spans_from_tags(tags, src)  # type: ignore[arg-type]
        assert [(s.label, s.start, s.end) for s in expected] == [
            (reader.types[t], s - a, e - a)
            for t, s, e in zip(
                spans.type_ids[mine], spans.start[mine], spans.end[mine], strict=True
            )
        ]
        for dst, out in converted.items():
            assert out[a : a + len(seq)] == convert(tags, src, dst), (tags, dst)  # type: ignore[arg-type]
        a += len(seq)
    assert a == len(ids)


def test_types_and_names() -> None:
    reader = SpanReader(["O", "B-PER", "I-PER", "B-creative-work", "I-creative-work"], "iob2")
    assert reader.types == ("PER", "creative-work")
    assert reader.names("iob2")[:5] == ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
    assert reader.names("binary") == ["0", "1"]
    assert SpanReader(["0", "1"], "binary").types == ("NAME",)


def test_empty_input() -> None:
    reader = SpanReader(MODEL_LABELS["iob2"], "iob2")
    spans = reader.spans(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    assert spans.start.size == 0
    lengths = np.array([0, 0])
    assert reader.labels(reader.spans(np.zeros(0, dtype=np.int64), lengths), lengths, "bioes") == []
