"""Score and sample with a language-model bundle (tasks ``language_model`` and ``conditional_lm``).

Only one time step of the RNN is a graph (``step``: the vectors of x<t> and a<t-1> in, the
logits of ŷ<t> and a<t> out; a conditional model adds ``init``: the class -> a<0>). Both loops of
the seed notes run here, in NumPy, around it, whatever the backend (ONNX Runtime or torch):

- scoring: feed x<1> = START, x<t> = y<t-1> and add up log ŷ<t>[y<t>] including <EOS>, so
  log P(y<1>, ..., y<Ty>) = Σ_t log P(y<t> | y<1..t-1>);
- sampling: draw y<t> from the softmax (after temperature, top-k and top-p), feed it back as
  x<t+1>, and stop at <EOS> or ``max_length``. The ``n`` samples run as one batch, drawn with
  ``numpy.random.default_rng(seed)``; <pad> is never drawn and <unk> only with ``allow_unk``.
  Several requests (:class:`SampleRequest`, each with its own settings, class and seed) can
  share each step's run (:meth:`LanguageModelPredictor.generate_checked`): each draws from its
  own random stream exactly as it would alone, so its samples do not depend on its batch-mates.

Bad requests raise :class:`GenerationError` (a ``ValueError``) with a message for the user.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ner.bundle import Bundle, BundleError, BundleWriter, Graph, require
from ner.data.lm import EOS, EOS_ID, START, Tokenizer, detokenize, tokenize
from ner.data.vocab import PAD, UNK
from ner.decode import log_softmax
from ner.features import Featurizer, word_vectors
from ner.models.config import LanguageModelConfig
from ner.tasks.base import TaskPredictor
from ner.tasks.inputs import WORD_TABLE_PREFIX, read_inputs, write_inputs

__all__ = [
    "MAX_LENGTH",
    "MAX_SAMPLES",
    "MAX_SCORE_TOKENS",
    "ConditionalLMPredictor",
    "GenerationError",
    "LanguageModelPredictor",
    "SampleRequest",
    "Score",
    "TokenScore",
    "export_language_model",
    "next_token_probs",
]

STEP, INIT = "step", "init"
MAX_SAMPLES = 64
"""Most samples per generate call (they run as one batch)."""
MAX_LENGTH = 1000
"""Most tokens a sample may grow by."""
MAX_SCORE_TOKENS = 5000
"""Most tokens of one scored text."""
MAX_BYTES = 10 * 1024 * 1024
"""A shipped language-model bundle stays at or below 10 MB."""


class GenerationError(ValueError):
    """A request the model cannot serve (bad sampling settings, unseen characters, a class the
    model does not know, an empty text); ``field`` names the request field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TokenScore:
    text: str
    log_prob: float

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "log_prob": self.log_prob}


@dataclass(frozen=True)
class Score:
    """log P(y<1>..y<Ty>) of a text (natural log, <EOS> included) and its parts."""

    log_prob: float
    tokens: list[TokenScore]

    @property
    def perplexity(self) -> float:
        """exp(-log P / Ty): Ty counts every scored token, <EOS> included."""
        return math.exp(-self.log_prob / len(self.tokens))

    def to_dict(self) -> dict[str, Any]:
        return {
            "log_prob": self.log_prob,
            "perplexity": self.perplexity,
            "tokens": [t.to_dict() for t in self.tokens],
        }


