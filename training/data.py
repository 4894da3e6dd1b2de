"""CoNLL files -> Hugging Face ``datasets`` (Arrow, cached by file sha256) -> bucketed batches.

Each split is read once with ``Dataset.from_generator`` (``tokens`` as strings, ``tags`` converted
to the training tag scheme) and cached under ``cache_dir``. The file's sha256 is part of the cache
key, so an edited file is re-read and an unchanged one is loaded from Arrow in milliseconds. The
tags are then cast to a ``ClassLabel`` over the training labels.

The vocabularies (words, characters, labels) come from the training split and are built as soon as
they are asked for (``labels``, ``vocab_size``, ``num_chars``), so that LightningCLI can link them
into the model at instantiation. They travel in the checkpoint through ``state_dict``, so an export
needs nothing but the ``.ckpt``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from ner.data.conll import ConllFormatError, read_conll
from ner.data.schemes import convert, label_names, parse_tag
from ner.data.vocab import Casing, Vocab, char_vocab
from ner.features import Featurizer
from ner.settings import data_dir

log = logging.getLogger(__name__)

InputScheme = Literal["iob1", "iob2", "bioes"]
TagScheme = Literal["iob2", "bioes"]

DATA_STATE_FORMAT = "rnn-ner.datamodule/1"


class DataError(ValueError):
    """Training data that cannot be used as configured (the message says which file and why)."""


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_data_path(path: str | os.PathLike[str]) -> Path:
    """An absolute path as is; a relative one from the working directory if it exists there,
    else from the data folder (``$NER_DATA_DIR``, see ``ner.settings.data_dir``)."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    return data_dir() / p


def data_record(path: str | os.PathLike[str], sha256: str | None = None) -> dict[str, str]:
    """How a model card records a data file: its name, its path relative to the data folder
    (``$NER_DATA_DIR``) when it lies under it (else as given), and its sha256. No absolute paths:
    they name the machine that trained the model."""
    p = Path(path)
    try:
        shown = p.resolve().relative_to(data_dir().resolve()).as_posix()
    except ValueError:
        shown = p.as_posix() if not p.is_absolute() else p.name
    return {"name": p.name, "path": shown, "sha256": sha256 or file_sha256(p)}


def data_license(path: str | os.PathLike[str]) -> str:
    """The licence the data folder's README states (its ``## License`` section, first paragraph,
    on one line), or a pointer to the data's own licence when there is no README."""
    readme = Path(path).resolve().parent / "README.md"
    try:
        lines = readme.read_text(encoding="utf-8").splitlines()
    except OSError:
        return "see the data's own license"
    out: list[str] = []
    inside = False
    for line in lines:
        if line.startswith("#"):
            if inside:
                break
            inside = line.lstrip("#").strip().lower() in ("license", "licence", "licenses")
            continue
        if inside:
            if not line.strip() and out:
                break
            if line.strip():
                out.append(line.strip())
    return " ".join(out) or "see the data's own license"


