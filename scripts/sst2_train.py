"""SST-2 experiments in plain torch: train a sentence classifier, score dev, optionally export.

    .venv/bin/python scripts/sst2_train.py --pooling max --seed 1 --log runs/sst2/pooling.jsonl
    .venv/bin/python scripts/sst2_train.py --pooling max --seed 1 --out models/sst2-en

    .venv/bin/python scripts/sst2_train.py --chars cnn --adv 2 --seed 1 2 3 4 --out DIR

One run = one seed; several ``--seed`` values train one model each and, with ``--out``, export
them as one ensemble bundle (mean log-probability of the members, one temperature fitted on the
ensemble's dev logits). Each epoch scores dev; the run keeps the best epoch's weights and the
average of the last ``--average`` epochs' weights (checkpoint averaging) and reports both. The
chosen weights (``--pick``) get a temperature fitted on dev (dev ECE before and after) and, with
``--out``, are exported as a ``classify`` bundle with its model card. A JSON line per run goes to
``--log``. The model is ``ner.models.classifier.Classifier``; data, metrics, calibration and
export are ``ner.classify``'s, as in ``ner train`` with configs/sst2.yaml.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ner.classify import (  # noqa: E402
    DevScores,
    ensemble_logits,
    export_classifier,
    read_labelled,
    score_logits,
)
from ner.data.vocab import Vocab, char_vocab  # noqa: E402
from ner.features import Featurizer  # noqa: E402
from ner.models.classifier import Classifier  # noqa: E402
from ner.models.config import ClassifierConfig  # noqa: E402
from ner.nn.config import InputConfig, RNNConfig  # noqa: E402

DATA = Path("/work/shared/data")
LABELS = {"0": "negative", "1": "positive"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA, help="data folder (holds sst2/)")
    p.add_argument("--pooling", default="max", choices=["last", "max", "mean", "attention"])
    p.add_argument("--cell", default="lstm")
    p.add_argument("--hidden", type=int, default=150)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--members", type=int, default=1, help="ensemble heads in one model")
    p.add_argument("--chars", default="none", choices=["none", "cnn", "lstm"])
    p.add_argument("--input-dropout", type=float, default=0.5)
    p.add_argument("--rnn-dropout", type=float, default=0.3)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--word-dropout", type=float, default=0.1, help="P(word -> UNK) in training")
    p.add_argument("--finetune", type=int, default=1, help="learn the GloVe delta (1) or not (0)")
    p.add_argument("--delta-decay", type=float, default=0.0, help="L2 on the GloVe delta")
    p.add_argument("--delta-lr", type=float, default=1.0, help="GloVe delta lr, times --lr")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--clip", type=float, default=5.0)
    p.add_argument("--average", type=int, default=4, help="average the last N epochs' weights")
    p.add_argument("--pick", default="dev", choices=["dev", "best", "average"])
    p.add_argument(
        "--propagate",
        type=int,
        default=0,
        help="give the N most frequent GloVe words missing from the training vocabulary a delta "
        "(the similarity-weighted mean of their --neighbours nearest training words' deltas)",
    )
    p.add_argument("--neighbours", type=int, default=10)
    p.add_argument(
        "--adv",
        type=float,
        default=0.0,
        help="adversarial training (Miyato et al. 2017): also train on the word vectors moved "
        "by this L2 norm per sentence along the loss gradient (0: off)",
    )
    p.add_argument(
        "--min-freq", type=int, default=1, help="training words seen fewer times get no delta"
    )
    p.add_argument("--seed", type=int, nargs="+", default=[1], help="one model per seed")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--log", type=Path, default=None, help="append a JSON line per run")
    p.add_argument("--out", type=Path, default=None, help="export the bundle here")
    p.add_argument("--name", default="sst2-en")
    p.add_argument("--version", default="1.0.0")
    return p.parse_args(argv)


def tensors(featurizer: Featurizer, sentences: list[list[str]]) -> list[torch.Tensor]:
    f = featurizer.encode(sentences)
    arrays = (f.word_ids, f.glove_ids, f.char_ids, f.casing_ids, f.lengths)
    return [torch.from_numpy(a) for a in arrays]


def batches(lengths: np.ndarray, size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Index batches of similar lengths (shuffled within length buckets when ``rng``)."""
    order = np.argsort(
        lengths + (rng.random(len(lengths)) if rng is not None else 0), kind="stable"
    )
    out = [order[i : i + size] for i in range(0, len(order), size)]
    if rng is not None:
        rng.shuffle(out)  # type: ignore[arg-type]
    return out


