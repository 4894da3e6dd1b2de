"""``ner calibrate --model DIR --data DEV``: fit the tagger's temperature on dev and store it.

The temperature (``ner.calibration``) is fitted on the entities of a labelled dev file, then the
bundle is rewritten atomically with ``meta.calibration`` (the temperature, the dev file's name and
sha256, the dev ECE before and after) and the model card's ``calibration`` section. Nothing else
changes: the ONNX graph, weights and vocabularies are copied byte for byte, and the labels the
tagger predicts stay the same (only its scores move). Prints the reliability tables before and
after; writes a reliability diagram (PNG, needs matplotlib).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    from ner.cli import model_args

    p = sub.add_parser(
        "calibrate",
        help="fit a tagger's confidence temperature on a labelled dev file and store it",
        description="Fit one temperature T for the CRF scores (emissions and transitions / T) "
        "that makes the entity scores calibrated on a labelled dev file (exact span and type "
        "counts as correct), and rewrite the bundle with it (atomically). Labels never change.",
    )
    model_args(p)
    p.add_argument("--data", required=True, type=Path, help="labelled CoNLL dev file")
    p.add_argument(
        "--objective",
        choices=("nll", "ece"),
        default="nll",
        help="what the temperature minimises over the dev entities (default: nll)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write the calibrated bundle here instead of rewriting --model in place",
    )
    p.add_argument(
        "--reliability-png",
        type=Path,
        default=None,
        help="reliability diagram before/after (default: <model dir name>.<data stem>"
        ".reliability.png in the current directory)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(run=_run)


def collect(predictor: Any, data: Path, batch_size: int, progress: bool) -> tuple[Any, str]:
    """(a ``CalibrationSet`` of the labelled CoNLL file ``data``, the gold scheme)."""
    from ner.calibration import CalibrationSet
    from ner.cli import CliError, _default_scheme, _read_items, detect_scheme
    from ner.data.conll import Sentence

    sentences = [s for s in _read_items(data, labels=True) if isinstance(s, Sentence)]
    if not sentences:
        raise CliError(f"{data}: no sentences to calibrate on")
    gold = [list(s.labels or ()) for s in sentences]
    scheme = detect_scheme(gold) or _default_scheme(predictor.tag_scheme)
    bar = _progress_bar(len(sentences), f"scoring {data.name}", enabled=progress)
    try:
        cal = CalibrationSet(
            predictor,
            [s.tokens for s in sentences],
            gold,
            scheme,
            batch_size=batch_size,
            progress=bar.update if bar is not None else None,
        )
    finally:
        if bar is not None:
            bar.close()
    return cal, scheme


def _progress_bar(total: int, desc: str, *, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm  # type: ignore[import-untyped]
    except ImportError:  # tqdm is a training dependency; the command works without it
        return None
    return tqdm(total=total, desc=desc, unit="sent", file=sys.stderr, leave=False)


def _run(ns: argparse.Namespace) -> int:
    from ner.calibration import file_record, fit_temperature, plot_reliability, rewrite_bundle
    from ner.cli import DEFAULT_MODEL, _predictor

    model = ns.model or DEFAULT_MODEL
    predictor = _predictor(ns)
    cal, _ = collect(predictor, ns.data, ns.batch_size, not ns.no_progress)
    before = cal.outcomes(1.0).reliability()
    temperature = fit_temperature(cal, objective=ns.objective)
    after = cal.outcomes(temperature).reliability()
    print(f"{ns.data.name}: {len(cal)} predicted entities, {cal.gold_entities} gold")
    print(f"before (T = 1):\n{before.format()}\n")
    print(f"after (T = {temperature:.4f}):\n{after.format()}")
    calibration = {
        "temperature": temperature,
        "method": f"one temperature for the CRF scores, minimising entity {ns.objective}",
        "fitted_on": file_record(ns.data),
        "entities": len(cal),
        "dev_ece_before": before.ece,
        "dev_ece_after": after.ece,
        "bins": len(after.bins),
    }
    card = {
        "calibration": {
            **calibration,
            "fitted": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "reliability_before": before.to_dict(),
            "reliability_after": after.to_dict(),
        }
    }
    out = rewrite_bundle(model, meta={"calibration": calibration}, card=card, out=ns.out)
    png = ns.reliability_png or Path(f"{Path(model).resolve().name}.{ns.data.stem}.reliability.png")
    try:
        plot_reliability(
            {"T = 1": before, f"T = {temperature:.2f}": after},
            png,
            title=f"{predictor.name} {predictor.version} on {ns.data.name}",
        )
        print(f"ner: wrote the reliability diagram to {png}", file=sys.stderr)
    except ImportError:
        print("ner: matplotlib is not installed; no reliability diagram", file=sys.stderr)
    print(
        f"ner: T = {temperature:.4f}, dev ECE {before.ece:.4f} -> {after.ece:.4f}; wrote {out}",
        file=sys.stderr,
    )
    return 0


def eval_report(
    predictor: Any,
    sentences: list[list[str]],
    gold: list[list[str]],
    scheme: str,
    *,
    batch_size: int,
    png: Path | None,
    title: str,
) -> tuple[dict[str, Any], str]:
    """The calibration part of ``ner eval``: (JSON entry, printed reliability table).

    The entity scores are those the tagger serves (its stored temperature); when that is not 1
    the uncalibrated ECE (T = 1) is reported beside it. ``png``: where to draw the diagram.
    """
    from ner.calibration import CalibrationSet, plot_reliability

    cal = CalibrationSet(predictor, sentences, gold, scheme, batch_size=batch_size)
    t = predictor.temperature
    served = cal.outcomes(t)
    rel = served.reliability()
    entry: dict[str, Any] = {
        "temperature": t,
        "ece": rel.ece,
        **rel.to_dict(),
        "per_type_ece": {name: r.ece for name, r in served.per_type().items()},
    }
    curves = {f"T = {t:.2f}": rel}
    if t != 1.0:
        raw = cal.outcomes(1.0).reliability()
        entry["ece_uncalibrated"] = raw.ece
        curves = {"T = 1": raw, **curves}
    text = f"entity scores (T = {t:.4f}; correct = exact span and type):\n{rel.format()}"
    if png is not None:
        try:
            plot_reliability(curves, png, title=title)
            entry["reliability_png"] = str(png)
        except ImportError:
            text += "\n(matplotlib is not installed; no reliability diagram)"
    return entry, text
