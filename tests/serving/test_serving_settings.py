"""Settings from NER_ environment variables and ``ner serve`` flags; the torch backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from serving.cli import _settings, build_parser
from serving.settings import Settings, get_settings
from tests.serving.support import SEED


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NER_PORT", "9001")
    monkeypatch.setenv("NER_BACKEND", "torch")
    monkeypatch.setenv("NER_MODELS", '["/a/one", "/b/two"]')
    monkeypatch.setenv("NER_DEFAULT_MODELS", '{"ner": "two"}')
    monkeypatch.setenv("NER_MAX_BATCH_SIZE", "8")
    monkeypatch.setenv("NER_DATA_DIR", "/elsewhere")  # the library's variable: ignored here
    s = Settings()
    assert (s.port, s.backend, s.max_batch_size) == (9001, "torch", 8)
    assert s.models == [Path("/a/one"), Path("/b/two")]
    assert s.default_models == {"ner": "two"}


def test_defaults() -> None:
    s = Settings()
    assert s.backend == "onnx"
    assert s.queue_size >= 64
    assert s.host == "127.0.0.1"
    # the byte cap admits the largest body the other caps allow, every character escaped
    assert s.body_limit() > s.max_documents * 12 * s.max_chars


def test_get_settings_is_cached_and_resettable(monkeypatch: pytest.MonkeyPatch) -> None:
    get_settings.cache_clear()
    monkeypatch.setenv("NER_PORT", "9002")
    try:
        assert get_settings() is get_settings()
        assert get_settings().port == 9002
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    "env", [("NER_QUEUE_SIZE", "0"), ("NER_BACKEND", "tf"), ("NER_MAX_WAIT_MS", "-1")]
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, env: tuple[str, str]) -> None:
    monkeypatch.setenv(*env)
    with pytest.raises(ValidationError):
        Settings()


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NER_PORT", "9001")
    monkeypatch.setenv("NER_MAX_CHARS", "77")
    ns = build_parser().parse_args(
        ["--model", "m1", "--model", "m2", "--port", "8123", "--default-model", "m2"]
    )
    s = _settings(ns)
    assert s.port == 8123
    assert s.max_chars == 77  # no flag given: the environment's value stays
    assert s.models == [Path("m1"), Path("m2")]
    assert s.default_models == {"ner": "m2"}
    ns = build_parser().parse_args(["--default-model", "m2", "--default-model", "classify=sst"])
    assert _settings(ns).default_models == {"ner": "m2", "classify": "sst"}


def test_torch_backend_serves_the_same_tags(models_dir: Path, client: TestClient) -> None:
    from serving.main import create_app

    onnx = client.post("/v1/tag", json={"text": SEED}).json()
    with TestClient(create_app(Settings(models_dir=models_dir, backend="torch"))) as torch_client:
        torch = torch_client.post("/v1/tag", json={"text": SEED}).json()
    assert [t["label"] for t in torch["tokens"]] == [t["label"] for t in onnx["tokens"]]
    for a, b in zip(torch["tokens"], onnx["tokens"], strict=True):
        assert a["score"] == pytest.approx(b["score"], abs=1e-4)
