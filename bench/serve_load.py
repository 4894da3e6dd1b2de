"""Load test of the HTTP service: throughput, latency percentiles, errors and server peak RSS.

Starts each server in a subprocess on 127.0.0.1, then keeps 1, 8 and 64 connections busy with
single-item requests (closed loop: each connection sends its next request as soon as the answer
arrives) for ``--duration`` seconds per level. The client is a minimal HTTP/1.1 keep-alive client
on asyncio streams, so that it costs the shared CPU as little as possible (``wrk`` is not needed);
``--client wrk`` runs the same load from ``wrk`` (one thread; the bodies in a shuffled cycle),
which takes less of the shared CPU still, when it is installed (``apt install wrk``).
Prints one markdown row per task, server and level.

Tasks (``--task``, repeatable; default ``tag``), each against its own server holding one model:

- ``tag``: ``POST /v1/tag`` ``{"text"}``, a CoNLL-2003 dev sentence; model ``--model``
  (``models/conll2003-en``);
- ``classify``: ``POST /v1/classify`` ``{"text"}``, an SST-2 dev review; ``models/sst2-en``;
- ``score``: ``POST /v1/score`` ``{"text"}``, a dinosaur name; ``models/dinos-char``;
- ``generate``: ``POST /v1/generate`` ``{"n": 1, "seed"}``, one sample; ``models/dinos-char``;
- ``translate``: ``POST /v1/translate`` ``{"text"}``, a date from ``ner.data.dates`` (seed 0);
  ``models/dates-iso``.

``--task-model TASK=DIR`` serves another bundle for a task. Data come from ``$NER_DATA_DIR`` (a
built-in list when absent).

**Offline** (unless ``--no-offline``): the same inputs through the library in one fresh process
with one thread, as a batch job would call it (``Predictor.predict(texts)``, ``classify``,
``translate`` with ``batch_size=64``; ``score`` in lists of 64; ``generate(64)`` per 64 samples),
median of ``--offline-repeats`` passes after a warm-up pass; load time excluded. Each row then
gives ``served / offline`` (req/s over offline items/s; the issue's target at 64 connections:
at least 1.0) and ``p99 / mean`` (p99 over the mean latency the level implies,
``connections / req/s``, Little's law; target at most 2.5). ``server CPU ms/req`` is the server
processes' user + system time over the level per answered request: steadier than req/s when the
client and other jobs share the cores; in brackets, the part spent on the event loop (the
processes' main threads; the rest is inference and helper threads).

Servers for ``tag``:
- ``ner``: ``ner serve`` with dynamic micro-batching (the defaults);
- ``ner-nobatch`` (``--compare-batching``): ``--max-batch-size 1 --max-wait-ms 0``;
- ``spacy`` (``--peer spacy --spacy-model DIR``; run by ``.venv-spacy`` when it exists, which then
  needs fastapi and uvicorn): a spaCy NER pipeline behind a minimal FastAPI
  endpoint, the pattern of spaCy's own FastAPI project template (``nlp(text)`` in a sync route).

Usage::

    python bench/serve_load.py --model models/conll2003-en --compare-batching \
        --peer spacy --spacy-model models/spacy-conll2003 [--duration 15] [--levels 1 8 64]
    python bench/serve_load.py --task tag --task classify --task score --task generate \
        --task translate --levels 64 --duration 15
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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    task: str = "tag"


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


def _ticks(stat: str) -> int:
    try:
        fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the server and its worker processes so far."""
    ticks = sum(_ticks(f"/proc/{p}/stat") for p in (pid, *_children(pid)))
    return ticks / os.sysconf("SC_CLK_TCK")


