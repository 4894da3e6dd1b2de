"""CPU tagging speed and accuracy: our shipped model against the spaCy peer, as whole processes.

Each system runs as a fresh process that loads its model, tags the pre-tokenised CoNLL-2003 dev
file and writes the conlleval layout ``token gold predicted``:

- ours: ``python -m ner.cli predict --model models/conll2003-en --input DEV --output OUT``
  (ONNX Runtime backend);
- spaCy: ``.venv-spacy/bin/python bench/spacy_peer.py tag --model runs/spacy-peer/model-best ...``
  (build the peer first with ``python bench/spacy_peer.py train``).

Both get the same thread budget (``--threads``, default 1: ``OMP_NUM_THREADS`` and friends, and
``--threads`` for ONNX Runtime). After one untimed warm-up run each (page cache), each runs
``--repeats`` times; the report gives the median wall time, sentences/s and tokens/s, the peak RSS
and CPU time of the process, and the entity F1 of the output on the dev file, scored with
``ner.metrics.entity_scores`` (seqeval's default mode when that module is missing). Usage::

    python bench/tag_speed.py [--model DIR] [--spacy-model DIR] [--input FILE] [--repeats 3]
        [--startup] [--reference FILE] [--baseline DIR] [--markdown FILE]

``--startup`` also times both on the input's first sentence alone (start-up: imports, model
load, one sentence, write). ``--reference`` compares our output's predicted column with an earlier
output of ours (e.g. from the previous release) and reports whether every label is the same.
``--baseline DIR`` times our command from another checkout too (in the same turns), to show what
a change gained.

Our packages are byte-compiled first (``compileall``, into the git-ignored ``__pycache__``), as a
pip install or the Docker image has them; the spaCy venv's packages were compiled by pip.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from ner.data.conll import ConllFormatError, read_conll  # noqa: E402
from ner.data.schemes import convert  # noqa: E402
from ner.fileio import atomic_open  # noqa: E402
from ner.settings import data_dir  # noqa: E402

SPACY_PYTHON = REPO_ROOT / ".venv-spacy" / "bin" / "python"
SPACY_PEER = REPO_ROOT / "bench" / "spacy_peer.py"
DEFAULT_MODEL = REPO_ROOT / "models" / "conll2003-en"
DEFAULT_SPACY_MODEL = REPO_ROOT / "runs" / "spacy-peer" / "model-best"
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


class BenchError(RuntimeError):
    """A problem the user can fix; printed as one line, no traceback."""


@dataclass(frozen=True)
class Run:
    """One timed process: wall seconds, CPU seconds (user + sys) and peak RSS in MiB."""

    wall_s: float
    cpu_s: float
    peak_rss_mib: float


@dataclass(frozen=True)
class Result:
    """All runs of one system and the accuracy of its (last) output."""

    name: str
    command: list[str]
    runs: list[Run]
    sentences: int
    tokens: int
    precision: float
    recall: float
    f1: float

    @property
    def median_wall_s(self) -> float:
        return statistics.median(r.wall_s for r in self.runs)

    @property
    def sentences_per_s(self) -> float:
        return self.sentences / self.median_wall_s

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.median_wall_s


def timed_run(cmd: Sequence[str], env: dict[str, str]) -> Run:
    """Run ``cmd`` to completion; wall time, CPU time and peak RSS of that one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise BenchError(
            f"command failed with status {proc.returncode}: {shlex.join(cmd)}\n" + "\n".join(tail)
        )
    # ru_maxrss is in KiB on Linux
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def score(output: Path, gold_file: Path) -> tuple[float, float, float]:
    """Entity precision, recall and F1 of ``output`` (``token [gold] predicted``) on ``gold_file``.

    The gold tags come from ``gold_file`` (IOB1 for CoNLL-2003) and the tokens of both files must
    match. Both sides are read into spans the conlleval way, so the predicted column may be IOB1,
    IOB2 or BIOES.
    """
    gold_sents = read_conll(gold_file)
    try:
        pred_sents = read_conll(output)
    except ConllFormatError as err:
        raise BenchError(f"cannot read the tagger's output: {err}") from None
    if len(gold_sents) != len(pred_sents):
        raise BenchError(
            f"{output}: {len(pred_sents)} sentences, the input {gold_file} has {len(gold_sents)}"
        )
    gold, pred = [], []
    for g, p in zip(gold_sents, pred_sents, strict=True):
        if g.tokens != p.tokens:
            raise BenchError(f"{output}:{p.line}: tokens differ from {gold_file}:{g.line}")
        gold.append(convert(g.labels or (), "iob1", "iob2"))
        pred.append(convert(p.labels or (), "iob1", "iob2"))
    try:
        from ner.metrics import entity_scores
    except ImportError:
        from seqeval.metrics import f1_score, precision_score, recall_score

        return precision_score(gold, pred), recall_score(gold, pred), f1_score(gold, pred)
    micro = entity_scores(gold, pred, scheme="iob2").micro
    return micro.precision, micro.recall, micro.f1


