"""``ner export``: a Lightning checkpoint -> a model bundle (``ner.bundle.export_bundle``).

    ner export --ckpt runs/conll2003-fast/checkpoints/last.ckpt --out models/conll2003-en \\
        --name conll2003-en --version 1.0.0

Everything comes from the ``.ckpt`` alone: the tagger config, labels and tag scheme (the module's
``rnn_ner`` entry), the vocabularies and the training files' sha256 (the datamodule's state), the
dev metrics of the checkpoint's epoch, the training time and the hardware. The checkpoint is read
with ``torch.load(weights_only=True)``: no pickled code runs. The bundle is written atomically by
``export_bundle``: a failed export leaves no partial bundle.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.data import CONLL2003_LICENSE, NerDataModule, featurizer_from_state
from training.module import CHECKPOINT_KEY

DATA_KEY = NerDataModule.__qualname__
MODEL_PREFIX = "model."


class CheckpointError(ValueError):
    """A checkpoint that cannot be exported; the message names the file."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, read without unpickling code.

    Raises:
        CheckpointError: missing, unreadable, or not a checkpoint of ``ner train``.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: checkpoint not found")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{p}: corrupt or unreadable checkpoint ({first})") from None
    except Exception as e:  # unpickling errors differ across torch versions
        raise CheckpointError(
            f"{p}: corrupt or unreadable checkpoint ({type(e).__name__})"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"{p}: not a Lightning checkpoint (no state_dict)")
    for key in (CHECKPOINT_KEY, DATA_KEY):
        if key not in ckpt:
            raise CheckpointError(f"{p}: not a checkpoint of `ner train` (no {key!r} entry)")
    return ckpt


def tagger_from_checkpoint(ckpt: dict[str, Any]) -> Any:
    """The trained ``Tagger`` (eval mode) rebuilt from a checkpoint dict."""
    from ner.models.tagger import TaggerConfig
    from training.module import build_tagger

    config = TaggerConfig.from_dict(ckpt[CHECKPOINT_KEY]["tagger_config"])
    model = build_tagger(config)
    state = {
        k[len(MODEL_PREFIX) :]: v
        for k, v in ckpt["state_dict"].items()
        if k.startswith(MODEL_PREFIX)
    }
    model.load_state_dict(state)
    return model.eval()


def _best_row(history: list[dict[str, Any]], epoch: int | None) -> dict[str, Any] | None:
    rows = [r for r in history if r.get("epoch") == epoch] or history[-1:]
    return rows[-1] if rows else None


def model_card(ckpt: dict[str, Any], *, name: str, version: str, source: str) -> dict[str, Any]:
    """Card fields for ``export_bundle``: dev metrics, training config, data, time, hardware."""
    state = ckpt[CHECKPOINT_KEY]
    data = ckpt[DATA_KEY]
    history = list(state.get("history", []))
    # A checkpoint saved at the end of validation epoch e holds e in ckpt["epoch"].
    row = _best_row(history, ckpt.get("epoch"))
    metrics: dict[str, Any] = {}
    if row is not None:
        dev = {k.removeprefix("val_"): v for k, v in row.items() if k.startswith("val_")}
        per_type = {k.removeprefix("f1_"): dev.pop(k) for k in list(dev) if k.startswith("f1_")}
        metrics["dev"] = {**dev, "f1_per_type": per_type, "epoch": row.get("epoch")}
    files = data.get("files", {})
    is_conll = any("conll2003" in str(f.get("path", "")) for f in files.values())
    return {
        "name": name,
        "version": version,
        "training_data": {
            "files": files,
            "sha256": files.get("train", {}).get("sha256"),
            "input_scheme": data.get("input_scheme"),
            "license": CONLL2003_LICENSE if is_conll else "see the data's own license",
        },
        "metrics": metrics,
        "training_config": {
            "model": ckpt.get("hyper_parameters", {}),
            "data": ckpt.get("datamodule_hyper_parameters", {}),
        },
        "training": {
            "epochs": len(history),
            "checkpoint_epoch": ckpt.get("epoch"),
            "global_step": ckpt.get("global_step"),
            "seconds": round(float(state.get("train_seconds", 0.0)), 1),
            "hardware": state.get("hardware"),
            "lightning": ckpt.get("pytorch-lightning_version"),
            "checkpoint": source,
            "history": history,
        },
    }


def export_checkpoint(
    ckpt_path: str | Path, out_dir: str | Path, *, name: str = "ner-tagger", version: str = "0.1.0"
) -> Path:
    """Rebuild the model of ``ckpt_path`` and write it as a bundle in ``out_dir`` (atomic)."""
    from ner.bundle import export_bundle

    ckpt = load_checkpoint(ckpt_path)
    state, data = ckpt[CHECKPOINT_KEY], ckpt[DATA_KEY]
    try:
        featurizer = featurizer_from_state(data)
        model = tagger_from_checkpoint(ckpt)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{ckpt_path}: cannot rebuild the model ({e})") from None
    return export_bundle(
        model,
        out_dir=out_dir,
        words=featurizer.words,
        chars=featurizer.chars,
        labels=state["labels"],
        tag_scheme=state["tag_scheme"],
        max_word_len=featurizer.max_word_len,
        card=model_card(ckpt, name=name, version=version, source=Path(ckpt_path).name),
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ner export", description="Export a `ner train` checkpoint as a model bundle."
    )
    p.add_argument(
        "--ckpt", required=True, type=Path, help="checkpoint (.ckpt) written by ner train"
    )
    p.add_argument("--out", required=True, type=Path, help="bundle directory to create or replace")
    p.add_argument(
        "--name", default=None, help="model name for the card (default: the out folder's name)"
    )
    p.add_argument("--version", default="0.1.0", help="model version for the card")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ner export``; returns the exit status (2 with a one-line error)."""
    from ner.bundle import BundleError

    args = _parser().parse_args(argv)
    try:
        out = export_checkpoint(
            args.ckpt, args.out, name=args.name or args.out.name, version=args.version
        )
    except (CheckpointError, BundleError, OSError) as e:
        print(f"ner export: error: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
