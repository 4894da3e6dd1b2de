"""bench/serve_load.py loads every task's endpoint and sets it next to the library offline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serving.support import REPO_ROOT, server_env

SCRIPT = REPO_ROOT / "bench" / "serve_load.py"
SHIPPED = {"score": "dinos-char", "generate": "dinos-char", "translate": "dates-iso"}


def run_serve_load(tmp_path: Path, *args: str) -> list[dict]:
    out = tmp_path / "rows.json"
    cmd = [sys.executable, str(SCRIPT), *args, "--levels", "2", "--duration", "0.5"]
    cmd += ["--warmup", "0.2", "--offline-repeats", "1", "--json", str(out)]
    env = {**server_env(), "TMPDIR": str(tmp_path)}
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "| served / offline |" in result.stdout
    return json.loads(out.read_text())


def check_rows(rows: list[dict], tasks: list[str]) -> None:
    assert [r["task"] for r in rows] == tasks
    for row in rows:
        assert row["errors"] == 0 and row["rps"] > 0
        assert row["offline_ips"] > 0
        assert row["served_over_offline"] == pytest.approx(row["rps"] / row["offline_ips"])
        implied_ms = 1000 * row["connections"] / row["rps"]
        assert row["p99_over_implied_mean"] == pytest.approx(row["p99"] / implied_ms)


def test_classify_endpoint_against_offline(classifier_dir: Path, tmp_path: Path) -> None:
    rows = run_serve_load(
        tmp_path, "--task", "classify", "--task-model", f"classify={classifier_dir}"
    )
    check_rows(rows, ["classify"])
    assert rows[0]["mean_batch"] >= 1  # /v1/classify goes through the micro-batcher


@pytest.mark.slow
def test_language_model_and_translation_endpoints(tmp_path: Path) -> None:
    """The shipped dinos-char and dates-iso bundles (score, generate, translate)."""
    if not all((REPO_ROOT / "models" / m / "config.json").is_file() for m in SHIPPED.values()):
        pytest.skip("the shipped models are not here")
    tasks = list(SHIPPED)
    rows = run_serve_load(tmp_path, *(a for t in tasks for a in ("--task", t)))
    check_rows(rows, tasks)


def test_bad_task_model_is_refused(tmp_path: Path) -> None:
    cmd = [sys.executable, str(SCRIPT), "--task-model", "nope=models/x", "--no-offline"]
    result = subprocess.run(
        cmd, cwd=tmp_path, env=server_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "--task-model takes TASK=DIR" in result.stderr