def next_token_probs(
    logits: np.ndarray,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float = 1.0,
    banned: Sequence[int] = (),
) -> np.ndarray:
    """Logits (B, V) -> the sampling distribution (B, V) float64.

    Banned ids get probability 0; the logits are divided by ``temperature``; only the ``top_k``
    largest stay (ties at the boundary stay too); then only the smallest set of the most probable
    tokens whose mass reaches ``top_p`` (nucleus sampling, Holtzman et al. 2020).
    """
    z = np.asarray(logits, dtype=np.float64).copy()
    if banned:
        z[:, list(banned)] = -np.inf
    z /= temperature
    if top_k is not None and top_k < z.shape[1]:
        kth = np.partition(z, -top_k, axis=1)[:, [z.shape[1] - top_k]]  # (B, 1)
        z[z < kth] = -np.inf
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    if top_p < 1.0:
        order = np.argsort(-p, axis=1, kind="stable")
        sorted_p = np.take_along_axis(p, order, axis=1)
        before = np.cumsum(sorted_p, axis=1) - sorted_p  # mass of the more probable tokens
        keep = np.zeros_like(p, dtype=bool)
        np.put_along_axis(keep, order, before < top_p, axis=1)
        p = np.where(keep, p, 0.0)
        p /= p.sum(axis=1, keepdims=True)
    return p


