"""The ``ner`` command: the one entry point above the three layers.

``ner train`` and ``ner export`` go to ``training``, ``ner serve`` to ``serving``, and every other
command (predict, tag, eval, classify, score, generate, translate, migrate, lab ...) to the
library's own command line, ``ner.cli``. This package may import all three layers, so the arrows
between them still point one way: ``serving -> ner <- training``; ``ner`` never imports either.

Imports happen only for the command that runs, so ``ner predict`` on the ONNX backend never
imports torch, Lightning or FastAPI.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

_TRAIN_EXTRAS = "the training extras (pip install 'rnn-ner[train]')"
_SERVE_EXTRAS = "the serving extras (pip install 'rnn-ner[serve]')"


def _train(argv: list[str]) -> int:
    from training.cli import main

    return main(argv)


def _export(argv: list[str]) -> int:
    from training.export import main

    return main(argv)


def _serve(argv: list[str]) -> int:
    from serving.cli import main

    return main(argv)


LAYERS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "train": (_train, _TRAIN_EXTRAS),
    "export": (_export, _TRAIN_EXTRAS),
    "serve": (_serve, _SERVE_EXTRAS),
}
"""Commands served by the layers above the library: name -> (runner, what to install)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ner ARGS``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in LAYERS:
        runner, extras = LAYERS[args[0]]
        try:
            result = runner(args[1:])
        except ModuleNotFoundError as e:
            if e.name and e.name.split(".")[0] in ("training", "serving"):
                raise
            print(f"ner: error: `ner {args[0]}` needs {extras} ({e})", file=sys.stderr)
            return 2
        return int(result) if isinstance(result, int) else 0
    from ner.cli import main as library_main

    return library_main(args, layers=tuple(LAYERS))
