"""Summarise scripts/sst2_train.py JSON lines: dev accuracy per setting over seeds (mean, std,
min-max), and the accuracy of the seeds' ensemble (mean log-probability of their best epochs).

    .venv/bin/python scripts/sst2_summary.py runs/sst2/pooling.jsonl --by pooling
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

DEV = Path("/work/shared/data/sst2/dev.tsv")
DEFAULTS = {"adv": 0.0, "min_freq": 1}
"""Settings that older log lines lack: the value they ran with."""


def ensemble_accuracy(runs: list[dict], gold: np.ndarray) -> float | None:
    """Accuracy of the mean log-softmax of the runs' best-epoch dev logits (None without them)."""
    if not runs or any(not r.get("best_dev_logits") for r in runs):
        return None
    logits = np.stack([np.asarray(r["best_dev_logits"], dtype=np.float64) for r in runs])
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return float((logp.mean(0).argmax(-1) == gold).mean())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("log", type=Path)
    p.add_argument("--by", nargs="+", default=["pooling"])
    p.add_argument("--rows", action="store_true", help="one line per run too")
    p.add_argument("--dev", type=Path, default=DEV, help="the dev file (for ensemble accuracy)")
    args = p.parse_args()
    lines = args.dev.read_text(encoding="utf-8").splitlines()
    gold = np.array([int(line.rsplit("\t", 1)[1]) for line in lines if line.strip()])
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for line in args.log.read_text().splitlines():
        r = json.loads(line)
        groups[tuple(r["args"].get(k, DEFAULTS.get(k)) for k in args.by)].append(r)
        if args.rows:
            a = r["args"]
            curve = " ".join(f"{h['dev_acc']:.3f}" for h in r["history"])
            key = [a.get(k, DEFAULTS.get(k)) for k in args.by]
            print(
                f"{key} seed {a['seed']}: best {r['best_dev_acc']:.4f} "
                f"(epoch {r['best_epoch']}), avg-last {r['average_dev_acc']:.4f}, "
                f"T {r['temperature']:.2f}, {r['train_seconds']:.0f}s | {curve}"
            )
    print(
        "| " + " | ".join(args.by) + " | seeds | best epoch: mean ± sd (min-max) |"
        " last-epochs average: mean ± sd (min-max) | ensemble of the seeds |"
    )
    print("|" + " --- |" * (len(args.by) + 4))
    for key, runs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        cells = []
        for field in ("best_dev_acc", "average_dev_acc"):
            xs = [100 * r[field] for r in runs]
            sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
            cells.append(f"{statistics.mean(xs):.2f} ± {sd:.2f} ({min(xs):.2f}-{max(xs):.2f})")
        ens = ensemble_accuracy(runs, gold)
        cells.append("-" if ens is None else f"{100 * ens:.2f}")
        seeds = ",".join(str(r["args"]["seed"]) for r in runs)
        print("| " + " | ".join(map(str, key)) + f" | {seeds} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
