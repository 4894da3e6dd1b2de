"""``ner classify``: classify raw texts with a ``classify`` bundle, and ``ner eval`` for one.

    ner classify --model models/sst2-en "A warm, funny and moving film."
    printf 'dull\\nlovely\\n' | ner classify          # one text per stdin line

prints one JSON object per text, as POST /v1/classify answers a text:
``{"label": ..., "probabilities": {label: p, ...}}`` (temperature-calibrated). Each text is
tokenised by the model's tokenizer (``ner.classify.tokenize``: lower-case, PTB-style).

``ner eval --model DIR --data FILE`` on a classifier (dispatched here by :func:`evaluate`) scores a
``sentence<TAB>label`` file (sentences already tokenised, as in SST-2): accuracy, per-class
precision/recall/F1, and the expected calibration error of the calibrated probabilities.
File labels are mapped to class names by the model card's ``training_data.label_map`` when it
has one (SST-2: 0 -> negative, 1 -> positive); otherwise they must be class names.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ner.settings import REPO_ROOT

DEFAULT_CLASSIFIER = REPO_ROOT / "models" / "sst2-en"
_CHUNK = 256  # stdin texts per batch


def register(sub: Any) -> None:
    from ner.cli import model_args

    p = sub.add_parser(
        "classify",
        help="classify raw texts (task classify); print JSON lines",
        description="Classify TEXT, or each line of stdin as one text; print one JSON object "
        '({"label", "probabilities"}) per text, as POST /v1/classify does. Texts are '
        "lower-cased and tokenised by the model's tokenizer.",
    )
    model_args(p)
    p.add_argument("text", nargs="?", help="the text to classify (default: one per stdin line)")
    p.set_defaults(run=_cmd_classify)


def _load(ns: argparse.Namespace) -> Any:
    from ner.cli import load_predictor

    return load_predictor(ns, "classify", DEFAULT_CLASSIFIER)


def _stdin_lines() -> Iterator[str]:
    for line in sys.stdin:
        yield line.rstrip("\r\n")


def _cmd_classify(ns: argparse.Namespace) -> int:
    classifier = _load(ns)
    texts: Iterable[str] = [ns.text] if ns.text is not None else _stdin_lines()
    chunk: list[str] = []
    for text in texts:
        chunk.append(text)
        if len(chunk) >= _CHUNK:
            _print(classifier, chunk, ns.batch_size)
            chunk = []
    if chunk:
        _print(classifier, chunk, ns.batch_size)
    return 0


def _print(classifier: Any, texts: list[str], batch_size: int) -> None:
    results = classifier.classify([classifier.tokenize(t) for t in texts], batch_size)
    out = sys.stdout
    for r in results:
        out.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
    out.flush()


# --------------------------------------------------------------------------------------------
# ner eval on a classifier


def is_classifier(model: Path | None) -> bool:
    """Whether ``model`` (``None``: not given) names a bundle of task ``classify``; ``False``
    when it cannot tell (``ner eval``'s own checks then report the problem)."""
    if model is None:
        return False
    try:
        config = json.loads((Path(model) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("task") == "classify"


def evaluate(ns: argparse.Namespace) -> int:
    """``ner eval`` for a classifier: print the scores and write them as JSON."""
    from ner.classify import expected_calibration_error, read_labelled, scores
    from ner.cli import CliError, _check_output_dir, _write_text_atomic, default_eval_json

    if not ns.data.is_file():
        raise CliError(
            f"{ns.data}: no such file" if not ns.data.exists() else f"{ns.data}: not a file"
        )
    try:
        rows = read_labelled(ns.data)
    except ValueError as e:
        raise CliError(str(e)) from None
    if not rows:
        raise CliError(f"{ns.data}: no sentences to evaluate")
    out = ns.json if ns.json is not None else default_eval_json(ns.model, ns.data)
    _check_output_dir(out)
    classifier = _load(ns)
    label_map = (classifier.card.get("training_data") or {}).get("label_map") or {}
    labels = list(classifier.labels)
    gold = []
    for r in rows:
        name = label_map.get(r.label, r.label)
        if name not in labels:
            known = sorted(label_map) + labels if label_map else labels
            raise CliError(f"{ns.data}:{r.line}: label {r.label!r} is not one of {known}")
        gold.append(name)
    probs = classifier.probabilities([list(r.tokens) for r in rows], ns.batch_size)
    predicted = [labels[i] for i in probs.argmax(-1)]
    report = scores(gold, predicted, labels)
    gold_ids = [labels.index(g) for g in gold]
    result = {
        "model": {"name": classifier.name, "version": classifier.version, "path": str(ns.model)},
        "task": "classify",
        "data": str(ns.data),
        "backend": ns.backend,
        "sentences": len(rows),
        **report,
        "ece": expected_calibration_error(probs, gold_ids),
        "temperature": classifier.temperature,
    }
    print(format_report(result))
    _write_text_atomic(out, json.dumps(result, indent=2) + "\n")
    print(f"ner: wrote the scores to {out}", file=sys.stderr)
    return 0


def format_report(result: dict[str, Any]) -> str:
    """A text table of a classifier's evaluation result."""
    lines = [
        f"model {result['model']['name']} {result['model']['version']} on {result['data']} "
        f"({result['sentences']} sentences, backend {result['backend']})",
        f"accuracy: {100 * result['accuracy']:.2f}%  macro F1: {100 * result['macro_f1']:.2f}  "
        f"ECE: {100 * result['ece']:.2f}% (temperature {result['temperature']:.3f})",
        f"{'class':<12} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}",
    ]
    for name, c in result["per_class"].items():
        lines.append(
            f"{name:<12} {100 * c['precision']:>9.2f} {100 * c['recall']:>9.2f} "
            f"{100 * c['f1']:>9.2f} {c['support']:>8}"
        )
    return "\n".join(lines)
