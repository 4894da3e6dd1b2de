"""Tokenizer: offsets, CoNLL-2003 splits, Unicode, sentence splitting, pre-tokenised input."""

from __future__ import annotations

import time
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.data.tokenize import Token, split_sentences, tokenize, tokens_from_words

# Characters that are never part of a token's visible content.
ZWSP, ZWNJ, ZWJ, BOM, NBSP = "\u200b", "\u200c", "\u200d", "\ufeff", "\u00a0"
SEPARATORS = {ZWSP, BOM, "\u180e"}


def is_separator(ch: str) -> bool:
    return ch.isspace() or ch in SEPARATORS or unicodedata.category(ch) == "Cc"


# Format characters that are visible signs spanning the following digits (Arabic number sign...).
VISIBLE_FORMAT = {*range(0x0600, 0x0606), 0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x110BD, 0x110CD}


def is_invisible(ch: str) -> bool:
    """Format characters, variation selectors and the CGJ: never a token of their own."""
    cp = ord(ch)
    return (
        (unicodedata.category(ch) == "Cf" and cp not in VISIBLE_FORMAT)
        or 0xFE00 <= cp <= 0xFE0F
        or 0xE0100 <= cp <= 0xE01EF
        or cp == 0x034F
    )


def words(text: str) -> list[str]:
    return [t.text for t in tokenize(text)]


def check_invariants(text: str, tokens: list[Token]) -> None:
    covered = [False] * len(text)
    prev_end = 0
    for tok in tokens:
        assert text[tok.start : tok.end] == tok.text
        assert tok.text, "empty token"
        assert not any(ch.isspace() for ch in tok.text), f"whitespace in {tok.text!r}"
        assert not any(ch in (ZWSP, BOM) for ch in tok.text), f"separator in {tok.text!r}"
        assert not all(is_invisible(ch) for ch in tok.text), f"invisible token {tok.text!r}"
        assert tok.start >= prev_end, "tokens overlap or are out of order"
        prev_end = tok.end
        covered[tok.start : tok.end] = [True] * (tok.end - tok.start)
    for i, ch in enumerate(text):  # nothing visible is dropped
        if not covered[i]:
            assert is_separator(ch) or is_invisible(ch), f"dropped {ch!r} at {i} in {text!r}"


# --- golden CoNLL-2003-style splits --------------------------------------------------------------

GOLDEN = [
    (
        "EU rejects German call to boycott British lamb.",
        "EU rejects German call to boycott British lamb .",
    ),
    ("Germany's representative to the EU", "Germany 's representative to the EU"),
    ("I don't know, he didn't say.", "I do n't know , he did n't say ."),
    ("They can't and won't.", "They ca n't and wo n't ."),
    ("The U.S. and the U.N. met, e.g. in Bonn.", "The U.S. and the U.N. met , e.g. in Bonn ."),
    ("Leeds won 1-0 on 1996-08-22.", "Leeds won 1-0 on 1996-08-22 ."),
    ("Prices rose 3.5 percent to 1,000 marks.", "Prices rose 3.5 percent to 1,000 marks ."),
    ("Urdu-speaking and well-known groups", "Urdu-speaking and well-known groups"),
    ('He said "no" (twice) [sic].', 'He said " no " ( twice ) [ sic ] .'),
    ("Mr. Smith met Dr. Jones in Jan. 1997.", "Mr. Smith met Dr. Jones in Jan. 1997 ."),
    ("John F. Kennedy spoke.", "John F. Kennedy spoke ."),
    ("O'Neill's team; the Joneses' house", "O'Neill 's team ; the Joneses ' house"),
    ("We'll see what they've done, I'm sure.", "We 'll see what they 've done , I 'm sure ."),
    ("It cost US$ 5 million, or 20% more!", "It cost US$ 5 million , or 20 % more !"),
    ("S&P rose .500 points to +0.05?", "S&P rose .500 points to +0.05 ?"),
    ("the U.S.-led coalition", "the U.S.-led coalition"),
    ("Wait... what -- really?", "Wait ... what -- really ?"),
    ("See https://example.com/a?b=1, then go.", "See https://example.com/a?b=1 , then go ."),
    ("AT&T shares rose at 12:30 GMT.", "AT&T shares rose at 12:30 GMT ."),
    ("1. Jan Ullrich (Germany) 4:01:23", "1. Jan Ullrich ( Germany ) 4:01:23"),
    ("Mail john.doe@example.com or @reuters #NLP.", "Mail john.doe@example.com or @reuters #NLP ."),
    ("Don’t forget Germany’s curly quotes", "Do n’t forget Germany ’s curly quotes"),
    ("SAN FRANCISCO, Calif. -- Sales fell.", "SAN FRANCISCO , Calif. -- Sales fell ."),
    ("She has a Ph.D. in physics.", "She has a Ph.D. in physics ."),
    ("A PH.D. and an M.Sc. degree", "A PH.D. and an M.Sc. degree"),
    ("Fruit, e.g. apples, i.e. food.", "Fruit , e.g. apples , i.e. food ."),
    ("From 9 a.m. to 5 p.m. daily", "From 9 a.m. to 5 p.m. daily"),
    ("anti-U.S. protests and pro-U.N. forces", "anti-U.S. protests and pro-U.N. forces"),
    ("an anti-U.S.-led campaign", "an anti-U.S.-led campaign"),
    ("well-known. Anti-war-U.S.", "well-known . Anti-war-U.S."),
]


