"""Ablation runs for CoNLL-2003: one change at a time on top of a base config, best dev F1 each.

    python bench/ablation.py                       # every variant, one after another
    python bench/ablation.py --only no_char seed2  # some of them
    python bench/ablation.py --report              # only print the table of finished runs

Each variant writes a config to ``runs/ablation/<variant>.yaml`` (the base config with the
variant's overrides and its own run name) and trains it with ``ner train fit`` on one CPU thread.
The table gives the best dev entity F1 (the metric of ``ner eval``), the epoch it was reached, and
training seconds. Needs ``../shared/data`` (or ``$NER_DATA_DIR``).
"""

from __future__ import annotations

import argparse
import copy
import csv
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]

# variant -> (what changes, overrides of the base config's `model:` / `data:` / top level)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "base": ("base config (fast: BiLSTM 100, char-CNN, casing, GloVe+delta, BIOES, Adam)", {}),
    "seed2": ("base, seed 2", {"seed_everything": 2}),
    "seed3": ("base, seed 3", {"seed_everything": 3}),
    "no_char": ("no character features", {"model.char_encoder": "none"}),
    "char_lstm": ("char-BiLSTM instead of char-CNN", {"model.char_encoder": "lstm"}),
    "no_casing": ("no casing features", {"model.casing_dim": 0}),
    "iob2": ("train in IOB2 instead of BIOES", {"data.tag_scheme": "iob2"}),
    "frozen_glove": ("GloVe frozen (no trained delta)", {"model.glove_finetune": False}),
    "learned": ("learned embeddings, no GloVe", {"model.word_input": "learned"}),
    "keep_case": ("vocab keeps case (GloVe lookup is always lower-cased)", {"data.casing": "keep"}),
    "gru": ("GRU instead of LSTM", {"model.cell": "gru"}),
    "softmax": ("softmax head instead of CRF", {"model.head": "softmax"}),
    "sgd": (
        "SGD momentum 0.9, lr 0.015, decay 0.05",
        {"model.optimizer": "sgd", "model.lr": 0.015},
    ),  # noqa: E501
    "no_dropout": ("no dropout", {"model.embed_dropout": 0.0, "model.dropout": 0.0}),
    "hidden200": ("BiLSTM 200 per direction", {"model.hidden_size": 200}),
}


def variant_config(base: dict[str, Any], name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(base)
    for dotted, value in overrides.items():
        node = config
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    for logger in config["trainer"].get("logger", []):
        logger["init_args"]["name"] = f"ablation-{name}"
    return config


def best_row(name: str) -> dict[str, Any] | None:
    runs = sorted((REPO / "runs" / f"ablation-{name}").glob("version_*/history.csv"))
    if not runs:
        return None
    with runs[-1].open() as f:
        rows = [r for r in csv.DictReader(f) if r.get("val_f1")]
    if not rows:
        return None
    best = max(rows, key=lambda r: float(r["val_f1"]))
    return {
        "f1": 100 * float(best["val_f1"]),
        "epoch": int(best["epoch"]),
        "epochs": len(rows),
        "seconds": float(rows[-1]["train_seconds"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="configs/conll2003-fast.yaml")
    parser.add_argument("--only", nargs="*", help="variants to run (default: all)")
    parser.add_argument("--epochs", type=int, default=None, help="override max_epochs")
    parser.add_argument("--report", action="store_true", help="only print the table")
    args = parser.parse_args()
    base = yaml.safe_load((REPO / args.base).read_text())
    names = args.only or list(VARIANTS)
    out = REPO / "runs" / "ablation"
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in [] if args.report else names:
        what, overrides = VARIANTS[name]
        config = variant_config(base, name, overrides)
        if args.epochs:
            config["trainer"]["max_epochs"] = args.epochs
        path = out / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        started = time.time()
        cmd = [sys.executable, "-m", "ner_cli", "train", "fit", "-c", str(path)]
        log = (out / f"{name}.log").open("w")
        code = subprocess.call(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        print(f"{name}: exit {code} in {time.time() - started:.0f}s", file=sys.stderr, flush=True)
    print(f"base: `{args.base}`; machine: {platform.processor() or platform.machine()}, 1 thread")
    print("| variant | change | best dev F1 | at epoch | epochs run | train s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in names:
        row = best_row(name)
        if row is None:
            continue
        print(
            f"| {name} | {VARIANTS[name][0]} | {row['f1']:.2f} | {row['epoch']} | "
            f"{row['epochs']} | {row['seconds']:.0f} |"
        )


if __name__ == "__main__":
    main()
