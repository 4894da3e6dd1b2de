"""The arrows point one way: serving -> ner <- training. The library imports neither layer."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

NER = Path(__file__).resolve().parents[2] / "ner"


def test_no_module_of_ner_imports_training_or_serving() -> None:
    offenders = []
    for path in sorted(NER.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                # importlib by string, e.g. "training.cli": the old CLI reached up this way
                and node.value.split(".")[0] in ("training", "serving")
                and "." in node.value
            ):
                names = [node.value]
            offenders += [
                f"{path.relative_to(NER.parent)}:{node.lineno}: {n}"  # type: ignore[attr-defined]
                for n in names
                if n.split(".")[0] in ("training", "serving", "lightning", "fastapi", "pydantic")
            ]
    assert not offenders, offenders


def test_importing_the_library_loads_neither_layer() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import ner\n"
        "for m in pkgutil.walk_packages(ner.__path__, 'ner.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('training', 'serving', 'lightning', 'fastapi'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
