"""Exact match of a dates -> ISO bundle on held-out generated pairs, per format family.

The held-out pairs come from ``ner.data.dates.generate_pairs`` with a seed the training never
used (default 2026; training uses 0, dev 1). Greedy search on ONNX Runtime, batched; optionally
beam search too. Also scores a fixed list of hand-written dates in the families of the issue,
spelled the way people write them (capitals, commas), and reports how many held-out texts also
occur in the training pairs. Usage::

    python bench/seq2seq_dates.py --model models/dates-iso [--n 10000] [--seed 2026]
        [--train-size 40000 --train-seed 0] [--beam 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import sys
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

HAND_WRITTEN = [
    ("Tuesday, March 7, 2023", "2023-03-07"),
    ("7 March 2023", "2023-03-07"),
    ("March 7th, 2023", "2023-03-07"),
    ("the 7th of March 2023", "2023-03-07"),
    ("Tue 7 Mar 23", "2023-03-07"),
    ("3/7/2023", "2023-03-07"),
    ("03/07/23", "2023-03-07"),
    ("7.3.2023", "2023-03-07"),
    ("07.03.23", "2023-03-07"),
    ("2023-03-07", "2023-03-07"),
    ("2023/3/7", "2023-03-07"),
    ("2023 March 7", "2023-03-07"),
    ("Sept 9, 1999", "1999-09-09"),
    ("Thursday, 31 December 1903", "1903-12-31"),
    ("Feb 29 2000", "2000-02-29"),
    ("1 jan 50", "1950-01-01"),
    ("31 dec 49", "2049-12-31"),
    ("12/31/99", "1999-12-31"),
    ("Thursday, January 1, 2099", "2099-01-01"),
    ("monday 1 january 1900", "1900-01-01"),
]


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _family_of(n: int, seed: int) -> list[str]:
    """The format family of each generated pair (replays the generator's draws)."""
    from ner.data import dates

    rng = random.Random(seed)
    names = list(dates.FORMATS)
    span = (dates.LAST - dates.FIRST).days
    out = []
    for _ in range(n):
        date = dates.FIRST + dt.timedelta(days=rng.randint(0, span))
        family = rng.choice(names)
        dates.render(date, family, rng)
        out.append(family)
    return out


def main() -> int:
    from rich.progress import track

    from ner.data.dates import generate_pairs
    from ner.tasks import load

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "dates-iso")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--train-size", type=int, default=40_000)
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--beam", type=int, default=0, help="also score beam search (0: no)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    translator = load(args.model, "onnx", threads=1)
    pairs = generate_pairs(args.n, args.seed)
    families = _family_of(args.n, args.seed)
    train = {s for s, _ in generate_pairs(args.train_size, args.train_seed)}

    start = time.perf_counter()
    chunk = 500
    outputs = []
    for k in track(range(0, len(pairs), chunk), description="greedy", transient=True):
        batch = [s for s, _ in pairs[k : k + chunk]]
        outputs += [t.translation for t in translator.translate(batch, batch_size=chunk)]
    greedy_s = time.perf_counter() - start
    right = [o == iso for o, (_, iso) in zip(outputs, pairs, strict=True)]
    per_family: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for ok, fam in zip(right, families, strict=True):
        totals[fam] += 1
        per_family[fam] += ok
    errors = [(s, iso, o) for (s, iso), o, ok in zip(pairs, outputs, right, strict=True) if not ok]
    hand = translator.translate([s for s, _ in HAND_WRITTEN])
    result = {
        "model": str(args.model),
        "name": translator.name,
        "version": translator.version,
        "n": args.n,
        "seed": args.seed,
        "greedy_exact": sum(right) / len(right),
        "greedy_seconds": round(greedy_s, 2),
        "per_family": {f: per_family[f] / totals[f] for f in sorted(totals)},
        "held_out_texts_also_in_training": sum(s in train for s, _ in pairs) / len(pairs),
        "errors": errors[:20],
        "hand_written": [
            {"text": s, "gold": iso, "output": t.translation, "ok": t.translation == iso}
            for (s, iso), t in zip(HAND_WRITTEN, hand, strict=True)
        ],
        "machine": _cpu(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if args.beam > 1:
        start = time.perf_counter()
        beam_right = 0
        for s, iso in track(pairs, description=f"beam {args.beam}", transient=True):
            (t,) = translator.translate([s], beam_size=args.beam)
            beam_right += t.translation == iso
        result["beam"] = args.beam
        result["beam_exact"] = beam_right / len(pairs)
        result["beam_seconds"] = round(time.perf_counter() - start, 2)
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
