"""Where the time of tagging a CoNLL file goes: start-up, ONNX Runtime and the Python around it.

Each repetition is a fresh process that does what ``ner predict`` does (import, load the bundle,
read the file, tag, write the conlleval layout) with timers around the phases, so the numbers
add up to the whole process. Within tagging it separates ONNX Runtime (``Predictor.emissions``)
from the per-token Python work: featurisation (``Featurizer.prefetch`` and ``encode``, word
vectors), decoding (Viterbi; for ``--mode documents`` also forward-backward and span scores),
labels (entity spans and label conversion), the result objects (``--mode documents``: tokens and
entities with offsets; in checkouts before ``ner.spans`` also the span reading and scores) and the
rest (``other``: batching, gathering the results; for documents the offsets of word lists).
Usage::

    python bench/profile_predict.py [--model DIR] [--input FILE] [--repeats 5] [--threads 1]
        [--mode tokens|documents|tag] [--clock wall|cpu] [--baseline DIR] [--cprofile 25]
        [--int8] [--markdown FILE]

``--clock cpu`` times every phase in the process's CPU time (and the whole process in its user +
system time), which other jobs on a shared machine inflate far less than wall time; with one
ONNX Runtime thread all work runs on the calling thread, so the two clocks measure the same work.
``--mode tokens`` (default) is ``ner predict``'s path (``Predictor.predict_tokens``, labels
only); ``--mode documents`` runs ``Predictor.predict`` on the same sentences as word lists (what
the library returns per token and entity); ``--mode tag`` runs ``Predictor.tag``, the server's
call (labels, scores and entities without offsets; a checkout without it runs ``predict``, which
the server called before). ``--cprofile N`` prints the N most expensive
functions of one extra run. The report gives medians over the repetitions and the target ratio
(per-token Python work / ONNX Runtime time, issue 15: at most 30%). ``--baseline DIR`` profiles
another checkout (e.g. an earlier commit) in the same turns and adds its ratio.

``--int8`` measures a lever that is not shipped because it changes labels: the bundle's graph with
its LSTMs quantised to int8 by ONNX Runtime's dynamic quantisation (``DynamicQuantizeLSTM``; needs
the ``onnx`` package of the train extra). It reports ONNX Runtime's time on the input for both
graphs (alternating, in one process), the dev entity F1 of each and how many labels change.
"""

from __future__ import annotations

import argparse
import compileall
import cProfile
import io
import json
import os
import pstats
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
PHASES = (
    *("import", "load", "read"),
    *("featurize", "onnxruntime", "decode", "labels", "objects", "other"),
    "write",
)
PYTHON_WORK = ("featurize", "decode", "labels", "objects", "other")
"""The per-token Python work around ONNX Runtime (the issue's ratio)."""


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = time.perf_counter


