"""``ner lab gradients ...``: the vanishing/exploding-gradient lab (``ner.lab.gradients``)."""

from __future__ import annotations

import argparse
from typing import Any

LABS = {"gradients": "vanishing and exploding gradients: RNN vs GRU vs LSTM, clipping on/off"}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "lab",
        help="teaching labs (gradients)",
        description="Teaching labs. `ner lab gradients --out DIR [--quick]` trains the basic RNN, "
        "the GRU and the LSTM on long-range agreement and plots accuracy and gradient norms.",
        add_help=False,
    )
    p.add_argument("lab", nargs="?", choices=sorted(LABS), help="the lab to run")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the lab's own options (--help)")
    p.set_defaults(run=_run, lab_parser=p)


def _run(ns: argparse.Namespace) -> int:
    if ns.lab is None:
        ns.lab_parser.print_help()
        return 2
    from ner.lab.gradients import main

    return main(ns.args)
