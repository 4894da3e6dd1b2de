"""CoNLL column files: the project's fixtures, malformed lines, and the writer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.data.conll import (
    ConllFormatError,
    DocStart,
    Sentence,
    is_valid_label,
    iter_conll,
    read_conll,
    write_conll,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _write(tmp_path: Path, text: str | bytes, name: str = "bad.conll") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


# --- the project's fixtures -----------------------------------------------------------------


def test_tiny_train_fixture():
    sentences = read_conll(FIXTURES / "tiny_train.conll")
    assert 35 <= len(sentences) <= 50
    first = sentences[0]
    assert " ".join(first.tokens) == "Harry Potter and Hermione Granger invented a new spell ."
    assert first.labels == ("I-PER", "I-PER", "O", "I-PER", "I-PER", "O", "O", "O", "O", "O")
    assert first.line == 3  # line 1 is -DOCSTART-, line 2 blank
    labels = {label for s in sentences for label in s.labels}
    assert {"I-PER", "I-LOC", "I-ORG", "I-MISC"} <= labels
    assert any(label.startswith("B-") for label in labels), "the IOB1 B- case must be covered"


def test_tiny_dev_fixture_and_docstarts():
    items = list(iter_conll(FIXTURES / "tiny_dev.conll"))
    docs = [item for item in items if isinstance(item, DocStart)]
    sentences = [item for item in items if isinstance(item, Sentence)]
    assert len(docs) == 3 and docs[0] == DocStart(line=1)
    assert 12 <= len(sentences) <= 20
    assert all(len(s.tokens) == len(s.labels) for s in sentences)


def test_tiny_wnut_fixture_whitespace_separators():
    raw = (FIXTURES / "tiny_wnut.conll").read_text(encoding="utf-8").splitlines()
    assert any(line and not line.strip() for line in raw), "fixture must hold a whitespace line"
    sentences = read_conll(FIXTURES / "tiny_wnut.conll")
    assert len(sentences) == 5
    assert sentences[0].labels[4:6] == ("B-location", "I-location")
    assert sentences[1].labels[1:3] == ("B-creative-work", "I-creative-work")


def test_columns_chosen_by_caller():
    path = FIXTURES / "tiny_train.conll"
    pos = read_conll(path, label_col=1, validate_labels=False)[0]
    assert pos.labels[:3] == ("NNP", "NNP", "CC")
    chunk = read_conll(path, token_col=0, label_col=2)[0]
    assert chunk.labels[:2] == ("I-NP", "I-NP")
    unlabelled = read_conll(path, label_col=None)[0]
    assert unlabelled.labels is None and unlabelled.tokens[0] == "Harry"
    pos_as_token = read_conll(path, token_col=1, label_col=-1)[0]
    assert pos_as_token.tokens[0] == "NNP" and pos_as_token.labels[0] == "I-PER"


def test_separators_docstarts_crlf_bom_and_no_final_newline(tmp_path):
    text = (
        "\ufeff-DOCSTART- -X- -X- O\r\n\r\n"
        "A\tB-PER\r\n b \t I-PER \r\n\t\r\n"
        "   \r\n"
        "-DOCSTART-\n"
        "c O\n"
        "-DOCSTART- O\n"  # no blank line before: ends the sentence
        "\n\n\nd S-LOC"
    )
    items = list(iter_conll(_write(tmp_path, text)))
    assert items == [
        DocStart(1),
        Sentence(("A", "b"), ("B-PER", "I-PER"), 3),
        DocStart(7),
        Sentence(("c",), ("O",), 8),
        DocStart(9),
        Sentence(("d",), ("S-LOC",), 13),
    ]


def test_non_ascii_tokens_and_unicode_spaces_kept(tmp_path):
    path = _write(tmp_path, "Zürich I-LOC\n😀 O\nx\u00a0y O\n\u3000 O\n")
    (sentence,) = read_conll(path)
    assert sentence.tokens == ("Zürich", "😀", "x\u00a0y", "\u3000")


def test_binary_and_bilou_labels(tmp_path):
    path = _write(tmp_path, "a 1\nb 0\n\nc U-PER\nd L-PER\n")
    assert [s.labels for s in read_conll(path)] == [("1", "0"), ("U-PER", "L-PER")]


def test_empty_file(tmp_path):
    assert read_conll(_write(tmp_path, "")) == []
    assert read_conll(_write(tmp_path, "\n \n\t\n", "blank.conll")) == []


# --- malformed input: every case names the file and the 1-based line --------------------------


@pytest.mark.parametrize(
    ("text", "kwargs", "line", "fragment"),
    [
        ("a O\nb\n", {}, 2, "columns"),  # one column in a 2-column sentence
        ("a\n", {}, 1, "too few columns"),  # label_col=-1 needs 2 columns
        ("a NN O\n", {"label_col": 3}, 1, "too few columns"),
        ("a O\n", {"token_col": 2, "label_col": None}, 1, "token column"),
        ("x O\n\na NN O\nb O\n", {}, 4, "sentence starting at line 3 has 3"),
        ("a O\nb NN O\n", {}, 2, "columns"),  # more columns than the sentence
        ("a O\nb PER\n", {}, 2, "not a valid tag"),
        ("a B-\n", {}, 1, "not a valid tag"),
        ("a X-PER\n", {}, 1, "not a valid tag"),
        ("a O\nb 2\n", {}, 2, "not a valid tag"),
        ("a O\nb -\n", {}, 2, "not a valid tag"),
    ],
)
def test_malformed_lines(tmp_path, text, kwargs, line, fragment):
    path = _write(tmp_path, text)
    with pytest.raises(ConllFormatError) as info:
        read_conll(path, **kwargs)
    err = info.value
    assert err.path == str(path) and err.line == line
    assert str(err).startswith(f"{path}:{line}: ")
    assert fragment in str(err)


def test_invalid_utf8_reports_line(tmp_path):
    path = _write(tmp_path, b"a O\n\nb O\nc\xff\xfe O\n")
    with pytest.raises(ConllFormatError, match=r":4: invalid UTF-8") as info:
        read_conll(path)
    assert str(path) in str(info.value)


def test_error_raised_while_streaming_after_good_sentences(tmp_path):
    path = _write(tmp_path, "a O\n\nb O\n\nc FOO\n")
    items = iter_conll(path)
    assert next(items).tokens == ("a",)
    assert next(items).tokens == ("b",)
    with pytest.raises(ConllFormatError, match=":5: "):
        next(items)


def test_missing_file_and_directory(tmp_path):
    missing = tmp_path / "nope.conll"
    with pytest.raises(FileNotFoundError, match="CoNLL file not found: .*nope.conll"):
        iter_conll(missing)  # raised at the call, not at the first next()
    with pytest.raises(IsADirectoryError, match="not a file"):
        read_conll(tmp_path)


def test_error_is_a_value_error_and_copyable():
    import copy

    err = ConllFormatError("f.conll", 3, "bad")
    assert isinstance(err, ValueError) and str(err) == "f.conll:3: bad"
    again = copy.copy(err)
    assert (again.path, again.line, again.reason) == ("f.conll", 3, "bad")


def test_label_validation_can_be_turned_off(tmp_path):
    path = _write(tmp_path, "a NN\nb VBZ\n")
    assert read_conll(path, validate_labels=False)[0].labels == ("NN", "VBZ")


@pytest.mark.parametrize(
    ("label", "ok"),
    [
        ("O", True),
        ("B-PER", True),
        ("I-creative-work", True),
        ("E-X", True),
        ("S-X", True),
        ("L-X", True),
        ("U-X", True),
        ("0", True),
        ("1", True),
        ("B-", False),
        ("PER", False),
        ("o", False),
        ("B_PER", False),
        ("", False),
    ],
)
def test_is_valid_label(label, ok):
    assert is_valid_label(label) is ok


# --- writing ---------------------------------------------------------------------------------


def test_write_then_read_round_trip(tmp_path):
    blocks = [
        DocStart(1),
        [["EU", "NNP", "I-NP", "I-ORG"], ["rejects", "VBZ", "I-VP", "O"]],
        [["Peter", "NNP", "I-NP", "I-PER"]],
        DocStart(7),
        [["BRUSSELS", "NNP", "I-NP", "I-LOC"]],
    ]
    path = tmp_path / "out.conll"
    write_conll(path, blocks)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("-DOCSTART- O O O\n\nEU NNP I-NP I-ORG\n")
    items = list(iter_conll(path))
    assert [type(i).__name__ for i in items] == [
        "DocStart",
        "Sentence",
        "Sentence",
        "DocStart",
        "Sentence",
    ]
    assert items[1].tokens == ("EU", "rejects") and items[1].labels == ("I-ORG", "O")
    assert read_conll(path, label_col=1, validate_labels=False)[0].labels == ("NNP", "VBZ")


def test_write_tab_separated(tmp_path):
    path = tmp_path / "w.conll"
    write_conll(path, [[["@user", "O"], ["paris", "B-location"]], [["x", "O"]]], sep="\t")
    assert path.read_text(encoding="utf-8") == "@user\tO\nparis\tB-location\n\nx\tO\n\n"
    assert len(read_conll(path)) == 2


def test_write_rejects_bad_cells_and_leaves_no_file(tmp_path):
    path = tmp_path / "out.conll"
    path.write_text("old\tO\n", encoding="utf-8")
    for bad in ([[["two words", "O"]]], [[["", "O"]]], [[["a", "O"], ["b"]]]):
        with pytest.raises(ValueError):
            write_conll(path, bad)
    assert path.read_text(encoding="utf-8") == "old\tO\n", "a failed write keeps the old file"
    assert sorted(os.listdir(tmp_path)) == ["out.conll"], "no temporary file left behind"


def test_write_is_atomic_on_generator_failure(tmp_path):
    def blocks():
        yield [["a", "O"]]
        raise RuntimeError("boom")

    path = tmp_path / "out.conll"
    with pytest.raises(RuntimeError):
        write_conll(path, blocks())
    assert os.listdir(tmp_path) == []


_cell = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=" \t\r\n\x0b\x0c"),
    min_size=1,
    max_size=6,
).filter(lambda s: s != "-DOCSTART-" and s != "\ufeff" and not s.startswith("\ufeff"))
_label = st.sampled_from(["O", "B-PER", "I-LOC", "E-ORG", "S-MISC", "1", "0"])


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(_cell, _cell, _label), min_size=1, max_size=5), min_size=0, max_size=5
    )
)
def test_write_read_round_trip_property(tmp_path_factory, sentences):
    path = tmp_path_factory.mktemp("rt") / "x.conll"
    write_conll(path, [[list(row) for row in sentence] for sentence in sentences])
    back = read_conll(path)
    assert [s.tokens for s in back] == [tuple(r[0] for r in s) for s in sentences]
    assert [s.labels for s in back] == [tuple(r[2] for r in s) for s in sentences]