def _timed(acc: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = _clock()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[name] += _clock() - start

    return wrapper


def child(
    model: Path,
    input_path: Path,
    output: Path,
    mode: str,
    threads: int,
    batch: int,
    root: Path,
    clock: str = "wall",
) -> dict:
    """One process's phases in seconds (run in a fresh interpreter by :func:`main`), with the
    library of the checkout at ``root``; ``clock``: wall time or the process's CPU time."""
    global _clock
    _clock = CLOCKS[clock]
    sys.path.insert(0, str(root))
    t0 = _clock()
    import ner.predict as predict_mod
    from ner.cli import _read_items
    from ner.data.conll import Sentence, write_conll
    from ner.features import Featurizer
    from ner.tasks import load

    acc = dict.fromkeys((*PHASES, "vectors"), 0.0)
    acc["import"] = _clock() - t0
    t = _clock()
    predictor = load(model, "onnx", threads=threads, task="ner")
    acc["load"] = _clock() - t
    t = _clock()
    items = _read_items(input_path)
    sentences = [item for item in items if isinstance(item, Sentence)]
    acc["read"] = _clock() - t

    # Timers around the parts; class and module attributes, restored by the process exiting.
    Featurizer.encode = _timed(acc, "featurize", Featurizer.encode)  # type: ignore[method-assign]
    if hasattr(Featurizer, "prefetch"):  # not in older checkouts (--baseline)
        Featurizer.prefetch = _timed(acc, "featurize", Featurizer.prefetch)  # type: ignore
    predictor.emissions = _timed(acc, "onnxruntime", predictor.emissions)
    # Word vectors are looked up in NumPy inside emissions(): featurisation, not ONNX Runtime.
    import ner.tasks.inputs as inputs_mod

    inputs_mod.word_vectors = _timed(acc, "vectors", inputs_mod.word_vectors)
    # Module attributes of ner.predict that exist in this checkout (older ones decode per
    # forward pass with viterbi/decode_batch and convert labels with ner.data.schemes).
    for name in ("viterbi", "viterbi_flat", "decode_batch", "decode_flat", "scale_emissions"):
        if hasattr(predict_mod, name):
            setattr(predict_mod, name, _timed(acc, "decode", getattr(predict_mod, name)))
    if hasattr(predict_mod, "convert"):
        predict_mod.convert = _timed(acc, "labels", predict_mod.convert)
    if hasattr(predict_mod, "SpanReader"):
        reader = predict_mod.SpanReader
        reader.spans = _timed(acc, "labels", reader.spans)  # type: ignore[method-assign]
        reader.label_ids = _timed(acc, "labels", reader.label_ids)  # type: ignore[method-assign]
    if hasattr(predict_mod, "_document"):  # result objects (older: a Predictor method)
        predict_mod._document = _timed(acc, "objects", predict_mod._document)
    else:
        predictor._document = _timed(acc, "objects", predictor._document)
    t = _clock()
    if mode == "tokens":
        predicted = predictor.predict_tokens([s.tokens for s in sentences], "iob1", batch)
    elif mode == "tag" and hasattr(predictor, "tag"):
        predicted = [t.labels for t in predictor.tag([list(s.tokens) for s in sentences], batch)]
    else:
        docs = predictor.predict([list(s.tokens) for s in sentences], batch)
        predicted = [[tok.label for tok in doc.tokens] for doc in docs]
    tagging = _clock() - t
    acc["onnxruntime"] -= acc["vectors"]
    acc["featurize"] += acc.pop("vectors")
    timed = sum(acc[k] for k in ("featurize", "onnxruntime", "decode", "labels", "objects"))
    acc["other"] = tagging - timed
    t = _clock()
    rows = iter(predicted)
    write_conll(
        output,
        ([[tok, p] for tok, p in zip(s.tokens, next(rows), strict=True)] for s in sentences),
    )
    acc["write"] = _clock() - t
    acc["tokens"] = sum(len(s) for s in sentences)
    acc["sentences"] = len(sentences)
    return acc


def run_child(args: argparse.Namespace, env: dict[str, str], out: Path, root: Path) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--root",
        str(root),
        "--model",
        str(args.model),
        "--input",
        str(args.input),
        "--output",
        str(out),
        "--mode",
        args.mode,
        "--threads",
        str(args.threads),
        "--batch-size",
        str(args.batch_size),
        "--clock",
        args.clock,
    ]
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if proc.returncode != 0:
        raise SystemExit(f"profile_predict: child failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process"] = wall if args.clock == "wall" else cpu
    return result


