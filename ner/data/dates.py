"""Human-readable dates and their ISO form (YYYY-MM-DD), generated reproducibly from a seed.

In the spirit of the course's date-translation exercise (Faker formats), but with the formats
written here so the families are explicit and no dependency is needed. Every text is lowercase
without commas (the model's source normalization). The families:

- month names, full (``march``) or abbreviated (``mar``, also ``sept``), in day-month-year,
  month-day-year or year-month-day order;
- an optional weekday, full (``tuesday``) or abbreviated (``tue``, also ``tues``/``thurs``), in
  front: it always agrees with the date;
- days with and without zero padding, and ordinal days (``3rd``, ``the 3rd of march``);
- numeric forms: a slash means month/day/year (US: ``3/7/2021``), a dot day.month.year (European:
  ``7.3.2021``), a space day month year (``07 03 21``), a dash or slash after a four-digit
  year the year-first ISO-like order (``2021-03-07``, ``2021/3/7``);
- four-digit years, and two-digit years wherever the year comes last, read as 1950-2049;
- years 1900-2099 (two-digit forms only for 1950-2049, where they are unambiguous).

:func:`generate_pairs` draws a date uniformly from the range and a format uniformly from
:data:`FORMATS`, each format filling its slots with random choices; the same seed gives the same
pairs on every platform (``random.Random``).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

__all__ = ["FIRST", "FORMATS", "LAST", "generate_pairs", "render", "two_digit_year"]

FIRST, LAST = dt.date(1900, 1, 1), dt.date(2099, 12, 31)
TWO_DIGIT = (1950, 2049)
"""Two-digit years are read as 1950-2049 (``49`` -> 2049, ``50`` -> 1950)."""

MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
MONTH_ABBR = [m[:3] for m in MONTHS]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAY_ABBR = [w[:3] for w in WEEKDAYS]
_MONTH_ALT = {9: ["sept"]}
_WEEKDAY_ALT = {1: ["tues"], 3: ["thu", "thur", "thurs"]}


def two_digit_year(yy: int) -> int:
    """A two-digit year -> the four-digit year in 1950-2049."""
    return 2000 + yy if yy < 50 else 1900 + yy


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class _Slots:
    """Random spellings of one date's parts."""

    def __init__(self, date: dt.date, rng: random.Random) -> None:
        self.date, self.rng = date, rng

    def day(self, ordinal: bool = True) -> str:
        d = self.date.day
        kinds = ["plain", "padded"] + (["ordinal"] if ordinal else [])
        kind = self.rng.choice(kinds)
        return _ordinal(d) if kind == "ordinal" else (f"{d:02d}" if kind == "padded" else str(d))

    def month_name(self) -> str:
        m = self.date.month
        choices = [MONTHS[m - 1], MONTH_ABBR[m - 1], *_MONTH_ALT.get(m, [])]
        return self.rng.choice(choices)

    def month_number(self) -> str:
        m = self.date.month
        return f"{m:02d}" if self.rng.random() < 0.5 else str(m)

    def year(self, short_ok: bool = True) -> str:
        y = self.date.year
        if short_ok and TWO_DIGIT[0] <= y <= TWO_DIGIT[1] and self.rng.random() < 0.35:
            return f"{y % 100:02d}"
        return str(y)

    def weekday(self, p: float = 0.3) -> str:
        """A weekday and a space, with probability ``p``; else empty."""
        if self.rng.random() >= p:
            return ""
        w = self.date.weekday()
        return self.rng.choice([WEEKDAYS[w], WEEKDAY_ABBR[w], *_WEEKDAY_ALT.get(w, [])]) + " "


def _dmy_words(s: _Slots) -> str:
    day = s.day()
    of = "of " if day[-1].isalpha() and s.rng.random() < 0.4 else ""
    the = "the " if of and s.rng.random() < 0.5 else ""
    return f"{s.weekday()}{the}{day} {of}{s.month_name()} {s.year()}"


def _mdy_words(s: _Slots) -> str:
    return f"{s.weekday()}{s.month_name()} {s.day()} {s.year()}"


def _ymd_words(s: _Slots) -> str:
    if s.rng.random() < 0.5:
        return f"{s.year(short_ok=False)} {s.month_name()} {s.day()}"
    return f"{s.year(short_ok=False)} {s.day(ordinal=False)} {s.month_name()}"


def _us_slash(s: _Slots) -> str:
    return f"{s.weekday(0.1)}{s.month_number()}/{s.day(ordinal=False)}/{s.year()}"


def _eu_dot(s: _Slots) -> str:
    return f"{s.weekday(0.1)}{s.day(ordinal=False)}.{s.month_number()}.{s.year()}"


def _dmy_space(s: _Slots) -> str:
    return f"{s.day(ordinal=False)} {s.month_number()} {s.year()}"


def _ymd_numeric(s: _Slots) -> str:
    sep = s.rng.choice(["-", "/"])
    return f"{s.year(short_ok=False)}{sep}{s.month_number()}{sep}{s.day(ordinal=False)}"


FORMATS: dict[str, Callable[[_Slots], str]] = {
    "day month year": _dmy_words,
    "month day year": _mdy_words,
    "year month day": _ymd_words,
    "m/d/y": _us_slash,
    "d.m.y": _eu_dot,
    "d m y": _dmy_space,
    "y-m-d": _ymd_numeric,
}
"""Format family -> a function that spells a date in it (random slots from the slots' rng)."""


def render(date: dt.date, family: str, rng: random.Random) -> str:
    """``date`` spelled in format ``family`` (random slot choices from ``rng``)."""
    return FORMATS[family](_Slots(date, rng))


def generate_pairs(
    n: int, seed: int, families: tuple[str, ...] | None = None
) -> list[tuple[str, str]]:
    """``n`` (human-readable, ISO) pairs, reproducible from ``seed``.

    Args:
        n: number of pairs.
        seed: seed of the random draws (dates, formats, slot spellings).
        families: restrict to these :data:`FORMATS` keys (default all).
    """
    names = list(families or FORMATS)
    unknown = [f for f in names if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown date formats {unknown}; known: {list(FORMATS)}")
    rng = random.Random(seed)
    span = (LAST - FIRST).days
    out = []
    for _ in range(n):
        date = FIRST + dt.timedelta(days=rng.randint(0, span))
        out.append((render(date, rng.choice(names), rng), date.isoformat()))
    return out