def take(data: list[torch.Tensor], idx: np.ndarray) -> list[torch.Tensor]:
    """The rows ``idx`` of the padded arrays, trimmed to their longest sentence."""
    index = torch.from_numpy(idx)
    rows = [t[index] for t in data]
    t = max(int(rows[-1].max()), 1)
    rows[0], rows[1], rows[3] = rows[0][:, :t], rows[1][:, :t], rows[3][:, :t]
    rows[2] = rows[2][:, :t]
    return rows


def logits_of(model: Classifier, data: list[torch.Tensor], batch: int = 256) -> np.ndarray:
    model.eval()
    out = np.zeros((len(data[-1]), model.config.num_classes), dtype=np.float32)
    with torch.no_grad():
        for idx in batches(data[-1].numpy(), batch, None):
            out[idx] = model(*take(data, idx)).numpy()
    return out


def accuracy(logits: np.ndarray, gold: np.ndarray) -> float:
    return float((logits.argmax(-1) == gold).mean())


def build(args: argparse.Namespace, words: Vocab, chars: Vocab | None) -> Classifier:
    from ner.data.glove import load_glove

    config = ClassifierConfig(
        num_classes=2,
        inputs=InputConfig(
            vocab_size=len(words),
            num_chars=len(chars) if chars is not None else 0,
            word_input="glove",
            word_dim=50,
            glove_finetune=bool(args.finetune),
            char_encoder=args.chars,
            char_dim=16,
            char_hidden=32,
            casing_dim=0,
            dropout=args.input_dropout,
        ),
        rnn=RNNConfig(
            cell=args.cell,
            hidden_size=args.hidden,
            num_layers=args.layers,
            bidirectional=True,
            dropout=args.rnn_dropout,
        ),
        pooling=args.pooling,
        attention_size=64,
        dropout=args.dropout,
        members=args.members,
    )
    return Classifier(config, load_glove().vectors)


