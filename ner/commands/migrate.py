"""``ner migrate DIR``: upgrade a format-1 bundle in place (see ``ner.tasks.migrate``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "migrate",
        help="upgrade a bundle of format 1 (before task bundles) in place",
        description="Rewrite a format-1 tagger bundle as format 2 in place, atomically: the ONNX "
        "graph, vocabularies and tables are kept byte for byte; config.json gains task, name "
        "and version and checksums the model card too. Needs torch when the bundle has weights.",
    )
    p.add_argument("bundle", type=Path, help="the bundle directory")
    p.set_defaults(run=_run)


def _run(ns: argparse.Namespace) -> int:
    from ner.tasks.migrate import migrate_v1

    print(migrate_v1(ns.bundle))
    return 0
