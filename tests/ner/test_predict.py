"""The predictor: the round-trip contract (train -> export -> load -> predict) on both backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ner.data.schemes import is_valid, spans_from_tags
from ner.predict import Document, Predictor

TEXT = (
    "Harry Potter and Hermione Granger visited Hogsmeade in Scotland. "
    "Hogwarts officials said the spell was safe!\n\nDumbledore left for London ."
)


@pytest.fixture(scope="module", params=["onnx", "torch"])
def predictor(request: pytest.FixtureRequest, tiny_bundle: Path) -> Predictor:
    return Predictor.from_path(tiny_bundle, backend=request.param)


def _check_document(doc: Document, text: str) -> None:
    """Offsets, IOB2 labels, is_name and scores are consistent with each other and the text."""
    labels = [t.label for t in doc.tokens]
    assert is_valid(labels, "iob2")
    for tok in doc.tokens:
        assert text[tok.start : tok.end] == tok.text
        assert tok.is_name == int(tok.label != "O")
        assert 0.0 <= tok.score <= 1.0 + 1e-9
    spans = spans_from_tags(labels, "iob2")
    assert [(s.label, s.start, s.end) for s in spans] == [
        (e.label, e.token_start, e.token_end) for e in doc.entities
    ]
    for ent in doc.entities:
        assert text[ent.start : ent.end] == ent.text
        assert ent.start == doc.tokens[ent.token_start].start
        assert ent.end == doc.tokens[ent.token_end - 1].end
        token_scores = [t.score for t in doc.tokens[ent.token_start : ent.token_end]]
        assert 0.0 <= ent.score <= min(token_scores) + 1e-9


def test_round_trip_raw_text(predictor: Predictor) -> None:
    (doc,) = predictor.predict([TEXT])
    assert [t.text for t in doc.tokens][:3] == ["Harry", "Potter", "and"]
    assert doc.tokens[-1].end == len(TEXT)  # offsets stay global across sentences
    _check_document(doc, TEXT)
    assert doc.to_dict().keys() == {"tokens", "entities"}


def test_round_trip_learns_the_fixture(tiny_bundle: Path) -> None:
    """A few training steps are enough to tag names that occur in the fixture."""
    doc = Predictor.from_path(tiny_bundle).predict([["Harry", "Potter", "invented", "a", "spell"]])[
        0
    ]
    assert [t.is_name for t in doc.tokens] == [1, 1, 0, 0, 0]


def test_empty_and_whitespace_inputs(predictor: Predictor) -> None:
    docs = predictor.predict(["", "   \n\t ", []])
    assert [d.to_dict() for d in docs] == [{"tokens": [], "entities": []}] * 3
    assert predictor.predict([]) == []
    assert predictor.predict_tokens([[], ["x"]])[0] == []


def test_unknown_word_and_one_token_sentence(predictor: Predictor) -> None:
    docs = predictor.predict([["Zzyzxqq"], "Qwxyzzz", ["a"], ["ß"]])
    for doc in docs:
        assert len(doc.tokens) == 1
        assert doc.tokens[0].label == "O" or doc.tokens[0].label.startswith("B-")
        _check_document(doc, doc.tokens[0].text)
    assert "zzyzxqq" not in predictor.featurizer.words


def test_tokenised_input_offsets(predictor: Predictor) -> None:
    words = ["Hermione", "Granger", "went", "to", "London", "."]
    (doc,) = predictor.predict([words])
    text = " ".join(words)
    assert [t.text for t in doc.tokens] == words
    assert [(t.start, t.end) for t in doc.tokens][:2] == [(0, 8), (9, 16)]
    _check_document(doc, text)


def test_backends_agree(tiny_bundle: Path) -> None:
    inputs = [TEXT, ["Zzyzxqq", "Potter"], "a", "", "Scotland " * 50]
    a = Predictor.from_path(tiny_bundle, "onnx").predict(inputs)
    b = Predictor.from_path(tiny_bundle, "torch").predict(inputs)
    for da, db in zip(a, b, strict=True):
        assert [t.label for t in da.tokens] == [t.label for t in db.tokens]
        np.testing.assert_allclose(
            [t.score for t in da.tokens], [t.score for t in db.tokens], atol=1e-4
        )
        np.testing.assert_allclose(
            [e.score for e in da.entities], [e.score for e in db.entities], atol=1e-4
        )


def test_batching_does_not_change_results(tiny_bundle: Path) -> None:
    predictor = Predictor.from_path(tiny_bundle)
    inputs = [TEXT, ["Granger"], "Hogwarts officials said", ["a", "b", "c", "d"]] * 3
    one = predictor.predict(inputs, batch_size=1)
    many = predictor.predict(inputs, batch_size=64)
    for a, b in zip(one, many, strict=True):
        assert [t.label for t in a.tokens] == [t.label for t in b.tokens]
        np.testing.assert_allclose(
            [t.score for t in a.tokens], [t.score for t in b.tokens], atol=1e-6
        )


def test_long_text_is_cut_and_offsets_stay_global(tiny_bundle: Path) -> None:
    predictor = Predictor.from_path(tiny_bundle, max_tokens=7)
    text = " ".join(["Harry", "Potter", "met", "Hermione"] * 10)  # no sentence end: 40 tokens
    (doc,) = predictor.predict([text])
    assert len(doc.tokens) == 40 and doc.tokens[-1].end == len(text)
    _check_document(doc, text)


@pytest.mark.parametrize("scheme", ["iob1", "iob2", "bioes", "binary"])
def test_predict_tokens_scheme(tiny_bundle: Path, scheme: str) -> None:
    predictor = Predictor.from_path(tiny_bundle)
    sentences = [["Harry", "Potter", "and", "Hermione", "Granger"], ["Scotland"], ["Zzyzxqq"]]
    tags = predictor.predict_tokens(sentences, scheme)
    assert [len(t) for t in tags] == [5, 1, 1]
    assert all(is_valid(t, scheme) for t in tags)  # type: ignore[arg-type]
    iob2 = predictor.predict_tokens(sentences, "iob2")
    docs = predictor.predict(sentences)
    assert iob2 == [[t.label for t in d.tokens] for d in docs]


def test_softmax_bioes_model_reports_iob2(tiny_softmax_bundle: Path) -> None:
    for backend in ("onnx", "torch"):
        predictor = Predictor.from_path(tiny_softmax_bundle, backend)
        assert predictor.tag_scheme == "bioes"
        (doc,) = predictor.predict([TEXT])
        assert not {t.label[:2] for t in doc.tokens} & {"E-", "S-"}
        _check_document(doc, TEXT)


def test_metadata_and_bad_inputs(tiny_bundle: Path) -> None:
    predictor = Predictor.from_path(tiny_bundle)
    assert (predictor.name, predictor.version, predictor.task) == (
        "tiny-learned-crf",
        "0.0.1",
        "ner",
    )
    assert predictor.card["task"] == "ner"
    with pytest.raises(TypeError, match="list of inputs"):
        predictor.predict("a text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        predictor.predict([3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="whitespace"):
        predictor.predict([["New York"]])
    with pytest.raises(ValueError, match="batch_size"):
        predictor.predict(["x"], batch_size=0)