def train(args: argparse.Namespace, seed: int) -> tuple[dict[str, Any], Classifier, Featurizer]:
    """Train one model with ``seed``: (its JSON record, the picked weights, its featurizer)."""
    torch.manual_seed(seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(seed)
    train_file, dev_file = args.data / "sst2" / "train.tsv", args.data / "sst2" / "dev.tsv"
    train_data, dev_data = read_labelled(train_file), read_labelled(dev_file)
    labels = list(LABELS.values())
    train_tokens = [list(s.tokens) for s in train_data]
    words = Vocab.build(
        (w for s in train_tokens for w in s), casing="lower", min_freq=args.min_freq
    )
    chars = char_vocab(w for s in train_tokens for w in s) if args.chars != "none" else None
    featurizer = Featurizer(words, chars, use_glove=True)
    train_t = tensors(featurizer, train_tokens)
    dev_t = tensors(featurizer, [list(s.tokens) for s in dev_data])
    y_train = torch.tensor([labels.index(LABELS[s.label]) for s in train_data])
    y_dev = np.array([labels.index(LABELS[s.label]) for s in dev_data])
    model = build(args, words, chars)
    delta = [p for n, p in model.named_parameters() if n.startswith("inputs.words.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("inputs.words.")]
    optimizer = torch.optim.Adam(
        [
            {"params": rest},
            {"params": delta, "weight_decay": args.delta_decay, "lr": args.lr * args.delta_lr},
        ],
        lr=args.lr,
    )
    history: list[dict[str, Any]] = []
    snapshots: list[dict[str, torch.Tensor]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] = (-1.0, -1, {})
    start = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        total, n = 0.0, 0
        for idx in tqdm(batches(train_t[-1].numpy(), args.batch, rng), desc=f"epoch {epoch}",
                        leave=False, disable=not sys.stderr.isatty()):  # fmt: skip
            word_ids, glove_ids, char_ids, casing_ids, lengths = take(train_t, idx)
            if args.word_dropout > 0:
                drop = (torch.rand(word_ids.shape) < args.word_dropout) & (word_ids > 0)
                word_ids = word_ids.masked_fill(drop, 1)
                glove_ids = glove_ids.masked_fill(drop, 0)
            optimizer.zero_grad()
            y = y_train[torch.from_numpy(idx)]
            loss = model.training_loss(
                word_ids, glove_ids, char_ids, casing_ids, lengths, y, adversarial=args.adv
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            total += loss.item() * len(idx)
            n += len(idx)
        dev_acc = accuracy(logits_of(model, dev_t), y_dev)
        state = copy.deepcopy(model.state_dict())
        snapshots = (snapshots + [state])[-args.average :]
        if dev_acc > best[0]:
            best = (dev_acc, epoch, state)
        history.append({"epoch": epoch, "train_loss": total / n, "dev_acc": dev_acc})
        print(json.dumps(history[-1]), file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    best_logits = None
    if best[2]:
        model.load_state_dict(best[2])
        best_logits = logits_of(model, dev_t).round(4).tolist()  # for ensembling estimates
    averaged = {k: torch.stack([s[k].float() for s in snapshots]).mean(0) for k in snapshots[0]}
    model.load_state_dict(averaged)
    avg_logits = logits_of(model, dev_t)
    avg_acc = accuracy(avg_logits, y_dev)
    pick = args.pick if args.pick != "dev" else ("average" if avg_acc >= best[0] else "best")
    if pick == "best":
        model.load_state_dict(best[2])
    dev_logits = logits_of(model, dev_t)
    plain_acc = accuracy(dev_logits, y_dev)
    if args.propagate > 0:
        model, featurizer = propagate_delta(model, featurizer, args.propagate, args.neighbours)
        dev_t = tensors(featurizer, [list(s.tokens) for s in dev_data])
        dev_logits = logits_of(model, dev_t)
    dev = score_logits(dev_logits, y_dev, labels)
    result = {
        "args": {
            **{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "seed": seed,
        },
        "history": history,
        "best_epoch": best[1],
        "best_dev_acc": best[0],
        "average_dev_acc": avg_acc,
        "picked": pick,
        "dev_acc_before_propagation": plain_acc,
        **dev_fields(dev),
        "train_seconds": seconds,
        "best_dev_logits": best_logits,
        "dev_logits": dev_logits,
        "gold": y_dev,
    }
    return result, model.eval(), featurizer


def dev_fields(dev: DevScores) -> dict[str, Any]:
    """A run's dev accuracy, report and calibration, as the JSON lines and the card read them."""
    return {
        "dev_acc": dev.report["accuracy"],
        "dev_report": dev.report,
        "temperature": dev.temperature,
        "dev_ece_before": dev.ece,
        "dev_ece_after": dev.ece_calibrated,
    }


def ensemble(args: argparse.Namespace, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The record of the seeds' ensemble (mean log-probability), calibrated on dev."""
    gold = runs[0]["gold"]
    dev = score_logits(
        ensemble_logits([r["dev_logits"] for r in runs]), gold, list(LABELS.values())
    )
    return {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "members": [
            {k: r[k] for k in ("best_epoch", "best_dev_acc", "picked", "dev_acc", "train_seconds")}
            for r in runs
        ],  # fmt: skip
        "history": [r["history"] for r in runs],
        "best_dev_acc": dev.report["accuracy"],
        "average_dev_acc": float("nan"),
        "picked": "ensemble of " + ", ".join(r["picked"] for r in runs),
        **dev_fields(dev),
        "train_seconds": sum(r["train_seconds"] for r in runs),
    }


def propagate_delta(
    model: Classifier, featurizer: Featurizer, n: int, k: int
) -> tuple[Classifier, Featurizer]:
    """Extend the vocabulary with the ``n`` most frequent GloVe words it lacks; each new word's
    delta is the cosine-weighted mean of the deltas of its ``k`` nearest training words (by
    GloVe cosine), so that words never seen in training move the way their neighbours moved.

    Returns a new model (vocab_size grown, every other weight copied) and featurizer.
    """
    import dataclasses

    from ner.data.glove import load_glove

    glove = load_glove()
    words = featurizer.words
    old = model.word_table()  # (V, D) deltas
    rows = np.array([glove.id(w) for w in words.itos], dtype=np.int64)
    known = rows >= 0
    base = np.asarray(glove.vectors[rows[known]], dtype=np.float32)  # (V', D)
    base /= np.linalg.norm(base, axis=1, keepdims=True) + 1e-8
    base_delta = old[known]
    new_words = [w for w in glove.words[: n * 2] if w not in words][:n]
    new_rows = np.asarray(glove.vectors[[glove.id(w) for w in new_words]], dtype=np.float32)
    new_rows /= np.linalg.norm(new_rows, axis=1, keepdims=True) + 1e-8
    deltas = np.zeros((len(new_words), old.shape[1]), dtype=np.float32)
    for i in range(0, len(new_words), 2048):
        sim = new_rows[i : i + 2048] @ base.T  # (b, V')
        top = np.argpartition(-sim, k, axis=1)[:, :k]  # (b, k)
        w = np.clip(np.take_along_axis(sim, top, axis=1), 0, None)  # (b, k)
        w /= w.sum(axis=1, keepdims=True) + 1e-8
        deltas[i : i + 2048] = np.einsum("bk,bkd->bd", w, base_delta[top])
    vocab = Vocab([*words.itos, *new_words], casing=words.casing)
    inputs = dataclasses.replace(model.config.inputs, vocab_size=len(vocab))
    config = dataclasses.replace(model.config, inputs=inputs)
    grown = Classifier(config, glove.vectors)
    state = model.state_dict()
    state["inputs.words.delta.weight"] = torch.from_numpy(np.concatenate([old, deltas]))
    grown.load_state_dict(state)
    return grown.eval(), Featurizer(vocab, featurizer.chars, featurizer.use_glove,
                                    featurizer.max_word_len)  # fmt: skip


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export(
    args: argparse.Namespace,
    model: Classifier | list[Classifier],
    featurizer: Featurizer,
    labels: list[str],
    result: dict[str, Any],
    train_file: Path,
    dev_file: Path,
) -> None:
    from training.base import hardware

    files = [
        {"file": str(p.relative_to(args.data)), "sha256": _sha256(p), "split": split}
        for p, split in ((train_file, "train"), (dev_file, "dev"))
    ]
    card = {
        "training_data": {
            "dataset": "SST-2 (Stanford Sentiment Treebank, binary, sentence level)",
            "files": files,
            "license": "no license stated by the source (clairett/pytorch-sentiment-classification,"
            " data/SST2); sentences from rottentomatoes.com snippets (Pang & Lee 2005); treat"
            " as research-use; cite Socher et al., EMNLP 2013",
            "label_map": LABELS,
        },
        "metrics": {  # the layout of `ner export`'s cards
            "dev": {
                "acc": result["dev_acc"],
                "macro_f1": result["dev_report"]["macro_f1"],
                "per_class": result["dev_report"]["per_class"],
                "ece": result["dev_ece_before"],
                "ece_calibrated": result["dev_ece_after"],
                "temperature": result["temperature"],
            },
            **(
                {"dev_members": [m["dev_acc"] for m in result["members"]]}
                if "members" in result
                else {
                    "dev_best_epoch_acc": result["best_dev_acc"],
                    "dev_averaged_acc": result["average_dev_acc"],
                }
            ),
        },
        "calibration": {
            "method": "temperature scaling (Guo et al. 2017), one T minimising dev NLL",
            "temperature": result["temperature"],
            "dev_ece_before": result["dev_ece_before"],
            "dev_ece_after": result["dev_ece_after"],
            "ece_bins": 15,
        },
        "training": {
            "how": "scripts/sst2_train.py (plain torch; recipe of configs/sst2.yaml)",
            "command": "scripts/sst2_train.py " + " ".join(sys.argv[1:]),
            "weights": result["picked"],
            **({"members": result["members"]} if "members" in result else {}),
            "history": result["history"],
            "train_seconds": result["train_seconds"],
            "hardware": hardware(),
        },
        "tokenizer": "ner.classify.tokenize: lower-case, PTB-style (wo n't, 's), like the data",
    }
    export_classifier(
        model,
        args.out,
        featurizer=featurizer,
        labels=labels,
        temperature=result["temperature"],
        name=args.name,
        version=args.version,
        card=card,
        max_bytes=10 * 1024 * 1024,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if len(args.seed) > 1 and args.propagate:
        sys.exit("--propagate grows each model's vocabulary apart: not with several --seed")
    runs, models = [], []
    for seed in args.seed:
        run, model, featurizer = train(args, seed)
        runs.append(run)
        models.append(model)
        line = {k: v for k, v in run.items() if k not in ("dev_report", "dev_logits", "gold")}
        if args.log is not None:
            args.log.parent.mkdir(parents=True, exist_ok=True)
            with args.log.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\n")
    result = runs[0] if len(runs) == 1 else ensemble(args, runs)
    if args.out is not None:
        data = args.data / "sst2"
        exported = models[0] if len(models) == 1 else models
        export(args, exported, featurizer, list(LABELS.values()), result, data / "train.tsv",
               data / "dev.tsv")  # fmt: skip
    summary = {k: result.get(k) for k in ("best_epoch", "best_dev_acc", "average_dev_acc", "picked",
                                      "temperature", "dev_ece_before", "dev_ece_after",
                                      "train_seconds")}  # fmt: skip
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
