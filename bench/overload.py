"""Overload test of ``ner serve``: many heavy requests, then how fast a small one gets through.

Starts ``ner serve`` in a subprocess on 127.0.0.1, then keeps ``--connections`` connections
(300) busy for ``--duration`` seconds (10) with heavy ``POST /v1/tag`` requests (texts of
``--chars`` characters, 10,000), closed loop, each with a client timeout (``--client-timeout``,
5 s, like ``wrk --timeout 5s``): a client that times out closes its connection and opens a new
one, as impatient clients do. Meanwhile a separate process asks ``/healthz`` every 20 ms on a
keep-alive connection with a blocking socket, so that the load client's own event loop is not
part of what is measured. When the load stops (every client has its answer or has given up), it
sends one small request, again every 50 ms until one succeeds: the recovery time is from the end
of the load to that success.

``--trivial`` runs the same load against a trivial asyncio server in its own process, which
answers ``/healthz`` with 200 and every POST with 503 at once: what /healthz costs on this
machine under this load client whatever the server does (the floor ``ner serve`` cannot beat).

Reports the status counts (only 200 and 503 are allowed; ``timeout`` is the client giving up),
p50/p99 latency of the answers, the /healthz p99 and max, the recovery time, the server's 5xx
other than 503 from ``/metrics``, and the peak RSS (VmHWM, summed over the server's processes).

Usage::

    python bench/overload.py --model models/conll2003-en [--connections 300] [--duration 10]
        [--json out.json] [--trivial] [-- extra ner serve flags]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import (  # noqa: E402  (the sibling script)
    FALLBACK_SENTENCES,
    REPO_ROOT,
    Connection,
    Server,
    _one_get,
    free_port,
    peak_rss_mib,
    started,
)

SMALL = json.dumps({"text": "Harry Potter met Hermione Granger in London."}).encode()


def heavy_text(chars: int, seed: int) -> str:
    """About ``chars`` characters of news-like sentences, rotated by ``seed``."""
    out: list[str] = []
    size = 0
    i = seed
    while size < chars:
        sentence = FALLBACK_SENTENCES[i % len(FALLBACK_SENTENCES)]
        out.append(sentence)
        size += len(sentence) + 1
        i += 1
    return " ".join(out)[:chars].rstrip()


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def probe_healthz(port: int, seconds: float, every: float, out: Any) -> None:
    """``/healthz`` every ``every`` s for ``seconds`` on one keep-alive connection; the
    latencies (s) go to ``out`` (a pipe). Runs in its own process: blocking socket, no loop."""
    latencies: list[float] = []
    request = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    stop = time.monotonic() + seconds
    conn = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        while time.monotonic() < stop:
            start = time.perf_counter()
            conn.sendall(request)
            data = b""
            while not data.endswith(b"}"):  # the body is a small JSON object
                chunk = conn.recv(4096)
                if not chunk:
                    raise ConnectionError("the server closed the /healthz connection")
                data += chunk
            latencies.append(time.perf_counter() - start)
            time.sleep(every)
    finally:
        conn.close()
        out.send(latencies)
        out.close()


async def overload(
    port: int, connections: int, duration: float, timeout: float, bodies: Sequence[bytes]
) -> tuple[Counter[str], list[float], list[float]]:
    """Status counts, answer latencies (s) and /healthz latencies (s) under the load."""
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    stop = time.monotonic() + duration
    receiver, sender = multiprocessing.Pipe(duplex=False)
    prober = multiprocessing.Process(
        target=probe_healthz, args=(port, duration, 0.02, sender), daemon=True
    )
    prober.start()

    async def client(k: int) -> None:
        conn: Connection | None = None
        n = 0
        while time.monotonic() < stop:
            body = bodies[(k + n) % len(bodies)]
            n += 1
            start = time.monotonic()
            try:
                if conn is None:
                    conn = await Connection.open(port)
                status, _ = await asyncio.wait_for(conn.request("POST", "/v1/tag", body), timeout)
            except TimeoutError:
                statuses["timeout"] += 1
                if conn is not None:
                    conn.close()
                conn = None
                continue
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
                statuses["connection error"] += 1
                if conn is not None:
                    conn.close()
                conn = None
                await asyncio.sleep(0.05)
                continue
            statuses[str(status)] += 1
            latencies.append(time.monotonic() - start)
            if status == 503:
                await asyncio.sleep(0.05)  # a client that honours Retry-After waits longer
        if conn is not None:
            conn.close()

    await asyncio.gather(*(client(k) for k in range(connections)))
    health: list[float] = await asyncio.to_thread(receiver.recv)
    prober.join()
    return statuses, latencies, health


async def recovery(port: int, limit: float = 30.0) -> float:
    """Seconds until a small request succeeds (retried every 50 ms)."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        conn = await Connection.open(port)
        try:
            status, _ = await conn.request("POST", "/v1/tag", SMALL)
        finally:
            conn.close()
        if status == 200:
            return time.monotonic() - start
        await asyncio.sleep(0.05)
    return float("inf")


