"""Vocabularies (JSON round trip, min_freq, max_size, casing) and casing features."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.data.conll import read_conll
from ner.data.vocab import CASING_NAMES, PAD, UNK, Vocab, casing_id, char_vocab

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_specials_and_lookup():
    vocab = Vocab.build(["a", "b", "a"])
    assert vocab.itos[:2] == (PAD, UNK)
    assert vocab.id(PAD) == 0 and vocab.id(UNK) == 1
    assert vocab.itos[2] == "a"  # most frequent first
    assert vocab.id("zzz") == 1 and "zzz" not in vocab and "a" in vocab
    assert vocab.encode(["a", "b", "c"]) == [2, 3, 1]
    assert vocab.decode([2, 3]) == ["a", "b"]
    assert len(vocab) == 4


def test_build_is_deterministic_and_ordered():
    a = Vocab.build(["x", "y", "z", "y", "x", "w"])
    b = Vocab.build(["w", "x", "x", "y", "y", "z"])
    assert a == b and hash(a) == hash(b)
    assert a.itos == (PAD, UNK, "x", "y", "w", "z")  # count desc, ties alphabetical


def test_min_freq_and_max_size():
    tokens = ["a"] * 3 + ["b"] * 2 + ["c"]
    assert Vocab.build(tokens, min_freq=2).itos == (PAD, UNK, "a", "b")
    assert Vocab.build(tokens, min_freq=4).itos == (PAD, UNK)
    assert Vocab.build(tokens, max_size=1).itos == (PAD, UNK, "a")
    assert Vocab.build(tokens, min_freq=2, max_size=10).itos == (PAD, UNK, "a", "b")
    with pytest.raises(ValueError):
        Vocab.build(tokens, min_freq=0)


def test_specials_in_data_are_not_duplicated():
    assert Vocab.build([PAD, UNK, "a"]).itos == (PAD, UNK, "a")


@pytest.mark.parametrize(
    ("casing", "expected"),
    [
        ("keep", (PAD, UNK, "Paris", "paris", "1996", "PARIS")),
        ("lower", (PAD, UNK, "paris", "1996")),
        ("lower_digits", (PAD, UNK, "paris", "0000")),
    ],
)
def test_casing_policy(casing, expected):
    tokens = ["Paris", "Paris", "paris", "paris", "PARIS", "1996", "1996"]
    vocab = Vocab.build(tokens, casing=casing)
    assert set(vocab.itos) == set(expected) and vocab.itos[:2] == (PAD, UNK)
    assert vocab.casing == casing


def test_casing_applies_at_lookup():
    vocab = Vocab.build(["Paris", "1996"], casing="lower_digits")
    assert vocab.id("PARIS") == vocab.id("paris") == vocab.id("Paris") != 1
    assert vocab.id("2024") == vocab.id("1996") != 1
    assert vocab.normalize("Ab-3٣") == "ab-00"  # any Unicode digit becomes 0
    assert "PARIS" in vocab


def test_constructor_validation():
    with pytest.raises(ValueError, match="starts with"):
        Vocab(["a", "b"])
    with pytest.raises(ValueError, match="duplicate"):
        Vocab([PAD, UNK, "a", "a"])
    with pytest.raises(ValueError, match="casing"):
        Vocab([PAD, UNK], casing="upper")  # type: ignore[arg-type]


def test_json_round_trip(tmp_path):
    sentences = read_conll(FIXTURES / "tiny_train.conll")
    vocab = Vocab.build((t for s in sentences for t in s.tokens), casing="lower")
    path = tmp_path / "vocab.json"
    vocab.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["casing"] == "lower" and data["itos"][:2] == [PAD, UNK]
    again = Vocab.load(path)
    assert again == vocab
    assert again.encode(["Harry", "zzz"]) == vocab.encode(["Harry", "zzz"])
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.json"]  # no temporary file left


def test_json_keeps_unicode(tmp_path):
    vocab = Vocab.build(["Zürich", "😀", "東京"])
    vocab.save(tmp_path / "v.json")
    assert "Zürich" in (tmp_path / "v.json").read_text(encoding="utf-8")
    assert Vocab.load(tmp_path / "v.json") == vocab


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocabulary file not found"):
        Vocab.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.json"):
        Vocab.load(bad)
    bad.write_text('{"itos": ["a"]}', encoding="utf-8")
    with pytest.raises(ValueError, match="not a vocabulary"):
        Vocab.load(bad)
    bad.write_text('{"format": "ner.vocab/1", "itos": ["a", "b"]}', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.json"):
        Vocab.load(bad)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.text(min_size=1, max_size=5), max_size=30),
    st.sampled_from(["keep", "lower", "lower_digits"]),
    st.integers(1, 3),
)
def test_dict_round_trip_property(tokens, casing, min_freq):
    vocab = Vocab.build(tokens, casing=casing, min_freq=min_freq)
    assert Vocab.from_dict(json.loads(json.dumps(vocab.to_dict()))) == vocab
    for token in tokens:
        i = vocab.id(token)
        assert i == 1 or vocab.itos[i] == vocab.normalize(token)


def test_char_vocab():
    chars = char_vocab(["ab", "Ba"])
    assert chars.itos[:2] == (PAD, UNK) and set(chars.itos[2:]) == {"a", "b", "B"}
    assert chars.casing == "keep"


# --- casing features ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "name"),
    [
        ("the", "lower"),
        ("EU", "upper"),
        ("Paris", "title"),
        ("1996", "numeric"),
        ("1996-08-22", "mostly_numeric"),
        ("3.5", "mostly_numeric"),
        ("a1", "lower"),  # islower() ignores digits, as in Reimers & Gurevych
        ("mp3s", "lower"),
        ("-3x", "lower"),
        ("xX1", "has_digit"),
        ("iPhone", "other"),
        (".", "other"),
        ("", "other"),
        ("Zürich", "title"),
        ("ÉCOLE", "upper"),
    ],
)
def test_casing_id(token, name):
    assert CASING_NAMES[casing_id(token)] == name


def test_casing_names():
    assert CASING_NAMES[0] == PAD
    assert CASING_NAMES == (
        "<pad>", "lower", "upper", "title", "numeric", "mostly_numeric", "has_digit", "other",
    )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=8))
def test_casing_id_never_padding(token):
    assert 1 <= casing_id(token) < len(CASING_NAMES)
