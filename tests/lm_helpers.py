"""Tiny language-model bundles for tests/ner, tests/serving and tests/training.

``build_tiny_lm`` trains a tiny (conditional) language model for a few full-batch steps in plain
torch on the project's own fixtures (tests/fixtures/tiny_names.txt: dinosaur names, character
level; tests/fixtures/tiny_reviews.txt: made-up review sentences with 0/1 labels, word level) and
exports it as a real bundle.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY_NAMES = FIXTURES / "tiny_names.txt"
TINY_REVIEWS = FIXTURES / "tiny_reviews.txt"
CLASSES = ("negative", "positive")


def tiny_lm_data(level: str) -> tuple[list[list[str]], list[int], str]:
    """(token sequences, labels, tokenizer) of the char or word fixture."""
    from ner.data.lm import read_lines, read_sst2

    if level == "char":
        return [list(n) for n in read_lines(TINY_NAMES)], [], "chars"
    rows = read_sst2(TINY_REVIEWS)
    return [r.tokens for r in rows], [r.label for r in rows], "sst2"


def train_tiny_lm(
    level: str = "char",
    *,
    conditioning: str | None = None,
    cell: str = "lstm",
    word_input: str = "learned",
    num_layers: int = 1,
    steps: int = 30,
    seed: int = 0,
) -> tuple[Any, Any, str, list[list[str]], list[int]]:
    """A tiny trained ``LanguageModel`` -> (model, featurizer, tokenizer, sequences, labels).

    The word table is rounded to float16 (as the bundle stores it), so the torch model and a
    bundle made from it compute the same numbers.
    """
    import torch

    from ner.data.lm import encode, lm_vocab, pad_batch
    from ner.features import Featurizer
    from ner.models.config import LanguageModelConfig
    from ner.models.language_model import LanguageModel, sequence_loss
    from ner.nn.config import InputConfig, RNNConfig

    torch.manual_seed(seed)
    sequences, labels, tokenizer = tiny_lm_data(level)
    vocab = lm_vocab(sequences, casing="lower")
    conditional = conditioning is not None
    config = LanguageModelConfig(
        inputs=InputConfig(
            vocab_size=len(vocab),
            word_input=word_input,  # type: ignore[arg-type]
            word_dim=50 if word_input == "glove" else 8,
            char_encoder="none",
            casing_dim=0,
            dropout=0.1,
        ),
        rnn=RNNConfig(cell=cell, hidden_size=16, num_layers=num_layers, bidirectional=False),  # type: ignore[arg-type]
        dropout=0.1,
        num_classes=len(CLASSES) if conditional else 0,
        class_dim=4,
        conditioning=conditioning or "both",  # type: ignore[arg-type]
    )
    model = LanguageModel.build(config)  # with the installed GloVe table for glove inputs
    featurizer = Featurizer(vocab, None, word_input == "glove")
    x, y, lengths = (torch.from_numpy(a) for a in pad_batch([encode(vocab, s) for s in sequences]))
    glove_ids = torch.zeros_like(x)
    glove_ids[:, 1:] = torch.from_numpy(featurizer.encode(sequences).glove_ids)[:, : x.shape[1] - 1]
    class_ids = torch.tensor(labels) if conditional else None
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        sequence_loss(model(x, lengths, class_ids, glove_ids), y, lengths).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.startswith("inputs.words.") and tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    return model, featurizer, tokenizer, sequences, labels


def export_tiny_lm(model: Any, featurizer: Any, tokenizer: str, out_dir: Any) -> Path:
    from ner.generate import export_language_model

    source = TINY_NAMES if tokenizer == "chars" else TINY_REVIEWS
    card = {
        "training_data": {
            "file": source.name,
            "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            "license": "project-made test fixture (Apache-2.0)",
        },
    }
    classes = CLASSES if model.config.conditional else ()
    return export_language_model(
        model,
        out_dir,
        featurizer=featurizer,
        tokenizer=tokenizer,  # type: ignore[arg-type]
        max_length=20,
        classes=classes,
        name=f"tiny-{'char' if tokenizer == 'chars' else 'word'}-lm"
        + ("-conditional" if classes else ""),
        version="0.0.1",
        card=card,
    )


def build_tiny_lm(out_dir: str | os.PathLike[str], level: str = "char", **kwargs: Any) -> Path:
    """Train a tiny language model (see :func:`train_tiny_lm`) and export it to ``out_dir``."""
    model, featurizer, tokenizer, _, _ = train_tiny_lm(level, **kwargs)
    return export_tiny_lm(model, featurizer, tokenizer, out_dir)