def default_cache_dir() -> Path:
    """``$NER_CACHE_DIR``, else ``~/.cache/rnn-ner``."""
    env = os.environ.get("NER_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rnn-ner"


def _generate(
    path: str,
    sha256: str,
    token_col: int,
    label_col: int,
    input_scheme: str,
    tag_scheme: str,
) -> Iterator[dict[str, Any]]:
    """Rows ``{"tokens", "tags"}`` of a CoNLL file, tags rewritten in ``tag_scheme``.

    ``sha256`` is unused here: it is part of the arguments only so that ``datasets`` keys its
    cache on the file's content.
    """
    del sha256
    for sentence in read_conll(path, token_col=token_col, label_col=label_col):
        assert sentence.labels is not None
        yield {
            "tokens": list(sentence.tokens),
            "tags": convert(sentence.labels, input_scheme, tag_scheme),  # type: ignore[arg-type]
        }


def load_split(
    path: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str],
    token_col: int = 0,
    label_col: int = -1,
    input_scheme: InputScheme = "iob1",
    tag_scheme: TagScheme = "bioes",
) -> Any:
    """A CoNLL file as a ``datasets.Dataset``: string ``tokens`` and ``tags`` (in ``tag_scheme``).

    Raises:
        FileNotFoundError: no such file.
        ConllFormatError: a malformed line (the message names the file and line).
        DataError: the file holds no sentence.
    """
    import datasets
    from datasets import Dataset, Features, Sequence, Value

    p = resolve_data_path(path)
    if not p.is_file():
        raise FileNotFoundError(f"CoNLL file not found: {p}")
    features = Features({"tokens": Sequence(Value("string")), "tags": Sequence(Value("string"))})
    gen_kwargs = {
        "path": str(p.resolve()),
        "sha256": file_sha256(p),
        "token_col": token_col,
        "label_col": label_col,
        "input_scheme": input_scheme,
        "tag_scheme": tag_scheme,
    }
    datasets.disable_progress_bars()
    try:
        ds = Dataset.from_generator(
            _generate, features=features, cache_dir=str(cache_dir), gen_kwargs=gen_kwargs
        )
    except Exception as err:  # datasets wraps generator errors in DatasetGenerationError
        cause = err.__cause__ or err.__context__
        if isinstance(cause, ConllFormatError):
            raise cause from None
        if isinstance(cause, ValueError):
            raise DataError(f"{p}: {cause}") from None
        raise
    if len(ds) == 0:
        raise DataError(f"{p}: no sentences")
    return ds


def entity_types(ds: Any) -> list[str]:
    """Sorted entity types that occur in a split's ``tags`` (strings)."""
    import pyarrow.compute as pc

    column = ds.data.column("tags")
    tags = pc.unique(pc.list_flatten(column)).to_pylist()
    return sorted({t for tag in tags if (t := parse_tag(tag)[1]) is not None})


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length: sort by length within chunks of ``bucket_batches`` batches.

    With ``shuffle``, the order of sentences is shuffled before chunking and the order of the
    batches after, with a generator seeded by ``seed + epoch`` (``set_epoch``, which Lightning
    calls each epoch). With ``num_replicas > 1`` each replica takes every ``num_replicas``-th
    batch; the batch list is padded by repetition so that every replica runs as many steps.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        shuffle: bool = False,
        bucket_batches: int = 50,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.bucket_batches = max(1, bucket_batches)
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Reseed the shuffling for ``epoch``."""
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        n = len(self.lengths)
        rng = np.random.default_rng(self.seed + self.epoch)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        chunk = self.batch_size * (self.bucket_batches if self.shuffle else n)
        batches: list[list[int]] = []
        for start in range(0, n, chunk):
            part = order[start : start + chunk]
            part = part[np.argsort(-self.lengths[part], kind="stable")]  # longest first
            batches.extend(
                part[i : i + self.batch_size].tolist() for i in range(0, len(part), self.batch_size)
            )
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        if self.num_replicas > 1:
            total = math.ceil(len(batches) / self.num_replicas) * self.num_replicas
            batches = (batches * math.ceil(total / max(len(batches), 1)))[:total]
            batches = batches[self.rank :: self.num_replicas]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        batches = math.ceil(len(self.lengths) / self.batch_size)
        return math.ceil(batches / self.num_replicas)


def bucketed_loader(
    datamodule: pl.LightningDataModule,
    lengths: Sequence[int],
    batch_size: int,
    collate: Any,
    *,
    shuffle: bool,
    bucket_batches: int,
    seed: int,
    num_workers: int = 0,
) -> DataLoader:
    """A DataLoader over a split's row indices in length-bucketed batches (``BucketBatchSampler``).

    Shuffled loaders are for training: under DDP each rank takes its share of the batches;
    evaluation loaders give every rank the whole split, sorted by length. ``collate`` turns a
    list of row indices into a batch. Every task's DataModule loads through this.
    """
    world, rank = 1, 0
    trainer = datamodule.trainer
    if shuffle and trainer is not None:
        world, rank = trainer.world_size, trainer.global_rank
    sampler = BucketBatchSampler(
        lengths,
        batch_size,
        shuffle=shuffle,
        bucket_batches=bucket_batches,
        seed=seed,
        num_replicas=world,
        rank=rank,
    )
    return DataLoader(
        list(range(len(lengths))),
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )


class Collate:
    """Rows -> a padded batch of tensors (picklable, so it works with worker processes).

    Output keys: ``word_ids (B, T)``, ``glove_ids (B, T)``, ``char_ids (B, T, C)``,
    ``casing_ids (B, T)``, ``lengths (B,)``, ``tags (B, T)`` (0-padded) and ``index (B,)``,
    the rows' positions in the split.
    """

    def __init__(
        self, featurizer: Featurizer, tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[int]]
    ) -> None:
        self.featurizer = featurizer
        self.tokens = tokens
        self.tags = tags

    def __call__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        sentences = [self.tokens[i] for i in indices]
        f = self.featurizer.encode(sentences)
        tags = np.zeros_like(f.word_ids)
        for row, i in enumerate(indices):
            tags[row, : len(self.tags[i])] = self.tags[i]
        arrays = {
            "word_ids": f.word_ids,
            "glove_ids": f.glove_ids,
            "char_ids": f.char_ids,
            "casing_ids": f.casing_ids,
            "lengths": f.lengths,
            "tags": tags,
            "index": np.asarray(indices, dtype=np.int64),
        }
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}


class Split:
    """A split in memory: tokens, tag ids over the training labels, and the file's identity."""

    def __init__(self, path: Path, sha256: str, tokens: list[list[str]], tags: list[list[int]]):
        self.path = path
        self.sha256 = sha256
        self.tokens = tokens
        self.tags = tags

    def __len__(self) -> int:
        return len(self.tokens)


