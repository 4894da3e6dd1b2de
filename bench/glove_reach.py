"""What pruning the GloVe table would cost: dev F1 with all 400k words vs pruned tables.

    python bench/glove_reach.py --model models/conll2003-en

The shipped bundle refers to the installed GloVe package by sha256 and memory-maps all 400k rows,
so a word seen only at inference still finds its vector. This script measures what that is worth
on CoNLL-2003 dev by zeroing GloVe rows (as if they had been pruned away) and scoring again:

- ``all``: every GloVe word reachable (what the bundle does);
- ``train+top50k``: only words of the training file plus the 50k most frequent GloVe words;
- ``train``: only words of the training file.

It also counts dev entity tokens that are in GloVe but neither in train nor in the top 50k.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ner.bundle import load_bundle  # noqa: E402
from ner.data.conll import read_conll  # noqa: E402
from ner.data.glove import load_glove  # noqa: E402
from ner.features import WordTables  # noqa: E402
from ner.metrics import entity_scores  # noqa: E402
from ner.predict import Predictor  # noqa: E402
from ner.settings import data_dir  # noqa: E402

TOP = 50_000


def pruned(glove: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """A copy of the GloVe matrix with every row outside ``keep`` (bool (G,)) zeroed."""
    out = np.array(glove, dtype=np.float32)
    out[~keep] = 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO / "models" / "conll2003-en"))
    parser.add_argument("--train", default=str(data_dir() / "conll2003" / "train.txt"))
    parser.add_argument("--dev", default=str(data_dir() / "conll2003" / "dev.txt"))
    args = parser.parse_args()

    bundle = load_bundle(args.model)
    if bundle.tables.glove is None:
        sys.exit(f"{args.model}: this bundle does not use GloVe")
    glove = load_glove()
    train = read_conll(args.train)
    dev = read_conll(args.dev)
    train_rows = {glove.id(w) for s in train for w in s.tokens} - {-1}
    in_train = np.zeros(len(bundle.tables.glove), dtype=bool)
    in_train[list(train_rows)] = True
    top = np.zeros_like(in_train)
    top[:TOP] = True

    ent_tokens = [w for s in dev for w, t in zip(s.tokens, s.labels or (), strict=True) if t != "O"]
    ids = [glove.id(w) for w in ent_tokens]
    unseen = sum(1 for i in ids if i >= 0 and not in_train[i] and not top[i])
    print(
        f"dev entity tokens: {len(ent_tokens)}; in GloVe but neither in train nor in the top "
        f"50k: {unseen} ({100 * unseen / len(ent_tokens):.1f}%)"
    )

    gold = [list(s.labels or ()) for s in dev]
    sentences = [list(s.tokens) for s in dev]
    print("| GloVe rows reachable | rows | dev F1 |")
    print("| --- | --- | --- |")
    for name, keep in (
        ("all", np.ones_like(in_train)),
        ("train+top50k", in_train | top),
        ("train", in_train),
    ):
        tables = WordTables(bundle.tables.table, pruned(bundle.tables.glove, keep))
        variant = dataclasses.replace(bundle, tables=tables)
        pred = Predictor(variant).predict_tokens(sentences, scheme="iob1", batch_size=256)
        f1 = entity_scores(gold, pred, scheme="iob1").micro.f1
        print(f"| {name} | {int(keep.sum()):,} | {100 * f1:.2f} |")


if __name__ == "__main__":
    main()
