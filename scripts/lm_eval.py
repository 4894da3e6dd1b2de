"""Sampling metrics of the shipped language models (numbers for docs/benchmarks.md).

    .venv/bin/python scripts/lm_eval.py dinos --model models/dinos-char
        1,000 samples (seed 0, temperature 1): the share not in dinos.txt, and the held-out
        bits per character of the model and of the add-one character bigram
    .venv/bin/python scripts/lm_eval.py generator --model models/sst2-generator \\
        --classifier models/sst2-en --temperature 0.8
        200 samples per class: the share the SST-2 classifier reads as that class
    .venv/bin/python scripts/lm_eval.py score --model models/sst2-lm --data sst2/dev.tsv
        dev perplexity through the exported bundle (the NumPy loop over ONNX)

Prints one JSON object; ``--out`` also writes it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ner.data import lm  # noqa: E402
from ner.tasks import load  # noqa: E402

DATA = Path("/work/shared/data")


def dinos(args: argparse.Namespace) -> dict:
    model = load(args.model)
    lines = [n.lower() for n in lm.read_lines(DATA / "dinos" / "dinos.txt")]
    names = set(lines)
    train, held = lm.split_holdout(lines, 0.1, seed=0)  # the split scripts/lm_train.py used
    samples: list[str] = []
    for seed in tqdm(range(args.samples // 50), desc="sampling"):
        samples += model.generate(50, seed=seed, temperature=args.temperature)
    scores = []
    for i in tqdm(range(0, len(held), 64), desc="scoring held-out names"):
        scores += model.score(held[i : i + 64])
    nats = -sum(s.log_prob for s in scores)
    tokens = sum(len(s.tokens) for s in scores)
    vocab = model.vocab
    train_ids = [lm.encode(vocab, list(n))[1] for n in train]
    held_ids = [lm.encode(vocab, list(n))[1] for n in held]
    base_nats, base_tokens = lm.bigram_add_one(train_ids, held_ids, len(vocab))
    return {
        "samples": len(samples),
        "temperature": args.temperature,
        "novel_share": sum(bool(s) and s not in names for s in samples) / len(samples),
        "novel_vs_train_split_share": sum(bool(s) and s not in set(train) for s in samples)
        / len(samples),
        "distinct_share": len(set(samples)) / len(samples),
        "empty_share": sum(not s for s in samples) / len(samples),
        "mean_length": sum(map(len, samples)) / len(samples),
        "examples": samples[:20],
        "heldout_names": len(held),
        "heldout_bits_per_char": nats / tokens / math.log(2),
        "bigram_add_one_bits_per_char": base_nats / base_tokens / math.log(2),
        "chars_counted": "every character of a name and its <eos>",
    }


def generator(args: argparse.Namespace) -> dict:
    model = load(args.model)
    clf = load(args.classifier)
    out: dict = {"temperature": args.temperature, "samples_per_class": args.samples}
    for cls in model.classes:
        samples: list[list[str]] = []
        for seed in range(args.samples // 50):
            samples += model.generate_tokens(
                50, seed=seed, temperature=args.temperature, top_p=args.top_p, class_=cls
            )
        results = clf.classify(samples)
        share = sum(r.label == cls for r in results) / len(results)
        out[f"{cls}_read_as_{cls}"] = share
        out[f"{cls}_examples"] = [" ".join(s) for s in samples[:8]]
        out[f"{cls}_empty_share"] = sum(not s for s in samples) / len(samples)
    out["top_p"] = args.top_p
    return out


def score(args: argparse.Namespace) -> dict:
    model = load(args.model)
    rows = lm.read_sst2(DATA / args.data)
    nats, tokens = 0.0, 0
    for i in tqdm(range(0, len(rows), 64), desc="scoring"):
        chunk = rows[i : i + 64]
        if model.classes:
            for r in chunk:
                s = model.score_tokens([r.tokens], class_=r.label)[0]
                nats -= s.log_prob
                tokens += len(s.tokens)
            continue
        for s in model.score_tokens([r.tokens for r in chunk]):
            nats -= s.log_prob
            tokens += len(s.tokens)
    return {
        "data": args.data,
        "nats_per_token": nats / tokens,
        "perplexity": math.exp(nats / tokens),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("what", choices=["dinos", "generator", "score"])
    p.add_argument("--model", required=True)
    p.add_argument("--classifier", default=str(ROOT / "models" / "sst2-en"))
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--data", default="sst2/dev.tsv")
    p.add_argument("--out")
    args = p.parse_args()
    start = time.monotonic()
    result = {"dinos": dinos, "generator": generator, "score": score}[args.what](args)
    result["seconds"] = round(time.monotonic() - start, 1)
    result["command"] = " ".join(["scripts/lm_eval.py", *sys.argv[1:]])
    text = json.dumps(result, indent=1, ensure_ascii=False)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