@pytest.mark.parametrize(("text", "expected"), GOLDEN)
def test_golden_conll_splits(text: str, expected: str) -> None:
    tokens = tokenize(text)
    assert [t.text for t in tokens] == expected.split(" ")
    check_invariants(text, tokens)


def test_offsets_are_code_points() -> None:
    text = "😀 Zürich"
    tokens = tokenize(text)
    assert tokens == [Token("😀", 0, 1), Token("Zürich", 2, 8)]
    # A JavaScript client would see "Zürich" at UTF-16 offsets 3..9: a different unit.
    assert len(text[:2].encode("utf-16-le")) // 2 == 3


def test_rejects_non_str() -> None:
    with pytest.raises(TypeError, match="expects str"):
        tokenize(b"bytes")  # type: ignore[arg-type]


# --- Unicode -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Café naïve façade", ["Café", "naïve", "façade"]),
        ("cafe\u0301 na\u0308ive", ["cafe\u0301", "na\u0308ive"]),  # decomposed accents
        (
            "\u0928\u092e\u0938\u094d\u0924\u0947 world",
            ["\u0928\u092e\u0938\u094d\u0924\u0947", "world"],
        ),
        ("family 👨\u200d👩\u200d👧\u200d👦!", ["family", "👨\u200d👩\u200d👧\u200d👦", "!"]),
        ("ok 👍🏽👍🏿", ["ok", "👍🏽", "👍🏿"]),  # skin tones stay on their emoji
        ("🏳️\u200d🌈 flag", ["🏳️\u200d🌈", "flag"]),
        ("🇩🇪🇫🇷🇮", ["🇩🇪", "🇫🇷", "🇮"]),  # regional indicators pair up
        ("press 1️⃣ now", ["press", "1️⃣", "now"]),  # keycap
        ("line one\r\nline two", ["line", "one", "line", "two"]),
        (f"a{NBSP}b\u3000c\u2009d\u2028e", ["a", "b", "c", "d", "e"]),
        (f"{BOM}start{ZWSP}split", ["start", "split"]),
        (f"{ZWJ} {ZWNJ} {ZWSP} {BOM}", []),
        (
            f"\u0645\u06cc{ZWNJ}\u062e\u0648\u0627\u0647\u0645",
            [f"\u0645\u06cc{ZWNJ}\u062e\u0648\u0627\u0647\u0645"],
        ),
        ("Ｔｏｋｙｏ１２３，ｏｋ！", ["Ｔｏｋｙｏ１２３", "，", "ｏｋ", "！"]),
        ("（東京）「大阪」", ["（", "東京", "）", "「", "大阪", "」"]),
        ("x \u0301 y", ["x", "\u0301", "y"]),  # a mark after a space is kept, not dropped
    ],
)
def test_unicode(text: str, expected: list[str]) -> None:
    tokens = tokenize(text)
    assert [t.text for t in tokens] == expected
    check_invariants(text, tokens)


