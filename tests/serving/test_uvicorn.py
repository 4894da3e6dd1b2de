"""``ner serve`` over a real socket: start-up, tagging, a bad bundle, SIGTERM mid-request."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.serving.support import (
    MODEL,
    REPO_ROOT,
    SEED,
    free_port,
    running_server,
    server_env,
)


def test_serve_over_a_socket(models_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    args = ["--model", str(models_dir / MODEL)]
    with running_server(args, port, tmp_path / "server.log"):
        base = f"http://127.0.0.1:{port}"
        r = httpx.post(f"{base}/v1/tag", json={"text": SEED}, timeout=10)
        assert r.status_code == 200
        body = r.json()
        assert body["model"]["name"] == MODEL
        assert [t["text"] for t in body["tokens"]][:2] == ["Harry", "Potter"]
        for ent in body["entities"]:
            assert SEED[ent["start"] : ent["end"]] == ent["text"]
        # raw invalid bytes and a lone surrogate over the wire
        r = httpx.post(
            f"{base}/v1/tag",
            content=b'{"text": "\xff"}',
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_utf8"
        r = httpx.post(
            f"{base}/v1/tag",
            content=b'{"text": "\\ud800"}',
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422 and "surrogate" in r.json()["error"]["message"]
        assert httpx.get(f"{base}/v1/models").json()["models"][0]["name"] == MODEL
        assert "ner_http_requests_total" in httpx.get(f"{base}/metrics").text


def test_serve_loads_every_bundle_in_models_dir(models_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "models"
    for name in ("b-model", "a-model"):
        shutil.copytree(models_dir / MODEL, root / name)
    (root / "notes").mkdir()  # not a bundle: skipped
    port = free_port()
    args = ["--models-dir", str(root), "--default-model", "b-model"]
    with running_server(args, port, tmp_path / "server.log"):
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models").json()["models"]
        assert [(m["name"], m["default"]) for m in models] == [
            ("a-model", False),
            ("b-model", True),
        ]
        r = httpx.post(f"http://127.0.0.1:{port}/v1/tag", json={"text": SEED})
        assert r.json()["model"]["name"] == "b-model"
        r = httpx.post(f"http://127.0.0.1:{port}/v1/tag", json={"text": SEED, "model": "a-model"})
        assert r.json()["model"]["name"] == "a-model"


def _children(pid: int) -> list[int]:
    """The ids of the processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_serve_with_two_worker_processes(models_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["--model", str(models_dir / MODEL), "--workers", "2"]
    log_path = tmp_path / "server.log"
    n = 24
    with running_server(args, port, log_path) as proc:
        deadline = time.monotonic() + 60
        while log_path.read_text().count("Application startup complete") < 2:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)

        def post(_: int) -> int:  # a new connection each time: either worker may answer
            return httpx.post(f"{base}/v1/tag", json={"text": SEED}, timeout=30).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert list(pool.map(post, range(n))) == [200] * n
        # /metrics adds up both workers, whichever one answers
        for _ in range(4):
            text = httpx.get(f"{base}/metrics").text
            assert (
                f'ner_http_requests_total{{method="POST",route="/v1/tag",status="200"}} {n}.0'
                in (text)
            )
            assert f'ner_tokens_total{{model="{MODEL}"}} {10 * n}.0' in text
            assert f'ner_queue_depth{{model="{MODEL}"}} 0.0' in text
        metrics_dir = None
        if sys.platform.startswith("linux"):
            workers = _children(proc.pid)
            dirs = {_environ(pid).get("PROMETHEUS_MULTIPROC_DIR") for pid in workers}
            dirs.discard(None)
            assert len(dirs) == 1, dirs  # one folder shared by all workers
            metrics_dir = Path(dirs.pop())
            served = {f.stem.rsplit("_", 1)[1] for f in metrics_dir.glob("counter_*.db")}
            assert len(served) == 2, served  # both workers answered requests
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    log = log_path.read_text()
    assert log.count("Application startup complete") == 2
    assert log.count("Application shutdown complete") == 2
    assert metrics_dir is None or not metrics_dir.exists()  # removed on exit


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "serving", "serve", *args, "--port", str(free_port())]
    return subprocess.run(
        cmd, cwd=REPO_ROOT, env=server_env(), capture_output=True, text=True, timeout=120
    )


def test_bad_bundle_stops_serve_with_a_clear_message(models_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(models_dir / MODEL, broken)
    (broken / "config.json").write_text("{", encoding="utf-8")
    result = serve("--model", str(broken))
    assert result.returncode == 2
    assert "config.json" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("ner serve: error:")


def test_serve_rejects_bad_settings() -> None:
    result = serve("--queue-size", "0")
    assert result.returncode == 2
    assert "queue_size" in result.stderr and "Traceback" not in result.stderr


def test_ner_cli_delegates_serve() -> None:
    code = "from ner_cli import main; raise SystemExit(main(['serve', '--help']))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "--model DIR" in result.stdout and "--backend" in result.stdout


def test_sigterm_lets_the_in_flight_request_finish(models_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    body = json.dumps({"text": SEED}).encode()
    head = (
        f"POST /v1/tag HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with running_server(["--model", str(models_dir / MODEL)], port, tmp_path / "s.log") as proc:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            conn.sendall(head + body[:10])  # the request is in flight: its body half sent
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            assert proc.poll() is None  # still waiting for this request
            with pytest.raises(httpx.HTTPError):  # but no longer taking new connections
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            conn.sendall(body[10:])
            response = b""
            while chunk := conn.recv(65536):
                response += chunk
        # uvicorn re-raises the signal once it has shut down gracefully
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    status, _, payload = response.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 200"), response[:300]
    assert json.loads(payload)["tokens"][0]["text"] == "Harry"
    log = (tmp_path / "s.log").read_text()
    assert "Waiting for connections to close" in log
