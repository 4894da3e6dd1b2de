"""The shared data sets read with the documented counts (skips when ../shared/data is absent)."""

from __future__ import annotations

from collections import Counter

import pytest

from ner.data.conll import Sentence, iter_conll, read_conll
from ner.data.schemes import is_valid, repair, spans_from_tags
from ner.settings import data_dir

DATA = data_dir()

pytestmark = pytest.mark.data


def _path(*parts: str):
    path = DATA.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"{path} is absent (set NER_DATA_DIR to the shared data folder)")
    return path


@pytest.mark.parametrize(
    ("name", "docs", "sentences", "tokens", "per_type"),
    [
        ("train.txt", 946, 14_041, 203_621, {"PER": 6600, "LOC": 7140, "ORG": 6321, "MISC": 3438}),
        ("dev.txt", 216, 3_250, 51_362, {"PER": 1842, "LOC": 1837, "ORG": 1341, "MISC": 922}),
    ],
)
def test_conll2003_counts(name, docs, sentences, tokens, per_type):
    items = list(iter_conll(_path("conll2003", name)))
    data = [item for item in items if isinstance(item, Sentence)]
    assert len(items) - len(data) == docs
    assert len(data) == sentences
    assert sum(len(s.tokens) for s in data) == tokens
    assert all(len(s.tokens) == len(s.labels) for s in data)
    entities = Counter(span.label for s in data for span in spans_from_tags(s.labels, "iob1"))
    assert entities == per_type


def test_conll2003_is_iob1_with_two_known_quirks():
    # The original train file has a B- after O twice (data README: lines 152428 and 175436).
    data = read_conll(_path("conll2003", "train.txt"))
    quirks = []
    for s in data:
        if not is_valid(s.labels, "iob1"):
            fixed = repair(s.labels, "iob1")
            quirks += [
                s.line + i for i, (a, b) in enumerate(zip(s.labels, fixed, strict=True)) if a != b
            ]
    assert quirks == [152_428, 175_436]


def test_conll2003_other_columns():
    first = read_conll(_path("conll2003", "train.txt"), label_col=1, validate_labels=False)[0]
    assert first.tokens[:3] == ("EU", "rejects", "German")
    assert first.labels[:3] == ("NNP", "VBZ", "JJ")


@pytest.mark.parametrize(
    ("name", "sentences", "tokens", "entities"),
    [("train.conll", 3_394, 62_730, 1_975), ("dev.conll", 1_009, 15_733, 836)],
)
def test_wnut17_counts(name, sentences, tokens, entities):
    data = read_conll(_path("wnut17", name))
    assert len(data) == sentences
    assert sum(len(s.tokens) for s in data) == tokens
    assert sum(len(spans_from_tags(s.labels, "iob2")) for s in data) == entities
    assert all(is_valid(s.labels, "iob2") for s in data)


def test_wnut17_train_has_whitespace_separators():
    path = _path("wnut17", "train.conll")
    lines = path.read_bytes().split(b"\n")
    assert sum(1 for line in lines if line and not line.strip()) == 2_394
