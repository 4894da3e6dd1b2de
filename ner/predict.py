"""Tag raw texts or tokenised sentences with a loaded bundle.

``Predictor.predict`` takes raw texts (tokenised and split into sentences by
``ner.data.tokenize``; offsets are code-point offsets into the text) or sentences already tokenised
(lists of words; offsets then refer to the words joined by single spaces). Sentences are sorted by
length and batched so that padding stays small; emissions come from the bundle's backend (ONNX
Runtime or torch) and all decoding runs in NumPy (``ner.decode``), whatever the backend.

Per token the predictor reports the label as an IOB2 typed tag (``B-PER``, ``I-PER``, ``O``),
whatever scheme the model was trained in, ``is_name`` (1 inside any entity) and ``score``: the
CRF marginal probability ``P(y_t = k | x)`` of the tag the decoder chose at that token, in the
model's own scheme (for the softmax head: the constrained softmax probability).

Per entity it reports ``score``: the exact CRF probability that the entity's tokens carry exactly
the decoded tags of the span, ``P(y_s..y_{e-1} | x)`` (see ``ner.decode``); it is never larger
than the smallest token score of the entity. ``token_end`` and ``end`` are exclusive.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ner.bundle import Bundle, BundleError, BundleWriter, Graph, require
from ner.calibration import read_temperature, scale_emissions, scale_transitions
from ner.data.schemes import SCHEMES, Scheme, parse_tag
from ner.data.tokenize import split_sentences, tokens_from_words
from ner.decode import Transitions, constrain, decode_flat, viterbi_flat
from ner.features import Featurizer
from ner.models.config import TaggerConfig
from ner.spans import SpanReader
from ner.tasks.base import TaskPredictor
from ner.tasks.inputs import WORD_TABLE_PREFIX, read_inputs, write_inputs

__all__ = [
    "Document",
    "EntityResult",
    "Predictor",
    "SentenceTags",
    "TokenResult",
    "export_tagger",
]

DECODER = "decoder.json"
EMISSIONS = "emissions"

Input = str | Sequence[str]
Piece = tuple[list[str], list[int], list[int]]
"""A sentence to tag: its words and their start and end offsets in the input's text."""
MAX_BATCH_TOKENS = 256
"""Padded tokens per forward pass (besides ``batch_size``), so long sentences come in smaller
batches: ONNX Runtime tags CoNLL dev ~15% faster than in batches of 64 sentences whatever their
length (the activations stay in cache). A sentence's emissions do not depend on its batch.
The server's micro-batches mix lengths (a 40-token sentence among 3-token ones); the sentences,
sorted, are cut where the padding would pass 256 tokens: 33 random CoNLL dev sentences take
~240 us each, against ~350 with 1,024 (~470 with no cap); offline (sorted, 64 a pass) 256 is
as fast as 1,024 or a little faster."""
DECODE_TOKENS = 4096
"""Tokens decoded together: the emissions of consecutive forward passes are joined, so that
Viterbi and forward-backward run one loop over time for several of them. On CoNLL dev chunks of
4,096 tokens decode fastest (14 ms against 18 ms for one chunk of all 51k tokens: the arrays of a
step stay in cache) and keep the peak memory of per-batch decoding (one 51k-token chunk: +40 MiB).
A sentence's decoding does not depend on its chunk."""


@dataclass(frozen=True, slots=True)  # slots: one object per token, less for the GC to scan
class TokenResult:
    """One token: its text and code-point offsets, IOB2 label, 0/1 name flag and confidence."""

    text: str
    start: int
    end: int
    label: str
    is_name: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "label": self.label,
            "is_name": self.is_name,
            "score": self.score,
        }


@dataclass(frozen=True, slots=True)  # slots: one object per token, less for the GC to scan
class EntityResult:
    """One entity: text, type, code-point offsets, token indices (end exclusive), span score."""

    text: str
    label: str
    start: int
    end: int
    token_start: int
    token_end: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "label": self.label,
            "start": self.start,
            "end": self.end,
            "token_start": self.token_start,
            "token_end": self.token_end,
            "score": self.score,
        }


