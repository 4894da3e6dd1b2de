"""Test helpers shared by tests/ner, tests/serving and tests/training.

``build_tiny_bundle`` trains a tiny tagger for a few steps in plain torch on the project's own
fixture (tests/fixtures/tiny_train.conll, IOB1) and exports it as a real bundle.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY_TRAIN = FIXTURES / "tiny_train.conll"
TINY_DEV = FIXTURES / "tiny_dev.conll"


def build_tiny_bundle(
    out_dir: str | os.PathLike[str],
    word_input: str = "learned",
    head: str = "crf",
    *,
    tag_scheme: str = "iob2",
    char_encoder: str = "cnn",
    cell: str = "lstm",
    num_layers: int = 1,
    casing_dim: int = 4,
    steps: int = 40,
    seed: int = 0,
) -> Path:
    """Train a tiny Tagger on the tiny fixture for ``steps`` full-batch steps and export it.

    Args:
        out_dir: the bundle directory to write.
        word_input: ``"onehot"``, ``"learned"`` or ``"glove"`` (needs the GloVe package).
        head: ``"crf"`` or ``"softmax"``.
        tag_scheme: the training scheme (the fixture's IOB1 tags are converted to it).
        char_encoder: ``"none"``, ``"cnn"`` or ``"lstm"``.
        cell: the RNN cell.
        num_layers: stacked RNN layers.
        casing_dim: size of the casing features (0: none).
        steps: optimizer steps (a few suffice for the contract tests).
        seed: torch seed.

    Returns:
        The bundle directory.
    """
    import numpy as np
    import torch

    from ner.data.conll import read_conll
    from ner.data.schemes import convert, label_names, spans_from_tags
    from ner.data.vocab import Vocab, char_vocab
    from ner.features import Featurizer
    from ner.models.config import TaggerConfig
    from ner.models.tagger import Tagger
    from ner.nn.config import InputConfig, RNNConfig
    from ner.predict import export_tagger

    torch.manual_seed(seed)
    sentences = read_conll(TINY_TRAIN)
    tokens = [list(s.tokens) for s in sentences]
    tags = [convert(list(s.labels or ()), "iob1", tag_scheme) for s in sentences]
    types = {span.label for t in tags for span in spans_from_tags(t, tag_scheme)}
    labels = label_names(types, tag_scheme)
    words = Vocab.build((w for s in tokens for w in s), casing="lower")
    chars = char_vocab(w for s in tokens for w in s) if char_encoder != "none" else None
    glove_vectors = None
    if word_input == "glove":
        from ner.data.glove import load_glove

        glove_vectors = load_glove().vectors
    config = TaggerConfig(
        num_tags=len(labels),
        inputs=InputConfig(
            vocab_size=len(words),
            num_chars=len(chars) if chars is not None else 0,
            word_input=word_input,  # type: ignore[arg-type]
            word_dim=50 if word_input == "glove" else 16,
            char_encoder=char_encoder,  # type: ignore[arg-type]
            char_dim=8,
            char_hidden=8,
            casing_dim=casing_dim,
            dropout=0.1,
        ),
        rnn=RNNConfig(cell=cell, hidden_size=16, num_layers=num_layers),  # type: ignore[arg-type]
        dropout=0.1,
        head=head,  # type: ignore[arg-type]
    )
    model = Tagger(config, glove_vectors)
    featurizer = Featurizer(words, chars, word_input == "glove")
    feats = featurizer.encode(tokens)
    index = {label: i for i, label in enumerate(labels)}
    tag_ids = np.zeros(feats.word_ids.shape, dtype=np.int64)
    for i, t in enumerate(tags):
        tag_ids[i, : len(t)] = [index[x] for x in t]
    inputs = [
        torch.from_numpy(a)
        for a in (feats.word_ids, feats.glove_ids, feats.char_ids, feats.casing_ids, feats.lengths)
    ]
    target = torch.from_numpy(tag_ids)
    optimizer = torch.optim.Adam((p for p in model.parameters() if p.requires_grad), lr=0.02)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = model.loss(model(*inputs), target, inputs[-1])
        loss.backward()
        optimizer.step()
    card = {
        "training_data": {
            "file": TINY_TRAIN.name,
            "sha256": hashlib.sha256(TINY_TRAIN.read_bytes()).hexdigest(),
            "license": "project-made test fixture (Apache-2.0)",
        },
        "metrics": {"train_loss": float(loss.detach())},
    }
    return export_tagger(
        model,
        out_dir,
        featurizer=featurizer,
        labels=labels,
        tag_scheme=tag_scheme,
        name=f"tiny-{word_input}-{head}",
        version="0.0.1",
        card=card,
    )


TINY_SST = FIXTURES / "tiny_sst.tsv"
SST_LABELS = {"0": "negative", "1": "positive"}


def build_tiny_classifier(
    out_dir: str | os.PathLike[str],
    pooling: str = "max",
    *,
    word_input: str = "learned",
    cell: str = "lstm",
    num_layers: int = 1,
    char_encoder: str = "none",
    members: int = 1,
    steps: int = 30,
    temperature: float = 1.5,
    seed: int = 0,
    ensemble: int = 1,
) -> Path:
    """Train a tiny sentence classifier on tests/fixtures/tiny_sst.tsv (``sentence<TAB>label``,
    labels 0 = negative, 1 = positive) for ``steps`` full-batch steps and export it.

    Args:
        out_dir: the bundle directory to write.
        pooling: ``"last"``, ``"max"``, ``"mean"`` or ``"attention"``.
        word_input: ``"onehot"``, ``"learned"`` or ``"glove"`` (needs the GloVe package).
        cell: the RNN cell.
        num_layers: stacked RNN layers.
        char_encoder: ``"none"``, ``"cnn"`` or ``"lstm"``.
        members: ensemble heads over the shared input stack.
        steps: optimizer steps.
        temperature: the calibration temperature stored in the bundle.
        seed: torch seed (of the first member).
        ensemble: models trained apart (seeds ``seed``, ``seed + 1``...) and exported as one
            ensemble bundle.

    Returns:
        The bundle directory.
    """
    import torch

    from ner.classify import export_classifier, read_labelled
    from ner.data.vocab import Vocab, char_vocab
    from ner.features import Featurizer
    from ner.models.classifier import Classifier
    from ner.models.config import ClassifierConfig
    from ner.nn.config import InputConfig, RNNConfig

    torch.manual_seed(seed)
    data = read_labelled(TINY_SST)
    tokens = [list(s.tokens) for s in data]
    labels = list(SST_LABELS.values())
    words = Vocab.build((w for s in tokens for w in s), casing="lower")
    chars = char_vocab(w for s in tokens for w in s) if char_encoder != "none" else None
    glove_vectors = None
    if word_input == "glove":
        from ner.data.glove import load_glove

        glove_vectors = load_glove().vectors
    config = ClassifierConfig(
        num_classes=len(labels),
        inputs=InputConfig(
            vocab_size=len(words),
            num_chars=len(chars) if chars is not None else 0,
            word_input=word_input,  # type: ignore[arg-type]
            word_dim=50 if word_input == "glove" else 16,
            char_encoder=char_encoder,  # type: ignore[arg-type]
            char_dim=8,
            char_hidden=8,
            casing_dim=0,
            dropout=0.1,
        ),
        rnn=RNNConfig(cell=cell, hidden_size=16, num_layers=num_layers),  # type: ignore[arg-type]
        pooling=pooling,  # type: ignore[arg-type]
        attention_size=8,
        dropout=0.1,
        members=members,
    )
    featurizer = Featurizer(words, chars, word_input == "glove")
    feats = featurizer.encode(tokens)
    inputs = [
        torch.from_numpy(a)
        for a in (feats.word_ids, feats.glove_ids, feats.char_ids, feats.casing_ids, feats.lengths)
    ]
    target = torch.tensor([labels.index(SST_LABELS[s.label]) for s in data])
    models = []
    for member in range(ensemble):
        torch.manual_seed(seed + member)
        model = Classifier(config, glove_vectors)
        optimizer = torch.optim.Adam((p for p in model.parameters() if p.requires_grad), lr=0.02)
        model.train()
        for _ in range(steps):
            optimizer.zero_grad()
            loss = model.loss(model.member_logits(*inputs), target)
            loss.backward()
            optimizer.step()
        models.append(model)
    card = {
        "training_data": {
            "file": TINY_SST.name,
            "sha256": hashlib.sha256(TINY_SST.read_bytes()).hexdigest(),
            "license": "project-made test fixture (Apache-2.0)",
            "label_map": SST_LABELS,
        },
        "metrics": {"train_loss": float(loss.detach())},
    }
    return export_classifier(
        models if ensemble > 1 else model,
        out_dir,
        featurizer=featurizer,
        labels=labels,
        temperature=temperature,
        name=f"tiny-classifier-{pooling}",
        version="0.0.1",
        card=card,
    )
