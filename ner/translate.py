"""Translate with a loaded seq2seq bundle: greedy and beam search in NumPy.

A seq2seq bundle has two graphs (``ner.models.seq2seq``): ``encoder`` (source word vectors ->
memory, attention keys, the decoder's initial state) and ``decoder_step`` (y<t-1> and s<t-1> ->
log P(y<t> | ...), s<t> and the attention weights alpha<t>). The search loops here call them
through ``Bundle.run``, so ONNX Runtime (no torch) and the torch backend run the same loop and
give the same output.

- Greedy search writes argmax y<t> until every row has written ``</s>``, batched.
- Beam search (one source at a time) keeps the ``beam_size`` best prefixes by log-probability;
  a prefix that ends in ``</s>`` among the top ``beam_size`` candidates is finished, and the
  search stops once ``beam_size`` are. Hypotheses are ranked by log P(y|x) / |y|^alpha
  (``length_penalty`` alpha; 0 ranks by log-probability, 1 by the mean per token; |y| counts
  ``</s>``). The greedy output is always a candidate too, so the best beam never scores below
  greedy under the ranking used (pruning can otherwise lose the greedy path).
- Both stop at ``max_output_len`` tokens (the bundle's cap), so a model that never writes
  ``</s>`` still answers; such an output is marked ``finished = False``.

``score`` is always the log-probability of the output under the model, ``</s>`` included when it
was written: log P(y<1..Ty>, </s> | x).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ner.bundle import Bundle, BundleError, BundleWriter, Graph, require
from ner.data.pairs import detokenize
from ner.data.pairs import tokenize as tokenize_words
from ner.data.vocab import PAD, UNK, Vocab
from ner.features import Featurizer
from ner.models.config import Seq2SeqConfig
from ner.tasks.base import TaskPredictor
from ner.tasks.inputs import WORD_TABLE_PREFIX, InputParts, read_inputs, write_inputs

__all__ = [
    "BOS",
    "EOS",
    "MAX_BEAM",
    "Hypothesis",
    "SourceSpec",
    "Translation",
    "TranslationInputError",
    "Translator",
    "beam_search",
    "export_seq2seq",
    "greedy_search",
    "target_vocab",
    "training_arrays",
]

BOS, EOS = "<s>", "</s>"
MAX_BEAM = 16
"""Largest beam a request may ask for (cost grows linearly with it)."""

ENCODER, STEP = "encoder", "decoder_step"  # ner.models.seq2seq's keys (it imports torch)
_SPACES = re.compile(r"\s+")


class TranslationInputError(ValueError):
    """A text or search setting the model cannot take (a 4xx in serving, exit 2 in the CLI).

    Attributes:
        field: the request field at fault (``text``, ``beam_size``, ``n_best``,
            ``length_penalty``).
        limit: ``(name, value)`` of the cap that was passed, if any.
    """

    def __init__(
        self, message: str, *, field: str = "text", limit: tuple[str, int] | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        self.limit = limit


# ---------------------------------------------------------------------------- source side


@dataclass(frozen=True)
class SourceSpec:
    """How a raw text becomes source tokens (stored in the bundle's ``meta.source``).

    Attributes:
        level: ``char`` (each character is a token, spaces included) or ``word``
            (``ner.data.pairs.tokenize``).
        lowercase: lowercase the text first.
        remove: characters deleted before tokenizing (dates: the comma).
        max_chars: longest accepted text, in characters after normalization.
    """

    level: Literal["char", "word"] = "char"
    lowercase: bool = True
    remove: str = ""
    max_chars: int = 64

    def normalize(self, text: str) -> str:
        """Lowercase, delete ``remove``, collapse whitespace, strip."""
        if self.lowercase:
            text = text.lower()
        if self.remove:
            text = text.translate({ord(c): None for c in self.remove})
        return _SPACES.sub(" ", text).strip()

    def tokens(self, text: str) -> list[str]:
        """A normalized text -> source tokens."""
        return list(text) if self.level == "char" else tokenize_words(text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "lowercase": self.lowercase,
            "remove": self.remove,
            "max_chars": self.max_chars,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: Any) -> SourceSpec:
        level = require(data, "level", path, str)
        if level not in ("char", "word"):
            raise BundleError(path, f"meta.source.level must be 'char' or 'word', got {level!r}")
        max_chars = require(data, "max_chars", path, int)
        if max_chars < 1:
            raise BundleError(path, f"meta.source.max_chars must be >= 1, got {max_chars}")
        return cls(
            level,  # type: ignore[arg-type]
            require(data, "lowercase", path, bool),
            require(data, "remove", path, str),
            max_chars,
        )


def target_vocab(tokens: Sequence[str] | Any, *, min_freq: int = 1) -> Vocab:
    """A target vocabulary: <pad>, <unk>, <s>, </s>, then the tokens by frequency."""
    built = Vocab.build(tokens, min_freq=min_freq, casing="keep")
    return Vocab((PAD, UNK, BOS, EOS, *[t for t in built.itos[2:] if t not in (BOS, EOS)]))


def training_arrays(
    sources: Sequence[Sequence[str]],
    targets: Sequence[Sequence[str]],
    source_vocab: Vocab,
    target: Vocab,
) -> dict[str, np.ndarray]:
    """Token lists -> padded int64 arrays for teacher forcing.

    Returns ``source_ids`` (B, Tx), ``lengths`` (B,), ``prev_ids`` (B, Ty + 1) (``<s>`` then
    y<1..Ty>) and ``targets`` (B, Ty + 1) (y<1..Ty> then ``</s>``), padded with 0.
    """
    if len(sources) != len(targets):
        raise ValueError(f"{len(sources)} sources for {len(targets)} targets")
    b = len(sources)
    tx = max((len(s) for s in sources), default=1) or 1
    ty = max((len(t) for t in targets), default=0) + 1
    source_ids = np.zeros((b, tx), dtype=np.int64)
    prev_ids = np.zeros((b, ty), dtype=np.int64)
    target_ids = np.zeros((b, ty), dtype=np.int64)
    bos, eos = target.id(BOS), target.id(EOS)
    for i, (src, tgt) in enumerate(zip(sources, targets, strict=True)):
        source_ids[i, : len(src)] = source_vocab.encode(src)
        ids = target.encode(tgt)
        prev_ids[i, : len(ids) + 1] = [bos, *ids]
        target_ids[i, : len(ids) + 1] = [*ids, eos]
    lengths = np.array([len(s) for s in sources], dtype=np.int64)
    return {
        "source_ids": source_ids,
        "lengths": lengths,
        "prev_ids": prev_ids,
        "targets": target_ids,
    }


# ---------------------------------------------------------------------------- search

StepFn = Callable[
    [np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    tuple[np.ndarray, np.ndarray, np.ndarray],
]
"""(prev_ids (B,), state (L, B, S), memory (B, Tx, M), keys (B, Tx, K), lengths (B,)) ->
(log_probs (B, V), new state (L, B, S), attention (B, Tx))."""


@dataclass(frozen=True)
class Encoded:
    """The encoder's outputs for a batch: memory (B, Tx, M), keys (B, Tx, K), state (L, B, S)."""

    memory: np.ndarray
    keys: np.ndarray
    state: np.ndarray
    lengths: np.ndarray

    def rows(self, index: np.ndarray) -> Encoded:
        """The batch rows ``index`` (repeats allowed: one per beam)."""
        return Encoded(
            self.memory[index], self.keys[index], self.state[:, index], self.lengths[index]
        )


@dataclass(frozen=True)
class Hypothesis:
    """One output: token ids (``</s>`` not included), log-probability, whether ``</s>`` was
    written, and the attention rows (one per output step, ``</s>`` included; (steps, Tx))."""

    ids: tuple[int, ...]
    score: float
    finished: bool
    attention: np.ndarray

    def rank(self, length_penalty: float) -> float:
        """score / |y|^alpha, |y| counting ``</s>`` (alpha = 0: the score itself)."""
        if length_penalty == 0.0:
            return self.score
        return self.score / max(len(self.ids) + int(self.finished), 1) ** length_penalty


def _ban(log_probs: np.ndarray, banned: Sequence[int]) -> np.ndarray:
    """Tokens the decoder must never write (<pad>, <s>) get -inf, without renormalizing: the
    scores of the other tokens stay the model's log-probabilities."""
    if banned:
        log_probs = log_probs.copy()
        log_probs[:, list(banned)] = -np.inf
    return log_probs


def greedy_search(
    step: StepFn,
    encoded: Encoded,
    *,
    bos: int,
    eos: int,
    max_len: int,
    banned: Sequence[int] = (),
) -> list[Hypothesis]:
    """Argmax decoding of a batch; one hypothesis per row, at most ``max_len`` tokens."""
    b, tx = encoded.memory.shape[:2]
    prev = np.full(b, bos, dtype=np.int64)
    state = encoded.state
    done = np.zeros(b, dtype=bool)
    scores = np.zeros(b, dtype=np.float64)
    ids = np.zeros((b, max_len), dtype=np.int64)
    attention = np.zeros((b, max_len, tx), dtype=np.float32)
    steps = np.zeros(b, dtype=np.int64)
    rows = np.arange(b)
    for t in range(max_len):
        log_probs, state, alpha = step(prev, state, encoded.memory, encoded.keys, encoded.lengths)
        log_probs = _ban(log_probs, banned)
        y = log_probs.argmax(axis=1)
        live = ~done
        scores[live] += log_probs[rows, y][live]
        ids[live, t] = y[live]
        attention[live, t] = alpha[live]
        steps[live] += 1
        done |= y == eos
        prev = y
        if done.all():
            break
    out = []
    for i in range(b):
        n = int(steps[i])
        finished = bool(n and ids[i, n - 1] == eos)
        tokens = ids[i, : n - 1] if finished else ids[i, :n]
        out.append(
            Hypothesis(
                tuple(tokens.tolist()),
                float(scores[i]),
                finished,
                attention[i, :n, : int(encoded.lengths[i])].copy(),  # (steps, own Tx)
            )
        )
    return out


def _beam_done(
    finished: list[Hypothesis],
    keep: list[tuple[int, int]],
    cand: np.ndarray,
    beam_size: int,
    length_penalty: float,
    length: int,
) -> bool:
    """Stop once ``beam_size`` outputs are finished and no live prefix ranks above the
    ``beam_size``-th of them. A log-probability only falls as a prefix grows, so with
    ``length_penalty`` 0 no live prefix can still enter the top ``beam_size``; with a length
    penalty the live prefixes are ranked at their current ``length`` (the usual heuristic)."""
    if len(finished) < beam_size:
        return False
    kth = sorted((h.rank(length_penalty) for h in finished), reverse=True)[beam_size - 1]
    best = max(float(cand[r, t]) for r, t in keep)
    if length_penalty:
        best /= length**length_penalty
    return best <= kth


def beam_search(
    step: StepFn,
    encoded: Encoded,
    *,
    bos: int,
    eos: int,
    max_len: int,
    beam_size: int,
    n_best: int = 1,
    length_penalty: float = 0.0,
    banned: Sequence[int] = (),
) -> list[Hypothesis]:
    """Beam search for one source (``encoded`` has batch 1) -> the ``n_best`` best hypotheses,
    best first (ranked by :meth:`Hypothesis.rank`)."""
    if encoded.memory.shape[0] != 1:
        raise ValueError("beam_search takes one source at a time")
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"need 1 <= n_best <= beam_size, got n_best={n_best}, beam={beam_size}")
    tx = encoded.memory.shape[1]
    live_ids: list[tuple[int, ...]] = [()]
    live_scores = np.zeros(1, dtype=np.float64)
    live_attention = [np.zeros((0, tx), dtype=np.float32)]
    state = encoded.state
    finished: list[Hypothesis] = []
    for t in range(max_len):
        n = len(live_ids)
        ctx = encoded.rows(np.zeros(n, dtype=np.int64))
        prev = np.array([s[-1] if s else bos for s in live_ids], dtype=np.int64)
        log_probs, new_state, alpha = step(prev, state, ctx.memory, ctx.keys, ctx.lengths)
        log_probs = _ban(log_probs, banned)
        cand = live_scores[:, None] + log_probs  # (n, V)
        v = cand.shape[1]
        flat = cand.ravel()
        k = min(2 * beam_size, flat.size)
        top = np.argpartition(-flat, k - 1)[:k]
        top = top[np.argsort(-flat[top], kind="stable")]
        keep: list[tuple[int, int]] = []
        for rank, index in enumerate(top.tolist()):
            row, token = divmod(index, v)
            if not np.isfinite(flat[index]):
                break
            if token == eos:
                if rank < beam_size:  # a finished prefix counts only if it beats the beam
                    attention = np.concatenate([live_attention[row], alpha[row : row + 1]])
                    finished.append(Hypothesis(live_ids[row], float(flat[index]), True, attention))
                continue
            keep.append((row, token))
            if len(keep) == beam_size:
                break
        if not keep or _beam_done(finished, keep, cand, beam_size, length_penalty, t + 1):
            break
        rows = np.array([r for r, _ in keep], dtype=np.int64)
        live_attention = [np.concatenate([live_attention[r], alpha[r : r + 1]]) for r, _ in keep]
        live_ids = [(*live_ids[r], t) for r, t in keep]
        live_scores = np.array([cand[r, t] for r, t in keep], dtype=np.float64)
        state = new_state[:, rows]
    else:
        finished.extend(
            Hypothesis(ids, float(s), False, a)
            for ids, s, a in zip(live_ids, live_scores, live_attention, strict=True)
        )
    greedy = greedy_search(step, encoded, bos=bos, eos=eos, max_len=max_len, banned=banned)[0]
    if all(h.ids != greedy.ids or h.finished != greedy.finished for h in finished):
        finished.append(greedy)
    finished.sort(key=lambda h: -h.rank(length_penalty))
    return finished[:n_best]