def bench_systems(
    systems: dict[str, Callable[[Path, Path], list[str]]],
    input_path: Path,
    repeats: int,
    warmup: int,
    env: dict[str, str],
    workdir: Path,
) -> list[Result]:
    """Warm each system up, then time them in turns (ours, spaCy, ours, ...) and score.

    Taking turns spreads any drift in the machine's load (other jobs) over both systems.
    """
    sentences = read_conll(input_path)
    outputs = {name: workdir / f"{name}.out" for name in systems}
    cmds = {name: make(outputs[name], input_path) for name, make in systems.items()}
    for name, cmd in cmds.items():
        for _ in range(warmup):
            print(f"  {name} warm-up", file=sys.stderr)
            timed_run(cmd, env)
    runs: dict[str, list[Run]] = {name: [] for name in systems}
    for i in range(repeats):
        for name, cmd in cmds.items():
            outputs[name].unlink(missing_ok=True)
            runs[name].append(timed_run(cmd, env))
            print(f"  {name} run {i + 1}/{repeats}: {runs[name][-1].wall_s:.2f}s", file=sys.stderr)
    n_tokens = sum(len(s) for s in sentences)
    results = []
    for name, make in systems.items():
        p, r, f = score(outputs[name], input_path)
        shown = make(Path("OUT"), Path("DEV"))
        results.append(Result(name, shown, runs[name], len(sentences), n_tokens, p, r, f))
    return results


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _display_cmd(cmd: Sequence[str]) -> str:
    """The command with repository paths made relative, for the table."""
    shown = []
    for part in cmd:
        if part == sys.executable:
            shown.append("python")
        elif part.startswith(str(REPO_ROOT) + os.sep):
            shown.append(os.path.relpath(part, REPO_ROOT))
        else:
            shown.append(part)
    return shlex.join(shown)


