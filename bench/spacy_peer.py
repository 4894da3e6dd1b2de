"""The spaCy peer of the benchmarks: a spaCy NER pipeline trained on the same CoNLL-2003 data.

spaCy lives in its own virtual environment (``.venv-spacy/``, git-ignored) so that it never
touches the project's. Make it once with::

    python3 -m venv .venv-spacy && .venv-spacy/bin/pip install spacy

Commands (run them with any Python; the script re-executes itself with the spaCy venv's Python
when the current one has no spaCy)::

    python bench/spacy_peer.py train [--max-steps N] [--out runs/spacy-peer]
    python bench/spacy_peer.py tag --model DIR --input FILE --output FILE

``train`` is reproducible from the data alone:

1. reads ``conll2003/train.txt`` and ``dev.txt`` from ``ner.settings.data_dir()`` with
   ``ner.data.conll.read_conll`` and rewrites the IOB1 tags as IOB2 (``ner.data.schemes.convert``);
2. writes them as spaCy ``DocBin`` files, one ``Doc`` per sentence (the unit that ``tag`` and the
   HTTP peer see, and the unit our own tagger reads);
3. ``spacy init config -l en -p ner -o efficiency`` (the tok2vec CNN pipeline, no static vectors);
4. ``spacy train`` on CPU with a fixed seed and the step budget given here.

The model lands in ``<out>/model-best`` and a summary (dev F1, training time, versions, the exact
commands) in ``<out>/peer.json``. The pipeline does not use spaCy's tokenizer at tagging time:
``tag`` builds each ``Doc`` from the pre-tokenised words and runs the pipeline's components
(``tok2vec``, ``ner``) over them, then writes the conlleval layout ``token gold predicted`` with the
prediction in IOB1, like the gold column of CoNLL-2003.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # the spaCy venv does not have the project installed
    sys.path.insert(0, str(REPO_ROOT))

from ner.data.conll import ConllFormatError, DocStart, Sentence, iter_conll, write_conll  # noqa: E402
from ner.data.schemes import convert  # noqa: E402
from ner.fileio import atomic_open  # noqa: E402
from ner.settings import data_dir  # noqa: E402

SPACY_VENV = REPO_ROOT / ".venv-spacy"
SPACY_PYTHON = SPACY_VENV / "bin" / "python"
DEFAULT_OUT = REPO_ROOT / "runs" / "spacy-peer"
DEFAULT_MODEL = DEFAULT_OUT / "model-best"
_REEXEC_FLAG = "NER_SPACY_PEER_REEXEC"
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


class PeerError(RuntimeError):
    """A problem the user can fix (missing venv, missing file, bad model); printed, no traceback."""


# --------------------------------------------------------------------------- environment


def ensure_spacy() -> None:
    """Re-execute this script with the spaCy venv's Python unless spaCy imports here."""
    try:
        import spacy  # noqa: F401
    except ImportError:
        pass
    else:
        return
    if os.environ.get(_REEXEC_FLAG):
        raise PeerError(f"spaCy does not import in {sys.executable}; reinstall {SPACY_VENV}")
    if not SPACY_PYTHON.exists():
        raise PeerError(
            f"spaCy is not installed here and {SPACY_PYTHON} does not exist; create it with\n"
            f"  python3 -m venv {SPACY_VENV} && {SPACY_VENV}/bin/pip install spacy"
        )
    env = {**os.environ, _REEXEC_FLAG: "1"}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(
        str(SPACY_PYTHON), [str(SPACY_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]], env
    )


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as fh:
        fh.write(text)


# --------------------------------------------------------------------------- conversion


def read_iob2(path: Path) -> list[tuple[tuple[str, ...], list[str]]]:
    """The sentences of an IOB1 CoNLL file as ``(words, IOB2 tags)`` pairs."""
    if not path.is_file():
        raise PeerError(f"data file not found: {path} (set NER_DATA_DIR)")
    items = iter_conll(path)
    return [
        (item.tokens, convert(item.labels or (), "iob1", "iob2"))
        for item in items
        if isinstance(item, Sentence)
    ]