def loop_cpu_seconds(pid: int) -> float:
    """The part of :func:`cpu_seconds` spent on the processes' main threads: uvicorn's event
    loop (HTTP, routing, parsing, tokenising, answers); the rest is the inference and helper
    threads (and, with several workers, the supervisor's main thread, next to nothing)."""
    ticks = sum(_ticks(f"/proc/{p}/task/{p}/stat") for p in (pid, *_children(pid)))
    return ticks / os.sysconf("SC_CLK_TCK")


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
    quantiles_ms: tuple[tuple[float, float], ...] = ()
    """(percentile, ms) pairs and (0, mean) as wrk reports them, when there are no latencies."""

    @property
    def throughput(self) -> float:
        return self.completed / self.seconds

    @property
    def mean_ms(self) -> float:
        if self.quantiles_ms:
            return dict(self.quantiles_ms).get(0.0, float("nan"))
        return statistics.fmean(self.latencies_ms) if self.latencies_ms else 0.0

    def percentile(self, q: float) -> float:
        if self.quantiles_ms:
            return dict(self.quantiles_ms).get(float(q), float("nan"))
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def load(
    port: int, connections: int, duration: float, bodies: Sequence[bytes], path: str = "/v1/tag"
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
                    status, _ = await conn.request("POST", path, body)
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


WRK_SCRIPT = """
local bodies = {%s}
local n = #bodies
local i = 0
request = function()
  i = i %% n + 1
  return wrk.format("POST", "%s", {["Content-Type"] = "application/json"}, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %%d %%d %%d %%f %%f %%f %%f %%f\\n", summary.requests,
    e.status + e.connect + e.read + e.write + e.timeout, summary.duration, latency.mean,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def load_wrk(
    port: int, connections: int, duration: float, bodies: Sequence[bytes], path: str = "/v1/tag"
) -> LevelResult:
    """The same closed-loop load from ``wrk`` (one thread, ``connections`` keep-alive
    connections, the bodies in a shuffled cycle): a C client takes less of the shared CPU
    than the asyncio one. Non-2xx answers and socket errors count as errors."""
    shuffled = list(bodies)
    random.Random(0).shuffle(shuffled)
    literals = ",".join("[==[" + b.decode("utf-8") + "]==]" for b in shuffled)
    script = Path(os.environ.get("TMPDIR", "/tmp")) / f"serve_load_{os.getpid()}.lua"
    script.write_text(WRK_SCRIPT % (literals, path), encoding="utf-8")
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "30s"]
    cmd += ["-s", str(script), f"http://127.0.0.1:{port}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    finally:
        script.unlink(missing_ok=True)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("WRK ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    requests, errors, micros, *quantiles = (float(x) for x in line.split()[1:])
    mean, p50, p95, p99, _ = (q / 1000 for q in quantiles)
    return LevelResult(
        connections,
        int(requests) - int(errors),
        int(errors),
        micros / 1e6,
        (),
        ((0.0, mean), (50.0, p50), (95.0, p95), (99.0, p99)),
    )


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


def _data_file(*parts: str) -> Path | None:
    try:
        from ner.settings import data_dir

        path = data_dir().joinpath(*parts)
    except Exception:  # no data directory configured: the built-in lists serve
        return None
    return path if path.is_file() else None


def sentences(limit: int = 2000) -> list[str]:
    """CoNLL-2003 dev sentences (tokens joined by spaces) when the data is present."""
    try:
        from ner.data.conll import read_conll

        dev = _data_file("conll2003", "dev.txt")
        if dev is not None:
            found = [" ".join(s.tokens) for s in read_conll(dev) if len(s.tokens) > 3]
            if found:
                return found[:limit]
    except Exception:  # the fallback list serves anywhere
        pass
    return FALLBACK_SENTENCES


def reviews(limit: int = 2000) -> list[str]:
    """SST-2 dev reviews (the text column) when the data is present."""
    dev = _data_file("sst2", "dev.tsv")
    if dev is None:
        return [s.lower() for s in FALLBACK_SENTENCES]
    rows = [line.rsplit("\t", 1)[0] for line in dev.read_text(encoding="utf-8").splitlines()]
    return [r for r in rows if r.strip()][:limit] or [s.lower() for s in FALLBACK_SENTENCES]


def names(limit: int = 2000) -> list[str]:
    """Dinosaur names when the data is present."""
    found = _data_file("dinos", "dinos.txt")
    words = found.read_text(encoding="utf-8").split() if found is not None else []
    return words[:limit] or ["Aachenosaurus", "Aardonyx", "Brachiosaurus", "Tyrannosaurus"]


def dates(limit: int = 2000) -> list[str]:
    """Human-readable dates (``ner.data.dates``, seed 0)."""
    from ner.data.dates import generate_pairs

    return [text for text, _ in generate_pairs(limit, seed=0)]


def seeds(limit: int = 512) -> list[int]:
    return list(range(limit))


@dataclass(frozen=True)
class Task:
    """One endpoint: its inputs, one request's body, and the library's batch call offline."""

    name: str
    path: str
    model: str  # default bundle, relative to the repository
    inputs: Callable[[], list[Any]]

    def body(self, item: Any) -> bytes:
        if self.name == "generate":
            return json.dumps({"n": 1, "seed": item}).encode()
        return json.dumps({"text": item}).encode()


TASKS = {
    t.name: t
    for t in (
        Task("tag", "/v1/tag", "models/conll2003-en", sentences),
        Task("classify", "/v1/classify", "models/sst2-en", reviews),
        Task("score", "/v1/score", "models/dinos-char", names),
        Task("generate", "/v1/generate", "models/dinos-char", seeds),
        Task("translate", "/v1/translate", "models/dates-iso", dates),
    )
}
OFFLINE_BATCH = 64
"""Items per library call offline (the server's default max batch size)."""


def offline_pass(task: str, predictor: Any, items: Sequence[Any]) -> None:
    """The library's batch call on ``items``, as a batch job would make it."""
    b = OFFLINE_BATCH
    if task == "tag":
        predictor.predict(list(items), batch_size=b)
    elif task == "classify":
        predictor.classify([predictor.tokenize(t) for t in items], batch_size=b)
    elif task == "translate":
        predictor.translate(list(items), batch_size=b)
    elif task == "score":  # one padded batch per call
        for k in range(0, len(items), b):
            predictor.score(list(items[k : k + b]))
    elif task == "generate":
        for k in range(0, len(items), b):
            predictor.generate(len(items[k : k + b]), seed=int(items[k]))
    else:
        raise ValueError(f"unknown task {task!r}")


def offline_child(task: str, model: Path, repeats: int) -> dict[str, float]:
    """(Run in a fresh one-thread process.) Items, median wall and CPU seconds of a pass."""
    from ner.tasks import load as load_model

    predictor = load_model(model, "onnx", threads=1)
    items = TASKS[task].inputs()
    offline_pass(task, predictor, items)  # warm-up: caches, first-call costs
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        offline_pass(task, predictor, items)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return {
        "items": len(items),
        "wall_s": statistics.median(walls),
        "cpu_s": statistics.median(cpus),
    }


def offline(task: str, model: Path, repeats: int) -> dict[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, __file__, "--offline-child", task, "--model", str(model)]
    cmd += ["--offline-repeats", str(repeats)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"offline {task} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def task_models(args: argparse.Namespace) -> dict[str, Path]:
    models = {name: REPO_ROOT / t.model for name, t in TASKS.items()}
    models["tag"] = args.model
    for item in args.task_model:
        task, sep, path = item.partition("=")
        if not sep or task not in TASKS:
            raise SystemExit(f"--task-model takes TASK=DIR with TASK one of {', '.join(TASKS)}")
        models[task] = Path(path)
    return models


def servers(args: argparse.Namespace, task: str = "tag", model: Path | None = None) -> list[Server]:
    py = sys.executable
    model = args.model if model is None else model
    base = (py, "-m", "serving", "serve", "--model", str(model), "--log-level", "warning")
    base = (*base, "--workers", str(args.workers))
    out = [Server("ner", "on", base, task)]
    if task != "tag":
        return out
    if args.compare_batching:
        out.append(Server("ner", "off", (*base, "--max-batch-size", "1", "--max-wait-ms", "0")))
    if args.peer == "spacy":
        if args.spacy_model is None:
            raise SystemExit("--peer spacy needs --spacy-model DIR")
        # spaCy's own venv (bench/spacy_peer.py) when it has one, with fastapi and uvicorn
        venv = REPO_ROOT / ".venv-spacy" / "bin" / "python"
        spacy_py = str(venv) if venv.exists() else py
        out.append(Server("spacy", "n/a", (spacy_py, "-c", SPACY_APP, str(args.spacy_model))))
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "conll2003-en")
    p.add_argument(
        "--task", dest="tasks", action="append", choices=list(TASKS), help="default: tag"
    )
    p.add_argument("--task-model", action="append", default=[], metavar="TASK=DIR")
    p.add_argument("--levels", type=int, nargs="+", default=[1, 8, 64])
    p.add_argument("--duration", type=float, default=10.0, help="seconds per level")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring")
    p.add_argument("--workers", type=int, default=1, help="ner serve --workers")
    p.add_argument("--compare-batching", action="store_true", help="also run without batching")
    p.add_argument("--peer", choices=["spacy"], default=None)
    p.add_argument("--spacy-model", type=Path, default=None)
    p.add_argument(
        "--client",
        choices=["asyncio", "wrk"],
        default="asyncio",
        help="the load client: the built-in asyncio one, or wrk (a C client, on PATH)",
    )
    p.add_argument("--no-offline", dest="offline", action="store_false")
    p.add_argument("--offline-repeats", type=int, default=3)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--offline-child", default=None, help=argparse.SUPPRESS)
    return p


def _cell(value: float, fmt: str) -> str:
    return "" if value != value else format(value, fmt)  # NaN: empty


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.offline_child:
        result = offline_child(args.offline_child, args.model, args.offline_repeats)
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    models = task_models(args)
    rows = []
    print(f"{args.duration:g} s per level, {os.cpu_count()} CPUs\n")
    print(
        "| task | server | micro-batching | connections | req/s | p50 ms | p95 ms | p99 ms "
        "| errors | mean batch | peak RSS MiB | server CPU ms/req (event loop) | offline items/s "
        "| served / offline | p99 / mean |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for task_name in args.tasks or ["tag"]:
        task, model = TASKS[task_name], models[task_name]
        items = task.inputs()
        bodies = [task.body(item) for item in items]
        offline_ips = float("nan")
        if args.offline:
            measured = offline(task_name, model, args.offline_repeats)
            offline_ips = measured["items"] / measured["wall_s"]
        for server in servers(args, task_name, model):
            rows += serve(args, server, task, bodies, offline_ips)
    if args.json is not None:
        from ner.fileio import atomic_open

        with atomic_open(args.json) as fh:
            fh.write(json.dumps(rows, indent=2))
    return 0


def serve(
    args: argparse.Namespace, server: Server, task: Task, bodies: list[bytes], offline_ips: float
) -> list[dict[str, Any]]:
    """Start ``server``, load it at each level; the rows (also printed)."""
    rows = []
    port = free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"serve_load_{server.name}_{port}.log"
    with started(server, port, log) as proc:
        asyncio.run(load(port, max(args.levels), args.warmup, bodies, task.path))
        for level in args.levels:
            before, cpu = asyncio.run(batch_stats(port)), cpu_seconds(proc.pid)
            loop_cpu = loop_cpu_seconds(proc.pid)
            if args.client == "wrk":
                result = load_wrk(port, level, args.duration, bodies, task.path)
            else:
                result = asyncio.run(load(port, level, args.duration, bodies, task.path))
            cpu = cpu_seconds(proc.pid) - cpu
            loop_cpu = loop_cpu_seconds(proc.pid) - loop_cpu
            after = asyncio.run(batch_stats(port))
            batches = after[1] - before[1]
            mean_batch = (after[0] - before[0]) / batches if batches else float("nan")
            implied_ms = 1000 * level / result.throughput if result.completed else float("nan")
            row = {
                "task": task.name,
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
                "mean_ms": result.mean_ms,
                "server_cpu_ms_per_req": 1000 * cpu / max(result.completed, 1),
                "loop_cpu_ms_per_req": 1000 * loop_cpu / max(result.completed, 1),
                "offline_ips": offline_ips,
                "served_over_offline": result.throughput / offline_ips,
                "p99_over_implied_mean": result.percentile(99) / implied_ms,
            }
            rows.append(row)
            print(
                f"| {task.name} | {server.name} | {server.batching} | {level} | {row['rps']:.0f} "
                f"| {row['p50']:.1f} | {row['p95']:.1f} | {row['p99']:.1f} | {row['errors']} "
                f"| {_cell(mean_batch, '.1f')} | {row['peak_rss_mib']:.0f} "
                f"| {row['server_cpu_ms_per_req']:.2f} ({row['loop_cpu_ms_per_req']:.2f}) "
                f"| {_cell(offline_ips, ',.0f')} | {_cell(row['served_over_offline'], '.2f')} "
                f"| {_cell(row['p99_over_implied_mean'], '.2f')} |",
                flush=True,
            )
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
