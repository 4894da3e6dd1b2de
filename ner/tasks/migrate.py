"""``ner migrate DIR``: upgrade a format-1 bundle (a tagger, before task bundles) in place.

Nothing is retrained and the ONNX graph is kept byte for byte, so the labels and scores stay
exactly the same. What changes: config.json becomes format 2 (task, name and version move into
it from the unchecked model card; the flat tagger config becomes the nested ``TaggerConfig``;
labels are kept once, in ``meta``), the card is checksummed too, the training files are recorded
by name, path relative to the data folder and sha256 instead of absolute paths, and the torch
weights are renamed to the shared input stack's layout (this step needs torch).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ner.bundle import CARD, CONFIG, WEIGHTS, BundleError, BundleWriter, read_json, require

V1_RENAMED = ("words.", "chars.", "casing.")


def relative_data_path(path: str) -> str:
    """``/any/where/shared/data/conll2003/train.txt`` -> ``conll2003/train.txt``."""
    parts = Path(path).parts
    if "data" in parts:
        i = len(parts) - 1 - parts[::-1].index("data")
        if i + 1 < len(parts):
            return "/".join(parts[i + 1 :])
    return Path(path).name


def portable_files(files: dict[str, Any]) -> dict[str, Any]:
    """Training-file records without machine-specific absolute paths."""
    out = {}
    for split, info in files.items():
        info = dict(info)
        path = info.pop("path", None)
        if path is not None:
            info["path"] = relative_data_path(str(path))
            info.setdefault("name", Path(str(path)).name)
        out[split] = info
    return out


def migrate_v1(path: str | os.PathLike[str]) -> Path:
    """Upgrade the format-1 bundle at ``path`` in place (atomically). Returns the path."""
    from ner.models.config import TaggerConfig

    root = Path(path)
    cfg_path = root / CONFIG
    cfg = read_json(cfg_path)
    if not isinstance(cfg, dict) or cfg.get("format_version") != 1:
        raise BundleError(cfg_path, "not a format-1 bundle; nothing to migrate")
    from ner.bundle import _check_files

    _check_files(root, require(cfg, "files", cfg_path, dict))
    card = read_json(root / CARD)
    tagger = require(cfg, "tagger", cfg_path, dict)
    config = TaggerConfig.from_legacy(tagger)
    featurizer = require(cfg, "featurizer", cfg_path, dict)
    name = str(card.get("name", root.name))
    version = str(card.get("version", "0.0.0"))
    with BundleWriter(root, task="ner", name=name, version=version, max_bytes=None) as w:
        w.copy_file(root / "vocab.json", "vocab.json")
        w.add_vocab_file("words", "vocab.json")
        if featurizer.get("chars"):
            w.copy_file(root / "chars.json", "chars.json")
            w.add_vocab_file("chars", "chars.json")
        w.copy_file(root / "embeddings.npy", "embeddings.npy")
        w.add_array_file("word_table", "embeddings.npy")
        w.copy_file(root / "decoder.json", "decoder.json")
        w.copy_file(root / "model.onnx", "model.onnx")
        inputs = cfg.get("onnx", {}).get("inputs") or [
            "word_vectors",
            "char_ids",
            "casing_ids",
            "lengths",
        ]
        w.add_graph_file(
            "emissions", "model.onnx", _graph_inputs(root / "model.onnx", inputs), ["emissions"]
        )
        if featurizer.get("use_glove"):
            w.use_glove(require(cfg, "glove", cfg_path, dict))
        if (root / WEIGHTS).is_file():
            import torch

            state = torch.load(root / WEIGHTS, map_location="cpu", weights_only=True)
            w.write_weights(
                {("inputs." + k if k.startswith(V1_RENAMED) else k): v for k, v in state.items()}
            )
        given = {
            k: v
            for k, v in card.items()
            if k
            not in ("task", "name", "version", "format_version", "config", "created", "versions")
        }
        data = dict(given.get("training_data") or {})
        if isinstance(data.get("files"), dict):
            data["files"] = portable_files(data["files"])
            given["training_data"] = data
        given["migrated_from"] = {"format_version": 1, "created": card.get("created")}
        return w.commit(
            model=config.to_dict(),
            meta={
                "tag_scheme": cfg["tag_scheme"],
                "labels": list(cfg["labels"]),
                "featurizer": featurizer,
            },
            card=given,
        )


def _graph_inputs(path: Path, declared: list[str]) -> list[str]:
    """The inputs the ONNX file really has (the exporter drops unused ones)."""
    try:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = {i.name for i in session.get_inputs()}
    except Exception as e:
        raise BundleError(path, f"corrupt or truncated ONNX model ({type(e).__name__})") from None
    return [n for n in declared if n in names]
