"""Classify sentences with a loaded bundle of task ``classify`` (many-to-one).

``Classifier.classify`` takes sentences already tokenised (lists of words), sorts them by length,
batches them, runs the bundle's ``logits`` graph (ONNX Runtime or torch) and turns the logits into
probabilities in NumPy: ``softmax(logits / T)`` with the temperature ``T`` fitted on dev
(temperature scaling, Guo et al. 2017) and stored in the bundle's ``meta.calibration``, so both
backends give the same calibrated probabilities.

:func:`tokenize` turns raw text into the tokens the SST-2 data uses (lower-cased, PTB-style).
The module also holds the task's data format (``sentence<TAB>label`` files, :func:`read_labelled`),
its metrics (:func:`scores`: accuracy, per-class precision/recall/F1, expected calibration error),
the temperature fit (:func:`fit_temperature`) and the export (:func:`export_classifier`). Nothing
here imports torch except the torch backend and the export.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ner.bundle import Bundle, BundleError, BundleWriter, Graph, require
from ner.decode import log_softmax
from ner.features import Featurizer, WordTables
from ner.models.config import ClassifierConfig
from ner.tasks.base import TaskPredictor
from ner.tasks.inputs import (
    WORD_TABLE_PREFIX,
    InputParts,
    member_key,
    read_inputs,
    read_table,
    write_inputs,
    write_table,
)

__all__ = [
    "ClassResult",
    "Classifier",
    "DevScores",
    "LabelledSentence",
    "expected_calibration_error",
    "ensemble_logits",
    "export_classifier",
    "fit_temperature",
    "read_labelled",
    "score_logits",
    "scores",
    "softmax",
    "tokenize",
]

LOGITS = "logits"
ENSEMBLE = "ensemble"
"""``meta.ensemble``: the number of members of an ensemble bundle (absent: one model)."""

# ------------------------------------------------------------------------------------------------
# Tokenisation

_CLITICS = ("'s", "'re", "'ve", "'ll", "'d", "'m")
_KEEP_APOSTROPHE = frozenset({"'em", "'til", "'n", "'n'", "'tis", "ol'", "o'", "'cause"})
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u00b4": "'"})
_OPEN_BRACKETS, _CLOSE_BRACKETS = "([{", ")]}"
_DROPPED = re.compile(r"[^a-z0-9,'`?!\s]")
_COMMA = re.compile(r"(?<!\d),|,(?!\d)")  # a comma, unless inside a number (2,500)
_MARKS = re.compile(r"([?!]+)")
_DOUBLE_QUOTE = re.compile(r'(^|(?<=[\s([{]))"')


def _fold(text: str) -> str:
    """Lower-case ASCII: accents dropped (joffé -> joffe), typographic quotes made plain."""
    text = unicodedata.normalize("NFKD", text.translate(_QUOTES))
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


def _split_word(word: str) -> list[str]:
    """One whitespace-free chunk (commas, ? and ! already split off) -> PTB tokens."""
    if word in ("``", "''", "`", "'"):
        return [word]
    head: list[str] = []
    tail: list[str] = []
    while word.startswith(("``", "`")):
        n = 2 if word.startswith("``") else 1
        head.append(word[:n])
        word = word[n:]
    while word.endswith("''") and len(word) > 2 and word not in _KEEP_APOSTROPHE:
        tail.insert(0, "''")
        word = word[:-2]
    if (
        word.startswith("'")
        and len(word) > 1
        and word not in _KEEP_APOSTROPHE
        and word not in _CLITICS
        and not re.fullmatch(r"'\d+s?", word)  # '70s stays one word
    ):
        head.append("`")  # an opening single quote, written ` in the data
        word = word[1:]
    if word.endswith("'") and len(word) > 1 and word not in _KEEP_APOSTROPHE:
        tail.insert(0, "'")  # a closing quote or a plural possessive (the irwins ' scenes)
        word = word[:-1]
    body: list[str] = [word] if word else []
    if word == "cannot":
        body = ["can", "not"]
    elif word.endswith("n't") and len(word) > 3:
        body = [word[:-3], "n't"]  # wo n't, ca n't, does n't
    else:
        for clitic in _CLITICS:
            if word.endswith(clitic) and len(word) > len(clitic):
                body = [word[: -len(clitic)], clitic]
                break
    return head + body + tail


def tokenize(text: str) -> list[str]:
    """Raw text -> the tokens of the SST-2 data: lower-cased, PTB-style.

    - Lower-case, accents dropped (``Joffé`` -> ``joffe``).
    - Clitics split: ``won't`` -> ``wo n't``, ``can't`` -> ``ca n't``, ``it's`` -> ``it 's``
      (also ``'re 've 'll 'd 'm``); ``cannot`` -> ``can not``.
    - Commas, ``?`` and ``!`` split off (a run such as ``?!`` stays one token; a comma inside a
      number stays: ``2,500``).
    - Double quotes become ````` ``/``''``, an opening single quote `````, a closing one ``'``;
      ``'70s``, ``'em`` and ``'til`` stay whole.
    - Parentheses (and brackets) become the words ``lrb``/``rrb``.
    - Every other character (``. : ; - / & $ %``...) becomes a space, as in the data, where
      hyphens became spaces (``re imagining``) and periods are gone.
    """
    text = _DOUBLE_QUOTE.sub(" `` ", _fold(text)).replace('"', " '' ")
    for ch in _OPEN_BRACKETS:
        text = text.replace(ch, " lrb ")
    for ch in _CLOSE_BRACKETS:
        text = text.replace(ch, " rrb ")
    text = _MARKS.sub(r" \1 ", _COMMA.sub(" , ", _DROPPED.sub(" ", text)))
    return [token for chunk in text.split() for token in _split_word(chunk)]


# ------------------------------------------------------------------------------------------------
# Data and metrics


@dataclass(frozen=True)
class LabelledSentence:
    """One line of a ``sentence<TAB>label`` file."""

    tokens: tuple[str, ...]
    label: str
    line: int


def read_labelled(path: str | os.PathLike[str]) -> list[LabelledSentence]:
    """A ``sentence<TAB>label`` file (SST-2's format): space-tokenised sentence, label string.

    Blank lines are skipped; the last line may lack its newline.

    Raises:
        ValueError: ``path:line: reason`` for a line without exactly one tab, an empty sentence
            or an empty label, or a file that is not UTF-8.
        OSError: the file cannot be read.
    """
    path = Path(path)
    out = []
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise ValueError(f"{path}:{n}: not UTF-8 text") from None
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise ValueError(
                    f"{path}:{n}: expected 'sentence<TAB>label', found {len(parts) - 1} tabs"
                )
            tokens, label = tuple(parts[0].split()), parts[1].strip()
            if not tokens:
                raise ValueError(f"{path}:{n}: empty sentence")
            if not label:
                raise ValueError(f"{path}:{n}: empty label")
            out.append(LabelledSentence(tokens, label, n))
    return out


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """logits (N, K) -> probabilities (N, K) of ``softmax(logits / temperature)``, float64."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def ensemble_logits(member_logits: Sequence[np.ndarray]) -> np.ndarray:
    """Members' logits, each (N, K) -> the ensemble's (N, K) float64: the mean of their
    log-probabilities (the log of their geometric mean, up to a constant per row)."""
    return np.mean([log_softmax(m) for m in member_logits], axis=0)


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = np.asarray(logits, dtype=np.float64) / temperature
    m = z.max(axis=-1, keepdims=True)
    log_z = (m + np.log(np.exp(z - m).sum(axis=-1, keepdims=True)))[:, 0]
    return float(np.mean(log_z - z[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T > 0 minimising the mean NLL of ``softmax(logits / T)`` (Guo et al.
    2017): a golden-section search over log T in [1/20, 20] (the NLL is convex in 1/T).

    Args:
        logits: (N, K) dev-set logits.
        labels: (N,) gold class ids.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if logits.ndim != 2 or len(logits) != len(labels) or not len(labels):
        raise ValueError("fit_temperature needs (N, K) logits and N labels, N > 0")
    lo, hi = math.log(1 / 20), math.log(20.0)
    g = (math.sqrt(5) - 1) / 2
    for _ in range(80):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if _nll(logits, labels, math.exp(a)) <= _nll(logits, labels, math.exp(b)):
            hi = b
        else:
            lo = a
    return math.exp((lo + hi) / 2)


def expected_calibration_error(
    probs: np.ndarray, labels: np.ndarray | Sequence[int], bins: int = 15
) -> float:
    """ECE over ``bins`` equal-width confidence bins (Guo et al. 2017): sum over bins of
    |accuracy - mean confidence| weighted by the bin's share of the examples."""
    probs = np.asarray(probs, dtype=np.float64)
    conf = probs.max(axis=-1)
    correct = probs.argmax(axis=-1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def scores(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy and per-class precision, recall and F1 (0 where undefined), plus macro F1.

    Returns:
        ``{"accuracy", "macro_f1", "n", "per_class": {label: {precision, recall, f1,
        support, predicted}}}``.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels for {len(predicted)} predictions")
    per_class = {}
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(gold, predicted, strict=True))
        n_gold = sum(g == label for g in gold)
        n_pred = sum(p == label for p in predicted)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_gold if n_gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": n_gold,
            "predicted": n_pred,
        }
    correct = sum(g == p for g, p in zip(gold, predicted, strict=True))
    return {
        "accuracy": correct / len(gold) if gold else 0.0,
        "macro_f1": float(np.mean([c["f1"] for c in per_class.values()])) if labels else 0.0,
        "n": len(gold),
        "per_class": per_class,
    }


@dataclass(frozen=True)
class DevScores:
    """Logits scored against gold class ids: the :func:`scores` report and the temperature fitted
    on them, with the expected calibration error before and after it."""

    report: dict[str, Any]
    temperature: float
    ece: float
    ece_calibrated: float


def score_logits(logits: np.ndarray, gold: np.ndarray, labels: Sequence[str]) -> DevScores:
    """Score (N, K) logits against (N,) gold class ids and fit their temperature (dev sets)."""
    predicted = [labels[i] for i in np.asarray(logits).argmax(-1)]
    temperature = fit_temperature(logits, gold)
    return DevScores(
        report=scores([labels[i] for i in gold], predicted, labels),
        temperature=temperature,
        ece=expected_calibration_error(softmax(logits), gold),
        ece_calibrated=expected_calibration_error(softmax(logits, temperature), gold),
    )


# ------------------------------------------------------------------------------------------------
# Prediction


@dataclass(frozen=True)
class ClassResult:
    """One sentence's class: the most probable label and every label's calibrated probability."""

    label: str
    probabilities: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "probabilities": dict(self.probabilities)}


class Classifier(TaskPredictor):
    """Batched many-to-one classification over a loaded bundle of task ``classify``.

    Args:
        bundle: the opened bundle (``ner.tasks.load`` attaches its runtime).
    """

    task = "classify"

    def __init__(self, bundle: Bundle) -> None:
        super().__init__(bundle)
        cfg_path = bundle.config_path
        try:
            self.config = ClassifierConfig.from_dict(bundle.model_config)
        except (TypeError, ValueError) as e:
            raise BundleError(cfg_path, f"bad classifier config ({e})") from None
        labels = require(bundle.meta, "labels", cfg_path, list)
        if len(labels) != self.config.num_classes or not all(isinstance(x, str) for x in labels):
            raise BundleError(
                cfg_path, f"'labels' must be {self.config.num_classes} strings, got {labels!r}"
            )
        if len(set(labels)) != len(labels):
            raise BundleError(cfg_path, f"duplicate labels in {labels!r}")
        calibration = bundle.meta.get("calibration", {"temperature": 1.0})
        temperature = require(calibration, "temperature", cfg_path, (int, float))
        if not math.isfinite(temperature) or temperature <= 0:
            raise BundleError(cfg_path, f"calibration.temperature must be > 0, got {temperature}")
        members = bundle.meta.get(ENSEMBLE, 1)
        if not isinstance(members, int) or isinstance(members, bool) or members < 1:
            raise BundleError(cfg_path, f"'{ENSEMBLE}' must be a positive integer, got {members!r}")
        for i in range(members):
            if member_key(LOGITS, i) not in bundle.config["graphs"]:
                raise BundleError(cfg_path, f"no graph {member_key(LOGITS, i)!r} in 'graphs'")
        self.labels: tuple[str, ...] = tuple(labels)
        self.temperature = float(temperature)
        self.inputs = read_inputs(bundle, self.config.inputs)
        self.members: tuple[InputParts, ...] = (
            self.inputs,
            *(
                self.inputs.with_table(read_table(bundle, self.config.inputs, i))
                for i in range(1, members)
            ),
        )

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], backend: Any = "onnx", **kwargs: Any) -> Any:
        """Load the classifier bundle at ``path`` (see :func:`ner.tasks.load`)."""
        return super().from_path(path, backend, **kwargs)

    def torch_graphs(self) -> Mapping[str, Graph]:
        from ner.models.classifier import Classifier as Model
        from ner.models.classifier import logits_graph

        graphs = {}
        for i, inputs in enumerate(self.members):
            model = Model(self.config, inputs.tables.glove)
            prefix = f"{i}." if len(self.members) > 1 else ""
            self.bundle.load_torch_model(model, optional=[WORD_TABLE_PREFIX], prefix=prefix)
            graphs[member_key(LOGITS, i)] = logits_graph(model, inputs.tables)
        return graphs

    @property
    def featurizer(self) -> Featurizer:
        return self.inputs.featurizer

    @staticmethod
    def tokenize(text: str) -> list[str]:
        """Raw text -> tokens as the model was trained on them (see :func:`tokenize`)."""
        return tokenize(text)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "labels": list(self.labels),
            "temperature": self.temperature,
            "ensemble": len(self.members),
        }

    def warmup(self) -> None:
        self.classify([self.tokenize("A warm, funny and moving film."), ["dull"]])

    def logits(self, items: Sequence[Sequence[str]], batch_size: int = 64) -> np.ndarray:
        """Tokenised sentences -> uncalibrated logits (N, K) float32, in input order.

        For an ensemble bundle these are the members' mean log-probabilities (the log of their
        geometric mean, up to a constant), which the temperature then calibrates."""
        if isinstance(items, str):
            raise TypeError("classify() takes a list of tokenised sentences, not a str")
        for item in items:
            if isinstance(item, str) or not all(isinstance(w, str) for w in item):
                raise TypeError("each item must be a list of str (a tokenised sentence)")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = np.zeros((len(items), len(self.labels)), dtype=np.float32)
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        for k in range(0, len(order), batch_size):
            batch = order[k : k + batch_size]
            features = self.featurizer.encode([list(items[i]) for i in batch])
            if len(self.members) == 1:
                out[batch] = self.bundle.run(LOGITS, self.inputs.arrays(features))[LOGITS]
                continue
            out[batch] = ensemble_logits(
                [
                    self.bundle.run(member_key(LOGITS, i), inputs.arrays(features))[LOGITS]
                    for i, inputs in enumerate(self.members)
                ]
            )
        return out

    def probabilities(self, items: Sequence[Sequence[str]], batch_size: int = 64) -> np.ndarray:
        """Tokenised sentences -> calibrated probabilities (N, K) float64."""
        return softmax(self.logits(items, batch_size), self.temperature)

    def classify(self, items: Sequence[Sequence[str]], batch_size: int = 64) -> list[ClassResult]:
        """Classify tokenised sentences (see :meth:`tokenize` for raw text).

        An empty sentence is classified from the model's bias alone.

        Raises:
            TypeError: ``items`` is a str, or an item is not a list of str.
            ValueError: ``batch_size`` < 1.
        """
        probs = self.probabilities(items, batch_size)
        labels = self.labels
        results = []
        for row in probs.tolist():
            best = max(range(len(row)), key=row.__getitem__)
            results.append(ClassResult(labels[best], dict(zip(labels, row, strict=True))))
        return results


# ------------------------------------------------------------------------------------------------
# Export


def export_classifier(
    model: Any | Sequence[Any],
    out_dir: str | os.PathLike[str],
    *,
    featurizer: Featurizer,
    labels: Sequence[str],
    temperature: float = 1.0,
    name: str = "classifier",
    version: str = "0.0.0",
    card: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    max_bytes: int | None = None,
) -> Path:
    """Write a trained ``ner.models.classifier.Classifier`` as a bundle of task ``classify``.

    Args:
        model: the classifier (its training mode is restored afterwards), or a list of
            classifiers of one config and one vocabulary trained apart (e.g. seeds): an ensemble
            bundle, one graph and word table per member, whose predictor averages the members'
            log-probabilities (``meta.ensemble``). ``temperature`` is then the ensemble's.
        out_dir: the bundle directory to create or replace (atomically).
        featurizer: the vocabularies and feature settings it was trained with.
        labels: the ``K`` class names in class-id order.
        temperature: the calibration temperature fitted on dev (:func:`fit_temperature`).
        name, version: the model's identity (in config.json and the card).
        card: model-card fields (``training_data``, ``metrics``, ``calibration``...).
        meta: extra task metadata.
        max_bytes: refuse a bundle larger than this (default ``ner.bundle.MAX_BUNDLE_BYTES``).
    """
    from ner.bundle import MAX_BUNDLE_BYTES
    from ner.models.classifier import logits_graph

    models: list[Any] = list(model) if isinstance(model, (list, tuple)) else [model]
    if not models:
        raise ValueError("no model to export")
    config: ClassifierConfig = models[0].config
    if any(m.config != config for m in models[1:]):
        raise ValueError("ensemble members must share one model config")
    labels = list(labels)
    if len(labels) != config.num_classes or len(set(labels)) != len(labels):
        raise ValueError(f"need {config.num_classes} distinct labels, got {labels!r}")
    if len(featurizer.words) != config.inputs.vocab_size:
        raise ValueError(f"{len(featurizer.words)} words for vocab_size={config.inputs.vocab_size}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be > 0, got {temperature}")
    limit = MAX_BUNDLE_BYTES if max_bytes is None else max_bytes
    with BundleWriter(out_dir, task="classify", name=name, version=version, max_bytes=limit) as w:
        tables = [member.word_table() for member in models]
        inputs_meta = write_inputs(w, tables[0], featurizer)
        weights = {}
        for i, (member, table) in enumerate(zip(models, tables, strict=True)):
            if i > 0:
                write_table(w, table, i)
            prefix = f"{i}." if len(models) > 1 else ""
            weights.update(
                {
                    prefix + k: v
                    for k, v in member.state_dict().items()
                    if not k.startswith(WORD_TABLE_PREFIX)
                }
            )
            graph = logits_graph(member, _served_tables(table, featurizer))
            w.write_graph(
                member_key(LOGITS, i), graph, "model.onnx" if i == 0 else f"model.{i}.onnx"
            )
        w.write_weights(weights)
        ensemble = {ENSEMBLE: len(models)} if len(models) > 1 else {}
        return w.commit(
            model=config.to_dict(),
            meta={
                "labels": labels,
                "calibration": {"method": "temperature", "temperature": float(temperature)},
                "featurizer": inputs_meta,
                **ensemble,
                **dict(meta or {}),
            },
            card=card,
        )


def _served_tables(table: np.ndarray, featurizer: Featurizer) -> WordTables:
    """The word tables as the bundle will hold them (float16 table, installed GloVe), so the
    export's ONNX-vs-torch check sees what serving sees."""
    glove = None
    if featurizer.use_glove:
        from ner.data.glove import load_glove

        glove = load_glove().vectors
    return WordTables(np.asarray(table, dtype=np.float16), glove)
