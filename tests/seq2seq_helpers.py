"""A synthetic seq2seq task the project makes, and tiny bundles trained on it in plain torch.

The task is to reverse a short string over a small alphabet (``"abcd" -> "dcba"``): Tx = Ty but
every output step depends on a different input step, so the decoder has to carry or attend to
the whole input. A small attention model learns it to >= 99% exact in a few seconds of CPU.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

ALPHABET = "abcdefgh"


def reverse_pairs(n: int, seed: int, lengths: tuple[int, int] = (3, 7)) -> list[tuple[str, str]]:
    """``n`` (string, reversed string) pairs over :data:`ALPHABET`, reproducible from ``seed``."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(*lengths)))
        out.append((s, s[::-1]))
    return out


def train_reverse(
    *,
    attention: str = "additive",
    cell: str = "gru",
    num_layers: int = 1,
    epochs: int = 5,
    seed: int = 0,
) -> tuple[Any, Any, Any]:
    """Train a small char-level Seq2Seq on 3,000 reverse pairs -> (model, source, target vocab).

    ``epochs=0`` returns the untrained model (for export and parity tests).
    """
    import torch

    from ner.data.vocab import Vocab
    from ner.models.config import Seq2SeqConfig
    from ner.models.seq2seq import Seq2Seq
    from ner.nn.config import InputConfig, RNNConfig
    from ner.translate import target_vocab, training_arrays

    torch.manual_seed(seed)
    source = Vocab.build(ALPHABET)
    target = target_vocab(list(ALPHABET))
    config = Seq2SeqConfig(
        target_vocab_size=len(target),
        inputs=InputConfig(
            vocab_size=len(source),
            word_input="learned",
            word_dim=16,
            char_encoder="none",
            casing_dim=0,
            dropout=0.0,
        ),
        encoder=RNNConfig(cell=cell, hidden_size=32, bidirectional=True),  # type: ignore[arg-type]
        decoder=RNNConfig(
            cell=cell,  # type: ignore[arg-type]
            hidden_size=64,
            num_layers=num_layers,
            bidirectional=False,
        ),
        target_dim=16,
        attention=attention,  # type: ignore[arg-type]
        attention_size=32,
        dropout=0.0,
    )
    model = Seq2Seq(config)
    train = reverse_pairs(3000, seed)
    rng = random.Random(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    total = epochs * -(-len(train) // 64)
    # linear decay to zero: the last steps settle instead of bouncing around the optimum
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 1.0 - i / max(total, 1))
    model.train()
    for _ in range(epochs):
        rng.shuffle(train)
        for k in range(0, len(train), 64):
            batch = train[k : k + 64]
            arrays = training_arrays(
                [list(x) for x, _ in batch], [list(y) for _, y in batch], source, target
            )
            t = {name: torch.from_numpy(a) for name, a in arrays.items()}
            log_probs, _ = model(t["source_ids"], t["lengths"], t["prev_ids"])
            loss = model.loss(log_probs, t["targets"])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
    return model.eval(), source, target


def build_reverse_bundle(out_dir: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Train (see :func:`train_reverse`) and export a ``seq2seq`` bundle; source texts of at most
    12 characters, outputs of at most 10 tokens."""
    from ner.translate import SourceSpec, export_seq2seq

    model, source, target = train_reverse(**kwargs)
    return export_seq2seq(
        model,
        out_dir,
        source_vocab=source,
        target=target,
        source=SourceSpec(level="char", lowercase=True, remove="", max_chars=12),
        max_output_len=10,
        name=f"reverse-{kwargs.get('attention', 'additive')}",
        version="0.0.1",
        card={"training_data": {"file": "synthetic reverse task (tests/seq2seq_helpers.py)"}},
    )
