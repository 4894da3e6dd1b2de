"""``ner translate``: translate raw texts with a ``seq2seq`` bundle (dates to ISO, English to
French).

    ner translate "Tuesday, March 7, 2023"                  # models/dates-iso by default
    ner translate --beam-size 5 --n-best 3 "7.3.21"
    printf '3/7/21\\nmarch 7th 2021\\n' | ner translate      # one text per stdin line

prints one JSON object per text, as POST /v1/translate answers: ``{"translation", "score",
"source_tokens", "output_tokens", "finished", "alternatives"?, "attention"?, "unknown"?}``.
``score`` is the log-probability of the output. A text the model cannot take (empty, over its
character cap, characters it has never seen) or a search setting out of range is an error
(exit 2, one line naming the stdin line).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from ner.settings import REPO_ROOT

DEFAULT_TRANSLATOR = REPO_ROOT / "models" / "dates-iso"
_CHUNK = 256  # stdin texts per greedy batch


def register(sub: Any) -> None:
    from ner.cli import model_args

    p = sub.add_parser(
        "translate",
        help="translate raw texts (task seq2seq); print JSON lines",
        description="Translate TEXT, or each line of stdin; print one JSON object per text, as "
        "POST /v1/translate does. Greedy search unless --beam-size > 1.",
    )
    model_args(p)
    p.add_argument("text", nargs="?", help="the text to translate (default: one per stdin line)")
    p.add_argument("--beam-size", type=int, default=1, help="1: greedy search (default)")
    p.add_argument("--n-best", type=int, default=1, help="outputs per text (<= beam size)")
    p.add_argument(
        "--length-penalty",
        type=float,
        default=0.0,
        help="beam ranking log P / |y|^alpha (0: log P)",
    )
    p.add_argument("--no-attention", action="store_true", help="leave the attention matrix out")
    p.set_defaults(run=_cmd_translate)


def _stdin_lines() -> Iterator[str]:
    for line in sys.stdin:
        yield line.rstrip("\r\n")


def _cmd_translate(ns: argparse.Namespace) -> int:
    from ner.cli import CliError, load_predictor
    from ner.translate import TranslationInputError

    translator = load_predictor(ns, "seq2seq", DEFAULT_TRANSLATOR)
    try:
        translator.check_search(ns.beam_size, ns.n_best, ns.length_penalty)
    except TranslationInputError as e:
        raise CliError(str(e)) from None
    texts: Iterable[str] = [ns.text] if ns.text is not None else _stdin_lines()
    chunk: list[tuple[int, str]] = []
    for number, text in enumerate(texts, 1):
        chunk.append((number, text))
        if len(chunk) >= _CHUNK:
            _print(translator, chunk, ns)
            chunk = []
    if chunk:
        _print(translator, chunk, ns)
    return 0


def _print(translator: Any, chunk: list[tuple[int, str]], ns: argparse.Namespace) -> None:
    from ner.cli import CliError
    from ner.translate import TranslationInputError

    for number, text in chunk:  # check every text first: no partial output for a bad chunk
        try:
            translator.source_tokens(text)
        except TranslationInputError as e:
            where = "" if ns.text is not None else f"stdin line {number}: "
            raise CliError(f"{where}{e}") from None
    results = translator.translate(
        [t for _, t in chunk],
        beam_size=ns.beam_size,
        n_best=ns.n_best,
        length_penalty=ns.length_penalty,
        batch_size=ns.batch_size,
    )
    out = sys.stdout
    for r in results:
        data = r.to_dict()
        if ns.no_attention:
            data.pop("attention", None)
        out.write(json.dumps(data, ensure_ascii=False) + "\n")
    out.flush()
