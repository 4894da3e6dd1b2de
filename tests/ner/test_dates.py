"""The date-pair generator: reproducible, every family present, and every pair right, checked
by an independent parser written from the format rules (not from the generator's code)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from ner.data.dates import FORMATS, generate_pairs, two_digit_year

MONTHS = {
    name: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for name in names
}
WEEKDAYS = {
    **dict.fromkeys(("monday", "mon"), 0),
    **dict.fromkeys(("tuesday", "tue", "tues"), 1),
    **dict.fromkeys(("wednesday", "wed"), 2),
    **dict.fromkeys(("thursday", "thu", "thur", "thurs"), 3),
    **dict.fromkeys(("friday", "fri"), 4),
    **dict.fromkeys(("saturday", "sat"), 5),
    **dict.fromkeys(("sunday", "sun"), 6),
}


def _year(token: str) -> int:
    if len(token) == 4:
        return int(token)
    assert len(token) == 2, token
    return 2000 + int(token) if int(token) < 50 else 1900 + int(token)


def parse(text: str) -> tuple[dt.date, int | None]:
    """An independent reading of a generated text -> (date, weekday named or None)."""
    words = text.split()
    weekday = WEEKDAYS.get(words[0]) if words[0] in WEEKDAYS else None
    if weekday is not None:
        words = words[1:]
    words = [w for w in words if w not in ("the", "of")]
    body = " ".join(words)
    if any(w in MONTHS for w in words):  # month name: the year is first (4 digits) or last
        month = next(MONTHS[w] for w in words if w in MONTHS)
        nums = [re.sub(r"(st|nd|rd|th)$", "", w) for w in words if w not in MONTHS]
        if len(nums[0]) == 4:
            year, day = int(nums[0]), int(nums[1])
        else:
            day, year = int(nums[0]), _year(nums[1])
        return dt.date(year, month, day), weekday
    if "/" in body:
        a, b, c = body.split("/")
        if len(a) == 4:  # year first
            return dt.date(int(a), int(b), int(c)), weekday
        return dt.date(_year(c), int(a), int(b)), weekday  # US: month/day/year
    if "." in body:
        d, m, y = body.split(".")  # European: day.month.year
        return dt.date(_year(y), int(m), int(d)), weekday
    if "-" in body:
        y, m, d = body.split("-")
        return dt.date(int(y), int(m), int(d)), weekday
    d, m, y = body.split(" ")
    return dt.date(_year(y), int(m), int(d)), weekday


def test_reproducible_from_the_seed() -> None:
    assert generate_pairs(200, 7) == generate_pairs(200, 7)
    assert generate_pairs(200, 7) != generate_pairs(200, 8)


def test_every_pair_is_right() -> None:
    for text, iso in generate_pairs(5000, 3):
        assert text == text.lower() and "," not in text and text == text.strip()
        date, weekday = parse(text)
        assert date.isoformat() == iso, text
        assert weekday is None or weekday == date.weekday(), text
        assert 1900 <= date.year <= 2099


def test_the_families_and_spellings_all_occur() -> None:
    pairs = generate_pairs(3000, 5)
    texts = [t for t, _ in pairs]
    assert any("/" in t for t in texts) and any("." in t for t in texts)
    assert any(re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", t) for t in texts)
    assert any("september" in t for t in texts) and any(" sep " in f" {t} " for t in texts)
    assert any(t.split()[0] in WEEKDAYS for t in texts)
    assert any(re.search(r"\b0\d\b", t) for t in texts)  # zero-padded days or months
    assert any(re.search(r"\b\d{1,2}(st|nd|rd|th)\b", t) for t in texts)  # ordinals
    assert any(re.search(r"[/. ]\d{2}$", t) for t in texts)  # two-digit years
    short = [parse(t)[0].year for t in texts if not re.search(r"\d{4}", t)]
    assert short and all(1950 <= y <= 2049 for y in short)


def test_one_family_and_unknown_families() -> None:
    texts = [t for t, _ in generate_pairs(100, 1, families=("m/d/y",))]
    assert all(t.split()[-1].count("/") == 2 for t in texts)
    with pytest.raises(ValueError, match="unknown date formats"):
        generate_pairs(1, 1, families=("julian",))
    assert set(FORMATS) >= {"m/d/y", "d.m.y", "y-m-d"}


@pytest.mark.parametrize(("yy", "year"), [(0, 2000), (49, 2049), (50, 1950), (99, 1999)])
def test_two_digit_years(yy: int, year: int) -> None:
    assert two_digit_year(yy) == year
