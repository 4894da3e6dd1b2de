"""A standard schemathesis run with every check against the published schema of a live server
serving a tagger and a classifier (so /v1/tag and /v1/classify are both covered).

``--checks all`` includes status-code conformance, response-schema conformance, and
positive-data acceptance / negative-data rejection: every request the schema allows must get a
2xx, every request it forbids a 4xx the schema documents. About 25 s on two cores.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.serving.support import MODEL, free_port, running_server, server_env


def schemathesis_cli() -> str | None:
    beside = Path(sys.executable).with_name("schemathesis")
    return str(beside) if beside.exists() else shutil.which("schemathesis")


def test_schemathesis_all_checks(models_dir: Path, classifier_dir: Path, tmp_path: Path) -> None:
    cli = schemathesis_cli()
    if cli is None:
        pytest.skip("schemathesis is not installed (pip install 'rnn-ner[dev]')")
    port = free_port()
    models = ["--model", str(models_dir / MODEL), "--model", str(classifier_dir)]
    with running_server(models, port, tmp_path / "server.log"):
        paths = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=10).json()["paths"]
        result = subprocess.run(
            [cli, "run", f"http://127.0.0.1:{port}/openapi.json", "--checks", "all"],
            cwd=tmp_path,  # its example database lands here, not in the repository
            env={**server_env(), "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=580,
        )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    assert "No issues found" in report, report[-6000:]
    assert "Unsupported regex" not in report, report[-6000:]  # every pattern is usable
    assert {"/v1/tag", "/v1/classify"} <= set(paths)  # both tasks' routes are published
    operations = sum(len(methods) for methods in paths.values())
    assert re.search(rf"Tested: {operations}\b", report), report[-3000:]  # and all tested
    generated = re.search(r"(\d+) generated", report)
    assert generated is not None and int(generated.group(1)) >= 100, report[-3000:]
