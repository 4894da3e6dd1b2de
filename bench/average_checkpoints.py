"""Checkpoint averaging (SWA-style): average the weights of the last epochs of one run.

    # one averaged checkpoint, exportable with `ner export --ckpt avg.ckpt`
    python bench/average_checkpoints.py average runs/conll2003-swa/checkpoints/epoch01[5-9]*.ckpt \\
        --out /tmp/avg.ckpt
    # dev F1 and entity ECE of each epoch and of the averages of the last 3, 5, 10 and all epochs
    python bench/average_checkpoints.py sweep --run runs/conll2003-swa --last 1 3 5 10 0 \\
        --data conll2003/dev.txt --csv runs/conll2003-swa/averages.csv
    # ship the average of the last 10 as a bundle (dev metrics of the average in its card)
    python bench/average_checkpoints.py sweep --run runs/conll2003-swa --last 10 \\
        --data conll2003/dev.txt --ship models/conll2003-en --name conll2003-en --version 1.2.0

``average`` takes the element-wise mean of the ``state_dict`` tensors of N checkpoints of the same
run (integer buffers come from the newest one) and keeps the newest checkpoint's other entries, so
that ``ner export`` rebuilds the model, vocabularies and card from it as from any checkpoint; the
module entry records which files were averaged. Averaging the weights of one SGD trajectory at a
constant learning rate approximates SWA (Izmailov et al. 2018) without its batch-norm pass (the
tagger has no batch norm).

``sweep`` exports each average to a temporary bundle and scores it on the dev file with the ONNX
backend, the way ``ner eval`` does (entity micro F1, conlleval rules), plus the entity ECE at
T = 1 (``ner.calibration``). ``--last 1`` is the newest epoch alone; ``0`` means all epochs. Each
epoch's own dev F1 comes from the checkpoint file name (ModelCheckpoint's ``val_f1``).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.base import CHECKPOINT_KEY  # noqa: E402
from training.export import checkpoint_score, export_checkpoint, load_checkpoint  # noqa: E402

_EPOCH = re.compile(r"epoch(\d+)")


def average(paths: Sequence[Path]) -> dict[str, Any]:
    """The newest checkpoint of ``paths`` (by epoch) with its floating-point weights replaced by
    the mean over all of them."""
    if not paths:
        raise ValueError("nothing to average")
    ordered = sorted(paths, key=_epoch_of)
    newest = load_checkpoint(ordered[-1])
    total = {k: v.double() for k, v in newest["state_dict"].items() if v.is_floating_point()}
    for path in ordered[:-1]:
        state = load_checkpoint(path)["state_dict"]
        if state.keys() != newest["state_dict"].keys():
            raise ValueError(f"{path}: its weights do not match {ordered[-1]}'s")
        for k in total:
            total[k] += state[k].double()
    out = dict(newest)
    out["state_dict"] = {
        k: (total[k] / len(ordered)).to(v.dtype) if k in total else v
        for k, v in newest["state_dict"].items()
    }
    out.pop("optimizer_states", None)  # the momentum of the newest epoch means nothing here
    out[CHECKPOINT_KEY] = {
        **newest[CHECKPOINT_KEY],
        "averaged_from": [p.name for p in ordered],
    }
    return out


def _epoch_of(path: Path) -> int:
    match = _EPOCH.search(path.name)
    if match is None:
        raise ValueError(f"{path}: not an epochNNN checkpoint")
    return int(match.group(1))


def epoch_checkpoints(run: Path) -> list[Path]:
    """The per-epoch checkpoints of a run folder (or checkpoints folder), oldest first."""
    folder = run / "checkpoints" if (run / "checkpoints").is_dir() else run
    files = sorted(folder.glob("epoch*.ckpt"), key=_epoch_of)
    if not files:
        raise SystemExit(f"{folder}: no epochNNN*.ckpt files")
    return files


def score_bundle(bundle: Path, data: Path, batch_size: int = 64) -> dict[str, float]:
    """Dev entity P/R/F1 (ONNX backend, conlleval rules) and the entity ECE at T = 1."""
    from ner.calibration import CalibrationSet
    from ner.cli import _read_items, detect_scheme
    from ner.data.conll import Sentence
    from ner.metrics import entity_scores
    from ner.tasks import load

    sentences = [s for s in _read_items(data, labels=True) if isinstance(s, Sentence)]
    gold = [list(s.labels or ()) for s in sentences]
    scheme = detect_scheme(gold) or "iob2"
    predictor = load(bundle, "onnx", threads=1, task="ner")
    tokens = [s.tokens for s in sentences]
    report = entity_scores(
        gold, predictor.predict_tokens(tokens, scheme, batch_size), scheme=scheme
    )
    cal = CalibrationSet(predictor, tokens, gold, scheme, batch_size=batch_size)
    per_type = {f"f1_{k}": v.f1 for k, v in sorted(report.per_type.items())}
    return {
        "precision": report.micro.precision,
        "recall": report.micro.recall,
        "f1": report.micro.f1,
        **per_type,
        "ece_t1": cal.outcomes(1.0).reliability().ece,
    }


def _cmd_average(ns: argparse.Namespace) -> int:
    import torch

    ckpt = average([Path(p) for p in ns.ckpts])
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, ns.out)
    print(f"averaged {len(ns.ckpts)} checkpoints -> {ns.out}", file=sys.stderr)
    return 0


def _cmd_sweep(ns: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from ner.settings import data_dir

    data = ns.data if ns.data.is_file() else data_dir() / ns.data
    files = epoch_checkpoints(ns.run)
    rows = []
    for f in files:
        rows.append({"what": f"epoch {_epoch_of(f)}", "epochs": str(_epoch_of(f)), "n": 1})
        found = checkpoint_score(f)
        rows[-1]["f1"] = found[0] if found else None
    lasts = [len(files) if k == 0 else k for k in ns.last]
    with tempfile.TemporaryDirectory(prefix="avg-") as tmp:
        for k in tqdm(lasts, desc="averages", unit="avg", file=sys.stderr):
            chosen = files[-k:]
            t0 = time.perf_counter()
            ckpt_path = Path(tmp) / f"avg-last{k}.ckpt"
            torch.save(average(chosen), ckpt_path)
            bundle = Path(tmp) / f"avg-last{k}"
            if ns.ship is not None and k == lasts[-1]:
                bundle = ns.ship
            export_checkpoint(ckpt_path, bundle, name=ns.name, version=ns.version)
            scores = score_bundle(bundle, data)
            span = f"{_epoch_of(chosen[0])}-{_epoch_of(chosen[-1])}"
            rows.append(
                {
                    "what": f"mean of last {k}",
                    "epochs": span,
                    "n": k,
                    **scores,
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
            if bundle == ns.ship:
                _card_metrics(bundle, data, scores, chosen)
    keys = sorted({key for row in rows for key in row}, key=_column_order)
    if ns.csv is not None:
        ns.csv.parent.mkdir(parents=True, exist_ok=True)
        with ns.csv.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
    print("| checkpoints | epochs | dev F1 | dev ECE (T = 1) |")
    print("|---|---|---|---|")
    for row in rows:
        f1 = f"{100 * row['f1']:.2f}" if row.get("f1") is not None else "-"
        ece = f"{row['ece_t1']:.4f}" if row.get("ece_t1") is not None else "-"
        print(f"| {row['what']} | {row['epochs']} | {f1} | {ece} |")
    return 0


def _column_order(key: str) -> tuple[int, str]:
    first = ["what", "epochs", "n", "precision", "recall", "f1"]
    return (first.index(key), key) if key in first else (len(first), key)


def _card_metrics(bundle: Path, data: Path, scores: dict[str, float], chosen: list[Path]) -> None:
    """Put the averaged model's own dev scores in the shipped card (export wrote the newest
    epoch's) and record what was averaged."""
    from ner.bundle import open_bundle
    from ner.calibration import file_record, rewrite_bundle

    card = open_bundle(bundle).card
    dev = {
        "precision": scores["precision"],
        "recall": scores["recall"],
        "f1": scores["f1"],
        "f1_per_type": {k[3:]: v for k, v in scores.items() if k.startswith("f1_")},
        "measured_on": file_record(data),
    }
    metrics = {**card.get("metrics", {}), "dev": dev}
    averaging = {
        "method": "mean of the weights of the last epochs of one constant-lr SGD run",
        "checkpoints": [p.name for p in chosen],
    }
    rewrite_bundle(bundle, card={"metrics": metrics, "averaging": averaging})


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(required=True)
    a = sub.add_parser("average", help="average checkpoints into one .ckpt")
    a.add_argument("ckpts", nargs="+", help="epochNNN*.ckpt files of one run")
    a.add_argument("--out", required=True, type=Path, help="the averaged .ckpt to write")
    a.set_defaults(func=_cmd_average)
    s = sub.add_parser("sweep", help="score the averages of the last K epochs on dev")
    s.add_argument("--run", required=True, type=Path, help="run folder or checkpoints folder")
    s.add_argument("--last", type=int, nargs="+", default=[1, 3, 5, 0], help="K values; 0: all")
    s.add_argument("--data", type=Path, default=Path("conll2003/dev.txt"), help="dev CoNLL file")
    s.add_argument("--csv", type=Path, default=None, help="write the table as CSV here")
    s.add_argument("--ship", type=Path, default=None, help="export the last average here")
    s.add_argument("--name", default="model", help="bundle name (with --ship)")
    s.add_argument("--version", default="0.1.0", help="bundle version (with --ship)")
    s.set_defaults(func=_cmd_sweep)
    ns = p.parse_args(argv)
    return int(ns.func(ns) or 0)


if __name__ == "__main__":
    sys.exit(main())