@dataclass(frozen=True)
class SentenceTags:
    """One tokenised sentence's tags, without offsets (what ``Predictor.tag`` returns).

    Attributes:
        labels: IOB2 label of each token.
        scores: confidence of each token's tag (see the module docstring).
        entities: ``(label, token_start, token_end, score)`` of each entity, ``token_end``
            exclusive.
    """

    labels: list[str]
    scores: list[float]
    entities: list[tuple[str, int, int, float]]


_UNTAGGED = SentenceTags([], [], [])


@dataclass(frozen=True)
class Document:
    """The prediction for one input: tokens (document-wide indices) and entities."""

    text: str
    tokens: list[TokenResult]
    entities: list[EntityResult]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokens": [t.to_dict() for t in self.tokens],
            "entities": [e.to_dict() for e in self.entities],
        }


class Predictor(TaskPredictor):
    """Batched tagging over a loaded bundle of task ``ner``.

    Args:
        bundle: the opened bundle (``ner.tasks.load`` attaches its runtime).
        max_tokens: raw-text sentences longer than this are cut into pieces of this many tokens
            (bounds latency and memory on text without sentence punctuation; offsets stay global).
    """

    task = "ner"
    graphs = (EMISSIONS,)

    def __init__(self, bundle: Bundle, *, max_tokens: int = 512) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        super().__init__(bundle)
        self.max_tokens = max_tokens
        cfg_path = bundle.config_path
        try:
            self.config = TaggerConfig.from_dict(bundle.model_config)
        except (TypeError, ValueError) as e:
            raise BundleError(cfg_path, f"bad tagger config ({e})") from None
        meta = bundle.meta
        scheme = require(meta, "tag_scheme", cfg_path, str)
        if scheme not in SCHEMES:
            raise BundleError(
                cfg_path, f"unknown tag_scheme {scheme!r} (expected one of {', '.join(SCHEMES)})"
            )
        labels = require(meta, "labels", cfg_path, list)
        check_labels(labels, scheme, cfg_path)
        if len(labels) != self.config.num_tags:
            raise BundleError(cfg_path, f"{len(labels)} labels for num_tags={self.config.num_tags}")
        try:
            transitions = Transitions.from_dict(bundle.read_json(DECODER))
        except ValueError as e:
            raise BundleError(bundle.file(DECODER), str(e)) from None
        if transitions.num_tags != len(labels):
            raise BundleError(
                bundle.file(DECODER), f"{transitions.num_tags} tags for {len(labels)} labels"
            )
        self.labels: tuple[str, ...] = tuple(labels)
        self.tag_scheme = scheme
        self.transitions = transitions
        # meta.calibration.temperature (ner.calibration): scores / T before the marginals and
        # span scores; Viterbi labels are the same at any T > 0.
        self.temperature = read_temperature(meta, cfg_path)
        self._scored_transitions = scale_transitions(transitions, self.temperature)
        self.inputs = read_inputs(bundle, self.config.inputs)
        self._spans = SpanReader(self.labels, scheme)  # type: ignore[arg-type]

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], backend: Any = "onnx", **kwargs: Any) -> Any:
        """Load the tagger bundle at ``path`` (see :func:`ner.tasks.load`)."""
        return super().from_path(path, backend, **kwargs)

    def torch_graphs(self) -> Mapping[str, Graph]:
        from ner.models.tagger import Tagger, emissions_graph

        model = Tagger(self.config, self.inputs.tables.glove)
        self.bundle.load_torch_model(model, optional=[WORD_TABLE_PREFIX])
        return {EMISSIONS: emissions_graph(model, self.inputs.tables)}

    @property
    def featurizer(self) -> Featurizer:
        return self.inputs.featurizer

    @property
    def num_tags(self) -> int:
        return len(self.labels)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "tag_scheme": self.tag_scheme,
            "labels": list(self.labels),
            "temperature": self.temperature,
        }

    def warmup(self) -> None:
        self.predict([["Harry", "Potter", "and", "Hermione", "Granger", "met", "."]])

    def emissions(self, features: Any) -> np.ndarray:
        """features (padded batch) -> emissions (B, T, K) float32; padded steps are meaningless."""
        b, t = features.word_ids.shape
        if b == 0 or t == 0 or not features.lengths.any():
            return np.zeros((b, t, self.num_tags), dtype=np.float32)
        out = self.bundle.run(EMISSIONS, self.inputs.arrays(features))[EMISSIONS]
        return np.asarray(out, dtype=np.float32)

    # ----------------------------------------------------------------------------------------

    def predict(self, inputs: Sequence[Input], batch_size: int = 64) -> list[Document]:
        """Tag raw texts and/or tokenised sentences.

        Args:
            inputs: each item is a raw text (``str``) or one sentence as a list of words.
            batch_size: sentences per forward pass.

        Raises:
            TypeError: an input is neither a str nor a list of str.
            ValueError: a word of a tokenised input is empty or contains whitespace.

        Returns:
            One :class:`Document` per input, in input order.
        """
        if isinstance(inputs, str):
            raise TypeError("predict() takes a list of inputs; wrap a single text as [text]")
        prepared = [self._prepare(item) for item in inputs]
        words = [piece[0] for _, pieces in prepared for piece in pieces]
        tagged = iter(self.tag(words, batch_size))
        return [
            _document(text, [(piece, next(tagged)) for piece in pieces])
            for text, pieces in prepared
        ]

    def tag(self, sentences: Sequence[Sequence[str]], batch_size: int = 64) -> list[SentenceTags]:
        """Labels, scores and entities of tokenised sentences, without offsets (the server's
        call: it has tokenised the texts itself and keeps their offsets).

        Args:
            sentences: tokenised sentences (taken as they are; an empty one gives no tags).
            batch_size: sentences per forward pass.

        Returns:
            One :class:`SentenceTags` per sentence, in input order.
        """
        out = [_UNTAGGED] * len(sentences)
        reader = self._spans
        for index, lengths, em in self._emissions(sentences, batch_size):
            dec = decode_flat(
                scale_emissions(em, self.temperature), lengths, self._scored_transitions
            )
            spans = reader.spans(dec.tag_ids, lengths)
            iob2 = reader.labels(spans, lengths, "iob2")
            scores = dec.tag_scores().tolist()  # Python floats, converted in one call
            starts = np.cumsum(lengths) - lengths  # each sentence's first row
            offset = starts[spans.sentence]  # entity token indices count within the sentence
            entities = list(
                zip(
                    [reader.types[t] for t in spans.type_ids.tolist()],
                    (spans.start - offset).tolist(),
                    (spans.end - offset).tolist(),
                    dec.span_scores(spans.start, spans.end).tolist(),
                    strict=True,
                )
            )
            # each sentence's entities: [firsts[s], firsts[s + 1]) (spans come in row order)
            firsts = np.searchsorted(spans.sentence, np.arange(len(lengths) + 1)).tolist()
            rows = zip(index, starts.tolist(), lengths.tolist(), strict=True)
            for s, (i, a, n) in enumerate(rows):
                out[i] = SentenceTags(
                    iob2[a : a + n], scores[a : a + n], entities[firsts[s] : firsts[s + 1]]
                )
        return out

    def predict_tokens(
        self, sentences: Sequence[Sequence[str]], scheme: str = "iob2", batch_size: int = 64
    ) -> list[list[str]]:
        """Fast path for evaluation: Viterbi labels only, converted to ``scheme``.

        Args:
            sentences: tokenised sentences (taken as they are; an empty one gives ``[]``).
            scheme: ``"iob1"``, ``"iob2"``, ``"bioes"`` or ``"binary"``.
            batch_size: sentences per forward pass.

        Returns:
            One list of labels per sentence.
        """
        if scheme not in SCHEMES:
            raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {SCHEMES}")
        dst: Scheme = scheme  # type: ignore[assignment]
        out: list[list[str]] = [[] for _ in sentences]
        for index, lengths, em in self._emissions(sentences, batch_size):
            spans = self._spans.spans(viterbi_flat(em, lengths, self.transitions), lengths)
            labels = self._spans.labels(spans, lengths, dst)
            a = 0
            for i, n in zip(index, lengths.tolist(), strict=True):
                out[i] = labels[a : a + n]
                a += n
        return out

    # ----------------------------------------------------------------------------------------

    def _prepare(self, item: Input) -> tuple[str, list[Piece]]:
        """An input -> (its text, its non-empty sentences with global offsets)."""
        if isinstance(item, str):
            sentences = split_sentences(item, max_tokens=self.max_tokens)
            return item, [
                ([t.text for t in s], [t.start for t in s], [t.end for t in s])
                for s in sentences
                if s
            ]
        if isinstance(item, Sequence) and all(isinstance(w, str) for w in item):
            return _from_words(list(item))
        raise TypeError(f"an input must be a str or a list of str, got {type(item).__name__}")

    def _batches(self, sentences: Sequence[Sequence[str]], batch_size: int) -> Iterator[list[int]]:
        """Indices of non-empty sentences, sorted by length and cut into batches of at most
        ``batch_size`` sentences and :data:`MAX_BATCH_TOKENS` padded tokens."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        lengths = [len(s) for s in sentences]
        order = sorted((i for i, n in enumerate(lengths) if n), key=lengths.__getitem__)
        batch: list[int] = []
        for i in order:  # ascending length: the newest sentence is the longest of the batch
            if batch and (
                len(batch) >= batch_size or (len(batch) + 1) * lengths[i] > MAX_BATCH_TOKENS
            ):
                yield batch
                batch = []
            batch.append(i)
        if batch:
            yield batch

    def _emissions(
        self, sentences: Sequence[Sequence[str]], batch_size: int
    ) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
        """``(indices, lengths (B,), emissions (N, K) float32)`` of the non-empty sentences, the
        sentences end to end, in chunks of about :data:`DECODE_TOKENS` tokens."""
        self.featurizer.prefetch(sentences)  # all distinct words in one lookup, not per batch
        index: list[int] = []
        lengths: list[np.ndarray] = []
        rows: list[np.ndarray] = []
        tokens = 0
        for batch in self._batches(sentences, batch_size):
            features = self.featurizer.encode([sentences[i] for i in batch])
            emissions = self.emissions(features)  # (b, T, K)
            index += batch
            lengths.append(features.lengths)
            rows.append(emissions[np.arange(emissions.shape[1]) < features.lengths[:, None]])
            tokens += rows[-1].shape[0]
            if tokens >= DECODE_TOKENS:
                yield index, np.concatenate(lengths), np.concatenate(rows)
                index, lengths, rows, tokens = [], [], [], 0
        if index:
            yield index, np.concatenate(lengths), np.concatenate(rows)


def _from_words(words: list[str]) -> tuple[str, list[Piece]]:
    """A tokenised input -> (the words joined by single spaces, one piece with their offsets);
    the checks and errors of ``tokens_from_words``, without its ``Token`` objects."""
    try:
        text = " ".join(words)
        ok = text.split() == words  # no word empty or holding white space (as tokens_from_words)
    except TypeError:
        ok = False
    if not ok:
        tokens_from_words(words)  # raises the error that names the first bad word
    if not words:
        return text, []
    bounds = list(itertools.accumulate([len(w) + 1 for w in words], initial=0))
    return text, [(words, bounds[:-1], [b - 1 for b in bounds[1:]])]


def _document(text: str, parts: list[tuple[Piece, SentenceTags]]) -> Document:
    """The result objects of one input from its sentences' offsets and tags."""
    tokens: list[TokenResult] = []
    entities: list[EntityResult] = []
    for (words, starts, ends), tagged in parts:
        offset = len(tokens)
        labels = tagged.labels
        names = [0 if label == "O" else 1 for label in labels]
        tokens += map(TokenResult, words, starts, ends, labels, names, tagged.scores)
        for label, first, last, score in tagged.entities:
            start, end = starts[first], ends[last - 1]
            entities.append(
                EntityResult(
                    text[start:end], label, start, end, offset + first, offset + last, score
                )
            )
    return Document(text, tokens, entities)