def markdown(
    results: Sequence[Result],
    input_path: Path,
    threads: int,
    repeats: int,
    warmup: int,
    load_before: float,
) -> str:
    """The report: machine and settings, one table row per system and the target check."""
    lines = [
        f"CPU tagging of `{input_path.name}` ({results[0].sentences} sentences, "
        f"{results[0].tokens} tokens), whole processes (load + tag + write), "
        f"median of {repeats} runs" + (f" after {warmup} warm-up run(s) each." if warmup else "."),
        "",
        f"- Machine: {cpu_model()}, {os.cpu_count()} logical cores "
        f"({len(os.sched_getaffinity(0))} usable), {platform.system()} {platform.release()}",
        f"- Date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Threads per process: {threads}; 1-minute load average {load_before:.2f} before the "
        f"runs, {os.getloadavg()[0]:.2f} after (other jobs share the machine: CPU time is the "
        "steadier measure)",
        "",
        "| system | command | median wall (s) | sentences/s | tokens/s | CPU (s) | peak RSS (MiB) "
        "| dev P | dev R | dev F1 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for res in results:
        cpu = statistics.median(r.cpu_s for r in res.runs)
        rss = max(r.peak_rss_mib for r in res.runs)
        lines.append(
            f"| {res.name} | `{_display_cmd(res.command)}` | {res.median_wall_s:.2f} "
            f"| {res.sentences_per_s:,.0f} | {res.tokens_per_s:,.0f} | {cpu:.2f} | {rss:.0f} "
            f"| {100 * res.precision:.2f} | {100 * res.recall:.2f} | {100 * res.f1:.2f} |"
        )
    by_name = {r.name: r for r in results}
    if "ours" in by_name and "spacy" in by_name:
        ours, peer = by_name["ours"], by_name["spacy"]
        speedup = peer.median_wall_s / ours.median_wall_s
        cpu_speedup = statistics.median(r.cpu_s for r in peer.runs) / statistics.median(
            r.cpu_s for r in ours.runs
        )
        delta = 100 * (ours.f1 - peer.f1)
        met = speedup >= 3 and delta > 0
        lines += [
            "",
            f"Ours is {speedup:.2f}x the spaCy peer's speed in wall time ({cpu_speedup:.2f}x in "
            f"CPU time) and {delta:+.2f} F1 points (target: at least 3x faster, goal 4x, and more "
            f"accurate: {'met' if met else 'NOT met'}).",
        ]
    if "ours" in by_name and "ours (baseline)" in by_name:
        ours, before = by_name["ours"], by_name["ours (baseline)"]
        cpu_gain = statistics.median(r.cpu_s for r in before.runs) / statistics.median(
            r.cpu_s for r in ours.runs
        )
        lines += [
            "",
            f"Ours is {before.median_wall_s / ours.median_wall_s:.2f}x the baseline checkout's "
            f"speed in wall time ({cpu_gain:.2f}x in CPU time).",
        ]
    return "\n".join(lines) + "\n"


def startup_lines(results: Sequence[Result], repeats: int) -> list[str]:
    """The start-up table: whole processes on a one-sentence file."""
    lines = [
        "",
        f"Start-up: the same commands on the first sentence alone, median of {repeats} runs "
        "(imports, model load, one sentence, write):",
        "",
        "| system | median wall (s) | CPU (s) |",
        "|---|---:|---:|",
    ]
    for res in results:
        cpu = statistics.median(r.cpu_s for r in res.runs)
        lines.append(f"| {res.name} | {res.median_wall_s:.2f} | {cpu:.2f} |")
    by_name = {r.name: r for r in results}
    if "ours" in by_name and "spacy" in by_name:
        ratio = by_name["spacy"].median_wall_s / by_name["ours"].median_wall_s
        lines += ["", f"Ours starts {ratio:.2f}x as fast as the peer."]
    return lines


def compare_labels(output: Path, reference: Path) -> str:
    """Whether the last column of ``output`` equals that of ``reference``, token by token."""
    ours, ref = read_conll(output), read_conll(reference)
    if [s.tokens for s in ours] != [s.tokens for s in ref]:
        return f"tokens differ from the reference {reference.name}"
    pairs = [
        (a, b)
        for s, r in zip(ours, ref, strict=True)
        for a, b in zip(s.labels or (), r.labels or (), strict=True)
    ]
    changed = sum(a != b for a, b in pairs)
    if not changed:
        return f"all {len(pairs)} labels identical to the reference output"
    return f"{changed} of {len(pairs)} labels differ from the reference output"


def _ours_cmd(args: argparse.Namespace):
    base = [sys.executable, "-m", "ner_cli", "predict", "--model", str(args.model)]
    extra = ["--threads", str(args.threads)]

    def make(output: Path, input_path: Path) -> list[str]:
        return [*base, "--input", str(input_path), "--output", str(output), *extra]

    return make


def _baseline_cmd(args: argparse.Namespace):
    """Our command run from another checkout (``--baseline``), e.g. the previous release."""
    root = str(args.baseline.resolve())
    start = f"import sys; sys.path.insert(0, {root!r}); from ner_cli import main; sys.exit(main())"
    base = [sys.executable, "-c", start, "predict", "--model", str(args.model)]
    extra = ["--threads", str(args.threads)]

    def make(output: Path, input_path: Path) -> list[str]:
        return [*base, "--input", str(input_path), "--output", str(output), *extra]

    return make


def _spacy_cmd(args: argparse.Namespace):
    base = [str(SPACY_PYTHON), str(SPACY_PEER), "tag", "--model", str(args.spacy_model)]

    def make(output: Path, input_path: Path) -> list[str]:
        return [*base, "--input", str(input_path), "--output", str(output)]

    return make


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="our bundle folder")
    parser.add_argument(
        "--spacy-model", type=Path, default=DEFAULT_SPACY_MODEL, help="spaCy pipeline folder"
    )
    parser.add_argument("--input", type=Path, default=None, help="default: conll2003/dev.txt")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per system")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per system first")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per process")
    parser.add_argument(
        "--only", choices=("ours", "spacy"), default=None, help="time one system only"
    )
    parser.add_argument(
        "--startup", action="store_true", help="also time the first sentence alone (start-up)"
    )
    parser.add_argument(
        "--reference", type=Path, default=None, help="an earlier output of ours to compare labels"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another checkout of this repository (e.g. `git archive` of an earlier commit) to "
        "time as a third system, `ours (baseline)`",
    )
    parser.add_argument("--markdown", type=Path, default=None, help="also write the report here")
    return parser