ALL_CHARS = st.one_of(st.characters(), st.characters(categories=["Cs"]))

PIECES = st.sampled_from(
    [
        "Germany",
        "U.S.",
        "don't",
        "1-0",
        "3.5",
        "1,000",
        "'s",
        "Zürich",
        "e\u0301",
        "\u0301",
        "\u0915\u094d\u0937",
        "👨\u200d👩\u200d👧",
        "👍🏽",
        "🇩🇪",
        "🏳️\u200d🌈",
        "1️⃣",
        "\r\n",
        "\n",
        " ",
        "\t",
        NBSP,
        "\u3000",
        ZWSP,
        ZWJ,
        ZWNJ,
        BOM,
        "\ufe0f",
        "\u200e",
        "\u00ad",
        "Ｔｏｋｙｏ",
        "１２３",
        "，",
        "。",
        "-",
        "'",
        "’",
        '"',
        ".",
        "(",
        ")",
        "...",
        "n't",
        "\u0600",
        "http://x.y/z.",
    ]
)
MIXED = st.lists(st.one_of(PIECES, st.text(ALL_CHARS, max_size=3)), max_size=30).map("".join)


@settings(max_examples=200, deadline=None)
@given(st.text(ALL_CHARS, max_size=200))
def test_offsets_on_any_unicode(text: str) -> None:
    check_invariants(text, tokenize(text))


@settings(max_examples=200, deadline=None)
@given(MIXED)
def test_offsets_on_mixed_text(text: str) -> None:
    check_invariants(text, tokenize(text))


def grapheme_violations(text: str, tokens: list[Token]) -> list[int]:
    """Token boundaries that fall inside an extended grapheme cluster (UAX #29).

    A cluster that holds a separator (a combining mark after a space) is exempt: tokens never
    contain whitespace, so the tokenizer cannot keep it whole.
    """
    regex = pytest.importorskip("regex")
    cluster_of = [0] * (len(text) + 1)
    starts = set()
    clusters = [m.span() for m in regex.finditer(r"\X", text)]
    for k, (a, b) in enumerate(clusters):
        starts.add(a)
        cluster_of[a:b] = [k] * (b - a)
    starts.add(len(text))
    bad = []
    for pos in {t.start for t in tokens} | {t.end for t in tokens}:
        if pos in starts:
            continue
        a, b = clusters[cluster_of[pos]]
        if not any(is_separator(ch) for ch in text[a:b]):
            bad.append(pos)
    return bad


def assigned(ch: str) -> bool:
    # The oracle (regex) may know a newer Unicode than this Python's unicodedata.
    return unicodedata.category(ch) != "Cn"


@settings(max_examples=200, deadline=None)
@given(MIXED.filter(lambda s: all(map(assigned, s))))
def test_never_splits_a_grapheme_cluster(text: str) -> None:
    assert grapheme_violations(text, tokenize(text)) == []


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(exclude_categories=["Cn", "Cs"]), max_size=100))
def test_never_splits_a_grapheme_cluster_any_text(text: str) -> None:
    assert grapheme_violations(text, tokenize(text)) == []


@pytest.mark.parametrize(
    "text",
    [
        " " * 50_000 + "a",
        "a" + " \u200d" * 25_000,
        "a" + "\u0301" * 50_000,
        "a'" * 25_000,
        "😀\u200d" * 25_000,
        "🇩" * 50_001,
        "U." * 25_000,
        "n" * 50_000,
        "\u200d" * 50_000 + "\u0301",
        "1." * 25_000,
        "a-" * 25_000,
        "a-U" * 25_000,
    ],
    ids=lambda s: repr(s[:6]),
)
def test_pathological_input_is_linear(text: str) -> None:
    start = time.perf_counter()
    check_invariants(text, tokenize(text))
    assert time.perf_counter() - start < 5  # quadratic backtracking would take minutes


# --- sentences -----------------------------------------------------------------------------------


