"""Load test of the HTTP service: throughput, latency percentiles, errors and server peak RSS.

Starts each server in a subprocess on 127.0.0.1, then keeps 1, 8 and 64 connections busy with
single-sentence ``POST /v1/tag`` requests (closed loop: each connection sends its next request as
soon as the answer arrives) for ``--duration`` seconds per level. The client is a minimal
HTTP/1.1 keep-alive client on asyncio streams, so that it costs the shared CPU as little as
possible (``wrk`` is not needed). Prints one markdown row per server and level.

Servers:
- ``ner``: ``ner serve`` with dynamic micro-batching (the defaults);
- ``ner-nobatch`` (``--compare-batching``): ``--max-batch-size 1 --max-wait-ms 0``;
- ``spacy`` (``--peer spacy --spacy-model DIR``): a spaCy NER pipeline behind a minimal FastAPI
  endpoint, the pattern of spaCy's own FastAPI project template (``nlp(text)`` in a sync route).

Usage::

    python bench/serve_load.py --model models/conll2003-en --compare-batching \
        --peer spacy --spacy-model models/spacy-conll2003 [--duration 15] [--levels 1 8 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere: `ner` importable
    sys.path.insert(0, str(REPO_ROOT))
FALLBACK_SENTENCES = [
    "Harry Potter and Hermione Granger invented a new spell.",
    "EU rejects German call to boycott British lamb.",
    "Peter Blackburn reports from Brussels on Thursday.",
    "The European Commission said on Thursday it disagreed with German advice.",
    "Germany's representative to the European Union's veterinary committee Werner Zwingmann said.",
    "Angela Merkel met Barack Obama at the White House in Washington.",
    "Japan began the defence of their Asian Cup title with a lucky 2-1 win against Syria.",
    "Nadim Ladki reported from Al Ain in the United Arab Emirates.",
]


# ------------------------------------------------------------------------------------------------
# The spaCy peer: a minimal FastAPI app, run in its own process by this same script.

SPACY_APP = """
import sys
import spacy
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

nlp = spacy.load(sys.argv[1])
app = FastAPI()


class Req(BaseModel):
    text: str


@app.get("/readyz")
def readyz():
    return {"status": "ready"}


@app.post("/v1/tag")
def tag(req: Req):
    doc = nlp(req.text)
    return {
        "entities": [
            {"text": e.text, "label": e.label_, "start": e.start_char, "end": e.end_char}
            for e in doc.ents
        ]
    }


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


# ------------------------------------------------------------------------------------------------
# Servers


@dataclass(frozen=True)
class Server:
    """How to start one server."""

    name: str
    batching: str
    cmd: tuple[str, ...]  # without the port


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        found = [int(c) for t in tasks for c in (t / "children").read_text().split()]
    except OSError:
        return []
    return found + [g for c in found for g in _children(c)]


def peak_rss_mib(pid: int) -> float:
    """Peak resident set (VmHWM) in MiB of the server and its worker processes, summed."""
    total = 0
    for p in (pid, *_children(pid)):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


@contextmanager
def started(server: Server, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*server.cmd, *port_args(server, port)], env=env, stdout=out, stderr=out, cwd=REPO_ROOT
        )
    try:
        deadline = time.monotonic() + 120
        while not ready(port):
            if proc.poll() is not None:
                raise SystemExit(f"{server.name} exited:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{server.name} not ready in 120 s")
            time.sleep(0.3)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def port_args(server: Server, port: int) -> list[str]:
    return [str(port)] if server.name == "spacy" else ["--port", str(port)]


def ready(port: int) -> bool:
    try:
        status, _ = asyncio.run(_one_get(port, "/readyz"))
        return status == 200
    except OSError:
        return False


async def _one_get(port: int, path: str) -> tuple[int, bytes]:
    conn = await Connection.open(port)
    try:
        return await conn.request("GET", path, b"")
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------------
# A minimal HTTP/1.1 keep-alive client