def check_labels(labels: list[Any], scheme: str, path: Any) -> None:
    """Each label is a distinct tag of ``scheme`` (``O``/``B-X``/``I-X``, plus ``E-``/``S-`` in
    BIOES; ``0``/``1`` in binary)."""
    if not labels:
        raise BundleError(path, "'labels' is empty")
    prefixes = {"O", "B", "I", "E", "S"} if scheme == "bioes" else {"O", "B", "I"}
    for label in labels:
        if not isinstance(label, str):
            raise BundleError(path, f"label {label!r} is not a string")
        if scheme == "binary":
            ok = label in ("0", "1", "O")
        else:
            try:
                ok = parse_tag(label)[0] in prefixes
            except ValueError:
                ok = False
        if not ok:
            raise BundleError(path, f"label {label!r} is not a {scheme} tag")
    if len(set(labels)) != len(labels):
        dupes = sorted({label for label in labels if labels.count(label) > 1})
        raise BundleError(path, f"duplicate labels {dupes}")


def export_tagger(
    model: Any,
    out_dir: str | os.PathLike[str],
    *,
    featurizer: Featurizer,
    labels: Sequence[str],
    tag_scheme: str,
    name: str = "ner-tagger",
    version: str = "0.0.0",
    card: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    max_bytes: int | None = None,
) -> Any:
    """Write a trained ``ner.models.tagger.Tagger`` as a bundle of task ``ner`` (atomically).

    Args:
        model: the tagger (its training mode is restored afterwards).
        out_dir: the bundle directory to create or replace.
        featurizer: the vocabularies and feature settings it was trained with.
        labels: the ``K`` tag names in tag-id order, in ``tag_scheme``.
        tag_scheme: ``"iob1"``, ``"iob2"``, ``"bioes"`` (or ``"binary"``): the training scheme.
        name, version: the model's identity (in config.json and the card).
        card: model-card fields (``training_data``, ``metrics``...).
        meta: extra task metadata (e.g. ``calibration``).
        max_bytes: refuse a bundle larger than this (default ``ner.bundle.MAX_BUNDLE_BYTES``).
    """
    from ner.bundle import MAX_BUNDLE_BYTES
    from ner.models.tagger import emissions_graph

    config: TaggerConfig = model.config
    labels = list(labels)
    if len(labels) != config.num_tags:
        raise ValueError(f"{len(labels)} labels for a model with num_tags={config.num_tags}")
    if len(featurizer.words) != config.inputs.vocab_size:
        raise ValueError(f"{len(featurizer.words)} words for vocab_size={config.inputs.vocab_size}")
    if tag_scheme not in ("iob1", "iob2", "bioes", "binary"):
        raise ValueError(f"unknown tag scheme {tag_scheme!r}")
    limit = MAX_BUNDLE_BYTES if max_bytes is None else max_bytes
    with BundleWriter(out_dir, task="ner", name=name, version=version, max_bytes=limit) as w:
        table = model.word_table()
        inputs_meta = write_inputs(w, table, featurizer)
        decoder = constrain(model.transitions(), labels, tag_scheme)  # type: ignore[arg-type]
        w.write_json(DECODER, decoder.to_dict())
        state = model.state_dict()
        w.write_weights({k: v for k, v in state.items() if not k.startswith(WORD_TABLE_PREFIX)})
        tables = _tables(table, featurizer)
        w.write_graph(EMISSIONS, emissions_graph(model, tables), "model.onnx")
        return w.commit(
            model=config.to_dict(),
            meta={
                "tag_scheme": tag_scheme,
                "labels": labels,
                "featurizer": inputs_meta,
                **dict(meta or {}),
            },
            card=card,
        )


def _tables(table: np.ndarray, featurizer: Featurizer) -> Any:
    """The word tables as the bundle will hold them (float16 table, installed GloVe)."""
    from ner.features import WordTables

    glove = None
    if featurizer.use_glove:
        from ner.data.glove import load_glove

        glove = load_glove().vectors
    return WordTables(np.asarray(table, dtype=np.float16), glove)
