"""Helpers shared by the tests/serving modules: constants and a server subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED = "Harry Potter and Hermione Granger invented a new spell."
MODEL = "tiny"
CLASSIFIER = "tiny-sst"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env() -> dict[str, str]:
    """The environment of a server subprocess: repo importable, one thread, no NER_ leaks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NER_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env["OMP_NUM_THREADS"] = "1"
    return env


@contextmanager
def running_server(
    args: list[str], port: int, log: Path, timeout: float = 60.0
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m serving serve ARGS --port PORT`` until ``/readyz`` says 200; stopped after.

    The server's output goes to ``log`` (a pipe could fill up and block it).
    """
    cmd = [sys.executable, "-m", "serving", "serve", *args, "--host", "127.0.0.1"]
    cmd += ["--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=server_env(), stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready in {timeout} s:\n{log.read_text()}")
            time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
