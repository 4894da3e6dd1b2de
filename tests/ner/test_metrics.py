"""The entity metric agrees with seqeval's default (conlleval-compatible) mode."""

from __future__ import annotations

import json
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.data.schemes import Span, tags_from_spans
from ner.metrics import PRF, EntityReport, entity_scores, format_report

seqeval_metrics = pytest.importorskip("seqeval.metrics")

TYPES = ("LOC", "MISC", "PER")


def seqeval_scores(gold: list[list[str]], pred: list[list[str]]) -> dict:
    """seqeval's default-mode numbers: micro, per type, token accuracy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # UndefinedMetricWarning when a denominator is 0
        micro = (
            seqeval_metrics.precision_score(gold, pred),
            seqeval_metrics.recall_score(gold, pred),
            seqeval_metrics.f1_score(gold, pred),
        )
        has_entities = any(t != "O" for s in gold + pred for t in s)
        report = (
            seqeval_metrics.classification_report(gold, pred, output_dict=True)
            if has_entities
            else {}
        )
        tokens = sum(map(len, gold))
        accuracy = seqeval_metrics.accuracy_score(gold, pred) if tokens else 0.0
    per_type = {
        name: (row["precision"], row["recall"], row["f1-score"], row["support"])
        for name, row in report.items()
        if not name.endswith(" avg")
    }
    return {"micro": micro, "per_type": per_type, "accuracy": accuracy}


def assert_equal_to_seqeval(gold: list[list[str]], pred: list[list[str]], scheme: str) -> None:
    ours = entity_scores(gold, pred, scheme=scheme)  # type: ignore[arg-type]
    theirs = seqeval_scores(gold, pred)
    assert (ours.micro.precision, ours.micro.recall, ours.micro.f1) == theirs["micro"]
    assert {
        name: (prf.precision, prf.recall, prf.f1, prf.support)
        for name, prf in ours.per_type.items()
    } == theirs["per_type"]
    assert list(ours.per_type) == sorted(theirs["per_type"])
    assert ours.token_accuracy == theirs["accuracy"]


# Any tag sequence, valid or not (I-X after O, I-X after B-Y, B-X inside IOB1 runs, ...).
ANY_TAG = st.sampled_from(["O", *(f"{p}-{t}" for t in TYPES for p in "BI")])


@st.composite
def valid_tags(draw: st.DrawFn, scheme: str) -> list[str]:
    """A well-formed sentence of ``scheme``, with touching same-type entities now and then."""
    n = draw(st.integers(0, 12))
    spans, i = [], 0
    while i < n:
        if draw(st.booleans()):
            end = draw(st.integers(i + 1, min(n, i + 3)))
            spans.append(Span(draw(st.sampled_from(TYPES)), i, end))
            i = end
        else:
            i += 1
    return tags_from_spans(spans, n, scheme)  # type: ignore[arg-type]


@st.composite
def corpus(draw: st.DrawFn, scheme: str) -> tuple[list[list[str]], list[list[str]]]:
    """Gold and predicted sentences: random, well-formed, or gold with a few tags changed."""
    sentence = st.one_of(valid_tags(scheme), st.lists(ANY_TAG, max_size=12))
    gold = draw(st.lists(sentence, min_size=1, max_size=8))  # seqeval rejects an empty corpus
    pred = []
    for tags in gold:
        mode = draw(st.sampled_from(["copy-edit", "random"]))
        if mode == "random":
            pred.append(draw(st.lists(ANY_TAG, min_size=len(tags), max_size=len(tags))))
        else:
            edited = list(tags)
            for _ in range(draw(st.integers(0, 3))):
                if edited:
                    edited[draw(st.integers(0, len(edited) - 1))] = draw(ANY_TAG)
            pred.append(edited)
    return gold, pred


@pytest.mark.parametrize("scheme", ["iob1", "iob2"])
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_equals_seqeval_on_random_tags(scheme: str, data: st.DataObject) -> None:
    gold, pred = data.draw(corpus(scheme))
    assert_equal_to_seqeval(gold, pred, scheme)


@pytest.mark.parametrize("scheme", ["iob1", "iob2"])
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_equals_seqeval_on_invalid_sequences(scheme: str, data: st.DataObject) -> None:
    sentences = st.lists(st.lists(ANY_TAG, max_size=10), min_size=1, max_size=6)
    gold = data.draw(sentences)
    pred = [data.draw(st.lists(ANY_TAG, min_size=len(s), max_size=len(s))) for s in gold]
    assert_equal_to_seqeval(gold, pred, scheme)


def test_entities_do_not_cross_sentences() -> None:
    # seqeval puts an "O" between sentences: I-PER at the start of a sentence opens a new entity.
    gold = [["B-PER", "I-PER"], ["I-PER", "O"]]
    pred = [["B-PER", "I-PER"], ["B-PER", "O"]]
    report = entity_scores(gold, pred)
    assert report.micro == PRF(1.0, 1.0, 1.0, 2, 2, 2)
    assert_equal_to_seqeval(gold, pred, "iob2")


def test_golden_example_iob2() -> None:
    # The example of seqeval's docs.
    gold = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    pred = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    report = entity_scores(gold, pred, scheme="iob2")
    assert report.micro == PRF(0.5, 0.5, 0.5, 2, 2, 1)
    assert report.per_type == {
        "MISC": PRF(0.0, 0.0, 0.0, 1, 1, 0),
        "PER": PRF(1.0, 1.0, 1.0, 1, 1, 1),
    }
    assert report.token_accuracy == 0.8
    assert report.tokens == 10


def test_golden_example_iob1() -> None:
    # IOB1: B- only between touching entities of one type; "I-LOC B-LOC" is two entities.
    gold = [["I-PER", "I-PER", "O", "I-LOC", "B-LOC"]]
    pred = [["B-PER", "I-PER", "O", "I-LOC", "I-LOC"]]
    report = entity_scores(gold, pred, scheme="iob1")
    assert report.per_type["PER"] == PRF(1.0, 1.0, 1.0, 1, 1, 1)
    assert report.per_type["LOC"] == PRF(0.0, 0.0, 0.0, 2, 1, 0)
    assert report.micro.precision == 0.5
    assert report.micro.recall == pytest.approx(1 / 3)
    assert report.micro.f1 == pytest.approx(0.4)
    assert report.token_accuracy == 0.6
    assert_equal_to_seqeval(gold, pred, "iob1")


def test_empty_and_no_entities() -> None:
    assert entity_scores([], []) == EntityReport(PRF(0.0, 0.0, 0.0, 0), {}, 0.0, 0)
    report = entity_scores([["O", "O"], []], [["O", "B-PER"], []])
    assert report.micro == PRF(0.0, 0.0, 0.0, 0, 1, 0)
    assert report.per_type == {"PER": PRF(0.0, 0.0, 0.0, 0, 1, 0)}
    assert report.token_accuracy == 0.5


def test_to_dict_is_json() -> None:
    report = entity_scores([["B-PER", "O"]], [["B-PER", "B-LOC"]])
    data = json.loads(json.dumps(report.to_dict()))
    assert data["micro"]["f1"] == pytest.approx(2 / 3)
    assert data["per_type"]["PER"] == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "support": 1,
        "predicted": 1,
        "correct": 1,
    }
    assert data["token_accuracy"] == 0.5


def test_format_report_like_conlleval() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    text = format_report(entity_scores(gold, pred))
    assert text == (
        "processed 6 tokens with 3 phrases; found: 3 phrases; correct: 2.\n"
        "accuracy:  83.33%; precision:  66.67%; recall:  66.67%; FB1:  66.67\n"
        "              LOC: precision:   0.00%; recall:   0.00%; FB1:   0.00  0\n"
        "              ORG: precision:  50.00%; recall: 100.00%; FB1:  66.67  2\n"
        "              PER: precision: 100.00%; recall: 100.00%; FB1: 100.00  1\n"
    )


@pytest.mark.parametrize(
    ("gold", "pred", "message"),
    [
        ([["O"]], [["O"], ["O"]], "gold has 1 sentences but pred has 2"),
        ([["O", "O"]], [["O"]], "sentence 0: gold has 2 tags but pred has 1"),
        ([["O"], ["X-PER"]], [["O"], ["O"]], "gold sentence 1: invalid tag 'X-PER'"),
        ([["O"]], [["B-"]], "pred sentence 0: invalid tag"),
        (["B-PER"], ["B-PER"], "gold sentence 0 is a string"),
    ],
)
def test_bad_input_is_a_clear_error(gold: list, pred: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        entity_scores(gold, pred)


@pytest.mark.data
def test_equals_seqeval_on_conll_dev() -> None:
    from ner.data.conll import read_conll
    from ner.settings import data_dir

    path = data_dir() / "conll2003" / "dev.txt"
    if not path.exists():
        pytest.skip(f"CoNLL-2003 dev not found at {path} (set NER_DATA_DIR)")
    gold = [list(s.labels or ()) for s in read_conll(path)]
    # A deterministic "prediction": every 7th tag replaced, which breaks and shifts entities.
    cycle = ["O", "I-PER", "B-LOC", "I-ORG", "I-MISC"]
    pred = [[cycle[i % 5] if i % 7 == 0 else t for i, t in enumerate(s)] for s in gold]
    assert_equal_to_seqeval(gold, pred, "iob1")
    report = entity_scores(gold, gold, scheme="iob1")
    assert report.micro.support == 5942  # the entity count conlleval reports for dev
    assert report.micro.f1 == 1.0
