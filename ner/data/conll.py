"""Read and write CoNLL column files (CoNLL-2003, WNUT-17 and the like).

One token per line, columns separated by spaces or tabs, sentences separated by lines that are
empty or hold only whitespace (WNUT-17 train uses a lone TAB for 2,394 of its separators).
``-DOCSTART-`` lines, with any number of columns, mark document boundaries.

Reading streams the file line by line; every malformed line raises :class:`ConllFormatError`
whose message is ``"{path}:{line}: {what is wrong}"`` with a 1-based line number.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ner.fileio import atomic_open

__all__ = [
    "DOCSTART",
    "ConllFormatError",
    "DocStart",
    "Sentence",
    "is_valid_label",
    "iter_conll",
    "read_conll",
    "write_conll",
]

DOCSTART = "-DOCSTART-"

# Columns are split on ASCII whitespace only, so that tokens such as U+00A0 or U+3000 survive.
_ASCII_WS = " \t\r\n\x0b\x0c"
_ASCII_WS_RE = re.compile(f"[{_ASCII_WS}]")
_DOCSTART_BYTES = DOCSTART.encode()
_BOM = "\ufeff".encode()
_TAG_PREFIXES = frozenset("BIESLU")
_BINARY_LABELS = frozenset({"0", "1"})


@dataclass(frozen=True)
class Sentence:
    """One sentence of a column file.

    Attributes:
        tokens: the token column, one entry per token.
        labels: the label column, or ``None`` when the file is read without labels.
        line: 1-based line number of the first token.
    """

    tokens: tuple[str, ...]
    labels: tuple[str, ...] | None
    line: int

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass(frozen=True)
class DocStart:
    """A ``-DOCSTART-`` line (document boundary) at 1-based line ``line``."""

    line: int


class ConllFormatError(ValueError):
    """A malformed line in a column file: ``str(e) == f"{path}:{line}: {reason}"``."""

    def __init__(self, path: str | os.PathLike[str], line: int, reason: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        super().__init__(f"{self.path}:{line}: {reason}")

    def __reduce__(self):  # keep the exception copyable (multiprocessing, pytest-xdist)
        return (type(self), (self.path, self.line, self.reason))


def is_valid_label(label: str) -> bool:
    """Whether ``label`` is a tag of some scheme.

    Valid: ``O``; ``B-``, ``I-``, ``E-``, ``S-``, ``L-`` or ``U-`` followed by a non-empty type;
    ``0`` / ``1`` (the binary "part of a name" scheme).
    """
    if label == "O" or label in _BINARY_LABELS:
        return True
    return len(label) > 2 and label[1] == "-" and label[0] in _TAG_PREFIXES


def _column_index(col: int, ncols: int) -> int | None:
    """The non-negative index of ``col`` in a row of ``ncols`` columns, None when out of range."""
    idx = col + ncols if col < 0 else col
    return idx if 0 <= idx < ncols else None


def iter_conll(
    path: str | os.PathLike[str],
    *,
    token_col: int = 0,
    label_col: int | None = -1,
    validate_labels: bool = True,
) -> Iterator[Sentence | DocStart]:
    """Stream the sentences and document starts of a column file.

    Args:
        path: the file (UTF-8; a leading BOM is ignored; LF or CRLF line ends).
        token_col: column of the token (negative counts from the end).
        label_col: column of the label; ``-1`` is the last column; ``None`` reads no labels.
        validate_labels: check that every label is a tag (see :func:`is_valid_label`).

    Yields:
        :class:`Sentence` and :class:`DocStart` items in file order.

    Raises:
        FileNotFoundError: the file does not exist (raised at the call, not at the first item).
        ConllFormatError: a malformed line (invalid UTF-8, too few columns, column count that
            changes inside a sentence, a label that is not a tag).
    """
    path = Path(path)
    if not path.is_file():
        if not path.exists():
            raise FileNotFoundError(f"CoNLL file not found: {path}")
        raise IsADirectoryError(f"CoNLL path is not a file: {path}")
    return _iter_conll(path, token_col, label_col, validate_labels)


def _iter_conll(
    path: Path, token_col: int, label_col: int | None, validate_labels: bool
) -> Iterator[Sentence | DocStart]:
    tokens: list[str] = []
    labels: list[str] = []
    first_line = 0
    ncols = 0
    tok_idx = lab_idx = 0
    label_cache: dict[bytes, str] = {}

    def flush() -> Sentence:
        return Sentence(tuple(tokens), None if label_col is None else tuple(labels), first_line)

    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ConllFormatError(
                    path, lineno, f"invalid UTF-8 at byte {err.start} of the line: {err.reason}"
                ) from None
            if lineno == 1 and raw.startswith(_BOM):
                raw, text = raw[len(_BOM) :], text[1:]
            # bytes.split() splits on ASCII whitespace only; pieces of valid UTF-8 stay valid.
            fields = raw.split()
            if not fields or (len(fields) == 1 and not text.strip()):
                # empty or whitespace-only line (even Unicode whitespace): sentence separator
                if tokens:
                    yield flush()
                    tokens, labels = [], []
                continue
            if fields[0] == _DOCSTART_BYTES:
                if tokens:
                    yield flush()
                    tokens, labels = [], []
                yield DocStart(lineno)
                continue
            if not tokens:
                ncols, first_line = len(fields), lineno
                tok_idx, lab_idx = _resolve_columns(path, lineno, ncols, token_col, label_col)
            elif len(fields) != ncols:
                raise ConllFormatError(
                    path,
                    lineno,
                    f"line has {len(fields)} columns but the sentence starting at line "
                    f"{first_line} has {ncols}",
                )
            tokens.append(fields[tok_idx].decode("utf-8"))
            if label_col is not None:
                # Labels repeat: decode and validate each distinct one once (also interns them).
                label = label_cache.get(fields[lab_idx])
                if label is None:
                    label = fields[lab_idx].decode("utf-8")
                    if validate_labels and not is_valid_label(label):
                        raise ConllFormatError(
                            path,
                            lineno,
                            f"label {label!r} in column {lab_idx + 1} is not a valid tag "
                            "(expected O, B-/I-/E-/S-/L-/U-<type>, or 0/1)",
                        )
                    label_cache[fields[lab_idx]] = label
                labels.append(label)
    if tokens:
        yield flush()


def _resolve_columns(
    path: Path, lineno: int, ncols: int, token_col: int, label_col: int | None
) -> tuple[int, int]:
    tok_idx = _column_index(token_col, ncols)
    if tok_idx is None:
        raise ConllFormatError(
            path, lineno, f"line has {ncols} column(s); token column {token_col} does not exist"
        )
    if label_col is None:
        return tok_idx, -1
    lab_idx = _column_index(label_col, ncols)
    if lab_idx is None or lab_idx == tok_idx:
        raise ConllFormatError(
            path,
            lineno,
            f"too few columns: line has {ncols} column(s), need a token column ({token_col}) "
            f"and a separate label column ({label_col})",
        )
    return tok_idx, lab_idx


def read_conll(
    path: str | os.PathLike[str],
    *,
    token_col: int = 0,
    label_col: int | None = -1,
    validate_labels: bool = True,
) -> list[Sentence]:
    """All sentences of a column file (document starts dropped). See :func:`iter_conll`."""
    items = iter_conll(
        path, token_col=token_col, label_col=label_col, validate_labels=validate_labels
    )
    return [item for item in items if isinstance(item, Sentence)]


def _check_cell(cell: str, where: str) -> str:
    if not cell or _ASCII_WS_RE.search(cell):
        raise ValueError(f"{where}: cell {cell!r} is empty or contains whitespace")
    return cell


def _block_ok(rows: list[list[str]], ncols: int, text: str) -> bool:
    """Whether every row has ``ncols`` cells, none empty nor holding ASCII white space, given the
    block's ``text`` (rows joined by the separator and newlines, then a blank line): one count of
    each white-space character over the text instead of a regex per cell."""
    if any(len(row) != ncols or "" in row for row in rows):
        return False
    expected = len(rows) * ncols + 1  # per row ncols - 1 separators and a newline; a blank line
    return sum(map(text.count, _ASCII_WS)) == expected


def _raise_bad_row(rows: list[list[str]], ncols: int, b: int) -> None:
    """Raise the ``ValueError`` for the first bad row of block ``b``."""
    for r, row in enumerate(rows):
        if len(row) != ncols:
            raise ValueError(
                f"block {b}, row {r}: {len(row)} columns, the block's first row has {ncols}"
            )
        for cell in row:
            _check_cell(cell, f"block {b}, row {r}")
    raise AssertionError("unreachable: the block was found bad")


def _format_blocks(blocks: Iterable[Sequence[Sequence[str]] | DocStart], sep: str) -> Iterator[str]:
    """Lines of text (with newline) for ``blocks``; DocStarts wait for the next column count."""
    ncols = 2
    pending_docstarts = 0
    for b, block in enumerate(blocks):
        if isinstance(block, DocStart):
            pending_docstarts += 1
            continue
        rows = [list(row) for row in block]
        if not rows:
            continue  # an empty sentence has no lines; writing a separator would merge nothing
        ncols = len(rows[0])
        for _ in range(pending_docstarts):
            yield sep.join([DOCSTART] + ["O"] * (ncols - 1)) + "\n\n"
        pending_docstarts = 0
        text = "\n".join([sep.join(row) for row in rows]) + "\n\n"
        if not _block_ok(rows, ncols, text):
            _raise_bad_row(rows, ncols, b)
        yield text
    for _ in range(pending_docstarts):
        yield sep.join([DOCSTART] + ["O"] * (ncols - 1)) + "\n\n"


def write_conll(
    path: str | os.PathLike[str],
    blocks: Iterable[Sequence[Sequence[str]] | DocStart],
    *,
    sep: str = " ",
) -> None:
    """Write a column file atomically (temporary file in the same folder, then ``os.replace``).

    Args:
        path: destination file.
        blocks: one item per sentence, each a sequence of rows (a row = the columns of one token),
            or a :class:`DocStart`, written as ``-DOCSTART-`` followed by ``O`` for each remaining
            column (the column count of the next sentence) and a blank line.
        sep: column separator, ``" "`` (CoNLL-2003) or ``"\\t"`` (WNUT-17).

    Raises:
        ValueError: a row whose column count differs from its block's first row, or a cell that
            is empty or contains whitespace (it could not be read back).
    """
    if sep not in (" ", "\t"):
        raise ValueError(f"sep must be ' ' or '\\t', got {sep!r}")
    with atomic_open(path, newline="\n") as fh:
        fh.writelines(_format_blocks(blocks, sep))