def _check_inputs(args: argparse.Namespace, input_path: Path) -> None:
    if args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        raise BenchError("--repeats and --threads must be >= 1 and --warmup >= 0")
    if not input_path.is_file():
        raise BenchError(f"input file not found: {input_path} (set NER_DATA_DIR or --input)")
    if args.only != "spacy" and not (args.model / "config.json").is_file():
        raise BenchError(f"our bundle {args.model} has no config.json (train/export it first)")
    if args.only != "ours":
        if not SPACY_PYTHON.exists():
            raise BenchError(f"{SPACY_PYTHON} is missing: see bench/spacy_peer.py to create it")
        if not (args.spacy_model / "config.cfg").is_file():
            raise BenchError(
                f"{args.spacy_model} is not a spaCy pipeline: "
                "run `python bench/spacy_peer.py train`"
            )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    input_path = args.input or data_dir() / "conll2003" / "dev.txt"
    env = {**os.environ, **dict.fromkeys(_THREAD_VARS, str(args.threads))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    try:
        _check_inputs(args, input_path)
        load_before = os.getloadavg()[0]
        systems = {"ours": _ours_cmd(args), "spacy": _spacy_cmd(args)}
        if args.only:
            systems = {args.only: systems[args.only]}
        roots = [REPO_ROOT]
        if args.baseline:
            systems["ours (baseline)"] = _baseline_cmd(args)
            roots.append(args.baseline)
        for root in roots:
            for package in ("ner", "ner_cli"):
                compileall.compile_dir(root / package, quiet=1)
        with tempfile.TemporaryDirectory(prefix="tag-speed-") as tmp:
            results = bench_systems(systems, input_path, args.repeats, args.warmup, env, Path(tmp))
            report = markdown(
                results, input_path, args.threads, args.repeats, args.warmup, load_before
            )
            if args.reference and "ours" in systems:
                report += "\nOurs: " + compare_labels(Path(tmp) / "ours.out", args.reference) + "\n"
            if args.startup:
                one = Path(tmp) / "one-sentence.txt"
                first = read_conll(input_path)[0]
                gold = first.labels or ("O",) * len(first.tokens)
                one.write_text(
                    "".join(f"{t} {g}\n" for t, g in zip(first.tokens, gold, strict=True))
                )
                start = bench_systems(systems, one, args.repeats, args.warmup, env, Path(tmp))
                report += "\n".join(startup_lines(start, args.repeats)) + "\n"
    except (BenchError, ConllFormatError, OSError) as err:
        print(f"tag_speed: error: {err}", file=sys.stderr)
        return 2
    print(report, end="")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(args.markdown) as fh:
            fh.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