async def server_errors(port: int) -> tuple[int, float, float]:
    """Requests the server answered with a 5xx other than 503, tokens tagged and inference
    seconds, from /metrics."""
    _, body = await _one_get(port, "/metrics")
    total = 0
    tokens = inference = 0.0
    for line in body.decode().splitlines():
        if line.startswith("ner_tokens_total{"):
            tokens += float(line.rsplit(" ", 1)[1])
        if line.startswith("ner_inference_duration_seconds_sum{"):
            inference += float(line.rsplit(" ", 1)[1])
        server_error = 'status="5' in line and 'status="503"' not in line
        if line.startswith("ner_http_requests_total{") and server_error:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total, tokens, inference


class TrivialProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive at its cheapest: GET -> 200 ``{"status":"ok"}``, POST -> 503."""

    OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n"
    OK += b'{"status":"ok"}'
    BUSY = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    BUSY += b"retry-after: 1\r\ncontent-length: 15\r\n\r\n" + b'{"status":"no"}'

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""
        self.body_left = 0

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.body_left:
                taken = min(self.body_left, len(self.buffer))
                self.buffer, self.body_left = self.buffer[taken:], self.body_left - taken
                if self.body_left:
                    return
                self.transport.write(self.BUSY)
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end].lower(), self.buffer[end + 4 :]
            if not head.startswith(b"post"):
                self.transport.write(self.OK)
                continue
            length = head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0]
            self.body_left = max(1, int(length))


def serve_trivial(port: int) -> None:
    """Run the trivial server on 127.0.0.1:``port`` until killed."""

    async def run() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(TrivialProtocol, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(run())


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "conll2003-en")
    p.add_argument("--connections", type=int, default=300)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--chars", type=int, default=10_000)
    p.add_argument("--client-timeout", type=float, default=5.0)
    p.add_argument("--json", type=Path, help="also write the result here")
    p.add_argument(
        "--trivial", action="store_true", help="load a trivial server instead (the floor)"
    )
    p.add_argument("--serve-trivial", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("serve_args", nargs="*", help="extra `ner serve` flags (after --)")
    args = p.parse_args(argv)
    if args.serve_trivial:
        serve_trivial(args.port)
        return 0

    cmd = (sys.executable, "-m", "serving", "serve", "--model", str(args.model), *args.serve_args)
    if args.trivial:
        cmd = (sys.executable, str(Path(__file__).resolve()), "--serve-trivial")
    server = Server("trivial" if args.trivial else "ner", "on", cmd)
    bodies = [json.dumps({"text": heavy_text(args.chars, k)}).encode() for k in range(8)]
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, started(server, port, Path(tmp) / "s.log") as proc:
        statuses, latencies, health = asyncio.run(
            overload(port, args.connections, args.duration, args.client_timeout, bodies)
        )
        # the trivial server refuses every POST: nothing to recover
        recovered = float("nan") if args.trivial else asyncio.run(recovery(port))
        errors, tokens, inference = asyncio.run(server_errors(port))
        rss = peak_rss_mib(proc.pid)
    result = {
        "connections": args.connections,
        "duration_s": args.duration,
        "chars": args.chars,
        "server": server.name,
        "serve_args": args.serve_args,
        "statuses": dict(sorted(statuses.items())),
        "p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "p99_s": round(percentile(latencies, 99), 3),
        "healthz_p99_ms": round(percentile(health, 99) * 1000, 1),
        "healthz_max_ms": round(max(health) * 1000, 1) if health else None,
        "recovery_s": round(recovered, 3),
        "server_5xx_not_503": errors,
        "tokens_tagged": int(tokens),
        "inference_s": round(inference, 2),
        "peak_rss_mib": round(rss, 1),
    }
    print(json.dumps(result, indent=2))
    counts = ", ".join(f"{k}: {v}" for k, v in result["statuses"].items())
    print(
        f"| {args.connections} | {args.chars:,} | {counts} | {result['p50_s']} | "
        f"{result['p99_s']} | {result['healthz_p99_ms']} / {result['healthz_max_ms']} | "
        f"{result['recovery_s']} | {errors} | {result['peak_rss_mib']} |"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    allowed = {"200", "503", "timeout"}
    return 0 if set(statuses) <= allowed and errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