class Connection:
    """One keep-alive connection; requests are sent one at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int):
        self.reader, self.writer, self.port = reader, writer, port

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, port)

    async def request(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode("ascii") + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("connection closed")
        status = int(status_line.split()[1])
        length = 0
        chunked = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if chunked:
            data = bytearray()
            while True:
                size = int((await self.reader.readline()).strip(), 16)
                if size == 0:
                    await self.reader.readline()
                    break
                data += await self.reader.readexactly(size)
                await self.reader.readline()
            return status, bytes(data)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True)
class LevelResult:
    connections: int
    completed: int
    errors: int
    seconds: float
    latencies_ms: tuple[float, ...]

    @property
    def throughput(self) -> float:
        return self.completed / self.seconds

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def load(
    port: int, connections: int, duration: float, bodies: Sequence[bytes]
) -> LevelResult:
    """Closed-loop load: ``connections`` clients, each sending back-to-back requests."""
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + duration

    async def client(seed: int) -> None:
        nonlocal errors
        rng = random.Random(seed)
        conn = await Connection.open(port)
        try:
            while time.perf_counter() < stop:
                body = bodies[rng.randrange(len(bodies))]
                t0 = time.perf_counter()
                try:
                    status, _ = await conn.request("POST", "/v1/tag", body)
                except (ConnectionError, asyncio.IncompleteReadError, ValueError):
                    errors += 1
                    conn.close()
                    conn = await Connection.open(port)
                    continue
                if status == 200:
                    latencies.append((time.perf_counter() - t0) * 1000)
                else:
                    errors += 1
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(connections)))
    elapsed = time.perf_counter() - start
    return LevelResult(connections, len(latencies), errors, elapsed, tuple(latencies))


async def batch_stats(port: int) -> tuple[float, float]:
    """(sum, count) of ``ner_batch_size_sentences`` from /metrics; zeros for the peer."""
    status, body = await _one_get(port, "/metrics")
    total = count = 0.0
    if status == 200:
        for line in body.decode().splitlines():
            if line.startswith("ner_batch_size_sentences_sum"):
                total += float(line.rsplit(" ", 1)[1])
            elif line.startswith("ner_batch_size_sentences_count"):
                count += float(line.rsplit(" ", 1)[1])
    return total, count


# ------------------------------------------------------------------------------------------------


def sentences(limit: int = 2000) -> list[str]:
    """CoNLL-2003 dev sentences (tokens joined by spaces) when the data is present."""
    try:
        from ner.data.conll import read_conll
        from ner.settings import data_dir

        dev = data_dir() / "conll2003" / "dev.txt"
        if dev.is_file():
            found = [" ".join(s.tokens) for s in read_conll(dev) if len(s.tokens) > 3]
            if found:
                return found[:limit]
    except Exception:  # the fallback list serves anywhere
        pass
    return FALLBACK_SENTENCES


def servers(args: argparse.Namespace) -> list[Server]:
    py = sys.executable
    base = (py, "-m", "serving", "serve", "--model", str(args.model), "--log-level", "warning")
    base = (*base, "--workers", str(args.workers))
    out = [Server("ner", "on", base)]
    if args.compare_batching:
        out.append(Server("ner", "off", (*base, "--max-batch-size", "1", "--max-wait-ms", "0")))
    if args.peer == "spacy":
        if args.spacy_model is None:
            raise SystemExit("--peer spacy needs --spacy-model DIR")
        out.append(Server("spacy", "n/a", (py, "-c", SPACY_APP, str(args.spacy_model))))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "conll2003-en")
    p.add_argument("--levels", type=int, nargs="+", default=[1, 8, 64])
    p.add_argument("--duration", type=float, default=10.0, help="seconds per level")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring")
    p.add_argument("--workers", type=int, default=1, help="ner serve --workers")
    p.add_argument("--compare-batching", action="store_true", help="also run without batching")
    p.add_argument("--peer", choices=["spacy"], default=None)
    p.add_argument("--spacy-model", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)

    bodies = [json.dumps({"text": s}).encode() for s in sentences()]
    rows = []
    print(f"{len(bodies)} sentences, {args.duration:g} s per level, {os.cpu_count()} CPUs\n")
    print(
        "| server | micro-batching | connections | req/s | p50 ms | p95 ms | p99 ms "
        "| errors | mean batch | peak RSS MiB |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for server in servers(args):
        port = free_port()
        log = Path(os.environ.get("TMPDIR", "/tmp")) / f"serve_load_{server.name}_{port}.log"
        with started(server, port, log) as proc:
            asyncio.run(load(port, max(args.levels), args.warmup, bodies))
            for level in args.levels:
                before = asyncio.run(batch_stats(port))
                result = asyncio.run(load(port, level, args.duration, bodies))
                after = asyncio.run(batch_stats(port))
                batches = after[1] - before[1]
                mean_batch = (after[0] - before[0]) / batches if batches else float("nan")
                row = {
                    "server": server.name,
                    "batching": server.batching,
                    "connections": level,
                    "rps": result.throughput,
                    "p50": result.percentile(50),
                    "p95": result.percentile(95),
                    "p99": result.percentile(99),
                    "errors": result.errors,
                    "mean_batch": mean_batch,
                    "peak_rss_mib": peak_rss_mib(proc.pid),
                    "mean_ms": statistics.fmean(result.latencies_ms) if result.completed else 0,
                }
                rows.append(row)
                batch = "" if mean_batch != mean_batch else f"{mean_batch:.1f}"
                print(
                    f"| {server.name} | {server.batching} | {level} | {row['rps']:.0f} "
                    f"| {row['p50']:.1f} | {row['p95']:.1f} | {row['p99']:.1f} | {row['errors']} "
                    f"| {batch} | {row['peak_rss_mib']:.0f} |",
                    flush=True,
                )
    if args.json is not None:
        from ner.fileio import atomic_open

        with atomic_open(args.json) as fh:
            fh.write(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
