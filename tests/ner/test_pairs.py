"""Parallel pairs: tokenization, the split by source sentence, the retrieval baseline."""

from __future__ import annotations

from pathlib import Path

import pytest

from ner.data.pairs import (
    Pair,
    Retrieval,
    detokenize,
    read_pairs,
    references,
    split_by_source,
    tokenize,
)


def test_tokenize_and_detokenize() -> None:
    assert tokenize("J\u2019ai faim\u202f!") == ["j'", "ai", "faim", "!"]
    assert tokenize("Qu'est-ce que c'est ?") == ["qu'", "est-ce", "que", "c'", "est", "?"]
    assert detokenize(["j'", "ai", "faim", "!"]) == "j'ai faim !"
    assert detokenize(["il", "est", "là", "."]) == "il est là."


def test_read_pairs(tmp_path: Path) -> None:
    path = tmp_path / "p.txt"
    path.write_text("Go.\tVa !\tCC-BY x\nHi.\tSalut.\n", encoding="utf-8")
    assert read_pairs(path) == [Pair("Go.", "Va !", "CC-BY x"), Pair("Hi.", "Salut.", "")]
    path.write_text("Go.\n", encoding="utf-8")
    with pytest.raises(ValueError, match=":1:"):
        read_pairs(path)


def test_split_never_shares_a_source() -> None:
    pairs = [Pair(f"Sentence {i % 40}.", f"Phrase {i}.") for i in range(120)]
    train, dev, test = split_by_source(pairs, 0.2, 0.2, seed=3)
    key = {id(p): p.source for p in pairs}
    parts = [{key[id(p)] for p in part} for part in (train, dev, test)]
    assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
    assert len(train) + len(dev) + len(test) == 120 and len(parts[2]) == 8
    sources, refs = references(test)
    assert len(sources) == 8 and all(len(r) == 3 for r in refs)
    assert split_by_source(pairs, 0.2, 0.2, seed=3) == (train, dev, test)


def test_retrieval_answers_with_the_nearest_training_sentence() -> None:
    train = [
        Pair("I am hungry.", "J'ai faim."),
        Pair("I am tired.", "Je suis fatigué."),
        Pair("Go away.", "Va-t'en."),
    ]
    nearest = Retrieval(train)
    assert nearest.translate("I am hungry!") == "j'ai faim."
    assert nearest.translate("Are you tired?") == "je suis fatigué."
    assert nearest.translate("Zebra") == "j'ai faim."  # nothing shared: the first sentence


@pytest.mark.data
def test_the_shared_fra_eng_file_splits_by_english_sentence() -> None:
    from ner.data.pairs import normalize_text
    from ner.settings import data_dir

    path = data_dir() / "fra-eng" / "eng-fra.txt"
    if not path.is_file():
        pytest.skip(f"{path} is absent (set NER_DATA_DIR to the shared data folder)")
    pairs = read_pairs(path)
    assert len(pairs) == 5000 and len({p.source for p in pairs}) == 2597
    assert all(p.attribution.startswith("CC-BY 2.0 (France)") for p in pairs)
    train, dev, test = split_by_source(pairs, 0.1, 0.1, seed=0)
    seen = {normalize_text(p.source) for p in train}
    assert not seen & {normalize_text(p.source) for p in dev + test}
    assert len(references(test)[0]) == 260 and len(train) == 3983
    assert all(tokenize(p.target) for p in pairs)  # every French side has tokens
