"""bench/serve_load.py runs end to end (a short load against the tiny bundle)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serving.support import MODEL, REPO_ROOT, server_env


def test_serve_load_smoke(models_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    cmd = [sys.executable, str(REPO_ROOT / "bench" / "serve_load.py"), "--model"]
    cmd += [str(models_dir / MODEL), "--levels", "1", "4", "--duration", "0.5", "--warmup", "0.2"]
    cmd += ["--json", str(out)]
    env = {**server_env(), "TMPDIR": str(tmp_path)}
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "| ner | on | 4 |" in result.stdout
    rows = json.loads(out.read_text())
    assert [r["connections"] for r in rows] == [1, 4]
    for row in rows:
        assert row["errors"] == 0
        assert row["rps"] > 0 and row["p50"] <= row["p99"]
        assert row["peak_rss_mib"] > 10


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt install wrk)")
def test_serve_load_with_wrk(models_dir: Path, tmp_path: Path) -> None:
    """The wrk client: its requests are answered, counted and timed as the asyncio client's."""
    out = tmp_path / "rows.json"
    cmd = [sys.executable, str(REPO_ROOT / "bench" / "serve_load.py"), "--model"]
    cmd += [str(models_dir / MODEL), "--levels", "4", "--duration", "1", "--warmup", "0.2"]
    cmd += ["--client", "wrk", "--no-offline", "--json", str(out)]
    env = {**server_env(), "TMPDIR": str(tmp_path)}
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(out.read_text())
    assert row["errors"] == 0 and row["rps"] > 10
    assert 0 < row["p50"] <= row["p95"] <= row["p99"]
    assert row["mean_ms"] > 0
    assert not list(tmp_path.glob("*.lua"))  # the script is removed
