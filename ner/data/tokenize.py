"""Tokenizer for raw text, with character offsets, and a sentence splitter.

Offsets
    Every :class:`Token` carries ``start``/``end`` offsets that are **Python ``str`` indices, that
    is Unicode code points**, so ``text[token.start:token.end] == token.text`` always holds. They
    are *not* UTF-16 code units (JavaScript ``String`` indices) nor UTF-8 bytes: a character
    outside the Basic Multilingual Plane (most emoji, e.g. ``"😀"``) counts 1 here but 2 in
    JavaScript. A JavaScript client must convert, for example with
    ``Array.from(text).slice(start, end).join("")`` or by mapping code-point offsets to UTF-16
    offsets once per text.

Splits (CoNLL-2003 conventions)
    * Punctuation is split off: ``"Germany,"`` -> ``Germany`` ``,``; quotes and brackets are
      tokens of their own; a sentence-final period is its own token.
    * Kept whole: dotted abbreviations (``U.S.``, ``U.N.``, ``e.g.``, ``a.m.``, ``Ph.D.``,
      ``U.S.-led``, and after a hyphenated prefix: ``anti-U.S.``, ``pro-U.N.``), a list of
      common abbreviations (``Mr.``, ``Dr.``, ``Jan.``, ``Corp.`` ...), single initials before a
      capitalised word (``John F. Kennedy``), numbers (``1-0``, ``3.5``, ``1,000``,
      ``1996-08-22``, ``12:30``), hyphenated words (``Urdu-speaking``, ``well-known``), inner
      apostrophes (``O'Neill``), URLs, e-mail addresses, ``@mentions`` and ``#hashtags``,
      ``...`` and ``--``.
    * Clitics are split off: possessive ``'s`` and ``'`` (``Germany's`` -> ``Germany`` ``'s``),
      ``n't`` (``don't`` -> ``do`` ``n't``), ``'m 'd 'll 're 've``.

Unicode
    * Word characters are those of ``re``'s ``\\w`` (letters and digits of every script,
      full-width letters and digits included; full-width punctuation splits like ASCII
      punctuation). Scripts written without spaces (Chinese, Japanese, Thai) come out as one
      token per run of word characters.
    * A token never ends inside an extended grapheme cluster (UAX #29): a base character keeps
      its combining marks, variation selectors and emoji modifiers (skin tones); emoji ZWJ
      sequences, flags (regional-indicator pairs) and keycaps stay whole. The one exception is a
      cluster that contains whitespace (a combining mark after a space): tokens never contain
      whitespace, so such a mark becomes a token of its own.
    * Separators: every Unicode whitespace character (``str.isspace``: NBSP, ideographic space,
      CR, LF, ...), control characters, and the zero-width space / BOM (U+200B, U+FEFF, U+180E).
    * Other invisible format characters (ZWJ, ZWNJ, word joiner, soft hyphen, direction marks,
      variation selectors) stay inside the token they follow and are skipped where they follow a
      separator: they never make a token of their own, so no token is empty or invisible.

The character classes come from the running Python's :mod:`unicodedata` (built once, on first
use). Everything is one compiled :mod:`re` pattern, so tokenizing is a single ``finditer`` pass
in linear time (a few hundred thousand tokens per second on one core).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache

__all__ = ["Token", "split_sentences", "tokenize", "tokens_from_words"]


@dataclass(frozen=True)
class Token:
    """One token: ``source[start:end] == text``; offsets are code points (``str`` indices)."""

    text: str
    start: int
    end: int


# --- character classes ---------------------------------------------------------------------------

_SEPARATOR_EXTRA = (0x180E, 0x200B, 0xFEFF)  # Cf characters that separate words (ZWSP, BOM, MVS)
# Grapheme_Cluster_Break=Prepend: they join the character that follows (UAX #29 rule GB9b).
_PREPEND = (
    *range(0x0600, 0x0606),
    0x06DD,
    0x070F,
    0x0890,
    0x0891,
    0x08E2,
    0x0D4E,
    0x110BD,
    0x110CD,
    0x111C2,
    0x111C3,
    0x113D1,
    0x1193F,
    0x11941,
    0x11A3A,
    *range(0x11A84, 0x11A8A),
    0x11D46,
    0x11F02,
)
# Grapheme extenders outside the M* categories (GB9, GB9a).
_EXTEND_EXTRA = (0x0E33, 0x0EB3, 0xFF9E, 0xFF9F, *range(0x1F3FB, 0x1F400))
_INVISIBLE_MARKS = (*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0), 0x034F)  # VS1-256, CGJ
# Extended_Pictographic characters outside the S* categories (they may follow a ZWJ, GB11).
_PICTOGRAPHIC_EXTRA = (0x203C, 0x2049, 0x2139, 0x3030, 0x303D)
_REGIONAL_INDICATOR = "[\U0001f1e6-\U0001f1ff]"


def _char_class(codepoints: Iterable[int]) -> str:
    """A regex character-class body (without brackets) matching exactly ``codepoints``."""
    ranges: list[list[int]] = []
    for cp in sorted(set(codepoints)):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


def _scan_planes() -> Iterator[int]:
    # Planes 4-13 are unassigned and 15-16 private use: nothing there is a mark, space or format.
    yield from range(0x40000)
    yield from range(0xE0000, 0xE1000)


@dataclass(frozen=True)
class _Classes:
    sep: str  # separators: whitespace, controls, ZWSP/BOM
    invisible: str  # format characters and invisible marks: attach, never start a token
    mark: str  # visible grapheme extenders: attach; start a token only after a separator
    extend: str  # invisible | mark, without the ZWJ
    word_or_extend: str  # re's \w or extend, without n and N
    prepend: str
    pictographic: str  # what a ZWJ glues to the cluster before it
    upper: str


@cache
def _classes() -> _Classes:
    sep, invisible, mark, pict, upper = set(_SEPARATOR_EXTRA), set(), set(), set(), set()
    word = {ord("_")}
    for cp in _scan_planes():
        ch = chr(cp)
        if ch.isalnum():  # exactly re's \w, with "_"
            word.add(cp)
        cat = unicodedata.category(ch)
        if ch.isspace() or cat == "Cc":
            sep.add(cp)
        elif cat == "Cf":
            invisible.add(cp)
        elif cat in ("Mn", "Mc", "Me"):
            mark.add(cp)
        elif cat[0] == "S" or (cat == "Cn" and 0x1F000 <= cp <= 0x1FFFD):
            pict.add(cp)
        elif cat in ("Lu", "Lt"):
            upper.add(cp)
    prepend = set(_PREPEND)
    invisible = (invisible | set(_INVISIBLE_MARKS)) - sep - prepend
    mark = (mark | set(_EXTEND_EXTRA)) - invisible
    return _Classes(
        sep=_char_class(sep),
        invisible=_char_class(invisible),
        mark=_char_class(mark),
        extend=_char_class((invisible | mark) - {0x200D}),
        word_or_extend=_char_class((word | invisible | mark) - {0x200D, ord("n"), ord("N")}),
        prepend=_char_class(prepend),
        pictographic=_char_class(pict | set(_PICTOGRAPHIC_EXTRA)),
        upper=_char_class(upper),
    )


# --- the token pattern ---------------------------------------------------------------------------

# Common abbreviations kept whole with their period; the last lines are U.S. states as Reuters
# datelines write them ("SAN FRANCISCO, Calif.").
_ABBREVIATIONS = """
Mr Mrs Ms Messrs Mme Mlle Dr Prof Rev Hon Sr Jr St Mt Ft Gen Gov Sen Rep Pres Lt Col Maj Capt
Cmdr Adm Sgt Cpl Pte Insp Supt Det Inc Corp Ltd Co Cos Bros Dept Univ Assn Ave Blvd Rd
Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec vs etc approx al cf Fig Vol pp Nos
Ala Ariz Ark Calif Colo Conn Del Fla Ga Ill Ind Kan Ky La Md Mass Mich Minn Miss Mo Mont Neb
Nev Okla Ore Pa Tenn Tex Va Vt Wash Wis Wyo
"""


# Abbreviations with an inner period whose parts are not all single letters (single-letter ones,
# ``e.g.``, ``i.e.``, ``a.m.``, ``p.m.``, ``U.S.``, need no list); matched in any letter case.
_DOTTED_ABBREVIATIONS = "Ph.D M.Sc B.Sc M.Phil D.Phil Ed.D Th.D LL.B LL.M M.Ed B.Ed"


def _trie(words: Iterable[str]) -> str:
    """A regex matching exactly ``words``, as a prefix tree (cheaper than a flat alternation)."""
    tree: dict[str, dict] = {}
    for word in words:
        node = tree
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, dict]) -> str:
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        optional = "" in node
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if optional:
            body = f"(?:{body})?" if len(branches) == 1 else body + "?"
        return body

    return emit(tree)


# Shortcuts tried before the full alternation, for the tokens that most text is made of: a run
# of ASCII letters and digits, and one ASCII punctuation character, each followed by a character
# that no alternative could take into the token (white space, punctuation that cannot continue
# it; a comma only when no digit follows: "1,000"), or by the end. Where one matches, the first
# alternative of the full pattern that matches gives the same token (tests/serving checks the
# two patterns against each other); the full pattern tries up to 16 alternatives per word
# first (an e-mail address scans the whole word), which was most of the served route's time.
_SHORTCUTS = (
    r"[A-Za-z0-9]++(?=[\t\n\r ;!?()\[\]\"]|,(?!\d)|\Z)",
    r"[,;!?()\[\]\"](?=[\x00-\x7f]|\Z)",
    r"\.(?=[\t\n\r ]|\Z)",
)


@cache
def _token_regex(shortcuts: bool = True) -> re.Pattern[str]:
    """``(?:separators)(token)``: group 1 is the token; it is ``None`` only at the end of text.

    ``shortcuts=False``: without :data:`_SHORTCUTS` (the same tokens, more slowly).
    """
    c = _classes()
    glue = f"(?:{_REGIONAL_INDICATOR}{{2}}|[{c.pictographic}])"
    # What follows a base character in its grapheme cluster: marks, format characters, and after
    # a ZWJ one pictographic character (emoji ZWJ sequences). Possessive: never given back, so a
    # token cannot end inside a cluster.
    tail = f"(?:[{c.extend}]|\u200d{glue}?)*+"
    end = r"(?!\w)"
    clitic = rf"(?i:s|m|d|ll|re|ve){tail}{end}"
    nt = rf"[nN]['’][tT]{tail}{end}"
    # A run of word characters with their marks; an "n" stops the run before "n't".
    n_ok = rf"[nN](?!['’][tT]{tail}{end})"
    run = rf"(?:[^\WnN]|{n_ok})(?:[{c.word_or_extend}]++|{n_ok}|\u200d{glue}?)*+"
    segment = rf"{run}(?:['’](?!{clitic}){run}|(?<=\d)[.,:/](?=\d){run})*"
    hyphen = "[-\u2010\u2011]"
    letter = rf"[^\W\d_]{tail}"
    # A dotted abbreviation with its final period: U.S. e.g. a.m. Ph.D.
    dotted = rf"(?:(?:{letter}\.{tail}){{2,}}|(?i:{_trie(_DOTTED_ABBREVIATIONS.split())})\.{tail})"
    alternatives = [
        # URL: scheme, then anything but separators; trailing punctuation is left out.
        rf"(?:https?|ftp)://[^{c.sep}]*[^{c.sep}.,;:!?'\"()\[\]{{}}<>«»“”‘’]",
        rf"[\w.+-]+@[\w-]+(?:\.[\w-]+)+{tail}{end}",  # e-mail address
        rf"(?<![\w{c.extend}])[@#](?=\w){segment}",  # @mention #hashtag
        rf"{dotted}(?:{hyphen}{segment})*",  # U.S. e.g. Ph.D. U.S.-led
        rf"{segment}(?:{hyphen}{segment})*{hyphen}{dotted}(?:{hyphen}{segment})*",  # anti-U.S.
        rf"(?:{letter}\.{tail})+{letter}{end}",  # U.S without its last period, n.a
        r"[A-Z]{1,3}\$",  # US$ C$ HK$
        rf"[{c.upper}]{{1,4}}(?:&[{c.upper}]{{1,4}})+{end}",  # S&P AT&T
        rf"{_trie(_ABBREVIATIONS.split())}\.{tail}{end}",  # Mr. Jan. Corp.
        rf"No\.{tail}(?=\s*\d)",  # No. 1
        rf"(?<![^\n])\d{{1,3}}\.{tail}(?=[ \t])",  # "1. " numbering a list at a line start
        rf"\+?\.?(?=\d){segment}(?:{hyphen}{segment})*",  # +44 .500 +0.05 +91-22-265
        rf"[{c.upper}]{tail}\.{tail}(?=\s+[{c.upper}])",  # initial: John F. Kennedy
        rf"['’]{clitic}",  # 's 'll ...
        nt,  # n't
        rf"[{c.prepend}]*{segment}(?:{hyphen}{segment})*",  # words and numbers
        rf"(?:\.{{2,}}|-{{2,}}|``|''){tail}",  # ... -- `` ''
        rf"[{c.invisible}]*[{c.mark}]{tail}",  # marks with no base (after a separator)
        rf"[{c.prepend}]*(?:{_REGIONAL_INDICATOR}{{2}}|[^{c.sep}{c.invisible}]){tail}",  # symbol
    ]
    # Skipped between tokens: separators, and invisible characters that no mark follows.
    skip = rf"(?:[{c.sep}]++|[{c.invisible}]++(?![{c.mark}]))*+"
    if shortcuts:
        alternatives = [*_SHORTCUTS, *alternatives]
    token = "|".join(f"(?:{a})" for a in alternatives)
    return re.compile(rf"{skip}(?:({token})|\Z)")


def tokenize(text: str) -> list[Token]:
    """Split raw ``text`` into tokens with code-point offsets (CoNLL-2003 conventions).

    ``tokenize("Germany's U.S. envoy won't go.")`` gives ``Germany 's U.S. envoy wo n't go .``.

    Raises:
        TypeError: ``text`` is not a ``str``.
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize() expects str, got {type(text).__name__}")
    return [Token(m[1], *m.span(1)) for m in _token_regex().finditer(text) if m.lastindex]


