"""``ner migrate``: a format-1 tagger bundle becomes format 2 in place, predictions unchanged.

No format-1 bundle is committed; ``make_v1`` writes one by hand from a format-2 tiny bundle, in the
layout the format-1 exporter wrote: a flat ``tagger`` config, ``labels`` in config.json and in
``labels.json``, task, name and version in the unchecked model card only, and the torch weights
of the input modules at the top level (``chars.``, ``casing.``) instead of under ``inputs.``.
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
from ner.bundle import FORMAT_VERSION, BundleError, open_bundle
from ner.tasks.migrate import migrate_v1, relative_data_path

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = REPO_ROOT / "models" / "conll2003-en"
KEPT = ("model.onnx", "vocab.json", "embeddings.npy", "decoder.json")
"""Files the migration keeps byte for byte."""
ABSOLUTE_TRAIN = "/home/someone/work/shared/data/conll2003/train.txt"
SENTENCES = [
    ["Harry", "Potter", "and", "Hermione", "Granger", "visited", "London", "."],
    ["Zzyzxqq"],
    ["Dumbledore", "left", "Hogwarts"],
]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_v1(src: Path, dst: Path) -> Path:
    """A format-1 copy of the format-2 tagger bundle ``src`` at ``dst``."""
    import torch

    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    model, meta = cfg["model"], cfg["meta"]
    inputs, rnn = model["inputs"], model["rnn"]
    tagger = {
        "num_tags": model["num_tags"],
        **{k: v for k, v in inputs.items() if k != "dropout"},
        "cell": rnn["cell"],
        "hidden_size": rnn["hidden_size"],
        "num_layers": rnn["num_layers"],
        "bidirectional": rnn["bidirectional"],
        "embed_dropout": inputs["dropout"],
        "dropout": model["dropout"],
        "head": model["head"],
    }
    (dst / "labels.json").write_text(json.dumps(meta["labels"]))
    state = torch.load(dst / "weights.pt", weights_only=True)
    renamed = {k.removeprefix("inputs."): v for k, v in state.items()}
    assert any(k.startswith("chars.") for k in renamed)  # the old top-level layout
    torch.save(renamed, dst / "weights.pt")
    card = json.loads((dst / "model_card.json").read_text())
    old_card = {
        "task": "ner",
        "name": cfg["name"],
        "version": cfg["version"],
        "format_version": 1,
        "created": "2026-01-02T03:04:05+00:00",
        "training_data": {
            **card["training_data"],
            "files": {"train": {"path": ABSOLUTE_TRAIN, "sha256": "ab" * 32}},
        },
        "metrics": card["metrics"],
        "versions": card["versions"],
        "config": {
            "tagger": tagger,
            "tag_scheme": meta["tag_scheme"],
            "labels": meta["labels"],
            "featurizer": meta["featurizer"],
            "glove": cfg["glove"],
        },
    }
    (dst / "model_card.json").write_text(json.dumps(old_card, indent=2))
    files = sorted(
        p.name for p in dst.iterdir() if p.name not in ("config.json", "model_card.json")
    )
    v1 = {
        "format_version": 1,
        "task": "ner",
        "tagger": tagger,
        "tag_scheme": meta["tag_scheme"],
        "labels": meta["labels"],
        "featurizer": meta["featurizer"],
        "glove": cfg["glove"],
        "onnx": {
            "inputs": ["word_vectors", "char_ids", "casing_ids", "lengths"],
            "output": "emissions",
            "opset": 17,
        },
        "files": {name: _sha256(dst / name) for name in files},
    }
    (dst / "config.json").write_text(json.dumps(v1, indent=2))
    return dst


def _ner(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "ner_cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
    )


def _emissions(path: Path, backend: str) -> np.ndarray:
    predictor = tasks.load(path, backend)  # type: ignore[arg-type]
    return predictor.emissions(predictor.featurizer.encode(SENTENCES))


def test_format_1_is_refused_with_the_way_out(tiny_bundle: Path, tmp_path: Path) -> None:
    v1 = make_v1(tiny_bundle, tmp_path / "old")
    for load in (open_bundle, tasks.load):
        with pytest.raises(BundleError, match="format_version 1") as e:
            load(v1)
        message = str(e.value)
        assert message.startswith(str(v1 / "config.json"))
        assert f"ner migrate {v1}" in message


@pytest.mark.parametrize("fixture", ["tiny_bundle", "tiny_softmax_bundle"])
def test_migrate_in_place_keeps_the_predictions(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    original: Path = request.getfixturevalue(fixture)
    v1 = make_v1(original, tmp_path / "old")
    kept = {name: (v1 / name).read_bytes() for name in KEPT}
    v1_tagger = json.loads((v1 / "config.json").read_text())["tagger"]

    assert migrate_v1(v1) == v1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]  # nothing set aside is left
    bundle = open_bundle(v1)
    cfg = bundle.config
    assert cfg["format_version"] == FORMAT_VERSION
    want = json.loads((original / "config.json").read_text())
    assert (bundle.task, bundle.name, bundle.version) == ("ner", want["name"], want["version"])
    assert not (v1 / "labels.json").exists()  # labels are kept once, in meta
    assert cfg["meta"]["labels"] == want["meta"]["labels"]
    assert cfg["meta"]["tag_scheme"] == want["meta"]["tag_scheme"]
    assert cfg["model"]["num_tags"] == want["model"]["num_tags"]
    assert cfg["model"]["head"] == want["model"]["head"]
    for part in ("inputs", "rnn"):
        shape = {k: v for k, v in cfg["model"][part].items() if k != "dropout"}
        assert shape == {k: v for k, v in want["model"][part].items() if k != "dropout"}, part
    assert cfg["model"]["inputs"]["dropout"] == v1_tagger["embed_dropout"]
    for name, data in kept.items():
        assert (v1 / name).read_bytes() == data, name
    assert "model_card.json" in cfg["files"]

    for backend in ("onnx", "torch"):
        np.testing.assert_allclose(
            _emissions(v1, backend), _emissions(original, backend), atol=1e-6, err_msg=backend
        )
    before = tasks.load(original).predict(SENTENCES)
    after = tasks.load(v1).predict(SENTENCES)
    assert [d.to_dict() for d in after] == [d.to_dict() for d in before]


def test_migrate_keeps_the_format_1_dropout(tiny_bundle: Path, tmp_path: Path) -> None:
    """Format 1 used one ``dropout`` between stacked RNN layers and before the output layer
    (``embed_dropout`` on the inputs); the nested config must keep all three values."""
    v1 = make_v1(tiny_bundle, tmp_path / "old")
    flat = json.loads((v1 / "config.json").read_text())["tagger"]
    assert (flat["embed_dropout"], flat["dropout"]) == (0.1, 0.1)
    model = open_bundle(migrate_v1(v1)).model_config
    assert model["inputs"]["dropout"] == flat["embed_dropout"]
    assert model["dropout"] == flat["dropout"]
    assert model["rnn"]["dropout"] == flat["dropout"]


def test_migrated_card_is_portable_and_says_where_it_came_from(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    v1 = migrate_v1(make_v1(tiny_bundle, tmp_path / "old"))
    card = json.loads((v1 / "model_card.json").read_text())
    assert card["format_version"] == FORMAT_VERSION and card["task"] == "ner"
    assert card["migrated_from"] == {"format_version": 1, "created": "2026-01-02T03:04:05+00:00"}
    train = card["training_data"]["files"]["train"]
    assert train == {"path": "conll2003/train.txt", "name": "train.txt", "sha256": "ab" * 32}
    assert "/home/someone" not in (v1 / "model_card.json").read_text()
    assert card["training_data"]["license"]
    assert card["config"]["model"] == json.loads((v1 / "config.json").read_text())["model"]


@pytest.mark.parametrize(
    ("path", "relative"),
    [
        (ABSOLUTE_TRAIN, "conll2003/train.txt"),
        ("/data/x/data/wnut17/dev.txt", "wnut17/dev.txt"),
        ("/somewhere/else/train.txt", "train.txt"),
        ("/x/data", "data"),
    ],
)
def test_relative_data_path(path: str, relative: str) -> None:
    assert relative_data_path(path) == relative


def test_migrate_command(tiny_bundle: Path, tmp_path: Path) -> None:
    v1 = make_v1(tiny_bundle, tmp_path / "old")
    result = _ner("migrate", str(v1))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(v1)
    assert open_bundle(v1).config["format_version"] == FORMAT_VERSION
    # A second run finds nothing to do: a one-line user error, the bundle untouched.
    before = (v1 / "config.json").read_bytes()
    again = _ner("migrate", str(v1))
    assert again.returncode == 2, again.stderr
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ner: error: ")
    assert "not a format-1 bundle" in lines[0] and "Traceback" not in again.stderr
    assert (v1 / "config.json").read_bytes() == before


def test_damaged_format_1_bundle_is_not_migrated(tiny_bundle: Path, tmp_path: Path) -> None:
    v1 = make_v1(tiny_bundle, tmp_path / "old")
    data = (v1 / "vocab.json").read_bytes()
    (v1 / "vocab.json").write_bytes(data[: len(data) // 2])
    config = (v1 / "config.json").read_bytes()
    with pytest.raises(BundleError, match="corrupt, truncated or modified") as e:
        migrate_v1(v1)
    assert str(e.value).startswith(str(v1 / "vocab.json"))
    assert (v1 / "config.json").read_bytes() == config
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]


def test_format_1_bundle_without_weights(tiny_bundle: Path, tmp_path: Path) -> None:
    """An ONNX-only format-1 bundle migrates too; the torch backend then says what is missing."""
    v1 = make_v1(tiny_bundle, tmp_path / "old")
    (v1 / "weights.pt").unlink()
    cfg = json.loads((v1 / "config.json").read_text())
    del cfg["files"]["weights.pt"]
    (v1 / "config.json").write_text(json.dumps(cfg))
    migrate_v1(v1)
    assert not (v1 / "weights.pt").exists()
    np.testing.assert_allclose(_emissions(v1, "onnx"), _emissions(tiny_bundle, "onnx"), atol=1e-6)
    with pytest.raises(BundleError, match=r"weights\.pt"):
        tasks.load(v1, "torch")


def test_shipped_model_is_format_2() -> None:
    if not (SHIPPED / "config.json").is_file():
        pytest.skip("models/conll2003-en is not present")
    bundle = open_bundle(SHIPPED)  # verifies every file's sha256, the card included
    assert bundle.config["format_version"] == FORMAT_VERSION
    assert bundle.task == "ner" and bundle.name == "conll2003-en"
    assert not (SHIPPED / "labels.json").exists()
    assert bundle.meta["labels"][0] == "O" and bundle.model_config["num_tags"] == len(
        bundle.meta["labels"]
    )