def sentence_texts(text: str) -> list[str]:
    return [" ".join(t.text for t in s) for s in split_sentences(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "He left. She stayed! Did they? Yes.",
            ["He left .", "She stayed !", "Did they ?", "Yes ."],
        ),
        ("Mr. Smith met Dr. Jones. They talked.", ["Mr. Smith met Dr. Jones .", "They talked ."]),
        (
            "The U.S. Army said so. In Jan. 1997 it left.",
            ["The U.S. Army said so .", "In Jan. 1997 it left ."],
        ),
        ("John F. Kennedy spoke. Then he left.", ["John F. Kennedy spoke .", "Then he left ."]),
        ('He said "Go." Then he went.', ['He said " Go . "', "Then he went ."]),
        ("It rose 3.5 percent. 1996 was good.", ["It rose 3.5 percent .", "1996 was good ."]),
        ("Really? yes, really.", ["Really ? yes , really ."]),  # lower case: no new sentence
        ("no stop here\n\nnew paragraph", ["no stop here", "new paragraph"]),
        ("no stop here\r\n \r\nnew paragraph", ["no stop here", "new paragraph"]),
        ("one line\nwraps here.", ["one line wraps here ."]),
        ("東京です。大阪です。", ["東京です 。", "大阪です 。"]),
        ("Wait... Go on.", ["Wait ...", "Go on ."]),
        ("", []),
        ("  \n\n ", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert sentence_texts(text) == expected


@settings(max_examples=200, deadline=None)
@given(MIXED)
def test_sentences_keep_global_offsets(text: str) -> None:
    sentences = split_sentences(text)
    assert all(sentences), "empty sentence"
    assert [t for s in sentences for t in s] == tokenize(text)
    for sentence in sentences:
        for tok in sentence:
            assert text[tok.start : tok.end] == tok.text


def test_split_long_text_and_max_tokens() -> None:
    paragraph = "Mr. Smith visited the U.S. on Jan. 5. Prices rose 3.5 percent! Did they? Yes.\n\n"
    text = paragraph * 2_000
    start = time.perf_counter()
    sentences = split_sentences(text)
    assert time.perf_counter() - start < 10
    assert len(sentences) == 4 * 2_000
    last = sentences[-1]
    assert [t.text for t in last] == ["Yes", "."]
    assert last[0].start == len(text) - len("Yes.\n\n")
    pieces = split_sentences("a " * 25, max_tokens=10)
    assert [len(p) for p in pieces] == [10, 10, 5]
    with pytest.raises(ValueError, match="max_tokens"):
        split_sentences("a", max_tokens=0)


# --- pre-tokenised input -------------------------------------------------------------------------


def test_tokens_from_words() -> None:
    text, tokens = tokens_from_words(["EU", "rejects", "😀", "Zürich", "."])
    assert text == "EU rejects 😀 Zürich ."
    assert tokens == [
        Token("EU", 0, 2),
        Token("rejects", 3, 10),
        Token("😀", 11, 12),
        Token("Zürich", 13, 19),
        Token(".", 20, 21),
    ]
    assert tokens_from_words([]) == ("", [])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(ALL_CHARS, min_size=1, max_size=8).filter(lambda w: not any(c.isspace() for c in w))
    )
)
def test_tokens_from_words_offsets(ws: list[str]) -> None:
    text, tokens = tokens_from_words(ws)
    assert text == " ".join(ws)
    assert [t.text for t in tokens] == ws
    assert all(text[t.start : t.end] == t.text for t in tokens)


@pytest.mark.parametrize(
    ("ws", "error", "message"),
    [
        (["a", ""], ValueError, "word 1 is empty"),
        (["New York"], ValueError, "contains whitespace"),
        (["a", 3], TypeError, "word 1 is int"),
    ],
)
def test_tokens_from_words_rejects_bad_words(ws: list, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        tokens_from_words(ws)


@pytest.mark.data
def test_reproduces_conll_tokenization() -> None:
    """Re-tokenizing the space-joined CoNLL-2003 dev sentences gives back their tokens."""
    from ner.data.conll import read_conll
    from ner.settings import data_dir

    path = data_dir() / "conll2003" / "dev.txt"
    if not path.exists():
        pytest.skip(f"CoNLL-2003 dev not found at {path} (set NER_DATA_DIR)")
    sentences = [s.tokens for s in read_conll(path)]
    same = sum(words(" ".join(tokens)) == list(tokens) for tokens in sentences)
    assert same / len(sentences) > 0.99  # the rest are odd source strings such as "1=80"
