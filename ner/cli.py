"""The library's command line (the part of ``ner`` that needs no training or serving code).

Subcommands::

    ner predict --model DIR --input FILE --output FILE [--backend onnx|torch] [--scheme auto|...]
    ner tag     --model DIR [TEXT] [--backend onnx|torch]        (TEXT, or one document per line)
    ner eval    --model DIR --data FILE [--json OUT]      (JSON default: MODEL.DATA.eval.json)
    ner migrate DIR                                   (upgrade a format-1 bundle in place)
    ... and the commands of the modules in COMMAND_MODULES (one module per task's commands)

``ner train``, ``ner export`` and ``ner serve`` belong to the layers above the library; the entry
point ``ner_cli`` dispatches them before this module is involved.

Imports are lazy so that start-up stays cheap: ``predict``, ``tag`` and ``eval`` on the ONNX
backend never import torch or Lightning. User errors (a missing file, a malformed CoNLL line, a
bad bundle) print one line ``ner: error: ...`` on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ner import __version__
from ner.settings import REPO_ROOT

DEFAULT_MODEL = REPO_ROOT / "models" / "conll2003-en"
COMMAND_MODULES: tuple[str, ...] = (
    "ner.commands.migrate",
    "ner.commands.lab",
    "ner.commands.calibrate",
    "ner.commands.classify",
    "ner.commands.translate",
    "ner.commands.generate",
)
"""Modules under ``ner.commands`` that add subcommands: each has ``register(subparsers)``, which
adds its parsers with ``set_defaults(run=function)``. A task adds its module here."""
_LAYER_HELP = {
    "export": "export a training checkpoint as a bundle (training.export)",
    "train": "train a model with LightningCLI (training.cli)",
    "serve": "serve bundles over HTTP (serving.cli)",
}
_TAG_CHUNK = 256  # stdin documents per prediction batch in `ner tag`


class CliError(Exception):
    """A user error: printed as ``ner: error: <message>``, exit status 2."""


# --------------------------------------------------------------------------------------------
# Entry point


def main(argv: Sequence[str] | None = None, *, layers: Sequence[str] = ()) -> int:
    """Run a library command; returns the exit status. ``layers``: the commands the entry point
    handles itself (listed in ``--help``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(layers)
    ns = parser.parse_args(args)
    if not hasattr(ns, "run"):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(ns.run(ns) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `ner tag ... | head`
        _silence_stdout()
        return 0
    except Exception as e:
        message = _user_error(e)
        if message is None:
            raise
        print(f"ner: error: {message}", file=sys.stderr)
        return 2


def _user_error(e: Exception) -> str | None:
    """The one-line message for a user error, ``None`` for a bug (which keeps its traceback)."""
    from ner.bundle import BundleError
    from ner.data.conll import ConllFormatError

    if isinstance(e, CliError | BundleError | ConllFormatError):
        return str(e)
    if isinstance(e, UnicodeDecodeError):
        return f"input is not valid UTF-8 ({e.reason} at byte {e.start})"
    if isinstance(e, OSError):
        if e.filename is not None and e.strerror:
            return f"{e.filename}: {e.strerror}"
        return str(e)
    return None


def _silence_stdout() -> None:
    # Python flushes stdout at exit; point it at devnull so a closed pipe does not complain again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


# --------------------------------------------------------------------------------------------
# Arguments


def _parser(layers: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ner",
        description="Named-entity recognition with recurrent taggers (BiLSTM/GRU + CRF).",
    )
    parser.add_argument("--version", action="version", version=f"ner {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser(
        "predict",
        help="tag a CoNLL file; write `token gold predicted` (conlleval layout)",
        description="Tag a CoNLL file and write the conlleval layout `token gold predicted` "
        "(`token predicted` when the file has no labels), in the scheme of the gold labels.",
    )
    model_args(p)
    p.add_argument("--input", required=True, type=Path, help="CoNLL file (token first, label last)")
    p.add_argument("--output", required=True, type=Path, help="where to write the result")
    p.add_argument(
        "--scheme",
        choices=("auto", "iob1", "iob2", "bioes", "binary"),
        default="auto",
        help="scheme of the predicted labels; auto: the scheme of the gold labels "
        "(iob2 when they have no entity or the file has no labels)",
    )
    p.set_defaults(run=_cmd_predict)

    p = sub.add_parser(
        "tag",
        help="tag raw text; print JSON lines",
        description="Tag TEXT, or each line of stdin as one document; print one JSON object "
        "({tokens, entities}) per document.",
    )
    model_args(p)
    p.add_argument("text", nargs="?", help="the text to tag (default: one document per stdin line)")
    p.set_defaults(run=_cmd_tag)

    p = sub.add_parser(
        "eval",
        help="score a model on a labelled CoNLL file",
        description="Entity-level micro and per-type precision/recall/F1 (conlleval/seqeval) "
        "and token accuracy on a labelled CoNLL file; prints them and writes the same as JSON.",
    )
    model_args(p)
    p.add_argument("--data", required=True, type=Path, help="labelled CoNLL file")
    p.add_argument(
        "--json",
        type=Path,
        default=None,
        help="where to write the scores as JSON (default: <model dir name>.<data file stem>"
        ".eval.json in the current directory)",
    )
    p.add_argument(
        "--reliability-png",
        type=Path,
        default=None,
        help="also draw the reliability diagram of the entity scores as this PNG "
        "(needs matplotlib)",
    )
    p.set_defaults(run=_cmd_eval)

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    for name in layers:  # handled by the entry point (ner_cli) before this parser runs
        sub.add_parser(name, help=_LAYER_HELP.get(name, ""), add_help=False)
    return parser


def model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        type=Path,
        default=None,
        help="bundle directory (default: models/conll2003-en in the repository, when present)",
    )
    p.add_argument("--backend", choices=("onnx", "torch"), default="onnx", help="emissions backend")
    p.add_argument("--batch-size", type=positive_int, default=64, help="sentences per batch")
    p.add_argument("--threads", type=positive_int, default=None, help="ONNX Runtime threads")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def load_predictor(ns: argparse.Namespace, task: str, default: Path | None = None) -> Any:
    """The predictor of ``--model`` (or of ``default``), which must be a ``task`` model."""
    from ner.tasks import load

    model = ns.model
    if model is None:
        if default is None or not default.is_dir():
            raise CliError(f"no --model given and the default bundle {default} is missing")
        model = default
    return load(model, ns.backend, threads=ns.threads, task=task)


def _predictor(ns: argparse.Namespace) -> Any:
    return load_predictor(ns, "ner", DEFAULT_MODEL)


# --------------------------------------------------------------------------------------------
# Commands


def _cmd_predict(ns: argparse.Namespace) -> int:
    from ner.data.conll import Sentence, write_conll

    if _same_file(ns.output, ns.input):  # before the work: it would overwrite the gold data
        raise CliError(f"{ns.output}: is the --input file; choose another --output")
    items = list(_read_items(ns.input))
    predictor = _predictor(ns)
    sentences = [item for item in items if isinstance(item, Sentence)]
    scheme = ns.scheme
    if scheme == "auto":
        # Gold labels that do not tell (all O, or no label column): IOB2, the common format,
        # whatever scheme the model was trained in.
        scheme = detect_scheme(s.labels for s in sentences if s.labels is not None) or "iob2"
    predicted = iter(predictor.predict_tokens([s.tokens for s in sentences], scheme, ns.batch_size))

    def blocks() -> Iterator[Any]:
        for item in items:
            if not isinstance(item, Sentence):
                yield item
                continue
            pred = next(predicted)
            if item.labels is None:
                yield [[tok, p] for tok, p in zip(item.tokens, pred, strict=True)]
            else:
                yield [list(row) for row in zip(item.tokens, item.labels, pred, strict=True)]

    _check_output_dir(ns.output)
    with _writing(ns.output):
        write_conll(ns.output, blocks())
    print(f"ner: tagged {len(sentences)} sentences ({scheme}) -> {ns.output}", file=sys.stderr)
    return 0


def _cmd_tag(ns: argparse.Namespace) -> int:
    if ns.text is not None and not _is_unicode(ns.text):
        raise CliError("TEXT is not valid UTF-8 (the shell passed undecodable bytes)")
    predictor = _predictor(ns)
    texts: Iterable[str] = [ns.text] if ns.text is not None else _stdin_lines()
    chunk: list[str] = []
    for text in texts:
        chunk.append(text)
        if len(chunk) >= _TAG_CHUNK:
            _print_docs(predictor.predict(chunk, ns.batch_size))
            chunk = []
    if chunk:
        _print_docs(predictor.predict(chunk, ns.batch_size))
    return 0


def _cmd_eval(ns: argparse.Namespace) -> int:
    from ner.commands.classify import evaluate, is_classifier

    if is_classifier(ns.model):  # a classify bundle: accuracy and per-class P/R/F1
        return evaluate(ns)
    from ner.data.conll import Sentence

    sentences = [s for s in _read_items(ns.data, labels=True) if isinstance(s, Sentence)]
    if not sentences:
        raise CliError(f"{ns.data}: no sentences to evaluate")
    from ner.metrics import entity_scores

    out = ns.json if ns.json is not None else default_eval_json(ns.model or DEFAULT_MODEL, ns.data)
    _check_output_dir(out)  # before the work, not after
    gold = [list(s.labels or ()) for s in sentences]
    predictor = _predictor(ns)
    scheme = detect_scheme(gold) or _default_scheme(predictor.tag_scheme)
    pred = predictor.predict_tokens([s.tokens for s in sentences], scheme, ns.batch_size)
    report = entity_scores(gold, pred, scheme=scheme)  # type: ignore[arg-type]
    result = {
        "model": {
            "name": predictor.name,
            "version": predictor.version,
            "path": str(ns.model or DEFAULT_MODEL),
        },
        "data": str(ns.data),
        "scheme": scheme,
        "backend": ns.backend,
        "sentences": len(sentences),
        "tokens": sum(len(s) for s in sentences),
        "micro": _prf(report.micro),
        "per_type": {name: _prf(prf) for name, prf in sorted(report.per_type.items())},
        "token_accuracy": float(report.token_accuracy),
    }
    from ner.commands.calibrate import eval_report

    result["calibration"], table = eval_report(
        predictor,
        [list(s.tokens) for s in sentences],
        gold,
        scheme,
        batch_size=ns.batch_size,
        png=ns.reliability_png,
        title=f"{predictor.name} {predictor.version} on {ns.data.name}",
    )
    print(format_report(result))
    print(table)
    _write_text_atomic(out, json.dumps(result, indent=2) + "\n")
    print(f"ner: wrote the scores to {out}", file=sys.stderr)
    return 0


def default_eval_json(model: Path, data: Path) -> Path:
    """``<model dir name>.<data file stem>.eval.json`` in the current directory."""
    return Path(f"{model.resolve().name}.{data.stem}.eval.json")


# --------------------------------------------------------------------------------------------
# Helpers


def _read_items(path: Path, *, labels: bool | None = None) -> list[Any]:
    """Sentences and DocStarts of a CoNLL file; a one-column file is read without labels."""
    from ner.data.conll import iter_conll

    columns = _count_columns(path)
    has_labels = columns > 1
    if labels and columns == 0:
        raise CliError(f"{path}: no sentences to evaluate")
    if labels and not has_labels:
        raise CliError(f"{path}: the file has no label column to evaluate against")
    return list(iter_conll(path, label_col=-1 if has_labels else None))


def _count_columns(path: Path) -> int:
    """Columns of the first token line (0 when the file has none)."""
    from ner.data.conll import DOCSTART

    if not path.is_file():
        raise CliError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    with path.open("rb") as fh:
        for raw in fh:
            cols = raw.decode("utf-8", errors="replace").lstrip("\ufeff").split()
            if cols and cols[0] != DOCSTART:
                return len(cols)
    return 0


def detect_scheme(label_seqs: Iterable[Sequence[str]]) -> str | None:
    """The tag scheme of gold labels, ``None`` when they do not tell (no entity at all).

    ``bioes`` when an ``E-``/``S-`` (or BILOU ``L-``/``U-``) tag occurs; ``iob1`` when some ``I-X``
    opens a chunk (after ``O``, another type, or at the start); ``iob2`` when entities start with
    ``B-``; ``binary`` when every label is ``0``/``1``.
    """
    seqs = [list(s) for s in label_seqs]
    tags = {t for s in seqs for t in s}
    if tags and tags <= {"0", "1"}:
        return "binary" if "1" in tags else None
    if any(t[:2] in ("E-", "S-", "L-", "U-") for t in tags):
        return "bioes"
    for seq in seqs:
        prev = "O"
        for tag in seq:
            if tag.startswith("I-") and prev[2:] != tag[2:]:
                return "iob1"
            prev = tag
    return "iob2" if any(t.startswith("B-") for t in tags) else None


def _default_scheme(model_scheme: str) -> str:
    return model_scheme if model_scheme in ("iob1", "iob2", "bioes") else "iob2"


def _stdin_lines() -> Iterator[str]:
    """Lines of stdin, decoded strictly: invalid UTF-8 is an error naming the line, never
    silently replaced (``sys.stdin`` may decode with ``errors="replace"``/``surrogateescape``)."""
    for number, raw in enumerate(sys.stdin.buffer, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise CliError(
                f"stdin line {number} is not valid UTF-8 "
                f"(byte 0x{raw[e.start]:02x} at offset {e.start})"
            ) from None
        yield line.rstrip("\r\n")


def _is_unicode(text: str) -> bool:
    """No lone surrogates (what undecodable argv bytes become)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Errors while writing ``path`` name ``path``, not the temporary file beside it."""
    try:
        yield
    except OSError as e:
        if isinstance(e, BrokenPipeError):
            raise
        raise CliError(f"{path}: cannot write ({e.strerror or e})") from None


def _print_docs(docs: Iterable[Any]) -> None:
    out = sys.stdout
    for doc in docs:
        out.write(json.dumps(doc.to_dict(), ensure_ascii=False) + "\n")
    out.flush()


def _check_output_dir(path: Path) -> None:
    parent = path.resolve().parent
    if not parent.is_dir():
        raise CliError(f"{path}: the output folder {parent} does not exist")
    if path.is_dir():
        raise CliError(f"{path}: is a directory")


def _write_text_atomic(path: Path, text: str) -> None:
    from ner.fileio import atomic_open

    with _writing(path), atomic_open(path) as fh:
        fh.write(text)


def _prf(prf: Any) -> dict[str, Any]:
    """A ``ner.metrics.PRF`` as JSON-ready numbers."""
    return {
        "precision": float(prf.precision),
        "recall": float(prf.recall),
        "f1": float(prf.f1),
        "support": int(prf.support),
    }


def format_report(result: dict[str, Any]) -> str:
    """A conlleval-like text table of an evaluation result (as written by ``ner eval --json``)."""
    micro = result["micro"]
    lines = [
        f"model {result['model']['name']} {result['model']['version']} on {result['data']} "
        f"({result['sentences']} sentences, scheme {result['scheme']}, "
        f"backend {result['backend']})",
        f"token accuracy: {100 * result['token_accuracy']:.2f}%",
        f"{'type':<12} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}",
    ]

    def row(name: str, prf: dict[str, Any]) -> str:
        return (
            f"{name:<12} {100 * prf['precision']:>9.2f} {100 * prf['recall']:>9.2f} "
            f"{100 * prf['f1']:>9.2f} {prf['support']:>8}"
        )

    for name, prf in sorted(result["per_type"].items()):
        lines.append(row(name, prf))
    lines.append(row("micro", micro))
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
