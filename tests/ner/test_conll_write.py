"""write_conll checks whole blocks at once: every bad cell is still found, by block and row."""

from __future__ import annotations

import pytest

from ner.data.conll import DocStart, read_conll, write_conll

WHITE = [" ", "\t", "\r", "\n", "\x0b", "\x0c"]


@pytest.mark.parametrize("sep", [" ", "\t"])
@pytest.mark.parametrize("space", WHITE)
@pytest.mark.parametrize("where", ["start", "middle", "end", "alone"])
def test_any_white_space_in_any_cell_is_refused(tmp_path, sep, space, where) -> None:
    cell = {"start": space + "ab", "middle": "a" + space + "b", "end": "ab" + space}.get(
        where, space
    )
    for col in range(3):
        row = ["tok", "NN", "O"]
        row[col] = cell
        blocks = [[["EU", "NNP", "B-ORG"]], DocStart(1), [["x", "y", "O"], row]]
        with pytest.raises(ValueError, match=r"block 2, row 1: cell .* is empty or contains white"):
            write_conll(tmp_path / "out.conll", blocks, sep=sep)


def test_empty_cells_and_column_counts(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"block 0, row 1: cell '' is empty"):
        write_conll(tmp_path / "a", [[["a", "O"], ["b", ""]]])
    with pytest.raises(ValueError, match=r"block 1, row 1: 1 columns, the block's first row has 2"):
        write_conll(tmp_path / "a", [[["a"]], [["b", "O"], ["c"]]])
    with pytest.raises(ValueError, match=r"block 0, row 1: 3 columns"):
        write_conll(tmp_path / "a", [[["a", "O"], ["b", "O", "O"]]])
    # the first bad row of a block is the one named, whatever is wrong with it
    with pytest.raises(ValueError, match=r"block 0, row 1: cell 'x y'"):
        write_conll(tmp_path / "a", [[["a", "O"], ["x y", "O"], ["c"]]])


def test_non_ascii_space_is_a_cell_character(tmp_path) -> None:
    path = tmp_path / "out.conll"
    write_conll(path, [[["a\u00a0b", "O"], ["\u3000", "B-X"]]])
    assert [s.tokens for s in read_conll(path)] == [("a\u00a0b", "\u3000")]
    assert path.read_text(encoding="utf-8") == "a\u00a0b O\n\u3000 B-X\n\n"
