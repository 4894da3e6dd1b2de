"""``ner export``: a Lightning checkpoint of any task -> a model bundle.

    ner export --ckpt runs/conll2003/checkpoints --out models/conll2003-en \\
        --name conll2003-en --version 1.0.0

Several ``--ckpt`` (a classifier's seeds, say) make one ensemble bundle: the members' mean
log-probability, with one temperature fitted on ``--calibrate DEV``::

    ner export --ckpt runs/sst2-s1 runs/sst2-s2 runs/sst2-s3 --calibrate $DATA/sst2/dev.tsv \
        --out models/sst2-ens

``--ckpt`` is a ``.ckpt`` file, or a folder: a checkpoints folder (``runs/<name>/checkpoints``) or
a run folder (``runs/<name>``, whose ``checkpoints/`` is used), or the word ``best`` with
``--run runs/<name>``. For a folder the checkpoint with the highest dev F1 is exported (see
:func:`best_checkpoint`); the chosen file is printed on stderr.

Everything comes from the ``.ckpt`` alone: the task, the model config and the task's own state
(the module's ``rnn_ner`` entry), the vocabularies and the training files' names, paths relative
to the data folder and sha256 (the datamodule's state), the dev metrics of the checkpoint's epoch,
the training time and the hardware. The task's module class (``training.tasks``) rebuilds the
model and writes the bundle. The checkpoint is read with ``torch.load(weights_only=True)``: no
pickled code runs. Bundles are written atomically (``ner.bundle.BundleWriter``): a failed export
leaves the previous bundle, or nothing, in place.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.base import CHECKPOINT_KEY
from training.tasks import training_task

MODEL_PREFIX = "model."
BEST = "best"
"""``--ckpt best``: the best checkpoint of the run folder given with ``--run``."""
_SCORE_IN_NAME = re.compile(r"(val_[a-z0-9_]+?)[=_]?(-?\d+(?:\.\d+)?)(?:\.ckpt)?$")


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
    if CHECKPOINT_KEY not in ckpt:
        raise CheckpointError(f"{p}: not a checkpoint of `ner train` (no {CHECKPOINT_KEY!r} entry)")
    task = ckpt[CHECKPOINT_KEY].get("task", "ner")
    try:
        spec = training_task(task)
    except KeyError as e:
        raise CheckpointError(f"{p}: {e.args[0]}") from None
    if spec.datamodule.rpartition(":")[2] not in ckpt:
        raise CheckpointError(f"{p}: not a checkpoint of `ner train` (no datamodule state)")
    return ckpt


def checkpoint_task(ckpt: dict[str, Any]) -> tuple[str, Any, dict[str, Any]]:
    """(task, its TaskModule class, the datamodule's state) of a checkpoint dict."""
    task = ckpt[CHECKPOINT_KEY].get("task", "ner")
    spec = training_task(task)
    return task, spec.module_class(), ckpt[spec.datamodule.rpartition(":")[2]]


def _monitor(ckpt: dict[str, Any]) -> str:
    task = ckpt.get(CHECKPOINT_KEY, {}).get("task", "ner") if isinstance(ckpt, dict) else "ner"
    return f"val_{training_task(task).module_class().monitor}"


def _score_from_state(path: Path) -> float | None:
    """The ``val_f1`` that ModelCheckpoint recorded for ``path`` itself, ``None`` if unknown.

    Read from the checkpoint's own ModelCheckpoint callback state: the entry of ``best_k_models``
    whose file name is ``path``'s (the score of the epoch saved in it). The file is memory-mapped,
    so the weights are not read.
    """
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # unreadable here; the filename may still tell, the export will complain
        return None
    callbacks = ckpt.get("callbacks") if isinstance(ckpt, dict) else None
    if not isinstance(callbacks, dict):
        return None
    try:
        monitor = _monitor(ckpt)
    except KeyError:
        return None
    for key, state in callbacks.items():
        if not str(key).startswith("ModelCheckpoint") or not isinstance(state, dict):
            continue
        if state.get("monitor") != monitor:
            continue
        for saved, score in (state.get("best_k_models") or {}).items():
            if Path(str(saved)).name == path.name:
                return _as_float(score)
    return None


def _as_float(value: Any) -> float | None:
    try:
        score = float(value)
    except (TypeError, ValueError, RuntimeError):
        return None
    return None if math.isnan(score) else score


def _score_from_name(path: Path) -> float | None:
    """``epoch028-val_f10.9418.ckpt`` -> 0.9418 (the ModelCheckpoint filename of ``ner train``)."""
    stem = path.stem
    # "val_f10.9418": the "1" of "f1" is part of the metric name, not of the number.
    for name in ("val_f1", "val_acc", "val_loss", "val_ppl", "val_exact"):
        if name in stem:
            return _as_float(stem.split(name, 1)[1].lstrip("=_") or "nan")
    match = _SCORE_IN_NAME.search(stem)
    return _as_float(match.group(2)) if match else None


def checkpoint_score(path: str | Path) -> tuple[float, str] | None:
    """The dev F1 of a checkpoint file and where it came from (``"callback state"``/``"filename"``).

    ``None`` when neither the ModelCheckpoint state inside the file nor its name holds the score
    (``last.ckpt``: its score is the last epoch's, which ModelCheckpoint does not record for it).
    """
    p = Path(path)
    score = _score_from_state(p)
    if score is not None:
        return score, "callback state"
    score = _score_from_name(p)
    return (score, "filename") if score is not None else None


def _folder_mode(files: list[Path]) -> tuple[str, str]:
    """(monitor, mode) of the run whose checkpoints these are (read from one of them)."""
    import torch

    for f in files:
        try:
            ckpt = torch.load(f, map_location="cpu", weights_only=True, mmap=True)
            task = ckpt.get(CHECKPOINT_KEY, {}).get("task", "ner")
            cls = training_task(task).module_class()
            return f"val_{cls.monitor}", cls.monitor_mode
        except Exception:  # unreadable or foreign; try the next file
            continue
    return "val_f1", "max"


def best_checkpoint(folder: str | Path) -> tuple[Path, float, str]:
    """The checkpoint with the best dev score in a checkpoints folder or a run folder (the
    task's monitored metric, highest or lowest as the task says: F1 and accuracy up, loss down).

    Args:
        folder: ``runs/<name>/checkpoints`` or ``runs/<name>`` (its ``checkpoints/`` is used when
            present).

    Returns:
        ``(path, score, source)``; on a tie the latest epoch (then the newest file) wins.

    Raises:
        CheckpointError: the folder is missing or holds no checkpoint with a known score.
    """
    root = Path(folder)
    if not root.is_dir():
        raise CheckpointError(f"{root}: no such run or checkpoints folder")
    ckpt_dir = root / "checkpoints" if (root / "checkpoints").is_dir() else root
    files = sorted(ckpt_dir.glob("*.ckpt"))
    if not files:
        raise CheckpointError(f"{ckpt_dir}: no .ckpt file (has `ner train` run into it?)")
    monitor, mode = _folder_mode(files)
    sign = 1.0 if mode == "max" else -1.0
    scored: list[tuple[float, int, float, Path, str, float]] = []
    for f in files:
        found = checkpoint_score(f)
        try:
            mtime = f.stat().st_mtime
        except FileNotFoundError:  # ModelCheckpoint of a live run replaced it meanwhile
            continue
        if found is not None:
            epoch = re.match(r"epoch(\d+)", f.name)
            order = int(epoch.group(1)) if epoch else -1
            scored.append((sign * found[0], order, mtime, f, found[1], found[0]))
    if not scored:
        names = ", ".join(f.name for f in files)
        raise CheckpointError(
            f"{ckpt_dir}: no checkpoint records its {monitor} ({names}); pass the file to --ckpt"
        )
    _, _, _, path, source, score = max(scored, key=lambda row: row[:3])
    return path, score, source


def resolve_checkpoint(
    ckpt: str | Path | None, run: str | Path | None = None
) -> tuple[Path, float | None, str | None]:
    """The checkpoint file that ``--ckpt``/``--run`` name (see the module docstring).

    Returns:
        ``(path, val_f1, source)``; ``val_f1`` and ``source`` are ``None`` for an explicit file.

    Raises:
        CheckpointError: ``best`` (or no ``--ckpt``) without a run folder, ``--run`` with an
            explicit checkpoint, or a folder without a scored checkpoint.
    """
    if ckpt is None or str(ckpt) == BEST:
        if run is None:
            raise CheckpointError("--ckpt best needs --run RUN_DIR (e.g. --run runs/conll2003)")
        return best_checkpoint(run)
    if run is not None:
        raise CheckpointError(f"--run {run} goes with --ckpt best, not with --ckpt {ckpt}")
    p = Path(ckpt)
    return best_checkpoint(p) if p.is_dir() else (p, None, None)


def model_from_checkpoint(ckpt: dict[str, Any]) -> Any:
    """The trained model (eval mode) of any task, rebuilt from a checkpoint dict."""
    _, module_class, _ = checkpoint_task(ckpt)
    model = module_class.rebuild(ckpt[CHECKPOINT_KEY])
    state = {
        k[len(MODEL_PREFIX) :]: v
        for k, v in ckpt["state_dict"].items()
        if k.startswith(MODEL_PREFIX)
    }
    model.load_state_dict(module_class.upgrade_state(ckpt[CHECKPOINT_KEY], state))
    return model.eval()


def _best_row(history: list[dict[str, Any]], epoch: int | None) -> dict[str, Any] | None:
    rows = [r for r in history if r.get("epoch") == epoch] or history[-1:]
    return rows[-1] if rows else None


def model_card(ckpt: dict[str, Any], *, name: str, version: str, source: str) -> dict[str, Any]:
    """Card fields for the bundle: dev metrics, training config, data, time, hardware."""
    state = ckpt[CHECKPOINT_KEY]
    _, _, data = checkpoint_task(ckpt)
    history = list(state.get("history", []))
    # A checkpoint saved at the end of validation epoch e holds e in ckpt["epoch"].
    row = _best_row(history, ckpt.get("epoch"))
    metrics: dict[str, Any] = {}
    if row is not None:
        dev = {k.removeprefix("val_"): v for k, v in row.items() if k.startswith("val_")}
        per_type = {k.removeprefix("f1_"): dev.pop(k) for k in list(dev) if k.startswith("f1_")}
        if per_type:
            dev["f1_per_type"] = per_type
        metrics["dev"] = {**dev, "epoch": row.get("epoch")}
    files = data.get("files", {})
    training_data = {
        "files": files,
        "sha256": files.get("train", {}).get("sha256"),
        "license": data.get("license", "see the data's own license"),
    }
    if data.get("input_scheme"):
        training_data["input_scheme"] = data["input_scheme"]
    return {
        "training_data": training_data,
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
    ckpt_path: str | Path, out_dir: str | Path, *, name: str = "model", version: str = "0.1.0"
) -> Path:
    """Rebuild the model of ``ckpt_path`` and write it as a bundle in ``out_dir`` (atomic)."""
    ckpt = load_checkpoint(ckpt_path)
    try:
        _, module_class, data = checkpoint_task(ckpt)
        model = model_from_checkpoint(ckpt)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{ckpt_path}: cannot rebuild the model ({e})") from None
    card = model_card(ckpt, name=name, version=version, source=Path(ckpt_path).name)
    return module_class.export(
        model,
        out_dir,
        entry=ckpt[CHECKPOINT_KEY],
        data=data,
        name=name,
        version=version,
        card=card,
    )


def export_ensemble(
    ckpt_paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    calibrate: Path | None,
    name: str = "model",
    version: str = "0.1.0",
) -> Path:
    """Rebuild the models of several checkpoints of one task and vocabulary and write them as one
    ensemble bundle (tasks whose module has ``export_ensemble``: the classifier)."""
    ckpts = [load_checkpoint(p) for p in ckpt_paths]
    tasks = {checkpoint_task(c)[0] for c in ckpts}
    if len(tasks) > 1:
        raise CheckpointError(
            f"the checkpoints are of different tasks ({', '.join(sorted(tasks))})"
        )
    task, module_class, _ = checkpoint_task(ckpts[0])
    if not hasattr(module_class, "export_ensemble"):
        raise CheckpointError(f"task {task!r} has no ensemble bundles: give one --ckpt")
    if calibrate is None:
        raise CheckpointError(
            "an ensemble needs --calibrate DEV (a labelled dev file) for its temperature"
        )
    models = []
    for path, ckpt in zip(ckpt_paths, ckpts, strict=True):
        try:
            models.append(model_from_checkpoint(ckpt))
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{path}: cannot rebuild the model ({e})") from None
    return module_class.export_ensemble(
        models,
        out_dir,
        entries=[c[CHECKPOINT_KEY] for c in ckpts],
        datas=[checkpoint_task(c)[2] for c in ckpts],
        name=name,
        version=version,
        cards=[
            model_card(c, name=name, version=version, source=Path(p).name)
            for p, c in zip(ckpt_paths, ckpts, strict=True)
        ],
        calibrate=calibrate,
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ner export", description="Export a `ner train` checkpoint as a model bundle."
    )
    p.add_argument(
        "--ckpt",
        nargs="+",
        default=None,
        help="a .ckpt written by ner train; or a checkpoints folder (runs/NAME/checkpoints) or "
        "a run folder (runs/NAME): the checkpoint with the highest val F1 in it; or `best` "
        "with --run. Several: one ensemble bundle (classifiers; needs --calibrate)",
    )
    p.add_argument(
        "--calibrate",
        type=Path,
        default=None,
        help="labelled dev file that fits an ensemble's temperature (several --ckpt)",
    )
    p.add_argument(
        "--run",
        type=Path,
        default=None,
        help="run folder (runs/NAME) for --ckpt best (the default when --run is given)",
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

    parser = _parser()
    args = parser.parse_args(argv)
    if args.ckpt is None and args.run is None:
        parser.error("give --ckpt (a .ckpt file, a checkpoints or run folder, or best with --run)")
    name = args.name or args.out.name
    try:
        paths = []
        for given in args.ckpt or [None]:
            ckpt, score, source = resolve_checkpoint(given, args.run)
            if score is None:
                print(f"ner export: checkpoint {ckpt}", file=sys.stderr)
            else:
                print(
                    f"ner export: best checkpoint {ckpt} (score {score:.4f}, from the {source})",
                    file=sys.stderr,
                )
            paths.append(ckpt)
        if len(paths) > 1:
            out = export_ensemble(
                paths, args.out, calibrate=args.calibrate, name=name, version=args.version
            )
        else:
            if args.calibrate is not None:
                raise CheckpointError("--calibrate goes with several --ckpt (an ensemble)")
            out = export_checkpoint(paths[0], args.out, name=name, version=args.version)
    except (CheckpointError, BundleError, OSError, ValueError) as e:
        print(f"ner export: error: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