# ---------------------------------------------------------------------------- predictor


@dataclass(frozen=True)
class Translation:
    """One translated text.

    Attributes:
        text: the input as the model read it (normalized).
        translation: the best output.
        score: its log-probability, log P(y, </s> | x).
        source_tokens: the input tokens (characters or words) as the model read them.
        output_tokens: the output tokens, ``</s>`` included when written.
        attention: (output steps x input tokens) weights of the best output, or ``None`` for a
            model without attention.
        alternatives: the other n-best outputs as (translation, score), best first.
        unknown: input tokens outside the source vocabulary (word models read them as <unk>).
        finished: False when the output hit the length cap before ``</s>``.
    """

    text: str
    translation: str
    score: float
    source_tokens: list[str]
    output_tokens: list[str]
    attention: list[list[float]] | None
    alternatives: list[tuple[str, float]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    finished: bool = True

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "translation": self.translation,
            "score": self.score,
            "source_tokens": self.source_tokens,
            "output_tokens": self.output_tokens,
            "finished": self.finished,
        }
        if self.alternatives:
            out["alternatives"] = [{"translation": t, "score": s} for t, s in self.alternatives]
        if self.attention is not None:
            out["attention"] = self.attention
        if self.unknown:
            out["unknown"] = self.unknown
        return out


