"""Vocabularies (saved as JSON, never pickle) and casing features.

A :class:`Vocab` maps tokens to ids with ``PAD`` at 0 and ``UNK`` at 1. Its casing policy
normalizes every token before lookup, so the same policy applies when building, encoding and
serving.

Casing features follow Reimers & Gurevych (2017), "Reporting Score Distributions Makes a
Difference: Performance Study of LSTM-networks for Sequence Tagging" (their ``getCasing``).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from ner.fileio import atomic_open

__all__ = [
    "CASINGS",
    "CASING_NAMES",
    "PAD",
    "UNK",
    "Casing",
    "Vocab",
    "casing_id",
    "char_vocab",
]

PAD, UNK = "<pad>", "<unk>"
Casing = Literal["keep", "lower", "lower_digits"]
CASINGS: tuple[str, ...] = get_args(Casing)

_FORMAT = "ner.vocab/1"
_DIGIT_RE = re.compile(r"\d")


def _normalize(token: str, casing: str) -> str:
    if casing == "keep":
        return token
    token = token.lower()
    return _DIGIT_RE.sub("0", token) if casing == "lower_digits" else token


class Vocab:
    """An immutable token <-> id table.

    Args:
        itos: id -> token; ``itos[0]`` must be ``PAD`` and ``itos[1]`` ``UNK``; no duplicates.
        casing: ``"keep"``, ``"lower"`` or ``"lower_digits"`` (lower-case and every digit -> ``0``),
            applied by :meth:`normalize` before every lookup. Entries of ``itos`` are expected to be
            normalized already (as :meth:`build` makes them).
    """

    __slots__ = ("_casing", "_itos", "_stoi")

    def __init__(self, itos: Sequence[str], casing: Casing = "keep") -> None:
        if casing not in CASINGS:
            raise ValueError(f"unknown casing {casing!r}; expected one of {CASINGS}")
        itos = tuple(itos)
        if itos[:2] != (PAD, UNK):
            raise ValueError(f"a vocabulary starts with {PAD!r}, {UNK!r}; got {itos[:2]!r}")
        stoi = {tok: i for i, tok in enumerate(itos)}
        if len(stoi) != len(itos):
            dupes = sorted(t for t, c in Counter(itos).items() if c > 1)
            raise ValueError(f"duplicate vocabulary entries: {dupes[:10]!r}")
        self._itos = itos
        self._stoi = stoi
        self._casing: Casing = casing

    @classmethod
    def build(
        cls,
        tokens: Iterable[str],
        *,
        min_freq: int = 1,
        max_size: int | None = None,
        casing: Casing = "keep",
    ) -> Vocab:
        """A vocabulary of the normalized ``tokens`` seen at least ``min_freq`` times.

        Args:
            tokens: the training tokens (a flat stream).
            min_freq: minimum count of a normalized token.
            max_size: keep at most this many tokens besides PAD and UNK (most frequent first).
            casing: the casing policy (see the class).

        Entries are ordered by decreasing count, ties alphabetically, so the result does not depend
        on the order of ``tokens``.
        """
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < 0:
            raise ValueError(f"max_size must be >= 0 or None, got {max_size}")
        if casing not in CASINGS:
            raise ValueError(f"unknown casing {casing!r}; expected one of {CASINGS}")
        counts = Counter(_normalize(t, casing) for t in tokens)
        for special in (PAD, UNK):
            counts.pop(special, None)
        kept = sorted(
            (t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t)
        )
        if max_size is not None:
            kept = kept[:max_size]
        return cls((PAD, UNK, *kept), casing=casing)

    @property
    def itos(self) -> tuple[str, ...]:
        """id -> token."""
        return self._itos

    @property
    def casing(self) -> Casing:
        return self._casing

    def normalize(self, token: str) -> str:
        """``token`` under this vocabulary's casing policy."""
        return _normalize(token, self._casing)

    def id(self, token: str) -> int:
        """The id of the normalized ``token``; ``1`` (UNK) when missing."""
        return self._stoi.get(_normalize(token, self._casing), 1)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Ids of ``tokens`` (UNK for unknown ones)."""
        stoi, casing = self._stoi, self._casing
        return [stoi.get(_normalize(t, casing), 1) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids``."""
        return [self._itos[i] for i in ids]

    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: object) -> bool:
        return isinstance(token, str) and _normalize(token, self._casing) in self._stoi

    def __iter__(self) -> Iterator[str]:
        return iter(self._itos)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return self._itos == other._itos and self._casing == other._casing

    def __hash__(self) -> int:
        return hash((self._itos, self._casing))

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, casing={self._casing!r})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"format", "casing", "itos"}``."""
        return {"format": _FORMAT, "casing": self._casing, "itos": list(self._itos)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocab:
        """The inverse of :meth:`to_dict` (validates format, casing and specials)."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"not a vocabulary (expected format {_FORMAT!r})")
        itos = data.get("itos")
        if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
            raise ValueError("vocabulary 'itos' must be a list of strings")
        return cls(itos, casing=data.get("casing", "keep"))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary as JSON, atomically."""
        with atomic_open(path) as fh:
            json.dump(self.to_dict(), fh, ensure_ascii=False, indent=0)
            fh.write("\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocab:
        """Read a vocabulary saved by :meth:`save`.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is not valid JSON or not a vocabulary (the message names it).
        """
        path = Path(path)
        try:
            with path.open(encoding="utf-8") as fh:
                data = json.load(fh)
            return cls.from_dict(data)
        except FileNotFoundError:
            raise FileNotFoundError(f"vocabulary file not found: {path}") from None
        except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
            raise ValueError(f"{path}: invalid vocabulary file: {err}") from None


def char_vocab(tokens: Iterable[str], *, min_freq: int = 1, max_size: int | None = None) -> Vocab:
    """A character vocabulary (case kept) over the characters of ``tokens``."""
    chars = (c for t in tokens for c in t)
    return Vocab.build(chars, min_freq=min_freq, max_size=max_size, casing="keep")


CASING_NAMES: tuple[str, ...] = (
    PAD,
    "lower",
    "upper",
    "title",
    "numeric",
    "mostly_numeric",
    "has_digit",
    "other",
)
_CASING_ID = {name: i for i, name in enumerate(CASING_NAMES)}


def casing_id(token: str) -> int:
    """The casing class of ``token`` as an index into :data:`CASING_NAMES` (never 0 = padding).

    Reimers & Gurevych's ``getCasing``, checked in this order: all digits -> ``numeric``; more than
    half digits -> ``mostly_numeric``; ``str.islower`` -> ``lower``; ``str.isupper`` -> ``upper``;
    first character upper-case -> ``title``; any digit -> ``has_digit``; else ``other``.
    """
    if not token:
        return _CASING_ID["other"]
    # Letters are never digits (no code point is both), so most words skip the count.
    num_digits = 0 if token.isalpha() else sum(map(str.isdigit, token))
    if token.isdigit():
        name = "numeric"
    elif num_digits / len(token) > 0.5:
        name = "mostly_numeric"
    elif token.islower():
        name = "lower"
    elif token.isupper():
        name = "upper"
    elif token[0].isupper():
        name = "title"
    elif num_digits > 0:
        name = "has_digit"
    else:
        name = "other"
    return _CASING_ID[name]