def _draw(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One id per row of p (B, V), by inverting the cumulative distribution at u (B,) in
    [0, 1): each row's draw depends on its own row and number only."""
    cdf = np.cumsum(p, axis=1)
    scaled = np.asarray(u)[:, None] * cdf[:, -1:]
    return np.minimum((cdf <= scaled).sum(axis=1), p.shape[1] - 1).astype(np.int64)


@dataclass(frozen=True)
class SampleRequest:
    """One generate request's checked settings (made by ``prepare_sample``), ready to share
    sampling steps with other requests (``LanguageModelPredictor.generate_checked``)."""

    n: int
    prefix: tuple[str, ...]
    """The prefix's tokens, fed through the model first and kept at the start of each sample."""
    class_id: int | None
    seed: int | None
    """Seed of this request's own ``numpy.random.default_rng`` (None: fresh entropy)."""
    max_length: int
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float = 1.0
    allow_unk: bool = False


class LanguageModelPredictor(TaskPredictor):
    """Scoring and sampling over a loaded bundle of task ``language_model``."""

    task = "language_model"

    def __init__(self, bundle: Bundle) -> None:
        super().__init__(bundle)
        cfg_path = bundle.config_path
        try:
            self.config = LanguageModelConfig.from_dict(bundle.model_config)
        except (TypeError, ValueError) as e:
            raise BundleError(cfg_path, f"bad language-model config ({e})") from None
        meta = bundle.meta
        tokenizer = require(meta, "tokenizer", cfg_path, str)
        if tokenizer not in ("chars", "sst2"):
            raise BundleError(cfg_path, f"unknown tokenizer {tokenizer!r}")
        self.tokenizer: Tokenizer = tokenizer  # type: ignore[assignment]
        self.default_length = int(require(meta, "max_length", cfg_path, int))
        classes = meta.get("classes", [])
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise BundleError(cfg_path, "'classes' must be a list of names")
        if len(classes) != self.config.num_classes:
            raise BundleError(
                cfg_path, f"{len(classes)} classes for num_classes={self.config.num_classes}"
            )
        if (self.task == "conditional_lm") != self.config.conditional:
            raise BundleError(cfg_path, f"a {self.task!r} bundle with {len(classes)} classes")
        self.classes: tuple[str, ...] = tuple(classes)
        self.inputs = read_inputs(bundle, self.config.inputs)
        vocab = self.vocab
        if vocab.itos[: EOS_ID + 1] != (PAD, UNK, EOS):
            raise BundleError(cfg_path, f"the vocabulary must start with {PAD}, {UNK}, {EOS}")
        # x<t> = y<t-1> for sampled ids: each vocabulary entry's input vector, looked up once
        ids = np.arange(len(vocab), dtype=np.int64)[None, :]
        glove_ids = self.featurizer.encode([list(vocab.itos)]).glove_ids
        glove_ids[0, : EOS_ID + 1] = 0
        self.input_table = word_vectors(self.inputs.tables, ids, glove_ids)[0]  # (V, D)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], backend: Any = "onnx", **kwargs: Any) -> Any:
        return super().from_path(path, backend, **kwargs)

    def torch_graphs(self) -> Mapping[str, Graph]:
        from ner.models.language_model import LanguageModel, init_graph, step_graph

        model = LanguageModel(self.config, self.inputs.tables.glove)
        self.bundle.load_torch_model(model, optional=[WORD_TABLE_PREFIX])
        graphs = {STEP: step_graph(model, self.input_table)}
        if self.config.conditional:
            graphs[INIT] = init_graph(model)
        return graphs  # type: ignore[return-value]

    @property
    def featurizer(self) -> Featurizer:
        return self.inputs.featurizer

    @property
    def vocab(self) -> Any:
        return self.featurizer.words

    @property
    def level(self) -> str:
        return "char" if self.tokenizer == "chars" else "word"

    def describe(self) -> dict[str, Any]:
        out = {
            **super().describe(),
            "level": self.level,
            "vocab_size": len(self.vocab),
            "max_length": self.default_length,
        }
        if self.classes:
            out["classes"] = list(self.classes)
        return out

    def warmup(self) -> None:
        cls = 0 if self.classes else None
        self.generate(2, max_length=3, seed=0, class_=cls)

    # ------------------------------------------------------------------------ inputs

    def tokenize(self, text: str) -> list[str]:
        """A text -> the model's tokens (characters, or SST-2 words)."""
        return tokenize(self.tokenizer, text)

    def class_id(self, class_: str | int | None) -> int | None:
        """A class name or id -> its id (None for a plain language model)."""
        if not self.classes:
            if class_ is not None:
                raise GenerationError(
                    "this model is a plain language model and takes no class", "class"
                )
            return None
        names = ", ".join(self.classes)
        if class_ is None:
            raise GenerationError(f"this model needs a class: one of {names}", "class")
        if isinstance(class_, bool):
            raise GenerationError(f"class must be a name ({names}) or an id", "class")
        if isinstance(class_, int):
            if 0 <= class_ < len(self.classes):
                return class_
        elif class_ in self.classes:
            return self.classes.index(class_)
        raise GenerationError(
            f"unknown class {class_!r}: this model knows {names} "
            f"(or ids 0-{len(self.classes) - 1})",
            "class",
        )

    def _check_tokens(self, tokens: Sequence[str], field: str) -> None:
        """Character models refuse characters they have never seen (they have no word <UNK>
        to fall back on; the seed notes' character models never need it)."""
        if self.level != "char":
            return
        vocab = self.vocab
        unseen = sorted({t for t in tokens if t not in vocab})
        if unseen:
            shown = ", ".join(repr(c) for c in unseen[:20])
            raise GenerationError(
                f"{field} has characters the model has never seen: {shown}", field
            )

    def _initial_state(self, class_id: int | np.ndarray | None, batch: int) -> np.ndarray:
        """state (L, B, S): zeros, or the conditional model's a<0> for each row's class
        (``class_id``: one id for every row, or one per row)."""
        if class_id is None:
            rnn = self.config.rnn
            return np.zeros((rnn.num_layers, batch, rnn.state_size), dtype=np.float32)
        ids = np.full(batch, class_id, dtype=np.int64)
        return np.asarray(self.bundle.run(INIT, {"class_ids": ids})["state"], dtype=np.float32)

    def _step(
        self, vectors: np.ndarray, state: np.ndarray, class_id: int | np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """vectors (B, 1, D), state (L, B, S) -> logits (B, V), state (L, B, S).

        ``class_id``: None for a plain model, else one id for every row or one per row (B,)."""
        feed = {"word_vectors": vectors.astype(np.float32, copy=False), "state": state}
        if class_id is not None:
            feed["class_ids"] = np.full(vectors.shape[0], class_id, dtype=np.int64)
        out = self.bundle.run(STEP, feed)
        return out["logits"], np.asarray(out["state_out"], dtype=np.float32)

    # ------------------------------------------------------------------------ scoring

    def score(self, texts: Sequence[str], class_: str | int | None = None) -> list[Score]:
        """log P of each text (its tokens then <EOS>) as one padded batch.

        Raises:
            GenerationError: an empty text (no tokens), too long a text, unseen characters,
                a wrong or missing class.
        """
        return self.score_tokens([self.tokenize(t) for t in texts], class_)

    def score_tokens(
        self, sentences: Sequence[Sequence[str]], class_: str | int | None = None
    ) -> list[Score]:
        """log P of tokenised sentences (see :meth:`score`)."""
        class_id = self.class_id(class_)
        for tokens in sentences:
            self.check_scorable(tokens)
        return self.score_checked(sentences, [class_id] * len(sentences))

    def check_scorable(self, tokens: Sequence[str]) -> None:
        """Raise ``GenerationError`` (field ``text``) for a tokenised text that cannot be
        scored: no tokens, more than ``MAX_SCORE_TOKENS``, characters never seen."""
        if not tokens:
            raise GenerationError("there is nothing to score: the text has no tokens", "text")
        if len(tokens) > MAX_SCORE_TOKENS:
            raise GenerationError(
                f"the text has {len(tokens)} tokens; at most {MAX_SCORE_TOKENS} are scored",
                "text",
            )
        self._check_tokens(tokens, "text")

    def score_checked(
        self, sentences: Sequence[Sequence[str]], class_ids: Sequence[int | None]
    ) -> list[Score]:
        """log P of sentences that passed :meth:`check_scorable`, each under its own class
        (ids from :meth:`class_id`; all None for a plain model), as one padded batch: texts
        scored for different callers share each step's ONNX run."""
        if not sentences:
            return []
        class_id = None if class_ids[0] is None else np.asarray(class_ids, dtype=np.int64)
        feats = self.featurizer.encode([list(s) for s in sentences])
        b, t = feats.word_ids.shape
        lengths = feats.lengths + 1  # the <EOS> step
        x_ids = np.concatenate([np.full((b, 1), START), feats.word_ids], axis=1)  # (B, T+1)
        x_glove = np.concatenate([np.zeros((b, 1), np.int64), feats.glove_ids], axis=1)
        vectors = word_vectors(self.inputs.tables, x_ids, x_glove)  # (B, T+1, D)
        y = np.concatenate([feats.word_ids, np.zeros((b, 1), np.int64)], axis=1)  # (B, T+1)
        y[np.arange(b), feats.lengths] = EOS_ID
        state = self._initial_state(class_id, b)
        picked = np.zeros((b, t + 1), dtype=np.float64)
        for step in range(int(lengths.max())):
            logits, state = self._step(vectors[:, step : step + 1], state, class_id)
            picked[:, step] = log_softmax(logits)[np.arange(b), y[:, step]]
        out = []
        for i, tokens in enumerate(sentences):
            logps = picked[i, : lengths[i]].tolist()
            names = [*tokens, EOS]
            out.append(
                Score(
                    log_prob=float(sum(logps)),
                    tokens=[TokenScore(n, lp) for n, lp in zip(names, logps, strict=True)],
                )
            )
        return out

    # ------------------------------------------------------------------------ sampling

    def generate(
        self,
        n: int = 1,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float = 1.0,
        prefix: str = "",
        seed: int | None = None,
        max_length: int | None = None,
        allow_unk: bool = False,
        class_: str | int | None = None,
    ) -> list[str]:
        """Sample ``n`` sequences as one batch; each is ``prefix`` plus up to ``max_length``
        sampled tokens, stopping at <EOS> (which is not part of the text).

        Args:
            n: number of samples (1 to ``MAX_SAMPLES``).
            temperature: logits are divided by it (> 0; small values approach greedy decoding).
            top_k: sample among the k most probable tokens only (1: greedy).
            top_p: nucleus sampling mass, in (0, 1].
            prefix: text the samples start with (fed through the model first).
            seed: seed of ``numpy.random.default_rng``; the same seed gives the same samples.
            max_length: most sampled tokens (default: the bundle's ``max_length``).
            allow_unk: let <unk> be sampled (it is never drawn otherwise).
            class_: the class (name or id) for a conditional model; refused for a plain one.

        Raises:
            GenerationError: a setting out of range, unseen characters in the prefix, a class
                the model does not know.
        """
        samples = self.generate_tokens(
            n,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            prefix=prefix,
            seed=seed,
            max_length=max_length,
            allow_unk=allow_unk,
            class_=class_,
        )
        return [detokenize(self.tokenizer, s) for s in samples]

    def generate_tokens(
        self,
        n: int = 1,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float = 1.0,
        prefix: str = "",
        seed: int | None = None,
        max_length: int | None = None,
        allow_unk: bool = False,
        class_: str | int | None = None,
    ) -> list[list[str]]:
        """:meth:`generate`, returning each sample's tokens (the prefix's included)."""
        request = self.prepare_sample(
            n,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            prefix=prefix,
            seed=seed,
            max_length=max_length,
            allow_unk=allow_unk,
            class_=class_,
        )
        return self.generate_checked([request])[0]

    def prepare_sample(
        self,
        n: int = 1,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float = 1.0,
        prefix: str = "",
        seed: int | None = None,
        max_length: int | None = None,
        allow_unk: bool = False,
        class_: str | int | None = None,
    ) -> SampleRequest:
        """Check a generate request's settings (those of :meth:`generate`) and tokenise its
        prefix, so that a bad request is refused by itself before it shares a batch.

        Raises:
            GenerationError: as :meth:`generate`.
        """
        max_length = self.default_length if max_length is None else max_length
        _check_settings(n, temperature, top_k, top_p, max_length)
        class_id = self.class_id(class_)
        tokens = self.tokenize(prefix)
        self._check_tokens(tokens, "prefix")
        if len(tokens) > MAX_LENGTH:
            raise GenerationError(f"the prefix has over {MAX_LENGTH} tokens", "prefix")
        return SampleRequest(
            n=n,
            prefix=tuple(tokens),
            class_id=class_id,
            seed=seed,
            max_length=max_length,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            allow_unk=allow_unk,
        )

    def generate_checked(self, requests: Sequence[SampleRequest]) -> list[list[list[str]]]:
        """Each request's samples as token lists (its prefix's included), all requests' rows
        sharing each step's run: what :meth:`generate_tokens` returns for each alone.

        Request j has n_j rows, each its prefix's copy. Per step it draws ``rng.random(n_j)``
        from its own ``default_rng(seed)`` (a finished row's number goes unused) until all its
        rows are done, as it would alone; rows are stepped only until they end (<EOS> or the
        request's ``max_length``).
        """
        if not requests:
            return []
        request_class = None  # each request's class id (R,), None for a plain model
        if requests[0].class_id is not None:
            request_class = np.asarray([r.class_id for r in requests], dtype=np.int64)
        logits, state = self._run_prefixes(requests, request_class)  # (R, V), (L, R, S)
        counts = [r.n for r in requests]
        owner = np.repeat(np.arange(len(requests)), counts)  # each row's request (N,)
        starts = np.concatenate([[0], np.cumsum(counts)])  # request j: rows starts[j]:starts[j+1]
        logits, state = logits[owner], state[:, owner]
        class_ids = None if request_class is None else request_class[owner]
        row_max = np.asarray([r.max_length for r in requests])[owner]
        rngs = [np.random.default_rng(r.seed) for r in requests]
        banned = ([START], [START, self.vocab.id(UNK)])
        drawn = np.full((len(owner), int(row_max.max())), EOS_ID, dtype=np.int64)
        live = np.arange(len(owner))  # rows still sampling, ascending: logits, state follow it
        step = 0
        while live.size:
            bounds = np.searchsorted(live, starts)  # request j: live[bounds[j]:bounds[j+1]]
            y = np.empty(live.size, dtype=np.int64)
            for j, r in enumerate(requests):
                lo, hi = bounds[j], bounds[j + 1]
                if lo == hi:
                    continue  # all its samples are done: it draws no more numbers
                u = rngs[j].random(r.n)[live[lo:hi] - starts[j]]
                p = next_token_probs(
                    logits[lo:hi],
                    temperature=r.temperature,
                    top_k=r.top_k,
                    top_p=r.top_p,
                    banned=banned[0] if r.allow_unk else banned[1],
                )
                y[lo:hi] = _draw(p, u)
            drawn[live, step] = y
            step += 1
            going = (y != EOS_ID) & (row_max[live] > step)
            live, y = live[going], y[going]
            if live.size:
                vectors = self.input_table[y][:, None, :]  # (B, 1, D)
                rows_class = None if class_ids is None else class_ids[live]
                logits, state = self._step(vectors, state[:, going], rows_class)
        itos = self.vocab.itos
        out: list[list[list[str]]] = []
        for j, r in enumerate(requests):
            samples = []
            for row in drawn[starts[j] : starts[j + 1]].tolist():
                body = row[: row.index(EOS_ID)] if EOS_ID in row else row
                samples.append([*r.prefix, *(itos[i] for i in body)])
            out.append(samples)
        return out

    def _run_prefixes(
        self, requests: Sequence[SampleRequest], class_ids: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """START and each request's prefix through the model as one padded batch, each row
        with its own class (``class_ids`` (R,), None for a plain model) -> logits (R, V) and
        state (L, R, S) after each row's own last token (a row is stepped only while its
        prefix lasts)."""
        feats = self.featurizer.encode([list(r.prefix) for r in requests])
        r = len(requests)
        x_ids = np.concatenate([np.full((r, 1), START), feats.word_ids], axis=1)  # (R, T+1)
        x_glove = np.concatenate([np.zeros((r, 1), np.int64), feats.glove_ids], axis=1)
        vectors = word_vectors(self.inputs.tables, x_ids, x_glove)  # (R, T+1, D)
        lengths = feats.lengths + 1  # START, then the prefix
        state = self._initial_state(class_ids, r)
        logits, state = self._step(vectors[:, :1], state, class_ids)  # every row has START
        logits, state = np.array(logits), np.array(state)  # own, writable copies
        for step in range(1, int(lengths.max())):
            rows = np.flatnonzero(lengths > step)
            rows_class = None if class_ids is None else class_ids[rows]
            logits[rows], state[:, rows] = self._step(
                vectors[rows, step : step + 1], state[:, rows], rows_class
            )
        return logits, state


class ConditionalLMPredictor(LanguageModelPredictor):
    """The one-to-many model: a class in, a sequence out (task ``conditional_lm``)."""

    task = "conditional_lm"


def _check_settings(
    n: int, temperature: float, top_k: int | None, top_p: float, max_length: int
) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_SAMPLES:
        raise GenerationError(f"n must be an integer from 1 to {MAX_SAMPLES}, got {n!r}", "n")
    if not isinstance(max_length, int) or not 1 <= max_length <= MAX_LENGTH:
        raise GenerationError(
            f"max_length must be an integer from 1 to {MAX_LENGTH}, got {max_length!r}",
            "max_length",
        )
    if not math.isfinite(temperature) or temperature <= 0:
        raise GenerationError(f"temperature must be > 0, got {temperature!r}", "temperature")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise GenerationError(f"top_k must be an integer >= 1, got {top_k!r}", "top_k")
    if not (isinstance(top_p, int | float) and 0 < top_p <= 1):
        raise GenerationError(f"top_p must be in (0, 1], got {top_p!r}", "top_p")


# --------------------------------------------------------------------------------------------
# Export


def export_language_model(
    model: Any,
    out_dir: str | os.PathLike[str],
    *,
    featurizer: Featurizer,
    tokenizer: Tokenizer,
    max_length: int,
    classes: Sequence[str] = (),
    name: str = "language-model",
    version: str = "0.0.0",
    card: Mapping[str, Any] | None = None,
    max_bytes: int | None = MAX_BYTES,
) -> Any:
    """Write a trained ``ner.models.language_model.LanguageModel`` as a bundle (atomically).

    Args:
        model: the model (its training mode is restored afterwards).
        out_dir: the bundle directory to create or replace.
        featurizer: its vocabulary (<pad>, <unk>, <eos> first) and GloVe setting.
        tokenizer: ``"chars"`` or ``"sst2"``: how a text becomes tokens.
        max_length: the default most sampled tokens.
        classes: the class names of a conditional model, in id order (empty: plain LM).
        name, version: the model's identity.
        card: model-card fields (``training_data``, ``metrics``...); the card also says which
            parts are ONNX graphs and which loops run in NumPy.
        max_bytes: refuse a larger bundle (default 10 MB).
    """
    from ner.models.language_model import init_graph, step_graph

    config: LanguageModelConfig = model.config
    classes = list(classes)
    if len(classes) != config.num_classes:
        raise ValueError(f"{len(classes)} classes for num_classes={config.num_classes}")
    if featurizer.words.itos[: EOS_ID + 1] != (PAD, UNK, EOS):
        raise ValueError(f"the vocabulary must start with {PAD}, {UNK}, {EOS}")
    if len(featurizer.words) != config.inputs.vocab_size:
        raise ValueError(
            f"{len(featurizer.words)} tokens for vocab_size={config.inputs.vocab_size}"
        )
    task = "conditional_lm" if classes else "language_model"
    onnx_parts = {
        STEP: "step.onnx: word vectors of x<t> (B, 1, D), state a<t-1> (L, B, S)"
        + (", class_ids (B,)" if classes else "")
        + " -> logits of ŷ<t> (B, V), state a<t>",
    }
    if classes:
        onnx_parts[INIT] = "init.onnx: class_ids (B,) -> initial state a<0> (L, B, S)"
    parts = {
        "onnx": onnx_parts,
        "numpy": "token -> vector lookup (embeddings.npy), softmax, temperature/top-k/top-p "
        "sampling loop and the scoring loop (log P summed over steps, <EOS> included)",
    }
    card = {"architecture": parts, **dict(card or {})}
    with BundleWriter(out_dir, task=task, name=name, version=version, max_bytes=max_bytes) as w:
        table = model.word_table()
        inputs_meta = write_inputs(w, table, featurizer)
        state = model.state_dict()
        w.write_weights({k: v for k, v in state.items() if not k.startswith(WORD_TABLE_PREFIX)})
        input_table = _input_table(table, featurizer)
        w.write_graph(STEP, step_graph(model, input_table), "step.onnx")
        if classes:
            w.write_graph(INIT, init_graph(model), "init.onnx")
        return w.commit(
            model=config.to_dict(),
            meta={
                "tokenizer": tokenizer,
                "eos": EOS,
                "max_length": int(max_length),
                "classes": classes,
                "featurizer": inputs_meta,
            },
            card=card,
        )


def _input_table(table: np.ndarray, featurizer: Featurizer) -> np.ndarray:
    """Each vocabulary entry's input vector as the bundle will give it (float16 table)."""
    from ner.features import WordTables

    glove = None
    if featurizer.use_glove:
        from ner.data.glove import load_glove

        glove = load_glove().vectors
    vocab = featurizer.words
    ids = np.arange(len(vocab), dtype=np.int64)[None, :]
    glove_ids = featurizer.encode([list(vocab.itos)]).glove_ids
    glove_ids[0, : EOS_ID + 1] = 0
    return word_vectors(WordTables(np.asarray(table, dtype=np.float16), glove), ids, glove_ids)[0]