class Translator(TaskPredictor):
    """Greedy and beam-search translation over a loaded bundle of task ``seq2seq``."""

    task = "seq2seq"

    def __init__(self, bundle: Bundle) -> None:
        super().__init__(bundle)
        cfg_path = bundle.config_path
        try:
            self.config = Seq2SeqConfig.from_dict(bundle.model_config)
        except (TypeError, ValueError) as e:
            raise BundleError(cfg_path, f"bad seq2seq config ({e})") from None
        meta = bundle.meta
        self.source = SourceSpec.from_dict(require(meta, "source", cfg_path, dict), cfg_path)
        self.max_output_len = require(meta, "max_output_len", cfg_path, int)
        if self.max_output_len < 1:
            raise BundleError(cfg_path, "meta.max_output_len must be >= 1")
        self.inputs: InputParts = read_inputs(bundle, self.config.inputs)
        self.target = bundle.vocab("target")
        if len(self.target) != self.config.target_vocab_size or self.target.itos[2:4] != (
            BOS,
            EOS,
        ):
            raise BundleError(
                bundle.file(bundle.config["vocabs"]["target"]),
                f"expected {self.config.target_vocab_size} tokens starting "
                f"{PAD}, {UNK}, {BOS}, {EOS}",
            )
        for key in (ENCODER, STEP):
            if key not in bundle.config["graphs"]:
                raise BundleError(cfg_path, f"no {key!r} graph in 'graphs'")
        self.bos, self.eos = 2, 3

    def torch_graphs(self) -> Mapping[str, Graph]:
        from ner.models.seq2seq import Seq2Seq, encoder_graph, step_graph

        model = Seq2Seq(self.config)
        self.bundle.load_torch_model(model, optional=[WORD_TABLE_PREFIX])
        table = np.asarray(self.inputs.tables.table, dtype=np.float32)
        return {ENCODER: encoder_graph(model, table), STEP: step_graph(model)}

    @property
    def has_attention(self) -> bool:
        return self.config.attention != "none"

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "attention": self.config.attention,
            "source_level": self.source.level,
            "max_chars": self.source.max_chars,
            "max_output_len": self.max_output_len,
            "max_beam": MAX_BEAM,
        }

    def warmup(self) -> None:
        vocab = [t for t in self.inputs.featurizer.words.itos[2:] if t.strip()][:3]
        text = ("" if self.source.level == "char" else " ").join(vocab) or "a"
        self.translate([text], beam_size=2)

    # ---------------------------------------------------------------- checks

    def source_tokens(self, text: str) -> tuple[str, list[str], list[str]]:
        """A raw text -> (normalized text, source tokens, tokens outside the vocabulary).

        Raises:
            TranslationInputError: not a string, empty, over ``max_chars`` characters, or (for
                a character model) characters the model has never seen, named in the message.
        """
        if not isinstance(text, str):
            raise TranslationInputError(f"text must be a string, got {type(text).__name__}")
        spec = self.source
        cap = ("max_chars", spec.max_chars)
        if len(text) > 4 * spec.max_chars:  # cheap bound before normalizing a huge text
            raise TranslationInputError(
                f"text is {len(text)} characters; this model takes at most {spec.max_chars}",
                limit=cap,
            )
        norm = spec.normalize(text)
        if not norm:
            raise TranslationInputError("text is empty (after normalization)")
        if len(norm) > spec.max_chars:
            raise TranslationInputError(
                f"text is {len(norm)} characters; this model takes at most {spec.max_chars}",
                limit=cap,
            )
        tokens = spec.tokens(norm)
        if not tokens:
            raise TranslationInputError("text has no tokens")
        words = self.inputs.featurizer.words
        unknown = list(dict.fromkeys(t for t in tokens if t not in words))
        if unknown and spec.level == "char":
            shown = ", ".join(repr(c) for c in unknown[:10])
            raise TranslationInputError(
                f"characters this model has never seen: {shown}"
                + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
            )
        return norm, tokens, unknown

    @staticmethod
    def check_search(beam_size: int, n_best: int, length_penalty: float = 0.0) -> None:
        """Raises ``TranslationInputError`` for settings out of range."""
        for name, value in (("beam_size", beam_size), ("n_best", n_best)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TranslationInputError(f"{name} must be an integer, got {value!r}", field=name)
            if not 1 <= value <= MAX_BEAM:
                raise TranslationInputError(
                    f"{name} must be 1..{MAX_BEAM}, got {value}",
                    field=name,
                    limit=("max_beam", MAX_BEAM),
                )
        if n_best > beam_size:
            raise TranslationInputError(
                f"n_best ({n_best}) cannot exceed beam_size ({beam_size})", field="n_best"
            )
        if not 0.0 <= float(length_penalty) <= 2.0:
            raise TranslationInputError(
                f"length_penalty must be 0..2, got {length_penalty}", field="length_penalty"
            )

    # ---------------------------------------------------------------- running

    def _step(
        self,
        prev: np.ndarray,
        state: np.ndarray,
        memory: np.ndarray,
        keys: np.ndarray,
        lengths: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One decoder step on the bundle's runtime (a :data:`StepFn`)."""
        out = self.bundle.run(
            STEP,
            {"prev_ids": prev, "state": state, "memory": memory, "keys": keys, "lengths": lengths},
        )
        return out["log_probs"], out["new_state"], out["attention"]

    def encode(self, sources: Sequence[Sequence[str]]) -> Encoded:
        """Source token lists -> the encoder's outputs for the padded batch."""
        arrays = self.inputs.encode(sources)
        out = self.bundle.run(ENCODER, arrays)
        return Encoded(
            out["memory"].astype(np.float32),
            out["keys"].astype(np.float32),
            out["state"].astype(np.float32),
            arrays["lengths"],
        )

    def translate(
        self,
        texts: Sequence[str],
        *,
        beam_size: int = 1,
        n_best: int = 1,
        length_penalty: float = 0.0,
        batch_size: int = 64,
    ) -> list[Translation]:
        """Translate raw texts; greedy (batched) when ``beam_size == n_best == 1``.

        Raises:
            TranslationInputError: see :meth:`source_tokens` and :meth:`check_search`.
        """
        if isinstance(texts, str):
            raise TypeError("translate() takes a list of texts; wrap a single text as [text]")
        self.check_search(beam_size, n_best, length_penalty)
        prepared = [self.source_tokens(t) for t in texts]
        hyps: list[list[Hypothesis]] = [[] for _ in prepared]
        order = sorted(range(len(prepared)), key=lambda i: len(prepared[i][1]))
        banned = (0, self.bos)
        size = batch_size if beam_size == 1 else 1
        for k in range(0, len(order), size):
            batch = order[k : k + size]
            encoded = self.encode([prepared[i][1] for i in batch])
            if beam_size == 1:
                found = greedy_search(
                    self._step,
                    encoded,
                    bos=self.bos,
                    eos=self.eos,
                    max_len=self.max_output_len,
                    banned=banned,
                )
                for i, h in zip(batch, found, strict=True):
                    hyps[i] = [h]
            else:
                hyps[batch[0]] = beam_search(
                    self._step,
                    encoded,
                    bos=self.bos,
                    eos=self.eos,
                    max_len=self.max_output_len,
                    beam_size=beam_size,
                    n_best=n_best,
                    length_penalty=length_penalty,
                    banned=banned,
                )
        return [self._result(p, h) for p, h in zip(prepared, hyps, strict=True)]

    def detokenize(self, tokens: Sequence[str]) -> str:
        return "".join(tokens) if self.target_level == "char" else detokenize(tokens)

    @property
    def target_level(self) -> str:
        return str(self.bundle.meta.get("target_level", self.source.level))

    def _result(self, prepared: tuple[str, list[str], list[str]], hyps: list[Hypothesis]) -> Any:
        text, tokens, unknown = prepared
        best = hyps[0]
        itos = self.target.itos
        out_tokens = [itos[i] for i in best.ids]
        return Translation(
            text=text,
            translation=self.detokenize(out_tokens),
            score=best.score,
            source_tokens=tokens,
            output_tokens=out_tokens + ([EOS] if best.finished else []),
            attention=np.round(best.attention, 4).tolist() if self.has_attention else None,
            alternatives=[(self.detokenize([itos[i] for i in h.ids]), h.score) for h in hyps[1:]],
            unknown=unknown,
            finished=best.finished,
        )


# ---------------------------------------------------------------------------- export


def export_seq2seq(
    model: Any,
    out_dir: str | os.PathLike[str],
    *,
    source_vocab: Vocab,
    target: Vocab,
    source: SourceSpec,
    max_output_len: int,
    target_level: Literal["char", "word"] | None = None,
    name: str = "seq2seq",
    version: str = "0.0.0",
    card: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    max_bytes: int | None = None,
) -> Any:
    """Write a trained ``ner.models.seq2seq.Seq2Seq`` as a bundle of task ``seq2seq``.

    Args:
        model: the model (its training mode is restored afterwards).
        out_dir: the bundle directory to create or replace.
        source_vocab: the source tokens (characters or words), <pad> and <unk> first.
        target: the target vocabulary (:func:`target_vocab`).
        source: how raw text becomes source tokens.
        max_output_len: the decoder's output cap, ``</s>`` included.
        target_level: how output tokens join (``char``: no spaces); default the source's.
        name, version, card, meta: identity, model-card fields, extra metadata.
        max_bytes: refuse a bundle larger than this (default ``ner.bundle.MAX_BUNDLE_BYTES``).
    """
    from ner.bundle import MAX_BUNDLE_BYTES
    from ner.models.seq2seq import encoder_graph, step_graph

    config: Seq2SeqConfig = model.config
    if len(source_vocab) != config.inputs.vocab_size:
        raise ValueError(
            f"{len(source_vocab)} source tokens for vocab_size {config.inputs.vocab_size}"
        )
    if len(target) != config.target_vocab_size or target.itos[2:4] != (BOS, EOS):
        raise ValueError("the target vocabulary does not fit the model (see target_vocab)")
    if max_output_len < 1:
        raise ValueError(f"max_output_len must be >= 1, got {max_output_len}")
    limit = MAX_BUNDLE_BYTES if max_bytes is None else max_bytes
    with BundleWriter(out_dir, task="seq2seq", name=name, version=version, max_bytes=limit) as w:
        table = model.word_table()
        inputs_meta = write_inputs(w, table, Featurizer(source_vocab))
        w.write_vocab("target", target, "target.json")
        state = model.state_dict()
        w.write_weights({k: v for k, v in state.items() if not k.startswith(WORD_TABLE_PREFIX)})
        stored = np.asarray(table, dtype=np.float16).astype(np.float32)
        w.write_graph(ENCODER, encoder_graph(model, stored), "encoder.onnx")
        w.write_graph(STEP, step_graph(model), "decoder_step.onnx")
        return w.commit(
            model=config.to_dict(),
            meta={
                "featurizer": inputs_meta,
                "source": source.to_dict(),
                "target_level": target_level or source.level,
                "max_output_len": int(max_output_len),
                **dict(meta or {}),
            },
            card=card,
        )