class BucketedDataModule(pl.LightningDataModule):
    """A DataModule whose splits load through ``_loader(name, batch_size, shuffle=)`` (usually
    :func:`bucketed_loader`): training batches are shuffled, dev and test ones are not."""

    batch_size: int
    eval_batch_size: int

    def _loader(self, name: str, batch_size: int, *, shuffle: bool) -> DataLoader:
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader:
        """Shuffled length-bucketed batches; each DDP rank takes its share of the batches."""
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """The whole dev set, sorted by length (every rank scores all of it)."""
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)


class WordDataModule(BucketedDataModule):
    """A DataModule over word sequences whose vocabularies and labels come from the training
    split, built on first use by ``_build_vocab`` (which sets ``_featurizer`` and ``_labels``),
    so that LightningCLI can link their sizes into the model at instantiation."""

    _featurizer: Featurizer | None = None
    _labels: list[str] | None = None

    def _build_vocab(self) -> None:
        raise NotImplementedError

    @property
    def featurizer(self) -> Featurizer:
        """Tokens -> features, with the vocabularies of the training split."""
        if self._featurizer is None:
            self._build_vocab()
        assert self._featurizer is not None
        return self._featurizer

    @property
    def labels(self) -> list[str]:
        """Label names in label-id order."""
        if self._labels is None:
            self._build_vocab()
        assert self._labels is not None
        return list(self._labels)

    @property
    def vocab_size(self) -> int:
        """Size of the word vocabulary (PAD and UNK included)."""
        return len(self.featurizer.words)

    @property
    def num_chars(self) -> int:
        """Size of the character vocabulary; 0 without character features."""
        chars = self.featurizer.chars
        return 0 if chars is None else len(chars)


