"""Does it matter where the GRU's relevance gate goes? The notes' GRU vs cuDNN's, on CoNLL-2003.

    python bench/gru_variants.py                          # 5,000 train sentences, 4 epochs, 2 seeds
    python bench/gru_variants.py --train 14041 --epochs 10 --seeds 0,1,2

The seed notes (Cho et al. 2014) gate c<t-1> before the matrix product,
c~<t> = tanh(W_c [Γr * c<t-1>, x<t>] + b_c) (``cell: seed_gru``); PyTorch's ``nn.GRU`` (cuDNN's
variant) gates after it, c~<t> = tanh(Γr * (W_cc c<t-1> + b_cr) + W_cx x<t> + b_c)
(``cell: gru``). Both train the same small BiGRU tagger (frozen GloVe 50d + trained delta, casing
features, no characters, BiGRU 100, per-token softmax, Adam 0.003, batch 32) on the first
``--train`` sentences of CoNLL-2003 train, and report dev entity F1 (all 3,250 dev sentences)
after each epoch, per seed, and the training time. Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ner.data.conll import read_conll  # noqa: E402
from ner.data.glove import load_glove  # noqa: E402
from ner.data.schemes import convert, label_names, spans_from_tags  # noqa: E402
from ner.data.vocab import Vocab  # noqa: E402
from ner.features import Featurizer  # noqa: E402
from ner.metrics import entity_scores  # noqa: E402
from ner.models.config import TaggerConfig  # noqa: E402
from ner.models.tagger import Tagger  # noqa: E402
from ner.nn.config import InputConfig, RNNConfig  # noqa: E402
from ner.settings import data_dir  # noqa: E402


def batches(featurizer, tokens, tags, index, size, rng=None):
    order = np.arange(len(tokens)) if rng is None else rng.permutation(len(tokens))
    for start in range(0, len(order), size):
        idx = order[start : start + size]
        f = featurizer.encode([tokens[i] for i in idx])
        y = np.zeros_like(f.word_ids)
        for row, i in enumerate(idx):
            y[row, : len(tags[i])] = [index[t] for t in tags[i]]
        arrays = (f.word_ids, f.glove_ids, f.char_ids, f.casing_ids, f.lengths)
        yield [torch.from_numpy(a) for a in arrays], torch.from_numpy(y), idx


def dev_f1(model, featurizer, tokens, tags, index, labels) -> float:
    model.eval()
    pred = [None] * len(tokens)
    with torch.no_grad():
        for x, _, idx in batches(featurizer, tokens, tags, index, 256):
            best = model(*x).argmax(-1).numpy()
            for row, i in enumerate(idx):
                pred[i] = [labels[k] for k in best[row, : len(tokens[i])]]
    model.train()
    return 100 * entity_scores(tags, pred, "iob2").micro.f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=5000, help="train sentences used")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--cells", default="gru,seed_gru")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = data_dir() / "conll2003"
    train = read_conll(folder / "train.txt")[: args.train]
    dev = read_conll(folder / "dev.txt")
    tokens = [list(s.tokens) for s in train]
    tags = [convert(list(s.labels or ()), "iob1", "iob2") for s in train]
    dev_tokens = [list(s.tokens) for s in dev]
    dev_tags = [convert(list(s.labels or ()), "iob1", "iob2") for s in dev]
    labels = label_names({sp.label for t in tags for sp in spans_from_tags(t, "iob2")}, "iob2")
    index = {label: i for i, label in enumerate(labels)}
    words = Vocab.build((w for s in tokens for w in s), casing="lower", min_freq=2)
    featurizer = Featurizer(words, None, use_glove=True)
    glove = load_glove().vectors
    results: dict[str, list[tuple[list[float], float]]] = {}
    for cell in args.cells.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            torch.manual_seed(seed)
            inputs = InputConfig(vocab_size=len(words), word_input="glove", char_encoder="none")
            config = TaggerConfig(
                num_tags=len(labels),
                inputs=inputs,
                rnn=RNNConfig(cell=cell, hidden_size=100),  # type: ignore[arg-type]
                head="softmax",
            )
            model = Tagger(config, glove)
            params = [p for p in model.parameters() if p.requires_grad]
            optimizer = torch.optim.Adam(params, lr=0.003)
            rng = np.random.default_rng(seed)
            f1s, start = [], time.perf_counter()
            for _ in range(args.epochs):
                for x, y, _ in batches(featurizer, tokens, tags, index, 32, rng):
                    optimizer.zero_grad()
                    model.loss(model(*x), y, x[-1]).backward()
                    torch.nn.utils.clip_grad_norm_(params, 5.0)
                    optimizer.step()
                f1s.append(dev_f1(model, featurizer, dev_tokens, dev_tags, index, labels))
            seconds = time.perf_counter() - start
            results.setdefault(cell, []).append((f1s, seconds))
            per_epoch = [round(f, 2) for f in f1s]
            log = f"{cell} seed {seed}: dev F1 per epoch {per_epoch}, {seconds:.0f} s"
            print(log, file=sys.stderr)
    print(f"\n{args.train} train sentences, {args.epochs} epochs, seeds {args.seeds}\n")
    print("| cell | GRU variant | dev F1 per seed (last epoch) | mean | train s (mean) |")
    print("| --- | --- | --- | --- | --- |")
    variant = {"gru": "Γr after W_cc (cuDNN)", "seed_gru": "Γr before W_cc (notes)"}
    for cell, runs in results.items():
        last = [f1s[-1] for f1s, _ in runs]
        seconds = statistics.mean(s for _, s in runs)
        print(f"| {cell} | {variant.get(cell, '')} | {' / '.join(f'{f:.2f}' for f in last)} "
              f"| {statistics.mean(last):.2f} | {seconds:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