# --- sentences -----------------------------------------------------------------------------------

_TERMINATORS = frozenset(
    {".", "!", "?", "...", "…", "‼", "⁇", "⁈", "⁉", "؟", "۔", "।", "॥", "etc.", "．"}
)
# Full stops of scripts written without spaces end a sentence even when no space follows.
_UNSPACED_TERMINATORS = frozenset({"。", "｡", "！", "？"})
_CLOSERS = frozenset({'"', "'", "''", "’", "”", "»", "›", ")", "]", "}", "）", "］", "」", "』"})
_LINE_BREAK = re.compile(r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def _blank_line(gap: str) -> bool:
    """Whether the text between two tokens holds an empty line (or a paragraph separator)."""
    if "\u2029" in gap:
        return True
    breaks = _LINE_BREAK.findall(gap)
    return len(breaks) >= 2


def _opens_sentence(token: Token) -> bool:
    ch = token.text[0]
    if ch.isalpha():
        return not ch.islower()  # upper- and titlecase, and letters of caseless scripts
    return ch.isdigit() or ch in "\"'`¿¡“‘«‹([{" or unicodedata.category(ch) in ("Ps", "Pi")


def _sentence_ends_before(text: str, tokens: Sequence[Token], i: int, first: int) -> bool:
    """Whether the sentence begun at token ``first`` ends between tokens ``i - 1`` and ``i``."""
    nxt = tokens[i]
    gap = text[tokens[i - 1].end : nxt.start]
    if gap and gap != " " and _blank_line(gap):  # one space, the usual gap, holds no line
        return True
    # Step back over closing quotes/brackets glued to the terminator: `He said "Go." Then ...`
    j = i - 1
    while j > first and tokens[j].text in _CLOSERS and tokens[j - 1].end == tokens[j].start:
        j -= 1
    last = tokens[j].text
    if last in _UNSPACED_TERMINATORS:
        return True
    if last not in _TERMINATORS:
        return False
    return any(ch.isspace() for ch in gap) and _opens_sentence(nxt)


def split_sentences(text: str, *, max_tokens: int | None = None) -> list[list[Token]]:
    """Tokenize ``text`` and group the tokens into sentences; offsets stay global (into ``text``).

    A sentence ends after ``.``, ``!``, ``?`` (or ``...``, ``…``, full-width and other scripts'
    stops), possibly followed by closing quotes or brackets, when whitespace and a token that can
    open a sentence (upper-case or caseless letter, digit, opening quote or bracket) follow.
    Abbreviations and initials (``Mr.``, ``U.S.``, ``Jan.``, ``Inc.``, ``F.``) are single tokens
    and so never end a sentence (``etc.`` is the exception). A blank line always ends one; a
    single line break does not.

    Args:
        text: raw text of any length.
        max_tokens: if given, longer sentences are cut into pieces of at most this many tokens.

    Returns:
        Non-empty lists of tokens; ``[]`` when ``text`` has no tokens.
    """
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    tokens = tokenize(text)
    sentences: list[list[Token]] = []
    first = 0
    for i in range(1, len(tokens) + 1):
        if (
            i == len(tokens)
            or (max_tokens is not None and i - first >= max_tokens)
            or _sentence_ends_before(text, tokens, i, first)
        ):
            sentences.append(tokens[first:i])
            first = i
    return sentences


# --- pre-tokenised input -------------------------------------------------------------------------


def tokens_from_words(words: Sequence[str]) -> tuple[str, list[Token]]:
    """Tokens for already-tokenised input: offsets refer to ``" ".join(words)``.

    Returns:
        ``(text, tokens)`` with ``text == " ".join(words)`` and ``tokens[i].text == words[i]``.

    Raises:
        ValueError: a word is empty or contains whitespace (it could not be a token).
        TypeError: a word is not a ``str``.
    """
    words = list(words)
    try:
        text = " ".join(words)
    except TypeError:
        _check_words(words)  # raises for the first bad word
        raise
    # str.split() cuts at exactly the characters str.isspace() accepts and drops empty pieces, so
    # the words come back unchanged iff none is empty or holds white space (checked in C).
    if text.split() != words:
        _check_words(words)
    tokens: list[Token] = []
    start = 0
    for word in words:
        end = start + len(word)
        tokens.append(Token(word, start, end))
        start = end + 1
    return text, tokens


def _check_words(words: Sequence[object]) -> None:
    """Raise the error for the first word that is not a non-empty str without white space."""
    for i, word in enumerate(words):
        if not isinstance(word, str):
            raise TypeError(f"word {i} is {type(word).__name__}, expected str")
        if not word:
            raise ValueError(f"word {i} is empty")
        if any(ch.isspace() for ch in word):
            raise ValueError(f"word {i} ({word!r}) contains whitespace")