class NerDataModule(WordDataModule):
    """CoNLL train/dev/test files for a tagger, through Hugging Face ``datasets``.

    Args:
        train_path: Training CoNLL file. A relative path is tried from the working directory,
            then from the data folder ($NER_DATA_DIR). Default: conll2003/train.txt.
        val_path: Validation (dev) CoNLL file; entity F1 on it picks the best checkpoint.
            Default: conll2003/dev.txt.
        test_path: Test CoNLL file for the ``test`` subcommand (optional).
        predict_path: CoNLL file for the ``predict`` subcommand (labels ignored); default: val.
        token_col: Column of the token (0 = first; negative counts from the end).
        label_col: Column of the NER label (-1 = last).
        input_scheme: Tag scheme of the files: iob1 (CoNLL-2003), iob2 (WNUT-17) or bioes.
        tag_scheme: Tag scheme the model is trained in; bioes usually helps a CRF.
        casing: Word vocabulary casing policy: keep, lower, or lower_digits (digits -> 0).
        min_freq: Minimum count of a (normalised) training word to enter the vocabulary.
        max_vocab: Keep at most this many words (most frequent first); null = no limit.
        use_chars: Build a character vocabulary and character ids (linked from the model's
            char_encoder by the CLI).
        use_glove: Look up GloVe ids (linked from the model's word_input by the CLI).
        max_word_len: Characters kept per word for the character encoder.
        batch_size: Training sentences per batch (per process under DDP).
        eval_batch_size: Sentences per batch for validation, test and predict.
        bucket_batches: Training batches per length bucket: sentences are shuffled, cut into
            chunks of batch_size * bucket_batches, sorted by length within a chunk, batched,
            and the batches shuffled.
        num_workers: DataLoader worker processes (0 = load in the main process).
        cache_dir: Folder of the Arrow cache (keyed by each file's sha256). Default:
            $NER_CACHE_DIR or ~/.cache/rnn-ner.
        init_from: Bundle directory whose vocabularies and labels to reuse (linked from the
            model's init_from by the CLI, for fine-tuning).
        seed: Seed of the batch shuffling (the epoch is added to it).
        license: The training data's licence for the model card; default: the ``## License``
            section of the README.md beside the training file.
    """

    def __init__(
        self,
        train_path: str | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        predict_path: str | None = None,
        token_col: int = 0,
        label_col: int = -1,
        input_scheme: InputScheme = "iob1",
        tag_scheme: TagScheme = "bioes",
        casing: Casing = "lower_digits",
        min_freq: int = 1,
        max_vocab: int | None = None,
        use_chars: bool = True,
        use_glove: bool = True,
        max_word_len: int = 20,
        batch_size: int = 32,
        eval_batch_size: int = 256,
        bucket_batches: int = 50,
        num_workers: int = 0,
        cache_dir: str | None = None,
        init_from: str | None = None,
        seed: int = 0,
        license: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.train_path = train_path or "conll2003/train.txt"
        self.val_path = val_path or "conll2003/dev.txt"
        self.test_path = test_path
        self.predict_path = predict_path or self.val_path
        self.token_col = token_col
        self.label_col = label_col
        self.input_scheme = input_scheme
        self.tag_scheme = tag_scheme
        self.casing = casing
        self.min_freq = min_freq
        self.max_vocab = max_vocab
        self.use_chars = use_chars
        self.use_glove = use_glove
        self.max_word_len = max_word_len
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.bucket_batches = bucket_batches
        self.num_workers = num_workers
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.init_from = init_from
        self.seed = seed
        self.license = license
        self._featurizer = None
        self._labels = None
        self._splits: dict[str, Split] = {}

    # ---------------------------------------------------------------- vocabularies (linked)

    def _build_vocab(self) -> None:
        if self.init_from:
            from ner.predict import Predictor

            bundle = Predictor.from_path(self.init_from)
            if bundle.tag_scheme != self.tag_scheme:
                raise DataError(
                    f"{self.init_from}: the bundle was trained in {bundle.tag_scheme!r}, "
                    f"but data.tag_scheme is {self.tag_scheme!r}"
                )
            self._featurizer, self._labels = bundle.featurizer, list(bundle.labels)
            return
        ds = self._load("train", self.train_path)
        tokens: list[list[str]] = ds.data.column("tokens").to_pylist()
        flat = [t for sentence in tokens for t in sentence]
        words = Vocab.build(
            flat, min_freq=self.min_freq, max_size=self.max_vocab, casing=self.casing
        )
        chars = char_vocab(flat) if self.use_chars else None
        self._featurizer = Featurizer(words, chars, self.use_glove, self.max_word_len)
        self._labels = label_names(entity_types(ds), self.tag_scheme)
        log.info(
            "vocabulary: %d words, %d chars, %d labels from %s",
            len(words),
            0 if chars is None else len(chars),
            len(self._labels),
            self.train_path,
        )

    # ---------------------------------------------------------------- splits

    def _load(self, split: str, path: str) -> Any:
        return load_split(
            path,
            cache_dir=self.cache_dir / "datasets",
            token_col=self.token_col,
            label_col=self.label_col,
            input_scheme=self.input_scheme,
            tag_scheme=self.tag_scheme,
        )

    def split(self, name: str) -> Split:
        """The split ``train``, ``val``, ``test`` or ``predict``, loaded on first use."""
        if name not in self._splits:
            path = {
                "train": self.train_path,
                "val": self.val_path,
                "test": self.test_path,
                "predict": self.predict_path,
            }[name]
            if path is None:
                raise DataError(f"no {name} file: set --data.{name}_path")
            self._splits[name] = self._make_split(path)
        return self._splits[name]

    def _make_split(self, path: str) -> Split:
        from datasets import ClassLabel, Features, Sequence, Value

        labels = self.labels
        ds = self._load("split", path)
        unknown = sorted(set(label_names(entity_types(ds), self.tag_scheme)) - set(labels))
        if unknown:
            raise DataError(
                f"{resolve_data_path(path)}: labels {unknown} do not occur in the training data "
                f"({self.train_path}); the model cannot predict them"
            )
        ds = ds.cast(
            Features(
                {"tokens": Sequence(Value("string")), "tags": Sequence(ClassLabel(names=labels))}
            )
        )
        p = resolve_data_path(path)
        table = ds.data
        return Split(
            p, file_sha256(p), table.column("tokens").to_pylist(), table.column("tags").to_pylist()
        )

    def prepare_data(self) -> None:
        """Fill the Arrow cache (rank 0 of each node) so that the other ranks only read it."""
        for path in (self.train_path, self.val_path):
            self._load("prepare", path)

    def setup(self, stage: str) -> None:
        """Load the splits the stage needs (``fit``, ``validate``, ``test``, ``predict``)."""
        needed = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}
        for name in needed.get(stage, ("predict",)):
            self.split(name)

    # ---------------------------------------------------------------- loaders

    def _loader(self, name: str, batch_size: int, *, shuffle: bool) -> DataLoader:
        split = self.split(name)
        return bucketed_loader(
            self,
            [len(t) for t in split.tokens],
            batch_size,
            Collate(self.featurizer, split.tokens, split.tags),
            shuffle=shuffle,
            bucket_batches=self.bucket_batches,
            seed=self.seed,
            num_workers=self.num_workers,
        )

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", self.eval_batch_size, shuffle=False)

    # ---------------------------------------------------------------- checkpoint state

    def state_dict(self) -> dict[str, Any]:
        """Vocabularies, labels and data identity, saved in every checkpoint (JSON-like only)."""
        f = self.featurizer
        files = {
            name: data_record(split.path, split.sha256) for name, split in self._splits.items()
        }
        return {
            "format": DATA_STATE_FORMAT,
            "words": f.words.to_dict(),
            "chars": None if f.chars is None else f.chars.to_dict(),
            "use_glove": f.use_glove,
            "max_word_len": f.max_word_len,
            "labels": self.labels,
            "tag_scheme": self.tag_scheme,
            "input_scheme": self.input_scheme,
            "files": files,
            "license": self.license or data_license(resolve_data_path(self.train_path)),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Check that the checkpoint's vocabularies are the ones built from the data."""
        saved = featurizer_from_state(state)
        if saved != self.featurizer or list(state["labels"]) != self.labels:
            raise DataError(
                "the checkpoint's vocabularies or labels differ from those built from "
                f"{self.train_path}: was the training file or a vocabulary setting changed?"
            )


def featurizer_from_state(state: dict[str, Any]) -> Featurizer:
    """The ``Featurizer`` saved by ``NerDataModule.state_dict``."""
    if state.get("format") != DATA_STATE_FORMAT:
        raise ValueError(f"not a datamodule state (expected format {DATA_STATE_FORMAT!r})")
    chars = state.get("chars")
    return Featurizer(
        Vocab.from_dict(state["words"]),
        None if chars is None else Vocab.from_dict(chars),
        bool(state["use_glove"]),
        int(state["max_word_len"]),
    )
