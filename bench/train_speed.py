"""Training and decoding speed, in sentences per second, on CoNLL-2003 train (batch 100).

    python bench/train_speed.py                                  # CPU, and GPU when there is one
    python bench/train_speed.py --config configs/conll2003.yaml --device cuda --precision bf16
    python bench/train_speed.py --threads 1 --batches 30         # one CPU thread

It builds the tagger of a config's ``model:`` section with the vocabularies of CoNLL train, cuts
train into length-bucketed batches of ``--batch-size`` sentences, featurizes them up front, and
times (after ``--warmup`` batches):

- training: forward, CRF loss, backward, gradient clipping (norm 5) and an SGD step;
- decoding: forward in ``eval``/``inference_mode`` plus NumPy Viterbi (``ner.decode``), which is
  how the bundle decodes, on dev.

Reference (NCRF++, Yang & Zhang 2018, GTX 1080, batch 100): about 1,000 sent/s training and
2,000 sent/s decoding. It needs only ``ner``, torch and PyYAML (no Lightning or ``datasets``), so
it also runs on a bare GPU machine. Prints one markdown table row per device.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ner.data.conll import read_conll  # noqa: E402
from ner.data.schemes import convert, label_names, parse_tag  # noqa: E402
from ner.data.vocab import Vocab, char_vocab  # noqa: E402
from ner.decode import constrain, viterbi  # noqa: E402
from ner.features import Featurizer  # noqa: E402
from ner.models.tagger import Tagger, TaggerConfig  # noqa: E402
from ner.settings import data_dir  # noqa: E402

ARCH_KEYS = (
    "word_input", "word_dim", "glove_finetune", "char_encoder", "char_dim", "char_hidden",
    "casing_dim", "cell", "hidden_size", "num_layers", "bidirectional", "embed_dropout",
    "dropout", "head",
)  # fmt: skip


def load_config(path: Path) -> dict[str, Any]:
    import yaml

    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def batches(lengths: list[int], batch_size: int, seed: int = 0) -> list[list[int]]:
    """Length-bucketed batches (sorted within chunks of 50 batches), shuffled."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    out: list[list[int]] = []
    chunk = batch_size * 50
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk].tolist(), key=lambda i: -lengths[i])
        out.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [out[i] for i in rng.permutation(len(out))]


def featurize(
    featurizer: Featurizer, sentences, tag_ids, idx: list[int]
) -> dict[str, torch.Tensor]:
    f = featurizer.encode([sentences[i] for i in idx])
    tags = np.zeros_like(f.word_ids)
    for row, i in enumerate(idx):
        tags[row, : len(tag_ids[i])] = tag_ids[i]
    arrays = {
        "word_ids": f.word_ids, "glove_ids": f.glove_ids, "char_ids": f.char_ids,
        "casing_ids": f.casing_ids, "lengths": f.lengths, "tags": tags,
    }  # fmt: skip
    return {k: torch.from_numpy(v) for k, v in arrays.items()}


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training(model, data, device, warmup, precision) -> float:
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.015, momentum=0.9)
    dtype = torch.bfloat16 if precision == "bf16" else None
    sentences, start = 0, 0.0
    for i, batch in enumerate(data):
        if i == warmup:
            sync(device)
            start, sentences = time.perf_counter(), 0
        b = to_device(batch, device)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            emissions = model(
                b["word_ids"], b["glove_ids"], b["char_ids"], b["casing_ids"], b["lengths"]
            )
        loss = model.loss(emissions.float(), b["tags"], b["lengths"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sentences += int(b["lengths"].shape[0])
    sync(device)
    return sentences / (time.perf_counter() - start)


def time_decoding(model, data, device, warmup, precision, trans) -> float:
    model.eval()
    dtype = torch.bfloat16 if precision == "bf16" else None
    sentences, start = 0, 0.0
    with torch.inference_mode():
        for i, batch in enumerate(data):
            if i == warmup:
                sync(device)
                start, sentences = time.perf_counter(), 0
            b = to_device(batch, device)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                emissions = model(
                    b["word_ids"], b["glove_ids"], b["char_ids"], b["casing_ids"], b["lengths"]
                )
            viterbi(emissions.float().cpu().numpy(), batch["lengths"].numpy(), trans)
            sentences += int(b["lengths"].shape[0])
    sync(device)
    return sentences / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, default=REPO / "configs" / "conll2003-fast.yaml")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--batches", type=int, default=40, help="timed training/decoding batches")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--precision", choices=("32", "bf16"), default="32")
    args = p.parse_args(argv)

    train_path = data_dir() / "conll2003" / "train.txt"
    dev_path = data_dir() / "conll2003" / "dev.txt"
    if not train_path.is_file() or not dev_path.is_file():
        print(f"skipped: CoNLL-2003 not found under {data_dir()} (set NER_DATA_DIR)")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    model_cfg = {k: v for k, v in (cfg.get("model") or {}).items() if k in ARCH_KEYS}
    data_cfg = cfg.get("data") or {}
    scheme = data_cfg.get("tag_scheme", "bioes")

    train = read_conll(train_path)
    dev = read_conll(dev_path)
    tokens = [t for s in train for t in s.tokens]
    words = Vocab.build(
        tokens, min_freq=data_cfg.get("min_freq", 1), casing=data_cfg.get("casing", "lower_digits")
    )
    use_chars = model_cfg.get("char_encoder", "cnn") != "none"
    use_glove = model_cfg.get("word_input", "glove") == "glove"
    featurizer = Featurizer(words, char_vocab(tokens) if use_chars else None, use_glove)
    types = {parse_tag(t)[1] for s in train for t in s.labels} - {None}
    labels = label_names(types, scheme)
    index = {label: i for i, label in enumerate(labels)}

    def encode(split, n_batches):
        sents = [list(s.tokens) for s in split]
        tag_ids = [[index[t] for t in convert(s.labels, "iob1", scheme)] for s in split]
        chosen = batches([len(s) for s in sents], args.batch_size)[: n_batches + args.warmup]
        return [featurize(featurizer, sents, tag_ids, idx) for idx in chosen]

    n = args.batches
    train_batches, dev_batches = encode(train, n), encode(dev, n)
    config = TaggerConfig(
        num_tags=len(labels), vocab_size=len(words),
        num_chars=len(featurizer.chars) if featurizer.chars else 0, **model_cfg,
    )  # fmt: skip
    glove = None
    if use_glove:
        from ner.data.glove import load_glove

        glove = load_glove().vectors
    devices = []
    if args.device in ("auto", "cpu"):
        devices.append(torch.device("cpu"))
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        devices.append(torch.device("cuda"))

    print(f"config {args.config.name}: {config}", file=sys.stderr)
    print("| device | config | batch | precision | train sent/s | decode sent/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for device in devices:
        torch.manual_seed(0)
        model = Tagger(config, glove).to(device)
        trans = constrain(model.transitions(), labels, scheme)
        train_sps = time_training(model, train_batches, device, args.warmup, args.precision)
        trans = constrain(model.transitions(), labels, scheme)
        decode_sps = time_decoding(model, dev_batches, device, args.warmup, args.precision, trans)
        if device.type == "cuda":
            name = torch.cuda.get_device_name(device)
        else:
            cpu = platform.processor() or platform.machine()
            name = f"CPU {cpu}, {torch.get_num_threads()} thread(s)"
        print(
            f"| {name} | {args.config.stem} | {args.batch_size} | {args.precision} "
            f"| {train_sps:,.0f} | {decode_sps:,.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
