"""The tokenizer's shortcuts (``ner.data.tokenize._SHORTCUTS``) change its speed, not its tokens.

/v1/tag tokenises every text it gets, and the shortcuts are what keeps that cheap; this compares
the pattern with and without them on tricky strings and on many random ones.
"""

from __future__ import annotations

import random
import re

import pytest

from ner.data.tokenize import _SHORTCUTS, _token_regex

TRICKY = [
    "Germany's U.S. envoy won't go.",
    "EU rejects German call to boycott British lamb .",
    "Peter Blackburn, 1,000 people (Reuters) said: 12:30 on 1996-08-22; 3.5% of $10.",
    "Mr. Smith met Dr. J. Kennedy in St. Louis, Mo. at 5 p.m. e.g. Ph.D. anti-U.S. U.S.-led",
    "US$ 5 HK$6 S&P AT&T No. 1 +44 .500 +0.05 +91-22-265 1. Item\n2. Item",
    "mail x.y+z@example.co.uk or https://example.com/a?b=c, (http://x.org). @user #tag",
    "rock'n'roll O'Neill don't can't DON'T I'm we'll they're you've he'd ``quoted'' -- ...",
    "Café naïve e\u0301 ZWJ\u200dx emoji 😀 👍🏽 👨\u200d👩\u200d👧 🇩🇪🇫🇷 1\ufe0f\u20e3",
    "東京は日本の首都です。タイ語ภาษาไทย Ａｂｃ１２３，ＵＳ．",
    "tab\tnew\nline\r\nnbsp\u00a0ideo\u3000zwsp\u200bbom\ufeffsoft\u00adhyphen",
    "\u0600123 \u0301 leading mark, ,, ;; !! ?? (( )) [[ ]] \"\" '' ``",
    "ends with a word",
    "ends with a comma,",
    "ends with 1,",
    '1,a a,1 1;2 a;b 1!2 a(b) a[b] a"b a\u0301,b a,\u0301b',
    "",
    "   ",
]

ALPHABET = [
    *"aAzZnNtTsS019 ,.;:!?'’\"()[]{}-‐‑@#$&+/_`\t\n\r",
    *["\u0301", "\u200d", "\u200b", "\u00a0", "é", "ß", "٣", "😀", "🇩🇪", "\ufe0f", "\u0600"],
    *["\u3000", "。", "—", "\x00", "\x85", "\u2028", "\u00ad", "\U0001f3fd", "ｱ", "ﾞ"],
    *["’s", "n't", "U.S.", "http://", "x@y.com", "Mr.", "No. 1", "1,000", "3.5", "12:30"],
    *["e.g.", "S&P", "US$", "Ph.D.", "Jan.", " F. Kennedy", "anti-", "--", "..."],
]


def _tokens(pattern: object, text: str) -> list[tuple[int, int]]:
    return [m.span(1) for m in pattern.finditer(text) if m.lastindex]  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", TRICKY)
def test_shortcuts_keep_the_tokens_of_tricky_texts(text: str) -> None:
    assert _tokens(_token_regex(), text) == _tokens(_token_regex(False), text)


def test_shortcuts_keep_the_tokens_of_random_texts() -> None:
    rng = random.Random(15)
    fast, full = _token_regex(), _token_regex(False)
    for _ in range(20_000):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(1, 16)))
        assert _tokens(fast, text) == _tokens(full, text), ascii(text)


def test_the_shortcuts_take_the_common_tokens() -> None:
    """A guard that the shortcuts still apply: every token of plain text is one of theirs."""
    shortcut = re.compile("|".join(_SHORTCUTS))
    text = "Peter Blackburn reports from Brussels on Thursday, (1996) 42 times!"
    for m in _token_regex().finditer(text):
        if m.lastindex:
            found = shortcut.match(text, m.start(1))
            assert found is not None and found.end() == m.end(1), m[1]