def write_docbin(sentences: Sequence[tuple[Sequence[str], Sequence[str]]], path: Path) -> int:
    """Write one spaCy ``Doc`` per sentence, entities from IOB2 tags; returns the entity count."""
    from spacy.tokens import Doc, DocBin
    from spacy.vocab import Vocab

    vocab = Vocab()
    docbin = DocBin(attrs=["ORTH", "ENT_IOB", "ENT_TYPE"], store_user_data=False)
    n_ents = 0
    for words, tags in sentences:
        doc = Doc(vocab, words=list(words), ents=list(tags))
        n_ents += len(doc.ents)
        docbin.add(doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    docbin.to_disk(tmp)
    os.replace(tmp, path)
    return n_ents


def convert_corpus(out: Path, conll_dir: Path) -> dict[str, dict[str, int]]:
    """``train.spacy`` and ``dev.spacy`` under ``out/corpus`` from the CoNLL-2003 files."""
    stats = {}
    for split in ("train", "dev"):
        sentences = read_iob2(conll_dir / f"{split}.txt")
        n_ents = write_docbin(sentences, out / "corpus" / f"{split}.spacy")
        stats[split] = {
            "sentences": len(sentences),
            "tokens": sum(len(words) for words, _ in sentences),
            "entities": n_ents,
        }
    return stats


# --------------------------------------------------------------------------- training


def _run(cmd: list[str], env: dict[str, str], log: Path | None = None) -> None:
    """Run ``cmd``; its output goes to ``log`` (appended) or to ours; a failure is a PeerError."""
    if log is None:
        proc = subprocess.run(cmd, env=env, check=False)
    else:
        with log.open("a", encoding="utf-8") as fh:
            fh.write(f"$ {' '.join(cmd)}\n")
            fh.flush()
            proc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        where = f"; see {log}" if log else ""
        raise PeerError(f"command failed with status {proc.returncode}: {' '.join(cmd)}{where}")


def _single_thread_env(threads: int) -> dict[str, str]:
    return {**os.environ, **dict.fromkeys(_THREAD_VARS, str(threads))}


def train(args: argparse.Namespace) -> dict:
    """Convert the data, write the config and train; returns the summary written to peer.json."""
    import spacy

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    conll_dir = Path(args.data) if args.data else data_dir() / "conll2003"
    env = _single_thread_env(args.threads)
    t0 = time.perf_counter()
    stats = convert_corpus(out, conll_dir)
    convert_s = time.perf_counter() - t0

    config = out / "config.cfg"
    init_cmd = [sys.executable, "-m", "spacy", "init", "config", str(config)]
    init_cmd += ["-l", "en", "-p", "ner", "-o", "efficiency", "--force"]
    _run(init_cmd, env)
    train_cmd = [sys.executable, "-m", "spacy", "train", str(config), "--output", str(out)]
    train_cmd += ["--gpu-id", "-1"]
    overrides = {
        "paths.train": str(out / "corpus" / "train.spacy"),
        "paths.dev": str(out / "corpus" / "dev.spacy"),
        "system.seed": str(args.seed),
        "training.max_steps": str(args.max_steps),
        "training.max_epochs": str(args.max_epochs),
        "training.eval_frequency": str(args.eval_frequency),
        "training.patience": str(args.patience),
        "training.batcher.size.stop": str(args.batch_words),
    }
    for key, value in overrides.items():
        train_cmd += [f"--{key}", value]
    t1 = time.perf_counter()
    _run(train_cmd, env)
    train_s = time.perf_counter() - t1

    meta = json.loads((out / "model-best" / "meta.json").read_text(encoding="utf-8"))
    perf = meta.get("performance", {})
    summary = {
        "model": str(out / "model-best"),
        "dev_ents_f": perf.get("ents_f"),
        "dev_ents_p": perf.get("ents_p"),
        "dev_ents_r": perf.get("ents_r"),
        "dev_ents_per_type": perf.get("ents_per_type"),
        "train_seconds": round(train_s, 1),
        "convert_seconds": round(convert_s, 1),
        "data": {"dir": str(conll_dir), **stats},
        "settings": {**overrides, "threads": args.threads},
        "commands": [init_cmd, train_cmd],
        "spacy_version": spacy.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    _atomic_write_text(out / "peer.json", json.dumps(summary, indent=2) + "\n")
    return summary


# --------------------------------------------------------------------------- tagging


def _iob2_from_doc(doc) -> list[str]:
    return [f"{t.ent_iob_}-{t.ent_type_}" if t.ent_iob_ in ("B", "I") else "O" for t in doc]


def _read_blocks(path: Path) -> tuple[list[Sentence | DocStart], bool]:
    """All items of ``path`` and whether it has a label column (a one-column file has none)."""
    if not path.is_file():
        raise PeerError(f"input file not found: {path}")
    try:
        return list(iter_conll(path)), True
    except ConllFormatError as err:
        if "too few columns" not in err.reason:
            raise
    return list(iter_conll(path, label_col=None)), False


def tag(model: Path, input_path: Path, output: Path, batch_size: int) -> int:
    """Tag the pre-tokenised ``input_path`` with the spaCy pipeline ``model``; returns #sentences.

    Writes ``token gold predicted`` (or ``token predicted`` when the input has no labels), the
    prediction in IOB1, one block per sentence, ``-DOCSTART-`` lines kept.
    """
    import spacy
    from spacy.tokens import Doc

    if not (model / "config.cfg").is_file():
        raise PeerError(f"not a spaCy pipeline folder (no config.cfg): {model}")
    items, labelled = _read_blocks(input_path)
    nlp = spacy.load(model)
    sentences = [item for item in items if isinstance(item, Sentence)]
    docs = (Doc(nlp.vocab, words=list(s.tokens)) for s in sentences)
    predicted = iter(
        convert(_iob2_from_doc(doc), "iob2", "iob1")
        for doc in nlp.pipe(docs, batch_size=batch_size)
    )

    def blocks():
        for item in items:
            if isinstance(item, DocStart):
                yield item
                continue
            pred = next(predicted)
            if labelled:
                yield list(zip(item.tokens, item.labels or (), pred, strict=True))
            else:
                yield list(zip(item.tokens, pred, strict=True))

    output.parent.mkdir(parents=True, exist_ok=True)
    write_conll(output, blocks())
    return len(sentences)


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="convert CoNLL-2003 and train the spaCy NER peer on CPU")
    tr.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (git-ignored runs/)")
    tr.add_argument("--data", default=None, help="folder with train.txt/dev.txt (IOB1)")
    tr.add_argument("--max-steps", type=int, default=4500, help="spaCy training.max_steps")
    tr.add_argument(
        "--batch-words",
        type=int,
        default=400,
        help="largest batch in words (the compounding batch size grows from 100 to this)",
    )
    tr.add_argument("--max-epochs", type=int, default=0, help="training.max_epochs (0 = no cap)")
    tr.add_argument("--eval-frequency", type=int, default=500, help="steps between dev scores")
    tr.add_argument("--patience", type=int, default=1600, help="stop after N steps w/o gain")
    tr.add_argument("--seed", type=int, default=0, help="system.seed")
    tr.add_argument("--threads", type=int, default=1, help="OMP/BLAS threads")
    tg = sub.add_parser("tag", help="tag a pre-tokenised CoNLL file (whole process)")
    tg.add_argument("--model", default=str(DEFAULT_MODEL), help="spaCy pipeline folder")
    tg.add_argument("--input", required=True, help="CoNLL file (token first, label last)")
    tg.add_argument("--output", required=True, help="where to write token gold predicted")
    tg.add_argument("--batch-size", type=int, default=256, help="docs per nlp.pipe batch")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        ensure_spacy()
        if args.command == "train":
            summary = train(args)
            print(
                f"spaCy peer: dev ents_f={summary['dev_ents_f']:.4f} "
                f"in {summary['train_seconds']:.0f}s -> {summary['model']}"
            )
        else:
            n = tag(Path(args.model), Path(args.input), Path(args.output), args.batch_size)
            print(f"tagged {n} sentences -> {args.output}", file=sys.stderr)
    except (PeerError, ConllFormatError, FileNotFoundError, OSError) as err:
        print(f"spacy_peer: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
