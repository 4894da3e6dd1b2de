"""Predictor.tag (the server's call) and the decoding of whole chunks of forward passes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ner.predict as predict_mod
from ner.data.schemes import convert, spans_from_tags
from ner.predict import Predictor

SENTENCES = [
    ["Harry", "Potter", "and", "Hermione", "Granger", "visited", "Hogsmeade", "."],
    [],
    ["Scotland"],
    ["Zzyzxqq", "Potter", "met", "Dumbledore", "in", "London"],
    ["a"],
    ["Hogwarts", "officials", "said", "the", "spell", "was", "safe", "!"] * 3,
]


@pytest.fixture(scope="module", params=["tiny_bundle", "tiny_softmax_bundle"])
def predictor(request: pytest.FixtureRequest) -> Predictor:
    return Predictor.from_path(request.getfixturevalue(request.param))


def test_tag_is_predict_without_offsets(predictor: Predictor) -> None:
    tagged = predictor.tag(SENTENCES)
    docs = predictor.predict(SENTENCES)
    assert len(tagged) == len(docs) == len(SENTENCES)
    for t, doc in zip(tagged, docs, strict=True):
        assert t.labels == [tok.label for tok in doc.tokens]
        assert t.scores == [tok.score for tok in doc.tokens]
        assert t.entities == [(e.label, e.token_start, e.token_end, e.score) for e in doc.entities]
        assert [(s.label, s.start, s.end) for s in spans_from_tags(t.labels, "iob2")] == [
            (label, a, b) for label, a, b, _ in t.entities
        ]
    assert tagged[1].labels == tagged[1].scores == tagged[1].entities == []
    assert predictor.tag([]) == []


def test_chunks_of_forward_passes_do_not_change_results(
    predictor: Predictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decoding one chunk per forward pass (a tiny DECODE_TOKENS) or all at once: same output."""
    many = SENTENCES * 7
    whole = predictor.tag(many, batch_size=4)
    tokens = predictor.predict_tokens(many, "iob1", batch_size=4)
    monkeypatch.setattr(predict_mod, "DECODE_TOKENS", 5)
    chunked = predictor.tag(many, batch_size=4)
    assert predictor.predict_tokens(many, "iob1", batch_size=4) == tokens
    for a, b in zip(whole, chunked, strict=True):
        assert a.labels == b.labels
        assert [e[:3] for e in a.entities] == [e[:3] for e in b.entities]
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-12)
        np.testing.assert_allclose(
            [e[3] for e in a.entities], [e[3] for e in b.entities], atol=1e-12
        )


def test_predict_tokens_converts_like_schemes(predictor: Predictor) -> None:
    iob2 = predictor.predict_tokens(SENTENCES, "iob2")
    for scheme in ("iob1", "bioes", "binary"):
        assert predictor.predict_tokens(SENTENCES, scheme) == [
            convert(tags, "iob2", scheme)  # type: ignore[arg-type]
            for tags in iob2
        ]
    with pytest.raises(ValueError, match="scheme"):
        predictor.predict_tokens(SENTENCES, "bilou")


def test_tag_rejects_a_bad_batch_size(tiny_bundle: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        Predictor.from_path(tiny_bundle).tag([["x"]], batch_size=0)


def test_word_list_offsets_and_errors(tiny_bundle: Path) -> None:
    predictor = Predictor.from_path(tiny_bundle)
    (doc,) = predictor.predict([["Zoë", "met", "Ω", "."]])
    assert doc.text == "Zoë met Ω ."
    assert [(t.text, t.start, t.end) for t in doc.tokens] == [
        ("Zoë", 0, 3),
        ("met", 4, 7),
        ("Ω", 8, 9),
        (".", 10, 11),
    ]
    with pytest.raises(ValueError, match="word 1 is empty"):
        predictor.predict([["a", "", "b"]])
    with pytest.raises(ValueError, match=r"word 0 \('a\\u2003b'\) contains whitespace"):
        predictor.predict([["a\u2003b"]])
