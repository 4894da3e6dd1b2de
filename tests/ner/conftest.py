"""Fixtures for tests/ner: tiny bundles trained for a few steps on the project's fixture."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `tests.helpers` without relying on the invocation directory
    sys.path.insert(0, str(REPO_ROOT))

from tests.helpers import build_tiny_bundle  # noqa: E402


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CRF tagger (learned words, char-CNN, casing, BiLSTM) in IOB2, exported once."""
    return build_tiny_bundle(tmp_path_factory.mktemp("bundles") / "tiny-crf")


@pytest.fixture(scope="session")
def tiny_softmax_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A softmax tagger (one-hot words, char-BiLSTM, 2-layer GRU) trained in BIOES."""
    return build_tiny_bundle(
        tmp_path_factory.mktemp("bundles") / "tiny-softmax",
        word_input="onehot",
        head="softmax",
        tag_scheme="bioes",
        char_encoder="lstm",
        cell="gru",
        num_layers=2,
    )
