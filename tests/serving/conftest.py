"""Fixtures for tests/serving: a real tiny bundle, loaded once, and apps built around it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `tests.helpers` without relying on the invocation directory
    sys.path.insert(0, str(REPO_ROOT))

from tests.helpers import build_tiny_bundle  # noqa: E402
from tests.serving.support import CLASSIFIER, MODEL  # noqa: E402


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models/ folder holding one real tiny bundle, ``tiny``."""
    root = tmp_path_factory.mktemp("serving") / "models"
    build_tiny_bundle(root / MODEL)
    return root


@pytest.fixture(scope="session")
def predictor(models_dir: Path) -> Any:
    """The tiny bundle loaded on the ONNX backend (shared by the in-process apps)."""
    from ner.predict import Predictor

    return Predictor.from_path(models_dir / MODEL, "onnx", threads=1)


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tiny sentence-classifier bundle (task ``classify``), named ``CLASSIFIER``."""
    from tests.helpers import build_tiny_classifier

    path = tmp_path_factory.mktemp("serving-classify") / CLASSIFIER
    build_tiny_classifier(path)
    return path


@pytest.fixture(scope="session")
def classifier(classifier_dir: Path) -> Any:
    """The tiny classifier loaded on the ONNX backend."""
    from ner import tasks

    return tasks.load(classifier_dir, "onnx", threads=1)


@pytest.fixture
def make_client(models_dir: Path, predictor: Any) -> Callable[..., Any]:
    """``with make_client(max_chars=50) as client:`` a TestClient of a started app.

    ``predictors={...}`` serves those models instead of the tiny tagger alone.
    """
    from fastapi.testclient import TestClient

    from serving.main import create_app
    from serving.settings import Settings

    @contextmanager
    def make(predictors: dict[str, Any] | None = None, **overrides: Any) -> Iterator[TestClient]:
        settings = Settings(models_dir=models_dir, **overrides)
        app = create_app(settings, predictors=predictors or {MODEL: predictor})
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client

    return make


@pytest.fixture
def client(make_client: Callable[..., Any]) -> Iterator[Any]:
    """A TestClient of an app with the default settings."""
    with make_client() as c:
        yield c
