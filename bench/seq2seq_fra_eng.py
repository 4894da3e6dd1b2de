"""English -> French test BLEU: seq2seq bundles (greedy and beam) next to a retrieval baseline.

The test split is the one ``configs/fra-eng.yaml`` trains around (``ner.data.pairs.
split_by_source``, seed 0, 10% of the distinct English sentences for dev and 10% for test), so
no test sentence was seen in training. Each test English sentence is translated once and scored
against all its French translations in the file (multi-reference corpus BLEU, sacrebleu 13a,
on lowercased text). The retrieval baseline answers with the French side of the most similar
English training sentence (``ner.data.pairs.Retrieval``). Usage::

    python bench/seq2seq_fra_eng.py --models runs/fra-attn-bundle runs/fra-none-bundle \\
        [--beam 5] [--length-penalty 1.0] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main() -> int:
    from rich.progress import track

    from ner.data.pairs import Retrieval, read_pairs, references, split_by_source
    from ner.settings import data_dir
    from ner.tasks import load
    from training.seq2seq import corpus_bleu

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, nargs="+", required=True)
    parser.add_argument("--data", type=Path, default=data_dir() / "fra-eng" / "eng-fra.txt")
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--length-penalty", type=float, default=1.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    train, _, test = split_by_source(read_pairs(args.data), 0.1, 0.1, args.split_seed)
    sources, refs = references(test)
    rows = []

    def score(system: str, hyps: list[str], seconds: float) -> None:
        exact = sum(h in r for h, r in zip(hyps, refs, strict=True)) / len(hyps)
        bleu = corpus_bleu(hyps, refs)
        rows.append({"system": system, "bleu": bleu, "exact": exact, "seconds": round(seconds, 2)})
        print(f"{system:<48} BLEU {bleu:6.2f}  exact {100 * exact:5.1f}%", file=sys.stderr)

    start = time.perf_counter()
    retrieval = Retrieval(train)
    score(
        "retrieval (nearest training sentence)",
        [retrieval.translate(s) for s in sources],
        time.perf_counter() - start,
    )
    examples = {}
    for path in args.models:
        translator = load(path, "onnx", threads=1)
        attention = translator.config.attention
        start = time.perf_counter()
        greedy = [t.translation for t in translator.translate(sources)]
        score(f"{translator.name} ({attention}), greedy", greedy, time.perf_counter() - start)
        for beam, lp in ((args.beam, 0.0), (args.beam, args.length_penalty)):
            start = time.perf_counter()
            hyps = []
            for s in track(sources, description=f"{translator.name} beam {beam}", transient=True):
                (t,) = translator.translate([s], beam_size=beam, length_penalty=lp)
                hyps.append(t.translation)
            label = f"{translator.name} ({attention}), beam {beam}, length penalty {lp:g}"
            score(label, hyps, time.perf_counter() - start)
        examples[translator.name] = [
            {"en": s, "fr": g, "refs": r}
            for s, g, r in list(zip(sources, greedy, refs, strict=True))[:8]
        ]
    result = {
        "data": str(args.data),
        "train_pairs": len(train),
        "test_sentences": len(sources),
        "test_references": sum(len(r) for r in refs),
        "rows": rows,
        "examples": examples,
        "machine": _cpu(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
