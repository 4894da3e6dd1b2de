"""Train, evaluate and export the language models on the shared corpora (plain torch, one thread).

    .venv/bin/python scripts/lm_train.py dinos --out models/dinos-char
    nice -n 10 .venv/bin/python scripts/lm_train.py shakespeare --minutes 40 --out ... &
    .venv/bin/python scripts/lm_train.py sst2 --out models/sst2-lm
    .venv/bin/python scripts/lm_train.py sst2 --conditioning both --out models/sst2-generator

Checkpoints go to ``runs/lm/<run>/last.pt`` (resumed with ``--resume``), the metrics to
``runs/lm/<run>/metrics.json``; the bundle's card carries the metrics. Data: /work/shared/data
(``--data``), never committed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ner.data import lm  # noqa: E402
from ner.features import Featurizer  # noqa: E402
from ner.generate import export_language_model  # noqa: E402
from ner.models.config import LanguageModelConfig  # noqa: E402
from ner.models.language_model import LanguageModel, sequence_loss, token_log_probs  # noqa: E402
from ner.nn.config import InputConfig, RNNConfig  # noqa: E402

DATA = Path("/work/shared/data")
SST2_CLASSES = ("negative", "positive")


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------
# Corpora -> (vocab, train pairs, eval pairs, labels)


def load_corpus(args: argparse.Namespace) -> dict:
    data = Path(args.data)
    if args.corpus == "dinos":
        path = data / "dinos" / "dinos.txt"
        names = [n.lower() for n in lm.read_lines(path)]
        train, held = lm.split_holdout(names, 0.1, seed=0)
        vocab = lm.lm_vocab((list(n) for n in train), casing="lower")
        return {
            "files": [path],
            "vocab": vocab,
            "train": [list(n) for n in train],
            "eval": [list(n) for n in held],
            "all_names": set(names),
            "train_names": set(train),
            "tokenizer": "chars",
            "max_length": 40,
        }
    if args.corpus == "shakespeare":
        path = data / "tinyshakespeare" / "input.txt"
        train, val = lm.read_stream(path, 0, 0.9), lm.read_stream(path, 0.9, 1.0)
        vocab = lm.lm_vocab([list(train)])
        return {
            "files": [path],
            "vocab": vocab,
            "stream": np.asarray(vocab.encode(train), dtype=np.int64),
            "val_stream": np.asarray(vocab.encode(val), dtype=np.int64),
            "tokenizer": "chars",
            "max_length": 500,
        }
    train_rows = lm.read_sst2(data / "sst2" / "train.tsv")
    dev_rows = lm.read_sst2(data / "sst2" / "dev.tsv")
    vocab = lm.lm_vocab((r.tokens for r in train_rows), casing="lower", min_freq=args.min_freq)
    return {
        "files": [data / "sst2" / "train.tsv", data / "sst2" / "dev.tsv"],
        "vocab": vocab,
        "train": [r.tokens for r in train_rows],
        "train_labels": [r.label for r in train_rows],
        "eval": [r.tokens for r in dev_rows],
        "eval_labels": [r.label for r in dev_rows],
        "tokenizer": "sst2",
        "max_length": 60,
    }


def build_config(args: argparse.Namespace, vocab_size: int) -> LanguageModelConfig:
    classes = len(SST2_CLASSES) if args.conditioning != "none" else 0
    return LanguageModelConfig(
        inputs=InputConfig(
            vocab_size=vocab_size,
            word_input=args.word_input,
            word_dim=50 if args.word_input == "glove" else args.embed,
            char_encoder="none",
            casing_dim=0,
            dropout=args.dropout,
        ),
        rnn=RNNConfig(
            cell=args.cell,
            hidden_size=args.hidden,
            num_layers=args.layers,
            bidirectional=False,
            dropout=args.dropout,
        ),
        dropout=args.dropout,
        num_classes=classes,
        class_dim=args.class_dim,
        conditioning=args.conditioning if classes else "both",
    )


# --------------------------------------------------------------------------------------------
# Batches and evaluation


def sequence_batch(vocab, featurizer, sentences, labels=None):
    """Sentences -> tensors (x, y, lengths, class_ids or None, glove_ids or None)."""
    pairs = [lm.encode(vocab, s) for s in sentences]
    x, y, lengths = lm.pad_batch(pairs)
    glove = None
    if featurizer.use_glove:
        g = featurizer.encode([list(s) for s in sentences]).glove_ids
        glove = np.zeros_like(x)
        glove[:, 1 : 1 + g.shape[1]] = g[:, : x.shape[1] - 1]
        glove = torch.from_numpy(glove)
    classes = None if labels is None else torch.tensor(labels, dtype=torch.long)
    return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(lengths), classes, glove


@torch.no_grad()
def eval_sequences(
    model, vocab, featurizer, sentences, labels=None, batch=128
) -> tuple[float, int]:
    """Total nats and tokens (<EOS> included) over held-out sentences."""
    model.eval()
    nats, n = 0.0, 0
    for i in range(0, len(sentences), batch):
        lab = None if labels is None else labels[i : i + batch]
        x, y, lengths, c, g = sequence_batch(vocab, featurizer, sentences[i : i + batch], lab)
        logp = token_log_probs(model(x, lengths, c, g), y, lengths)
        nats -= float(logp.sum())
        n += int(lengths.sum())
    model.train()
    return nats, n


@torch.no_grad()
def eval_stream(model, ids: np.ndarray, segments: int = 16, chunk: int = 256) -> tuple[float, int]:
    """Nats over a token stream cut into ``segments`` contiguous pieces, each read from START and
    a zero state with the state carried across chunks (every token but the first of a piece
    sees all of its piece before it)."""
    model.eval()
    per = len(ids) // segments
    y = torch.from_numpy(ids[: per * segments].reshape(segments, per))
    x = torch.cat([torch.zeros(segments, 1, dtype=torch.long), y[:, :-1]], dim=1)
    state = model.initial_state(None, segments)
    nats = 0.0
    for s in range(0, per, chunk):
        xs, ys = x[:, s : s + chunk], y[:, s : s + chunk]
        vectors = model.inputs.word_vectors(xs, torch.zeros_like(xs))
        a, state = model.encoder.step(model._x(vectors, None), state)
        logits = model.proj(a)
        nats -= float(torch.log_softmax(logits, -1).gather(-1, ys.unsqueeze(-1)).sum())
    model.train()
    return nats, per * segments


@torch.no_grad()
def class_metrics(model, vocab, featurizer, sentences, labels, batch=128) -> dict:
    """How much the class tells the conditional model: dev accuracy of the generative
    classifier argmax_c P(x | c) (equal priors) and the mean log-likelihood ratio
    log P(x | own class) - log P(x | other class), in nats per sentence."""
    model.eval()
    per_class = []
    for c in (0, 1):
        scores = []
        for i in range(0, len(sentences), batch):
            chunk = sentences[i : i + batch]
            x, y, lengths, classes, g = sequence_batch(vocab, featurizer, chunk, [c] * len(chunk))
            scores.append(token_log_probs(model(x, lengths, classes, g), y, lengths).sum(1))
        per_class.append(torch.cat(scores))
    both = torch.stack(per_class, dim=1)  # (N, 2)
    gold = torch.tensor(labels)
    own = both.gather(1, gold[:, None]).squeeze(1)
    other = both.gather(1, (1 - gold)[:, None]).squeeze(1)
    model.train()
    return {
        "dev_generative_accuracy": float((both.argmax(1) == gold).float().mean()),
        "dev_class_log_ratio": float((own - other).mean()),
    }


# --------------------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("corpus", choices=["dinos", "shakespeare", "sst2"])
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--out", help="bundle directory to export to")
    p.add_argument("--run", help="run name (default: from the corpus)")
    p.add_argument("--name", help="model name in the bundle")
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--conditioning", default="none", choices=["none", "init", "input", "both"])
    p.add_argument("--cell", default="lstm")
    p.add_argument("--word-input", default="learned", choices=["onehot", "learned", "glove"])
    p.add_argument("--embed", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--class-dim", type=int, default=16)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--min-freq", type=int, default=2)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--bptt", type=int, default=128, help="window length (stream corpora)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--steps", type=int, default=0, help="stream corpora: optimiser steps")
    p.add_argument("--minutes", type=float, default=0, help="stop after this many minutes")
    p.add_argument("--eval-every", type=int, default=500, help="stream corpora: steps")
    p.add_argument("--clip", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--sample-temperature", type=float, default=0.8, help="generator metrics")
    args = p.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    run = args.run or (
        args.corpus + ("" if args.conditioning == "none" else "-" + args.conditioning)
    )
    run_dir = ROOT / "runs" / "lm" / run
    run_dir.mkdir(parents=True, exist_ok=True)
    corpus = load_corpus(args)
    vocab = corpus["vocab"]
    featurizer = Featurizer(vocab, None, args.word_input == "glove")
    config = build_config(args, len(vocab))
    model = LanguageModel.build(config)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    opt = torch.optim.Adam((q for q in model.parameters() if q.requires_grad), lr=args.lr)
    history: list[dict] = []
    best = {"eval_nats": math.inf, "state": None, "epoch": 0}
    step, epoch, seconds = 0, 0, 0.0
    ckpt = run_dir / "last.pt"
    if args.resume and ckpt.exists():
        saved = torch.load(ckpt, weights_only=False)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        step, epoch, seconds, history = (
            saved["step"],
            saved["epoch"],
            saved["seconds"],
            saved["history"],
        )
        best = saved["best"]
    stream = "stream" in corpus
    labels_on = config.conditional
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else math.inf
    start = time.monotonic() - seconds

    def evaluate() -> float:
        if stream:
            nats, n = eval_stream(model, corpus["val_stream"])
        else:
            labels = corpus["eval_labels"] if labels_on else None
            nats, n = eval_sequences(model, vocab, featurizer, corpus["eval"], labels)
        return nats / n

    def checkpoint(metric: float) -> None:
        elapsed = time.monotonic() - start
        history.append(
            {"step": step, "epoch": epoch, "eval_nats_per_token": metric, "seconds": elapsed}
        )
        if metric < best["eval_nats"]:
            best.update(
                eval_nats=metric,
                epoch=epoch,
                step=step,
                state={k: v.clone() for k, v in model.state_dict().items()},
            )
        torch.save(
            {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "epoch": epoch,
             "seconds": elapsed, "history": history, "best": best}, ckpt,
        )  # fmt: skip
        (run_dir / "history.json").write_text(json.dumps(history, indent=1))

    model.train()
    if stream:
        total = args.steps or 10**9
        bar = tqdm(total=total, initial=step, desc=run, mininterval=10)
        ids = corpus["stream"]
        while step < total and time.monotonic() < deadline:
            x, y = lm.stream_windows(ids, args.bptt, args.batch, rng)
            x, y = torch.from_numpy(x), torch.from_numpy(y)
            lengths = torch.full((args.batch,), args.bptt)
            loss = sequence_loss(model(x, lengths), y, lengths)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss) / args.bptt:.3f}")
            if step % args.eval_every == 0:
                metric = evaluate()
                bar.write(
                    f"step {step} val nats/char {metric:.4f} ({time.monotonic() - start:.0f}s)"
                )
                checkpoint(metric)
        metric = evaluate()
        checkpoint(metric)
    else:
        sentences = corpus["train"]
        labels = corpus.get("train_labels")
        while epoch < args.epochs and time.monotonic() < deadline:
            order = rng.permutation(len(sentences))
            bar = tqdm(
                range(0, len(order), args.batch), desc=f"{run} epoch {epoch + 1}", mininterval=5
            )
            for i in bar:
                idx = order[i : i + args.batch]
                lab = [labels[j] for j in idx] if labels_on else None
                x, y, lengths, c, g = sequence_batch(
                    vocab, featurizer, [sentences[j] for j in idx], lab
                )
                loss = sequence_loss(model(x, lengths, c, g), y, lengths)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
                opt.step()
                step += 1
            epoch += 1
            metric = evaluate()
            bar.write(
                f"epoch {epoch} eval nats/token {metric:.4f} ({time.monotonic() - start:.0f}s)"
            )
            checkpoint(metric)

    elapsed = time.monotonic() - start
    model.load_state_dict(best["state"])
    model.eval()
    # the bundle stores the word table in float16: evaluate the model as it will be served
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.startswith("inputs.words."):
                tensor.copy_(tensor.half().float())
    metrics = {
        "eval_nats_per_token": evaluate(),
        "best_epoch": best["epoch"],
        "best_step": best.get("step", step),
        "steps": step,
        "train_seconds": round(elapsed, 1),
        "parameters": params,
        "vocab_size": len(vocab),
        "cpu": cpu_model(),
        "threads": 1,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "command": " ".join(["scripts/lm_train.py", *sys.argv[1:]]),
    }
    metrics["eval_bits_per_token"] = metrics["eval_nats_per_token"] / math.log(2)
    metrics["eval_perplexity"] = math.exp(metrics["eval_nats_per_token"])
    if not stream:
        train_ids = [lm.encode(vocab, s)[1] for s in corpus["train"]]
        eval_ids = [lm.encode(vocab, s)[1] for s in corpus["eval"]]
        base = lm.bigram_add_one if args.corpus == "dinos" else lm.unigram_add_one
        nats, n = base(train_ids, eval_ids, len(vocab))
        metrics["baseline"] = base.__name__
        metrics["baseline_nats_per_token"] = nats / n
        metrics["baseline_bits_per_token"] = nats / n / math.log(2)
        metrics["baseline_perplexity"] = math.exp(nats / n)
    if config.conditional:
        metrics.update(
            class_metrics(model, vocab, featurizer, corpus["eval"], corpus["eval_labels"])
        )
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    print(json.dumps(metrics, indent=1))
    if args.out:
        export(args, model, featurizer, corpus, metrics, config)


def export(args, model, featurizer, corpus, metrics, config) -> None:
    data_card = [
        {"file": str(f.relative_to(Path(args.data))), "sha256": sha256(f)} for f in corpus["files"]
    ]
    card = {
        "training_data": data_card,
        "metrics": metrics,
        "level": "char" if corpus["tokenizer"] == "chars" else "word",
    }
    classes = SST2_CLASSES if config.conditional else ()
    name = args.name or Path(args.out).name
    out = export_language_model(
        model, args.out, featurizer=featurizer, tokenizer=corpus["tokenizer"],
        max_length=corpus["max_length"], classes=classes, name=name, version=args.version,
        card=card,
    )  # fmt: skip
    size = sum(f.stat().st_size for f in Path(out).iterdir())
    print(f"exported {out} ({size / 2**20:.2f} MiB)")
    sampled = sample_metrics(args, out)
    if sampled:  # measured on the exported bundle: export once more with them in the card
        metrics.update(sampled)
        card["metrics"] = metrics
        export_language_model(
            model, args.out, featurizer=featurizer, tokenizer=corpus["tokenizer"],
            max_length=corpus["max_length"], classes=classes, name=name, version=args.version,
            card=card,
        )  # fmt: skip
        print(json.dumps(sampled, indent=1))


def sample_metrics(args, out: Path) -> dict:
    """Metrics of samples from the exported bundle (scripts/lm_eval.py): dinosaur-name novelty,
    or the SST-2 classifier's reading of class-conditioned samples (when models/sst2-en exists)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import lm_eval

    ns = argparse.Namespace(model=str(out), samples=1000, temperature=1.0, top_p=1.0)
    if args.corpus == "dinos":
        found = lm_eval.dinos(ns)
        return {k: v for k, v in found.items() if k.endswith("share") or k == "examples"}
    classifier = ROOT / "models" / "sst2-en"
    if args.conditioning != "none" and classifier.is_dir():
        ns.samples, ns.temperature, ns.classifier = 200, args.sample_temperature, str(classifier)
        found = lm_eval.generator(ns)
        return {f"classifier_{k}": v for k, v in found.items()}
    return {}


if __name__ == "__main__":
    main()
