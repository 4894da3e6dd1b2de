"""The ONNX backend keeps torch and Lightning out of the server process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.serving.support import REPO_ROOT, SEED, server_env

SCRIPT = """
import json, sys
from fastapi.testclient import TestClient
import serving.main
from serving.settings import Settings

app = serving.main.create_app(Settings(models_dir=sys.argv[1]))
with TestClient(app) as client:
    r = client.post("/v1/tag", json={"text": sys.argv[2]})
    assert r.status_code == 200, r.text
    tokens = len(r.json()["tokens"])
HEAVY = ("torch", "lightning", "pytorch_lightning", "training")
heavy = sorted(m for m in HEAVY if m in sys.modules)
print(json.dumps({"tokens": tokens, "heavy": heavy}))
"""


def test_onnx_server_never_imports_torch(models_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(models_dir), SEED],
        cwd=REPO_ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"tokens": 10, "heavy": []}
