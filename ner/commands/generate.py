"""``ner score`` and ``ner generate``: the language-model commands (tasks ``language_model`` and
``conditional_lm``), mirroring POST /v1/score and /v1/generate.

    ner score --model models/dinos-char Tyrannosaurus       # {"log_prob", "perplexity", "tokens"}
    printf 'a fine film\\n' | ner score --model models/sst2-generator --class positive
    ner generate --model models/dinos-char -n 5 --seed 0 --temperature 0.8
    ner generate --model models/sst2-generator --class negative -n 3 --json

``score`` prints one JSON object per text (TEXT, or each stdin line); ``generate`` prints one
sample per line (``--json``: the same object as the HTTP route). A bad setting, a character the
model has never seen or a class it does not know is a one-line error with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import Any

from ner.settings import REPO_ROOT

DEFAULT_LM = REPO_ROOT / "models" / "dinos-char"
TASKS = ("language_model", "conditional_lm")


def register(sub: Any) -> None:
    from ner.cli import positive_int

    p = sub.add_parser(
        "score",
        help="log-probability of texts under a language model; print JSON lines",
        description="Score TEXT, or each line of stdin as one text: log P(y<1>..y<Ty>, <EOS>) "
        "(natural log), perplexity and each token's log-probability, as POST /v1/score does.",
    )
    _common(p)
    p.add_argument("text", nargs="?", help="the text to score (default: one per stdin line)")
    p.set_defaults(run=_cmd_score)

    p = sub.add_parser(
        "generate",
        help="sample novel sequences from a language model",
        description="Sample N sequences as one batch: draw y<t> from the softmax, feed it back "
        "as x<t+1>, stop at <EOS> or --max-length; as POST /v1/generate does.",
    )
    _common(p)
    p.add_argument("-n", type=positive_int, default=1, help="number of samples (default 1)")
    p.add_argument("--temperature", type=float, default=1.0, help="> 0; near 0: greedy")
    p.add_argument("--top-k", type=positive_int, default=None, help="sample among the k best")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus mass in (0, 1]")
    p.add_argument("--prefix", default="", help="text every sample starts with")
    p.add_argument("--seed", type=int, default=None, help="the same seed, the same samples")
    p.add_argument("--max-length", type=positive_int, default=None, help="most sampled tokens")
    p.add_argument("--allow-unk", action="store_true", help="let <unk> be sampled")
    p.add_argument("--json", action="store_true", help='print {"model", "seed", "samples"}')
    p.set_defaults(run=_cmd_generate)


def _common(p: argparse.ArgumentParser) -> None:
    from ner.cli import positive_int

    p.add_argument("--model", default=None, help=f"bundle directory (default: {DEFAULT_LM})")
    p.add_argument("--backend", choices=("onnx", "torch"), default="onnx", help="step backend")
    p.add_argument("--threads", type=positive_int, default=None, help="ONNX Runtime threads")
    p.add_argument(
        "--class",
        dest="class_",
        default=None,
        help="a conditional model's class: a name (e.g. positive) or an id",
    )


def _load(ns: argparse.Namespace) -> Any:
    from ner.cli import CliError
    from ner.tasks import load

    model = ns.model or DEFAULT_LM
    predictor = load(model, ns.backend, threads=ns.threads)
    if predictor.task not in TASKS:
        raise CliError(f"{model}: a {predictor.task!r} model, not a language model")
    return predictor


def _class(value: str | None) -> str | int | None:
    return int(value) if value is not None and value.lstrip("-").isdigit() else value


def _user(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(...)``; a bad request (``GenerationError``) becomes the CLI's one-line error."""
    from ner.cli import CliError
    from ner.generate import GenerationError

    try:
        return fn(*args, **kwargs)
    except GenerationError as e:
        raise CliError(str(e)) from None


def _cmd_score(ns: argparse.Namespace) -> int:
    predictor = _load(ns)
    texts: Iterable[str] = [ns.text] if ns.text is not None else _stdin_lines()
    out = sys.stdout
    for text in texts:
        result = _user(predictor.score, [text], _class(ns.class_))[0]
        out.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
    out.flush()
    return 0


def _cmd_generate(ns: argparse.Namespace) -> int:
    import secrets

    predictor = _load(ns)
    seed = ns.seed if ns.seed is not None else secrets.randbelow(2**63 - 1)
    if seed < 0:
        from ner.cli import CliError

        raise CliError(f"--seed must be >= 0, got {seed}")
    samples = _user(
        predictor.generate,
        ns.n,
        temperature=ns.temperature,
        top_k=ns.top_k,
        top_p=ns.top_p,
        prefix=ns.prefix,
        seed=seed,
        max_length=ns.max_length,
        allow_unk=ns.allow_unk,
        class_=_class(ns.class_),
    )
    if ns.json:
        model = {"name": predictor.name, "version": predictor.version}
        print(json.dumps({"model": model, "seed": seed, "samples": samples}, ensure_ascii=False))
    else:
        for sample in samples:
            print(sample)
    return 0


def _stdin_lines() -> Iterable[str]:
    for line in sys.stdin:
        yield line.rstrip("\r\n")
