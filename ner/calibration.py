"""Honest entity confidences: temperature scaling of the CRF, ECE and reliability diagrams.

An entity's score is the CRF probability of its tags (``ner.decode``, span score). A network
trained to maximise the likelihood of the training set is usually overconfident on new text, so
the scores are rescaled by one temperature ``T`` fitted on dev (Guo et al. 2017, applied to the
whole linear-chain CRF)::

    P_T(y | x) ∝ exp(score(x, y) / T)     (emissions, transitions, start and end divided by T)

``T > 1`` flattens the distribution, ``T < 1`` sharpens it and ``T == 1`` changes nothing.
Dividing every score by the same ``T > 0`` keeps the ordering of all tag sequences, so the Viterbi
labels never change; only the token marginals and the span scores do. Disallowed transitions
(``ner.decode.DISALLOWED``) stay disallowed.

An entity counts as *correct* when a gold entity has exactly its token span and its type. The
expected calibration error (ECE) over ``B`` equal-width score bins is::

    ECE = sum_b (n_b / N) * |accuracy_b - mean score_b|

The temperature lives in the bundle's ``config.json`` as ``meta.calibration.temperature``; the
tagger (``ner.predict.Predictor``) applies it on every backend, because decoding is NumPy code
shared by all backends. :class:`CalibrationSet` runs the network once over a labelled set and then
rescores its entities at any temperature in NumPy, which is what :func:`fit_temperature` needs.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike

from ner.data.schemes import spans_from_tags
from ner.decode import DISALLOWED, Scheme, Transitions, decode_batch, viterbi

__all__ = [
    "BINS",
    "CalibrationSet",
    "EntityOutcomes",
    "Reliability",
    "ReliabilityBin",
    "expected_calibration_error",
    "fit_temperature",
    "plot_reliability",
    "read_temperature",
    "reliability",
    "rewrite_bundle",
    "scale_emissions",
    "scale_transitions",
]

BINS = 10
"""Equal-width score bins of the reliability table and the ECE."""
T_BOUNDS = (0.25, 8.0)
"""Search interval of :func:`fit_temperature`."""
_EPS = 1e-12


# --------------------------------------------------------------------------------------------
# Temperature scaling


def scale_transitions(trans: Transitions, temperature: float) -> Transitions:
    """``trans`` with every allowed score divided by ``temperature`` (disallowed ones kept)."""
    t = _check_temperature(temperature)
    if t == 1.0:
        return trans

    def scaled(scores: np.ndarray) -> np.ndarray:
        return np.where(scores > DISALLOWED / 2, scores / t, scores)

    return Transitions(scaled(trans.transitions), scaled(trans.start), scaled(trans.end))


def scale_emissions(emissions: np.ndarray, temperature: float) -> np.ndarray:
    """Emissions ``(B, T, K)`` divided by ``temperature`` (the same array when it is 1)."""
    t = _check_temperature(temperature)
    return emissions if t == 1.0 else emissions / t


def read_temperature(meta: Mapping[str, Any], path: Any) -> float:
    """``meta.calibration.temperature`` of a bundle, 1.0 when the bundle has no calibration.

    Raises:
        ner.bundle.BundleError: the calibration entry is malformed or the temperature not > 0.
    """
    from ner.bundle import BundleError

    calibration = meta.get("calibration")
    if calibration is None:
        return 1.0
    if not isinstance(calibration, Mapping):
        raise BundleError(path, "'calibration' must be an object")
    value = calibration.get("temperature", 1.0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BundleError(path, f"calibration.temperature must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise BundleError(path, f"calibration.temperature must be > 0, got {value}")
    return float(value)


def _check_temperature(temperature: float) -> float:
    t = float(temperature)
    if not math.isfinite(t) or t <= 0:
        raise ValueError(f"the temperature must be finite and > 0, got {temperature}")
    return t


# --------------------------------------------------------------------------------------------
# Reliability


@dataclass(frozen=True)
class ReliabilityBin:
    """Entities whose score lies in ``[lo, hi)`` (the last bin includes 1.0)."""

    lo: float
    hi: float
    count: int
    mean_score: float
    accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "lo": self.lo,
            "hi": self.hi,
            "count": self.count,
            "mean_score": self.mean_score,
            "accuracy": self.accuracy,
        }


@dataclass(frozen=True)
class Reliability:
    """The reliability table of a set of scored entities, and its ECE."""

    bins: tuple[ReliabilityBin, ...]
    ece: float
    count: int
    mean_score: float
    accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "ece": self.ece,
            "entities": self.count,
            "mean_score": self.mean_score,
            "accuracy": self.accuracy,
            "bins": [b.to_dict() for b in self.bins],
        }

    def format(self) -> str:
        """The table as aligned text (empty bins shown with dashes)."""
        lines = [f"{'score bin':>13} {'entities':>9} {'mean score':>11} {'correct':>8} {'gap':>7}"]
        for b in self.bins:
            head = f"[{b.lo:.1f}, {b.hi:.1f}{']' if b.hi >= 1.0 else ')'}"
            if b.count:
                gap = b.accuracy - b.mean_score
                lines.append(
                    f"{head:>13} {b.count:>9} {b.mean_score:>11.3f} {b.accuracy:>8.3f} {gap:>+7.3f}"
                )
            else:
                lines.append(f"{head:>13} {0:>9} {'-':>11} {'-':>8} {'-':>7}")
        lines.append(
            f"{'all':>13} {self.count:>9} {self.mean_score:>11.3f} {self.accuracy:>8.3f}"
            f"   ECE {self.ece:.4f}"
        )
        return "\n".join(lines)


def _bin_ids(scores: np.ndarray, bins: int) -> np.ndarray:
    return np.clip((scores * bins).astype(np.int64), 0, bins - 1)


def reliability(scores: ArrayLike, correct: ArrayLike, bins: int = BINS) -> Reliability:
    """Reliability table over ``bins`` equal-width bins of ``[0, 1]``, and the ECE.

    Args:
        scores: ``(N,)`` confidences in ``[0, 1]``.
        correct: ``(N,)`` whether each scored item is right.
        bins: the number of bins.
    """
    s = np.asarray(scores, dtype=np.float64)
    c = np.asarray(correct, dtype=bool)
    if s.shape != c.shape or s.ndim != 1:
        raise ValueError(f"scores {s.shape} and correct {c.shape} must be two (N,) arrays")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    if s.size and (s.min() < 0 or s.max() > 1 or not np.isfinite(s).all()):
        raise ValueError("scores must lie in [0, 1]")
    which = _bin_ids(s, bins)
    rows = []
    ece = 0.0
    for b in range(bins):
        sel = which == b
        n = int(sel.sum())
        mean = float(s[sel].mean()) if n else 0.0
        acc = float(c[sel].mean()) if n else 0.0
        if n:
            ece += n / s.size * abs(acc - mean)
        rows.append(ReliabilityBin(b / bins, (b + 1) / bins, n, mean, acc))
    return Reliability(
        bins=tuple(rows),
        ece=float(ece),
        count=int(s.size),
        mean_score=float(s.mean()) if s.size else 0.0,
        accuracy=float(c.mean()) if c.size else 0.0,
    )


def expected_calibration_error(scores: ArrayLike, correct: ArrayLike, bins: int = BINS) -> float:
    """ECE of ``scores`` against ``correct`` over ``bins`` equal-width bins (0 for no items)."""
    return reliability(scores, correct, bins).ece


def binary_nll(scores: ArrayLike, correct: ArrayLike) -> float:
    """Mean negative log-likelihood of ``correct`` under the scores (clipped away from 0 and 1)."""
    s = np.clip(np.asarray(scores, dtype=np.float64), _EPS, 1 - _EPS)
    c = np.asarray(correct, dtype=bool)
    return float(-np.mean(np.where(c, np.log(s), np.log1p(-s)))) if s.size else 0.0


def plot_reliability(
    curves: Mapping[str, Reliability], path: str | os.PathLike[str], title: str = ""
) -> Path:
    """Reliability diagram (accuracy against mean score per bin, with the diagonal) as a PNG.

    Args:
        curves: one reliability table per legend entry (e.g. ``{"T = 1": ..., "T = 1.4": ...}``).
        path: the PNG to write.
        title: the figure title.

    Needs matplotlib (a training/dev dependency), imported here only.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, hist) = plt.subplots(
        2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    width = 1.0 / max(len(curves), 1)
    for i, (name, rel) in enumerate(curves.items()):
        used = [b for b in rel.bins if b.count]
        ax.plot(
            [b.mean_score for b in used],
            [b.accuracy for b in used],
            marker="o",
            label=f"{name} (ECE {rel.ece:.3f})",
        )
        n = len(rel.bins)
        lefts = [b.lo + i * width / n for b in rel.bins]
        hist.bar(lefts, [b.count for b in rel.bins], width=width / n, align="edge", label=name)
    ax.set_ylabel("fraction correct (exact span and type)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    ax.set_title(title or "Entity reliability")
    hist.set_yscale("log")
    hist.set_xlabel("entity score")
    hist.set_ylabel("entities")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


# --------------------------------------------------------------------------------------------
# Scored entities of a labelled set


@dataclass(frozen=True)
class EntityOutcomes:
    """The predicted entities of a labelled set: score, correctness and type of each."""

    scores: np.ndarray
    correct: np.ndarray
    labels: tuple[str, ...]

    def reliability(self, bins: int = BINS) -> Reliability:
        return reliability(self.scores, self.correct, bins)

    def per_type(self, bins: int = BINS) -> dict[str, Reliability]:
        """One reliability table per entity type."""
        types = np.asarray(self.labels, dtype=object)
        return {
            name: reliability(self.scores[types == name], self.correct[types == name], bins)
            for name in sorted(set(self.labels))
        }

    def nll(self) -> float:
        return binary_nll(self.scores, self.correct)


@dataclass(frozen=True)
class _Batch:
    emissions: np.ndarray  # (B, T, K) float32, unscaled
    lengths: np.ndarray  # (B,)
    entities: tuple[tuple[int, int, int, str, bool], ...]  # (row, start, end, type, correct)


class CalibrationSet:
    """A labelled set run once through a tagger, rescored at any temperature in NumPy.

    The entities are the Viterbi entities of the tagger (which no temperature changes); each is
    marked correct when a gold entity has the same token span and type.

    Args:
        predictor: a ``ner.predict.Predictor`` (its stored temperature is not used here).
        sentences: tokenised sentences.
        gold: the gold tags of each sentence.
        gold_scheme: the scheme of ``gold`` (``"iob1"``, ``"iob2"`` or ``"bioes"``).
        batch_size: sentences per forward pass.
        progress: called with the number of sentences done after each batch.
    """

    def __init__(
        self,
        predictor: Any,
        sentences: Sequence[Sequence[str]],
        gold: Sequence[Sequence[str]],
        gold_scheme: str,
        *,
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        if len(sentences) != len(gold):
            raise ValueError(f"{len(sentences)} sentences but {len(gold)} gold tag lists")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.transitions: Transitions = predictor.transitions
        labels, scheme = predictor.labels, cast(Scheme, predictor.tag_scheme)
        gold_in = cast(Scheme, gold_scheme)
        order = sorted(
            (i for i, s in enumerate(sentences) if len(s)), key=lambda i: len(sentences[i])
        )
        batches = []
        for k in range(0, len(order), batch_size):
            ids = order[k : k + batch_size]
            features = predictor.featurizer.encode([list(sentences[i]) for i in ids])
            em = predictor.emissions(features)
            lengths = np.asarray(features.lengths)
            entities = []
            for row, (i, path) in enumerate(
                zip(ids, viterbi(em, lengths, self.transitions), strict=True)
            ):
                if len(gold[i]) != len(sentences[i]):
                    raise ValueError(
                        f"sentence {i}: {len(sentences[i])} tokens, {len(gold[i])} tags"
                    )
                truth = {(s.start, s.end, s.label) for s in spans_from_tags(gold[i], gold_in)}
                tags = [labels[j] for j in path.tolist()]
                for span in spans_from_tags(tags, scheme):
                    hit = (span.start, span.end, span.label) in truth
                    entities.append((row, span.start, span.end, span.label, hit))
            batches.append(_Batch(em, lengths, tuple(entities)))
            if progress is not None:
                progress(len(ids))
        self._batches = tuple(batches)
        self.gold_entities = sum(len(spans_from_tags(g, gold_in)) for g in gold if len(g) > 0)

    def __len__(self) -> int:
        """The number of predicted entities."""
        return sum(len(b.entities) for b in self._batches)

    def outcomes(self, temperature: float = 1.0) -> EntityOutcomes:
        """Every predicted entity scored by the CRF at ``temperature``."""
        trans = scale_transitions(self.transitions, temperature)
        scores, correct, types = [], [], []
        for batch in self._batches:
            if not batch.entities:
                continue
            decoded = decode_batch(
                scale_emissions(batch.emissions, temperature), batch.lengths, trans
            )
            for row, start, end, label, hit in batch.entities:
                scores.append(decoded[row].span_score(start, end))
                correct.append(hit)
                types.append(label)
        return EntityOutcomes(
            np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=bool), tuple(types)
        )


def fit_temperature(
    data: CalibrationSet,
    *,
    objective: str = "nll",
    bounds: tuple[float, float] = T_BOUNDS,
    iterations: int = 30,
) -> float:
    """The temperature that minimises ``objective`` of the entity scores on ``data``.

    A golden-section search over ``log T`` in ``bounds``. ``"nll"`` (default) is the negative
    log-likelihood of "the entity is correct" under its score: smooth, and minimal where the
    scores are calibrated on average. ``"ece"`` minimises the binned ECE itself (piecewise
    constant in T, so the search only finds a good point, not the best one).

    Args:
        data: the scored dev set.
        objective: ``"nll"`` or ``"ece"``.
        bounds: the interval ``(lo, hi)`` of temperatures searched, ``0 < lo < hi``.
        iterations: golden-section steps (30 shrink the interval of log T by 1e-6).
    """
    if objective not in ("nll", "ece"):
        raise ValueError(f"objective must be 'nll' or 'ece', got {objective!r}")
    lo, hi = (math.log(_check_temperature(b)) for b in bounds)
    if not lo < hi:
        raise ValueError(f"bounds must satisfy lo < hi, got {bounds}")
    if not len(data):
        return 1.0

    def loss(log_t: float) -> float:
        out = data.outcomes(math.exp(log_t))
        return out.nll() if objective == "nll" else out.reliability().ece

    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(iterations):
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = loss(b)
    return math.exp((lo + hi) / 2)


# --------------------------------------------------------------------------------------------
# Storing a calibration in a bundle


def file_record(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{"name": file name, "sha256": ...}`` of a data file (no machine-specific path)."""
    p = Path(path)
    digest = hashlib.sha256()
    with p.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return {"name": p.name, "sha256": digest.hexdigest()}


def rewrite_bundle(
    path: str | os.PathLike[str],
    *,
    meta: Mapping[str, Any] | None = None,
    card: Mapping[str, Any] | None = None,
    out: str | os.PathLike[str] | None = None,
) -> Path:
    """Rewrite a bundle with some ``meta`` and model-card entries replaced, atomically.

    Every other file is copied byte for byte (no torch needed); config.json gets the new
    checksums. The card keeps its creation time and versions.

    Args:
        path: the bundle to read.
        meta: top-level ``meta`` entries to set (e.g. ``{"calibration": {...}}``).
        card: top-level model-card entries to set.
        out: where to write (default: ``path``, in place).
    """
    from ner.bundle import CARD, CONFIG, BundleWriter, open_bundle

    bundle = open_bundle(path)
    cfg = bundle.config
    new_card = {
        k: v
        for k, v in bundle.card.items()
        if k not in ("format_version", "task", "name", "version", "config")
    }
    new_card.update(card or {})
    new_meta = {**bundle.meta, **(meta or {})}
    with BundleWriter(
        out or bundle.path,
        task=bundle.task,
        name=bundle.name,
        version=bundle.version,
        max_bytes=None,
    ) as w:
        for filename in cfg["files"]:
            if filename not in (CONFIG, CARD):
                w.copy_file(bundle.path / filename, filename)
        for key, filename in cfg.get("vocabs", {}).items():
            w.add_vocab_file(key, filename)
        for key, filename in cfg.get("arrays", {}).items():
            w.add_array_file(key, filename)
        for key, graph in cfg.get("graphs", {}).items():
            w.add_graph_file(key, graph["file"], graph["inputs"], graph["outputs"])
        if cfg.get("glove"):
            w.use_glove(cfg["glove"])
        # BundleWriter has no public "add an existing weights file" method; the file was
        # copied above, only its name is recorded here.
        w._weights = cfg.get("weights")
        return w.commit(model=bundle.model_config, meta=new_meta, card=new_card)