def _children_cpu() -> float:
    """User + system CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _medians(runs: Sequence[dict]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in (*PHASES, "process")}


def report(runs: Sequence[dict], args: argparse.Namespace, baseline: Sequence[dict] = ()) -> str:
    med = _medians(runs)
    python = sum(med[k] for k in PYTHON_WORK)
    ort = med["onnxruntime"]
    tokens = int(runs[0]["tokens"])
    lines = [
        f"`python bench/profile_predict.py --mode {args.mode} --repeats {args.repeats} "
        f"--threads {args.threads} --clock {args.clock}` on `{args.input.name}` ({tokens} "
        f"tokens), median {args.clock} seconds of {args.repeats} fresh processes:",
        "",
        "| phase | s | share of process |",
        "|---|---:|---:|",
    ]
    for k in (*PHASES, "process"):
        lines.append(f"| {k} | {med[k]:.3f} | {100 * med[k] / med['process']:.0f}% |")
    startup = med["process"] - sum(med[k] for k in PHASES if k not in ("import", "load"))
    lines += [
        "",
        f"- Start-up before the first sentence (interpreter + import + load): {startup:.3f} s",
        f"- Per-token Python work ({' + '.join(PYTHON_WORK)}): {python:.3f} s = "
        f"{100 * python / ort:.0f}% of ONNX Runtime's {ort:.3f} s (target: at most 30%)",
    ]
    if baseline:
        before = _medians(baseline)
        python_before = sum(before[k] for k in PYTHON_WORK)
        lines.append(
            f"- Baseline `{args.baseline}` (same turns): per-token Python work "
            f"{python_before:.3f} s = {100 * python_before / before['onnxruntime']:.0f}% of "
            f"ONNX Runtime's {before['onnxruntime']:.3f} s; process {before['process']:.3f} s"
        )
    return "\n".join(lines) + "\n"


def profile_once(args: argparse.Namespace, out: Path) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    child(
        args.model, args.input, out, args.mode, args.threads, args.batch_size, REPO_ROOT, args.clock
    )
    profiler.disable()
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(args.cprofile)
    return buffer.getvalue()


def int8_report(args: argparse.Namespace, tmp: Path) -> str:
    """ONNX Runtime time, entity F1 and changed labels: the shipped graph against int8 LSTMs."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from ner.bundle import OnnxGraphs
    from ner.data.conll import read_conll
    from ner.data.schemes import convert
    from ner.metrics import entity_scores
    from ner.tasks import load

    predictor = load(args.model, "onnx", threads=args.threads, task="ner")
    runtime = predictor.bundle._runtime
    int8_path = tmp / "model.int8.onnx"
    quantize_dynamic(
        args.model / "model.onnx",
        int8_path,
        op_types_to_quantize=["LSTM"],
        weight_type=QuantType.QInt8,
    )
    sessions = {
        "shipped (float32)": runtime.sessions["emissions"],
        "int8 LSTM": OnnxGraphs.session(int8_path, args.threads),
    }
    gold_sentences = read_conll(args.input)
    sentences = [s.tokens for s in gold_sentences]
    gold = [convert(list(s.labels or ()), "iob1", "iob2") for s in gold_sentences]
    feeds = [
        predictor.inputs.encode([list(sentences[i]) for i in batch])
        for batch in predictor._batches(sentences, args.batch_size)
    ]
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(args.repeats):
        for name, session in sessions.items():
            names = [i.name for i in session.get_inputs()]
            start = time.perf_counter()
            for feed in feeds:
                session.run(["emissions"], {n: feed[n] for n in names})
            times[name].append(time.perf_counter() - start)
    labels = {}
    for name, session in sessions.items():
        runtime.sessions["emissions"] = session
        labels[name] = predictor.predict_tokens(sentences, "iob2", args.batch_size)
    base = statistics.median(times["shipped (float32)"])
    lines = [
        f"`python bench/profile_predict.py --int8 --repeats {args.repeats} --threads "
        f"{args.threads}` on `{args.input.name}`: ONNX Runtime alone, median of {args.repeats}:",
        "",
        "| graph | ONNX Runtime (s) | speed-up | dev F1 | labels changed |",
        "|---|---:|---:|---:|---:|",
    ]
    shipped = labels["shipped (float32)"]
    for name in sessions:
        med = statistics.median(times[name])
        f1 = entity_scores(gold, labels[name], scheme="iob2").micro.f1
        changed = sum(
            a != b
            for x, y in zip(labels[name], shipped, strict=True)
            for a, b in zip(x, y, strict=True)
        )
        lines.append(f"| {name} | {med:.3f} | {base / med:.2f}x | {100 * f1:.4f} | {changed} |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "conll2003-en")
    parser.add_argument("--input", type=Path, default=None, help="default: conll2003/dev.txt")
    parser.add_argument("--output", type=Path, default=None, help="(child) where to write")
    parser.add_argument("--mode", choices=("tokens", "documents", "tag"), default="tokens")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--clock",
        choices=tuple(CLOCKS),
        default="wall",
        help="time the phases in wall time or in CPU time (steadier on a shared machine)",
    )
    parser.add_argument("--cprofile", type=int, default=0, help="top N functions of one more run")
    parser.add_argument("--int8", action="store_true", help="compare int8 LSTMs (not shipped)")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the report here")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another checkout of this repository (e.g. `git archive` of an earlier commit), "
        "profiled in the same turns",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.child:
        result = child(
            args.model,
            args.input,
            args.output,
            args.mode,
            args.threads,
            args.batch_size,
            args.root,
            args.clock,
        )
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    import tempfile

    from ner.fileio import atomic_open
    from ner.settings import data_dir

    args.input = args.input or data_dir() / "conll2003" / "dev.txt"
    roots = [REPO_ROOT, *([args.baseline.resolve()] if args.baseline else [])]
    # Bytecode as a pip install or the Docker image has it (PYTHONDONTWRITEBYTECODE=1 would
    # otherwise compile every module in every process).
    for root in roots:
        for package in ("ner", "ner_cli"):
            compileall.compile_dir(root / package, quiet=1)
    env = {**os.environ, **dict.fromkeys(_THREAD_VARS, str(args.threads))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="profile-predict-") as tmp:
        out = Path(tmp) / "out.txt"
        if args.int8:
            text = int8_report(args, Path(tmp))
        else:
            for root in roots:  # warm-up: page cache, GloVe index cache
                run_child(args, env, out, root)
            turns = [
                [run_child(args, env, out, root) for root in roots] for _ in range(args.repeats)
            ]
            text = report([t[0] for t in turns], args, [t[1] for t in turns if len(t) > 1])
        if args.cprofile:
            text += "\n```\n" + profile_once(args, out) + "```\n"
    sys.stdout.write(text)
    if args.markdown:
        with atomic_open(args.markdown) as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
